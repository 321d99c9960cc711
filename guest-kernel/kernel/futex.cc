// futex(2) (see futex.h). Ops and their arguments: include/uapi/linux/futex.h and futex(2). All
// waiters sit on one queue, each tagged with its key and bitset: a job has few threads, so a scan
// is cheaper than a hash table's upkeep, and requeue is a change of tag.
#include "kernel/futex.h"

#include "kernel/clock.h"
#include "kernel/sched.h"
#include "kernel/signal.h"
#include "linux_abi.h"
#include "mm/mm.h"

namespace k::futex {
namespace {

constexpr uint64_t kWait = 0, kWake = 1, kRequeue = 3, kCmpRequeue = 4, kWakeOp = 5,
                   kWaitBitset = 9, kWakeBitset = 10;
constexpr uint64_t kPrivate = 128, kClockRealtime = 256;
constexpr uint32_t kBitsetAny = 0xffffffff;
constexpr uint32_t kOwnerDied = 0x40000000, kWaiters = 0x80000000, kTidMask = 0x3fffffff;

sched::WaitQueue g_waiters;

// The key of the word at uaddr: its guest-physical address; 0 if not mapped or misaligned.
uint64_t key_of(uint64_t uaddr) {
  if (uaddr & 3) return 0;
  if (!mm::user_ok(uaddr, 4, false)) return 0;
  uint64_t pa = mm::translate(uaddr);
  return pa ? pa + (uaddr & (kPage - 1)) : 0;
}

struct Match {
  uint64_t key;
  uint32_t bitset;
};
bool matches(sched::Task* t, void* arg) {
  auto* m = static_cast<Match*>(arg);
  return t->futex_key == m->key && (t->futex_bitset & m->bitset);
}

int wake_key(uint64_t key, int n, uint32_t bitset) {
  Match m{key, bitset};
  return sched::wake_if(&g_waiters, n, matches, &m);
}

int64_t do_wait(uint64_t uaddr, uint32_t val, uint64_t utimeout, uint32_t bitset, bool absolute, bool realtime) {
  if (!bitset) return -EINVAL;
  uint64_t key = key_of(uaddr);
  if (!key) return -EFAULT;
  uint64_t deadline = 0;
  if (utimeout) {
    timespec ts;
    if (int64_t r = clock::read_timespec(utimeout, &ts)) return r;
    uint64_t ns = clock::to_ns(ts);
    uint64_t mono = clock::monotonic_ns();
    if (!absolute) deadline = mono + ns;
    else if (realtime) {
      uint64_t rt = clock::realtime_ns();
      deadline = ns > rt ? mono + (ns - rt) : mono;
    } else {
      deadline = ns;
    }
    if (deadline <= mono) return -ETIMEDOUT;
  }
  uint32_t cur;
  memcpy(&cur, reinterpret_cast<const void*>(uaddr), 4);
  if (cur != val) return -EAGAIN;
  sched::Task* t = sched::current();
  t->futex_key = key;
  t->futex_bitset = bitset;
  int64_t r = sched::wait(&g_waiters, deadline);
  t->futex_key = 0;
  if (r == -EINTR) return utimeout ? -EINTR : -signal::kErestartSys;
  return r;
}

// FUTEX_WAKE_OP's operation on *uaddr2 (futex(2)): returns the old value's comparison result.
int64_t wake_op(uint64_t uaddr, uint64_t uaddr2, int n, int n2, uint32_t val3) {
  uint64_t key = key_of(uaddr), key2 = key_of(uaddr2);
  if (!key || !key2 || !mm::user_ok(uaddr2, 4, true)) return -EFAULT;
  uint32_t op = (val3 >> 28) & 7, cmp = (val3 >> 24) & 15;
  uint32_t oparg = (val3 >> 12) & 0xfff, cmparg = val3 & 0xfff;
  if ((val3 >> 28) & 8) oparg = 1u << (oparg & 31);
  auto* w = reinterpret_cast<uint32_t*>(uaddr2);
  uint32_t old = *w;
  switch (op) {
    case 0: *w = oparg; break;
    case 1: *w = old + oparg; break;
    case 2: *w = old | oparg; break;
    case 3: *w = old & ~oparg; break;
    case 4: *w = old ^ oparg; break;
    default: return -ENOSYS;
  }
  int32_t o = int32_t(old), c = int32_t(cmparg << 20) >> 20;
  bool hit;
  switch (cmp) {
    case 0: hit = o == c; break;
    case 1: hit = o != c; break;
    case 2: hit = o < c; break;
    case 3: hit = o <= c; break;
    case 4: hit = o > c; break;
    case 5: hit = o >= c; break;
    default: return -ENOSYS;
  }
  int woken = wake_key(key, n, kBitsetAny);
  if (hit) woken += wake_key(key2, n2, kBitsetAny);
  return woken;
}

struct Requeue {
  uint64_t from, to;
  int left;
};
bool requeue_match(sched::Task* t, void* arg) {
  auto* r = static_cast<Requeue*>(arg);
  if (t->futex_key == r->from && r->left > 0) {
    t->futex_key = r->to;  // stays on the same queue, now waiting on the other word
    r->left--;
  }
  return false;
}

}  // namespace

int64_t call(uint64_t uaddr, uint64_t op, uint64_t val, uint64_t utimeout, uint64_t uaddr2, uint64_t val3) {
  uint64_t cmd = op & ~(kPrivate | kClockRealtime);
  bool realtime = op & kClockRealtime;
  switch (cmd) {
    case kWait: return do_wait(uaddr, uint32_t(val), utimeout, kBitsetAny, false, false);
    case kWaitBitset: return do_wait(uaddr, uint32_t(val), utimeout, uint32_t(val3), true, realtime);
    case kWake: case kWakeBitset: {
      uint64_t key = key_of(uaddr);
      if (!key) return -EFAULT;
      uint32_t bitset = cmd == kWake ? kBitsetAny : uint32_t(val3);
      if (!bitset) return -EINVAL;
      return wake_key(key, int(val > 0x7fffffff ? 0x7fffffff : val), bitset);
    }
    case kRequeue: case kCmpRequeue: {
      uint64_t key = key_of(uaddr), key2 = key_of(uaddr2);
      if (!key || !key2) return -EFAULT;
      if (cmd == kCmpRequeue) {
        uint32_t cur;
        memcpy(&cur, reinterpret_cast<const void*>(uaddr), 4);
        if (cur != uint32_t(val3)) return -EAGAIN;
      }
      int woken = wake_key(key, int(val > 0x7fffffff ? 0x7fffffff : val), kBitsetAny);
      Requeue rq{key, key2, int(utimeout > 0x7fffffff ? 0x7fffffff : utimeout)};
      sched::wake_if(&g_waiters, 0x7fffffff, requeue_match, &rq);
      return woken + (int(utimeout > 0x7fffffff ? 0x7fffffff : utimeout) - rq.left);
    }
    case kWakeOp:
      return wake_op(uaddr, uaddr2, int(val), int(utimeout > 0x7fffffff ? 0x7fffffff : utimeout), uint32_t(val3));
    default: return -ENOSYS;  // PI futexes and FUTEX_WAIT_REQUEUE_PI are not supported
  }
}

int wake(uint64_t uaddr, int n) {
  uint64_t key = key_of(uaddr);
  return key ? wake_key(key, n, kBitsetAny) : 0;
}

void exit_robust_list(sched::Task* t) {
  // struct robust_list_head { robust_list* list; long futex_offset; robust_list* pending; }
  uint64_t head = t->robust_list;
  if (!head || !mm::user_ok(head, 24, false)) return;
  auto* h = reinterpret_cast<const int64_t*>(head);
  int64_t offset = h[1];
  uint64_t entry = uint64_t(h[0]), pending = uint64_t(h[2]);
  auto handle = [&](uint64_t e) {
    uint64_t word = (e & ~1ull) + uint64_t(offset);
    if (!mm::user_ok(word, 4, true) || (word & 3)) return;
    auto* w = reinterpret_cast<uint32_t*>(word);
    if ((*w & kTidMask) != uint32_t(t->tid)) return;
    *w = (*w & kWaiters) | kOwnerDied;
    wake(word, 1);
  };
  // The list is circular through the head; bound the walk against a hostile loop.
  for (int i = 0; i < 2048 && entry && entry != head; i++) {
    if (!mm::user_ok(entry, 8, false)) break;
    uint64_t next = *reinterpret_cast<const uint64_t*>(entry);
    if (entry != pending) handle(entry);
    entry = next;
  }
  if (pending) handle(pending);
}

}  // namespace k::futex
