// Program loading (see loader.h): exec_prepare checks and copies, exec_commit maps. Formats:
// System V gABI (ELF64 header, program headers), x86-64 psABI 3.4.1 (process entry), Linux
// fs/exec.c (argument limits, string layout), fs/binfmt_elf.c (auxv, PT_INTERP) and
// fs/binfmt_script.c ("#!"). Kernel code, no locking: nothing here waits (see sched.h).
#include "fs/loader.h"

#include "arch/arch.h"
#include "fs/files.h"
#include "fs/vfs.h"
#include "kernel.h"
#include "kernel/random.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"
#include "mm/pmm.h"

namespace k::loader {

struct Ehdr {
  uint8_t ident[16];
  uint16_t type, machine;
  uint32_t version;
  uint64_t entry, phoff, shoff;
  uint32_t flags;
  uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};
struct Phdr {
  uint32_t type, flags;
  uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

namespace {

constexpr uint32_t PT_LOAD = 1, PT_INTERP = 3, PT_PHDR = 6;
constexpr uint32_t PF_X = 1, PF_W = 2, PF_R = 4;
constexpr uint16_t ET_EXEC = 2, ET_DYN = 3, EM_X86_64 = 62;
constexpr uint64_t kPieBase = 0x555555554000ull;  // where Linux puts ET_DYN without an interpreter
constexpr int kMaxPhdrs = 64;                    // kMaxPhdrs * sizeof(Phdr) fits one page
constexpr uint64_t AT_SYMLINK_NOFOLLOW = 0x100;
constexpr uint64_t kKmallocMax = 2032;           // mm::kmalloc's largest size
constexpr const char* kNeedsInterp = "program needs a dynamic loader";

ProcInfo* g_info;  // the running process's
// The first program's host path when it came as the VMM's image ("" otherwise): execve of it
// (or of /proc/self/exe from it) loads the image again.
char g_image_exe[fs::kPathMax];

bool streq(const char* a, const char* b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

void oom() { end_job(kReqMemLimit, 0); }

// A copy of `s` on the kernel heap (a whole page for long paths), or nullptr.
char* dup_str(const char* s) {
  uint64_t n = strlen(s) + 1;
  if (n > kPage) n = kPage;
  auto* p = static_cast<char*>(n <= kKmallocMax ? mm::kmalloc(n) : mm::kpage_alloc());
  if (!p) return nullptr;
  memcpy(p, s, n - 1);
  p[n - 1] = 0;
  return p;
}
void free_str(char* s) {
  if (!s) return;
  if (strlen(s) + 1 <= kKmallocMax) mm::kfree(s);
  else mm::kpage_free(s);
}

// ---- The argument area --------------------------------------------------------------------
// The strings the new stack will hold, kept as Linux keeps them in bprm (fs/exec.c): filled
// downward from the top of a kArgsMaxBytes window, so that the final area [pos, top) is, from
// low to high, argv strings, envp strings, then the file name (AT_EXECFN), exactly the bytes
// that go below the stack top. "#!" handling removes argv[0] and pushes new strings below.
// Window pages are kernel pages allocated as the area grows.
struct ArgArea {
  static constexpr uint64_t kTop = kArgsMaxBytes;
  uint8_t** pages;     // kTop / kPage page pointers (one kernel page)
  uint64_t pos;        // lowest used byte of the window
  uint64_t limit;      // bytes allowed: strings + 8 per pointer
  uint64_t nptr;       // argv + envp pointers the stack will hold

  uint8_t* at(uint64_t off) const { return pages[off / kPage] + off % kPage; }
  uint64_t used() const { return kTop - pos; }

  // Makes room for n more bytes below pos. 0, -E2BIG, -ENOMEM.
  int64_t reserve(uint64_t n) {
    if (n > pos || used() + n + 8 * nptr > limit) return -E2BIG;
    uint64_t np = pos - n;
    for (uint64_t p = np / kPage; p < (pos + kPage - 1) / kPage; p++) {
      if (pages[p]) continue;
      pages[p] = static_cast<uint8_t*>(mm::kpage_alloc());
      if (!pages[p]) return -ENOMEM;
    }
    pos = np;
    return 0;
  }
  void copy_in(uint64_t off, const void* src, uint64_t n) {
    auto* s = static_cast<const uint8_t*>(src);
    while (n) {
      uint64_t c = kPage - off % kPage;
      if (c > n) c = n;
      memcpy(at(off), s, c);
      off += c, s += c, n -= c;
    }
  }
  void copy_out(uint64_t off, void* dst, uint64_t n) const {
    auto* d = static_cast<uint8_t*>(dst);
    while (n) {
      uint64_t c = kPage - off % kPage;
      if (c > n) c = n;
      memcpy(d, at(off), c);
      off += c, d += c, n -= c;
    }
  }
  // Pushes a kernel string (NUL included) below the area.
  int64_t push(const char* s) {
    uint64_t n = strlen(s) + 1;
    if (n > kArgStrMax) return -E2BIG;
    if (int64_t r = reserve(n)) return r;
    copy_in(pos, s, n);
    return 0;
  }
  // Drops the lowest string (argv[0]), as remove_arg_zero() does.
  void pop() {
    while (*at(pos)) pos++;
    pos++;
  }
  void free() {
    if (!pages) return;
    for (uint64_t p = 0; p < kTop / kPage; p++)
      if (pages[p]) mm::kpage_free(pages[p]);
    mm::kpage_free(pages);
    pages = nullptr;
  }
};

// Linux's rule (bprm_stack_limits): a quarter of the stack limit, at least ARG_MAX; capped here
// by the window.
uint64_t args_limit() {
  uint64_t stack = boot->stack_bytes ? boot->stack_bytes : (8u << 20);
  uint64_t l = stack / 4;
  if (l > kArgsMaxBytes) l = kArgsMaxBytes;
  if (l < kArgsMinBytes) l = kArgsMinBytes;
  return l;
}

}  // namespace

struct ExecImage {
  ArgArea args;
  uint64_t argc, envc;
  fs::Node* node;     // the ELF file, held open (nullptr: the VMM's program image)
  Ehdr eh;
  Phdr* ph;           // eh.phnum entries (one kernel page)
  fs::Node* interp;   // PT_INTERP's file, held open, or nullptr
  Ehdr ieh;
  Phdr* iph;
  char* exe;          // for /proc/self/exe (kernel heap)
};

namespace {

ExecImage* new_image() {
  auto* img = static_cast<ExecImage*>(mm::kmalloc(sizeof(ExecImage)));
  if (!img) return nullptr;
  img->args.pages = static_cast<uint8_t**>(mm::kpage_alloc());
  img->args.pos = ArgArea::kTop;
  img->args.limit = args_limit();
  if (!img->args.pages) {
    mm::kfree(img);
    return nullptr;
  }
  return img;
}

// Holding a file open across the exec keeps an unlinked file's pages (fs::release).
void hold(fs::Node* n) { n->opens++; }
void unhold(fs::Node* n) {
  if (!n) return;
  n->opens--;
  fs::release(n);
}

// Where an ELF file's bytes come from: the program image the VMM placed in guest memory, or a
// file of the root file system.
struct Source {
  const uint8_t* image = nullptr;  // program image (kernel-virtual) ...
  uint64_t image_len = 0;
  fs::Node* node = nullptr;        // ... or a file
  uint64_t size() const { return node ? node->size : image_len; }
  bool read(uint64_t off, void* dst, uint64_t n) const {
    if (off > size() || n > size() - off) return false;
    if (!node) {
      memcpy(dst, image + off, n);
      return true;
    }
    return fs::read(node, off, dst, n) == int64_t(n);
  }
  // GPA of a whole page of file bytes at `off` that can be mapped read-only in place, or 0.
  uint64_t page(uint64_t off) const {
    if (off + kPage > size()) return 0;
    if (!node) return boot->program_gpa + off;
    bool image;
    uint64_t pa = fs::page_gpa(node, off, &image);
    return image ? pa : 0;  // writable-layer pages may change: copy them
  }
};

Source image_source() {
  Source s;
  s.image = phys(boot->program_gpa);
  s.image_len = boot->program_bytes;
  return s;
}
Source file_source(fs::Node* n) {
  Source s;
  s.node = n;
  return s;
}

// Why a prepare failed, for the first program's message on stderr (load()).
struct Fail {
  char path[fs::kPathMax];
  const char* why;
};

const char* errno_text(int64_t e) {
  switch (-e) {
    case ENOENT: return "No such file or directory";
    case ENOTDIR: return "Not a directory";
    case ELOOP: return "Too many levels of symbolic links";
    case ENAMETOOLONG: return "File name too long";
    case EACCES: return "Permission denied";
    case EISDIR: return "Is a directory";
    case ENOEXEC: return "Exec format error";
    case E2BIG: return "Argument list too long";
    case EIO: return "Input/output error";
    case ENOMEM: return "Cannot allocate memory";
    default: return "cannot execute";
  }
}

int64_t fail(Fail* f, const char* path, int64_t err, const char* why = nullptr) {
  if (f) {
    uint64_t l = strlen(path);
    if (l >= sizeof f->path) l = sizeof f->path - 1;
    memcpy(f->path, path, l);
    f->path[l] = 0;
    f->why = why ? why : errno_text(err);
  }
  return err;
}

uint32_t prot_of(uint32_t pf) {
  return ((pf & PF_R) ? mm::kRead : 0) | ((pf & PF_W) ? mm::kWrite : 0) |
         ((pf & PF_X) ? mm::kExec : 0);
}

// ---- ELF checks (prepare) -----------------------------------------------------------------

// Reads and checks the ELF header and program headers (ph: kMaxPhdrs entries).
bool read_headers(const Source& src, Ehdr* eh, Phdr* ph) {
  if (!src.read(0, eh, sizeof *eh)) return false;
  if (memcmp(eh->ident, "\x7f" "ELF", 4) || eh->ident[4] != 2 || eh->ident[5] != 1) return false;
  if (eh->machine != EM_X86_64 || (eh->type != ET_EXEC && eh->type != ET_DYN)) return false;
  if (eh->phentsize != sizeof(Phdr) || eh->phnum == 0 || eh->phnum > kMaxPhdrs) return false;
  return src.read(eh->phoff, ph, uint64_t(eh->phnum) * sizeof(Phdr));
}

// True if a PT_LOAD lies in the file and, at `bias`, in the job's half (so mapping it at commit
// time cannot fail except for memory).
bool segment_ok(const Source& src, const Phdr& ph, uint64_t bias) {
  if (ph.filesz > ph.memsz || ph.offset > src.size() || ph.filesz > src.size() - ph.offset) return false;
  uint64_t va = ph.vaddr + bias;
  if (va < mm::kUserMin || va > mm::kMmapTop || ph.memsz > mm::kMmapTop - va) return false;
  return (ph.vaddr - ph.offset) % kPage == 0;
}

// Lowest page and page-rounded span of an ELF's PT_LOADs (0 span: none).
uint64_t load_span(const Ehdr& eh, const Phdr* ph, uint64_t* lo_out) {
  uint64_t lo = ~0ull, hi = 0;
  for (int i = 0; i < eh.phnum; i++) {
    if (ph[i].type != PT_LOAD) continue;
    if (page_down(ph[i].vaddr) < lo) lo = page_down(ph[i].vaddr);
    if (ph[i].vaddr + ph[i].memsz > hi) hi = ph[i].vaddr + ph[i].memsz;
  }
  *lo_out = lo;
  return hi > lo ? page_up(hi - lo) : 0;
}

// Checks every PT_LOAD at `bias`; the span must be non-empty.
bool segments_ok(const Source& src, const Ehdr& eh, const Phdr* ph, uint64_t bias) {
  uint64_t lo;
  if (!load_span(eh, ph, &lo)) return false;
  for (int i = 0; i < eh.phnum; i++)
    if (ph[i].type == PT_LOAD && !segment_ok(src, ph[i], bias)) return false;
  return true;
}

// True for a file execve may open: regular with some x bit (the job's single user owns all).
int64_t check_exec_file(fs::Node* n) {
  if (!fs::is_reg(n) || !(n->mode & 0111)) return -EACCES;
  return 0;
}

// Reads and checks the ELF behind `src` into img (and its PT_INTERP interpreter). `name` is
// the file's name for messages.
int64_t check_elf(ExecImage* img, const Source& src, const char* name, Fail* f) {
  img->ph = static_cast<Phdr*>(mm::kpage_alloc());
  if (!img->ph) return -ENOMEM;
  if (!read_headers(src, &img->eh, img->ph)) return fail(f, name, -ENOEXEC);
  const Ehdr& eh = img->eh;
  const Phdr* ph = img->ph;
  if (!segments_ok(src, eh, ph, eh.type == ET_DYN ? kPieBase : 0))
    return fail(f, name, -ENOEXEC, "malformed ELF segment");
  static char interp[256];
  bool has_interp = false;
  for (int i = 0; i < eh.phnum; i++) {
    if (ph[i].type != PT_INTERP) continue;
    if (!src.node) return fail(f, name, -ENOEXEC, kNeedsInterp);
    if (ph[i].filesz < 2 || ph[i].filesz > sizeof interp || !src.read(ph[i].offset, interp, ph[i].filesz) ||
        interp[ph[i].filesz - 1])
      return fail(f, name, -ENOEXEC, "bad PT_INTERP");
    has_interp = true;
  }
  if (!has_interp) return 0;
  fs::Node* in;
  int64_t r = fs::resolve(fs::root(), interp, true, &in);
  if (r < 0) return fail(f, interp, r);
  if ((r = check_exec_file(in)) < 0) return fail(f, interp, r);
  img->interp = in;
  hold(in);
  img->iph = static_cast<Phdr*>(mm::kpage_alloc());
  if (!img->iph) return -ENOMEM;
  Source isrc = file_source(in);
  if (!read_headers(isrc, &img->ieh, img->iph) || img->ieh.type != ET_DYN) return fail(f, interp, -ENOEXEC);
  // Its base is chosen at commit time; checking it at the lowest one bounds its span.
  uint64_t lo;
  load_span(img->ieh, img->iph, &lo);
  if (!segments_ok(isrc, img->ieh, img->iph, mm::kUserMin - lo))
    return fail(f, interp, -ENOEXEC, "malformed ELF segment");
  return 0;
}

// Follows "#!" lines from file `n` called `filename` (binfmt_script: the rest of the first line,
// at most 255 bytes, is the interpreter and one optional argument; argv[0] is replaced by the
// script's name, preceded by the argument and the interpreter), then checks the ELF it ends at.
int64_t resolve_program(ExecImage* img, fs::Node* n, const char* filename, Fail* f) {
  static char name[fs::kPathMax];  // the file at this level: the filename, then interpreters
  uint64_t fl = strlen(filename);
  if (fl >= sizeof name) return fail(f, filename, -ENAMETOOLONG);
  memcpy(name, filename, fl + 1);
  for (int depth = 0;; depth++) {
    if (fs::is_dir(n)) return fail(f, name, -EACCES, "Is a directory");
    if (int64_t r = check_exec_file(n)) return fail(f, name, r);
    char head[256];
    uint64_t hl = n->size < sizeof head - 1 ? n->size : sizeof head - 1;
    if (fs::read(n, 0, head, hl) != int64_t(hl)) return fail(f, name, -EIO);
    head[hl] = 0;
    if (hl < 2 || head[0] != '#' || head[1] != '!') break;
    if (depth == kMaxScriptDepth) return fail(f, name, -ELOOP, "Too many levels of interpreters");
    uint64_t i = 2;
    while (i < hl && (head[i] == ' ' || head[i] == '\t')) i++;
    uint64_t is = i;
    while (i < hl && head[i] != ' ' && head[i] != '\t' && head[i] != '\n') i++;
    uint64_t ie = i;
    while (i < hl && (head[i] == ' ' || head[i] == '\t')) i++;
    uint64_t as = i;
    while (i < hl && head[i] != '\n') i++;
    uint64_t ae = i;
    while (ae > as && (head[ae - 1] == ' ' || head[ae - 1] == '\t')) ae--;
    // No interpreter, or a line longer than the buffer (binfmt_script refuses a truncated one).
    if (ie == is || (i == hl && hl == sizeof head - 1)) return fail(f, name, -ENOEXEC);
    head[ie] = 0;
    head[ae] = 0;
    // argv[0] goes; the script's name, the argument and the interpreter come in front.
    ArgArea& a = img->args;
    a.pop();
    img->argc--, a.nptr--;
    const char* front[3] = {name, ae > as ? head + as : nullptr, head + is};
    for (const char* s : front) {
      if (!s) continue;
      img->argc++, a.nptr++;
      if (int64_t r = a.push(s)) return fail(f, name, r);
    }
    memcpy(name, head + is, ie - is + 1);
    if (int64_t r = fs::resolve(fs::cwd(), name, true, &n); r < 0) return fail(f, name, r);
  }
  img->node = n;
  hold(n);
  static char exe[fs::kPathMax];
  if (fs::path_of(n, exe, sizeof exe) < 0) memcpy(exe, name, strlen(name) + 1);
  img->exe = dup_str(exe);
  if (!img->exe) return -ENOMEM;
  return check_elf(img, file_source(n), name, f);
}

// ---- User memory (prepare) ----------------------------------------------------------------

// Reads the calling process's memory, checking each page once (a VMA is whole pages).
struct UserReader {
  uint64_t ok_page = 1;  // last page found readable (1: none)
  bool check(uint64_t va) {
    uint64_t p = page_down(va);
    if (p == ok_page) return true;
    if (!mm::user_ok(p, kPage, false)) return false;
    ok_page = p;
    return true;
  }
  bool u64(uint64_t va, uint64_t* out) {
    if (va + 8 < va || !check(va) || !check(va + 7)) return false;
    memcpy(out, reinterpret_cast<const void*>(va), 8);
    return true;
  }
  // Length of the string at va including its NUL: -EFAULT, or -E2BIG beyond `max`.
  int64_t strlen(uint64_t va, uint64_t max) {
    for (uint64_t i = 0; i < max; i++) {
      if (va + i < va || !check(va + i)) return -EFAULT;
      if (!*reinterpret_cast<const char*>(va + i)) return int64_t(i + 1);
    }
    return -E2BIG;
  }
};

// Number of pointers before the NULL in user array `uarr` (0 for a NULL array).
int64_t count_user(UserReader& u, uint64_t uarr, uint64_t max) {
  if (!uarr) return 0;
  for (uint64_t i = 0;; i++) {
    uint64_t p;
    if (!u.u64(uarr + 8 * i, &p)) return -EFAULT;
    if (!p) return int64_t(i);
    if (i >= max) return -E2BIG;
  }
}

// Pushes the strings of user array `uarr` (n of them), last first, as copy_strings() does.
int64_t push_user(UserReader& u, ArgArea& a, uint64_t uarr, uint64_t n) {
  for (uint64_t i = n; i-- > 0;) {
    uint64_t p;
    if (!u.u64(uarr + 8 * i, &p)) return -EFAULT;
    int64_t len = u.strlen(p, kArgStrMax);
    if (len < 0) return len;
    if (int64_t r = a.reserve(uint64_t(len))) return r;
    a.copy_in(a.pos, reinterpret_cast<const void*>(p), uint64_t(len));
  }
  return 0;
}

// ---- Mapping (commit) ---------------------------------------------------------------------

struct Loaded {
  uint64_t entry, phdr_va, top;
  uint16_t phnum;
};

// After the point of no return a read that worked in prepare failed: the process is gone, as
// Linux kills it with SIGSEGV (fs/exec.c).
[[noreturn]] void lost_after_commit() { end_job(kReqSignal, SIGSEGV); }

// Maps one PT_LOAD segment (checked by segment_ok). Read-only pages wholly backed by the file
// are mapped in place (no copy: on PVM each fresh page costs a shadow-paging fault); writable
// pages get fresh pages with the file bytes copied in and the rest zero (.bss).
void load_segment(const Source& src, const Phdr& ph, uint64_t bias) {
  uint64_t va = ph.vaddr + bias;
  uint64_t start = page_down(va), end = page_up(va + ph.memsz);
  uint32_t prot = prot_of(ph.flags);
  uint64_t file_start = va, file_end = va + ph.filesz;  // virtual range backed by file bytes
  for (uint64_t page = start; page < end; page += kPage) {
    uint64_t existing = mm::translate(page);  // a page shared with the previous segment
    bool whole_file_page = page >= file_start && page + kPage <= file_end;
    if (!(prot & mm::kWrite) && whole_file_page && !existing) {
      if (uint64_t pa = src.page(ph.offset + (page - va))) {
        if (!mm::map_page(page, pa, prot, false)) oom();
        continue;
      }
    }
    uint64_t pa = existing ? existing : pmm::alloc();
    if (!pa || !mm::map_page(page, pa, prot, true)) oom();
    // Copy the part of this page that the file backs; the rest stays zero (.bss).
    uint64_t lo = page > file_start ? page : file_start;
    uint64_t hi = page + kPage < file_end ? page + kPage : file_end;
    if (lo < hi && !src.read(ph.offset + (lo - va), phys(pa + (lo - page)), hi - lo)) lost_after_commit();
  }
  mm::note_vma(start, end - start, prot);
}

// Maps every PT_LOAD of an ELF at `bias` and reports where things landed.
Loaded map_elf(const Source& src, const Ehdr& eh, const Phdr* ph, uint64_t bias) {
  uint64_t phdr_va = 0, top = 0;
  for (int i = 0; i < eh.phnum; i++)
    if (ph[i].type == PT_PHDR) phdr_va = ph[i].vaddr + bias;
  for (int i = 0; i < eh.phnum; i++) {
    if (ph[i].type != PT_LOAD) continue;
    load_segment(src, ph[i], bias);
    if (!phdr_va && eh.phoff >= ph[i].offset && eh.phoff < ph[i].offset + ph[i].filesz)
      phdr_va = ph[i].vaddr + bias + (eh.phoff - ph[i].offset);
    uint64_t end = ph[i].vaddr + bias + ph[i].memsz;
    if (end > top) top = end;
  }
  return Loaded{eh.entry + bias, phdr_va, top, eh.phnum};
}

// ---- The first program --------------------------------------------------------------------

// The argument block from the VMM: argc, envc, then NUL-terminated strings (argv, envp, exe).
struct Args {
  ArgsHeader h;
  const char* strs;
  uint64_t used;     // bytes of the argv and envp strings
  uint64_t longest;  // longest argv/envp string, NUL included
  const char* exe;
  const char* at(uint64_t i) const {  // i-th string
    const char* s = strs;
    for (uint64_t k = 0; k < i; k++) s += strlen(s) + 1;
    return s;
  }
};

Args read_args() {
  const uint8_t* args = phys(boot->args_gpa);
  Args a;
  memcpy(&a.h, args, sizeof a.h);
  if (a.h.argc == 0 || a.h.argc > 65536 || a.h.envc > 65536) panic("bad argument block");
  a.strs = reinterpret_cast<const char*>(args + sizeof a.h);
  uint64_t strs_len = boot->args_bytes - sizeof a.h;
  uint64_t nstr = a.h.argc + a.h.envc + 1, used = 0;
  a.longest = 0;
  for (uint64_t i = 0; i < nstr; i++) {
    if (i == nstr - 1) a.used = used, a.exe = a.strs + used;
    uint64_t start = used;
    while (used < strs_len && a.strs[used]) used++;
    if (used >= strs_len) panic("argument block strings not terminated");
    used++;
    if (i < nstr - 1 && used - start > a.longest) a.longest = used - start;
  }
  return a;
}

// execvp(3)'s search: a name without '/' is looked up in PATH (the job's, else the default).
int64_t find_program(const Args& a, const char* name, fs::Node** out, char* path_out) {
  uint64_t nlen = strlen(name);
  if (nlen >= fs::kPathMax) return -ENAMETOOLONG;
  for (uint64_t i = 0; i < nlen; i++)
    if (name[i] == '/') {
      memcpy(path_out, name, nlen + 1);
      return fs::resolve(fs::cwd(), name, true, out);
    }
  const char* path = "/usr/local/bin:/usr/bin:/bin";
  for (uint64_t i = 0; i < a.h.envc; i++) {
    const char* e = a.at(a.h.argc + i);
    if (!memcmp(e, "PATH=", 5)) path = e + 5;
  }
  int64_t last = -ENOENT;
  while (*path) {
    uint64_t dl = 0;
    while (path[dl] && path[dl] != ':') dl++;
    if (dl + 1 + nlen < fs::kPathMax && dl) {
      memcpy(path_out, path, dl);
      path_out[dl] = '/';
      memcpy(path_out + dl + 1, name, nlen + 1);
      fs::Node* n;
      int64_t r = fs::resolve(fs::cwd(), path_out, true, &n);
      if (r == 0 && fs::is_reg(n)) {
        *out = n;
        return 0;
      }
      if (r != -ENOENT && r != -ENOTDIR) last = r;
    }
    path += dl;
    if (*path == ':') path++;
  }
  return last;
}

// Ends the job the way a shell reports a program it cannot run (exit 126/127, a message on
// stderr), since the failure is the job's, not the kernel's.
[[noreturn]] void exec_failed(const char* path, const char* why, uint64_t status) {
  uint64_t* len = &chan->stderr_len;
  const char* parts[] = {"vmfork: ", path, ": ", why, "\n"};
  for (const char* p : parts) {
    uint64_t n = strlen(p);
    if (*len + n <= kStderrCap) memcpy(phys(kStderrGpa + *len), p, n), *len += n;
  }
  files::flush();
  end_job(kReqExit, status);
}

}  // namespace

// ---- Per-process info -----------------------------------------------------------------------

ProcInfo* current_info() { return g_info; }
void set_current_info(ProcInfo* p) { g_info = p; }

ProcInfo* info_clone(const ProcInfo* p) {
  auto* c = static_cast<ProcInfo*>(mm::kmalloc(sizeof(ProcInfo)));
  if (!c) return nullptr;
  *c = *p;
  c->exe = p->exe ? dup_str(p->exe) : nullptr;
  if (p->exe && !c->exe) {
    mm::kfree(c);
    return nullptr;
  }
  return c;
}

void info_free(ProcInfo* p) {
  if (!p) return;
  free_str(p->exe);
  mm::kfree(p);
}

const char* exe_path() { return g_info && g_info->exe ? g_info->exe : ""; }
uint64_t initial_brk() { return g_info ? g_info->brk : 0; }
uint64_t at_random_va() { return g_info ? g_info->at_random : 0; }

// ---- exec -----------------------------------------------------------------------------------

void exec_free(ExecImage* img) {
  if (!img) return;
  img->args.free();
  unhold(img->node);
  unhold(img->interp);
  if (img->ph) mm::kpage_free(img->ph);
  if (img->iph) mm::kpage_free(img->iph);
  free_str(img->exe);
  mm::kfree(img);
}

int64_t exec_prepare(int64_t dirfd, uint64_t upath, uint64_t uargv, uint64_t uenvp, uint64_t flags,
                     ExecImage** out) {
  if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) return -EINVAL;
  // As do_execveat_common: the name, then the file, then the strings, then the format.
  static char path[fs::kPathMax], filename[fs::kPathMax];
  UserReader u;
  int64_t len = u.strlen(upath, fs::kPathMax);
  if (len < 0) return len == -E2BIG ? -ENAMETOOLONG : len;
  memcpy(path, reinterpret_cast<const void*>(upath), uint64_t(len));
  path[len] = 0;
  fs::Node* n = nullptr;
  // The job's own program, when it came as the VMM's image (a host path, no file in the tree):
  // an exec of /proc/self/exe from it, or of that path, loads the image again.
  bool own_image = false;
  if (boot->program_bytes && g_image_exe[0] && !flags) {
    bool self = streq(path, "/proc/self/exe") && streq(exe_path(), g_image_exe);
    fs::Node* found;
    own_image = self || (streq(path, g_image_exe) && fs::resolve(fs::cwd(), path, true, &found) != 0);
  }
  if (own_image) {
    memcpy(filename, g_image_exe, strlen(g_image_exe) + 1);
  } else {
  // A name relative to a directory fd becomes "/dev/fd/N/name" in AT_EXECFN (fs/exec.c
  // alloc_bprm), and the fd itself "/dev/fd/N".
  auto fd_name = [&](const char* rest) -> int64_t {
    char num[24];
    int l = 0;
    uint64_t v = uint64_t(dirfd);
    do num[l++] = char('0' + v % 10), v /= 10;
    while (v);
    uint64_t k = 0;
    memcpy(filename, "/dev/fd/", 8), k = 8;
    while (l) filename[k++] = num[--l];
    uint64_t rl = strlen(rest);
    if (k + 1 + rl >= sizeof filename) return -ENAMETOOLONG;
    if (rl) filename[k++] = '/';
    memcpy(filename + k, rest, rl + 1);
    return 0;
  };
  if (!path[0]) {
    if (!(flags & AT_EMPTY_PATH)) return -ENOENT;
    n = dirfd == AT_FDCWD ? fs::cwd() : (dirfd >= 0 ? files::node_of(uint32_t(dirfd)) : nullptr);
    if (!n) return -EBADF;
    if (dirfd == AT_FDCWD) memcpy(filename, ".", 2);
    else if (int64_t r = fd_name("")) return r;
  } else {
    fs::Node* base = fs::cwd();
    if (path[0] == '/' || dirfd == AT_FDCWD) {
      memcpy(filename, path, uint64_t(len));
    } else {
      base = dirfd >= 0 ? files::node_of(uint32_t(dirfd)) : nullptr;
      if (!base) return -EBADF;
      if (!fs::is_dir(base)) return -ENOTDIR;
      if (int64_t r = fd_name(path)) return r;
    }
    bool follow = !(flags & AT_SYMLINK_NOFOLLOW);
    if (int64_t r = fs::resolve(base, path, follow, &n)) return r;
    if (!follow && fs::is_lnk(n)) return -ELOOP;
  }
  if (fs::is_dir(n)) return -EACCES;
  if (int64_t r = check_exec_file(n)) return r;
  }

  ExecImage* img = new_image();
  if (!img) return -ENOMEM;
  ArgArea& a = img->args;
  int64_t argc = count_user(u, uargv, a.limit / 8);
  int64_t envc = argc < 0 ? 0 : count_user(u, uenvp, a.limit / 8);
  int64_t r = argc < 0 ? argc : envc;
  if (r >= 0) {
    img->argc = uint64_t(argc), img->envc = uint64_t(envc);
    // Linux (since 5.18) gives a program started with no arguments an empty argv[0].
    a.nptr = uint64_t(argc ? argc : 1) + uint64_t(envc);
    if (8 * a.nptr > a.limit) r = -E2BIG;
  }
  if (r >= 0) r = a.push(filename);
  if (r >= 0) r = push_user(u, a, uenvp, img->envc);
  if (r >= 0) r = push_user(u, a, uargv, img->argc);
  if (r >= 0 && !img->argc) r = a.push(""), img->argc = 1;
  if (r >= 0 && own_image) {
    img->exe = dup_str(g_image_exe);
    r = img->exe ? check_elf(img, image_source(), filename, nullptr) : -ENOMEM;
  } else if (r >= 0) {
    r = resolve_program(img, n, filename, nullptr);
  }
  if (r < 0) {
    exec_free(img);
    return r;
  }
  *out = img;
  return 0;
}

void exec_commit(ExecImage* img, uint64_t* entry, uint64_t* sp) {
  Source src = img->node ? file_source(img->node) : image_source();
  Loaded main_elf = map_elf(src, img->eh, img->ph, img->eh.type == ET_DYN ? kPieBase : 0);
  uint64_t interp_base = 0, start = main_elf.entry;
  if (img->interp) {
    uint64_t lo, span = load_span(img->ieh, img->iph, &lo);
    uint64_t at = mm::find_free(span);
    if (!at) oom();
    interp_base = at - lo;  // the interpreter's load bias (binfmt_elf's AT_BASE)
    start = map_elf(file_source(img->interp), img->ieh, img->iph, interp_base).entry;
  }

  // The stack is written through user addresses: load the space (execve maps the program into
  // a staged one, mm::space_stage).
  mm::space_activate(mm::current_space());
  // Stack: [kUserMax - stack_bytes, kUserMax), mapped eagerly (see mm.h), with room for the
  // strings and vectors even under a small RLIMIT_STACK.
  ArgArea& a = img->args;
  uint64_t words = 1 + img->argc + 1 + img->envc + 1 + 2 * 20;
  uint64_t need = page_up(a.used() + 64 + 8 * words) + (64u << 10);
  uint64_t stack_bytes = page_up(boot->stack_bytes ? boot->stack_bytes : (8u << 20));
  if (stack_bytes < need) stack_bytes = need;
  if (mm::map_anon(mm::kUserMax - stack_bytes, stack_bytes, mm::kRead | mm::kWrite) < 0) oom();
  // The strings: argv, envp, then the file name, right below the top as Linux puts them.
  uint64_t strings_va = mm::kUserMax - a.used();
  a.copy_out(a.pos, reinterpret_cast<void*>(strings_va), a.used());
  auto next = [](uint64_t va) { return va + strlen(reinterpret_cast<const char*>(va)) + 1; };
  uint64_t s = strings_va;
  for (uint64_t i = 0; i < img->argc; i++) s = next(s);
  uint64_t env_va = s;
  for (uint64_t i = 0; i < img->envc; i++) s = next(s);
  uint64_t execfn_va = s;
  uint64_t top = strings_va;
  auto push = [&top](const void* data, uint64_t n) {
    top -= n;
    memcpy(reinterpret_cast<void*>(top), data, n);
    return top;
  };
  uint8_t rnd[16];
  random::fill(rnd, sizeof rnd);
  uint64_t random_va = push(rnd, sizeof rnd);
  uint64_t platform_va = push("x86_64", 7);

  uint32_t r[4];
  arch::cpuid(1, 0, r);
  const uint64_t auxv[][2] = {
      {AT_PHDR, main_elf.phdr_va}, {AT_PHENT, sizeof(Phdr)}, {AT_PHNUM, main_elf.phnum}, {AT_PAGESZ, kPage},
      {AT_BASE, interp_base}, {AT_FLAGS, 0}, {AT_ENTRY, main_elf.entry}, {AT_UID, 1000}, {AT_EUID, 1000},
      {AT_GID, 1000}, {AT_EGID, 1000}, {AT_SECURE, 0}, {AT_RANDOM, random_va},
      {AT_HWCAP, r[3]}, {AT_HWCAP2, 0}, {AT_CLKTCK, 100}, {AT_PLATFORM, platform_va},
      {AT_EXECFN, execfn_va}, {AT_MINSIGSTKSZ, 2048}, {AT_NULL, 0},
  };
  static_assert(sizeof auxv <= 2 * 20 * 8, "stack room above counts 20 auxv pairs");
  // argc, argv, NULL, envp, NULL, auxv; the final sp 16-byte aligned (psABI 3.4.1).
  uint64_t nwords = 1 + img->argc + 1 + img->envc + 1 + sizeof(auxv) / 8;
  top = (top - nwords * 8) & ~15ull;
  auto* v = reinterpret_cast<uint64_t*>(top);
  *v++ = img->argc;
  s = strings_va;
  for (uint64_t i = 0; i < img->argc; i++) *v++ = s, s = next(s);
  *v++ = 0;
  for (uint64_t i = 0; i < img->envc; i++) *v++ = s, s = next(s);
  *v++ = 0;
  memcpy(v, auxv, sizeof auxv);

  if (!g_info) {
    g_info = static_cast<ProcInfo*>(mm::kmalloc(sizeof(ProcInfo)));
    if (!g_info) oom();
  }
  free_str(g_info->exe);
  // The heap starts on a 2 MiB boundary so that brk growth maps whole 2 MiB pages (one trapped
  // page-table write each on PVM); Linux randomizes this gap anyway.
  *g_info = ProcInfo{img->exe, pmm::huge_up(main_elf.top), random_va, strings_va, env_va, env_va, execfn_va};
  img->exe = nullptr;  // now the ProcInfo's
  exec_free(img);
  *entry = start;
  *sp = top;
}

void load(uint64_t* entry, uint64_t* sp) {
  Args args = read_args();
  ExecImage* img = new_image();
  if (!img) oom();
  static Fail f;
  static char path[fs::kPathMax];
  fs::Node* n = nullptr;
  const char* filename = args.exe;
  if (boot->flags & kFlagExecPath) {
    int64_t r = find_program(args, args.exe, &n, path);
    if (r < 0) exec_failed(args.exe, errno_text(r), 127);
    filename = path;
  }
  // The VMM's block already holds argv then envp back to back: the area's layout.
  ArgArea& a = img->args;
  img->argc = args.h.argc, img->envc = args.h.envc;
  a.nptr = img->argc + img->envc;
  int64_t r = args.longest > kArgStrMax ? -E2BIG : a.push(filename);
  if (!r) r = a.reserve(args.used);
  if (!r) a.copy_in(a.pos, args.strs, args.used);
  if (r == -ENOMEM) oom();
  if (r < 0) exec_failed(filename, errno_text(r), 126);
  if (n) {
    r = resolve_program(img, n, filename, &f);
    if (r == -ENOMEM) oom();
    if (r < 0) exec_failed(f.path, f.why, r == -ENOENT ? 127 : 126);
  } else {
    img->exe = dup_str(args.exe);
    if (!img->exe) oom();
    uint64_t el = strlen(args.exe);
    if (el < sizeof g_image_exe) memcpy(g_image_exe, args.exe, el + 1);
    r = check_elf(img, image_source(), filename, &f);
    if (r == -ENOMEM) oom();
    if (r < 0 && f.why == kNeedsInterp) panic("program needs a dynamic loader; build it with -static or give a root file system");
    if (r < 0) panic("program is not an x86-64 ELF executable");
  }
  exec_commit(img, entry, sp);
}

}  // namespace k::loader
