// A template's metadata: what it was made from and what a restore must match. Stored as the
// manifest's metadata JSON (docs/snapshot-format.md lists the keys). Thread-safety: pure values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "vmm/accel.h"

namespace vmfork::engine {

struct TemplateMeta {
  uint32_t abi_major = 0, abi_minor = 0;  // guest ABI of the kernel inside the template
  vmm::Accel accel = vmm::Accel::kNative;  // mode the guest kernel was booted in
  std::string freeze_point;                // "kernel-ready", "stdin-wait" or "runtime"
  uint64_t mem_bytes = 0;
  bool irqchip = false;
  std::string program;                     // host path, empty for kernel-ready
  std::vector<std::string> argv, env;
  uint64_t stack_bytes = 0;
  uint64_t tsc_khz = 0;                    // guest TSC frequency at creation
  // The root file system the template was made with (ABI 1.3; all empty/0 without one): the
  // image's XXH3-128 (rootfs/store.h), its size, and the name it had then (for people).
  std::string rootfs_hash, rootfs_name;
  uint64_t rootfs_bytes = 0;
  std::string runtime;                     // "python3" for a --runtime template, else empty
};

std::string meta_to_json(const TemplateMeta& m);

/// Parses and validates. Errors: not JSON, a missing or mistyped key, an unknown accelerator
/// or freeze point, naming the key.
Result<TemplateMeta> meta_from_json(std::string_view json);

/// Checks a restore on this host can work: same guest ABI major and at least minor 2 (clones
/// reseed from BootInfo.generation), and the template's
/// accelerator available (a PVM-native template needs a PVM host with native mode).
Status check_restorable(const TemplateMeta& m, const vmm::AccelProbe& probe);

}  // namespace vmfork::engine
