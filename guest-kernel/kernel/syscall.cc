// The Linux x86-64 syscall table of the guest kernel: dispatch, memory, time, identity and
// process calls (file calls live in files.cc). Numbers from arch/x86/entry/syscalls/
// syscall_64.tbl; semantics from each call's man page. An unknown call returns -ENOSYS and is
// counted per number in the page at kSyscallCountGpa. Process, thread and signal calls live in
// process.cc and signal.cc. Single vCPU.
#include "arch/arch.h"
#include "kernel/clock.h"
#include "fs/files.h"
#include "fs/jobfiles.h"
#include "fs/vfs.h"
#include "kernel.h"
#include "linux_abi.h"
#include "fs/loader.h"
#include "mm/mm.h"
#include "mm/pmm.h"
#include "kernel/random.h"
#include "kernel/process.h"
#include "kernel/signal.h"
#include "kernel/task.h"
#include "kernel/timer.h"

namespace k {
namespace {


bool put_user(uint64_t dst, const void* src, uint64_t n) {
  if (!mm::user_ok(dst, n, true)) return false;
  memcpy(reinterpret_cast<void*>(dst), src, n);
  return true;
}
bool get_user(void* dst, uint64_t src, uint64_t n) {
  if (!mm::user_ok(src, n, false)) return false;
  memcpy(dst, reinterpret_cast<const void*>(src), n);
  return true;
}

// Out of guest memory: the job ends with reason memory-limit, like a cgroup OOM kill.
int64_t check_mem(int64_t r) {
  if (r == -ENOMEM) end_job(kReqMemLimit, 0);
  return r;
}

int64_t sys_brk(uint64_t want) {
  sched::Process* p = sched::current_proc();
  uint64_t& g_brk_start = p->brk_start;
  uint64_t& g_brk = p->brk;
  if (!g_brk_start) g_brk_start = g_brk = loader::initial_brk();
  // Out of range (brk(-1) included): the break stays and is returned, as Linux does (brk(2)).
  if (want < g_brk_start || want > mm::kMmapTop) return int64_t(g_brk);
  // The mapped heap grows in whole 2 MiB pages; brk itself moves by the byte.
  uint64_t cur_top = pmm::huge_up(g_brk), new_top = pmm::huge_up(want);
  if (new_top > cur_top) {
    if (!mm::is_free(cur_top, new_top - cur_top)) return int64_t(g_brk);
    check_mem(mm::map_anon(cur_top, new_top - cur_top, mm::kRead | mm::kWrite));
  } else if (new_top < cur_top) {
    mm::unmap(new_top, cur_top - new_top);
  }
  g_brk = want;
  return int64_t(g_brk);
}

// Maps [va, va+len) from file `n` at `off`. Read-only pages of the root file system image are
// mapped in place (the image is a read-only memslot shared by every VM); shared mappings of
// writable-layer files map the file's own pages; everything else gets private copies.
int64_t map_file(uint64_t va, uint64_t len, uint32_t prot, fs::Node* n, uint64_t off, bool shared) {
  if (shared && (prot & mm::kWrite)) {
    // Writes must reach the file: give it every page of the range in the writable layer.
    uint64_t need = off + len < n->size ? off + len : n->size;
    for (uint64_t o = off; o < need; o += kPage) {
      uint8_t b;
      int64_t r = fs::read(n, o, &b, 1);
      if (r < 0 || fs::write(n, o, &b, 1) < 0) return -ENOMEM;
    }
  }
  for (uint64_t i = 0; i < len; i += kPage) {
    uint64_t o = off + i;
    bool image = false;
    uint64_t pa = o < n->size ? fs::page_gpa(n, o, &image) : 0;
    bool in_place = pa && ((image && !(prot & mm::kWrite)) || (!image && shared));
    if (in_place) {
      if (!image) n->mapped = true;  // the file must not free this page while the job maps it
      if (!mm::map_page(va + i, pa, prot, false)) return -ENOMEM;
      continue;
    }
    uint64_t page = pmm::alloc();
    if (!page) return -ENOMEM;
    if (o < n->size && fs::read(n, o, phys(page), kPage) < 0) {
      pmm::free(page);
      return -EIO;
    }
    if (!mm::map_page(va + i, page, prot ? prot : mm::kRead, true)) {
      pmm::free(page);
      return -ENOMEM;
    }
  }
  mm::note_vma(va, len, prot);
  if (!prot) mm::protect(va, len, 0);
  return 0;
}

int64_t sys_mmap(uint64_t addr, uint64_t len, uint64_t prot, uint64_t flags, int64_t fd,
                 uint64_t off) {
  if (!len || (addr & (kPage - 1)) || (off & (kPage - 1))) return -EINVAL;
  if (len > mm::kUserMax) return -ENOMEM;
  len = page_up(len);
  fs::Node* node = nullptr;
  if (!(flags & MAP_ANONYMOUS)) {
    bool fd_writable;
    int64_t r = files::mmap_node(fd, &node, &fd_writable);
    if (r) return r;
    if (node->special == fs::Special::kZero) node = nullptr;  // /dev/zero: anonymous memory
    else if (node->special != fs::Special::kNone || !fs::is_reg(node)) return -ENODEV;
    else if ((flags & MAP_SHARED) && (prot & mm::kWrite) && !fd_writable) return -EACCES;
    if (off + len < off) return -EOVERFLOW;
  }
  if (!(flags & (MAP_PRIVATE | MAP_SHARED))) return -EINVAL;  // MAP_SHARED: one process, same
  uint32_t p = uint32_t(prot & 7);
  uint64_t va;
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (addr < mm::kUserMin || addr + len > mm::kUserMax || addr + len < addr) return -ENOMEM;
    if ((flags & MAP_FIXED_NOREPLACE) && !mm::is_free(addr, len)) return -EEXIST;
    mm::unmap(addr, len);
    va = addr;
  } else if (addr >= mm::kUserMin && addr < mm::kMmapTop && len <= mm::kMmapTop - addr && mm::is_free(addr, len)) {
    va = addr;
  } else {
    va = mm::find_free(len);
    if (!va) return -ENOMEM;
  }
  int64_t r;
  if (node) {
    r = map_file(va, len, p, node, off, flags & MAP_SHARED);
    if (r < 0) mm::unmap(va, len);
    if (r == -ENOMEM) end_job(kReqMemLimit, 0);
  } else {
    r = check_mem(mm::map_anon(va, len, p));
  }
  return r < 0 ? r : int64_t(va);
}

int64_t sys_munmap(uint64_t addr, uint64_t len) {
  // munmap(2): EINVAL for a range outside the user address space (mm/mmap.c do_vmi_munmap).
  if ((addr & (kPage - 1)) || !len || addr > mm::kUserMax || len > mm::kUserMax - addr) return -EINVAL;
  mm::unmap(addr, len);
  return 0;
}

int64_t sys_mremap(uint64_t old, uint64_t old_len, uint64_t new_len, uint64_t flags, uint64_t) {
  if ((old & (kPage - 1)) || !new_len || (flags & MREMAP_FIXED)) return -EINVAL;
  if (old > mm::kUserMax || old_len > mm::kUserMax - old) return -EFAULT;
  if (new_len > mm::kUserMax) return -EINVAL;  // beyond the address space, as Linux
  old_len = page_up(old_len);
  new_len = page_up(new_len);
  int64_t prot = mm::prot_at(old);
  if (prot < 0 || !mm::user_ok(old, old_len, false)) return -EFAULT;
  if (new_len <= old_len) {
    mm::unmap(old + new_len, old_len - new_len);
    return int64_t(old);
  }
  uint64_t grow = new_len - old_len;
  if (mm::is_free(old + old_len, grow) && old + new_len <= mm::kMmapTop) {
    check_mem(mm::map_anon(old + old_len, grow, uint32_t(prot)));
    return int64_t(old);
  }
  if (!(flags & MREMAP_MAYMOVE)) return -ENOMEM;
  uint64_t dst = mm::find_free(new_len);
  if (!dst) return -ENOMEM;
  mm::move(old, dst, old_len);  // page-table moves: no data is copied
  check_mem(mm::map_anon(dst + old_len, grow, uint32_t(prot)));
  return int64_t(dst);
}

int64_t sys_madvise(uint64_t addr, uint64_t len, uint64_t advice) {
  if (addr & (kPage - 1)) return -EINVAL;
  if (addr > mm::kUserMax || len > mm::kUserMax - addr) return -ENOMEM;  // not mapped (madvise(2))
  if (advice != MADV_DONTNEED) return 0;
  // Private anonymous memory reads back as zero after MADV_DONTNEED (madvise(2)).
  // Only the job's own anonymous pages: file pages mapped in place (the read-only image, a
  // shared file) are not the mapping's to clear.
  for (uint64_t a = addr; a < addr + page_up(len); a += kPage) {
    uint64_t pa = mm::owned_page(a);
    if (pa) memset(phys(pa), 0, kPage);
  }
  return 0;
}

int64_t write_timespec(uint64_t dst, uint64_t ns) {
  timespec ts{int64_t(ns / 1000000000), int64_t(ns % 1000000000)};
  return put_user(dst, &ts, sizeof ts) ? 0 : -EFAULT;
}

int64_t clock_ns(uint64_t id, uint64_t* ns) {
  switch (id) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: *ns = clock::realtime_ns(); return 0;
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME: *ns = clock::monotonic_ns(); return 0;
    case CLOCK_PROCESS_CPUTIME_ID: *ns = sched::process_cpu_ns(sched::current_proc()); return 0;
    case CLOCK_THREAD_CPUTIME_ID: *ns = sched::task_cpu_ns(sched::current()); return 0;
    default: return -EINVAL;
  }
}

// Blocks the task (other tasks run; with none, the VMM sleeps: no busy CPU). A signal handler
// ends the sleep early with -EINTR and, for a relative sleep, the time left in `urem`.
int64_t sys_nanosleep(uint64_t clk, uint64_t flags, uint64_t ureq, uint64_t urem) {
  timespec req;
  if (int64_t r = clock::read_timespec(ureq, &req)) return r;
  uint64_t ns = clock::to_ns(req), now;
  int64_t r = clock_ns(clk, &now);
  if (r) return r;
  uint64_t delta = (flags & TIMER_ABSTIME) ? (ns > now ? ns - now : 0) : ns;
  if (!delta) return 0;
  uint64_t deadline = clock::monotonic_ns() + delta;
  r = sched::sleep_until(deadline);
  if (r == -EINTR && urem && !(flags & TIMER_ABSTIME)) {
    uint64_t mono = clock::monotonic_ns();
    write_timespec(urem, deadline > mono ? deadline - mono : 0);
  }
  return r;
}

// setitimer(2)/getitimer(2)/alarm(2): struct itimerval is {interval, value}, each a timeval.
int64_t sys_setitimer(uint64_t which, uint64_t unew, uint64_t uold) {
  if (which > 2) return -EINVAL;
  sched::Process* p = sched::current_proc();
  sched::ITimer& it = p->itimer[which];
  uint64_t now = which == 0 ? clock::monotonic_ns() : sched::process_cpu_ns(p);
  if (uold) {
    uint64_t left = it.next_ns > now ? it.next_ns - now : (it.next_ns ? 1000 : 0);
    timeval tv[2] = {{int64_t(it.interval_ns / 1000000000), int64_t(it.interval_ns % 1000000000 / 1000)},
                     {int64_t(left / 1000000000), int64_t((left % 1000000000 + 999) / 1000)}};
    if (!put_user(uold, tv, sizeof tv)) return -EFAULT;
  }
  if (unew) {
    timeval tv[2];
    if (!get_user(tv, unew, sizeof tv)) return -EFAULT;
    for (auto& t : tv)
      if (t.tv_sec < 0 || t.tv_sec > 10000000000ll || t.tv_usec < 0 || t.tv_usec >= 1000000) return -EINVAL;
    uint64_t interval = uint64_t(tv[0].tv_sec) * 1000000000 + uint64_t(tv[0].tv_usec) * 1000;
    uint64_t value = uint64_t(tv[1].tv_sec) * 1000000000 + uint64_t(tv[1].tv_usec) * 1000;
    it.interval_ns = interval;
    it.next_ns = value ? now + value : 0;
    sched::timers_changed();
  }
  return 0;
}

int64_t sys_alarm(uint64_t secs_arg) {
  uint64_t secs = uint32_t(secs_arg);  // alarm(2) takes an unsigned int
  sched::Process* p = sched::current_proc();
  sched::ITimer& it = p->itimer[0];
  uint64_t now = clock::monotonic_ns();
  uint64_t left = it.next_ns > now ? (it.next_ns - now + 999999999) / 1000000000 : 0;
  if (it.next_ns && !left) left = 1;
  it.interval_ns = 0;
  it.next_ns = secs ? now + secs * 1000000000 : 0;
  sched::timers_changed();
  return int64_t(left);
}

int64_t sys_uname(uint64_t dst) {
  utsname u;
  memset(&u, 0, sizeof u);
  memcpy(u.sysname, "Linux", 6);
  memcpy(u.nodename, "vmfork", 7);
  memcpy(u.release, "6.1.0-vmfork", 13);
  memcpy(u.version, "#1 vmfork", 10);
  memcpy(u.machine, "x86_64", 7);
  memcpy(u.domainname, "(none)", 7);
  return put_user(dst, &u, sizeof u) ? 0 : -EFAULT;
}

int64_t sys_prlimit(uint64_t pid, uint64_t res, uint64_t new_lim, uint64_t old_lim) {
  if (pid != 0 && !sched::find_process(int32_t(pid))) return -ESRCH;
  (void)new_lim;  // limits are the VMM's to set; accepted and ignored
  if (!old_lim) return 0;
  rlimit r{RLIM_INFINITY, RLIM_INFINITY};
  if (res == RLIMIT_STACK) r.cur = r.max = boot->stack_bytes;
  if (res == RLIMIT_NOFILE) r.cur = r.max = 256;
  if (res == RLIMIT_AS) r.cur = r.max = boot->mem_bytes;
  if (res == 6) r.cur = r.max = boot->max_procs ? boot->max_procs : 256;  // RLIMIT_NPROC
  return put_user(old_lim, &r, sizeof r) ? 0 : -EFAULT;
}

int64_t sys_getrandom(uint64_t buf, uint64_t n) {
  if (n > (32u << 20)) n = 32u << 20;
  if (!mm::user_ok(buf, n, true)) return -EFAULT;
  random::fill(reinterpret_cast<void*>(buf), n);
  return int64_t(n);
}

int64_t sys_arch_prctl(uint64_t code, uint64_t addr) {
  switch (code) {
    case ARCH_SET_FS:
      if (addr >= 0x800000000000ull) return -EPERM;
      sched::current()->fs_base = addr;
      arch::wrmsr(arch::kMsrFsBase, addr);
      return 0;
    case ARCH_GET_FS: return put_user(addr, &sched::current()->fs_base, 8) ? 0 : -EFAULT;
    default: return -EINVAL;
  }
}

int64_t sys_sysinfo(uint64_t dst) {
  sysinfo si;
  memset(&si, 0, sizeof si);
  si.uptime = int64_t(clock::monotonic_ns() / 1000000000);
  si.totalram = boot->mem_bytes;
  si.freeram = boot->mem_bytes - pmm::used() * kPage;
  si.procs = uint16_t(sched::process_count());
  si.mem_unit = 1;
  return put_user(dst, &si, sizeof si) ? 0 : -EFAULT;
}

void count_syscall(uint64_t nr, bool unknown) {
  chan->syscalls++;
  if (unknown) {
    chan->unknown_syscalls++;
    auto* counts = phys<uint32_t>(kSyscallCountGpa);
    counts[nr < kSyscallCountSlots ? nr : kSyscallCountSlots - 1]++;
  }
}

}  // namespace

int64_t dispatch(Regs* f) {
  const uint64_t nr = f->orig_rax;
  const uint64_t a0 = f->rdi, a1 = f->rsi, a2 = f->rdx, a3 = f->r10, a4 = f->r8, a5 = f->r9;
  count_syscall(nr, false);
  const uint64_t args[6] = {a0, a1, a2, a3, a4, a5};
  int64_t ret;
  if (files::dispatch(nr, args, &ret)) {
    // Slow-device calls a signal handler interrupted restart under SA_RESTART (signal(7)).
    if (ret == -EINTR && (nr <= 1 || nr == 19 || nr == 20 || nr == 2 || nr == 257 || nr == 16))
      return -signal::kErestartSys;
    // A write to a pipe nobody reads raises SIGPIPE as well (pipe(7)).
    if (ret == -EPIPE && (nr == 1 || nr == 20 || nr == 40 || nr == 326 || nr == 18 || nr == 296))
      signal::send_task(sched::current(), 13, signal::kCodeKernel, 0);
    return ret;
  }
  if (process::dispatch(nr, args, f, &ret)) return ret;
  if (signal::dispatch(nr, args, f, &ret)) return ret;
  if (timer::dispatch(nr, args, &ret)) return ret;
  switch (nr) {
    case 9: return sys_mmap(a0, a1, a2, a3, int64_t(a4), a5);
    case 10: return mm::protect(a0, a1, uint32_t(a2 & 7));
    case 11: return sys_munmap(a0, a1);
    case 12: return sys_brk(a0);
    case 25: return sys_mremap(a0, a1, a2, a3, a4);
    case 28: return sys_madvise(a0, a1, a2);
    case 35: return sys_nanosleep(CLOCK_MONOTONIC, 0, a0, a1);
    case 36: case 38: {                                                 // getitimer, setitimer
      if (nr == 36) return sys_setitimer(a0, 0, a1);
      return sys_setitimer(a0, a1, a2);
    }
    case 37: return sys_alarm(a0);
    case 63: return sys_uname(a0);
    case 96: {                                                          // gettimeofday
      uint64_t ns = clock::realtime_ns();
      timeval tv{int64_t(ns / 1000000000), int64_t(ns % 1000000000 / 1000)};
      if (a0 && !put_user(a0, &tv, sizeof tv)) return -EFAULT;
      return 0;
    }
    case 97: return sys_prlimit(0, a0, 0, a1);                          // getrlimit
    case 98: {                                                          // getrusage
      // struct rusage (getrusage(2)): ru_utime at 0, ru_maxrss (KiB) at 32.
      uint8_t ru[144] = {};
      sched::Process* p = sched::current_proc();
      int64_t who = int64_t(a0);
      if (who != 0 && who != -1 && who != 1) return -EINVAL;
      uint64_t us = (who == 0 ? sched::process_cpu_ns(p) : who == 1 ? sched::task_cpu_ns(sched::current())
                                                                     : p->children_cpu_ns) / 1000;
      int64_t tv[2] = {int64_t(us / 1000000), int64_t(us % 1000000)};
      memcpy(ru, tv, sizeof tv);
      int64_t maxrss_kb = int64_t(chan->pages_peak * (kPage / 1024));
      memcpy(ru + 32, &maxrss_kb, 8);
      return put_user(a1, ru, sizeof ru) ? 0 : -EFAULT;
    }
    case 26:                                                            // msync
      if ((a0 & (kPage - 1)) || (a2 & ~7ull)) return -EINVAL;
      return mm::prot_at(a0) < 0 ? -ENOMEM : 0;                         // shared maps are memory
    case 27: {                                                          // mincore
      if (a0 & (kPage - 1)) return -EINVAL;
      uint64_t pages = page_up(a1) / kPage;
      if (!mm::user_ok(a2, pages, true)) return -EFAULT;
      for (uint64_t i = 0; i < pages; i++) {
        if (mm::prot_at(a0 + i * kPage) < 0) return -ENOMEM;
        reinterpret_cast<uint8_t*>(a2)[i] = 1;                          // mapped eagerly: resident
      }
      return 0;
    }
    case 115: return 0;                                                 // getgroups: none
    case 99: return sys_sysinfo(a0);
    case 100: {                                                         // times
      sched::Process* p = sched::current_proc();
      int64_t t[4] = {int64_t(sched::process_cpu_ns(p) / 10000000), 0, int64_t(p->children_cpu_ns / 10000000), 0};
      if (a0 && !put_user(a0, t, sizeof t)) return -EFAULT;
      return int64_t(clock::monotonic_ns() / 10000000);
    }
    case 102: case 104: case 107: case 108: return 1000;                // get[e]uid, get[e]gid
    case 105: case 106: return a0 == 1000 ? 0 : -EPERM;                 // setuid, setgid
    case 157:                                                           // prctl
      if (a0 == 1) {                                                    // PR_SET_PDEATHSIG
        if (a1 > 64) return -EINVAL;
        sched::current_proc()->pdeath_signal = int32_t(a1);
        return 0;
      }
      if (a0 == 2) {                                                    // PR_GET_PDEATHSIG
        int32_t sig = sched::current_proc()->pdeath_signal;
        return put_user(a1, &sig, 4) ? 0 : -EFAULT;
      }
      if (a0 == 15) return 0;                                           // PR_SET_NAME
      if (a0 == 16) return put_user(a1, "job\0\0\0\0\0\0\0\0\0\0\0\0", 16) ? 0 : -EFAULT;  // PR_GET_NAME
      return -EINVAL;
    case 158: return sys_arch_prctl(a0, a1);
    case 160: return 0;                                                 // setrlimit
    case 201: {                                                         // time
      int64_t t = int64_t(clock::realtime_ns() / 1000000000);
      if (a0 && !put_user(a0, &t, 8)) return -EFAULT;
      return t;
    }
    case 203: return 0;                                                 // sched_setaffinity
    case 204: {                                                         // sched_getaffinity
      if (a1 < 8) return -EINVAL;
      uint64_t mask = 1;
      return put_user(a2, &mask, 8) ? 8 : -EFAULT;
    }
    case 228: {                                                         // clock_gettime
      uint64_t ns;
      int64_t r = clock_ns(a0, &ns);
      return r ? r : write_timespec(a1, ns);
    }
    case 229:                                                           // clock_getres
      if (a1) return write_timespec(a1, 1);
      return 0;
    case 230: return sys_nanosleep(a0, a1, a2, a3);                     // clock_nanosleep
    case 302: return sys_prlimit(a0, a1, a2, a3);
    case 318: return sys_getrandom(a0, a1);
    // rseq (334): not offered. Tasks are preempted and take signals, and the kernel does not
    // abort rseq critical sections, so registration would promise what it does not do; glibc
    // and others fall back when it answers ENOSYS.
    default:
      count_syscall(nr, true);
      chan->syscalls--;  // counted twice above
      return -ENOSYS;
  }
}


extern "C" void syscall_entry_c(Regs* r) {
  if (r->orig_rax == sched::kNrTick) sched::tick(r);
  else r->rax = uint64_t(dispatch(r));
  sched::exit_to_user(r);
}

}  // namespace k
