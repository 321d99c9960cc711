// Small helpers shared by the vmfork subcommands. Thread-safety: pure functions, except that
// fail() logs through spdlog's default logger.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace vmfork::cli {

/// Finds `name` on $PATH like execvp(3) when it has no slash; returns `name` if not found.
std::string resolve_program(const std::string& name);

/// Writes all of `b` to `fd`, retrying on EINTR; stops quietly if the reader went away.
void write_all(int fd, std::span<const uint8_t> b);

/// Logs `msg` as an error and returns 125, the status env(1) and timeout(1) use for their own
/// failures.
int fail(const std::string& msg);

}  // namespace vmfork::cli
