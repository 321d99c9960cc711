// POSIX per-process timers (timer_create(2), timer_settime(2), timer_gettime(2),
// timer_getoverrun(2), timer_delete(2)) on CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME and
// CLOCK_PROCESS_CPUTIME_ID, notifying by a signal to the process (SIGEV_SIGNAL), to one thread
// (SIGEV_THREAD_ID, which glibc's SIGEV_THREAD uses underneath) or not at all (SIGEV_NONE).
// Expiry is checked when the scheduler runs its deadlines (every tick while one is armed).
#pragma once

#include <stdint.h>

#include "kernel/task.h"

namespace k::timer {

/// One timer; a process has at most kMax of them (ids 0..kMax-1), in a block made on first use.
struct PosixTimer {
  bool used;
  bool cpu;              // CLOCK_PROCESS_CPUTIME_ID: times are process CPU ns, else monotonic ns
  bool realtime;         // CLOCK_REALTIME: TIMER_ABSTIME values are converted at settime
  int32_t notify;        // SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD_ID 4
  int32_t signo;
  int32_t tid;           // SIGEV_THREAD_ID target
  int32_t overrun;       // expiries while the previous signal was still pending
  uint64_t value;        // sigev_value, passed as si_value
  uint64_t next_ns, interval_ns;  // 0: disarmed
};
inline constexpr int kMax = 32;

/// The syscalls 222-226; true (and *ret) if `nr` is one of them.
bool dispatch(uint64_t nr, const uint64_t a[6], int64_t* ret);
/// Fires expired timers of `p` (`now` is CLOCK_MONOTONIC ns).
void run(sched::Process* p, uint64_t now);
/// Earliest monotonic expiry of `p`'s timers (~0 if none), and whether any is armed at all.
uint64_t earliest(sched::Process* p, bool* armed);
/// Frees `p`'s timers (process exit).
void release(sched::Process* p);

}  // namespace k::timer
