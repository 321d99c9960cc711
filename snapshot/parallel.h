// parallel_for: runs fn(item, worker) for item in [0, n) on `threads` threads (the caller's
// thread is worker 0), handing out items in order from a shared counter. Used for hashing,
// compressing and decompressing. Thread-safety: fn must be safe to call concurrently for
// distinct items; `worker` < threads identifies per-thread scratch state.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace vmfork::snapshot {

template <typename Fn>
void parallel_for(size_t n, unsigned threads, Fn&& fn) {
  if (n == 0) return;
  unsigned workers = static_cast<unsigned>(std::max<size_t>(1, std::min<size_t>(threads, n)));
  std::atomic<size_t> next{0};
  auto work = [&](unsigned worker) {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i, worker);
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (unsigned w = 1; w < workers; ++w) {
    try {
      pool.emplace_back(work, w);
    } catch (...) {  // no thread to be had: the threads already started do all the items
      break;
    }
  }
  work(0);
  for (auto& t : pool) t.join();
}

}  // namespace vmfork::snapshot
