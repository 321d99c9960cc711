// Parsing of command-line sizes ("256M", "1G", "4096") and durations ("10s", "500ms", "2m").
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace vmfork::engine {

/// Bytes from a number with an optional K/M/G/T suffix (powers of 1024, optional trailing "B"
/// or "iB"). Errors: not a number, unknown suffix, overflow.
Result<uint64_t> parse_size(const std::string& s);

/// Duration from a number with suffix ns/us/ms/s/m/h (a bare number means seconds; decimals
/// allowed: "1.5s"). Errors: not a number, unknown suffix, negative.
Result<std::chrono::nanoseconds> parse_duration(const std::string& s);

}  // namespace vmfork::engine
