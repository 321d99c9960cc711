// Accelerator probe (see accel.h).
#include "vmm/accel.h"

#include <memory>
#include <mutex>

#include "vmm/boot.h"
#include "vmm/guest_memory.h"

namespace vmfork::vmm {

namespace {

// The probe's scratch VM, kept until release_probe_vm(): KVM switches static keys (patching
// kernel text and IPI-ing every CPU) whenever the host's VM count goes 1 -> 0 and 0 -> 1, so
// destroying the scratch VM before the caller's first real VM exists made a one-shot
// `vmfork run` pay both switches once more (~6% of its CPU, docs/performance.md).
struct Parked {
  GuestMemory mem;  // declared first: destroyed after the VM whose memslot it backs
  std::unique_ptr<Vm> vm;
  std::unique_ptr<Vcpu> vcpu;
};
std::mutex g_parked_mu;
std::unique_ptr<Parked> g_parked;

}  // namespace

static Result<AccelProbe> probe_uncached(const Kvm& kvm_ref) {
  // A scratch VM needs a shared_ptr<Kvm>; wrap the caller's without owning it.
  std::shared_ptr<const Kvm> kvm(&kvm_ref, [](const Kvm*) {});
  VF_ASSIGN(auto vm, Vm::create(kvm));
  // PVM refuses the control MSR on a VM without memory behind CR3: give it a small memslot.
  VF_ASSIGN(GuestMemory mem, GuestMemory::create_anonymous(2u << 20));
  VF_TRY(vm->set_memslot(0, 0, mem.host(), mem.size()));
  VF_ASSIGN(auto vcpu, vm->create_vcpu(0));
  auto park = [&] {
    std::lock_guard<std::mutex> lock(g_parked_mu);
    g_parked.reset(new Parked{std::move(mem), std::move(vm), std::move(vcpu)});
  };
  AccelProbe p;
  auto sig = vcpu->get_msr(kMsrPvmSignature);
  p.pvm = sig.ok() && *sig == kPvmSignature;
  if (p.pvm) {
    auto khz = vcpu->get_msr(kMsrPvmTscKhz);
    if (khz.ok()) p.pvm_tsc_khz = *khz;
    // PVM accepts the control MSR only once the vCPU is in 64-bit mode: set the boot state
    // (registers only; guest memory stays untouched) and then try it.
    if (setup_boot_vcpu(*vcpu, 0, true).ok()) {
      auto ctl = vcpu->get_msr(kMsrPvmControl);
      p.pvm_native = ctl.ok() && (*ctl & 1);
    }
  }
  park();
  return p;
}

void release_probe_vm() {
  std::unique_ptr<Parked> parked;
  {
    std::lock_guard<std::mutex> lock(g_parked_mu);
    parked = std::move(g_parked);
  }
  if (parked) {
    parked->vcpu.reset();  // vCPU before its VM, the VM before its memory
    parked->vm.reset();
  }
}

Result<AccelProbe> probe_accel(const Kvm& kvm) {
  static std::once_flag once;
  static Result<AccelProbe> cached = plain_error("accelerator probe did not run");
  std::call_once(once, [&] { cached = probe_uncached(kvm); });
  return cached;
}

Result<Accel> choose_accel(AccelRequest req, const AccelProbe& p) {
  switch (req) {
    case AccelRequest::kAuto:
      if (!p.pvm) return Accel::kHardware;
      return p.pvm_native ? Accel::kNative : Accel::kEmulated;
    case AccelRequest::kHardware:
      if (p.pvm) return plain_error("--accel hardware: /dev/kvm is a PVM host, not VT-x/SVM");
      return Accel::kHardware;
    case AccelRequest::kNative:
      if (!p.pvm_native)
        return plain_error("--accel native needs a PVM host with native mode (MSR 0x4b564d10)");
      return Accel::kNative;
    case AccelRequest::kEmulated:
      if (!p.pvm) return plain_error("--accel emulated needs a PVM host; use hardware");
      return Accel::kEmulated;
  }
  return plain_error("unknown accelerator request");
}

const char* accel_name(Accel a) {
  switch (a) {
    case Accel::kHardware: return "hardware";
    case Accel::kNative: return "native";
    case Accel::kEmulated: return "emulated";
  }
  return "?";
}

Result<AccelRequest> parse_accel(const std::string& s) {
  if (s == "auto") return AccelRequest::kAuto;
  if (s == "hardware") return AccelRequest::kHardware;
  if (s == "native") return AccelRequest::kNative;
  if (s == "emulated") return AccelRequest::kEmulated;
  return plain_error("--accel: want auto, native, emulated or hardware, got '" + s + "'");
}

}  // namespace vmfork::vmm
