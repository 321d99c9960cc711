// The complete architectural state of one x86-64 vCPU as KVM exposes it, captured by
// Vcpu::save() and put back by Vcpu::restore() (implemented in vcpu_state.cc).
//
// Ordering rule (docs/snapshot-format.md, "State sections", repeats it):
// - save:    MP state first (KVM_GET_MP_STATE may process a pending INIT/SIPI and change the
//            rest), then regs, sregs, FPU, XSAVE, XCRs, debug registers, LAPIC, MSRs, and the
//            vCPU events last, so a pending exception or interrupt is seen after everything it
//            refers to.
// - restore: sregs first (CR0/CR4/EFER define the mode that MSR and register values are checked
//            against), then MSRs (the PVM control MSR 0x4b564d10 is only accepted once the VM has
//            a memslot and the vCPU is in long mode), regs, FPU, XSAVE, XCRs, LAPIC, debug
//            registers, vCPU events, and MP state last.
// The caller must have completed any in-flight I/O exit first (KVM_RUN with immediate_exit set,
// Documentation/virt/kvm/api.rst, "KVM_EXIT_IO ... complete only after re-entering KVM_RUN"):
// Machine::save() does.
//
// Thread-safety: plain values.
#pragma once

#include "vmm/kvm_uapi.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "vmm/accel.h"  // kMsrPvmControl: not in KVM_GET_MSR_INDEX_LIST, saved explicitly
#include "vmm/kvm.h"

namespace vmfork::vmm {

/// MSRs deliberately left out of a snapshot (see vcpu_state.cc for why each one).
bool msr_excluded_from_snapshot(uint32_t index);

/// Guest-writable MSRs saved by name besides KVM_GET_MSR_INDEX_LIST: the MTRRs (0x200-0x20f,
/// 0x250, 0x258, 0x259, 0x268-0x26f, 0x2ff), which KVM leaves out of that list, plus the PAT
/// (0x277) and IA32_TSC_ADJUST (0x3b). Restore puts each back even when a snapshot lacks it
/// (then at its power-on value), so that a reset clone never keeps a job's value.
const std::vector<uint32_t>& msrs_saved_explicitly();

/// More guest-writable MSRs saved by name when the vCPU can read them (no power-on fallback:
/// a host may lack them): IA32_SPEC_CTRL, IA32_TSX_CTRL, IA32_XFD, IA32_XFD_ERR, TSC_AUX and
/// the 32 machine-check banks 0x400-0x47f (vcpu_state.cc says why each).
const std::vector<uint32_t>& msrs_saved_if_present();

struct VcpuState {
  kvm_mp_state mp_state{};
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  /// KVM_GET_XSAVE(2) area, `Kvm::xsave_bytes()` long (4096 unless KVM_CAP_XSAVE2 says more);
  /// empty when the host has no KVM_CAP_XSAVE.
  std::vector<uint8_t> xsave;
  std::optional<kvm_xcrs> xcrs;            // absent without KVM_CAP_XCRS
  kvm_debugregs debugregs{};
  std::optional<kvm_lapic_state> lapic;    // present only with an in-kernel irqchip
  std::vector<MsrValue> msrs;              // every readable, non-excluded MSR: KVM_GET_MSR_INDEX_LIST
                                           // order, then msrs_saved_explicitly(), msrs_saved_if_present(),
                                           // then kMsrPvmControl
  kvm_vcpu_events events{};
};

}  // namespace vmfork::vmm
