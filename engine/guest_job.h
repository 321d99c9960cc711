// The pieces every path that runs a job shares (cold run, template creation, a restored clone):
// the process-wide /dev/kvm handle, reading and checking a program, placing it and its arguments
// in guest memory, filling BootInfo, and turning how a run stopped into a RunResult.
// Thread-safety: shared_kvm() is thread-safe; the rest work on one machine's memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "common/timing.h"
#include "engine/job_files.h"
#include "engine/program_cache.h"
#include "engine/run_result.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "vmm/accel.h"
#include "vmm/devices/channel.h"
#include "vmm/guest_memory.h"
#include "vmm/kvm.h"
#include "vmm/machine.h"

namespace vmfork::engine {

/// The /dev/kvm handle, opened once per process. Errors: open or KVM_GET_API_VERSION failed.
Result<std::shared_ptr<const vmm::Kvm>> shared_kvm();

/// A program ready to be placed in a guest: its ELF bytes (or, from a ProgramCache, a sealed
/// memfd of them that clones map copy-on-write) and the ArgsBlock
/// (guest-kernel/abi/vmfork_abi.h) of argv, envp and the executable's absolute path.
struct JobImage {
  std::string path;
  std::vector<uint8_t> program;                 // empty when `shared` holds the bytes
  std::shared_ptr<const SharedProgram> shared;  // non-null: the program, mapped, not copied
  std::vector<uint8_t> args;
  uint64_t program_bytes() const { return shared ? shared->bytes : program.size(); }
};

/// Opens an untrusted program path once, for reading what was checked: O_RDONLY | O_NONBLOCK
/// (a FIFO or a device opens at once instead of blocking the caller, open(2)) | O_NOCTTY |
/// O_CLOEXEC, then fstat(2) on the opened fd: it must be a regular file of at most `max_bytes`.
/// Symlinks are followed (programs are often reached through one); what counts is the file the
/// fd refers to. Errors: "open PATH: ...", "PATH: not a regular file", "PATH: N bytes is more
/// than M".
Result<Fd> open_program(const std::string& path, uint64_t max_bytes);

/// Reads the program (at most `max_bytes`), checks it is a static x86-64 ELF and builds the
/// ArgsBlock. With `program_fd` >= 0 (from open_program) the bytes come from that fd (read with
/// pread from offset 0, so the caller's fd can be read again) and `path` only names it in
/// messages; else `path` is opened with open_program. Errors: unreadable, not a regular file,
/// dynamic or not ELF, argv empty, arguments above 1 MiB. With `programs` the bytes come from
/// that cache (JobImage::shared; read and checked once per file version and process).
Result<JobImage> prepare_job(const std::string& path, const std::vector<std::string>& argv,
                             const std::vector<std::string>& env, uint64_t max_bytes, int program_fd = -1,
                             ProgramCache* programs = nullptr);

/// A job whose program is `guest_path`, a path inside the guest's root file system that the
/// guest kernel opens and executes itself (abi::kFlagExecPath; a name without '/' is looked up
/// in the job's PATH): no program bytes, only the ArgsBlock. Errors: argv empty, an empty path,
/// arguments above 1 MiB.
Result<JobImage> prepare_rootfs_job(const std::string& guest_path, const std::vector<std::string>& argv,
                                    const std::vector<std::string>& env);

/// Smallest guest: the ABI's fixed buffers end at 8 MiB (abi::kProgramGpa); the rest is room
/// for the program and its memory. Every path that makes or restores a guest enforces it.
inline constexpr uint64_t kMinGuestBytes = 32ull << 20;

/// `requested` rounded up to 2 MiB. Errors: below kMinGuestBytes.
Result<uint64_t> guest_mem_bytes(uint64_t requested);

/// The fields of BootInfo that describe the machine, not the job.
struct BootParams {
  vmm::Accel accel = vmm::Accel::kNative;
  bool verbose = false;
  uint64_t mem_bytes = 0;
  uint64_t stack_bytes = 8ull << 20;
  uint64_t tsc_khz = 0;
  uint64_t rootfs_bytes = 0;  // size of the image at abi::kRootfsGpa; 0: no root file system
};

/// Writes a fresh BootInfo at abi::kBootInfoGpa with no job (program_bytes 0, the kernel then
/// stops at kReqReady) and fresh entropy and clock. Errors: getrandom failed.
Status init_boot_info(vmm::GuestMemory& mem, const BootParams& p);

/// A new machine with the guest kernel loaded, page tables built, vCPU 0 at the kernel entry
/// and a BootInfo without a job: ready for place_job() and run.
struct BootedMachine {
  std::unique_ptr<vmm::Machine> machine;
  BootParams params;
  double create_us = 0;  // VM, memslot, vCPU
  double boot_us = 0;    // kernel load, page tables, vCPU state, BootInfo
};

/// Makes a BootedMachine of `mem_bytes` (already rounded, see guest_mem_bytes) for `accel`, with
/// `rootfs` (may be null) attached as its read-only root file system image.
/// Errors: the failing KVM call or mmap, a bad embedded kernel.
Result<BootedMachine> boot_machine(uint64_t mem_bytes, vmm::Accel accel, const vmm::AccelProbe& probe,
                                   uint64_t stack_bytes, bool verbose, bool irqchip,
                                   std::shared_ptr<const vmm::RootfsImage> rootfs = nullptr);

/// Copies `job` to abi::kProgramGpa and abi::kArgsGpa and points BootInfo at them (free_gpa just
/// past the program); a job without program bytes (prepare_rootfs_job) sets abi::kFlagExecPath.
/// A shared program is not copied but mapped there (vmm::GuestMemory::overlay: `mem` must then
/// be a clone's map_private() memory; the guest kernel maps its read-only pages in place and
/// copies the rest, fs/loader.cc, so the job's private pages are only those it writes).
/// Errors: the program leaves less than 16 MiB of guest memory free, or an exec-path job on a
/// machine without a root file system, the overlay's mmap.
Status place_job(vmm::GuestMemory& mem, const JobImage& job);

/// The job-files bundle and the decoder of collected files for one run; keep it alive (and in
/// place: the channel refers to it) until the run ends.
struct JobFilesLink {
  std::vector<uint8_t> bundle;
  CollectDecoder decoder{0};
};

/// Encodes `files` (engine/job_files.h), tells the guest its size (BootInfo.files_bytes) and
/// wires `channel` to serve the bundle and to collect into `link->decoder`, which keeps at most
/// `max_collect` bytes. Errors: a bad path (encode_job_files).
Status link_job_files(vmm::GuestMemory& mem, vmm::ChannelDevice& channel, const JobFiles& files,
                      uint64_t max_collect, JobFilesLink* link);

/// Gives BootInfo 32 new bytes of host entropy and a new (guest TSC, CLOCK_REALTIME) pair and
/// increments its generation, as every boot and every clone needs (a clone's kernel reseeds at
/// its next doorbell, guest-kernel/abi/vmfork_abi.h). Errors: getrandom failed.
Status refresh_entropy_and_clock(abi::BootInfo* boot);

/// The guest TSC frequency in kHz: KVM_GET_TSC_KHZ, else the PVM MSR the probe read.
uint64_t guest_tsc_khz(vmm::Vcpu& vcpu, const vmm::AccelProbe& probe);

/// The ArgsBlock (guest-kernel/abi/vmfork_abi.h) of argv, envp and the executable path `exe`.
/// Errors: above abi::kArgsCap.
Result<std::vector<uint8_t>> build_args(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                        const std::string& exe);

/// Fills reason, exit code and fault of `r` from how the run stopped and the channel page.
void classify_stop(const vmm::StopInfo& stop, const abi::Channel& ch, RunResult* r);

/// Copies the job's counters (bytes, syscalls, ENOSYS numbers, pages, kernel log) into `r`.
/// All but the byte counts are guest-written: the page peak is clamped to guest memory and the
/// syscall counts to one per nanosecond of r->host.vcpu_cpu_us (call measure_run first).
void collect_counters(const vmm::ChannelDevice& channel, vmm::Machine& machine, RunResult* r);

/// Fills r->host from `stop` (the VMM's own clocks) and the pagemap of `mem`, and r->guest's
/// times from the channel's TSC stamps: a pair counts only if both are at or after `tsc_floor`
/// (the TSC when this job's clock was set) and in order, and each phase and their sum are
/// clamped to the host's wall time. A failed pagemap read, or `mem` null (the caller does not
/// report it), leaves host.memory_bytes 0.
void measure_run(const vmm::StopInfo& stop, const abi::Channel& ch, uint64_t tsc_khz, uint64_t tsc_floor,
                 const vmm::GuestMemory* mem, RunResult* r);

/// Output a job produced, when the caller gave no sinks.
struct CapturedOutput {
  std::string out, err;
  /// `given` when set, else a sink appending to `out` (stdout) or `err` (stderr).
  vmm::OutputSink stdout_sink(const vmm::OutputSink& given);
  vmm::OutputSink stderr_sink(const vmm::OutputSink& given);
};

/// Default environment for a job: PATH, HOME, LANG, TERM.
std::vector<std::string> default_env();

}  // namespace vmfork::engine
