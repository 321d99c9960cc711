// Guest clocks from the TSC: CLOCK_REALTIME is the VMM's (clock_tsc, clock_realtime_ns) pair
// advanced by TSC ticks at tsc_khz; CLOCK_MONOTONIC counts from the same pair. Single vCPU.
#pragma once

#include <stdint.h>

#include "linux_abi.h"

namespace k::clock {

/// Precomputes the TSC-to-ns factor from BootInfo (call again after the VMM updates the pair).
void init();
/// Nanoseconds since the Unix epoch.
uint64_t realtime_ns();
/// Nanoseconds on a clock that never goes back (starts near 1 s at boot).
uint64_t monotonic_ns();
/// Nanoseconds since the job's first instruction: the CPU time of the whole job, whose tasks
/// share the one vCPU (per-task and per-process times: sched::task_cpu_ns, process_cpu_ns).
uint64_t cputime_ns();
/// TSC ticks to nanoseconds.
uint64_t tsc_to_ns(uint64_t ticks);

/// Reads a struct timespec from the job at `uaddr` into *ts. Returns 0, -EFAULT (not readable),
/// or -EINVAL (tv_sec < 0, or tv_nsec outside [0, 10^9)), as nanosleep(2) and futex(2) check.
int64_t read_timespec(uint64_t uaddr, timespec* ts);
/// `ts` (validated by read_timespec) in nanoseconds.
inline uint64_t to_ns(const timespec& ts) { return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec); }

}  // namespace k::clock
