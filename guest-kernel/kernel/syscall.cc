// The Linux x86-64 syscall table of the guest kernel: dispatch, memory, time, identity and
// process calls (file calls live in files.cc). Numbers from arch/x86/entry/syscalls/
// syscall_64.tbl; semantics from each call's man page. An unknown call returns -ENOSYS and is
// counted per number in the page at kSyscallCountGpa. Single vCPU, no signals are delivered.
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

namespace k {
namespace {

uint64_t g_brk_start, g_brk;
uint64_t g_fs_base;

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
    case CLOCK_PROCESS_CPUTIME_ID: case CLOCK_THREAD_CPUTIME_ID: *ns = clock::cputime_ns(); return 0;
    default: return -EINVAL;
  }
}

// Sleeps by asking the VMM (one exit, no busy CPU) until CLOCK_REALTIME reaches `until_ns`.
void sleep_until_realtime(uint64_t until_ns) {
  files::flush();
  chan->sleep_until_ns = until_ns;
  ring(kReqSleep);
}

int64_t sys_nanosleep(uint64_t clk, uint64_t flags, uint64_t ureq) {
  timespec req;
  if (!get_user(&req, ureq, sizeof req)) return -EFAULT;
  if (req.tv_nsec < 0 || req.tv_nsec >= 1000000000 || req.tv_sec < 0) return -EINVAL;
  uint64_t ns = uint64_t(req.tv_sec) * 1000000000 + uint64_t(req.tv_nsec), now;
  int64_t r = clock_ns(clk, &now);
  if (r) return r;
  uint64_t delta = (flags & TIMER_ABSTIME) ? (ns > now ? ns - now : 0) : ns;
  if (delta) sleep_until_realtime(clock::realtime_ns() + delta);
  return 0;
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
  if (pid != 0 && pid != 1) return -ESRCH;
  (void)new_lim;  // limits are the VMM's to set; accepted and ignored
  if (!old_lim) return 0;
  rlimit r{RLIM_INFINITY, RLIM_INFINITY};
  if (res == RLIMIT_STACK) r.cur = r.max = boot->stack_bytes;
  if (res == RLIMIT_NOFILE) r.cur = r.max = 256;
  if (res == RLIMIT_AS) r.cur = r.max = boot->mem_bytes;
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
      g_fs_base = addr;
      arch::wrmsr(arch::kMsrFsBase, addr);
      return 0;
    case ARCH_GET_FS: return put_user(addr, &g_fs_base, 8) ? 0 : -EFAULT;
    default: return -EINVAL;
  }
}

int64_t sys_futex(uint64_t uaddr, uint64_t op, uint64_t val, uint64_t utimeout) {
  uint64_t cmd = op & FUTEX_CMD_MASK;
  if (cmd == FUTEX_WAKE) return 0;  // one thread: nobody to wake
  if (cmd != FUTEX_WAIT) return -ENOSYS;
  uint32_t cur;
  if (!get_user(&cur, uaddr, 4)) return -EFAULT;
  if (cur != uint32_t(val)) return -EAGAIN;
  if (utimeout) {
    timespec ts;
    if (!get_user(&ts, utimeout, sizeof ts)) return -EFAULT;
    sleep_until_realtime(clock::realtime_ns() + uint64_t(ts.tv_sec) * 1000000000 +
                         uint64_t(ts.tv_nsec));
    return -ETIMEDOUT;
  }
  // Waiting forever with no other thread is a deadlock: end the job instead of hanging.
  end_job(kReqSignal, SIGKILL);
}

int64_t sys_sysinfo(uint64_t dst) {
  sysinfo si;
  memset(&si, 0, sizeof si);
  si.uptime = int64_t(clock::monotonic_ns() / 1000000000);
  si.totalram = boot->mem_bytes;
  si.freeram = boot->mem_bytes - pmm::used() * kPage;
  si.procs = 1;
  si.mem_unit = 1;
  return put_user(dst, &si, sizeof si) ? 0 : -EFAULT;
}

int64_t sys_kill(uint64_t pid, uint64_t sig) {
  if (pid != 1 && pid != 0 && int64_t(pid) != -1) return -ESRCH;
  if (sig == 0) return 0;
  files::flush();
  end_job(kReqSignal, sig);  // no handlers run: every signal a job sends itself is fatal
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

extern "C" int64_t syscall_dispatch(SyscallFrame* f) {
  const uint64_t a0 = f->rdi, a1 = f->rsi, a2 = f->rdx, a3 = f->r10, a4 = f->r8, a5 = f->r9;
  count_syscall(f->nr, false);
  const uint64_t args[6] = {a0, a1, a2, a3, a4, a5};
  int64_t ret;
  if (files::dispatch(f->nr, args, &ret)) return ret;
  switch (f->nr) {
    case 9: return sys_mmap(a0, a1, a2, a3, int64_t(a4), a5);
    case 10: return mm::protect(a0, a1, uint32_t(a2 & 7));
    case 11: return sys_munmap(a0, a1);
    case 12: return sys_brk(a0);
    case 13: return 0;                                                  // rt_sigaction
    case 14:                                                            // rt_sigprocmask
      if (a2) {
        uint64_t zero = 0;
        if (!put_user(a2, &zero, a3 < 8 ? a3 : 8)) return -EFAULT;
      }
      return 0;
    case 24: return 0;                                                  // sched_yield
    case 25: return sys_mremap(a0, a1, a2, a3, a4);
    case 28: return sys_madvise(a0, a1, a2);
    case 35: return sys_nanosleep(CLOCK_MONOTONIC, 0, a0);
    case 39: case 186: return 1;                                        // getpid, gettid
    case 60: case 231:                                                  // exit, exit_group
      files::flush();
      jobfiles::collect();
      end_job(kReqExit, a0 & 0xff);
    case 62: return sys_kill(a0, a1);
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
      uint64_t us = clock::cputime_ns() / 1000;
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
      int64_t ticks = int64_t(clock::cputime_ns() / 10000000);
      int64_t t[4] = {ticks, 0, 0, 0};
      if (a0 && !put_user(a0, t, sizeof t)) return -EFAULT;
      return int64_t(clock::monotonic_ns() / 10000000);
    }
    case 102: case 104: case 107: case 108: return 1000;                // get[e]uid, get[e]gid
    case 105: case 106: return a0 == 1000 ? 0 : -EPERM;                 // setuid, setgid
    case 110: return 0;                                                 // getppid
    case 111: case 121: case 124: return 1;                             // getpgrp, getpgid, getsid
    case 131: return 0;                                                 // sigaltstack
    case 157:                                                           // prctl
      if (a0 == 15) return 0;                                           // PR_SET_NAME
      if (a0 == 16) return put_user(a1, "job\0\0\0\0\0\0\0\0\0\0\0\0", 16) ? 0 : -EFAULT;  // PR_GET_NAME
      return -EINVAL;
    case 158: return sys_arch_prctl(a0, a1);
    case 160: return 0;                                                 // setrlimit
    case 200: return sys_kill(1, a1);                                   // tkill
    case 201: {                                                         // time
      int64_t t = int64_t(clock::realtime_ns() / 1000000000);
      if (a0 && !put_user(a0, &t, 8)) return -EFAULT;
      return t;
    }
    case 202: return sys_futex(a0, a1, a2, a3);
    case 203: return 0;                                                 // sched_setaffinity
    case 204: {                                                         // sched_getaffinity
      if (a1 < 8) return -EINVAL;
      uint64_t mask = 1;
      return put_user(a2, &mask, 8) ? 8 : -EFAULT;
    }
    case 218: return 1;                                                 // set_tid_address
    case 228: {                                                         // clock_gettime
      uint64_t ns;
      int64_t r = clock_ns(a0, &ns);
      return r ? r : write_timespec(a1, ns);
    }
    case 229:                                                           // clock_getres
      if (a1) return write_timespec(a1, 1);
      return 0;
    case 230: return sys_nanosleep(a0, a1, a2);                         // clock_nanosleep
    case 234: return sys_kill(1, a2);                                   // tgkill
    case 273: return 0;                                                 // set_robust_list
    case 302: return sys_prlimit(a0, a1, a2, a3);
    case 318: return sys_getrandom(a0, a1);
    case 334: {                                                         // rseq
      // Accept registration: with one vCPU and no preemption or signals, a critical section is
      // never aborted, so cpu_id = 0 is all the kernel owes the job (rseq(2)).
      if (a2 & 1) return 0;                                             // RSEQ_FLAG_UNREGISTER
      if (a1 < 32 || (a0 & 31)) return -EINVAL;
      uint32_t ids[2] = {0, 0};                                         // cpu_id_start, cpu_id
      return put_user(a0, ids, sizeof ids) ? 0 : -EFAULT;
    }
    default:
      count_syscall(f->nr, true);
      chan->syscalls--;  // counted twice above
      return -ENOSYS;
  }
}

}  // namespace k
