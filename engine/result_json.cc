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

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json j;
  j["exit_code"] = r.exit_code;
  j["reason"] = reason_name(r.reason);
  if (r.fault) {
    const Fault& f = *r.fault;
    j["fault"] = {{"kind", f.kind}, {"name", f.name}, {"vector", f.vector},
                  {"error_code", f.error_code}, {"rip", f.rip}, {"address", f.address},
                  {"in_kernel", f.in_kernel}, {"signal", f.signal}, {"message", f.message}};
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
  j["accel"] = r.accel;
  j["syscalls"] = r.syscalls;
  j["vm_exits"] = r.vm_exits;
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
