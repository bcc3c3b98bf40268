// A small persistent pool of CPU threads for the kernels in native/cpu/.
//
// parallel_for(begin, end, grain, fn) splits [begin, end) into chunks of `grain` items, hands them out
// through an atomic counter and calls fn(chunk_begin, chunk_end) for each; the calling thread works
// too, so a pool of size N uses N - 1 worker threads. One parallel_for runs at a time: calls from
// several threads (several AsyncWorkers at once) queue up on a mutex. fn must not throw.
#pragma once

#include <stdint.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hp {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Total threads that run a parallel_for, the caller included (>= 1). Waits for a running job.
  void resize(int threads);
  int size() const { return size_.load(); }

  void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void start_workers(int count);
  void stop_workers();
  void worker_loop(uint64_t seen_generation);
  void run_chunks();

  std::mutex run_mutex_;  // one parallel_for (or resize) at a time
  std::mutex mutex_;      // guards the fields below
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  uint64_t generation_ = 0;  // bumped for each job
  int busy_ = 0;             // workers not yet finished with the current job
  bool stop_ = false;
  std::atomic<int> size_{1};

  // the current job (written before generation_ is bumped, read by workers after they see it)
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t end_ = 0;
  int64_t grain_ = 1;
  std::atomic<int64_t> next_{0};
};

// The process-wide pool (std::thread::hardware_concurrency() threads at first; setThreads resizes it).
ThreadPool& thread_pool();

}  // namespace hp
