// ELF loader and initial stack (see loader.h). Formats: System V gABI (ELF64 header, program
// headers), x86-64 psABI 3.4.1 (process entry), Linux fs/binfmt_elf.c conventions for auxv.
#include "fs/loader.h"

#include "arch/arch.h"
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

const char* g_exe = "";
uint64_t g_brk;
uint64_t g_at_random;  // job VA of the AT_RANDOM bytes

uint32_t prot_of(uint32_t pf) {
  return ((pf & PF_R) ? mm::kRead : 0) | ((pf & PF_W) ? mm::kWrite : 0) |
         ((pf & PF_X) ? mm::kExec : 0);
}

void oom() { end_job(kReqMemLimit, 0); }

// Maps one PT_LOAD segment. Read-only pages fully backed by the file are mapped in place from
// the program image (no copy: on PVM each fresh page costs a shadow-paging fault); writable pages
// get fresh pages with the file bytes copied in and the rest zero (.bss).
void load_segment(const uint8_t* image, uint64_t image_len, const Phdr& ph, uint64_t bias) {
  if (ph.filesz > ph.memsz || ph.offset > image_len || ph.filesz > image_len - ph.offset)
    panic("ELF segment outside the file");
  uint64_t va = ph.vaddr + bias;
  if (va < mm::kUserMin || va + ph.memsz > mm::kMmapTop || va + ph.memsz < va)
    panic("ELF segment outside the user address range");
  if ((ph.vaddr - ph.offset) % kPage) panic("ELF segment misaligned");
  uint64_t start = page_down(va), end = page_up(va + ph.memsz);
  uint32_t prot = prot_of(ph.flags);
  uint64_t file_start = va, file_end = va + ph.filesz;  // virtual range backed by file bytes
  for (uint64_t page = start; page < end; page += kPage) {
    uint64_t existing = mm::translate(page);  // a page shared with the previous segment
    bool whole_file_page = page >= file_start && page + kPage <= file_end;
    if (!(prot & mm::kWrite) && whole_file_page && !existing) {
      if (!mm::map_page(page, kProgramGpa + ph.offset + (page - va), prot, false)) oom();
      continue;
    }
    uint64_t pa = existing ? existing : pmm::alloc();
    if (!pa || !mm::map_page(page, pa, prot, true)) oom();
    // Copy the part of this page that the file backs; the rest stays zero (.bss).
    uint64_t lo = page > file_start ? page : file_start;
    uint64_t hi = page + kPage < file_end ? page + kPage : file_end;
    if (lo < hi) memcpy(phys(pa + (lo - page)), image + ph.offset + (lo - va), hi - lo);
  }
  mm::note_vma(start, end - start, prot);
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

}  // namespace

const char* exe_path() { return g_exe; }
uint64_t initial_brk() { return g_brk; }
uint64_t at_random_va() { return g_at_random; }

void load(uint64_t* entry, uint64_t* sp) {
  const uint8_t* image = phys(boot->program_gpa);
  uint64_t len = boot->program_bytes;
  if (len < sizeof(Ehdr)) panic("program is not an ELF file");
  Ehdr eh;
  memcpy(&eh, image, sizeof eh);
  if (memcmp(eh.ident, "\x7f" "ELF", 4) || eh.ident[4] != 2 || eh.ident[5] != 1)
    panic("program is not a little-endian ELF64 file");
  if (eh.machine != EM_X86_64 || (eh.type != ET_EXEC && eh.type != ET_DYN))
    panic("program is not an x86-64 executable");
  if (eh.phentsize != sizeof(Phdr) || eh.phnum == 0 || eh.phnum > 256 || eh.phoff > len ||
      uint64_t(eh.phnum) * sizeof(Phdr) > len - eh.phoff)
    panic("ELF program headers out of range");
  const auto* ph = reinterpret_cast<const Phdr*>(image + eh.phoff);
  uint64_t bias = eh.type == ET_DYN ? kPieBase : 0;
  uint64_t phdr_va = 0, top = 0;
  for (int i = 0; i < eh.phnum; i++) {
    if (ph[i].type == PT_INTERP) panic("program needs a dynamic loader; build it with -static");
    if (ph[i].type == PT_PHDR) phdr_va = ph[i].vaddr + bias;
  }
  for (int i = 0; i < eh.phnum; i++) {
    if (ph[i].type != PT_LOAD) continue;
    load_segment(image, len, ph[i], bias);
    if (!phdr_va && eh.phoff >= ph[i].offset && eh.phoff < ph[i].offset + ph[i].filesz)
      phdr_va = ph[i].vaddr + bias + (eh.phoff - ph[i].offset);
    uint64_t end = ph[i].vaddr + bias + ph[i].memsz;
    if (end > top) top = end;
  }
  if (!top) panic("ELF has no loadable segment");
  // Start the heap on a 2 MiB boundary so that brk growth maps whole 2 MiB pages (one trapped
  // page-table write each on PVM); Linux randomizes this gap anyway.
  g_brk = pmm::huge_up(top);

  // Arguments block from the VMM: argc, envc, then NUL-terminated strings.
  const uint8_t* args = phys(boot->args_gpa);
  ArgsHeader ah;
  memcpy(&ah, args, sizeof ah);
  if (ah.argc == 0 || ah.argc > 65536 || ah.envc > 65536) panic("bad argument block");
  const char* strs = reinterpret_cast<const char*>(args + sizeof ah);
  uint64_t strs_len = boot->args_bytes - sizeof ah;
  uint64_t nstr = ah.argc + ah.envc + 1;
  // Find string starts, checking each is terminated inside the block.
  uint64_t used = 0;
  for (uint64_t i = 0; i < nstr; i++) {
    while (used < strs_len && strs[used]) used++;
    if (used >= strs_len) panic("argument block strings not terminated");
    used++;
  }

  // Stack: [kUserMax - stack_bytes, kUserMax), mapped eagerly (see mm.h).
  uint64_t stack_bytes = page_up(boot->stack_bytes ? boot->stack_bytes : (8u << 20));
  if (mm::map_anon(mm::kUserMax - stack_bytes, stack_bytes, mm::kRead | mm::kWrite) < 0) oom();
  StackBuilder s{mm::kUserMax};
  // Strings first (top of stack), as Linux does.
  s.sp -= used;
  memcpy(reinterpret_cast<void*>(s.sp), strs, used);
  uint64_t strings_va = s.sp;
  uint8_t rnd[16];
  random::fill(rnd, sizeof rnd);
  uint64_t random_va = s.push(rnd, sizeof rnd);
  g_at_random = random_va;
  uint64_t platform_va = s.push("x86_64", 7);
  // The exe path is the last string.
  uint64_t off = 0, idx = 0, exe_va = 0;
  for (; idx < nstr; idx++) {
    if (idx == nstr - 1) exe_va = strings_va + off;
    off += strlen(strs + off) + 1;
  }
  g_exe = reinterpret_cast<const char*>(exe_va);

  uint32_t r[4];
  arch::cpuid(1, 0, r);
  const uint64_t auxv[][2] = {
      {AT_PHDR, phdr_va}, {AT_PHENT, sizeof(Phdr)}, {AT_PHNUM, eh.phnum}, {AT_PAGESZ, kPage},
      {AT_BASE, 0}, {AT_FLAGS, 0}, {AT_ENTRY, eh.entry + bias}, {AT_UID, 1000}, {AT_EUID, 1000},
      {AT_GID, 1000}, {AT_EGID, 1000}, {AT_SECURE, 0}, {AT_RANDOM, random_va},
      {AT_HWCAP, r[3]}, {AT_HWCAP2, 0}, {AT_CLKTCK, 100}, {AT_PLATFORM, platform_va},
      {AT_EXECFN, exe_va}, {AT_MINSIGSTKSZ, 2048}, {AT_NULL, 0},
  };
  // Vector size: argc + argv + NULL + envp + NULL + auxv; keep the final sp 16-byte aligned.
  uint64_t words = 1 + ah.argc + 1 + ah.envc + 1 + sizeof(auxv) / 8;
  s.sp = (s.sp - words * 8) & ~15ull;
  auto* v = reinterpret_cast<uint64_t*>(s.sp);
  *v++ = ah.argc;
  off = 0;
  for (uint64_t i = 0; i < ah.argc + ah.envc; i++) {
    if (i == ah.argc) *v++ = 0;
    *v++ = strings_va + off;
    off += strlen(strs + off) + 1;
  }
  *v++ = 0;
  memcpy(v, auxv, sizeof auxv);
  *entry = eh.entry + bias;
  *sp = s.sp;
}

}  // namespace k::loader
