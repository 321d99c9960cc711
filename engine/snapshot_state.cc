// State sections (see snapshot_state.h and docs/snapshot-format.md, "State sections").
#include "engine/snapshot_state.h"

#include <string>

#include "snapshot/codec.h"

namespace vmfork::engine {

using snapshot::Reader;
using snapshot::Writer;

namespace {

constexpr uint32_t kVcpuVersion = 1;
constexpr uint32_t kVmVersion = 1;
constexpr uint32_t kSerialVersion = 1;
constexpr uint32_t kChannelVersion = 1;
constexpr uint64_t kMaxXsaveBytes = 1u << 20;  // KVM_CAP_XSAVE2 areas are a few KiB today
constexpr uint32_t kMaxMsrs = 4096;

// A KVM struct as a u64 length and its bytes; the reader insists on the exact size.
template <typename T>
void put_struct(Writer& w, const T& v) {
  w.blob({reinterpret_cast<const uint8_t*>(&v), sizeof v});
}

template <typename T>
Status get_struct(Reader& r, const char* field, T* out) {
  size_t at = r.offset();
  VF_ASSIGN(auto b, r.blob(field, sizeof(T)));
  if (b.size() != sizeof(T))
    return r.bad_value(field, at, "is " + std::to_string(b.size()) + " bytes, this build's struct is " +
                                      std::to_string(sizeof(T)));
  std::memcpy(out, b.data(), sizeof(T));
  return {};
}

template <typename T>
void put_optional(Writer& w, const std::optional<T>& v) {
  w.u8(v.has_value());
  if (v) put_struct(w, *v);
}

template <typename T>
Status get_optional(Reader& r, const char* field, std::optional<T>* out) {
  size_t at = r.offset();
  VF_ASSIGN(uint8_t present, r.u8(field));
  if (present > 1) return r.bad_value(field, at, "presence flag must be 0 or 1");
  if (!present) {
    out->reset();
    return {};
  }
  T v;
  VF_TRY(get_struct(r, field, &v));
  *out = v;
  return {};
}

Status check_version(Reader& r, const char* what, uint32_t want) {
  VF_ASSIGN(uint32_t v, r.u32("version"));
  if (v != want)
    return r.bad_value("version", 0, std::string(what) + " section version " + std::to_string(v) +
                                         " is not supported (this build reads " + std::to_string(want) + ")");
  return {};
}

}  // namespace

std::vector<uint8_t> encode_vcpu(const vmm::VcpuState& s) {
  Writer w;
  w.u32(kVcpuVersion);
  put_struct(w, s.mp_state);
  put_struct(w, s.regs);
  put_struct(w, s.sregs);
  put_struct(w, s.fpu);
  w.blob(s.xsave);
  put_optional(w, s.xcrs);
  put_struct(w, s.debugregs);
  put_optional(w, s.lapic);
  w.u32(uint32_t(s.msrs.size()));
  for (const auto& m : s.msrs) {
    w.u32(m.index);
    w.u64(m.value);
  }
  put_struct(w, s.events);
  return w.take();
}

Result<vmm::VcpuState> decode_vcpu(std::span<const uint8_t> b) {
  Reader r(b, "vCPU state section");
  VF_TRY(check_version(r, "vCPU", kVcpuVersion));
  vmm::VcpuState s;
  VF_TRY(get_struct(r, "mp_state", &s.mp_state));
  VF_TRY(get_struct(r, "regs", &s.regs));
  VF_TRY(get_struct(r, "sregs", &s.sregs));
  VF_TRY(get_struct(r, "fpu", &s.fpu));
  VF_ASSIGN(auto xsave, r.blob("xsave", kMaxXsaveBytes));
  s.xsave.assign(xsave.begin(), xsave.end());
  VF_TRY(get_optional(r, "xcrs", &s.xcrs));
  VF_TRY(get_struct(r, "debugregs", &s.debugregs));
  VF_TRY(get_optional(r, "lapic", &s.lapic));
  size_t at = r.offset();
  VF_ASSIGN(uint32_t n, r.u32("msr count"));
  if (n > kMaxMsrs) return r.bad_value("msr count", at, std::to_string(n) + " exceeds " + std::to_string(kMaxMsrs));
  s.msrs.resize(n);
  for (auto& m : s.msrs) {
    VF_ASSIGN(m.index, r.u32("msr index"));
    VF_ASSIGN(m.value, r.u64("msr value"));
  }
  VF_TRY(get_struct(r, "events", &s.events));
  VF_TRY(r.expect_end());
  return s;
}

std::vector<uint8_t> encode_vm(const vmm::VmState& s) {
  Writer w;
  w.u32(kVmVersion);
  put_optional(w, s.clock);
  w.u8(s.irqchip.has_value());
  if (s.irqchip) {
    put_struct(w, s.irqchip->pic_master);
    put_struct(w, s.irqchip->pic_slave);
    put_struct(w, s.irqchip->ioapic);
    put_struct(w, s.irqchip->pit);
  }
  return w.take();
}

Result<vmm::VmState> decode_vm(std::span<const uint8_t> b) {
  Reader r(b, "VM state section");
  VF_TRY(check_version(r, "VM", kVmVersion));
  vmm::VmState s;
  VF_TRY(get_optional(r, "clock", &s.clock));
  size_t at = r.offset();
  VF_ASSIGN(uint8_t chip, r.u8("irqchip"));
  if (chip > 1) return r.bad_value("irqchip", at, "presence flag must be 0 or 1");
  if (chip) {
    vmm::VmState::Irqchip ic;
    VF_TRY(get_struct(r, "pic_master", &ic.pic_master));
    VF_TRY(get_struct(r, "pic_slave", &ic.pic_slave));
    VF_TRY(get_struct(r, "ioapic", &ic.ioapic));
    VF_TRY(get_struct(r, "pit", &ic.pit));
    s.irqchip = ic;
  }
  VF_TRY(r.expect_end());
  return s;
}

std::vector<uint8_t> encode_serial(const vmm::Serial::State& s) {
  Writer w;
  w.u32(kSerialVersion);
  for (uint8_t v : {s.ier, s.lcr, s.mcr, s.scr, s.dll, s.dlm}) w.u8(v);
  return w.take();
}

Result<vmm::Serial::State> decode_serial(std::span<const uint8_t> b) {
  Reader r(b, "serial state section");
  VF_TRY(check_version(r, "serial", kSerialVersion));
  vmm::Serial::State s;
  for (uint8_t* f : {&s.ier, &s.lcr, &s.mcr, &s.scr, &s.dll, &s.dlm}) {
    VF_ASSIGN(*f, r.u8("register"));
  }
  VF_TRY(r.expect_end());
  return s;
}

std::vector<uint8_t> encode_channel(const vmm::ChannelDevice::State& s) {
  Writer w;
  w.u32(kChannelVersion);
  w.u64(s.stdout_bytes);
  w.u64(s.stderr_bytes);
  w.u8(s.output_limited);
  return w.take();
}

Result<vmm::ChannelDevice::State> decode_channel(std::span<const uint8_t> b) {
  Reader r(b, "channel state section");
  VF_TRY(check_version(r, "channel", kChannelVersion));
  vmm::ChannelDevice::State s;
  VF_ASSIGN(s.stdout_bytes, r.u64("stdout_bytes"));
  VF_ASSIGN(s.stderr_bytes, r.u64("stderr_bytes"));
  size_t at = r.offset();
  VF_ASSIGN(uint8_t limited, r.u8("output_limited"));
  if (limited > 1) return r.bad_value("output_limited", at, "must be 0 or 1");
  s.output_limited = limited;
  VF_TRY(r.expect_end());
  return s;
}

std::vector<snapshot::Section> encode_state(const FrozenState& s) {
  return {
      {kSectionVcpu0, encode_vcpu(s.machine.vcpu)},
      {kSectionVm, encode_vm(s.machine.vm)},
      {kSectionSerial, encode_serial(s.machine.serial)},
      {kSectionChannel, encode_channel(s.channel)},
  };
}

Result<FrozenState> decode_state(const snapshot::Template& t) {
  auto section = [&](uint32_t tag, const char* name) -> Result<std::span<const uint8_t>> {
    const snapshot::Section* s = t.section(tag);
    if (!s) return plain_error("template " + t.name() + ": no " + name + " state section (tag " +
                               std::to_string(tag) + ")");
    return std::span<const uint8_t>(s->bytes);
  };
  FrozenState f;
  VF_ASSIGN(auto vcpu, section(kSectionVcpu0, "vCPU"));
  VF_ASSIGN(f.machine.vcpu, decode_vcpu(vcpu));
  VF_ASSIGN(auto vm, section(kSectionVm, "VM"));
  VF_ASSIGN(f.machine.vm, decode_vm(vm));
  VF_ASSIGN(auto serial, section(kSectionSerial, "serial"));
  VF_ASSIGN(f.machine.serial, decode_serial(serial));
  VF_ASSIGN(auto channel, section(kSectionChannel, "channel"));
  VF_ASSIGN(f.channel, decode_channel(channel));
  return f;
}

}  // namespace vmfork::engine
