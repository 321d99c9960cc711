// Boot loader (see boot.h). Paging structures: Intel SDM vol. 3A, 4.5 (4-level paging); segment
// and TSS descriptors: SDM vol. 3A, 3.4.5 and 7.2.3.
#include "vmm/boot.h"

#include <cstring>

#include "guest-kernel/abi/vmfork_abi.h"
#include "vmm/accel.h"
#include "vmm/elf.h"

namespace vmfork::vmm {

namespace abi = vmfork::abi;

namespace {
constexpr uint64_t kPresent = 1, kWritable = 2, kUser = 4, kHuge = 0x80;
constexpr uint64_t kTableFlags = kPresent | kWritable | kUser;
constexpr uint64_t kGiB = 1ull << 30, kTwoMiB = 2ull << 20;
constexpr uint64_t kPml4 = abi::kPageTableGpa;
constexpr uint64_t kPdptDirect = kPml4 + 0x1000;
constexpr uint64_t kPdptKernel = kPml4 + 0x2000;
constexpr uint64_t kFirstPd = kPml4 + 0x3000;
}  // namespace

Result<uint64_t> load_kernel(GuestMemory& mem, std::span<const uint8_t> kernel_elf) {
  VF_ASSIGN(ElfInfo info, parse_elf(kernel_elf));
  for (const ElfSegment& s : info.loads) {
    if (s.paddr < abi::kKernelGpa || s.memsz > abi::kKernelEnd - s.paddr)
      return plain_error("guest kernel segment outside [kKernelGpa, kKernelEnd)");
    VF_TRY(mem.write(s.paddr, kernel_elf.subspan(s.offset, s.filesz)));
    VF_ASSIGN(auto bss, mem.span(s.paddr + s.filesz, s.memsz - s.filesz));
    std::memset(bss.data(), 0, bss.size());
  }
  if (info.entry < abi::kKernelVirtBase + abi::kKernelGpa) return plain_error("guest kernel entry not in the kernel alias");
  return info.entry;
}

Status build_kernel_address_space(GuestMemory& mem, uint64_t rootfs_bytes) {
  uint64_t gib = (mem.size() + kGiB - 1) / kGiB;
  uint64_t rootfs_gib = (rootfs_bytes + kGiB - 1) / kGiB;
  if (mem.size() > abi::kRootfsGpa || rootfs_bytes > abi::kRootfsMaxBytes ||
      kFirstPd + (gib + rootfs_gib) * 0x1000 > abi::kPageTableEnd)
    return plain_error("guest memory of " + std::to_string(mem.size() >> 20) + " MiB and a rootfs of " +
                       std::to_string(rootfs_bytes >> 20) + " MiB cannot be mapped");
  VF_ASSIGN(auto tables, mem.span(kPml4, kFirstPd + (gib + rootfs_gib) * 0x1000 - kPml4));
  std::memset(tables.data(), 0, tables.size());
  auto* pml4 = mem.at<uint64_t>(kPml4);
  auto* pdpt_direct = mem.at<uint64_t>(kPdptDirect);
  auto* pdpt_kernel = mem.at<uint64_t>(kPdptKernel);
  pml4[(abi::kDirectMapBase >> 39) & 511] = kPdptDirect | kTableFlags;
  pml4[(abi::kKernelVirtBase >> 39) & 511] = kPdptKernel | kTableFlags;
  // One page directory per GiB: first guest memory from GPA 0, then the rootfs image.
  auto map_gib = [&](uint64_t pd_index, uint64_t gpa_base, uint64_t end) {
    uint64_t pd_gpa = kFirstPd + pd_index * 0x1000;
    auto* pd = mem.at<uint64_t>(pd_gpa);
    for (uint64_t i = 0; i < 512 && gpa_base + i * kTwoMiB < end; i++)
      pd[i] = (gpa_base + i * kTwoMiB) | kTableFlags | kHuge;
    pdpt_direct[gpa_base / kGiB] = pd_gpa | kTableFlags;
    return pd_gpa;
  };
  for (uint64_t g = 0; g < gib; g++) {
    uint64_t pd_gpa = map_gib(g, g * kGiB, mem.size());
    // The kernel alias (-mcmodel=kernel: top 2 GiB) covers the first 2 GiB of memory.
    uint64_t k = ((abi::kKernelVirtBase >> 30) & 511) + g;
    if (k < 512) pdpt_kernel[k] = pd_gpa | kTableFlags;
  }
  for (uint64_t g = 0; g < rootfs_gib; g++)
    map_gib(gib + g, abi::kRootfsGpa + g * kGiB, abi::kRootfsGpa + rootfs_bytes);

  // GDT: null, null, kernel CS64 (0x10), kernel DS (0x18), user CS32 (0x23), user DS (0x2b),
  // user CS64 (0x33), null, TSS (0x40, 16 bytes).
  auto* gdt = mem.at<uint64_t>(abi::kGdtGpa);
  std::memset(gdt, 0, 0x1000);
  gdt[2] = 0x00af9a000000ffffull;
  gdt[3] = 0x00cf92000000ffffull;
  gdt[4] = 0x00cffa000000ffffull;
  gdt[5] = 0x00cff2000000ffffull;
  gdt[6] = 0x00affa000000ffffull;
  uint64_t tss = abi::kDirectMapBase + abi::kTssGpa, lim = 0x67;
  gdt[8] = (lim & 0xffff) | ((tss & 0xffffff) << 16) | (0x89ull << 40) |
           (((lim >> 16) & 0xf) << 48) | (((tss >> 24) & 0xff) << 56);
  gdt[9] = tss >> 32;
  std::memset(mem.at<uint8_t>(abi::kTssGpa), 0, 0x1000);  // RSP0 is set by the guest kernel
  std::memset(mem.at<uint8_t>(abi::kIdtGpa), 0, 0x1000);
  return {};
}

static kvm_segment segment(uint16_t sel, bool code) {
  kvm_segment s{};
  s.selector = sel;
  s.limit = 0xffffffff;
  s.g = 1;
  s.present = 1;
  s.s = 1;
  if (code) {
    s.type = 0xb;
    s.l = 1;
  } else {
    s.type = 0x3;
    s.db = 1;
  }
  return s;
}

Status setup_boot_vcpu(Vcpu& vcpu, uint64_t entry, bool pvm_native) {
  kvm_sregs s;
  VF_TRY(vcpu.get_sregs(&s));
  s.cr0 = 0x80050033;  // PG | AM | WP | NE | ET | MP | PE
  s.cr3 = kPml4;
  s.cr4 = 0x620;       // PAE | OSFXSR | OSXMMEXCPT
  s.efer = 0xd01;      // SCE | LME | LMA | NXE
  s.cs = segment(abi::kKernelCs, true);
  s.ss = segment(abi::kKernelDs, false);
  s.ds = s.es = s.fs = s.gs = segment(0, false);
  s.ds.present = s.es.present = s.fs.present = s.gs.present = 0;
  s.ds.type = s.es.type = s.fs.type = s.gs.type = 0;
  s.gdt.base = abi::kDirectMapBase + abi::kGdtGpa;
  s.gdt.limit = 0x4f;
  s.idt.base = abi::kDirectMapBase + abi::kIdtGpa;
  s.idt.limit = 0xfff;
  s.tr = kvm_segment{};
  s.tr.selector = abi::kTss;
  s.tr.base = abi::kDirectMapBase + abi::kTssGpa;
  s.tr.limit = 0x67;
  s.tr.type = 11;
  s.tr.present = 1;
  VF_TRY(vcpu.set_sregs(s));
  if (pvm_native) VF_TRY(vcpu.set_msrs({{kMsrPvmControl, 1}}));
  kvm_regs r{};
  r.rip = entry;
  r.rflags = 2;
  return vcpu.set_regs(r);
}

}  // namespace vmfork::vmm
