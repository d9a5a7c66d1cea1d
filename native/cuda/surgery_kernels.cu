// The CUDA surgery: pass 1 (reductions), finalize, pass 2 (write + ‖out‖²) for many
// tensors per launch, following native/core/numerics.h exactly so that the results are
// the CPU backend's bits (and bit-identical run to run: no floating-point atomics).
//
// Work decomposition. A tensor is cut into chunks of kChunk = 65536 elements and those
// into element blocks ("eb") of kBlock = 1024, as on the CPU. One CTA of 256 threads owns
// one chunk (an entry of the chunk -> tensor table, built once per layout and cached on
// the device); four threads ("a quad") own one eb: thread q holds fp32 lanes 4q..4q+3
// and walks the eb's 64 rows of 16 in order, so each lane's sum is the CPU's sequential
// sum. With a 16-byte aligned tensor each row is one float4 load per thread (scalar
// loads otherwise, same arithmetic). The quad combines its 16 lanes in float64 with the
// CPU's tree (two shuffles); the CTA adds its ebs in order (the chunk's partial sums);
// the CTA that finishes a tensor's last chunk (an integer counter per tensor) adds the
// tensor's chunk partials in order and computes the coefficient. No floating-point
// atomics anywhere: the bits do not depend on scheduling.
//
// L2 reuse. Tensors are processed in groups of about 40% of the L2 cache
// (CRAFTGRAD_CUDA_GROUP_BYTES overrides it); launch g runs pass 2 of group g-1, whose a
// and r are still in L2, together with pass 1 of group g: groups + 1 launches per call,
// no host synchronisation until the statistics come back in one copy to pinned memory.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "cuda_layout.cuh"
#include "tuning.h"

namespace craftgrad {
namespace cuda {
namespace {

constexpr int kEbElems = 1024;         // == kBlock
constexpr int kEbPerChunk = 64;        // == kChunk / kBlock
constexpr int kThreads = 4 * kEbPerChunk;  // one CTA per chunk, one quad per eb
constexpr int kUnroll = 8;             // rows loaded ahead per thread
constexpr unsigned kFull = 0xffffffffu;
constexpr int kFillThreads = 256;

static_assert(kEbElems == kBlock && kEbPerChunk * kEbElems == kChunk, "numerics.h block sizes");


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


// Sums x[0..n) in order in float64, loading ahead in batches (the loads do not wait for
// the adds). x is read through L2 (written by other CTAs of this launch).
__device__ double sumInOrder(const double* x, long long n, long long stride) {
  double s = 0.0;
  constexpr int kBatch = 8;
  long long i = 0;
  for (; i + kBatch <= n; i += kBatch) {
    double v[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) v[j] = __ldcg(x + (i + j) * stride);
#pragma unroll
    for (int j = 0; j < kBatch; ++j) s = __dadd_rn(s, v[j]);
  }
  for (; i < n; ++i) s = __dadd_rn(s, __ldcg(x + i * stride));
  return s;
}

constexpr long long kPartStride = sizeof(ChunkPart) / sizeof(double);

// Pass 1 finalize of tensor t (one thread): chunk partials in order, the float64 fallback
// of the CPU, the coefficient.
__device__ void finalize1(const Tables& T, int t, const float* a, const float* r, double lambda, double eps,
                          int projection) {
  const TensorDesc td = T.tensors[t];
  const ChunkPart* cp = T.chunks + td.firstChunk;
  double sd = sumInOrder(&cp->dot, td.nChunks, kPartStride);
  double sq = sumInOrder(&cp->rr, td.nChunks, kPartStride);
  double sa = sumInOrder(&cp->aa, td.nChunks, kPartStride);
  int f = 0;
  for (long long c = 0; c < td.nChunks; ++c) f |= __ldcg(&cp[c].flag);
  if (!f && !(isfinite(sd) && isfinite(sq) && isfinite(sa))) {
    // Finite data whose fp32 products overflowed: float64 in element order, as the CPU
    // does (surgery_cpu.cc reduceFloat64). Rare (|x| > ~1.8e19), so one thread.
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

__device__ void pass1Cta(const Tables& T, const float* a, const float* r, long long gc, double lambda, double eps,
                         int projection) {
  __shared__ double ebDot[kEbPerChunk], ebRR[kEbPerChunk], ebAA[kEbPerChunk];
  __shared__ int ebBad[kEbPerChunk];
  const ChunkWork w = chunkWork(T, gc);
  const int quad = threadIdx.x >> 2, q = threadIdx.x & 3;
  const int nEb = static_cast<int>((w.len + kEbElems - 1) / kEbElems);
  const bool valid = quad < nEb;
  Acc1 s;
#pragma unroll
  for (int l = 0; l < 4; ++l) s.d[l] = s.q[l] = s.a[l] = 0.0f;
  s.f = 0.0f;
  if (valid) {
    const long long e = static_cast<long long>(quad) * kEbElems;
    const int len = static_cast<int>(min(static_cast<long long>(kEbElems), w.len - e));
    const float* pa = a + w.start + e;
    const float* pr = r + w.start + e;
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
    ebDot[quad] = sd;
    ebRR[quad] = sq;
    ebAA[quad] = sa;
    ebBad[quad] = bad;
  }
  __syncthreads();
  // The chunk's partials: its ebs in order (three threads, one quantity each).
  ChunkPart* part = T.chunks + gc;
  if (threadIdx.x < 4) {
    const double* src = threadIdx.x == 0 ? ebDot : threadIdx.x == 1 ? ebRR : ebAA;
    double acc = 0.0;
    int f = 0;
    for (int e = 0; e < nEb; ++e) {
      if (threadIdx.x < 3) acc = __dadd_rn(acc, src[e]);
      else f |= ebBad[e];
    }
    if (threadIdx.x == 0) __stcg(&part->dot, acc);
    else if (threadIdx.x == 1) __stcg(&part->rr, acc);
    else if (threadIdx.x == 2) __stcg(&part->aa, acc);
    else __stcg(&part->flag, f);
    __threadfence();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const TensorDesc td = T.tensors[w.tensor];
    if (atomicAdd(T.count1 + w.tensor, 1u) + 1u == static_cast<unsigned>(td.nChunks)) {
      __threadfence();
      finalize1(T, w.tensor, a, r, lambda, eps, projection);
    }
  }
}

__device__ void pass2Cta(const Tables& T, const float* a, const float* r, float* out, long long gc) {
  __shared__ double ebSq[kEbPerChunk];
  const ChunkWork w = chunkWork(T, gc);
  const int quad = threadIdx.x >> 2, q = threadIdx.x & 3;
  const int nEb = static_cast<int>((w.len + kEbElems - 1) / kEbElems);
  const bool valid = quad < nEb;
  float sq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (valid) {
    const float c = __ldcg(T.coef + w.tensor);
    const long long e = static_cast<long long>(quad) * kEbElems;
    const int len = static_cast<int>(min(static_cast<long long>(kEbElems), w.len - e));
    const float* pa = a + w.start + e;
    const float* pr = r + w.start + e;
    float* po = out + w.start + e;
    if (((reinterpret_cast<uintptr_t>(pa) | reinterpret_cast<uintptr_t>(pr) | reinterpret_cast<uintptr_t>(po)) &
         15) == 0)
      axpyQuad<true>(pa, pr, po, len, q, c, sq);
    else
      axpyQuad<false>(pa, pr, po, len, q, c, sq);
  }
  const double s = quadCombine(sq, q);
  if (valid && q == 0) ebSq[quad] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double acc = 0.0;
    for (int e = 0; e < nEb; ++e) acc = __dadd_rn(acc, ebSq[e]);
    __stcg(&T.chunks[gc].sq, acc);
    __threadfence();
    const TensorDesc td = T.tensors[w.tensor];
    if (atomicAdd(T.count2 + w.tensor, 1u) + 1u == static_cast<unsigned>(td.nChunks)) {
      __threadfence();
      T.stats[w.tensor].outSq = sumInOrder(&T.chunks[td.firstChunk].sq, td.nChunks, kPartStride);
    }
  }
}

// Launch g: CTAs [0, cta2) run pass 2 of the chunks of group g-1 (from chunk c2), the
// rest pass 1 of the chunks of group g (from chunk c1).
__global__ void __launch_bounds__(kThreads) stepKernel(Tables T, const float* a, const float* r, float* out,
                                                       long long c2, long long cta2, long long c1, double lambda,
                                                       double eps, int projection) {
  const long long b = blockIdx.x;
  if (b < cta2)
    pass2Cta(T, a, r, out, c2 + b);
  else
    pass1Cta(T, a, r, c1 + (b - cta2), lambda, eps, projection);
}

__global__ void __launch_bounds__(kFillThreads) fillKernel(float* p, long long n, float value) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) p[i] = value;
}

size_t alignUp(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }

long long groupBudgetBytes(const DeviceContext& ctx) {
  if (tuning().groupBytes > 0) return tuning().groupBytes;  // CRAFTGRAD_CUDA_GROUP_BYTES
  const long long l2 = ctx.l2Bytes > 0 ? ctx.l2Bytes : 4 << 20;
  return std::max<long long>(1 << 20, l2 * 2 / 5);
}

}  // namespace

// ---------------------------------------------------------------- layout


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
    const int64_t nChunks = (n + kChunk - 1) / kChunk;
    desc[i] = {l->total, n, l->numChunks, nChunks};
    l->total += n;
    l->numChunks += nChunks;
  }
  std::vector<int> chunkTensor(static_cast<size_t>(l->numChunks));
  for (size_t i = 0; i < k; ++i)
    for (int64_t c = 0; c < desc[i].nChunks; ++c) chunkTensor[desc[i].firstChunk + c] = static_cast<int>(i);

  // Groups of consecutive tensors whose a and r fit the L2 budget together (a tensor
  // larger than the budget is a group of its own).
  const int64_t budgetChunks = std::max<int64_t>(1, groupBudgetBytes(ctx) / (8 * kChunk));
  int64_t begin = 0, cur = 0;
  for (size_t i = 0; i < k; ++i) {
    if (desc[i].nChunks == 0) continue;
    if (cur > 0 && cur + desc[i].nChunks > budgetChunks) {
      l->groups.emplace_back(begin, begin + cur);
      begin += cur;
      cur = 0;
    }
    cur += desc[i].nChunks;
  }
  if (cur > 0) l->groups.emplace_back(begin, begin + cur);

  // One allocation for every table and all scratch.
  const size_t nCh = static_cast<size_t>(l->numChunks);
  size_t off = 0;
  auto take = [&](size_t bytes) {
    const size_t at = off;
    off = alignUp(off + bytes);
    return at;
  };
  const size_t oDesc = take(k * sizeof(TensorDesc));
  const size_t oChunkT = take(nCh * sizeof(int));
  const size_t oChunks = take(nCh * sizeof(ChunkPart));
  const size_t oCoef = take(k * sizeof(float));
  const size_t oStats = take(k * sizeof(DevStats));  // stats and counters: contiguous, zeroed per call
  take(2 * k * sizeof(unsigned));
  const size_t oCount = oStats + alignUp(k * sizeof(DevStats));
  l->resetBytes = off - oStats;
  if (k > 0) {
    l->block = mallocDevice(device, off, "cudaLayout");
    char* base = static_cast<char*>(l->block);
    Tables& T = l->tables;
    T.tensors = reinterpret_cast<const TensorDesc*>(base + oDesc);
    T.chunkTensor = reinterpret_cast<const int*>(base + oChunkT);
    T.chunks = reinterpret_cast<ChunkPart*>(base + oChunks);
    T.coef = reinterpret_cast<float*>(base + oCoef);
    T.stats = reinterpret_cast<DevStats*>(base + oStats);
    T.count1 = reinterpret_cast<unsigned*>(base + oCount);
    T.count2 = T.count1 + k;
    l->resetBase = base + oStats;
    CG_CUDA(device, cudaMemcpyAsync(base + oDesc, desc.data(), k * sizeof(TensorDesc), cudaMemcpyHostToDevice,
                                    ctx.stream));
    if (nCh > 0)
      CG_CUDA(device, cudaMemcpyAsync(base + oChunkT, chunkTensor.data(), nCh * sizeof(int), cudaMemcpyHostToDevice,
                                      ctx.stream));
    CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
    // Pinned: the statistics (k DevStats) and the fused optimizer step's coefficients (k floats).
    void* pinned = mallocPinned(device, k * sizeof(DevStats) + k * sizeof(float), "layout statistics");
    l->pinned = static_cast<DevStats*>(pinned);
    l->pinnedCoef = reinterpret_cast<float*>(l->pinned + k);
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
    long long c2 = 0, cta2 = 0, c1 = 0, cta1 = 0;
    if (g > 0) c2 = l.groups[g - 1].first, cta2 = l.groups[g - 1].second - c2;
    if (g < G) c1 = l.groups[g].first, cta1 = l.groups[g].second - c1;
    if (cta1 + cta2 == 0) continue;
    if (cta1 + cta2 > 0x7fffffffLL) throw CudaError("craftgrad: tensor group too large for one launch");
    stepKernel<<<static_cast<unsigned>(cta1 + cta2), kThreads, 0, ctx.stream>>>(
        l.tables, a, r, out, c2, cta2, c1, p.lambda, p.eps, p.projection ? 1 : 0);
    CG_CUDA(dev, cudaGetLastError());
  }
  CG_CUDA(dev, cudaMemcpyAsync(l.pinned, l.tables.stats, l.sizes.size() * sizeof(DevStats), cudaMemcpyDeviceToHost,
                               ctx.stream));
}

// Pass 1 alone (craftReduce): every chunk in one launch (no pass 2 follows, so there is
// nothing to keep in L2), then the copy of the statistics.
void enqueueReduce(DeviceContext& ctx, Layout& l, const float* a, const float* r, const SurgeryParams& p) {
  const int dev = l.device;
  CG_CUDA(dev, cudaMemsetAsync(l.resetBase, 0, l.resetBytes, ctx.stream));
  if (l.numChunks > 0) {
    if (l.numChunks > 0x7fffffffLL) throw CudaError("craftgrad: too many chunks for one launch");
    stepKernel<<<static_cast<unsigned>(l.numChunks), kThreads, 0, ctx.stream>>>(l.tables, a, r, nullptr, 0, 0, 0,
                                                                               p.lambda, p.eps, p.projection ? 1 : 0);
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
    // Zero-length tensors have no chunk and are never finalized: c = λ, as on the CPU.
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

void reduce(Layout& l, const float* a, const float* r, ReduceSums* sums) {
  if (l.sizes.empty()) return;
  DeviceContext& ctx = deviceContext(l.device);
  std::lock_guard<std::mutex> lock(l.mu);
  SurgeryParams p;  // the device's coefficients are not used: the caller derives them from the sums
  enqueueReduce(ctx, l, a, r, p);
  CG_CUDA(l.device, cudaStreamSynchronize(ctx.stream));
  for (size_t i = 0; i < l.sizes.size(); ++i) {
    const DevStats& d = l.pinned[i];
    sums[i].dot = d.dot;
    sums[i].rr = d.rr;
    sums[i].aa = d.aa;
    sums[i].nonFinite = d.nonFinite != 0;
  }
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
    // A multiple of 4 floats, so that r and out start 16-byte aligned like a and take the
    // kernels' vector path.
    const int64_t capacity = (l.total + 3) / 4 * 4;
    freeDevice(ctx.staging);
    ctx.staging = nullptr;
    ctx.stagingCapacity = 0;
    ctx.staging = static_cast<float*>(
        mallocDevice(device, 3 * static_cast<size_t>(capacity) * sizeof(float), "device staging for host arrays"));
    ctx.stagingCapacity = capacity;
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
  const long long blocks = std::min<long long>((n + kFillThreads - 1) / kFillThreads, 65535LL * 8);
  fillKernel<<<static_cast<unsigned>(blocks), kFillThreads, 0, ctx.stream>>>(p, n, value);
  CG_CUDA(ctx.device, cudaGetLastError());
}

}  // namespace cuda
}  // namespace craftgrad
