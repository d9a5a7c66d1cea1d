#include "surgery_cpu.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "../core/thread_pool.h"
#include "cpu_features.h"

namespace craftgrad {
namespace {

// Below this many elements in a call, waking the pool costs more than it saves.
constexpr int64_t kParallelMinElements = 2 * kChunk;

// Outputs at least this large skip the cache (streaming stores) when they alias no input:
// they would not be read again before being evicted, and a normal store first reads
// every destination line. Smaller ones stay cached for whoever reads them next.
constexpr int64_t kStreamMinElements = 1 << 18;

using AxpyFn = double (*)(const float*, const float*, float*, int64_t, float);

AxpyFn chooseAxpy(const KernelTable& k, const HostTensor& t) {
  const bool aliased = t.out == t.a || t.out == t.r;
  return (k.axpyStream && !aliased && t.n >= kStreamMinElements) ? k.axpyStream : k.axpy;
}

int64_t chunkCount(int64_t n) { return (n + kChunk - 1) / kChunk; }
int64_t chunkLength(int64_t n, int64_t c) { return std::min(kChunk, n - c * kChunk); }

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
  ReduceSums s;
  const int64_t chunks = chunkCount(t.n);
  for (int64_t c = 0; c < chunks; ++c) {
    ChunkSums cs;
    k.reduce(t.a + c * kChunk, t.r + c * kChunk, chunkLength(t.n, c), &cs);
    addChunk(s, cs);
  }
  finishReduction(t, s);
  bool conflict;
  const double coef = surgeryCoefficient(s, p, &conflict);
  const float cf = static_cast<float>(coef);
  double outSq = 0.0;
  const AxpyFn axpy = chooseAxpy(k, t);
  for (int64_t c = 0; c < chunks; ++c)
    outSq += axpy(t.a + c * kChunk, t.r + c * kChunk, t.out + c * kChunk, chunkLength(t.n, c), cf);
  recordStats(s, coef, conflict, outSq, st);
}

// Runs body(i) for i in [0, n) on the pool (or inline when the pool is busy).
template <typename Body>
void parallelFor(int64_t n, int64_t grain, const Body& body) {
  std::atomic<int64_t> next{0};
  auto job = [&](int) {
    for (;;) {
      const int64_t begin = next.fetch_add(grain, std::memory_order_relaxed);
      if (begin >= n) return;
      const int64_t end = std::min(n, begin + grain);
      for (int64_t i = begin; i < end; ++i) body(i);
    }
  };
  if (!ThreadPool::instance().tryRun(job)) job(0);
}

// One huge tensor with every thread: its chunks are reduced in parallel into per-chunk
// partials that are then summed in chunk order (the same order processWhole uses).
void processCooperative(const KernelTable& k, const HostTensor& t, const SurgeryParams& p,
                        TensorStats& st) {
  const int64_t chunks = chunkCount(t.n);
  // Grows to the largest tensor seen on this thread, then is reused: no per-call
  // allocation proportional to the data once warm.
  thread_local std::vector<ChunkSums> partials;
  thread_local std::vector<double> outSqPartials;
  if (static_cast<int64_t>(partials.size()) < chunks) {
    partials.resize(chunks);
    outSqPartials.resize(chunks);
  }
  ChunkSums* part = partials.data();
  parallelFor(chunks, 1, [&](int64_t c) {
    k.reduce(t.a + c * kChunk, t.r + c * kChunk, chunkLength(t.n, c), &part[c]);
  });
  ReduceSums s;
  for (int64_t c = 0; c < chunks; ++c) addChunk(s, part[c]);
  finishReduction(t, s);
  bool conflict;
  const double coef = surgeryCoefficient(s, p, &conflict);
  const float cf = static_cast<float>(coef);
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

void surgeryCpu(const HostTensor* tensors, int64_t count, const SurgeryParams& params,
                TensorStats* stats) {
  static_assert(kBlock == 1024, "kernels_body.inc hard-codes the block size");
  const KernelTable& k = *cpuDispatch().kernels;
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) total += tensors[i].n;

  const int threads = ThreadPool::instance().size();
  if (threads <= 1 || total < kParallelMinElements) {
    for (int64_t i = 0; i < count; ++i) processWhole(k, tensors[i], params, stats[i]);
    return;
  }
  // A tensor holding a large share of the work would leave the other threads idle if
  // one thread took it whole; such tensors are split over all threads instead.
  const int64_t hugeThreshold = std::max<int64_t>(4 * kChunk, total / (2 * threads));
  bool anyHuge = false;
  for (int64_t i = 0; i < count; ++i) {
    if (tensors[i].n > hugeThreshold) {
      anyHuge = true;
      processCooperative(k, tensors[i], params, stats[i]);
    }
  }
  // The rest go whole to whichever thread is free, a few at a time when they are small.
  const int64_t average = std::max<int64_t>(1, total / std::max<int64_t>(1, count));
  const int64_t grain = std::clamp<int64_t>(16384 / average, 1, 64);
  parallelFor(count, grain, [&](int64_t i) {
    if (anyHuge && tensors[i].n > hugeThreshold) return;
    processWhole(k, tensors[i], params, stats[i]);
  });
}

}  // namespace craftgrad
