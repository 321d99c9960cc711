// Small helpers shared by the vmfork subcommands. Thread-safety: pure functions, except that
// fail() logs through spdlog's default logger.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/job_files.h"

namespace vmfork::cli {

/// Finds `name` on $PATH like execvp(3) when it has no slash; returns `name` if not found.
std::string resolve_program(const std::string& name);

/// Writes all of `b` to `fd`, retrying on EINTR; stops quietly if the reader went away.
void write_all(int fd, std::span<const uint8_t> b);

/// The job files of `--file HOST:GUEST` (each HOST read now, at most 256 MiB in all; the mode
/// of the host file is kept), `--workdir DIR` and `--collect GUEST[:HOST]` (only the GUEST
/// part). Errors name the option and the host file.
Result<engine::JobFiles> read_job_files(const std::vector<std::string>& files, const std::string& workdir,
                                        const std::vector<std::string>& collect);

/// Writes every collected file to the HOST of its `--collect GUEST[:HOST]` (default: the
/// GUEST's file name in the current directory); warns about missing or truncated ones.
/// Returns false if one could not be written.
bool write_collected(const std::vector<engine::CollectedFile>& got, const std::vector<std::string>& collect);

/// Logs `msg` as an error and returns 125, the status env(1) and timeout(1) use for their own
/// failures.
int fail(const std::string& msg);

}  // namespace vmfork::cli
