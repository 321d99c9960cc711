// RunResult -> JSON (see result_json.h).
#include "engine/result_json.h"

namespace vmfork::engine {

const char* reason_name(ExitReason r) {
  switch (r) {
    case ExitReason::kExited: return "exited";
    case ExitReason::kTimeout: return "timeout";
    case ExitReason::kCrashed: return "crashed";
    case ExitReason::kOutputLimit: return "output-limit";
    case ExitReason::kMemoryLimit: return "memory-limit";
  }
  return "?";
}

nlohmann::json host_json(const RunResult& r) {
  return {{"wall_us", r.host.wall_us}, {"vcpu_cpu_us", r.host.vcpu_cpu_us},
          {"memory_bytes", r.host.memory_bytes}, {"vm_exits", r.host.vm_exits}};
}

nlohmann::json guest_json(const RunResult& r) {
  return {{"load_us", r.guest.load_us}, {"run_us", r.guest.run_us},
          {"memory_peak_bytes", r.guest.memory_peak_bytes}, {"syscalls", r.syscalls},
          {"unknown_syscalls", r.unknown_syscalls}};
}

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json j;
  j["exit_code"] = r.exit_code;
  j["reason"] = reason_name(r.reason);
  if (r.fault) {
    const Fault& f = *r.fault;
    j["fault"] = {{"kind", f.kind}, {"name", f.name}, {"vector", f.vector},
                  {"error_code", f.error_code}, {"rip", f.rip}, {"address", f.address},
                  {"in_kernel", f.in_kernel}, {"signal", f.signal}, {"message", f.message},
                  {"reported_by", f.vmm_observed ? "vmm" : "guest"}};
  } else {
    j["fault"] = nullptr;
  }
  j["stdout"] = r.stdout_data;
  j["stderr"] = r.stderr_data;
  j["stdout_bytes"] = r.stdout_bytes;
  j["stderr_bytes"] = r.stderr_bytes;
  j["timings_us"] = {{"create", r.timings.create_us}, {"boot", r.timings.boot_us},
                     {"load", r.timings.load_us},     {"run", r.timings.run_us},
                     {"teardown", r.timings.teardown_us}, {"total", r.timings.total_us}};
  j["host"] = host_json(r);
  j["guest_reported"] = guest_json(r);
  j["accel"] = r.accel;
  j["syscalls"] = r.syscalls;
  j["vm_exits"] = r.host.vm_exits;  // also in "host"; top-level as issue 11 asks
  nlohmann::json unknown = nlohmann::json::object();
  for (auto [nr, n] : r.unknown_by_nr) unknown[std::to_string(nr)] = n;
  j["unknown_syscalls"] = unknown;
  j["guest_memory_peak_bytes"] = r.guest_pages_peak * 4096;
  auto collected = nlohmann::json::array();
  for (const auto& f : r.collected)
    collected.push_back({{"path", f.path}, {"bytes", f.data.size()}, {"mode", f.mode}, {"missing", f.missing},
                         {"truncated", f.truncated}});
  j["collected"] = collected;
  return j;
}

}  // namespace vmfork::engine
