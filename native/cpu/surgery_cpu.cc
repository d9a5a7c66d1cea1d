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

// Finite data whose fp32 products overflowed (|x| > ~1.8e19): recompute in float64 so a
// finite input never yields a silently infinite statistic. Rare, so plain loops.
void reduceFloat64(const HostTensor& t, ReduceSums& s) {
  double dot = 0.0, rr = 0.0, aa = 0.0;
  for (int64_t i = 0; i < t.n; ++i) {
    const double x = t.a[i], y = t.r[i];
    dot += x * y;
    rr += y * y;
    aa += x * x;
  }
  s.dot = dot;
  s.rr = rr;
  s.aa = aa;
}

void finishReduction(const HostTensor& t, ReduceSums& s) {
  if (!s.nonFinite && !(std::isfinite(s.dot) && std::isfinite(s.rr) && std::isfinite(s.aa)))
    reduceFloat64(t, s);
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
  finishReduction(t, s);
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
  finishReduction(t, s);
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
