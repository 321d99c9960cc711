// signalfd objects (see signalfd.h); semantics from signalfd(2), record layout from
// include/uapi/linux/signalfd.h. Single vCPU: no locking.
#include "fs/signalfd.h"

#include "fs/readiness.h"
#include "kernel/sched.h"
#include "kernel/signal.h"
#include "kernel/task.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"

namespace k::signalfd {
namespace {

constexpr int kSigKill = 9, kSigStop = 19, kSigChld = 17;
constexpr uint64_t kUnblockable = (1ull << (kSigKill - 1)) | (1ull << (kSigStop - 1));

// struct signalfd_siginfo (include/uapi/linux/signalfd.h), 128 bytes.
struct Record {
  uint32_t ssi_signo;
  int32_t ssi_errno, ssi_code;
  uint32_t ssi_pid, ssi_uid;
  int32_t ssi_fd;
  uint32_t ssi_tid, ssi_band, ssi_overrun, ssi_trapno;
  int32_t ssi_status, ssi_int;
  uint64_t ssi_ptr, ssi_utime, ssi_stime, ssi_addr;
  uint16_t ssi_addr_lsb, pad2;
  int32_t ssi_syscall;
  uint64_t ssi_call_addr;
  uint32_t ssi_arch;
  uint8_t pad[28];
};
static_assert(sizeof(Record) == kInfoBytes, "struct signalfd_siginfo is 128 bytes");

struct State {
  uint64_t mask;
};

State* of(const fs::Node* n) { return static_cast<State*>(n->priv); }

uint64_t ready(const fs::Node* n) {
  sched::Task* t = sched::current();
  return (t->pending | t->proc->pending) & of(n)->mask;
}

// Takes signal `sig` off the current task (its own pending set first) and fills `out` the way
// Linux's signalfd_copyinfo does for the siginfo layout the signal code recorded.
void dequeue(int sig, Record* out) {
  sched::Task* t = sched::current();
  uint64_t b = 1ull << (sig - 1);
  bool own = t->pending & b;
  sched::SigInfo si = own ? t->info[sig - 1] : t->proc->info_shared[sig - 1];
  if (own) t->pending &= ~b;
  else t->proc->pending &= ~b;
  memset(out, 0, sizeof *out);
  out->ssi_signo = uint32_t(sig);
  out->ssi_code = si.code;
  if (si.code == signal::kCodeUser || si.code == signal::kCodeTkill || sig == kSigChld) {
    out->ssi_pid = uint32_t(si.pid);
    out->ssi_uid = 1000;  // the job's uid (getuid)
    if (sig == kSigChld) out->ssi_status = si.status;
  } else if (si.code == signal::kCodeTimer) {
    out->ssi_ptr = si.addr;
    out->ssi_int = int32_t(si.addr);
  } else {
    out->ssi_addr = si.addr;
  }
}

}  // namespace

fs::Node* create(uint64_t mask) {
  fs::Node* n = fs::new_anonymous_file();
  if (!n) return nullptr;
  auto* s = static_cast<State*>(mm::kmalloc(sizeof(State)));
  if (!s) {
    mm::kfree(n);
    return nullptr;
  }
  s->mask = mask & ~kUnblockable;
  n->mode = 0600;  // an anonymous inode: no file type bits, as Linux reports it
  n->nlink = 1;
  n->special = fs::Special::kSignalfd;
  n->priv = s;
  return n;
}

void set_mask(fs::Node* n, uint64_t mask) {
  of(n)->mask = mask & ~kUnblockable;
  readiness::notify();  // a waiting poller re-checks against the new mask
}

void close(fs::Node* n) {
  if (n->opens) return;
  mm::kfree(of(n));
  mm::kfree(n);  // in no directory: nothing else points at it
}

int64_t read(fs::Node* n, uint8_t* dst, uint64_t len, bool nonblock, bool user) {
  if (len < kInfoBytes) return -EINVAL;
  for (;;) {
    if (ready(n)) {
      if (user && !mm::user_ok(uint64_t(dst), len / kInfoBytes * kInfoBytes, true)) return -EFAULT;
      uint64_t done = 0;
      for (uint64_t r; done + kInfoBytes <= len && (r = ready(n)); done += kInfoBytes) {
        sched::Task* t = sched::current();
        // The thread's own signals before the process's, lowest number first (signal.cc).
        uint64_t own = t->pending & of(n)->mask;
        int sig = __builtin_ctzll(own ? own : r) + 1;
        Record rec;
        dequeue(sig, &rec);
        memcpy(dst + done, &rec, kInfoBytes);
      }
      return int64_t(done);
    }
    if (nonblock) return -EAGAIN;
    // signal::send_task/send_process notify the readiness queue, so a blocked signal wakes us.
    if (sched::wait(&readiness::changed, 0) == -EINTR) return -EINTR;
  }
}

uint32_t poll(const fs::Node* n) { return ready(n) ? readiness::POLLIN | readiness::POLLRDNORM : 0; }

uint64_t generation(const fs::Node* n) {
  // The pending set itself: a new signal changes it, a read clears it.
  return ready(n) + 1;
}

}  // namespace k::signalfd
