// Elapsed-time helper for phase timings. Thread-safety: pure function.
#pragma once

#include <chrono>

namespace vmfork {

/// Microseconds from `t` to now on the steady clock.
inline double us_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace vmfork
