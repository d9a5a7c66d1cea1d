// parallelRanges: contiguous ranges of [0, n) per pool participant. Which thread computes
// an index never changes what is computed, so callers stay deterministic.
#pragma once
#include <algorithm>
#include <functional>

#include "../core/thread_pool.h"

namespace craftgrad {

template <typename Fn>
void parallelRanges(int64_t n, int64_t minPerWorker, const Fn& fn) {
  if (n <= 0) return;
  ThreadPool& pool = ThreadPool::instance();
  const int64_t maxWorkers = std::max<int64_t>(1, n / std::max<int64_t>(1, minPerWorker));
  const int workers = static_cast<int>(std::min<int64_t>(pool.size(), maxWorkers));
  if (workers <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  const std::function<void(int)> job = [&](int w) {
    if (w >= workers) return;
    const int64_t begin = n * w / workers, end = n * (w + 1) / workers;
    if (begin < end) fn(begin, end);
  };
  if (!pool.tryRun(job)) fn(int64_t{0}, n);
}

}  // namespace craftgrad
