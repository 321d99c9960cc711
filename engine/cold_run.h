// A cold run: boot a fresh VM with the vmfork guest kernel, run one static program in it, and
// tear it down. The path of `vmfork run` (docs/architecture.md). Thread-safety: each call uses
// its own VM; calls may run concurrently on different threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/guest_job.h"  // default_env()
#include "engine/run_result.h"
#include "vmm/accel.h"
#include "vmm/devices/channel.h"

namespace vmfork::engine {

struct RunSpec {
  std::string program;                 // host path of a static x86-64 ELF; with `rootfs`, a path
                                       // in the image (absolute), run by the guest kernel
  std::string rootfs;                  // host path of an EROFS image (docs/rootfs.md); empty: none
  std::vector<std::string> argv;       // argv[0] included
  std::vector<std::string> env;        // "KEY=VALUE"
  uint64_t mem_bytes = 256ull << 20;   // guest memory (rounded up to 2 MiB)
  vmm::AccelRequest accel = vmm::AccelRequest::kAuto;
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
  uint64_t max_output = 64ull << 20;   // stdout + stderr bytes
  uint64_t stack_bytes = 8ull << 20;   // job stack (RLIMIT_STACK)
  uint32_t max_procs = 256;            // live processes; fork/clone beyond gets EAGAIN (RLIMIT_NPROC)
  bool verbose = false;                // guest kernel logs on the serial console
  vmm::InputSource* stdin_source = nullptr;  // nullptr: empty stdin
  vmm::OutputSink stdout_sink, stderr_sink;  // empty: capture into RunResult
  JobFiles files;                      // placed before the job starts; collect paths come back
  bool seccomp = false;                // confine the calling thread once the VM is set up, before
                                       // the guest runs (vmm::confine_job_thread; it stays confined)
  bool measure_memory = true;          // fill host.memory_bytes: a read of /proc/self/pagemap
                                       // over all guest memory (512 KiB per 256 MiB, ~0.2 ms);
                                       // off when the caller does not report it
};

/// Runs `spec` in a fresh VM. A failure of the job (crash, timeout, limits) is a RunResult with
/// that reason; an Error means vmfork itself could not run it (no /dev/kvm, unreadable or
/// dynamically linked program, bad option), and names the failing step.
Result<RunResult> run_cold(const RunSpec& spec);

}  // namespace vmfork::engine
