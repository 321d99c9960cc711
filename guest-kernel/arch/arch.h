// x86-64 instructions the guest kernel needs, as inline functions. Freestanding; single vCPU.
#pragma once

#include <stdint.h>

extern "C" uint64_t priv_trap(uint64_t op, uint64_t a, uint64_t b);

namespace k::arch {

/// Privileged operations that priv_trap can request (see entry.S).
enum PrivOp : uint64_t {
  kOpOut32 = 1,
  kOpWrmsr = 2,
  kOpReloadCr3 = 3,
  kOpInvlpg = 4,
  kOpOut8 = 5,
  kOpWriteCr3 = 6,
};

/// True in PVM native mode, where the kernel always has supervisor rights.
extern bool g_native;

/// True when privileged instructions may run directly: native mode, or CPL 0 (boot, traps,
/// hardware KVM). False in the syscall path of PVM emulated mode, which runs at CPL 3.
inline bool direct() {
  if (g_native) return true;
  uint16_t cs;
  asm volatile("mov %%cs, %0" : "=r"(cs));
  return (cs & 3) == 0;
}

inline uint64_t rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t(hi) << 32) | lo;
}
inline void wrmsr_direct(uint32_t msr, uint64_t v) {
  asm volatile("wrmsr" ::"c"(msr), "a"(uint32_t(v)), "d"(uint32_t(v >> 32)) : "memory");
}
inline void wrmsr(uint32_t msr, uint64_t v) {
  if (direct()) wrmsr_direct(msr, v);
  else priv_trap(kOpWrmsr, msr, v);
}
inline uint64_t read_cr2() {
  uint64_t v;
  asm volatile("mov %%cr2, %0" : "=r"(v));
  return v;
}
inline void invlpg_direct(uint64_t va) { asm volatile("invlpg (%0)" ::"r"(va) : "memory"); }
inline void invlpg(uint64_t va) {
  if (direct()) invlpg_direct(va);
  else priv_trap(kOpInvlpg, va, 0);
}
/// The page-table root this kernel last loaded (write_cr3): until then the VMM's boot tables,
/// whose PML4 is at guest-physical 0x11000 (abi::kPageTableGpa, vmm/boot.cc). A clone resumes
/// with the CR3 its template was frozen with, which is this value in the template's memory.
/// Kept so that reload_cr3 does not read CR3: on PVM every MOV from CR3 is an emulated
/// instruction, as costly as the write (docs/performance.md, "The guest's CR3 reload").
inline constexpr uint64_t kBootCr3 = 0x11000;  // == abi::kPageTableGpa (checked in kernel/main.cc)
inline uint64_t g_cr3 = kBootCr3;
inline void reload_cr3_direct() { asm volatile("mov %0, %%cr3" ::"r"(g_cr3) : "memory"); }
/// Flushes the whole TLB (non-global entries) by reloading CR3.
inline void reload_cr3() {
  if (direct()) reload_cr3_direct();
  else priv_trap(kOpReloadCr3, 0, 0);
}
inline void write_cr3_direct(uint64_t pml4_gpa) {
  asm volatile("mov %0, %%cr3" ::"r"(pml4_gpa) : "memory");
}
/// Switches to the page tables rooted at guest-physical `pml4_gpa` (4 KiB-aligned; bits 11:0
/// are CR3 flags and must be 0: no PCID, CR4.PCIDE is off). Also flushes the TLB.
inline void write_cr3(uint64_t pml4_gpa) {
  g_cr3 = pml4_gpa;
  if (direct()) write_cr3_direct(pml4_gpa);
  else priv_trap(kOpWriteCr3, pml4_gpa, 0);
}
inline void out8_direct(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
inline void out8(uint16_t port, uint8_t v) {
  if (direct()) out8_direct(port, v);
  else priv_trap(kOpOut8, port, v);
}
inline void out32_direct(uint16_t port, uint32_t v) {
  asm volatile("outl %0, %1" ::"a"(v), "Nd"(port) : "memory");
}
inline void out32(uint16_t port, uint32_t v) {
  if (direct()) out32_direct(port, v);
  else priv_trap(kOpOut32, port, v);
}
inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
inline void pause() { asm volatile("pause"); }

inline constexpr uint32_t kMsrFsBase = 0xc0000100;
inline constexpr uint32_t kMsrStar = 0xc0000081;
inline constexpr uint32_t kMsrLstar = 0xc0000082;
inline constexpr uint32_t kMsrSfmask = 0xc0000084;

}  // namespace k::arch
