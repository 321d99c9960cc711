// Accelerator probe: which way this host's /dev/kvm can run the guest kernel fastest.
//   hardware : KVM on VT-x/SVM; the guest runs in ordinary x86-64 mode at native speed.
//   native   : PVM host with native supervisor mode (MSR 0x4b564d11 reads "PVM" and bit 0 of
//              0x4b564d10 can be set): guest kernel and job both run at native speed.
//   emulated : PVM host without native mode: guest CPL0 code is emulated (~1000x slower), the
//              job's CPL3 code still runs natively. Facts: ../shared/docs/pvm-host.md.
// Thread-safety: probe() results are cached once per process (thread-safe).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "vmm/kvm.h"

namespace vmfork::vmm {

inline constexpr uint32_t kMsrPvmControl = 0x4b564d10;    // bit 0: native supervisor mode
inline constexpr uint32_t kMsrPvmSignature = 0x4b564d11;  // reads 0x4d5650 ("PVM")
inline constexpr uint64_t kPvmSignature = 0x4d5650;
inline constexpr uint32_t kMsrPvmTscKhz = 0x4b564d13;     // TSC frequency in kHz (read-only)

enum class Accel { kHardware, kNative, kEmulated };
enum class AccelRequest { kAuto, kHardware, kNative, kEmulated };

/// What the host offers, found by creating a scratch VM and vCPU.
struct AccelProbe {
  bool pvm = false;         // MSR 0x4b564d11 reads "PVM"
  bool pvm_native = false;  // bit 0 of 0x4b564d10 could be set
  uint64_t pvm_tsc_khz = 0; // MSR 0x4b564d13 when pvm
};

/// Probes /dev/kvm once per process and caches the answer. The scratch VM (2 MiB memslot, one
/// vCPU) stays alive until release_probe_vm(). Errors: creating the scratch VM/vCPU failed.
Result<AccelProbe> probe_accel(const Kvm& kvm);

/// Destroys the probe's scratch VM. Call it once a VM of the caller's own exists (the engine
/// does, after creating a machine), so the host's VM count never drops to zero in between:
/// KVM patches kernel text on each 0 <-> 1 transition. Idempotent; thread-safe; the probe's
/// cached answer stays.
void release_probe_vm();

/// Picks the accelerator for `req`: auto takes hardware, else native, else emulated. Errors
/// name what the host lacks ("--accel native needs a PVM host with native mode").
Result<Accel> choose_accel(AccelRequest req, const AccelProbe& probe);

/// "hardware", "native" or "emulated".
const char* accel_name(Accel a);
/// Parses "auto", "hardware", "native", "emulated".
Result<AccelRequest> parse_accel(const std::string& s);

}  // namespace vmfork::vmm
