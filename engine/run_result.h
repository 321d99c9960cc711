// The outcome of one job: exit code, why it ended, output, timings. Plain values, copyable.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/job_files.h"

namespace vmfork::engine {

/// Why a job ended.
enum class ExitReason { kExited, kTimeout, kCrashed, kOutputLimit, kMemoryLimit };

/// "exited", "timeout", "crashed", "output-limit", "memory-limit".
const char* reason_name(ExitReason r);

/// Details of a crash.
struct Fault {
  std::string kind;     // "exception", "signal", "triple-fault", "kernel-panic", "vm-exit"
  std::string name;     // "#PF", "#UD", "SIGABRT", ...
  uint64_t vector = 0;  // x86 exception vector (kind == exception)
  uint64_t error_code = 0;
  uint64_t rip = 0;
  uint64_t address = 0;  // faulting address (CR2) for #PF
  bool in_kernel = false;
  int signal = 0;        // the Linux signal a native run would have died of
  std::string message;
};

/// Phase times in microseconds (docs/performance.md says what each one covers).
struct Timings {
  double create_us = 0;    // KVM_CREATE_VM, memslot, vCPU
  double boot_us = 0;      // kernel load + page tables + guest kernel init
  double load_us = 0;      // program copy + guest ELF load and initial stack
  double run_us = 0;       // first job instruction to exit_group
  double teardown_us = 0;  // closing the VM and unmapping memory
  double total_us = 0;
};

struct RunResult {
  int exit_code = 0;  // program's status, or 128+signal, 124 timeout, 137 memory-limit
  ExitReason reason = ExitReason::kExited;
  std::optional<Fault> fault;
  std::string stdout_data, stderr_data;  // only when captured (--json)
  uint64_t stdout_bytes = 0, stderr_bytes = 0;
  Timings timings;
  std::string accel;
  uint64_t syscalls = 0, unknown_syscalls = 0;
  std::map<uint32_t, uint32_t> unknown_by_nr;  // syscall number -> count (ENOSYS answers)
  uint64_t guest_pages_peak = 0;
  uint64_t vm_exits = 0;  // returns from KVM_RUN during the job (vmm::StopInfo::exits)
  std::string kernel_log;
  std::vector<CollectedFile> collected;  // the job's --collect paths, in request order
};

}  // namespace vmfork::engine
