// Thin wrappers over /dev/kvm (Documentation/virt/kvm/api.rst): the system handle, a VM with one
// memslot, and its vCPUs. Errors are values naming the failing ioctl. Thread-safety: a Kvm is
// immutable after open() and shareable; a Vm and its Vcpus belong to one thread at a time.
#pragma once

#include "vmm/kvm_uapi.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/status.h"
#include "common/fd.h"

namespace vmfork::vmm {

/// The /dev/kvm system handle and what it reports once (supported CPUID, vCPU mmap size).
class Kvm {
 public:
  /// Opens /dev/kvm (O_RDWR | O_CLOEXEC) and checks KVM_GET_API_VERSION == 12.
  static Result<std::shared_ptr<const Kvm>> open();

  int fd() const { return fd_.get(); }
  /// Bytes to mmap from a vCPU fd for its struct kvm_run (KVM_GET_VCPU_MMAP_SIZE).
  size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
  /// KVM_GET_SUPPORTED_CPUID, as given to every vCPU with KVM_SET_CPUID2.
  const std::vector<kvm_cpuid_entry2>& supported_cpuid() const { return cpuid_; }
  /// KVM_CHECK_EXTENSION on the system fd.
  int check_extension(long cap) const;
  /// KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and restore for a vCPU.
  const std::vector<uint32_t>& msr_index_list() const { return msr_list_; }
  /// Bytes of a vCPU's XSAVE area (KVM_CAP_XSAVE2, at least 4096); 0 without KVM_CAP_XSAVE.
  size_t xsave_bytes() const { return xsave_bytes_; }
  /// KVM_CAP_XCRS and KVM_CAP_ADJUST_CLOCK as reported at open.
  bool has_xcrs() const { return has_xcrs_; }
  bool has_adjust_clock() const { return has_adjust_clock_; }

 private:
  Fd fd_;
  size_t vcpu_mmap_size_ = 0;
  std::vector<kvm_cpuid_entry2> cpuid_;
  std::vector<uint32_t> msr_list_;
  size_t xsave_bytes_ = 0;
  bool has_xcrs_ = false;
  bool has_adjust_clock_ = false;
};

/// One entry of KVM_GET/SET_MSRS.
struct MsrValue {
  uint32_t index;
  uint64_t value;
};

struct VcpuState;

/// A vCPU: its fd and the shared struct kvm_run mapping.
class Vcpu {
 public:
  Vcpu(std::shared_ptr<const Kvm> kvm, Fd fd, kvm_run* run, size_t run_size)
      : kvm_(std::move(kvm)), fd_(std::move(fd)), run_(run), run_size_(run_size) {}
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  int fd() const { return fd_.get(); }
  kvm_run* run_struct() { return run_; }

  /// KVM_RUN. Returns true when the vCPU exited (see run_struct()->exit_reason), false when it
  /// was interrupted by a signal (EINTR); an error for any other failure.
  Result<bool> run();

  Status get_regs(kvm_regs* r) const;
  Status set_regs(const kvm_regs& r);
  Status get_sregs(kvm_sregs* s) const;
  Status set_sregs(const kvm_sregs& s);
  Status set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
  /// KVM_SET_MSRS; fails unless every entry was accepted, naming the first refused MSR.
  Status set_msrs(const std::vector<MsrValue>& msrs);
  /// KVM_GET_MSRS of one MSR; an error if the host does not have it.
  Result<uint64_t> get_msr(uint32_t index) const;

  /// Captures every piece of vCPU state (vmm/vcpu_state.h gives the list and the order).
  /// `with_lapic`: the VM has an in-kernel irqchip, so the vCPU has a LAPIC to save.
  /// Errors: the first GET ioctl that failed.
  Result<VcpuState> save(bool with_lapic) const;
  /// Loads `s` into this vCPU in the documented order. Errors: the first SET ioctl that failed,
  /// or an MSR KVM refused (named); the vCPU must then be discarded.
  Status restore(const VcpuState& s);
  /// Puts `s` back into a vCPU that was restored from `s` earlier and has run since (a reset
  /// clone), with the fewest ioctls: sregs, MSRs in one KVM_SET_MSRS, XSAVE (or FPU), XCRs,
  /// debug registers, the MP state only when `s`'s is not RUNNABLE, and regs and events through
  /// kvm_run's synced registers (KVM_CAP_SYNC_REGS), which the next KVM_RUN applies: until then
  /// KVM_GET_REGS/VCPU_EVENTS still show the old values (Machine::save() runs KVM_RUN with
  /// immediate_exit first, which applies them). Without KVM_CAP_SYNC_REGS, or with a LAPIC, it
  /// is restore(s). Errors: as restore; the vCPU must then be discarded.
  Status reset(const VcpuState& s);
  /// Has KVM drop this vCPU's cached translations at the next KVM_SET_SREGS of `sregs`, as a
  /// guest MOV to CR3 would: loads `sregs` with CR3's PWT bit (3) flipped, so that the set that
  /// follows (reset() or restore() of the same sregs) changes CR3, which resets the MMU context
  /// and requests a guest TLB flush (arch/x86/kvm/x86.c, __set_sregs: kvm_mmu_reset_context,
  /// KVM_REQ_TLB_FLUSH_GUEST); the next KVM_RUN loads the roots again and syncs every
  /// unsynchronized shadow page (arch/x86/kvm/mmu/mmu.c, kvm_mmu_load: kvm_mmu_sync_roots).
  /// One ioctl, ~10 us here, where the guest's own CR3 reload is an emulated instruction on PVM.
  /// Errors: KVM_SET_SREGS; the vCPU must then be discarded.
  Status resync_mmu(const kvm_sregs& sregs);

 private:
  std::shared_ptr<const Kvm> kvm_;
  Fd fd_;
  kvm_run* run_;
  size_t run_size_;
  // MSRs this vCPU's KVM_SET_MSRS refused (vcpu_state.cc restore_msrs): checked, not offered.
  std::vector<uint32_t> msr_refused_;
  // The state whose refused MSRs were last checked to hold its values: reset() skips the check.
  const VcpuState* refused_checked_for_ = nullptr;
  int sync_fields_ = -1;  // KVM_CAP_SYNC_REGS (a KVM_SYNC_X86_* mask), -1 until reset() asks
};

/// VM-wide state outside any vCPU and outside guest memory (Vm::save / Vm::restore).
struct VmState {
  std::optional<kvm_clock_data> clock;  // kvmclock base (KVM_GET_CLOCK), with KVM_CAP_ADJUST_CLOCK
  struct Irqchip {
    kvm_irqchip pic_master{}, pic_slave{}, ioapic{};
    kvm_pit_state2 pit{};
  };
  std::optional<Irqchip> irqchip;       // present only when the VM has an in-kernel irqchip
};

/// A VM: KVM_CREATE_VM plus memslots and vCPUs.
class Vm {
 public:
  /// KVM_CREATE_VM.
  static Result<std::unique_ptr<Vm>> create(std::shared_ptr<const Kvm> kvm);

  int fd() const { return fd_.get(); }
  const Kvm& kvm() const { return *kvm_; }
  /// KVM_SET_USER_MEMORY_REGION: maps [host, host+bytes) at guest-physical `gpa` as `slot`.
  /// `read_only` sets KVM_MEM_READONLY (KVM_CAP_READONLY_MEM): a guest write becomes an MMIO exit.
  Status set_memslot(uint32_t slot, uint64_t gpa, void* host, uint64_t bytes, bool read_only = false);
  /// KVM_CREATE_VCPU, mmap of its kvm_run, KVM_SET_CPUID2 with the supported CPUID.
  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t id);
  /// KVM_CREATE_IRQCHIP (PIC, IOAPIC, per-vCPU LAPICs) and KVM_CREATE_PIT2. Call before
  /// create_vcpu. The default guest needs neither; templates of a guest that does keep them.
  Status create_irqchip();
  bool has_irqchip() const { return has_irqchip_; }

  /// Captures the kvmclock and, with an irqchip, PIC/IOAPIC/PIT state. Errors: the failing ioctl.
  Result<VmState> save() const;
  /// Loads `s`. Errors: the failing ioctl, or an irqchip in `s` but not in this VM (or back).
  Status restore(const VmState& s);

 private:
  Vm(std::shared_ptr<const Kvm> kvm, Fd fd) : kvm_(std::move(kvm)), fd_(std::move(fd)) {}
  std::shared_ptr<const Kvm> kvm_;
  Fd fd_;
  bool has_irqchip_ = false;
};

}  // namespace vmfork::vmm
