// Restoring a clone of a template, in phases that either complete or leave nothing behind:
//   1. validate + 2. memory, once per template per process (engine/template_image.h): the
//      manifest and state sections checked without side effects, then guest memory opened
//      as the store's mapped image (or materialized into a sealed memfd if none can be had).
//   3. per clone: that file mapped MAP_PRIVATE (copy-on-write), VM, memslot and vCPU created,
//      then VM state, vCPU state and devices restored (Machine::restore order).
// The clone starts paused: run_clone() gives it its job and runs it.
// Thread-safety: each Clone belongs to one thread; restore_clone may run on many threads at
// once against one TemplateImage.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/cold_run.h"
#include "engine/program_cache.h"
#include "engine/run_result.h"
#include "engine/snapshot_state.h"
#include "engine/template_image.h"
#include "engine/template_meta.h"
#include "snapshot/page_store.h"
#include "vmm/devices/channel.h"
#include "vmm/machine.h"

namespace vmfork::engine {

/// Microseconds spent in each per-clone restore phase.
struct RestoreTimings {
  double map_us = 0;      // MAP_PRIVATE of the template's memory file
  double vm_us = 0;       // KVM_CREATE_VM, memslot, vCPU (and irqchip)
  double state_us = 0;    // VM, vCPU and device state loaded
  double total_us = 0;    // map + vm + state
  double reset_us = 0;    // the last reset_clone, if any
};

/// A restored, paused clone.
struct Clone {
  std::shared_ptr<const TemplateImage> image;  // keeps the memory file and decoded state alive
  std::unique_ptr<vmm::Machine> machine;
  uint64_t tsc_khz = 0;  // this host's guest TSC rate, read at restore (off the job's path)
  RestoreTimings timings;
};

/// Restores one clone of `image` (phase 3 above). Errors: the failing mmap or KVM call;
/// nothing is left allocated.
Result<Clone> restore_clone(std::shared_ptr<const TemplateImage> image);

/// Restores one clone of `image`'s state over guest memory the caller supplies (its bytes must be
/// the template's, `image->mem_bytes()` long) instead of a MAP_PRIVATE view of the image's memfd:
/// how `vmfork bench` restores its peers (a raw memory file mapped MAP_PRIVATE, or read into
/// anonymous memory) with the same state restore. timings.map_us is 0. Errors: as restore_clone.
Result<Clone> restore_clone_over(std::shared_ptr<const TemplateImage> image, vmm::GuestMemory mem);

/// TemplateImage::load, then restore_clone: for one-off clones (`vmfork run --template`).
Result<Clone> restore_clone(const snapshot::PageStore& store, std::string_view name);

/// A fixed start for reproducible runs (`vmfork measure --deterministic`): the guest's CSPRNG
/// seed (BootInfo.entropy: getrandom, AT_RANDOM, /dev/urandom all come from it) and its
/// CLOCK_REALTIME at the job's start. Only the clock's origin is fixed: it still advances with
/// the TSC while the job runs.
struct FixedStart {
  uint64_t entropy[4] = {};
  uint64_t realtime_ns = 0;
};

/// The job a clone runs.
struct CloneJob {
  std::string program;                 // kernel-ready templates: the program to run (host path)
  int program_fd = -1;                 // >= 0: `program` already opened (open_program), read from
                                       // this fd instead of opening the path again; not closed
  std::vector<std::string> argv;       // kernel-ready and runtime templates (runtime: the job's
                                       // command line, e.g. {"/box/sol.py", "arg"})
  std::vector<std::string> env;        // kernel-ready: empty means default_env(); stdin-wait:
                                       // must be empty or the template's own
  vmm::InputSource* stdin_source = nullptr;  // nullptr: empty stdin
  vmm::OutputSink stdout_sink, stderr_sink;  // empty: capture into RunResult
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
  uint64_t max_output = 64ull << 20;
  JobFiles files;                      // kernel-ready and runtime templates: placed before the job
  bool seccomp = false;                // confine the calling thread before the guest runs
                                       // (vmm::confine_job_thread; it stays confined)
  bool measure_memory = true;          // fill host.memory_bytes (see RunSpec::measure_memory)
  const FixedStart* fixed_start = nullptr;  // non-null: this entropy and clock instead of fresh ones
};

/// Runs `job` in `clone` and leaves the (used) clone alive, for reset_clone or destruction.
/// timings.total_us covers this call only; create_us is the clone's restore. With `programs`
/// a kernel-ready clone maps its program from that cache (engine/program_cache.h) instead of
/// copying it in: the caller runs many jobs, and they share the program's pages.
/// Errors: as run_clone.
Result<RunResult> run_job_in(Clone& clone, const CloneJob& job, ProgramCache* programs = nullptr);

/// Puts a used clone back in its template's state in place (vmm::Machine::reset): pending I/O
/// completed, a mapped program dropped, the pages the job changed copied back to the
/// template's bytes (or, when that cannot be trusted, every private page dropped), then VM,
/// vCPU and device state restored; what the template's guest ABI takes of it (reset list,
/// MMU resync) is chosen from its metadata. Errors: the failing mmap, pagemap read, madvise or
/// KVM call; the clone must then be destroyed.
Status reset_clone(Clone& clone);

/// Runs `job` in a restored clone and consumes it. A kernel-ready clone gets the program, its
/// arguments and fresh entropy and clock; a stdin-wait clone gets its stdin (a program in `job`
/// is then an error: the template's program is already running). Errors: as run_cold.
Result<RunResult> run_clone(Clone clone, const CloneJob& job);

/// `vmfork run --template`: opens the store at `store_dir`, restores a clone of `name` and runs
/// `spec`'s program (kernel-ready templates), stdin, timeout, output limit and sinks in it; mem,
/// accel, stack and verbose come from the template. Errors: as restore_clone and run_clone.
Result<RunResult> run_in_clone(const std::filesystem::path& store_dir, std::string_view name,
                               const RunSpec& spec);

}  // namespace vmfork::engine
