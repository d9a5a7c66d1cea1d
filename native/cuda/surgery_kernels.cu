// The CUDA surgery: pass 1 (reductions), finalize, pass 2 (write + ‖out‖²) for many
// tensors per launch, following native/core/numerics.h exactly so that the results are
// the CPU backend's bits (and bit-identical run to run: no floating-point atomics).
//
// Work decomposition. A tensor is cut into chunks of kChunk = 65536 elements and those
// into element blocks ("eb") of kBlock = 1024, as on the CPU. kSplit = 4 CTAs of 64
// threads share one chunk (an entry of the chunk -> tensor table, built once per layout
// and cached on the device), 16 ebs each; four threads ("a quad") own one eb: thread q
// holds fp32 lanes 4q..4q+3 and walks the eb's 64 rows of 16 in order, so each lane's sum
// is the CPU's sequential sum. With a 16-byte aligned tensor each row is one float4 load
// per thread (scalar loads otherwise, same arithmetic). The quad combines its 16 lanes in
// float64 with the CPU's tree (two shuffles) and writes the eb's sums; the chunk's last CTA
// (an integer ticket per chunk) adds the chunk's ebs in order, and the CTA that finishes a
// tensor's last chunk (a ticket per tensor) adds the tensor's chunk partials in order and
// computes the coefficient, both through shared memory. No floating-point atomics
// anywhere: the bits do not depend on scheduling. An eb whose fp32 lanes overflow on
// finite data is summed again in float64 by its quad (numerics.h).
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
constexpr int kSplit = 4;              // CTAs per chunk
constexpr int kEbPerCta = kEbPerChunk / kSplit;
constexpr int kThreads = 4 * kEbPerCta;  // one quad per eb
constexpr int kUnroll = 8;             // rows loaded ahead per thread
constexpr unsigned kFull = 0xffffffffu;
constexpr int kFillThreads = 256;

static_assert(kEbElems == kBlock && kEbPerChunk * kEbElems == kChunk, "numerics.h block sizes");
static_assert(kThreads >= 4 && kEbPerCta * kSplit == kEbPerChunk, "sumParts1 needs 4 threads; parts cover a chunk");


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
template <typename T>
__device__ __forceinline__ double quadCombine(const T (&v)[4], int q) {
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


// Pass 1 of one eb in float64, thread q of its quad: the fallback for a block whose fp32
// lanes overflowed on finite data (|x| > ~1.8e19). The same lanes in the same order, with
// float64 accumulators (a product of two floats is exact in float64), so the CPU's
// fallback (surgery_cpu.cc reduceBlockFloat64) gives the same bits. Rare: scalar loads.
__device__ void reduceQuad64(const float* a, const float* r, int len, int q, double (&d)[4], double (&rr)[4],
                             double (&aa)[4]) {
#pragma unroll 1
  for (int row = 0; row * 16 + 4 * q < len; ++row) {
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int idx = row * 16 + 4 * q + l;
      if (idx < len) {
        const double x = a[idx], y = r[idx];
        d[l] = __dadd_rn(d[l], __dmul_rn(x, y));
        rr[l] = __dadd_rn(rr[l], __dmul_rn(y, y));
        aa[l] = __dadd_rn(aa[l], __dmul_rn(x, x));
      }
    }
  }
}

// The partial sums a CTA adds in order, loaded cooperatively into shared memory.
struct Sums1 {
  double dot, rr, aa;
  int flag;
};

// Adds the pass-1 parts src[0..n) in order (float64, from 0.0; flags ORed): tiles of
// kThreads parts are loaded by every thread into shared memory, then threads 0..2 add one
// quantity each and thread 3 ORs the flags. Every thread of the CTA must call it; the
// result is returned to all of them. src was written by other CTAs: read through L2.
__device__ Sums1 sumParts1(const ChunkPart* src, long long n) {
  __shared__ double tile[3][kThreads];
  __shared__ int tileFlag[kThreads];
  __shared__ Sums1 result;
  const int t = threadIdx.x;
  double acc = 0.0;
  int flag = 0;
  for (long long base = 0; base < n; base += kThreads) {
    const int m = static_cast<int>(min(static_cast<long long>(kThreads), n - base));
    if (t < m) {
      const ChunkPart* p = src + base + t;
      tile[0][t] = __ldcg(&p->dot);
      tile[1][t] = __ldcg(&p->rr);
      tile[2][t] = __ldcg(&p->aa);
      tileFlag[t] = __ldcg(&p->flag);
    }
    __syncthreads();
    if (t < 3) {
      for (int i = 0; i < m; ++i) acc = __dadd_rn(acc, tile[t][i]);
    } else if (t == 3) {
      for (int i = 0; i < m; ++i) flag |= tileFlag[i];
    }
    __syncthreads();
  }
  if (t == 0) result.dot = acc;
  else if (t == 1) result.rr = acc;
  else if (t == 2) result.aa = acc;
  else if (t == 3) result.flag = flag;
  __syncthreads();
  const Sums1 out = result;
  __syncthreads();  // the next call may overwrite `result`
  return out;
}

// The same for pass 2's ‖out‖² parts (thread 0 adds); the result is valid in thread 0.
__device__ double sumPartsSq(const ChunkPart* src, long long n) {
  __shared__ double tile[kThreads];
  const int t = threadIdx.x;
  double acc = 0.0;
  for (long long base = 0; base < n; base += kThreads) {
    const int m = static_cast<int>(min(static_cast<long long>(kThreads), n - base));
    if (t < m) tile[t] = __ldcg(&src[base + t].sq);
    __syncthreads();
    if (t == 0)
      for (int i = 0; i < m; ++i) acc = __dadd_rn(acc, tile[i]);
    __syncthreads();
  }
  return acc;
}

// True in every thread of the CTA that takes the last of `of` tickets at *counter. Every
// thread must call it after writing what the last CTA will read: the fence makes those
// writes visible device-wide before the ticket is taken (the threadFenceReduction pattern).
__device__ bool lastTicket(unsigned* counter, unsigned of) {
  __shared__ int last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(counter, 1u) + 1u == of ? 1 : 0;
  __syncthreads();
  const bool isLast = last != 0;
  if (isLast) __threadfence();  // order the reads of the other CTAs' parts after the ticket
  return isLast;
}

// Pass 1 finalize of tensor t (thread 0): the coefficient from the tensor's sums.
__device__ void finalize1(const Tables& T, int t, const Sums1& s, double lambda, double eps, int projection) {
  const bool conflict = projection && s.dot < 0.0;
  const double coef = __dsub_rn(lambda, conflict ? __ddiv_rn(s.dot, __dadd_rn(s.rr, eps)) : 0.0);
  DevStats& st = T.stats[t];
  st.dot = s.dot;
  st.rr = s.rr;
  st.aa = s.aa;
  st.coef = coef;
  st.conflict = conflict ? 1 : 0;
  st.nonFinite = s.flag ? 1 : 0;
  T.coef[t] = __double2float_rn(coef);
}

// CTA `cta` of pass 1: part cta % kSplit (kEbPerCta ebs) of chunk cta / kSplit.
__device__ void pass1Cta(const Tables& T, const float* a, const float* r, long long cta, double lambda, double eps,
                         int projection) {
  const long long gc = cta / kSplit;
  const int part = static_cast<int>(cta % kSplit);
  const ChunkWork w = chunkWork(T, gc);
  const int quad = threadIdx.x >> 2, q = threadIdx.x & 3;
  const int eb = part * kEbPerCta + quad;
  const int nEb = static_cast<int>((w.len + kEbElems - 1) / kEbElems);
  const bool valid = eb < nEb;
  const long long e = static_cast<long long>(eb) * kEbElems;
  const int len = valid ? static_cast<int>(min(static_cast<long long>(kEbElems), w.len - e)) : 0;
  const float* pa = a + w.start + e;
  const float* pr = r + w.start + e;
  Acc1 s;
#pragma unroll
  for (int l = 0; l < 4; ++l) s.d[l] = s.q[l] = s.a[l] = 0.0f;
  s.f = 0.0f;
  if (valid) {
    if (((reinterpret_cast<uintptr_t>(pa) | reinterpret_cast<uintptr_t>(pr)) & 15) == 0)
      reduceQuad<true>(pa, pr, len, q, s);
    else
      reduceQuad<false>(pa, pr, len, q, s);
  }
  double sd = quadCombine(s.d, q);
  double sq = quadCombine(s.q, q);
  double sa = quadCombine(s.a, q);
  int bad = (s.f != 0.0f) ? 1 : 0;  // NaN != 0 is true
  bad |= __shfl_down_sync(kFull, bad, 2);
  bad |= __shfl_down_sync(kFull, bad, 1);
  // Finite data whose fp32 lanes overflowed: this eb again in float64 (numerics.h). The
  // decision is the quad leader's, shared with its quad; the shuffles need the whole warp.
  int need = (valid && q == 0 && !bad && !(isfinite(sd) && isfinite(sq) && isfinite(sa))) ? 1 : 0;
  need = __shfl_sync(kFull, need, (threadIdx.x & 31) & ~3);
  int anyNeed = need;
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) anyNeed |= __shfl_xor_sync(kFull, anyNeed, m);
  if (anyNeed) {
    double d[4] = {0.0, 0.0, 0.0, 0.0}, rr[4] = {0.0, 0.0, 0.0, 0.0}, aa[4] = {0.0, 0.0, 0.0, 0.0};
    if (need) reduceQuad64(pa, pr, len, q, d, rr, aa);
    const double fd = quadCombine(d, q), fq = quadCombine(rr, q), fa = quadCombine(aa, q);
    if (need) sd = fd, sq = fq, sa = fa;
  }
  if (valid && q == 0) {
    ChunkPart* p = T.blocks + gc * kEbPerChunk + eb;
    __stcg(&p->dot, sd);
    __stcg(&p->rr, sq);
    __stcg(&p->aa, sa);
    __stcg(&p->flag, bad);
  }
  // The chunk's last CTA: its ebs in order, then, for the tensor's last chunk, its chunks.
  if (!lastTicket(T.chunkCount1 + gc, kSplit)) return;
  const Sums1 c = sumParts1(T.blocks + gc * kEbPerChunk, nEb);
  ChunkPart* cp = T.chunks + gc;
  if (threadIdx.x == 0) {
    __stcg(&cp->dot, c.dot);
    __stcg(&cp->rr, c.rr);
    __stcg(&cp->aa, c.aa);
    __stcg(&cp->flag, c.flag);
  }
  const TensorDesc td = T.tensors[w.tensor];
  if (!lastTicket(T.count1 + w.tensor, static_cast<unsigned>(td.nChunks))) return;
  const Sums1 t = sumParts1(T.chunks + td.firstChunk, td.nChunks);
  if (threadIdx.x == 0) finalize1(T, w.tensor, t, lambda, eps, projection);
}

// CTA `cta` of pass 2: out = fma(c, r, a) over its ebs, ‖out‖² summed like pass 1's sums.
__device__ void pass2Cta(const Tables& T, const float* a, const float* r, float* out, long long cta) {
  const long long gc = cta / kSplit;
  const int part = static_cast<int>(cta % kSplit);
  const ChunkWork w = chunkWork(T, gc);
  const int quad = threadIdx.x >> 2, q = threadIdx.x & 3;
  const int eb = part * kEbPerCta + quad;
  const int nEb = static_cast<int>((w.len + kEbElems - 1) / kEbElems);
  const bool valid = eb < nEb;
  float sq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (valid) {
    const float c = __ldcg(T.coef + w.tensor);
    const long long e = static_cast<long long>(eb) * kEbElems;
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
  if (valid && q == 0) __stcg(&T.blocks[gc * kEbPerChunk + eb].sq, s);
  if (!lastTicket(T.chunkCount2 + gc, kSplit)) return;
  const double c = sumPartsSq(T.blocks + gc * kEbPerChunk, nEb);
  if (threadIdx.x == 0) __stcg(&T.chunks[gc].sq, c);
  const TensorDesc td = T.tensors[w.tensor];
  if (!lastTicket(T.count2 + w.tensor, static_cast<unsigned>(td.nChunks))) return;
  const double t = sumPartsSq(T.chunks + td.firstChunk, td.nChunks);
  if (threadIdx.x == 0) T.stats[w.tensor].outSq = t;
}

// Launch g: CTAs [0, cta2) run pass 2 of the chunks of group g-1 (from chunk c2), the
// rest pass 1 of the chunks of group g (from chunk c1); kSplit CTAs per chunk. At least 8
// CTAs per SM (the 512 threads of the former 2 CTAs of 256): under ptxas's own register
// choice (80) the overflow fallback spilled 8 bytes; with this bound it takes 127, no spill.
__global__ void __launch_bounds__(kThreads, 8) stepKernel(Tables T, const float* a, const float* r, float* out,
                                                       long long c2, long long cta2, long long c1, double lambda,
                                                       double eps, int projection) {
  const long long b = blockIdx.x;
  if (b < cta2)
    pass2Cta(T, a, r, out, c2 * kSplit + b);
  else
    pass1Cta(T, a, r, c1 * kSplit + (b - cta2), lambda, eps, projection);
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
  const size_t oBlocks = take(nCh * kEbPerChunk * sizeof(ChunkPart));
  const size_t oCoef = take(k * sizeof(float));
  const size_t oStats = take(k * sizeof(DevStats));  // stats and counters: contiguous, zeroed per call
  take((2 * k + 2 * nCh) * sizeof(unsigned));
  const size_t oCount = oStats + alignUp(k * sizeof(DevStats));
  l->resetBytes = off - oStats;
  if (k > 0) {
    l->block = mallocDevice(device, off, "cudaLayout");
    char* base = static_cast<char*>(l->block);
    Tables& T = l->tables;
    T.tensors = reinterpret_cast<const TensorDesc*>(base + oDesc);
    T.chunkTensor = reinterpret_cast<const int*>(base + oChunkT);
    T.chunks = reinterpret_cast<ChunkPart*>(base + oChunks);
    T.blocks = reinterpret_cast<ChunkPart*>(base + oBlocks);
    T.coef = reinterpret_cast<float*>(base + oCoef);
    T.stats = reinterpret_cast<DevStats*>(base + oStats);
    T.count1 = reinterpret_cast<unsigned*>(base + oCount);
    T.count2 = T.count1 + k;
    T.chunkCount1 = T.count2 + k;
    T.chunkCount2 = T.chunkCount1 + nCh;
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
    if (g > 0) c2 = l.groups[g - 1].first, cta2 = (l.groups[g - 1].second - c2) * kSplit;
    if (g < G) c1 = l.groups[g].first, cta1 = (l.groups[g].second - c1) * kSplit;
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
    if (l.numChunks * kSplit > 0x7fffffffLL) throw CudaError("craftgrad: too many chunks for one launch");
    stepKernel<<<static_cast<unsigned>(l.numChunks * kSplit), kThreads, 0, ctx.stream>>>(l.tables, a, r, nullptr, 0, 0, 0,
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

namespace {

// The pinned host staging of host-array surgery (3 arrays of at least n floats), grown when
// needed and kept like the device staging; nullptr when pinned memory cannot be had (the
// caller then copies from pageable memory, as before).
float* pinnedStaging(DeviceContext& ctx, int64_t n) {
  if (n > ctx.pinnedCapacity) {
    releasePinned(ctx.device, ctx.pinnedStaging);
    ctx.pinnedStaging = nullptr;
    ctx.pinnedCapacity = 0;
    const int64_t capacity = (n + 3) / 4 * 4;  // each array 16-byte aligned
    try {
      ctx.pinnedStaging = static_cast<float*>(
          mallocPinned(ctx.device, 3 * static_cast<size_t>(capacity) * sizeof(float), "pinned staging for host arrays"));
    } catch (const CudaOutOfMemory&) {
      return nullptr;
    }
    ctx.pinnedCapacity = capacity;
  }
  return ctx.pinnedStaging;
}

}  // namespace

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
  float* host = pinnedStaging(ctx, l.total);
  if (host == nullptr) {  // no pinned memory to spare: one pageable copy per tensor
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
      if (bytes)
        CG_CUDA(device, cudaMemcpyAsync(tensors[i].out, dout + off, bytes, cudaMemcpyDeviceToHost, ctx.stream));
      off += tensors[i].n;
    }
    CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
    collect(l, params, stats);
    return;
  }
  // Packed into pinned memory on the CPU, then one DMA copy per array each way (a pageable
  // copy per tensor is staged by the driver through its own small pinned buffer, and
  // waits for it, tensor by tensor).
  float* ha = host;
  float* hr = ha + ctx.pinnedCapacity;
  float* hout = hr + ctx.pinnedCapacity;
  int64_t off = 0;
  for (int64_t i = 0; i < count; ++i) {
    const size_t bytes = static_cast<size_t>(tensors[i].n) * sizeof(float);
    if (bytes) {
      std::memcpy(ha + off, tensors[i].a, bytes);
      std::memcpy(hr + off, tensors[i].r, bytes);
    }
    off += tensors[i].n;
  }
  const size_t total = static_cast<size_t>(l.total) * sizeof(float);
  if (total) {
    CG_CUDA(device, cudaMemcpyAsync(da, ha, total, cudaMemcpyHostToDevice, ctx.stream));
    CG_CUDA(device, cudaMemcpyAsync(dr, hr, total, cudaMemcpyHostToDevice, ctx.stream));
  }
  enqueue(ctx, l, da, dr, dout, params);
  if (total) CG_CUDA(device, cudaMemcpyAsync(hout, dout, total, cudaMemcpyDeviceToHost, ctx.stream));
  CG_CUDA(device, cudaStreamSynchronize(ctx.stream));
  off = 0;
  for (int64_t i = 0; i < count; ++i) {
    const size_t bytes = static_cast<size_t>(tensors[i].n) * sizeof(float);
    if (bytes) std::memcpy(tensors[i].out, hout + off, bytes);
    off += tensors[i].n;
  }
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
