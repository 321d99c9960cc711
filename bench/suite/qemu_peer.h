// The QEMU peer: Debian's qemu-system-x86_64 -M microvm -accel kvm with the same guest memory
// size, driven over QMP: boot, save its state to a file (migrate "exec:cat > FILE"), then start
// a new QEMU with -incoming "exec:cat FILE" and time process start until the guest runs again.
// What the guest is, and how "runs again" is seen, is recorded in the peer's `what` and extra.
// Thread-safety: called from one thread; it starts and reaps its own QEMU processes.
#pragma once

#include <filesystem>

#include "bench/suite/options.h"
#include "bench/suite/stats.h"

namespace vmfork::bench {

/// Measures QEMU; a missing binary or any failure is recorded as the peer's reason. `kernel` is
/// the vmfork guest kernel ELF written to a file: booted with -kernel when it carries a PVH note
/// (XEN_ELFNOTE_PHYS32_ENTRY), else QEMU runs its own microvm firmware and the reason says so.
PeerResult run_qemu(const SuiteOptions& opt, const std::filesystem::path& kernel);

}  // namespace vmfork::bench
