// timerfd objects (timerfd_create(2)): an expiry, a period and an expiration count on a node
// outside the tree (Special::kTimerfd). Expiries are computed lazily from the clock whenever the
// timer is looked at, so no kernel timer is needed. Single vCPU: no locking.
#pragma once

#include <stdint.h>

#include "fs/vfs.h"

namespace k::timerfd {

/// timerfd_create(2) / timerfd_settime(2) flags (include/uapi/linux/timerfd.h).
inline constexpr uint64_t TFD_NONBLOCK = 04000, TFD_CLOEXEC = 02000000;
inline constexpr uint64_t TFD_TIMER_ABSTIME = 1, TFD_TIMER_CANCEL_ON_SET = 2;

/// A new disarmed timer on `clockid` (CLOCK_REALTIME 0, CLOCK_MONOTONIC 1, CLOCK_BOOTTIME 7;
/// anything else: *err = -EINVAL). nullptr with *err = -ENOMEM on no memory.
fs::Node* create(int64_t clockid, int64_t* err);
/// The last open file description of `n` closed (n->opens == 0): frees the timer and `n`.
void close(fs::Node* n);

/// struct itimerspec as ns: first expiry (relative) and period; 0 = disarmed / one-shot.
struct Spec {
  uint64_t value_ns, interval_ns;
};

/// timerfd_settime(2): arms (value_ns != 0) or disarms the timer; `abs` = TFD_TIMER_ABSTIME
/// (value_ns is a time on the timer's clock). Resets the expiration count. `*old` gets the
/// previous setting as timerfd_gettime would report it.
void settime(fs::Node* n, bool abs, Spec value, Spec* old);
/// timerfd_gettime(2): time until the next expiry (0: disarmed) and the period.
Spec gettime(fs::Node* n);

/// read(2): `len` must be >= 8 (-EINVAL). Stores the expirations since the last read or
/// settime as a host-endian u64 at `dst` and resets the count; waits for the first expiry
/// (deadline: the expiry) unless `nonblock` (-EAGAIN). Returns 8, -EINTR, -EFAULT (`user`:
/// dst re-validated after a wait).
int64_t read(fs::Node* n, uint8_t* dst, uint64_t len, bool nonblock, bool user);

/// poll(2) events: POLLIN | POLLRDNORM once the timer expired since the last read.
uint32_t poll(const fs::Node* n);
/// Changes counter for epoll's EPOLLET (moves on each expiry, read and settime).
uint64_t generation(const fs::Node* n);
/// CLOCK_MONOTONIC ns of the next expiry a poller must wake for (an armed timer with no
/// expiration pending), or 0 for none: poll/select/epoll_wait use it as a wait deadline.
uint64_t wake_deadline(const fs::Node* n);

}  // namespace k::timerfd
