// Boot loader: puts the guest kernel ELF, the VMM-built page tables, GDT and TSS into guest
// memory and sets the vCPU to 64-bit mode at the kernel's entry. Layout and register state are
// the ABI in guest-kernel/abi/vmfork_abi.h (docs/guest-abi.md). Thread-safety: one VM at a time.
#pragma once

#include <cstdint>
#include <span>

#include "common/status.h"
#include "vmm/guest_memory.h"
#include "vmm/kvm.h"

namespace vmfork::vmm {

/// Copies the kernel's PT_LOAD segments to their physical addresses (which must lie in
/// [kKernelGpa, kKernelEnd)) and returns the entry point. Errors: malformed or misplaced ELF.
Result<uint64_t> load_kernel(GuestMemory& mem, std::span<const uint8_t> kernel_elf);

/// Builds the kernel page tables at kPageTableGpa: a direct map of all memory at kDirectMapBase
/// and the kernel alias at kKernelVirtBase, 2 MiB pages, U=1 everywhere (PVM native mode needs
/// it). `rootfs_bytes` (0 for none) of a rootfs image at abi::kRootfsGpa are direct-mapped too.
/// Also writes the GDT and TSS. Errors: memory and image larger than the tables can map.
Status build_kernel_address_space(GuestMemory& mem, uint64_t rootfs_bytes = 0);

/// Sets sregs (long mode, CR3, GDT/IDT/TR), regs (RIP = entry) and, for PVM native mode, MSR
/// 0x4b564d10 = 1. Errors name the failing ioctl.
Status setup_boot_vcpu(Vcpu& vcpu, uint64_t entry, bool pvm_native);

}  // namespace vmfork::vmm
