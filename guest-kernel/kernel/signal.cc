// Signals (see signal.h). Frame layout: Linux arch/x86/kernel/signal.c (x64_setup_rt_frame,
// get_sigframe) and the uapi structs sigcontext (asm/sigcontext.h), ucontext (asm/ucontext.h),
// siginfo (asm-generic/siginfo.h). FPU state is the 512-byte FXSAVE image (no XSAVE here: the
// guest CPUID reports none).
#include "kernel/signal.h"

#include "fs/readiness.h"
#include "kernel/clock.h"
#include "kernel/process.h"
#include "kernel/sched.h"
#include "linux_abi.h"
#include "mm/mm.h"

namespace k::signal {
namespace {

using sched::Process;
using sched::SigAction;
using sched::SigInfo;
using sched::Task;

constexpr uint64_t SIG_DFL = 0, SIG_IGN = 1;
constexpr uint64_t SA_SIGINFO = 4, SA_ONSTACK = 0x08000000, SA_RESTART = 0x10000000,
                   SA_NODEFER = 0x40000000, SA_RESETHAND = 0x80000000, SA_RESTORER = 0x04000000;
constexpr int SIGKILL_ = 9, SIGSTOP = 19, SIGCHLD = 17, SIGCONT = 18, SIGURG = 23, SIGWINCH = 28;
constexpr int32_t SS_ONSTACK = 1, SS_DISABLE = 2;
constexpr uint64_t kMinSigStack = 2048;

uint64_t bit(int sig) { return 1ull << (sig - 1); }
constexpr uint64_t kUnblockable = (1ull << (SIGKILL_ - 1)) | (1ull << (SIGSTOP - 1));

// Default action (signal(7)): 0 terminate, 1 ignore, 2 core dump (terminate, status | 0x80).
int default_action(int sig) {
  switch (sig) {
    case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:
    case 19: case 20: case 21: case 22:  // stop signals: no job control here, so ignored
      return 1;
    case 3: case 4: case 5: case 6: case 7: case 8: case 11: case 24: case 25: case 31:
      return 2;
    default: return 0;
  }
}

bool ignored(Process* p, int sig) {
  uint64_t h = p->actions[sig - 1].handler;
  return h == SIG_IGN || (h == SIG_DFL && default_action(sig) == 1);
}

// An ignored signal is discarded when sent, unless blocked: then it stays pending, for
// sigtimedwait or a signalfd to take (signal(7), Linux's sig_ignored).
bool discard(Task* t, Process* p, int sig) {
  if (sig == SIGKILL_ || !ignored(p, sig)) return false;
  if (t) return !(t->sigmask & bit(sig));
  for (Task* o = sched::first_task(); o; o = sched::next_task(o))
    if (o->proc == p && o->state != Task::kDead && (o->sigmask & bit(sig))) return false;
  return true;
}

// The uapi layouts, 64-bit.
struct StackT {
  uint64_t sp;
  int32_t flags, pad;
  uint64_t size;
};
struct SigContext {  // struct sigcontext, 256 bytes
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate, reserved[8];
};
struct UContext {  // struct ucontext, 304 bytes
  uint64_t flags, link;
  StackT stack;
  SigContext mcontext;
  uint64_t sigmask;
};
struct SigInfoUser {  // siginfo_t, 128 bytes
  int32_t signo, errno_, code, pad;
  union {
    struct { int32_t pid, uid; int32_t status, pad2; } child;  // kill: pid, uid
    uint64_t addr;                                             // faults
    struct { int32_t tid, overrun; uint64_t value; } timer;
  };
  uint8_t rest[128 - 32];
};
struct RtSigFrame {
  uint64_t pretcode;
  UContext uc;
  SigInfoUser info;
};
static_assert(sizeof(SigContext) == 256 && sizeof(UContext) == 304 && sizeof(SigInfoUser) == 128,
              "signal frame layout: arch/x86/include/uapi/asm/sigcontext.h");

bool on_altstack(const Task* t, uint64_t sp) {
  return t->altstack_size && sp > t->altstack_sp && sp - t->altstack_sp <= t->altstack_size;
}

// Picks a pending, unblocked signal of `t` (thread-directed first, lowest number first); 0 if none.
int next_signal(Task* t, bool* shared) {
  uint64_t own = t->pending & ~t->sigmask, proc = t->proc->pending & ~t->sigmask;
  // SIGKILL and the synchronous fault signals first, as Linux's dequeue_synchronous_signal.
  if (own) {
    *shared = false;
    return __builtin_ctzll(own) + 1;
  }
  if (proc) {
    *shared = true;
    return __builtin_ctzll(proc) + 1;
  }
  return 0;
}

// Builds the handler's frame on the job's stack. False if the stack cannot take it.
bool setup_frame(Task* t, Regs* r, int sig, const SigAction& act, const SigInfo& si) {
  uint64_t sp = r->rsp - 128;  // below the red zone
  if ((act.flags & SA_ONSTACK) && t->altstack_size && !(t->altstack_flags & SS_DISABLE) &&
      !on_altstack(t, r->rsp))
    sp = t->altstack_sp + t->altstack_size;
  sp = (sp - 512) & ~63ull;
  uint64_t fpstate = sp;
  sp -= sizeof(RtSigFrame);
  sp = (sp & ~15ull) - 8;  // as after a call: (rsp + 8) % 16 == 0 at the handler's entry
  if (!mm::user_ok(sp, fpstate + 512 - sp, true)) return false;
  asm volatile("fxsave64 %0" : "=m"(*reinterpret_cast<uint8_t(*)[512]>(fpstate)));
  auto* f = reinterpret_cast<RtSigFrame*>(sp);
  memset(f, 0, sizeof *f);
  f->pretcode = act.restorer;
  f->uc.stack.sp = t->altstack_sp;
  f->uc.stack.size = t->altstack_size;
  f->uc.stack.flags = t->altstack_size ? (on_altstack(t, r->rsp) ? SS_ONSTACK : 0) : SS_DISABLE;
  SigContext& m = f->uc.mcontext;
  m = {r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15, r->rdi, r->rsi, r->rbp, r->rbx,
       r->rdx, r->rax, r->rcx, r->rsp, r->rip, r->rflags, uint16_t(r->cs), 0, 0, uint16_t(r->ss),
       0, 0, t->sigmask, 0, fpstate, {}};
  if (si.code != kCodeUser && si.code != kCodeTkill && si.code != kCodeTimer && si.addr) m.cr2 = si.addr;
  f->uc.sigmask = t->restore_mask ? t->saved_mask : t->sigmask;
  t->restore_mask = false;
  f->info.signo = sig;
  f->info.code = si.code;
  if (sig == SIGCHLD) f->info.child = {si.pid, 1000, si.status, 0};
  else if (si.code == kCodeUser || si.code == kCodeTkill) f->info.child = {si.pid, 1000, 0, 0};
  else if (si.code == kCodeTimer) f->info.timer = {0, 0, si.addr};
  else if (si.code < 0) f->info.timer = {si.pid, 1000, si.addr};  // _rt: pid, uid, si_value
  else f->info.addr = si.addr;
  r->rsp = sp;
  r->rip = act.handler;
  r->rdi = uint64_t(sig);
  r->rsi = sp + offsetof(RtSigFrame, info);
  r->rdx = sp + offsetof(RtSigFrame, uc);
  r->rax = 0;
  r->rflags &= ~0x40500ull;  // TF, DF, AC cleared for the handler
  t->sigmask |= act.mask;
  if (!(act.flags & SA_NODEFER)) t->sigmask |= bit(sig);
  t->sigmask &= ~kUnblockable;
  return true;
}

// SIGKILL and fatal defaults end the process; fault signals were handled in on_fault.
void record(SigInfo* slot, int sig, int32_t code, uint64_t addr, int32_t pid) {
  *slot = {sig, code, pid, 0, addr};
}

}  // namespace

void send_task(Task* t, int sig, int32_t code, uint64_t addr, int32_t pid) {
  if (sig < 1 || sig > 64 || t->state == Task::kDead) return;
  Process* p = t->proc;
  if (discard(t, p, sig)) return;
  record(&t->info[sig - 1], sig, code, addr, pid);
  t->pending |= bit(sig);
  if (!(t->sigmask & bit(sig)) || sig == SIGKILL_) sched::interrupt(t);
  readiness::notify();  // a signalfd reader or poller of a blocked signal looks again
}

void send_process(Process* p, int sig, int32_t code, uint64_t addr, int32_t pid) {
  if (sig < 1 || sig > 64 || p->zombie) return;
  if (discard(nullptr, p, sig)) return;
  record(&p->info_shared[sig - 1], sig, code, addr, pid);
  p->pending |= bit(sig);
  readiness::notify();  // a signalfd reader or poller of a blocked signal looks again
  // Wake one thread that does not block it so it can take the signal.
  for (Task* t = sched::first_task(); t; t = sched::next_task(t)) {
    if (t->proc != p || t->state == Task::kDead) continue;
    if (!(t->sigmask & bit(sig)) || sig == SIGKILL_) {
      sched::interrupt(t);
      if (sig != SIGKILL_) break;
    }
  }
}

bool pending_for(Task* t) {
  if (t->exiting || t->proc->exiting) return true;
  return ((t->pending | t->proc->pending) & ~t->sigmask) != 0;
}

void die(int sig) {
  int core = default_action(sig) == 2 ? 0x80 : 0;
  process::exit_group_status(sig | core);
}

void deliver(Regs* r) {
  Task* t = sched::current();
  bool handled = false;
  for (;;) {
    if (t->exiting || t->proc->exiting) process::exit_thread_now();
    bool shared;
    int sig = next_signal(t, &shared);
    if (!sig) break;
    SigInfo si = shared ? t->proc->info_shared[sig - 1] : t->info[sig - 1];
    if (shared) t->proc->pending &= ~bit(sig);
    else t->pending &= ~bit(sig);
    SigAction act = t->proc->actions[sig - 1];
    if (sig == SIGKILL_ || act.handler == SIG_DFL) {
      if (sig != SIGKILL_ && default_action(sig) == 1) continue;
      die(sig);
    }
    if (act.handler == SIG_IGN) continue;
    // An interrupted syscall: restart it after the handler (SA_RESTART) or fail with EINTR.
    if (int64_t(r->orig_rax) >= 0 && int64_t(r->rax) == -kErestartSys) {
      if (act.flags & SA_RESTART) {
        r->rax = r->orig_rax;
        r->rip -= 2;
      } else {
        r->rax = uint64_t(-EINTR);
      }
    }
    if (act.flags & SA_RESETHAND) t->proc->actions[sig - 1].handler = SIG_DFL;
    if (!(act.flags & SA_RESTORER) || !setup_frame(t, r, sig, act, si)) die(SIGSEGV);
    handled = true;
    break;  // one frame per return, as Linux; further signals nest at the handler's first syscall
  }
  if (!handled) {
    if (int64_t(r->orig_rax) >= 0 && int64_t(r->rax) == -kErestartSys) {  // no handler ran
      r->rax = r->orig_rax;
      r->rip -= 2;
    }
    if (t->restore_mask) {
      t->sigmask = t->saved_mask;
      t->restore_mask = false;
    }
  }
}

bool on_fault(Regs* r, uint64_t vector, uint64_t error, uint64_t addr) {
  int sig;
  int32_t code;
  switch (vector) {
    case 0: sig = SIGFPE; code = 1; break;                      // FPE_INTDIV
    case 16: case 19: sig = SIGFPE; code = 0; break;
    case 3: sig = SIGTRAP; code = kCodeKernel; break;
    case 6: sig = SIGILL; code = 2; break;                      // ILL_ILLOPN
    case 14: sig = SIGSEGV; code = (error & 1) ? 2 : 1; break;  // SEGV_ACCERR / SEGV_MAPERR
    case 13: sig = SIGSEGV; code = kCodeKernel; addr = 0; break;
    case 17: sig = SIGBUS; code = 1; break;                     // BUS_ADRALN
    default: return false;
  }
  Task* t = sched::current();
  SigAction act = t->proc->actions[sig - 1];
  if (act.handler == SIG_DFL || act.handler == SIG_IGN || (t->sigmask & bit(sig))) return false;
  SigInfo si = {sig, code, 0, 0, addr};
  if (act.flags & SA_RESETHAND) t->proc->actions[sig - 1].handler = SIG_DFL;
  if (!(act.flags & SA_RESTORER) || !setup_frame(t, r, sig, act, si)) return false;
  return true;
}

namespace {

int64_t sys_rt_sigaction(uint64_t sig, uint64_t uact, uint64_t uold, uint64_t size) {
  if (size != 8 || sig < 1 || sig > 64) return -EINVAL;
  Process* p = sched::current_proc();
  SigAction& cur = p->actions[sig - 1];
  if (uold) {
    if (!mm::user_ok(uold, sizeof(SigAction), true)) return -EFAULT;
    memcpy(reinterpret_cast<void*>(uold), &cur, sizeof cur);
  }
  if (uact) {
    if (sig == uint64_t(SIGKILL_) || sig == uint64_t(SIGSTOP)) return -EINVAL;
    SigAction a;
    if (!mm::user_ok(uact, sizeof a, false)) return -EFAULT;
    memcpy(&a, reinterpret_cast<const void*>(uact), sizeof a);
    a.mask &= ~kUnblockable;
    cur = a;
    // Setting SIG_IGN (or an ignoring default) discards the pending signal (signal(7)).
    if (ignored(p, int(sig))) {
      p->pending &= ~bit(int(sig));
      for (Task* t = sched::first_task(); t; t = sched::next_task(t))
        if (t->proc == p) t->pending &= ~bit(int(sig));
    }
  }
  return 0;
}

int64_t sys_rt_sigprocmask(uint64_t how, uint64_t uset, uint64_t uold, uint64_t size) {
  if (size != 8) return -EINVAL;
  Task* t = sched::current();
  uint64_t old = t->sigmask;
  if (uset) {
    uint64_t set;
    if (!mm::user_ok(uset, 8, false)) return -EFAULT;
    memcpy(&set, reinterpret_cast<const void*>(uset), 8);
    switch (how) {
      case 0: t->sigmask |= set; break;   // SIG_BLOCK
      case 1: t->sigmask &= ~set; break;  // SIG_UNBLOCK
      case 2: t->sigmask = set; break;    // SIG_SETMASK
      default: return -EINVAL;
    }
    t->sigmask &= ~kUnblockable;
  }
  if (uold) {
    if (!mm::user_ok(uold, 8, true)) return -EFAULT;
    memcpy(reinterpret_cast<void*>(uold), &old, 8);
  }
  return 0;
}

int64_t sys_rt_sigreturn(Regs* r) {
  Task* t = sched::current();
  uint64_t fa = r->rsp - 8;
  if (!mm::user_ok(fa, sizeof(RtSigFrame), false)) die(SIGSEGV);
  auto* f = reinterpret_cast<const RtSigFrame*>(fa);
  const SigContext& m = f->uc.mcontext;
  r->r8 = m.r8; r->r9 = m.r9; r->r10 = m.r10; r->r11 = m.r11; r->r12 = m.r12; r->r13 = m.r13;
  r->r14 = m.r14; r->r15 = m.r15; r->rdi = m.rdi; r->rsi = m.rsi; r->rbp = m.rbp; r->rbx = m.rbx;
  r->rdx = m.rdx; r->rax = m.rax; r->rcx = m.rcx; r->rsp = m.rsp; r->rip = m.rip;
  r->rflags = (r->rflags & ~0x40dd5ull) | (m.eflags & 0x40dd5ull);  // user-changeable flags only
  r->cs = kUserCs;
  r->ss = kUserDs;
  r->orig_rax = ~0ull;  // not a syscall any more: no restart logic on the way out
  if (m.fpstate) {
    if ((m.fpstate & 15) || !mm::user_ok(m.fpstate, 512, false)) die(SIGSEGV);
    // FXRSTOR #GPs on reserved MXCSR bits: restore from a kernel copy with only the defined
    // bits (the job's page may be read-only, so it is not changed in place).
    alignas(16) uint8_t fx[512];
    memcpy(fx, reinterpret_cast<const void*>(m.fpstate), sizeof fx);
    uint32_t mxcsr;
    memcpy(&mxcsr, fx + 24, 4);
    mxcsr &= 0xffff;
    memcpy(fx + 24, &mxcsr, 4);
    asm volatile("fxrstor64 %0" ::"m"(fx));
  }
  // A non-canonical or kernel-half RIP would fault IRETQ in the kernel: the job's SIGSEGV.
  if (r->rip >= 0x800000000000ull) die(SIGSEGV);
  t->sigmask = f->uc.sigmask & ~kUnblockable;
  // uc_stack: restore the alternate stack as it was (restore_altstack).
  if (!on_altstack(t, r->rsp)) {
    t->altstack_sp = f->uc.stack.sp;
    t->altstack_size = f->uc.stack.size;
    t->altstack_flags = f->uc.stack.flags & SS_DISABLE;
    if (t->altstack_flags & SS_DISABLE) t->altstack_size = 0;
  }
  return int64_t(r->rax);
}

int64_t sys_sigaltstack(uint64_t uss, uint64_t uold, uint64_t user_rsp) {
  Task* t = sched::current();
  if (uold) {
    StackT o{t->altstack_sp, t->altstack_size ? (on_altstack(t, user_rsp) ? SS_ONSTACK : 0) : SS_DISABLE, 0,
             t->altstack_size};
    if (!mm::user_ok(uold, sizeof o, true)) return -EFAULT;
    memcpy(reinterpret_cast<void*>(uold), &o, sizeof o);
  }
  if (uss) {
    StackT s;
    if (!mm::user_ok(uss, sizeof s, false)) return -EFAULT;
    memcpy(&s, reinterpret_cast<const void*>(uss), sizeof s);
    if (on_altstack(t, user_rsp)) return -EPERM;
    if (s.flags & ~(SS_DISABLE | int32_t(0x80000000))) return -EINVAL;
    if (s.flags & SS_DISABLE) {
      t->altstack_sp = t->altstack_size = 0;
      t->altstack_flags = SS_DISABLE;
    } else {
      if (s.size < kMinSigStack) return -ENOMEM;
      t->altstack_sp = s.sp;
      t->altstack_size = s.size;
      t->altstack_flags = 0;
    }
  }
  return 0;
}

int64_t sys_rt_sigsuspend(uint64_t uset, uint64_t size) {
  if (size != 8) return -EINVAL;
  uint64_t set;
  if (!mm::user_ok(uset, 8, false)) return -EFAULT;
  memcpy(&set, reinterpret_cast<const void*>(uset), 8);
  Task* t = sched::current();
  t->saved_mask = t->sigmask;
  t->restore_mask = true;
  t->sigmask = set & ~kUnblockable;
  while (sched::wait(nullptr, 0) != -EINTR) {
  }
  return -EINTR;
}

int64_t sys_rt_sigpending(uint64_t uset, uint64_t size) {
  if (size > 8) return -EINVAL;
  Task* t = sched::current();
  uint64_t set = (t->pending | t->proc->pending) & t->sigmask;
  if (!mm::user_ok(uset, size, true)) return -EFAULT;
  memcpy(reinterpret_cast<void*>(uset), &set, size);
  return 0;
}

int64_t sys_rt_sigtimedwait(uint64_t uset, uint64_t uinfo, uint64_t uts, uint64_t size) {
  if (size != 8) return -EINVAL;
  uint64_t set;
  if (!mm::user_ok(uset, 8, false)) return -EFAULT;
  memcpy(&set, reinterpret_cast<const void*>(uset), 8);
  set &= ~kUnblockable;
  uint64_t deadline = 0;
  if (uts) {
    timespec ts;
    if (int64_t r = clock::read_timespec(uts, &ts)) return r;
    deadline = clock::monotonic_ns() + clock::to_ns(ts);
    if (deadline == 0) deadline = 1;
  }
  Task* t = sched::current();
  // The waited-for signals are unblocked for the wait (sigtimedwait(2)).
  uint64_t old_mask = t->sigmask;
  for (;;) {
    uint64_t ready = (t->pending | t->proc->pending) & set;
    if (ready) {
      int sig = __builtin_ctzll(ready) + 1;
      bool own = t->pending & bit(sig);
      SigInfo si = own ? t->info[sig - 1] : t->proc->info_shared[sig - 1];
      if (own) t->pending &= ~bit(sig);
      else t->proc->pending &= ~bit(sig);
      t->sigmask = old_mask;
      if (uinfo) {
        SigInfoUser u;
        memset(&u, 0, sizeof u);
        u.signo = sig;
        u.code = si.code;
        u.child = {si.pid, 1000, si.status, 0};
        if (!mm::user_ok(uinfo, sizeof u, true)) return -EFAULT;
        memcpy(reinterpret_cast<void*>(uinfo), &u, sizeof u);
      }
      return sig;
    }
    t->sigmask = old_mask & ~set;
    int64_t r = sched::wait(nullptr, deadline);
    t->sigmask = old_mask;
    if (r == -ETIMEDOUT) return -EAGAIN;
    if (r == -EINTR && !((t->pending | t->proc->pending) & set)) return -EINTR;
  }
}

int64_t sys_kill(int64_t pid, uint64_t sig) {
  if (sig > 64) return -EINVAL;
  Process* self = sched::current_proc();
  int found = 0;
  for (Process* p = sched::first_process(); p; p = sched::next_process(p)) {
    if (p->zombie) continue;
    // kill(-1): every process but the caller and process 1 (kill(2)).
    bool match = pid > 0    ? p->pid == pid
                 : pid == 0  ? p->pgid == self->pgid
                 : pid == -1 ? p != self && p->pid != 1
                             : p->pgid == -pid;
    if (!match) continue;
    found++;
    if (sig) send_process(p, int(sig), kCodeUser, 0, self->pid);
  }
  return found ? 0 : -ESRCH;
}

// rt_sigqueueinfo(2) / rt_tgsigqueueinfo(2): a signal with the caller's siginfo (si_code and
// si_value; pid and uid are the caller's). Only negative si_codes other than SI_TKILL may be
// sent to another process, as Linux checks.
int64_t sys_sigqueueinfo(int64_t tgid, int64_t tid, uint64_t sig, uint64_t uinfo) {
  if (sig < 1 || sig > 64) return -EINVAL;
  int32_t head[8];
  if (!mm::user_ok(uinfo, sizeof head, false)) return -EFAULT;
  memcpy(head, reinterpret_cast<const void*>(uinfo), sizeof head);
  int32_t code = head[2];
  uint64_t value;
  memcpy(&value, head + 6, 8);
  Process* self = sched::current_proc();
  if ((code >= 0 || code == kCodeTkill) && tgid != self->pid) return -EPERM;
  if (tid > 0) {
    Task* t = sched::find_task(int32_t(tid));
    if (!t || t->proc->pid != tgid) return -ESRCH;
    send_task(t, int(sig), code, value, self->pid);
    return 0;
  }
  Process* p = sched::find_process(int32_t(tgid));
  if (!p || p->zombie) return -ESRCH;
  send_process(p, int(sig), code, value, self->pid);
  return 0;
}

int64_t sys_tgkill(int64_t tgid, int64_t tid, uint64_t sig) {
  if (sig > 64 || tid <= 0) return -EINVAL;
  Task* t = sched::find_task(int32_t(tid));
  if (!t || (tgid > 0 && t->proc->pid != tgid)) return -ESRCH;
  if (sig) send_task(t, int(sig), kCodeTkill, 0, sched::current_proc()->pid);
  return 0;
}

}  // namespace

bool dispatch(uint64_t nr, const uint64_t a[6], Regs* r, int64_t* ret) {
  switch (nr) {
    case 13: *ret = sys_rt_sigaction(a[0], a[1], a[2], a[3]); return true;
    case 14: *ret = sys_rt_sigprocmask(a[0], a[1], a[2], a[3]); return true;
    case 15: *ret = sys_rt_sigreturn(r); return true;
    case 131: *ret = sys_sigaltstack(a[0], a[1], r->rsp); return true;
    case 127: *ret = sys_rt_sigpending(a[0], a[1]); return true;
    case 130: *ret = sys_rt_sigsuspend(a[0], a[1]); return true;
    case 128: *ret = sys_rt_sigtimedwait(a[0], a[1], a[2], a[3]); return true;
    // pid_t arguments are 32-bit: the upper half of the register is not the job's (syscalls(2)).
    case 62: *ret = sys_kill(int32_t(a[0]), uint32_t(a[1])); return true;
    case 200: *ret = sys_tgkill(-1, int32_t(a[0]), uint32_t(a[1])); return true;   // tkill
    case 234: *ret = sys_tgkill(int32_t(a[0]), int32_t(a[1]), uint32_t(a[2])); return true;
    case 129: *ret = sys_sigqueueinfo(int32_t(a[0]), 0, uint32_t(a[1]), a[2]); return true;
    case 297: *ret = sys_sigqueueinfo(int32_t(a[0]), int32_t(a[1]), uint32_t(a[2]), a[3]); return true;
    case 34:                                                              // pause
      while (sched::wait(nullptr, 0) != -EINTR) {
      }
      *ret = -EINTR;
      return true;
    default: return false;
  }
}

}  // namespace k::signal
