// Elapsed-time and CPU-time helpers for phase timings. Thread-safety: pure functions.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace vmfork {

/// Microseconds from `t` to now on the steady clock.
inline double us_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count();
}

/// CPU time the calling thread has used, in ns (clock_gettime(2) CLOCK_THREAD_CPUTIME_ID,
/// which cannot fail for the calling thread).
inline uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace vmfork
