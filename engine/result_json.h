// RunResult as the JSON object of `vmfork run --json` (fields listed in README.md).
// Thread-safety: pure function.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/run_result.h"

namespace vmfork::engine {

/// The result object. stdout/stderr are UTF-8 strings (invalid bytes become U+FFFD when
/// serialized with error_handler_t::replace); their exact byte counts are stdout_bytes etc.
nlohmann::json to_json(const RunResult& r);

}  // namespace vmfork::engine
