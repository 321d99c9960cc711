// The synthetic /proc (see proc.h). Formats follow proc(5).
#include "fs/proc.h"

#include "arch/arch.h"
#include "fs/files.h"
#include "fs/loader.h"
#include "kernel/clock.h"
#include "kernel/task.h"
#include "kernel/random.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"
#include "mm/pmm.h"

namespace k::fs {
namespace {

enum Gen : uint32_t { kMaps, kStatus, kStat, kCmdline, kCpuinfo, kMeminfo, kSysStat, kUptime, kUuid,
                      kLoadavg, kMounts, kEnviron };

// Appends text to an anonymous file node.
struct Out {
  Node* n;
  bool ok = true;
  void put(const char* s, uint64_t len) {
    if (ok && write(n, n->size, s, len) != int64_t(len)) ok = false;
  }
  void str(const char* s) { put(s, strlen(s)); }
  void num(uint64_t v, int base = 10, int width = 0) {
    char b[24];
    int l = 0;
    do b[l++] = "0123456789abcdef"[v % uint64_t(base)], v /= uint64_t(base);
    while (v);
    while (l < width) b[l++] = '0';
    char r[24];
    for (int i = 0; i < l; i++) r[i] = b[l - 1 - i];
    put(r, uint64_t(l));
  }
  void field(const char* key, uint64_t v) {
    str(key);
    num(v);
    str("\n");
  }
  void kv(const char* key, uint64_t kb) {
    str(key);
    num(kb);
    str(" kB\n");
  }
};

void gen_maps(Out& o) {
  for (int i = 0; i < mm::vma_count(); i++) {
    uint64_t s, e;
    uint32_t p;
    mm::vma_at(i, &s, &e, &p);
    o.num(s, 16, 8);
    o.str("-");
    o.num(e, 16, 8);
    o.str((p & mm::kRead) ? " r" : " -");
    o.str((p & mm::kWrite) ? "w" : "-");
    o.str((p & mm::kExec) ? "x" : "-");
    o.str("p 00000000 00:00 0");
    if (e == mm::kUserMax) o.str("                          [stack]");
    o.str("\n");
  }
}

// The reading process's ids (/proc/self is the caller, as on Linux).
uint64_t ppid_of(const sched::Process* p) { return p->parent ? uint64_t(p->parent->pid) : 0; }

void gen_status(Out& o) {
  uint64_t rss_kb = pmm::used() * 4, peak_kb = chan->pages_peak * 4;
  const sched::Process* p = sched::current_proc();
  o.str("Name:\tjob\nUmask:\t0022\nState:\tR (running)\n");
  o.field("Tgid:\t", uint64_t(p->pid));
  o.str("Ngid:\t0\n");
  o.field("Pid:\t", uint64_t(sched::current()->tid));
  o.field("PPid:\t", ppid_of(p));
  o.str("Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nFDSize:\t1024\n");
  o.field("Threads:\t", uint64_t(p->live_threads));
  o.kv("VmPeak:\t", peak_kb);
  o.kv("VmSize:\t", rss_kb);
  o.kv("VmHWM:\t", peak_kb);
  o.kv("VmRSS:\t", rss_kb);
  o.str("Cpus_allowed:\t1\nCpus_allowed_list:\t0\n");
}

// The argv (or envp) strings as they are now in the process's memory, like Linux's
// /proc/PID/cmdline (fs/proc/base.c reads [arg_start, arg_end) of the mm); a page the process
// unmapped ends the text early.
void gen_cmdline(Out& o, bool environ) {
  const loader::ProcInfo* p = loader::current_info();
  if (!p) return;
  uint64_t va = environ ? p->env_start : p->arg_start, end = environ ? p->env_end : p->arg_end;
  while (va < end) {
    uint64_t n = page_up(va + 1) - va;
    if (n > end - va) n = end - va;
    if (!mm::user_ok(va, n, false)) return;
    o.put(reinterpret_cast<const char*>(va), n);  // in bounds: user_ok checked [va, va+n)
    va += n;
  }
}

void gen_cpuinfo(Out& o) {
  uint32_t r[4];
  char brand[49] = {};
  for (uint32_t i = 0; i < 3; i++) {
    arch::cpuid(0x80000002 + i, 0, r);
    memcpy(brand + 16 * i, r, 16);
  }
  arch::cpuid(1, 0, r);
  o.str("processor\t: 0\nvendor_id\t: ");
  uint32_t v[4];
  arch::cpuid(0, 0, v);
  char vendor[13] = {};
  memcpy(vendor, &v[1], 4);
  memcpy(vendor + 4, &v[3], 4);
  memcpy(vendor + 8, &v[2], 4);
  o.str(vendor);
  o.str("\ncpu family\t: ");
  o.num((r[0] >> 8) & 0xf);
  o.str("\nmodel\t\t: ");
  o.num(((r[0] >> 4) & 0xf) | (((r[0] >> 16) & 0xf) << 4));
  o.str("\nmodel name\t: ");
  o.str(brand);
  o.str("\ncpu MHz\t\t: ");
  o.num(boot->tsc_khz / 1000);
  o.str("\ncache size\t: 512 KB\nphysical id\t: 0\nsiblings\t: 1\ncore id\t\t: 0\ncpu cores\t: 1\n");
  o.str("flags\t\t: fpu tsc cx8 cmov mmx fxsr sse sse2 ht syscall nx lm sse3 ssse3 cx16 sse4_1 sse4_2 popcnt\n\n");
}

void gen_meminfo(Out& o) {
  uint64_t total = boot->mem_bytes / 1024, used = pmm::used() * 4;
  uint64_t free = total > used ? total - used : 0;
  o.kv("MemTotal:       ", total);
  o.kv("MemFree:        ", free);
  o.kv("MemAvailable:   ", free);
  o.kv("Buffers:        ", 0);
  o.kv("Cached:         ", 0);
  o.kv("SwapTotal:      ", 0);
  o.kv("SwapFree:       ", 0);
}

void gen_uuid(Out& o) {
  uint8_t b[16];
  random::fill(b, 16);
  b[6] = uint8_t((b[6] & 0x0f) | 0x40);  // version 4 (RFC 4122, 4.4)
  b[8] = uint8_t((b[8] & 0x3f) | 0x80);
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) o.str("-");
    o.num(b[i], 16, 2);
  }
  o.str("\n");
}

void add_gen(Node* dir, const char* name, Gen g) {
  Node* n;
  if (create(dir, name, strlen(name), S_IFREG | 0444, nullptr, &n) < 0) panic("out of memory building /proc");
  n->special = Special::kProcGen;
  n->proc_arg = g;
}

}  // namespace

void proc_populate(Node* proc, Node* pid) {
  add_gen(pid, "maps", kMaps);
  add_gen(pid, "status", kStatus);
  add_gen(pid, "stat", kStat);
  add_gen(pid, "cmdline", kCmdline);
  add_gen(pid, "environ", kEnviron);
  add_gen(pid, "mounts", kMounts);
  add_gen(proc, "cpuinfo", kCpuinfo);
  add_gen(proc, "meminfo", kMeminfo);
  add_gen(proc, "stat", kSysStat);
  add_gen(proc, "uptime", kUptime);
  add_gen(proc, "loadavg", kLoadavg);
  add_gen(proc, "mounts", kMounts);
  Node *sys, *kernel, *random;
  if (create(proc, "sys", 3, S_IFDIR | 0555, nullptr, &sys) < 0 ||
      create(sys, "kernel", 6, S_IFDIR | 0555, nullptr, &kernel) < 0 ||
      create(kernel, "random", 6, S_IFDIR | 0555, nullptr, &random) < 0)
    panic("out of memory building /proc");
  add_gen(random, "uuid", kUuid);
  add_gen(random, "boot_id", kUuid);
}

Node* proc_generate(const Node* g) {
  Node* n = new_anonymous_file();
  if (!n) return nullptr;
  Out o{n};
  sched::Process* self = sched::current_proc();
  uint64_t up = clock::monotonic_ns(), cpu = sched::process_cpu_ns(self) / 10000000;
  uint64_t all_cpu = clock::cputime_ns() / 10000000;  // the whole job (/proc/stat)
  switch (g->proc_arg) {
    case kMaps: gen_maps(o); break;
    case kStatus: gen_status(o); break;
    case kStat:  // proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags ... utime ...
      o.num(uint64_t(self->pid));
      o.str(" (job) R ");
      o.num(ppid_of(self));
      o.str(" ");
      o.num(uint64_t(self->pgid));
      o.str(" ");
      o.num(uint64_t(self->sid));
      o.str(" 0 -1 4194304 0 0 0 0 ");
      o.num(cpu);
      o.str(" 0 0 0 20 0 ");
      o.num(uint64_t(self->live_threads));
      o.str(" 0 0 ");
      o.num(pmm::used() * kPage);
      o.str(" ");
      o.num(pmm::used());
      o.str(" 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
      break;
    case kCmdline: gen_cmdline(o, false); break;
    case kEnviron: gen_cmdline(o, true); break;
    case kCpuinfo: gen_cpuinfo(o); break;
    case kMeminfo: gen_meminfo(o); break;
    case kSysStat:
      o.str("cpu  ");
      o.num(all_cpu);
      o.str(" 0 0 0 0 0 0 0 0 0\ncpu0 ");
      o.num(all_cpu);
      o.str(" 0 0 0 0 0 0 0 0 0\nbtime ");
      o.num((clock::realtime_ns() - up) / 1000000000);
      o.str("\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n");
      break;
    case kUptime:
      o.num(up / 1000000000);
      o.str(".");
      o.num(up / 10000000 % 100, 10, 2);
      o.str(" 0.00\n");
      break;
    case kLoadavg: o.str("0.00 0.00 0.00 1/1 1\n"); break;
    case kMounts: o.str("rootfs / erofs ro 0 0\ntmpfs /tmp tmpfs rw 0 0\nproc /proc proc rw 0 0\n"); break;
    case kUuid: gen_uuid(o); break;
  }
  if (!o.ok) {
    n->opens = 0;
    release(n);
    return nullptr;
  }
  return n;
}

Node* proc_fd_target(uint32_t fd) { return files::node_of(fd); }

int64_t proc_fd_link(uint32_t fd, char* buf, uint64_t cap) {
  Node* n = files::node_of(fd);
  if (!n) return -ENOENT;
  static char tmp[kPathMax];
  int64_t len;
  if (n->special == Special::kStdin || n->special == Special::kStdout || n->special == Special::kStderr) {
    const char* names[] = {"pipe:[1]", "pipe:[2]", "pipe:[3]"};
    const char* s = names[uint32_t(n->special) - uint32_t(Special::kStdin)];
    len = int64_t(strlen(s));
    memcpy(tmp, s, uint64_t(len));
  } else if (n->special == Special::kPipe) {  // "pipe:[ino]", as Linux's pipefs names it
    char num[24];
    int l = 0;
    uint64_t v = n->ino;
    do num[l++] = char('0' + v % 10), v /= 10;
    while (v);
    memcpy(tmp, "pipe:[", 6);
    for (int i = 0; i < l; i++) tmp[6 + i] = num[l - 1 - i];
    tmp[6 + l] = ']';
    len = 7 + l;
  } else if (n->special == Special::kEventfd || n->special == Special::kEpoll ||
             n->special == Special::kTimerfd || n->special == Special::kSignalfd) {
    const char* s = n->special == Special::kEventfd   ? "anon_inode:[eventfd]"
                    : n->special == Special::kTimerfd  ? "anon_inode:[timerfd]"
                    : n->special == Special::kSignalfd ? "anon_inode:[signalfd]"
                                                        : "anon_inode:[eventpoll]";
    len = int64_t(strlen(s));
    memcpy(tmp, s, uint64_t(len));
  } else {
    len = path_of(n, tmp, sizeof tmp);
    if (len < 0) {
      const char* s = "/memfd: (deleted)";
      len = int64_t(strlen(s));
      memcpy(tmp, s, uint64_t(len));
    }
  }
  uint64_t l = uint64_t(len) < cap ? uint64_t(len) : cap;
  memcpy(buf, tmp, l);
  return int64_t(l);
}

const char* proc_exe_path() { return loader::exe_path(); }

}  // namespace k::fs
