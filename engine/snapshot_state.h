// Encoding of a frozen machine's non-memory state into the page store's opaque state sections
// (snapshot::Section), and back. One section per stateful part, each starting with its own
// u32 format version so one part can evolve without breaking the others. Layout of every
// section: docs/snapshot-format.md, "State sections". KVM structs are stored as length-checked
// blobs of their UAPI layout (<linux/kvm.h>, x86-64): a size mismatch is rejected, not guessed.
// Thread-safety: pure functions.
#pragma once

#include <vector>

#include "common/status.h"
#include "snapshot/page_store.h"
#include "vmm/devices/channel.h"
#include "vmm/machine.h"

namespace vmfork::engine {

/// Section tags (snapshot::Section::tag). Never reuse a number.
enum SectionTag : uint32_t {
  kSectionVcpu0 = 1,    // vmm::VcpuState of vCPU 0
  kSectionVm = 2,       // vmm::VmState
  kSectionSerial = 3,   // vmm::Serial::State
  kSectionChannel = 4,  // vmm::ChannelDevice::State
};

/// Everything of a frozen template except guest memory.
struct FrozenState {
  vmm::Machine::State machine;
  vmm::ChannelDevice::State channel;
};

/// Encodes each part into its own section.
std::vector<snapshot::Section> encode_state(const FrozenState& s);

/// Decodes and validates the sections of `t`. Errors: a missing, unknown-version, truncated or
/// oversized section, naming the section and the byte offset. No KVM call is made.
Result<FrozenState> decode_state(const snapshot::Template& t);

/// Per-part encode/decode, exposed for the save -> encode -> decode -> restore tests.
std::vector<uint8_t> encode_vcpu(const vmm::VcpuState& s);
Result<vmm::VcpuState> decode_vcpu(std::span<const uint8_t> b);
std::vector<uint8_t> encode_vm(const vmm::VmState& s);
Result<vmm::VmState> decode_vm(std::span<const uint8_t> b);
std::vector<uint8_t> encode_serial(const vmm::Serial::State& s);
Result<vmm::Serial::State> decode_serial(std::span<const uint8_t> b);
std::vector<uint8_t> encode_channel(const vmm::ChannelDevice::State& s);
Result<vmm::ChannelDevice::State> decode_channel(std::span<const uint8_t> b);

}  // namespace vmfork::engine
