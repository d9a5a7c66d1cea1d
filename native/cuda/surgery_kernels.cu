// The CUDA surgery: pass 1 (reductions), finalize, pass 2 (write + ‖out‖²) for many
// tensors per launch, following native/core/numerics.h exactly so that the results are
// the CPU backend's bits (and bit-identical run to run: no floating-point atomics).
//
// Work decomposition. A tensor is cut into element blocks ("eb") of kBlock = 1024
// elements, as on the CPU. Four threads ("a quad") own one eb: thread q holds fp32 lanes
// 4q..4q+3 and walks the eb's 64 rows of 16 in order, so each lane's sum is the CPU's
// sequential sum; with a 16-byte aligned tensor each row is one float4 load per thread
// (scalar loads otherwise, same arithmetic). The quad combines its 16 lanes in float64
// with the CPU's tree (two shuffles). One eb's three partial sums go to a per-eb array;
// the CTA that finishes a tensor's last eb (an integer counter per tensor) sums them into
// per-chunk (64 eb) partials in parallel and then the chunks in order, exactly as the
// CPU does, and computes the coefficient. The eb -> tensor table and the tensor table
// are built once per layout and live on the device with all scratch.
//
// L2 reuse. Tensors are processed in groups of about 40% of the L2 cache; launch g runs
// pass 2 of group g-1 (whose a and r are still in L2) together with pass 1 of group g:
// groups + 1 launches per call, no host synchronisation until the statistics come back
// in one copy to pinned memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "cuda_internal.h"

namespace craftgrad {
namespace cuda {
namespace {

constexpr int kEbElems = 1024;         // == kBlock
constexpr int kEbPerChunk = 64;        // == kChunk / kBlock
constexpr int kEbPerCta = 16;          // element blocks per CTA
constexpr int kThreads = 4 * kEbPerCta;
constexpr int kUnroll = 8;             // rows loaded ahead per thread
constexpr unsigned kFull = 0xffffffffu;

static_assert(kEbElems == kBlock && kEbPerChunk * kEbElems == kChunk, "numerics.h block sizes");

struct TensorDesc {
  long long offset;      // first element in the buffers
  long long n;
  long long firstEb;     // global eb index of its first eb
  long long nEb;
  long long firstChunk;  // global chunk index of its first chunk
};

struct DevStats {
  double dot, rr, aa, coef, outSq;
  int conflict, nonFinite;
};

struct ChunkPart {
  double dot, rr, aa;
  int flag, pad;
};

struct Tables {
  const int* ebTensor;       // numEb
  const TensorDesc* tensors; // k
  double* pDot;              // numEb partials of pass 1
  double* pRR;
  double* pAA;
  double* pSq;               // numEb partials of pass 2
  int* pFlag;                // numEb
  ChunkPart* chunks;         // numChunks
  DevStats* stats;           // k
  float* coef;               // k
  unsigned* count1;          // k
  unsigned* count2;          // k (follows count1; stats+counters are zeroed per call)
};

// ---------------------------------------------------------------- device helpers

template <bool Vec>
__device__ __forceinline__ float4 load4(const float* p) {
  if (Vec) return *reinterpret_cast<const float4*>(p);
  return make_float4(p[0], p[1], p[2], p[3]);
}

template <bool Vec>
__device__ __forceinline__ float4 load4Stream(const float* p) {
  if (Vec) return __ldcs(reinterpret_cast<const float4*>(p));
  return make_float4(__ldcs(p), __ldcs(p + 1), __ldcs(p + 2), __ldcs(p + 3));
}

template <bool Vec>
__device__ __forceinline__ void store4Stream(float* p, float4 v) {
  if (Vec) {
    __stcs(reinterpret_cast<float4*>(p), v);
  } else {
    __stcs(p, v.x);
    __stcs(p + 1, v.y);
    __stcs(p + 2, v.z);
    __stcs(p + 3, v.w);
  }
}

struct Acc1 {
  float d[4], q[4], a[4];
  float f;
};

__device__ __forceinline__ void acc1(Acc1& s, int l, float x, float y) {
  s.d[l] = __fadd_rn(s.d[l], __fmul_rn(x, y));
  s.q[l] = __fadd_rn(s.q[l], __fmul_rn(y, y));
  s.a[l] = __fadd_rn(s.a[l], __fmul_rn(x, x));
  // x - x is 0 for finite x and NaN for Inf/NaN (as the CPU kernels do it).
  s.f = __fadd_rn(s.f, __fadd_rn(__fsub_rn(x, x), __fsub_rn(y, y)));
}

__device__ __forceinline__ void acc1Row(Acc1& s, float4 x, float4 y) {
  acc1(s, 0, x.x, y.x);
  acc1(s, 1, x.y, y.y);
  acc1(s, 2, x.z, y.z);
  acc1(s, 3, x.w, y.w);
}

// Pass 1 over one eb of `len` elements, thread q of its quad.
template <bool Vec>
__device__ void reduceQuad(const float* a, const float* r, int len, int q, Acc1& s) {
  const int rows = len >> 4;
  const float* pa = a + 4 * q;
  const float* pr = r + 4 * q;
  int k = 0;
  for (; k + kUnroll <= rows; k += kUnroll) {
    float4 xa[kUnroll], xr[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      xa[u] = load4<Vec>(pa + (k + u) * 16);
      xr[u] = load4<Vec>(pr + (k + u) * 16);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc1Row(s, xa[u], xr[u]);
  }
  for (; k < rows; ++k) acc1Row(s, load4<Vec>(pa + k * 16), load4<Vec>(pr + k * 16));
  const int rem = len & 15;
  if (rem) {
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int idx = rows * 16 + 4 * q + l;
      if (4 * q + l < rem) acc1(s, l, a[idx], r[idx]);
    }
  }
}

// Pass 2 over one eb: out = fma(c, r, a); sq[l] += out² per lane.
template <bool Vec>
__device__ void axpyQuad(const float* a, const float* r, float* out, int len, int q, float c, float (&sq)[4]) {
  const int rows = len >> 4;
  const float* pa = a + 4 * q;
  const float* pr = r + 4 * q;
  float* po = out + 4 * q;
  int k = 0;
  auto row = [&](float4 x, float4 y, float* dst) {
    float4 o;
    o.x = __fmaf_rn(c, y.x, x.x);
    o.y = __fmaf_rn(c, y.y, x.y);
    o.z = __fmaf_rn(c, y.z, x.z);
    o.w = __fmaf_rn(c, y.w, x.w);
    store4Stream<Vec>(dst, o);
    sq[0] = __fadd_rn(sq[0], __fmul_rn(o.x, o.x));
    sq[1] = __fadd_rn(sq[1], __fmul_rn(o.y, o.y));
    sq[2] = __fadd_rn(sq[2], __fmul_rn(o.z, o.z));
    sq[3] = __fadd_rn(sq[3], __fmul_rn(o.w, o.w));
  };
  for (; k + kUnroll <= rows; k += kUnroll) {
    float4 xa[kUnroll], xr[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      xa[u] = load4Stream<Vec>(pa + (k + u) * 16);
      xr[u] = load4Stream<Vec>(pr + (k + u) * 16);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) row(xa[u], xr[u], po + (k + u) * 16);
  }
  for (; k < rows; ++k) row(load4Stream<Vec>(pa + k * 16), load4Stream<Vec>(pr + k * 16), po + k * 16);
  const int rem = len & 15;
  if (rem) {
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int idx = rows * 16 + 4 * q + l;
      if (4 * q + l < rem) {
        const float o = __fmaf_rn(c, r[idx], a[idx]);
        out[idx] = o;
        sq[l] = __fadd_rn(sq[l], __fmul_rn(o, o));
      }
    }
  }
}

// The 16 lanes of a quad combined in float64 by numerics.h's tree:
// s[j] += s[j+w] for w = 8, 4, 2, 1. Thread q holds lanes 4q..4q+3. Every thread of the
// warp must call it; the result is valid in thread q == 0.
__device__ __forceinline__ double quadCombine(const float (&v)[4], int q) {
  double s0 = v[0], s1 = v[1], s2 = v[2], s3 = v[3];
  double t0 = __shfl_down_sync(kFull, s0, 2), t1 = __shfl_down_sync(kFull, s1, 2);
  double t2 = __shfl_down_sync(kFull, s2, 2), t3 = __shfl_down_sync(kFull, s3, 2);
  if (q < 2) {  // w = 8: lanes 0..7 (threads 0, 1) take lanes 8..15 (threads 2, 3)
    s0 = __dadd_rn(s0, t0);
    s1 = __dadd_rn(s1, t1);
    s2 = __dadd_rn(s2, t2);
    s3 = __dadd_rn(s3, t3);
  }
  t0 = __shfl_down_sync(kFull, s0, 1);
  t1 = __shfl_down_sync(kFull, s1, 1);
  t2 = __shfl_down_sync(kFull, s2, 1);
  t3 = __shfl_down_sync(kFull, s3, 1);
  if (q == 0) {  // w = 4: lanes 0..3 take lanes 4..7 (thread 1)
    s0 = __dadd_rn(s0, t0);
    s1 = __dadd_rn(s1, t1);
    s2 = __dadd_rn(s2, t2);
    s3 = __dadd_rn(s3, t3);
  }
  s0 = __dadd_rn(s0, s2);  // w = 2
  s1 = __dadd_rn(s1, s3);
  return __dadd_rn(s0, s1);  // w = 1
}

// Thread 0: adds this CTA's ebs of each tensor it touched to the tensor's counter and
// lists the tensors whose last eb this CTA finished.
__device__ int claimFinished(const Tables& T, unsigned* counters, long long first, long long end, int* list) {
  int n = 0;
  if (first >= end) return 0;
  const int tA = T.ebTensor[first], tB = T.ebTensor[end - 1];
  for (int u = tA; u <= tB; ++u) {
    const TensorDesc td = T.tensors[u];
    const long long lo = max(td.firstEb, first), hi = min(td.firstEb + td.nEb, end);
    if (hi <= lo) continue;
    const unsigned cnt = static_cast<unsigned>(hi - lo);
    const unsigned old = atomicAdd(counters + u, cnt);
    if (old + cnt == static_cast<unsigned>(td.nEb)) list[n++] = u;
  }
  return n;
}

// Pass 1 finalize of tensor t by the whole CTA: chunk sums in parallel, then in order.
__device__ void finalize1(const Tables& T, int t, const float* a, const float* r, double lambda, double eps,
                          int projection) {
  const TensorDesc td = T.tensors[t];
  const long long nChunks = (td.nEb + kEbPerChunk - 1) / kEbPerChunk;
  for (long long c = threadIdx.x; c < nChunks; c += blockDim.x) {
    const long long e0 = td.firstEb + c * kEbPerChunk;
    const long long e1 = min(e0 + kEbPerChunk, td.firstEb + td.nEb);
    double sd = 0.0, sq = 0.0, sa = 0.0;
    int f = 0;
    for (long long e = e0; e < e1; ++e) {
      sd = __dadd_rn(sd, __ldcg(T.pDot + e));
      sq = __dadd_rn(sq, __ldcg(T.pRR + e));
      sa = __dadd_rn(sa, __ldcg(T.pAA + e));
      f |= __ldcg(T.pFlag + e);
    }
    ChunkPart* cp = T.chunks + td.firstChunk + c;
    __stcg(&cp->dot, sd);
    __stcg(&cp->rr, sq);
    __stcg(&cp->aa, sa);
    __stcg(&cp->flag, f);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double sd = 0.0, sq = 0.0, sa = 0.0;
    int f = 0;
    for (long long c = 0; c < nChunks; ++c) {
      const ChunkPart* cp = T.chunks + td.firstChunk + c;
      sd = __dadd_rn(sd, __ldcg(&cp->dot));
      sq = __dadd_rn(sq, __ldcg(&cp->rr));
      sa = __dadd_rn(sa, __ldcg(&cp->aa));
      f |= __ldcg(&cp->flag);
    }
    if (!f && !(isfinite(sd) && isfinite(sq) && isfinite(sa))) {
      // Finite data whose fp32 products overflowed: float64 in element order, as the
      // CPU does (surgery_cpu.cc reduceFloat64). Rare (|x| > ~1.8e19), so one thread.
      sd = sq = sa = 0.0;
      const float* pa = a + td.offset;
      const float* pr = r + td.offset;
      for (long long i = 0; i < td.n; ++i) {
        const double x = pa[i], y = pr[i];
        sd = __dadd_rn(sd, __dmul_rn(x, y));
        sq = __dadd_rn(sq, __dmul_rn(y, y));
        sa = __dadd_rn(sa, __dmul_rn(x, x));
      }
    }
    const bool conflict = projection && sd < 0.0;
    const double coef = __dsub_rn(lambda, conflict ? __ddiv_rn(sd, __dadd_rn(sq, eps)) : 0.0);
    DevStats& st = T.stats[t];
    st.dot = sd;
    st.rr = sq;
    st.aa = sa;
    st.coef = coef;
    st.conflict = conflict ? 1 : 0;
    st.nonFinite = f ? 1 : 0;
    T.coef[t] = __double2float_rn(coef);
  }
  __syncthreads();
}

__device__ void finalize2(const Tables& T, int t) {
  const TensorDesc td = T.tensors[t];
  const long long nChunks = (td.nEb + kEbPerChunk - 1) / kEbPerChunk;
  for (long long c = threadIdx.x; c < nChunks; c += blockDim.x) {
    const long long e0 = td.firstEb + c * kEbPerChunk;
    const long long e1 = min(e0 + kEbPerChunk, td.firstEb + td.nEb);
    double s = 0.0;
    for (long long e = e0; e < e1; ++e) s = __dadd_rn(s, __ldcg(T.pSq + e));
    __stcg(&T.chunks[td.firstChunk + c].dot, s);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double s = 0.0;
    for (long long c = 0; c < nChunks; ++c) s = __dadd_rn(s, __ldcg(&T.chunks[td.firstChunk + c].dot));
    T.stats[t].outSq = s;
  }
  __syncthreads();
}

__device__ void pass1Cta(const Tables& T, const float* a, const float* r, long long ebBegin, long long ebEnd,
                         long long cta, double lambda, double eps, int projection) {
  __shared__ int finished[kEbPerCta];
  __shared__ int numFinished;
  const int quad = threadIdx.x >> 2, q = threadIdx.x & 3;
  const long long first = ebBegin + cta * kEbPerCta;
  const long long end = min(first + kEbPerCta, ebEnd);
  const long long geb = first + quad;
  const bool valid = geb < end;
  Acc1 s;
#pragma unroll
  for (int l = 0; l < 4; ++l) s.d[l] = s.q[l] = s.a[l] = 0.0f;
  s.f = 0.0f;
  if (valid) {
    const TensorDesc td = T.tensors[T.ebTensor[geb]];
    const long long e = geb - td.firstEb;
    const long long start = td.offset + e * kEbElems;
    const int len = static_cast<int>(min(static_cast<long long>(kEbElems), td.n - e * kEbElems));
    const float* pa = a + start;
    const float* pr = r + start;
    if (((reinterpret_cast<uintptr_t>(pa) | reinterpret_cast<uintptr_t>(pr)) & 15) == 0)
      reduceQuad<true>(pa, pr, len, q, s);
    else
      reduceQuad<false>(pa, pr, len, q, s);
  }
  const double sd = quadCombine(s.d, q);
  const double sq = quadCombine(s.q, q);
  const double sa = quadCombine(s.a, q);
  int bad = (s.f != 0.0f) ? 1 : 0;  // NaN != 0 is true
  bad |= __shfl_down_sync(kFull, bad, 2);
  bad |= __shfl_down_sync(kFull, bad, 1);
  if (valid && q == 0) {
    __stcg(T.pDot + geb, sd);
    __stcg(T.pRR + geb, sq);
    __stcg(T.pAA + geb, sa);
    __stcg(T.pFlag + geb, bad);
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) numFinished = claimFinished(T, T.count1, first, end, finished);
  __syncthreads();
  const int nf = numFinished;
  if (nf > 0) __threadfence();
  for (int i = 0; i < nf; ++i) finalize1(T, finished[i], a, r, lambda, eps, projection);
}

__device__ void pass2Cta(const Tables& T, const float* a, const float* r, float* out, long long ebBegin,
                         long long ebEnd, long long cta) {
  __shared__ int finished[kEbPerCta];
  __shared__ int numFinished;
  const int quad = threadIdx.x >> 2, q = threadIdx.x & 3;
  const long long first = ebBegin + cta * kEbPerCta;
  const long long end = min(first + kEbPerCta, ebEnd);
  const long long geb = first + quad;
  const bool valid = geb < end;
  float sq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (valid) {
    const int t = T.ebTensor[geb];
    const TensorDesc td = T.tensors[t];
    const float c = __ldcg(T.coef + t);
    const long long e = geb - td.firstEb;
    const long long start = td.offset + e * kEbElems;
    const int len = static_cast<int>(min(static_cast<long long>(kEbElems), td.n - e * kEbElems));
    const float* pa = a + start;
    const float* pr = r + start;
    float* po = out + start;
    if (((reinterpret_cast<uintptr_t>(pa) | reinterpret_cast<uintptr_t>(pr) | reinterpret_cast<uintptr_t>(po)) &
         15) == 0)
      axpyQuad<true>(pa, pr, po, len, q, c, sq);
    else
      axpyQuad<false>(pa, pr, po, len, q, c, sq);
  }
  const double s = quadCombine(sq, q);
  if (valid && q == 0) __stcg(T.pSq + geb, s);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) numFinished = claimFinished(T, T.count2, first, end, finished);
  __syncthreads();
  const int nf = numFinished;
  if (nf > 0) __threadfence();
  for (int i = 0; i < nf; ++i) finalize2(T, finished[i]);
}

// Launch g: CTAs [0, cta2) run pass 2 of group g-1, the rest pass 1 of group g.
__global__ void __launch_bounds__(kThreads) stepKernel(Tables T, const float* a, const float* r, float* out,
                                                       long long eb2Begin, long long eb2End, long long cta2,
                                                       long long eb1Begin, long long eb1End, double lambda,
                                                       double eps, int projection) {
  const long long b = blockIdx.x;
  if (b < cta2)
    pass2Cta(T, a, r, out, eb2Begin, eb2End, b);
  else
    pass1Cta(T, a, r, eb1Begin, eb1End, b - cta2, lambda, eps, projection);
}

__global__ void fillKernel(float* p, long long n, float value) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) p[i] = value;
}

size_t alignUp(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

long long groupBudgetBytes(const DeviceContext& ctx) {
  if (const char* env = std::getenv("CRAFTGRAD_CUDA_GROUP_BYTES")) {
    const long long v = std::atoll(env);
    if (v > 0) return v;
  }
  const long long l2 = ctx.l2Bytes > 0 ? ctx.l2Bytes : 4 << 20;
  return std::max<long long>(1 << 20, l2 * 2 / 5);
}

}  // namespace

// ---------------------------------------------------------------- layout

class Layout {
 public:
  int device = 0;
  std::vector<int64_t> sizes;
  int64_t total = 0, numEb = 0, numChunks = 0;
  std::vector<std::pair<int64_t, int64_t>> groups;  // eb ranges
  void* block = nullptr;                             // all device tables and scratch
  size_t resetBytes = 0;                             // stats + counters, zeroed per call
  void* resetBase = nullptr;
  Tables tables{};
  DevStats* pinned = nullptr;
  std::mutex mu;

  ~Layout() {
    if (cudaSetDevice(device) != cudaSuccess) cudaGetLastError();
    freeDevice(block);
    if (pinned != nullptr && cudaFreeHost(pinned) != cudaSuccess) cudaGetLastError();
  }
};

int layoutDevice(const Layout& l) { return l.device; }
int64_t layoutTotal(const Layout& l) { return l.total; }
int64_t layoutCount(const Layout& l) { return static_cast<int64_t>(l.sizes.size()); }
const std::vector<int64_t>& layoutSizes(const Layout& l) { return l.sizes; }

std::shared_ptr<Layout> makeLayout(int device, const std::vector<int64_t>& sizes) {
  DeviceContext& ctx = deviceContext(device);
  auto l = std::make_shared<Layout>();
  l->device = device;
  l->sizes = sizes;
  const size_t k = sizes.size();
  if (k > static_cast<size_t>(0x7fffffff)) throw CudaError("craftgrad: too many tensors for the CUDA backend");
  std::vector<TensorDesc> desc(k);
  for (size_t i = 0; i < k; ++i) {
    const int64_t n = sizes[i];
    const int64_t nEb = (n + kEbElems - 1) / kEbElems;
    desc[i] = {l->total, n, l->numEb, nEb, l->numChunks};
    l->total += n;
    l->numEb += nEb;
    l->numChunks += (nEb + kEbPerChunk - 1) / kEbPerChunk;
  }
  std::vector<int> ebTensor(static_cast<size_t>(l->numEb));
  for (size_t i = 0; i < k; ++i)
    for (int64_t e = 0; e < desc[i].nEb; ++e) ebTensor[desc[i].firstEb + e] = static_cast<int>(i);

  // Groups of consecutive tensors whose a and r fit the L2 budget together.
  const int64_t budgetEb = std::max<int64_t>(1, groupBudgetBytes(ctx) / (8 * kEbElems));
  int64_t begin = 0, cur = 0;
  for (size_t i = 0; i < k; ++i) {
    if (desc[i].nEb == 0) continue;
    if (cur > 0 && cur + desc[i].nEb > budgetEb) {
      l->groups.emplace_back(begin, begin + cur);
      begin += cur;
      cur = 0;
    }
    cur += desc[i].nEb;
  }
  if (cur > 0) l->groups.emplace_back(begin, begin + cur);

  // One allocation for every table and all scratch.
  const size_t nEb = static_cast<size_t>(l->numEb), nCh = static_cast<size_t>(l->numChunks);
  size_t off = 0;
  auto take = [&](size_t bytes) {
    const size_t at = off;
    off = alignUp(off + bytes);
    return at;
  };
  const size_t oDesc = take(k * sizeof(TensorDesc));
  const size_t oEbT = take(nEb * sizeof(int));
  const size_t oDot = take(nEb * sizeof(double));
  const size_t oRR = take(nEb * sizeof(double));
  const size_t oAA = take(nEb * sizeof(double));
  const size_t oSq = take(nEb * sizeof(double));
  const size_t oFlag = take(nEb * sizeof(int));
  const size_t oChunks = take(nCh * sizeof(ChunkPart));
  const size_t oCoef = take(k * sizeof(float));
  const size_t oStats = take(k * sizeof(DevStats));  // stats and counters: contiguous, zeroed per call
  const size_t oCount = take(2 * k * sizeof(unsigned));
  l->resetBytes = off - oStats;
  if (k > 0) {
    l->block = mallocDevice(device, off, "cudaLayout");
    char* base = static_cast<char*>(l->block);
    Tables& T = l->tables;
    T.tensors = reinterpret_cast<const TensorDesc*>(base + oDesc);
    T.ebTensor = reinterpret_cast<const int*>(base + oEbT);
    T.pDot = reinterpret_cast<double*>(base + oDot);
    T.pRR = reinterpret_cast<double*>(base + oRR);
    T.pAA = reinterpret_cast<double*>(base + oAA);
    T.pSq = reinterpret_cast<double*>(base + oSq);
    T.pFlag = reinterpret_cast<int*>(base + oFlag);
    T.chunks = reinterpret_cast<ChunkPart*>(base + oChunks);
    T.coef = reinterpret_cast<float*>(base + oCoef);
    T.stats = reinterpret_cast<DevStats*>(base + oStats);
    T.count1 = reinterpret_cast<unsigned*>(base + oCount);
    T.count2 = T.count1 + k;
    l->resetBase = base + oStats;
    CG_CUDA(device, cudaMemcpyAsync(base + oDesc, desc.data(), k * sizeof(TensorDesc), cudaMemcpyHostToDevice,
                                    ctx.stream));
    if (nEb > 0)
      CG_CUDA(device, cudaMemcpyAsync(base + oEbT, ebTensor.data(), nEb * sizeof(int), cudaMemcpyHostToDevice,
                                      ctx.stream));
    CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
    void* pinned = nullptr;
    const cudaError_t err = cudaMallocHost(&pinned, k * sizeof(DevStats));
    if (err != cudaSuccess) throwCuda(err, "cudaMallocHost", device);
    l->pinned = static_cast<DevStats*>(pinned);
  }
  return l;
}

// ---------------------------------------------------------------- surgery

namespace {

// Enqueues the whole surgery and the copy of the statistics on ctx.stream (no sync).
void enqueue(DeviceContext& ctx, Layout& l, const float* a, const float* r, float* out, const SurgeryParams& p) {
  const int dev = l.device;
  CG_CUDA(dev, cudaMemsetAsync(l.resetBase, 0, l.resetBytes, ctx.stream));
  const size_t G = l.groups.size();
  for (size_t g = 0; g <= G; ++g) {
    long long b2 = 0, e2 = 0, b1 = 0, e1 = 0;
    if (g > 0) b2 = l.groups[g - 1].first, e2 = l.groups[g - 1].second;
    if (g < G) b1 = l.groups[g].first, e1 = l.groups[g].second;
    const long long cta2 = (e2 - b2 + kEbPerCta - 1) / kEbPerCta;
    const long long cta1 = (e1 - b1 + kEbPerCta - 1) / kEbPerCta;
    if (cta1 + cta2 == 0) continue;
    if (cta1 + cta2 > 0x7fffffffLL) throw CudaError("craftgrad: tensor group too large for one launch");
    stepKernel<<<static_cast<unsigned>(cta1 + cta2), kThreads, 0, ctx.stream>>>(
        l.tables, a, r, out, b2, e2, cta2, b1, e1, p.lambda, p.eps, p.projection ? 1 : 0);
    CG_CUDA(dev, cudaGetLastError());
  }
  CG_CUDA(dev, cudaMemcpyAsync(l.pinned, l.tables.stats, l.sizes.size() * sizeof(DevStats), cudaMemcpyDeviceToHost,
                               ctx.stream));
}

void collect(const Layout& l, const SurgeryParams& p, TensorStats* stats) {
  for (size_t i = 0; i < l.sizes.size(); ++i) {
    const DevStats& d = l.pinned[i];
    TensorStats& s = stats[i];
    s.dot = d.dot;
    s.rr = d.rr;
    s.aa = d.aa;
    s.outSq = d.outSq;
    s.conflict = d.conflict != 0;
    s.nonFinite = d.nonFinite != 0;
    // Zero-length tensors have no eb and are never finalized: c = λ, as on the CPU.
    s.coefficient = l.sizes[i] == 0 ? p.lambda : d.coef;
  }
}

}  // namespace

void surgery(Layout& l, const float* a, const float* r, float* out, const SurgeryParams& params,
             TensorStats* stats) {
  if (l.sizes.empty()) return;
  DeviceContext& ctx = deviceContext(l.device);
  std::lock_guard<std::mutex> lock(l.mu);
  enqueue(ctx, l, a, r, out, params);
  CG_CUDA(l.device, cudaStreamSynchronize(ctx.stream));
  collect(l, params, stats);
}

void surgeryHost(int device, const HostTensor* tensors, int64_t count, const SurgeryParams& params,
                 TensorStats* stats) {
  DeviceContext& ctx = deviceContext(device);
  std::lock_guard<std::mutex> stagingLock(ctx.stagingMutex);
  std::vector<int64_t> sizes(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) sizes[i] = tensors[i].n;
  if (!ctx.hostLayout || layoutSizes(*ctx.hostLayout) != sizes) {
    ctx.hostLayout.reset();
    ctx.hostLayout = makeLayout(device, sizes);
  }
  Layout& l = *ctx.hostLayout;
  if (count == 0) return;
  if (l.total > ctx.stagingCapacity) {
    freeDevice(ctx.staging);
    ctx.staging = nullptr;
    ctx.stagingCapacity = 0;
    ctx.staging = static_cast<float*>(
        mallocDevice(device, 3 * static_cast<size_t>(l.total) * sizeof(float), "device staging for host arrays"));
    ctx.stagingCapacity = l.total;
  }
  float* da = ctx.staging;
  float* dr = da + ctx.stagingCapacity;
  float* dout = dr + ctx.stagingCapacity;
  std::lock_guard<std::mutex> lock(l.mu);
  int64_t off = 0;
  for (int64_t i = 0; i < count; ++i) {
    const size_t bytes = static_cast<size_t>(tensors[i].n) * sizeof(float);
    if (bytes) {
      CG_CUDA(device, cudaMemcpyAsync(da + off, tensors[i].a, bytes, cudaMemcpyHostToDevice, ctx.stream));
      CG_CUDA(device, cudaMemcpyAsync(dr + off, tensors[i].r, bytes, cudaMemcpyHostToDevice, ctx.stream));
    }
    off += tensors[i].n;
  }
  enqueue(ctx, l, da, dr, dout, params);
  off = 0;
  for (int64_t i = 0; i < count; ++i) {
    const size_t bytes = static_cast<size_t>(tensors[i].n) * sizeof(float);
    if (bytes) CG_CUDA(device, cudaMemcpyAsync(tensors[i].out, dout + off, bytes, cudaMemcpyDeviceToHost, ctx.stream));
    off += tensors[i].n;
  }
  CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
  collect(l, params, stats);
}

void launchFill(DeviceContext& ctx, float* p, int64_t n, float value) {
  if (n <= 0) return;
  const long long blocks = std::min<long long>((n + 255) / 256, 65535LL * 8);
  fillKernel<<<static_cast<unsigned>(blocks), 256, 0, ctx.stream>>>(p, n, value);
  CG_CUDA(ctx.device, cudaGetLastError());
}

}  // namespace cuda
}  // namespace craftgrad
