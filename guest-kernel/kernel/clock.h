// Guest clocks from the TSC: CLOCK_REALTIME is the VMM's (clock_tsc, clock_realtime_ns) pair
// advanced by TSC ticks at tsc_khz; CLOCK_MONOTONIC counts from the same pair. Single vCPU.
#pragma once

#include <stdint.h>

namespace k::clock {

/// Precomputes the TSC-to-ns factor from BootInfo (call again after the VMM updates the pair).
void init();
/// Nanoseconds since the Unix epoch.
uint64_t realtime_ns();
/// Nanoseconds on a clock that never goes back (starts near 1 s at boot).
uint64_t monotonic_ns();
/// Nanoseconds since the job's first instruction (the job's CPU time: it has the vCPU alone).
uint64_t cputime_ns();
/// TSC ticks to nanoseconds.
uint64_t tsc_to_ns(uint64_t ticks);

}  // namespace k::clock
