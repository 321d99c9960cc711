// Vm::create_irqchip(), Vm::save() and Vm::restore(): VM-wide state that lives in KVM rather
// than in guest memory or a vCPU. Thread-safety: as Vm (one thread, no vCPU running).
#include <sys/ioctl.h>

#include "vmm/kvm.h"

namespace vmfork::vmm {

namespace {

Status vm_ioctl(int fd, unsigned long req, void* arg, const char* name) {
  if (ioctl(fd, req, arg) < 0) return errno_error(name);
  return {};
}

kvm_irqchip chip(uint32_t id) {
  kvm_irqchip c{};
  c.chip_id = id;
  return c;
}

}  // namespace

Status Vm::create_irqchip() {
  VF_TRY(vm_ioctl(fd(), KVM_CREATE_IRQCHIP, nullptr, "KVM_CREATE_IRQCHIP"));
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  VF_TRY(vm_ioctl(fd(), KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2"));
  has_irqchip_ = true;
  return {};
}

Result<VmState> Vm::save() const {
  VmState s;
  if (kvm_->has_adjust_clock()) {
    kvm_clock_data c{};
    VF_TRY(vm_ioctl(fd(), KVM_GET_CLOCK, &c, "KVM_GET_CLOCK"));
    s.clock = c;
  }
  if (has_irqchip_) {
    VmState::Irqchip ic;
    ic.pic_master = chip(KVM_IRQCHIP_PIC_MASTER);
    ic.pic_slave = chip(KVM_IRQCHIP_PIC_SLAVE);
    ic.ioapic = chip(KVM_IRQCHIP_IOAPIC);
    VF_TRY(vm_ioctl(fd(), KVM_GET_IRQCHIP, &ic.pic_master, "KVM_GET_IRQCHIP (PIC master)"));
    VF_TRY(vm_ioctl(fd(), KVM_GET_IRQCHIP, &ic.pic_slave, "KVM_GET_IRQCHIP (PIC slave)"));
    VF_TRY(vm_ioctl(fd(), KVM_GET_IRQCHIP, &ic.ioapic, "KVM_GET_IRQCHIP (IOAPIC)"));
    VF_TRY(vm_ioctl(fd(), KVM_GET_PIT2, &ic.pit, "KVM_GET_PIT2"));
    s.irqchip = ic;
  }
  return s;
}

Status Vm::restore(const VmState& s) {
  if (s.irqchip.has_value() != has_irqchip_)
    return plain_error(has_irqchip_ ? "VM state has no irqchip but this VM has one"
                                    : "VM state has an irqchip but this VM has none");
  if (s.irqchip) {
    VmState::Irqchip ic = *s.irqchip;  // the SET ioctls take non-const pointers
    VF_TRY(vm_ioctl(fd(), KVM_SET_IRQCHIP, &ic.pic_master, "KVM_SET_IRQCHIP (PIC master)"));
    VF_TRY(vm_ioctl(fd(), KVM_SET_IRQCHIP, &ic.pic_slave, "KVM_SET_IRQCHIP (PIC slave)"));
    VF_TRY(vm_ioctl(fd(), KVM_SET_IRQCHIP, &ic.ioapic, "KVM_SET_IRQCHIP (IOAPIC)"));
    VF_TRY(vm_ioctl(fd(), KVM_SET_PIT2, &ic.pit, "KVM_SET_PIT2"));
  }
  if (s.clock && kvm_->has_adjust_clock()) {
    // Only the clock value is settable; the flags KVM_GET_CLOCK reported are informational.
    kvm_clock_data c{};
    c.clock = s.clock->clock;
    VF_TRY(vm_ioctl(fd(), KVM_SET_CLOCK, &c, "KVM_SET_CLOCK"));
  }
  return {};
}

}  // namespace vmfork::vmm
