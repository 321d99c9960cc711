// RunResult as the JSON object of `vmfork run --json` (fields listed in README.md).
// Thread-safety: pure function.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/run_result.h"

namespace vmfork::engine {

/// The result object. stdout/stderr are UTF-8 strings (invalid bytes become U+FFFD when
/// serialized with error_handler_t::replace); their exact byte counts are stdout_bytes etc.
nlohmann::json to_json(const RunResult& r);

/// The host-measured figures (trusted): {"wall_us", "vcpu_cpu_us", "memory_bytes", "vm_exits"}.
nlohmann::json host_json(const RunResult& r);
/// The guest-reported figures, bounded (run_result.h GuestReported): {"load_us", "run_us",
/// "memory_peak_bytes", "syscalls", "unknown_syscalls"}.
nlohmann::json guest_json(const RunResult& r);

}  // namespace vmfork::engine
