// timerfd objects (see timerfd.h); semantics from timerfd_create(2). Single vCPU: no locking.
#include "fs/timerfd.h"

#include "fs/readiness.h"
#include "kernel/clock.h"
#include "kernel/sched.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"

namespace k::timerfd {
namespace {

constexpr int64_t kRealtime = 0, kMonotonic = 1, kBoottime = 7;

struct Timer {
  bool realtime;         // CLOCK_REALTIME; otherwise CLOCK_MONOTONIC (= CLOCK_BOOTTIME here)
  uint64_t next_ns;      // next expiry on the timer's clock; 0 = disarmed
  uint64_t interval_ns;  // 0 = one-shot
  uint64_t ticks;        // expirations not yet read
  uint64_t gen;
};

Timer* of(const fs::Node* n) { return static_cast<Timer*>(n->priv); }

uint64_t now(const Timer* t) { return t->realtime ? clock::realtime_ns() : clock::monotonic_ns(); }

// Counts the expirations up to now: a periodic timer late by several periods counts each
// (timerfd_create(2): "the number of expirations that have occurred").
void update(Timer* t) {
  if (!t->next_ns) return;
  uint64_t n = now(t);
  if (n < t->next_ns) return;
  if (t->interval_ns) {
    uint64_t k = (n - t->next_ns) / t->interval_ns + 1;
    t->ticks += k;
    t->next_ns += k * t->interval_ns;
  } else {
    t->ticks++;
    t->next_ns = 0;
  }
  t->gen++;
}

// The CLOCK_MONOTONIC time of `t`'s next expiry (t armed).
uint64_t monotonic_deadline(const Timer* t) {
  if (!t->realtime) return t->next_ns;
  uint64_t r = clock::realtime_ns(), m = clock::monotonic_ns();
  return t->next_ns > r ? m + (t->next_ns - r) : m;
}

}  // namespace

fs::Node* create(int64_t clockid, int64_t* err) {
  if (clockid != kRealtime && clockid != kMonotonic && clockid != kBoottime) {
    *err = -EINVAL;
    return nullptr;
  }
  *err = -ENOMEM;
  fs::Node* n = fs::new_anonymous_file();
  if (!n) return nullptr;
  auto* t = static_cast<Timer*>(mm::kmalloc(sizeof(Timer)));
  if (!t) {
    mm::kfree(n);
    return nullptr;
  }
  *t = {clockid == kRealtime, 0, 0, 0, 1};
  n->mode = 0600;  // an anonymous inode: no file type bits, as Linux reports it
  n->nlink = 1;
  n->special = fs::Special::kTimerfd;
  n->priv = t;
  return n;
}

void close(fs::Node* n) {
  if (n->opens) return;
  mm::kfree(of(n));
  mm::kfree(n);  // in no directory: nothing else points at it
}

Spec gettime(fs::Node* n) {
  Timer* t = of(n);
  update(t);
  uint64_t c = now(t);
  // An armed timer whose expiry is exactly now reports 1 ns left, not "disarmed".
  uint64_t left = !t->next_ns ? 0 : t->next_ns > c ? t->next_ns - c : 1;
  return {left, t->interval_ns};
}

void settime(fs::Node* n, bool abs, Spec value, Spec* old) {
  Timer* t = of(n);
  *old = gettime(n);
  t->ticks = 0;
  t->interval_ns = value.value_ns ? value.interval_ns : 0;
  if (!value.value_ns) {
    t->next_ns = 0;
  } else if (abs) {
    t->next_ns = value.value_ns;
  } else {
    uint64_t c = now(t);
    t->next_ns = ~0ull - c < value.value_ns ? ~0ull : c + value.value_ns;
  }
  t->gen++;
  readiness::notify();  // a blocked read or poll looks at the new setting
}

int64_t read(fs::Node* n, uint8_t* dst, uint64_t len, bool nonblock, bool user) {
  if (len < 8) return -EINVAL;
  Timer* t = of(n);
  for (;;) {
    update(t);
    if (t->ticks) {
      if (user && !mm::user_ok(uint64_t(dst), 8, true)) return -EFAULT;
      memcpy(dst, &t->ticks, 8);
      t->ticks = 0;
      t->gen++;
      return 8;
    }
    if (nonblock) return -EAGAIN;
    // The global readiness queue: settime from another task wakes it; the expiry is the deadline.
    int64_t r = sched::wait(&readiness::changed, t->next_ns ? monotonic_deadline(t) : 0);
    if (r == -EINTR) return -EINTR;
  }
}

uint32_t poll(const fs::Node* n) {
  Timer* t = of(n);
  update(t);
  return t->ticks ? readiness::POLLIN | readiness::POLLRDNORM : 0;
}

uint64_t generation(const fs::Node* n) {
  Timer* t = of(n);
  update(t);
  return t->gen;
}

uint64_t wake_deadline(const fs::Node* n) {
  Timer* t = of(n);
  update(t);
  if (t->ticks || !t->next_ns) return 0;
  uint64_t d = monotonic_deadline(t);
  return d ? d : 1;
}

}  // namespace k::timerfd
