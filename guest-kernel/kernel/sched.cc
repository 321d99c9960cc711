// Tasks and the scheduler (see sched.h). Placeholder until the scheduler lands: one task, so a
// wait can only end at its deadline; a wait without one is a deadlock and ends the job.
#include "kernel/sched.h"

#include "kernel.h"
#include "kernel/clock.h"
#include "linux_abi.h"

namespace k::sched {

int64_t wait(WaitQueue*, uint64_t deadline_ns) {
  if (!deadline_ns) end_job(kReqSignal, SIGKILL);
  uint64_t now = clock::monotonic_ns();
  if (deadline_ns > now) {
    chan->sleep_until_ns = clock::realtime_ns() + (deadline_ns - now);
    ring(kReqSleep);
  }
  return -ETIMEDOUT;
}

void wake_all(WaitQueue*) {}
bool wake_one(WaitQueue*) { return false; }
bool signal_pending() { return false; }

}  // namespace k::sched
