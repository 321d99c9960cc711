// ELF loader and initial stack (see loader.h). Formats: System V gABI (ELF64 header, program
// headers), x86-64 psABI 3.4.1 (process entry), Linux fs/binfmt_elf.c conventions for auxv and
// the interpreter (PT_INTERP), fs/binfmt_script.c for "#!" scripts.
#include "fs/loader.h"

#include "arch/arch.h"
#include "fs/files.h"
#include "fs/vfs.h"
#include "kernel.h"
#include "linux_abi.h"
#include "mm/mm.h"
#include "mm/pmm.h"
#include "kernel/random.h"

namespace k::loader {
namespace {

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
constexpr uint32_t PT_LOAD = 1, PT_INTERP = 3, PT_PHDR = 6;
constexpr uint32_t PF_X = 1, PF_W = 2, PF_R = 4;
constexpr uint16_t ET_EXEC = 2, ET_DYN = 3, EM_X86_64 = 62;
constexpr uint64_t kPieBase = 0x555555554000ull;  // where Linux puts ET_DYN without an interpreter
constexpr int kMaxPhdrs = 64;

char g_exe[fs::kPathMax] = "";  // /proc/self/exe
uint64_t g_brk;
uint64_t g_at_random;  // job VA of the AT_RANDOM bytes

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

struct Loaded {
  uint64_t entry, bias, phdr_va, top;
  uint16_t phnum;
};

uint32_t prot_of(uint32_t pf) {
  return ((pf & PF_R) ? mm::kRead : 0) | ((pf & PF_W) ? mm::kWrite : 0) |
         ((pf & PF_X) ? mm::kExec : 0);
}

void oom() { end_job(kReqMemLimit, 0); }

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

// Maps one PT_LOAD segment. Read-only pages wholly backed by the file are mapped in place
// (no copy: on PVM each fresh page costs a shadow-paging fault); writable pages get fresh pages
// with the file bytes copied in and the rest zero (.bss).
bool load_segment(const Source& src, const Phdr& ph, uint64_t bias) {
  if (ph.filesz > ph.memsz || ph.offset > src.size() || ph.filesz > src.size() - ph.offset) return false;
  uint64_t va = ph.vaddr + bias;
  if (va < mm::kUserMin || va + ph.memsz > mm::kMmapTop || va + ph.memsz < va) return false;
  if ((ph.vaddr - ph.offset) % kPage) return false;
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
    if (lo < hi && !src.read(ph.offset + (lo - va), phys(pa + (lo - page)), hi - lo)) return false;
  }
  mm::note_vma(start, end - start, prot);
  return true;
}

// Reads and checks the ELF header and program headers. Returns an error text or nullptr.
const char* read_headers(const Source& src, Ehdr* eh, Phdr* ph) {
  if (!src.read(0, eh, sizeof *eh)) return "Exec format error";
  if (memcmp(eh->ident, "\x7f" "ELF", 4) || eh->ident[4] != 2 || eh->ident[5] != 1) return "Exec format error";
  if (eh->machine != EM_X86_64 || (eh->type != ET_EXEC && eh->type != ET_DYN)) return "Exec format error";
  if (eh->phentsize != sizeof(Phdr) || eh->phnum == 0 || eh->phnum > kMaxPhdrs) return "Exec format error";
  if (!src.read(eh->phoff, ph, uint64_t(eh->phnum) * sizeof(Phdr))) return "Exec format error";
  return nullptr;
}

// Maps every PT_LOAD of an ELF at `bias` (ET_DYN) and reports where things landed.
const char* map_elf(const Source& src, const Ehdr& eh, const Phdr* ph, uint64_t bias, Loaded* out) {
  uint64_t phdr_va = 0, top = 0;
  for (int i = 0; i < eh.phnum; i++)
    if (ph[i].type == PT_PHDR) phdr_va = ph[i].vaddr + bias;
  for (int i = 0; i < eh.phnum; i++) {
    if (ph[i].type != PT_LOAD) continue;
    if (!load_segment(src, ph[i], bias)) return "malformed ELF segment";
    if (!phdr_va && eh.phoff >= ph[i].offset && eh.phoff < ph[i].offset + ph[i].filesz)
      phdr_va = ph[i].vaddr + bias + (eh.phoff - ph[i].offset);
    uint64_t end = ph[i].vaddr + bias + ph[i].memsz;
    if (end > top) top = end;
  }
  if (!top) return "ELF has no loadable segment";
  *out = Loaded{eh.entry + bias, bias, phdr_va, top, eh.phnum};
  return nullptr;
}

// Span of an ET_DYN's PT_LOADs, for choosing where the interpreter goes.
uint64_t load_span(const Ehdr& eh, const Phdr* ph) {
  uint64_t lo = ~0ull, hi = 0;
  for (int i = 0; i < eh.phnum; i++) {
    if (ph[i].type != PT_LOAD) continue;
    if (page_down(ph[i].vaddr) < lo) lo = page_down(ph[i].vaddr);
    if (ph[i].vaddr + ph[i].memsz > hi) hi = ph[i].vaddr + ph[i].memsz;
  }
  return hi > lo ? page_up(hi - lo) : 0;
}

// The argument block from the VMM: argc, envc, then NUL-terminated strings (argv, envp, exe).
struct Args {
  ArgsHeader h;
  const char* strs;
  uint64_t used;  // bytes of all strings
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
  for (uint64_t i = 0; i < nstr; i++) {
    while (used < strs_len && a.strs[used]) used++;
    if (used >= strs_len) panic("argument block strings not terminated");
    used++;
  }
  a.used = used;
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

// Pushes bytes onto the initial stack, returning their user address.
struct StackBuilder {
  uint64_t sp;
  uint64_t push(const void* data, uint64_t n) {
    sp -= n;
    memcpy(reinterpret_cast<void*>(sp), data, n);
    return sp;
  }
};

const char* errno_text(int64_t e) {
  switch (-e) {
    case ENOENT: return "No such file or directory";
    case ENOTDIR: return "Not a directory";
    case ELOOP: return "Too many levels of symbolic links";
    case ENAMETOOLONG: return "File name too long";
    case EACCES: return "Permission denied";
    case EISDIR: return "Is a directory";
    default: return "cannot execute";
  }
}

}  // namespace

const char* exe_path() { return g_exe; }
uint64_t initial_brk() { return g_brk; }
uint64_t at_random_va() { return g_at_random; }

void load(uint64_t* entry, uint64_t* sp) {
  Args args = read_args();
  const char* exe_arg = args.at(args.h.argc + args.h.envc);  // the executable path (last string)
  Source src;
  // Prefix strings a "#!" line adds before the original argv[1..]: interpreter, its optional
  // argument and the script's path (binfmt_script).
  static char script_interp[256], script_arg[256], script_path[fs::kPathMax];
  const char* prefix[3];
  int nprefix = 0;
  static char path[fs::kPathMax];
  const char* execfn = exe_arg;
  if (boot->flags & kFlagExecPath) {
    fs::Node* n;
    int64_t r = find_program(args, exe_arg, &n, path);
    if (r < 0) exec_failed(exe_arg, errno_text(r), 127);
    for (int depth = 0;; depth++) {
      if (fs::is_dir(n)) exec_failed(path, "Is a directory", 126);
      if (!fs::is_reg(n) || !(n->mode & 0111)) exec_failed(path, "Permission denied", 126);
      char head[256];
      uint64_t hl = n->size < sizeof head - 1 ? n->size : sizeof head - 1;
      if (fs::read(n, 0, head, hl) != int64_t(hl)) exec_failed(path, "Input/output error", 126);
      head[hl] = 0;
      if (hl < 2 || head[0] != '#' || head[1] != '!') break;
      if (depth == 4) exec_failed(path, "Too many levels of interpreters", 126);
      // "#!interp [arg]\n": one optional argument, the rest of the line (binfmt_script).
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
      if (ie == is || (i == hl && hl == sizeof head - 1)) exec_failed(path, "Exec format error", 126);
      if (depth == 0) {  // the script itself; deeper levels keep the outermost script path
        memcpy(script_path, path, strlen(path) + 1);
        execfn = script_path;
        prefix[0] = script_interp;
        nprefix = 1;
        if (ae > as) {
          memcpy(script_arg, head + as, ae - as);
          script_arg[ae - as] = 0;
          prefix[nprefix++] = script_arg;
        }
        prefix[nprefix++] = script_path;
      }
      memcpy(script_interp, head + is, ie - is);
      script_interp[ie - is] = 0;
      memcpy(path, script_interp, ie - is + 1);
      r = fs::resolve(fs::cwd(), path, true, &n);
      if (r < 0) exec_failed(path, errno_text(r), 127);
    }
    src.node = n;
    int64_t l = fs::path_of(n, g_exe, sizeof g_exe);
    if (l < 0) memcpy(g_exe, path, strlen(path) + 1);
  } else {
    src.image = phys(boot->program_gpa);
    src.image_len = boot->program_bytes;
    uint64_t l = strlen(exe_arg);
    if (l >= sizeof g_exe) l = sizeof g_exe - 1;
    memcpy(g_exe, exe_arg, l);
    g_exe[l] = 0;
  }

  static Ehdr eh;
  static Phdr ph[kMaxPhdrs];
  if (const char* err = read_headers(src, &eh, ph)) {
    if (src.node) exec_failed(g_exe, err, 126);
    panic("program is not an x86-64 ELF executable");
  }
  // PT_INTERP: the dynamic loader, from the root file system.
  static char interp[256];
  bool has_interp = false;
  for (int i = 0; i < eh.phnum; i++) {
    if (ph[i].type != PT_INTERP) continue;
    if (!src.node) panic("program needs a dynamic loader; build it with -static or give a root file system");
    if (ph[i].filesz < 2 || ph[i].filesz > sizeof interp || !src.read(ph[i].offset, interp, ph[i].filesz) ||
        interp[ph[i].filesz - 1])
      exec_failed(g_exe, "bad PT_INTERP", 126);
    has_interp = true;
  }
  Loaded main_elf;
  uint64_t bias = eh.type == ET_DYN ? kPieBase : 0;
  if (const char* err = map_elf(src, eh, ph, bias, &main_elf)) exec_failed(g_exe, err, 126);
  // Start the heap on a 2 MiB boundary so that brk growth maps whole 2 MiB pages (one trapped
  // page-table write each on PVM); Linux randomizes this gap anyway.
  g_brk = pmm::huge_up(main_elf.top);
  uint64_t interp_base = 0, start = main_elf.entry;
  if (has_interp) {
    fs::Node* in;
    int64_t r = fs::resolve(fs::root(), interp, true, &in);
    if (r < 0) exec_failed(interp, errno_text(r), 127);
    Source isrc;
    isrc.node = in;
    static Ehdr ieh;
    static Phdr iph[kMaxPhdrs];
    if (read_headers(isrc, &ieh, iph) || ieh.type != ET_DYN) exec_failed(interp, "Exec format error", 126);
    uint64_t span = load_span(ieh, iph);
    interp_base = span ? mm::find_free(span) : 0;
    if (!interp_base) oom();
    Loaded li;
    if (const char* err = map_elf(isrc, ieh, iph, interp_base, &li)) exec_failed(interp, err, 126);
    start = li.entry;
  }

  // Stack: [kUserMax - stack_bytes, kUserMax), mapped eagerly (see mm.h).
  uint64_t stack_bytes = page_up(boot->stack_bytes ? boot->stack_bytes : (8u << 20));
  if (mm::map_anon(mm::kUserMax - stack_bytes, stack_bytes, mm::kRead | mm::kWrite) < 0) oom();
  StackBuilder s{mm::kUserMax};
  // Strings first (top of stack), as Linux does: the VMM's block, then the "#!" prefix.
  s.sp -= args.used;
  memcpy(reinterpret_cast<void*>(s.sp), args.strs, args.used);
  uint64_t strings_va = s.sp;
  uint64_t prefix_va[3];
  for (int i = nprefix - 1; i >= 0; i--) prefix_va[i] = s.push(prefix[i], strlen(prefix[i]) + 1);
  uint64_t execfn_va = s.push(execfn, strlen(execfn) + 1);
  uint8_t rnd[16];
  random::fill(rnd, sizeof rnd);
  uint64_t random_va = s.push(rnd, sizeof rnd);
  g_at_random = random_va;
  uint64_t platform_va = s.push("x86_64", 7);

  uint32_t r[4];
  arch::cpuid(1, 0, r);
  const uint64_t auxv[][2] = {
      {AT_PHDR, main_elf.phdr_va}, {AT_PHENT, sizeof(Phdr)}, {AT_PHNUM, main_elf.phnum}, {AT_PAGESZ, kPage},
      {AT_BASE, interp_base}, {AT_FLAGS, 0}, {AT_ENTRY, main_elf.entry}, {AT_UID, 1000}, {AT_EUID, 1000},
      {AT_GID, 1000}, {AT_EGID, 1000}, {AT_SECURE, 0}, {AT_RANDOM, random_va},
      {AT_HWCAP, r[3]}, {AT_HWCAP2, 0}, {AT_CLKTCK, 100}, {AT_PLATFORM, platform_va},
      {AT_EXECFN, execfn_va}, {AT_MINSIGSTKSZ, 2048}, {AT_NULL, 0},
  };
  // A script drops the original argv[0]: the prefix ends with the script's path instead.
  uint64_t skip = nprefix ? 1 : 0;
  uint64_t argc = uint64_t(nprefix) + args.h.argc - skip;
  // Vector size: argc + argv + NULL + envp + NULL + auxv; keep the final sp 16-byte aligned.
  uint64_t words = 1 + argc + 1 + args.h.envc + 1 + sizeof(auxv) / 8;
  s.sp = (s.sp - words * 8) & ~15ull;
  auto* v = reinterpret_cast<uint64_t*>(s.sp);
  *v++ = argc;
  for (int i = 0; i < nprefix; i++) *v++ = prefix_va[i];
  uint64_t off = 0;
  for (uint64_t i = 0; i < args.h.argc + args.h.envc; i++) {
    if (i == args.h.argc) *v++ = 0;
    if (i >= skip) *v++ = strings_va + off;
    off += strlen(args.strs + off) + 1;
  }
  if (args.h.envc == 0) *v++ = 0;  // argv's NULL; the one below ends the (empty) envp
  *v++ = 0;
  memcpy(v, auxv, sizeof auxv);
  *entry = start;
  *sp = s.sp;
}

}  // namespace k::loader
