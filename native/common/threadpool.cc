// See threadpool.h.
#include "common/threadpool.h"

#include <algorithm>

namespace hp {

ThreadPool::ThreadPool(int threads) { resize(threads); }

ThreadPool::~ThreadPool() {
  std::lock_guard<std::mutex> run(run_mutex_);
  stop_workers();
}

void ThreadPool::resize(int threads) {
  threads = std::max(1, threads);
  std::lock_guard<std::mutex> run(run_mutex_);
  if (threads == size_.load()) return;
  stop_workers();
  start_workers(threads - 1);
  size_.store(threads);
}

void ThreadPool::start_workers(int count) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = false;
    generation = generation_;
  }
  for (int i = 0; i < count; i++) workers_.emplace_back([this, generation] { worker_loop(generation); });
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::worker_loop(uint64_t seen_generation) {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen_generation; });
      if (stop_) return;
      seen_generation = generation_;
    }
    run_chunks();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::run_chunks() {
  for (;;) {
    const int64_t b = next_.fetch_add(grain_);
    if (b >= end_) return;
    (*fn_)(b, std::min(end_, b + grain_));
  }
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  grain = std::max<int64_t>(1, grain);
  std::lock_guard<std::mutex> run(run_mutex_);
  if (workers_.empty() || end - begin <= grain) {
    fn(begin, end);
    return;
  }
  fn_ = &fn;
  end_ = end;
  grain_ = grain;
  next_.store(begin);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    busy_ = (int)workers_.size();
    generation_++;
  }
  wake_.notify_all();
  run_chunks();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return busy_ == 0; });
  fn_ = nullptr;
}

ThreadPool& thread_pool() {
  // Never destroyed: worker threads blocked on the condition variable are simply ended with the
  // process, which avoids joining threads from static destructors at exit.
  static ThreadPool* pool = new ThreadPool((int)std::max(1u, std::thread::hardware_concurrency()));
  return *pool;
}

}  // namespace hp
