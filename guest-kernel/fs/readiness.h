// Readiness of the files that can block (pipes, eventfds): the poll(2) event bits and the one
// wait queue every poll/select/epoll_wait sleeps on. Single vCPU; callers run between scheduler calls.
#pragma once

#include <stdint.h>

#include "kernel/sched.h"

namespace k::readiness {

/// poll(2) event bits (include/uapi/asm-generic/poll.h); the epoll EPOLL* bits have the same values.
inline constexpr uint32_t POLLIN = 0x1, POLLPRI = 0x2, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10,
                          POLLNVAL = 0x20, POLLRDNORM = 0x40, POLLWRNORM = 0x100, POLLRDHUP = 0x2000;

/// "Some fd's readiness changed": every pipe and eventfd operation that can make a file readable,
/// writable, hung up or errored wakes every waiter here, and a task in poll/select/epoll_wait
/// waits here and re-checks all its fds. One global queue instead of a queue per file is the
/// simplest way to let one waiter watch many files; its cost is spurious wake-ups, which the
/// re-check absorbs (fine for the few tasks a job runs).
inline sched::WaitQueue changed;

/// Wakes every poller (they re-check their fds).
inline void notify() { sched::wake_all(&changed); }

}  // namespace k::readiness
