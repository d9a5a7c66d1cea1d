#include "surgery_cpu.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "cpu_features.h"
#include "cpu_schedule.h"

namespace craftgrad {
namespace {

// Outputs at least this large skip the cache (streaming stores) when they alias no input:
// they would not be read again before being evicted, and a normal store first reads
// every destination line. Smaller ones stay cached for whoever reads them next.
constexpr int64_t kStreamMinElements = 1 << 18;

using AxpyFn = double (*)(const float*, const float*, float*, int64_t, float);

AxpyFn chooseAxpy(const KernelTable& k, const HostTensor& t) {
  const bool aliased = t.out == t.a || t.out == t.r;
  return (k.axpyStream && !aliased && t.n >= kStreamMinElements) ? k.axpyStream : k.axpy;
}

void addChunk(ReduceSums& s, const ChunkSums& c) {
  s.dot += c.dot;
  s.rr += c.rr;
  s.aa += c.aa;
  s.nonFinite = s.nonFinite || c.nonFinite != 0;
}

// The overflow fallback (numerics.h): a block whose fp32 lanes overflowed on finite data
// (|x| > ~1.8e19) is summed again in float64: the same 16 lanes in the same order with
// float64 accumulators (a product of two floats is exact in float64), combined by the same
// tree. The CUDA backend does the same per block, so both give these bits.
void reduceBlockFloat64(const float* a, const float* r, int64_t len, ChunkSums& out) {
  double ld[kLanes] = {}, lq[kLanes] = {}, la[kLanes] = {};
  for (int64_t i = 0; i < len; ++i) {
    const int j = static_cast<int>(i % kLanes);
    const double x = a[i], y = r[i];
    ld[j] += x * y;
    lq[j] += y * y;
    la[j] += x * x;
  }
  out.dot = combineLanes64(ld);
  out.rr = combineLanes64(lq);
  out.aa = combineLanes64(la);
}

// Chunk c of t block by block with the fallback: each block reduced by the kernel (a
// chunk of one block gives that block's sum exactly as the chunk reduction adds it), an
// overflowed one again in float64, blocks added in order as the kernel adds them.
ChunkSums reduceChunkBlocked(const KernelTable& k, const HostTensor& t, int64_t c) {
  const int64_t start = c * kChunk, len = chunkLength(t.n, c);
  ChunkSums cs{0.0, 0.0, 0.0, 0};
  for (int64_t b = 0; b < len; b += kBlock) {
    const float* a = t.a + start + b;
    const float* r = t.r + start + b;
    const int64_t n = std::min<int64_t>(kBlock, len - b);
    ChunkSums bs;
    k.reduce(a, r, n, &bs);
    if (!bs.nonFinite && !(std::isfinite(bs.dot) && std::isfinite(bs.rr) && std::isfinite(bs.aa)))
      reduceBlockFloat64(a, r, n, bs);
    cs.dot += bs.dot;
    cs.rr += bs.rr;
    cs.aa += bs.aa;
    cs.nonFinite = cs.nonFinite || bs.nonFinite;
  }
  return cs;
}

// Non-finite sums: some block overflowed on finite data, or the data is not finite (then
// the flagged blocks keep the sums non-finite, and finite blocks that overflowed are still
// recomputed, as the GPU does it per block). Chunks in parallel when `parallel` (a fixed
// decomposition: the same bits for any thread count), summed in chunk order.
void finishReduction(const KernelTable& k, const HostTensor& t, ReduceSums& s, bool parallel) {
  if (std::isfinite(s.dot) && std::isfinite(s.rr) && std::isfinite(s.aa)) return;
  const int64_t chunks = chunkCount(t.n);
  std::vector<ChunkSums> part(static_cast<size_t>(chunks));
  if (parallel) parallelFor(chunks, 1, [&](int64_t c) { part[c] = reduceChunkBlocked(k, t, c); });
  else for (int64_t c = 0; c < chunks; ++c) part[c] = reduceChunkBlocked(k, t, c);
  s = ReduceSums();
  for (int64_t c = 0; c < chunks; ++c) addChunk(s, part[c]);
}

void recordStats(const ReduceSums& s, double coefficient, bool conflict, double outSq,
                 TensorStats& st) {
  st.dot = s.dot;
  st.rr = s.rr;
  st.aa = s.aa;
  st.coefficient = coefficient;
  st.conflict = conflict;
  st.nonFinite = s.nonFinite;
  st.outSq = outSq;
}

// One tensor on one thread: reduce chunk by chunk, then write chunk by chunk.
void processWhole(const KernelTable& k, const HostTensor& t, const SurgeryParams& p,
                  TensorStats& st) {
  const ReduceSums s = reduceTensorWhole(k, t);
  bool conflict;
  const double coef = surgeryCoefficient(s, p, &conflict);
  const float cf = static_cast<float>(coef);
  double outSq = 0.0;
  const int64_t chunks = chunkCount(t.n);
  const AxpyFn axpy = chooseAxpy(k, t);
  for (int64_t c = 0; c < chunks; ++c)
    outSq += axpy(t.a + c * kChunk, t.r + c * kChunk, t.out + c * kChunk, chunkLength(t.n, c), cf);
  recordStats(s, coef, conflict, outSq, st);
}

// One huge tensor with every thread: reduce cooperatively, then write cooperatively, the
// per-chunk ‖out‖² partials summed in chunk order (the order processWhole uses).
void processCooperative(const KernelTable& k, const HostTensor& t, const SurgeryParams& p,
                        TensorStats& st) {
  const ReduceSums s = reduceTensorCooperative(k, t);
  bool conflict;
  const double coef = surgeryCoefficient(s, p, &conflict);
  const float cf = static_cast<float>(coef);
  const int64_t chunks = chunkCount(t.n);
  thread_local std::vector<double> outSqPartials;
  if (static_cast<int64_t>(outSqPartials.size()) < chunks) outSqPartials.resize(chunks);
  double* sq = outSqPartials.data();
  const AxpyFn axpy = chooseAxpy(k, t);
  parallelFor(chunks, 1, [&](int64_t c) {
    sq[c] = axpy(t.a + c * kChunk, t.r + c * kChunk, t.out + c * kChunk, chunkLength(t.n, c), cf);
  });
  double outSq = 0.0;
  for (int64_t c = 0; c < chunks; ++c) outSq += sq[c];
  recordStats(s, coef, conflict, outSq, st);
}

}  // namespace

ReduceSums reduceTensorWhole(const KernelTable& k, const HostTensor& t) {
  ReduceSums s;
  const int64_t chunks = chunkCount(t.n);
  for (int64_t c = 0; c < chunks; ++c) {
    ChunkSums cs;
    k.reduce(t.a + c * kChunk, t.r + c * kChunk, chunkLength(t.n, c), &cs);
    addChunk(s, cs);
  }
  finishReduction(k, t, s, false);
  return s;
}

// Chunks are reduced in parallel into per-chunk partials that are then summed in chunk
// order (the same order reduceTensorWhole uses).
ReduceSums reduceTensorCooperative(const KernelTable& k, const HostTensor& t) {
  const int64_t chunks = chunkCount(t.n);
  // Grows to the largest tensor seen on this thread, then is reused: no per-call
  // allocation proportional to the data once warm.
  thread_local std::vector<ChunkSums> partials;
  if (static_cast<int64_t>(partials.size()) < chunks) partials.resize(chunks);
  ChunkSums* part = partials.data();
  parallelFor(chunks, 1, [&](int64_t c) {
    k.reduce(t.a + c * kChunk, t.r + c * kChunk, chunkLength(t.n, c), &part[c]);
  });
  ReduceSums s;
  for (int64_t c = 0; c < chunks; ++c) addChunk(s, part[c]);
  finishReduction(k, t, s, true);
  return s;
}

void reduceAllCpu(const HostTensor* tensors, int64_t count, ReduceSums* sums) {
  const KernelTable& k = *cpuDispatch().kernels;
  forEachTensor(
      count, [&](int64_t i) { return tensors[i].n; },
      [&](int64_t i) { sums[i] = reduceTensorWhole(k, tensors[i]); },
      [&](int64_t i) { sums[i] = reduceTensorCooperative(k, tensors[i]); });
}

void surgeryCpu(const HostTensor* tensors, int64_t count, const SurgeryParams& params,
                TensorStats* stats) {
  static_assert(kBlock == 1024, "kernels_body.inc hard-codes the block size");
  const KernelTable& k = *cpuDispatch().kernels;
  forEachTensor(
      count, [&](int64_t i) { return tensors[i].n; },
      [&](int64_t i) { processWhole(k, tensors[i], params, stats[i]); },
      [&](int64_t i) { processCooperative(k, tensors[i], params, stats[i]); });
}

}  // namespace craftgrad
