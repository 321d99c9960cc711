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
  // Who decided this fault: true when the VMM saw it itself (timeout, triple fault, an exit the
  // guest should never cause); false when it is the guest's own report (a doorbell with
  // kReqFault, kReqSignal or kReqPanic), whose details the job could have written itself
  // (README.md "Which result fields you can trust").
  bool vmm_observed = false;
};

/// Phase times in microseconds (docs/performance.md says what each one covers). All are host
/// clock readings except that a cold run splits its one host-timed run of the vCPU into boot,
/// load and run by the guest's TSC stamps, clamped so the three add up to the host's figure.
struct Timings {
  double create_us = 0;    // KVM_CREATE_VM, memslot, vCPU
  double boot_us = 0;      // kernel load + page tables + guest kernel init
  double load_us = 0;      // program copy + guest ELF load and initial stack
  double run_us = 0;       // first job instruction to exit_group
  double teardown_us = 0;  // closing the VM and unmapping memory
  double total_us = 0;
};

/// Figures the host measured itself; the guest cannot change them (README.md "Which result
/// fields you can trust"). Zero when the job never ran (a clone's stdin wait timed out).
struct HostMeasured {
  double wall_us = 0;         // CLOCK_MONOTONIC around the vCPU's run of the job (vmm::StopInfo)
  double vcpu_cpu_us = 0;     // CLOCK_THREAD_CPUTIME_ID of the vCPU thread over the same run
  uint64_t memory_bytes = 0;  // guest memory the host backs privately at the job's end
                              // (vmm::GuestMemory::private_resident_pages, 4 KiB pages)
  uint64_t vm_exits = 0;      // VM exits the run took
};

/// Figures only the guest knows, bounded by the host: times in [0, host wall_us], memory in
/// [0, guest memory size]. A job can make them claim anything inside those bounds.
struct GuestReported {
  double load_us = 0;               // guest TSC: kernel ready -> first job instruction
  double run_us = 0;                // guest TSC: first job instruction -> exit_group
  uint64_t memory_peak_bytes = 0;   // the guest kernel's page count for the job, clamped
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
  uint64_t guest_pages_peak = 0;  // guest-reported, clamped to guest memory (= guest.memory_peak_bytes / 4096)
  HostMeasured host;
  GuestReported guest;
  std::string kernel_log;
  std::vector<CollectedFile> collected;  // the job's --collect paths, in request order
};

}  // namespace vmfork::engine
