// Warm runtimes (see runtimes.h).
#include "engine/runtimes.h"

extern "C" const char vmfork_python3_runner_start[], vmfork_python3_runner_end[];

namespace vmfork::engine {

Result<Runtime> find_runtime(std::string_view name) {
  if (name == "python3") {
    Runtime r;
    r.program = "/usr/bin/python3";
    r.argv = {"python3", "/.vmfork/runner.py"};
    r.runner = JobFile{"/.vmfork/runner.py",
                       std::string(vmfork_python3_runner_start, vmfork_python3_runner_end), 0644};
    return r;
  }
  return plain_error("unknown runtime '" + std::string(name) + "' (known: python3)");
}

}  // namespace vmfork::engine
