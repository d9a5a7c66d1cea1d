#include "thread_pool.h"

#include <cstdlib>
#include <cstring>

namespace craftgrad {

int ThreadPool::defaultThreadCount() {
  if (const char* env = std::getenv("CRAFTGRAD_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    // The TypeScript loader validates the variable and reports bad values; here an
    // unparsable value just falls back to the default.
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

ThreadPool& ThreadPool::instance() {
  // Never destroyed: worker threads must not be joined during static destruction, when
  // Node may already be tearing the process down.
  static ThreadPool* pool = new ThreadPool(defaultThreadCount());
  return *pool;
}

ThreadPool::ThreadPool(int n) { startWorkers(n); }

void ThreadPool::startWorkers(int n) {
  stopping_ = false;
  participants_.store(n, std::memory_order_relaxed);
  // New workers start at the current generation: a resized pool must not rerun the
  // previous job (whose function is gone) the moment its workers start.
  const uint64_t current = generation_;
  for (int w = 1; w < n; ++w) threads_.emplace_back([this, w, current] { workerLoop(w, current); });
}

void ThreadPool::stopWorkers() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void ThreadPool::resize(int n) {
  if (n < 1) n = 1;
  std::lock_guard<std::mutex> run(runMutex_);
  if (n == size()) return;
  stopWorkers();
  startWorkers(n);
}

bool ThreadPool::tryRun(const std::function<void(int)>& job) {
  std::unique_lock<std::mutex> run(runMutex_, std::try_to_lock);
  if (!run.owns_lock()) return false;
  const int n = size();
  if (n > 1) {
    std::lock_guard<std::mutex> lock(m_);
    job_ = &job;
    pending_.store(n - 1, std::memory_order_relaxed);
    ++generation_;
    publishedGeneration_.store(generation_, std::memory_order_release);
  }
  if (n > 1) wake_.notify_all();
  job(0);
  if (n > 1) {
    // Spin briefly before sleeping, as the workers do: on short jobs the workers finish
    // within microseconds, and a futex sleep plus wake-up would cost more than the job.
    for (int i = 0; i < 4000 && pending_.load(std::memory_order_acquire) != 0; ++i) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    job_ = nullptr;
  }
  return true;
}

void ThreadPool::workerLoop(int worker, uint64_t seen) {
  for (;;) {
    // Spin briefly before sleeping: back-to-back calls (a training loop) then skip the
    // futex wake-up latency. The spin is short enough to cost nothing when idle.
    for (int i = 0; i < 4000 && publishedGeneration_.load(std::memory_order_acquire) == seen; ++i) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> lock(m_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      job = job_;
    }
    (*job)(worker);
    {
      std::lock_guard<std::mutex> lock(m_);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_.notify_one();
    }
  }
}

}  // namespace craftgrad
