// Template metadata JSON (see template_meta.h).
#include "engine/template_meta.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "guest-kernel/abi/vmfork_abi.h"

namespace vmfork::engine {

using nlohmann::json;

std::string meta_to_json(const TemplateMeta& m) {
  json j = {
      {"abi_major", m.abi_major},     {"abi_minor", m.abi_minor},
      {"accel", vmm::accel_name(m.accel)}, {"freeze_point", m.freeze_point},
      {"mem_bytes", m.mem_bytes},     {"irqchip", m.irqchip},
      {"program", m.program},         {"argv", m.argv},
      {"env", m.env},                 {"stack_bytes", m.stack_bytes},
      {"tsc_khz", m.tsc_khz},
  };
  if (!m.rootfs_hash.empty()) {
    j["rootfs_hash"] = m.rootfs_hash;
    j["rootfs_name"] = m.rootfs_name;
    j["rootfs_bytes"] = m.rootfs_bytes;
  }
  if (!m.runtime.empty()) j["runtime"] = m.runtime;
  // Arguments are host bytes, not always UTF-8: replace invalid sequences instead of throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<TemplateMeta> meta_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return plain_error("template metadata: not a JSON object");
  TemplateMeta m;
  std::string accel;
  // Each key must exist with the right type; json's get<> would throw, so check first.
  auto need = [&](const char* key, auto* out) -> Status {
    using T = std::remove_pointer_t<decltype(out)>;
    auto it = j.find(key);
    bool ok = it != j.end();
    if (ok) {
      if constexpr (std::is_same_v<T, std::string>) ok = it->is_string();
      else if constexpr (std::is_same_v<T, bool>) ok = it->is_boolean();
      else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
        ok = it->is_array();
        for (auto& e : *it) ok = ok && e.is_string();
      } else {
        ok = it->is_number_unsigned() && it->template get<uint64_t>() <= std::numeric_limits<T>::max();
      }
    }
    if (!ok) return plain_error(std::string("template metadata: key '") + key + "' missing or of the wrong type");
    *out = it->template get<T>();
    return {};
  };
  VF_TRY(need("abi_major", &m.abi_major));
  VF_TRY(need("abi_minor", &m.abi_minor));
  VF_TRY(need("accel", &accel));
  VF_TRY(need("freeze_point", &m.freeze_point));
  VF_TRY(need("mem_bytes", &m.mem_bytes));
  VF_TRY(need("irqchip", &m.irqchip));
  VF_TRY(need("program", &m.program));
  VF_TRY(need("argv", &m.argv));
  VF_TRY(need("env", &m.env));
  VF_TRY(need("stack_bytes", &m.stack_bytes));
  VF_TRY(need("tsc_khz", &m.tsc_khz));
  // Optional (ABI 1.3 templates with a root file system).
  if (j.contains("rootfs_hash")) {
    VF_TRY(need("rootfs_hash", &m.rootfs_hash));
    VF_TRY(need("rootfs_name", &m.rootfs_name));
    VF_TRY(need("rootfs_bytes", &m.rootfs_bytes));
    if (m.rootfs_hash.size() != 32 || m.rootfs_hash.find_first_not_of("0123456789abcdef") != std::string::npos)
      return plain_error("template metadata: rootfs_hash is not 32 hex digits");
  }
  if (j.contains("runtime")) VF_TRY(need("runtime", &m.runtime));
  if (accel == "native") m.accel = vmm::Accel::kNative;
  else if (accel == "emulated") m.accel = vmm::Accel::kEmulated;
  else if (accel == "hardware") m.accel = vmm::Accel::kHardware;
  else return plain_error("template metadata: unknown accel '" + accel + "'");
  if (m.freeze_point != "kernel-ready" && m.freeze_point != "stdin-wait" && m.freeze_point != "runtime")
    return plain_error("template metadata: unknown freeze_point '" + m.freeze_point + "'");
  return m;
}

Status check_restorable(const TemplateMeta& m, const vmm::AccelProbe& probe) {
  if (m.abi_major != abi::kAbiMajor)
    return plain_error("template guest ABI " + std::to_string(m.abi_major) + "." + std::to_string(m.abi_minor) +
                       " is not supported by this vmfork (ABI " + std::to_string(abi::kAbiMajor) + ".x)");
  // Before ABI 1.2 a clone's kernel could not take new entropy and clock on resume
  // (BootInfo.generation), so clones of such a template would share random bytes.
  if (m.abi_minor < 2)
    return plain_error("template guest ABI " + std::to_string(m.abi_major) + "." + std::to_string(m.abi_minor) +
                       " predates per-clone reseeding (ABI 1.2); re-create the template");
  switch (m.accel) {
    case vmm::Accel::kNative:
      if (!probe.pvm_native) return plain_error("template was made in PVM native mode; this host has no PVM native mode");
      break;
    case vmm::Accel::kEmulated:
      if (!probe.pvm) return plain_error("template was made in PVM emulated mode; this host is not a PVM host");
      break;
    case vmm::Accel::kHardware:
      if (probe.pvm) return plain_error("template was made for hardware KVM; this host's /dev/kvm is PVM");
      break;
  }
  return {};
}

}  // namespace vmfork::engine
