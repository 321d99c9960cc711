// Shared declarations of the vmfork guest kernel: boot info, the host channel, logging,
// freestanding memory helpers, and the frames built by entry.S. Single vCPU, and a task gives
// the vCPU up only at points the kernel chooses (kernel/sched.h): kernel code never runs
// concurrently with itself, so globals need no locking.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/vmfork_abi.h"

extern "C" {
void* memcpy(void* dst, const void* src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
}

namespace k {

using namespace vmfork::abi;

inline constexpr uint64_t kPage = 4096;
inline uint64_t page_down(uint64_t v) { return v & ~(kPage - 1); }
inline uint64_t page_up(uint64_t v) { return (v + kPage - 1) & ~(kPage - 1); }

/// Kernel-virtual pointer to guest-physical address `gpa` (through the direct map).
template <typename T = uint8_t>
inline T* phys(uint64_t gpa) {
  return reinterpret_cast<T*>(kDirectMapBase + gpa);
}

extern BootInfo* boot;
extern Channel* chan;
extern bool verbose;

/// Rings the VMM with request `r` (one VM exit). Returns when the VMM resumes the vCPU.
void ring(Request r);
/// Logs to the serial console when the VMM asked for verbose boot (one exit per byte: rare use).
void log(const char* s);
void log_hex(const char* label, uint64_t v);
/// Reports a kernel bug or bad boot info to the VMM and stops for good.
[[noreturn]] void panic(const char* msg);
/// Ends the job: flushes output and reports `req` (kReqExit, kReqSignal, kReqMemLimit).
[[noreturn]] void end_job(Request req, uint64_t status);

/// The job's registers as syscall_entry (entry.S) saves them on the task's kernel stack, lowest
/// address first: Linux's struct pt_regs order (arch/x86/include/asm/ptrace.h). ret_to_user
/// restores every field, so changing one changes what the job resumes with.
struct Regs {
  uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax;
  uint64_t rip, cs, rflags, rsp, ss;  // the IRETQ frame back to the job
};
static_assert(sizeof(Regs) == 168, "Regs must match entry.S");

/// What trap_common (entry.S) passes to trap_handler: the stub's pushes, then the CPU's frame.
struct TrapFrame {
  uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

/// All GPRs saved by trap_common's #UD path (entry.S), then the TrapFrame part.
struct PrivFrame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  TrapFrame trap;
};

}  // namespace k
