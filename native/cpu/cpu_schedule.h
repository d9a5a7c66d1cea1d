// How the CPU drivers spread per-tensor work over the thread pool. Shared by the surgery
// (surgery_cpu.cc) and the fused surgery+AdamW step (adamw_cpu.cc) so both schedule the
// same way. Scheduling never changes results: per-tensor sums are always combined in
// chunk order, whichever thread computed each chunk.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>

#include "../core/numerics.h"
#include "../core/thread_pool.h"

namespace craftgrad {

// Below this many elements in a call, waking the pool costs more than it saves.
constexpr int64_t kParallelMinElements = 2 * kChunk;

inline int64_t chunkCount(int64_t n) { return (n + kChunk - 1) / kChunk; }
inline int64_t chunkLength(int64_t n, int64_t c) { return std::min(kChunk, n - c * kChunk); }

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

// Processes every tensor: whole(i) handles tensor i on one thread; cooperative(i) handles
// one huge tensor with every thread (it calls parallelFor over its chunks) and is called
// from the calling thread, one tensor at a time, before the others are spread.
// sizeOf(i) gives tensor i's element count.
template <typename SizeOf, typename Whole, typename Cooperative>
void forEachTensor(int64_t count, const SizeOf& sizeOf, const Whole& whole, const Cooperative& cooperative) {
  int64_t total = 0;
  for (int64_t i = 0; i < count; ++i) total += sizeOf(i);
  const int threads = ThreadPool::instance().size();
  if (threads <= 1 || total < kParallelMinElements) {
    for (int64_t i = 0; i < count; ++i) whole(i);
    return;
  }
  // A tensor holding a large share of the work would leave the other threads idle if
  // one thread took it whole; such tensors are split over all threads instead.
  const int64_t hugeThreshold = std::max<int64_t>(4 * kChunk, total / (2 * threads));
  bool anyHuge = false;
  for (int64_t i = 0; i < count; ++i) {
    if (sizeOf(i) > hugeThreshold) {
      anyHuge = true;
      cooperative(i);
    }
  }
  // The rest go whole to whichever thread is free, a few at a time when they are small.
  const int64_t average = std::max<int64_t>(1, total / std::max<int64_t>(1, count));
  const int64_t grain = std::clamp<int64_t>(16384 / average, 1, 64);
  parallelFor(count, grain, [&](int64_t i) {
    if (anyHuge && sizeOf(i) > hugeThreshold) return;
    whole(i);
  });
}

}  // namespace craftgrad
