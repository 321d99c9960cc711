// The closure with its misses, for callers that tolerate a missing library (an image may carry a
// module whose optional library is not installed, as the host does). Thread-safety: pure.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace vmfork::rootfs {

/// library_closure's result: `paths` as library_closure returns them, `missing` one line per
/// library that was not found ("libfoo.so.1 needed by /x").
struct Closure {
  std::vector<std::string> paths, missing;
};

/// library_closure that reports misses instead of failing on the first one.
Result<Closure> library_closure_report(const std::vector<std::string>& elf_paths);

}  // namespace vmfork::rootfs
