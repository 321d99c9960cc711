// Tasks and the scheduler of the guest kernel: every thread of every process of the job is a
// task with its own kernel stack; one vCPU runs one task at a time. A task gives up the vCPU
// only inside the kernel (a blocking call, an exit, or a preemption tick the VMM injects while
// the job runs, see docs/guest-abi.md "Preemption"), so kernel code between two calls into this
// header is never interleaved with another task's and needs no locking.
#pragma once

#include <stdint.h>

namespace k::sched {

struct Task;

/// Tasks blocked until some condition changes (a pipe gets data, a futex word is woken...).
/// Zero-initialized is empty. Waiters are woken in FIFO order.
struct WaitQueue {
  Task* first = nullptr;
  Task* last = nullptr;
};

/// Blocks the current task on `q` until wake_one/wake_all picks it, CLOCK_MONOTONIC reaches
/// `deadline_ns` (0 = no deadline), or a signal that would run a handler or end the process is
/// pending. Returns 0 (woken), -ETIMEDOUT, or -EINTR. Callers re-check their condition in a
/// loop: a wake means "look again", not "the condition holds".
int64_t wait(WaitQueue* q, uint64_t deadline_ns);
/// Makes every task waiting on `q` runnable (it returns 0 from wait()).
void wake_all(WaitQueue* q);
/// Makes the longest-waiting task on `q` runnable; false if none waited.
bool wake_one(WaitQueue* q);
/// True if the current task has a pending, unblocked signal (a blocking call checks it first
/// and returns -EINTR, or restarts under SA_RESTART).
bool signal_pending();

}  // namespace k::sched
