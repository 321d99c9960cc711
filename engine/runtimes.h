// Warm runtimes vmfork ships (`vmfork template create --runtime NAME`): for each, the program in
// the root file system, its arguments and the runner file placed in the guest; the runner's
// source lives in runtimes/NAME/ and is embedded in the binary. Thread-safety: constant data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/job_files.h"

namespace vmfork::engine {

struct Runtime {
  std::string program;            // path in the root file system
  std::vector<std::string> argv;  // the runner's command line
  JobFile runner;                 // the runner, placed before the program starts
};

/// The runtime called `name` ("python3"). Errors: an unknown name (the message lists the known).
Result<Runtime> find_runtime(std::string_view name);

}  // namespace vmfork::engine
