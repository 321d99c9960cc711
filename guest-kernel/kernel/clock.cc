// Guest clocks (see clock.h).
#include "kernel/clock.h"

#include "arch/arch.h"
#include "kernel.h"
#include "mm/mm.h"

namespace k::clock {
namespace {
uint64_t g_mult;  // ns per tick, 32.32 fixed point
constexpr uint64_t kMonotonicBase = 1000000000ull;
}  // namespace

void init() {
  uint64_t khz = boot->tsc_khz ? boot->tsc_khz : 1000000;
  g_mult = (1000000ull << 32) / khz;
}

uint64_t tsc_to_ns(uint64_t ticks) {
  return uint64_t((unsigned __int128)ticks * g_mult >> 32);
}

static uint64_t since_ref() {
  uint64_t now = arch::rdtsc();
  return now > boot->clock_tsc ? tsc_to_ns(now - boot->clock_tsc) : 0;
}

uint64_t realtime_ns() { return boot->clock_realtime_ns + since_ref(); }
uint64_t monotonic_ns() { return kMonotonicBase + since_ref(); }
uint64_t cputime_ns() {
  uint64_t now = arch::rdtsc(), start = chan->tsc_user_entry;
  return start && now > start ? tsc_to_ns(now - start) : 0;
}

int64_t read_timespec(uint64_t uaddr, timespec* ts) {
  if (!mm::user_ok(uaddr, sizeof *ts, false)) return -EFAULT;
  memcpy(ts, reinterpret_cast<const void*>(uaddr), sizeof *ts);
  if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000) return -EINVAL;
  return 0;
}

}  // namespace k::clock
