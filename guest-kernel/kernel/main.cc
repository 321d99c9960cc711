// Guest kernel entry (kmain), the doorbell to the VMM, logging, traps and the end of a job.
// Boot order: validate BootInfo -> IDT -> SYSCALL MSRs -> clock, CSPRNG, files -> [no program:
// kReqReady, the template freeze point] -> page allocator -> load the job's ELF -> IRETQ to it.
// Single vCPU, no interrupts (preemption ticks arrive as a pseudo-syscall, sched.h).
#include "arch/arch.h"
#include "kernel/clock.h"
#include "fs/files.h"
#include "fs/jobfiles.h"
#include "fs/vfs.h"
#include "kernel.h"
#include "fs/loader.h"
#include "mm/pmm.h"
#include "kernel/random.h"
#include "kernel/signal.h"
#include "kernel/task.h"

extern "C" char trap_stubs[];
extern "C" void syscall_entry();
extern "C" char priv_stack_top[];
extern "C" char priv_trap_insn[];
extern "C" [[noreturn]] void enter_user(uint64_t rip, uint64_t rsp);
extern "C" [[noreturn]] void drop_to_cpl3(void (*fn)());

namespace k {

bool arch::g_native;
BootInfo* boot;
Channel* chan;
bool verbose;

static uint64_t g_generation;
static_assert(arch::kBootCr3 == kPageTableGpa, "the VMM boots with CR3 at the kernel page tables");

// A restored clone resumes from some doorbell with a new BootInfo.generation: take the new
// clock pair and entropy before anything else runs (see BootInfo.generation).
static void refresh_identity() {
  g_generation = boot->generation;
  clock::init();
  random::seed(boot->entropy);
  if (uint64_t at = loader::at_random_va()) random::fill(reinterpret_cast<void*>(at), 16);
}

// After an in-place reset (BootInfo.reset_pages): make the host drop its shadow of every page the
// reset copied back, before any of them is used as a page table again.
static void forget_reset_pages() {
  const bool resynced = boot->reset_pages & kResetMmuResynced;
  uint64_t n = boot->reset_pages & ~kResetMmuResynced;
  if (n == 0) return;
  if (n > kResetListCap) n = kResetListCap;
  const uint64_t* list = phys<uint64_t>(kResetListGpa);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t gpa = list[i];
    if (gpa & 4095 || gpa >= boot->mem_bytes) continue;
    // 8 bytes at offset 4 straddle two page-table entries: a "misaligned" write to a shadowed
    // page table, which makes KVM zap that shadow page. The bytes written are those read.
    asm volatile("movq 4(%0), %%rax; movq %%rax, 4(%0)" ::"r"(kDirectMapBase + gpa) : "rax", "memory");
  }
  if (!resynced) arch::reload_cr3();
}

void ring(Request r) {
  chan->request = r;
  arch::out32(kDoorbellPort, r);
  if (boot->generation != g_generation) {
    forget_reset_pages();
    refresh_identity();
  }
}

void log(const char* s) {
  if (!verbose) return;
  for (; *s; s++) arch::out8(kSerialPort, uint8_t(*s));
}

void log_hex(const char* label, uint64_t v) {
  if (!verbose) return;
  char buf[20] = "0x";
  for (int i = 0; i < 16; i++) buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
  buf[18] = '\n';
  buf[19] = 0;
  log(label);
  log(buf);
}

static void set_message(const char* msg) {
  size_t n = strlen(msg);
  if (n >= sizeof chan->panic_msg) n = sizeof chan->panic_msg - 1;
  memcpy(chan->panic_msg, msg, n);
  chan->panic_msg[n] = 0;
}

[[noreturn]] static void stop(Request r) {
  chan->tsc_exit = arch::rdtsc();
  for (;;) ring(r);  // the VMM never resumes a finished job; loop in case a hostile one does
}

void panic(const char* msg) {
  log("vmfork kernel panic: ");
  log(msg);
  log("\n");
  set_message(msg);
  stop(kReqPanic);
}

void end_job(Request req, uint64_t status) {
  chan->exit_status = status;
  stop(req);
}

// ---- Traps --------------------------------------------------------------------------------
// IDT gate (Intel SDM vol. 3A, 6.14.1): 16 bytes, interrupt gate type 0xE, present.
static void setup_idt() {
  auto* idt = phys<uint64_t>(kIdtGpa);
  // PVM native mode delivers through the gate only if its selector is the user-visible 0x33.
  uint64_t sel = arch::g_native ? kUserCs : kKernelCs;
  for (uint64_t vec = 0; vec < 256; vec++) {
    uint64_t h = reinterpret_cast<uint64_t>(trap_stubs) + vec * 16;
    idt[vec * 2] = (h & 0xffff) | (sel << 16) | (0x8eull << 40) | ((h >> 16) & 0xffff) << 48;
    idt[vec * 2 + 1] = h >> 32;
  }
}

extern "C" [[noreturn]] void trap_handler(TrapFrame* f) {
  chan->fault_vector = f->vector;
  chan->fault_error = f->error;
  chan->fault_rip = f->rip;
  chan->fault_rsp = f->rsp;
  chan->fault_addr = f->vector == 14 ? arch::read_cr2() : 0;
  // In PVM native mode the kernel also runs with CS 0x33, so tell the job by its address.
  chan->fault_user = f->rip < 0x800000000000ull;
  set_message(chan->fault_user ? "exception in the job" : "exception in the guest kernel");
  stop(kReqFault);
}

// A fault taken in the job: its signal handler runs if it has one (the task's Regs, to resume
// with, is returned); otherwise process 1 reports the crash as before, and any other process
// dies of the signal's default action.
extern "C" Regs* trap_dispatch(PrivFrame* f) {
  bool user = f->trap.rip < 0x800000000000ull;
  if (!user) trap_handler(&f->trap);
  uint64_t cr2 = f->trap.vector == 14 ? arch::read_cr2() : 0;
  Regs* r = sched::regs_of(sched::current());
  *r = {f->r15, f->r14, f->r13, f->r12, f->rbp, f->rbx, f->r11, f->r10, f->r9, f->r8, f->rax, f->rcx,
        f->rdx, f->rsi, f->rdi, ~0ull, f->trap.rip, kUserCs, (f->trap.rflags & 0x40dd5) | 0x202, f->trap.rsp, kUserDs};
  if (signal::on_fault(r, f->trap.vector, f->trap.error, cr2)) return r;
  if (sched::current_proc()->pid == 1) trap_handler(&f->trap);
  static constexpr int kSig[32] = {8, 5, 11, 5, 11, 11, 4, 8, 11, 11, 11, 7, 7, 11, 11, 11,
                                   8, 7, 11, 8, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11};
  signal::die(f->trap.vector < 32 ? kSig[f->trap.vector] : 11);
}

extern "C" void trap_exit_to_user(Regs* r) { sched::exit_to_user(r); }

// #UD: a priv_trap request from the CPL-3 syscall path of PVM emulated mode, or a real #UD.
// Returns nullptr when the request was done, else the Regs to resume the job with.
extern "C" Regs* ud_handler(PrivFrame* f) {
  if (f->trap.rip != reinterpret_cast<uint64_t>(priv_trap_insn)) return trap_dispatch(f);
  switch (f->rdi) {
    case arch::kOpOut32: arch::out32_direct(uint16_t(f->rsi), uint32_t(f->rdx)); break;
    case arch::kOpOut8: arch::out8_direct(uint16_t(f->rsi), uint8_t(f->rdx)); break;
    case arch::kOpWrmsr: arch::wrmsr_direct(uint32_t(f->rsi), f->rdx); break;
    case arch::kOpReloadCr3: arch::reload_cr3_direct(); break;
    case arch::kOpWriteCr3: arch::write_cr3_direct(f->rsi & ~0xfffull); break;
    case arch::kOpInvlpg: arch::invlpg_direct(f->rsi); break;
    default: trap_handler(&f->trap);
  }
  f->trap.rip += 2;  // past the ud2
  return nullptr;
}

// ---- Boot ---------------------------------------------------------------------------------
static void check_boot_info() {
  if (boot->magic != kBootMagic) panic("bad BootInfo magic");
  if ((boot->abi_version >> 32) != kAbiMajor) panic("unsupported BootInfo major version");
  uint64_t mem = boot->mem_bytes;
  if (mem < kMinMemBytes || boot->free_gpa >= mem || boot->free_gpa < kProgramGpa)
    panic("BootInfo memory layout out of range");
  if (boot->program_gpa != kProgramGpa || boot->program_bytes > boot->free_gpa - kProgramGpa)
    panic("BootInfo program image out of range");
  if (boot->args_gpa != kArgsGpa || boot->args_bytes > kArgsCap)
    panic("BootInfo args block out of range");
  if (boot->rootfs_bytes && (boot->rootfs_gpa != kRootfsGpa || boot->rootfs_bytes > kRootfsMaxBytes))
    panic("BootInfo rootfs image out of range");
  if ((boot->flags & kFlagExecPath) && !boot->rootfs_bytes) panic("BootInfo exec path without a rootfs");
}

// True once BootInfo names a job: a program image, or a path in the root file system.
static bool has_job() { return boot->program_bytes != 0 || (boot->flags & kFlagExecPath); }

// The rest of boot. In PVM emulated mode it runs at CPL 3 (natively) and reaches privileged
// instructions through priv_trap; elsewhere it runs at CPL 0.
[[noreturn]] static void kmain_rest() {
  // First the IDT and TSS.RSP0: at CPL 3 even logging or a panic goes through priv_trap (#UD).
  // RSP0 (TSS offset 4) is the stack an ordinary-mode trap from CPL 3 switches to; not the
  // syscall stack, which is in use when a priv_trap arrives from the syscall path.
  setup_idt();
  uint64_t rsp0 = reinterpret_cast<uint64_t>(priv_stack_top);
  memcpy(phys(kTssGpa + 4), &rsp0, 8);
  log(arch::g_native ? "vmfork kernel: PVM native mode\n" : "vmfork kernel: x86-64 mode\n");
  check_boot_info();
  // SYSCALL: kernel CS/SS from STAR[47:32], user from STAR[63:48] (+16 for CS, +8 for SS).
  arch::wrmsr(arch::kMsrStar, (uint64_t(kUserCs32 - 3) << 48) | (uint64_t(kKernelCs) << 32));
  arch::wrmsr(arch::kMsrLstar, reinterpret_cast<uint64_t>(&syscall_entry));
  arch::wrmsr(arch::kMsrSfmask, 0x47700);  // clear TF, DF, IF, IOPL, NT, AC on entry
  g_generation = boot->generation;
  clock::init();
  random::seed(boot->entropy);
  if (!has_job()) {
    // No job yet: this is a template's freeze point. Each clone resumes from this OUT with its
    // own job in BootInfo and a new generation, so ring() has already re-read the clock and
    // reseeded the CSPRNG; the job's fields are validated again here.
    ring(kReqReady);
    check_boot_info();
    if (!has_job()) panic("resumed from kReqReady without a program");
  }
  pmm::init(boot->free_gpa, boot->mem_bytes);
  // The file system's nodes and the fd table live in pages from the allocator: after pmm::init.
  fs::init();
  files::init();
  jobfiles::install();
  sched::init();
  chan->tsc_ready = arch::rdtsc();
  uint64_t entry = 0, sp = 0;
  loader::load(&entry, &sp);
  sched::current_proc()->info = loader::current_info();
  log_hex("vmfork kernel: entering job at ", entry);
  chan->tsc_user_entry = arch::rdtsc();
  enter_user(entry, sp);
}

extern "C" [[noreturn]] void kmain() {
  boot = phys<BootInfo>(kBootInfoGpa);
  chan = phys<Channel>(kChannelGpa);
  chan->tsc_kernel_entry = arch::rdtsc();
  verbose = boot->flags & kFlagVerbose;
  arch::g_native = boot->flags & kFlagNativePvm;
  // Nothing may trap before setup_idt(); dropping to CPL 3 does not.
  if (boot->flags & kFlagPvmEmulated) drop_to_cpl3(kmain_rest);
  kmain_rest();
}

}  // namespace k
