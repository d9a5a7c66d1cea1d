// A small fork-join pool: every participant (the caller included) runs the same job
// function with its own worker index. One job at a time: a caller that finds the pool
// busy (another thread's call is in it) gets false and runs its work inline instead, so
// concurrent calls never block each other and results stay identical either way.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace craftgrad {

class ThreadPool {
 public:
  // The process-wide pool, created on first use with defaultThreadCount() participants.
  static ThreadPool& instance();
  static int defaultThreadCount();

  int size() const { return participants_.load(std::memory_order_relaxed); }

  // Runs job(worker) on `size()` participants, the caller being worker 0.
  // Returns false without running anything if the pool is in use by another call.
  bool tryRun(const std::function<void(int worker)>& job);

  // Changes the participant count (waits until the pool is idle). n >= 1.
  void resize(int n);

 private:
  explicit ThreadPool(int n);
  void startWorkers(int n);
  void stopWorkers();
  void workerLoop(int worker, uint64_t seen);

  std::mutex runMutex_;                   // held by the caller for a whole job
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  std::atomic<int> pending_{0};          // workers still running the current job
  bool stopping_ = false;
  std::atomic<int> participants_{1};
  std::atomic<uint64_t> publishedGeneration_{0};
};

}  // namespace craftgrad
