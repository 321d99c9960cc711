// POSIX timers (see timer.h). struct sigevent and itimerspec layouts: include/uapi/asm-generic/
// siginfo.h and linux/time_types.h.
#include "kernel/timer.h"

#include "kernel/clock.h"
#include "kernel/sched.h"
#include "kernel/signal.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"

namespace k::timer {
namespace {

using sched::Process;

constexpr int32_t SIGEV_SIGNAL = 0, SIGEV_NONE = 1, SIGEV_THREAD_ID = 4;
constexpr uint64_t kAbstime = 1;

struct SigEvent {
  uint64_t value;
  int32_t signo, notify;
  int32_t tid;
  int32_t pad[11];
};
static_assert(sizeof(SigEvent) == 64, "struct sigevent is 64 bytes");

PosixTimer* timers(Process* p, bool create) {
  if (!p->ptimers && create) p->ptimers = mm::kmalloc(sizeof(PosixTimer) * kMax);
  return static_cast<PosixTimer*>(p->ptimers);
}

PosixTimer* lookup(uint64_t id) {
  PosixTimer* t = timers(sched::current_proc(), false);
  if (!t || id >= uint64_t(kMax) || !t[id].used) return nullptr;
  return &t[id];
}

uint64_t now_of(const PosixTimer& t, Process* p) {
  return t.cpu ? sched::process_cpu_ns(p) : clock::monotonic_ns();
}

int64_t sys_timer_create(uint64_t clk, uint64_t uevent, uint64_t uid) {
  bool cpu = clk == CLOCK_PROCESS_CPUTIME_ID;
  if (!cpu && clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC && clk != CLOCK_BOOTTIME) return -EINVAL;
  SigEvent ev{};
  if (uevent) {
    if (!mm::user_ok(uevent, sizeof ev, false)) return -EFAULT;
    memcpy(&ev, reinterpret_cast<const void*>(uevent), sizeof ev);
    if (ev.notify != SIGEV_SIGNAL && ev.notify != SIGEV_NONE && ev.notify != SIGEV_THREAD_ID) return -EINVAL;
    if (ev.notify != SIGEV_NONE && (ev.signo < 1 || ev.signo > 64)) return -EINVAL;
    if (ev.notify == SIGEV_THREAD_ID) {
      sched::Task* t = sched::find_task(ev.tid);
      if (!t || t->proc != sched::current_proc()) return -EINVAL;
    }
  } else {
    ev.notify = SIGEV_SIGNAL;
    ev.signo = 14;  // SIGALRM, si_value = the timer id (timer_create(2))
  }
  if (!mm::user_ok(uid, 4, true)) return -EFAULT;
  PosixTimer* ts = timers(sched::current_proc(), true);
  if (!ts) return -EAGAIN;
  for (int i = 0; i < kMax; i++) {
    if (ts[i].used) continue;
    ts[i] = {true, cpu, clk == CLOCK_REALTIME, ev.notify, ev.signo, ev.tid, 0, uevent ? ev.value : uint64_t(i), 0, 0};
    int32_t id = i;
    memcpy(reinterpret_cast<void*>(uid), &id, 4);
    return 0;
  }
  return -EAGAIN;
}

bool get_ts(uint64_t u, uint64_t* ns) {
  timespec ts;
  // Beyond ~317 years a time is "never" in practice; refusing it keeps the ns sums from wrapping.
  if (clock::read_timespec(u, &ts) || ts.tv_sec > 10000000000ll) return false;
  *ns = clock::to_ns(ts);
  return true;
}

int64_t put_spec(uint64_t u, uint64_t interval, uint64_t left) {
  timespec v[2] = {{int64_t(interval / 1000000000), int64_t(interval % 1000000000)},
                   {int64_t(left / 1000000000), int64_t(left % 1000000000)}};
  if (!mm::user_ok(u, sizeof v, true)) return -EFAULT;
  memcpy(reinterpret_cast<void*>(u), v, sizeof v);
  return 0;
}

int64_t sys_timer_gettime(uint64_t id, uint64_t uspec) {
  PosixTimer* t = lookup(id);
  if (!t) return -EINVAL;
  uint64_t now = now_of(*t, sched::current_proc());
  return put_spec(uspec, t->interval_ns, t->next_ns > now ? t->next_ns - now : (t->next_ns ? 1 : 0));
}

int64_t sys_timer_settime(uint64_t id, uint64_t flags, uint64_t unew, uint64_t uold) {
  PosixTimer* t = lookup(id);
  if (!t) return -EINVAL;
  if (uold) {
    int64_t r = sys_timer_gettime(id, uold);
    if (r) return r;
  }
  uint64_t interval, value;
  if (!unew || !get_ts(unew, &interval) || !get_ts(unew + 16, &value)) return unew ? -EINVAL : -EFAULT;
  uint64_t now = now_of(*t, sched::current_proc());
  t->interval_ns = interval;
  t->overrun = 0;
  if (!value) {
    t->next_ns = 0;
  } else if (flags & kAbstime) {
    // An absolute CLOCK_REALTIME time becomes a monotonic one (a later clock change is ignored).
    uint64_t abs = value;
    if (t->realtime) {
      uint64_t rt = clock::realtime_ns();
      abs = value > rt ? now + (value - rt) : now;
    }
    t->next_ns = abs > now ? abs : now;
  } else {
    t->next_ns = now + value;
  }
  if (t->next_ns == 0 && value) t->next_ns = 1;
  sched::timers_changed();
  return 0;
}

}  // namespace

bool dispatch(uint64_t nr, const uint64_t a[6], int64_t* ret) {
  switch (nr) {
    case 222: *ret = sys_timer_create(a[0], a[1], a[2]); return true;
    case 223: *ret = sys_timer_settime(a[0], a[1], a[2], a[3]); return true;
    case 224: *ret = sys_timer_gettime(a[0], a[1]); return true;
    case 225: {
      PosixTimer* t = lookup(a[0]);
      *ret = t ? t->overrun : -EINVAL;
      return true;
    }
    case 226: {
      PosixTimer* t = lookup(a[0]);
      if (t) *t = {};
      *ret = t ? 0 : -EINVAL;
      sched::timers_changed();
      return true;
    }
    default: return false;
  }
}

void run(Process* p, uint64_t now) {
  PosixTimer* ts = timers(p, false);
  if (!ts) return;
  for (int i = 0; i < kMax; i++) {
    PosixTimer& t = ts[i];
    if (!t.used || !t.next_ns) continue;
    uint64_t n = t.cpu ? sched::process_cpu_ns(p) : now;
    if (n < t.next_ns) continue;
    uint64_t missed = t.interval_ns ? (n - t.next_ns) / t.interval_ns : 0;
    t.next_ns = t.interval_ns ? t.next_ns + (missed + 1) * t.interval_ns : 0;
    if (t.notify == SIGEV_NONE) continue;
    uint64_t bit = 1ull << (t.signo - 1);
    sched::Task* target = t.notify == SIGEV_THREAD_ID ? sched::find_task(t.tid) : nullptr;
    bool still_pending = target ? (target->pending & bit) : (p->pending & bit);
    if (still_pending) {
      t.overrun += int32_t(missed + 1);
      continue;
    }
    t.overrun = int32_t(missed);
    if (target) signal::send_task(target, t.signo, signal::kCodeTimer, t.value);
    else signal::send_process(p, t.signo, signal::kCodeTimer, t.value);
  }
}

uint64_t earliest(Process* p, bool* armed) {
  uint64_t e = ~0ull;
  *armed = false;
  PosixTimer* ts = timers(p, false);
  if (!ts) return e;
  for (int i = 0; i < kMax; i++) {
    if (!ts[i].used || !ts[i].next_ns) continue;
    *armed = true;
    if (!ts[i].cpu && ts[i].next_ns < e) e = ts[i].next_ns;
  }
  return e;
}

void release(Process* p) {
  mm::kfree(p->ptimers);
  p->ptimers = nullptr;
}

}  // namespace k::timer
