// Cold run (see cold_run.h): create -> boot -> load -> run -> teardown, each phase timed.
#include "engine/cold_run.h"

#include "engine/guest_job.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "vmm/machine.h"
#include "vmm/seccomp.h"

namespace vmfork::engine {

namespace abi = vmfork::abi;
using vmm::Clock;

Result<RunResult> run_cold(const RunSpec& spec) {
  const auto t_start = Clock::now();
  const auto deadline = spec.timeout.count() > 0 ? t_start + spec.timeout : Clock::time_point::max();
  RunResult result;
  VF_ASSIGN(uint64_t mem_bytes, guest_mem_bytes(spec.mem_bytes));

  // Host-side checks first, so a bad program fails before any VM exists.
  std::shared_ptr<const vmm::RootfsImage> rootfs;
  JobImage job;
  if (spec.rootfs.empty()) {
    VF_ASSIGN(job, prepare_job(spec.program, spec.argv, spec.env, mem_bytes / 2));
  } else {
    VF_ASSIGN(job, prepare_rootfs_job(spec.program, spec.argv, spec.env));
    VF_ASSIGN(rootfs, vmm::RootfsImage::open(spec.rootfs));
  }

  // ---- create and boot (host part): VM, kernel, page tables, vCPU state, BootInfo
  VF_ASSIGN(auto kvm, shared_kvm());
  VF_ASSIGN(auto probe, vmm::probe_accel(*kvm));
  VF_ASSIGN(vmm::Accel accel, vmm::choose_accel(spec.accel, probe));
  result.accel = vmm::accel_name(accel);
  VF_ASSIGN(BootedMachine booted, boot_machine(mem_bytes, accel, probe, spec.stack_bytes, spec.verbose, false,
                                                              std::move(rootfs)));
  auto& machine = booted.machine;
  result.timings.create_us = booted.create_us;
  double boot_host_us = booted.boot_us;

  // ---- load (host part): program image and arguments
  const auto t_load = Clock::now();
  auto& mem = machine->memory();
  VF_TRY(place_job(mem, job));
  if (spec.max_procs == 0) return plain_error("max_procs must be at least 1");
  mem.at<abi::BootInfo>(abi::kBootInfoGpa)->max_procs = spec.max_procs;
  const auto* boot = mem.at<abi::BootInfo>(abi::kBootInfoGpa);
  CapturedOutput captured;
  vmm::ChannelDevice channel(mem, spec.stdin_source, captured.stdout_sink(spec.stdout_sink),
                             captured.stderr_sink(spec.stderr_sink), spec.max_output);
  VF_TRY(channel.start());
  JobFilesLink files;
  VF_TRY(link_job_files(mem, channel, spec.files, spec.max_output, &files));
  double load_host_us = us_since(t_load);

  // ---- run: from here on this thread needs only what vmm/seccomp.cc allows
  if (spec.seccomp) VF_TRY(vmm::confine_job_thread());
  const auto t_run = Clock::now();
  VF_ASSIGN(vmm::StopInfo stop, machine->run(channel, deadline));
  double wall_us = us_since(t_run);
  const abi::Channel& ch = channel.page();
  classify_stop(stop, ch, &result);

  // The host timed the whole guest run (kernel boot, ELF load, job); the guest's TSC stamps,
  // bounded by that figure (measure_run), split it into boot, load and run.
  measure_run(stop, ch, boot->tsc_khz, boot->clock_tsc, spec.measure_memory ? &mem : nullptr, &result);
  result.timings.run_us = result.guest.run_us;
  result.timings.load_us = load_host_us + result.guest.load_us;
  double rest = wall_us - result.guest.load_us - result.guest.run_us;
  result.timings.boot_us = boot_host_us + (rest > 0 ? rest : 0);

  result.stdout_data = std::move(captured.out);
  result.stderr_data = std::move(captured.err);
  result.collected = std::move(files.decoder.files());
  collect_counters(channel, *machine, &result);

  // ---- teardown
  const auto t_teardown = Clock::now();
  machine.reset();
  result.timings.teardown_us = us_since(t_teardown);
  result.timings.total_us = us_since(t_start);
  return result;
}

}  // namespace vmfork::engine
