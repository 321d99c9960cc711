// Clone restore and run (see restore.h).
#include "engine/restore.h"

#include <cstring>

#include "engine/guest_job.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "vmm/seccomp.h"

namespace vmfork::engine {

using vmm::Clock;

Result<Clone> restore_clone(std::shared_ptr<const TemplateImage> image) {
  const auto t_start = Clock::now();
  VF_ASSIGN(vmm::GuestMemory mem, vmm::GuestMemory::map_private(image->memory_fd(), image->mem_bytes()));
  const double map_us = us_since(t_start);
  VF_ASSIGN(Clone c, restore_clone_over(std::move(image), std::move(mem)));
  c.timings.map_us = map_us;
  c.timings.total_us = us_since(t_start);
  return c;
}

Result<Clone> restore_clone_over(std::shared_ptr<const TemplateImage> image, vmm::GuestMemory mem) {
  if (mem.size() != image->mem_bytes()) return plain_error("restore_clone_over: guest memory is not the template's size");
  const auto t_start = Clock::now();
  Clone c;
  const auto t_vm = Clock::now();
  VF_ASSIGN(auto kvm, shared_kvm());
  VF_ASSIGN(c.machine, vmm::Machine::create(kvm, std::move(mem), image->meta().irqchip));
  if (image->rootfs()) VF_TRY(c.machine->attach_rootfs(image->rootfs()));
  VF_ASSIGN(auto probe, vmm::probe_accel(*kvm));
  vmm::release_probe_vm();  // only now: this clone's VM keeps the host's VM count above zero
  c.tsc_khz = guest_tsc_khz(c.machine->vcpu(), probe);
  c.timings.vm_us = us_since(t_vm);
  const auto t_state = Clock::now();
  VF_TRY(c.machine->restore(image->state().machine));
  c.timings.state_us = us_since(t_state);
  c.image = std::move(image);
  c.timings.total_us = us_since(t_start);
  return c;
}

Result<Clone> restore_clone(const snapshot::PageStore& store, std::string_view name) {
  VF_ASSIGN(auto image, TemplateImage::load(store, name));
  return restore_clone(std::move(image));
}

Result<RunResult> run_clone(Clone clone, const CloneJob& job) {
  const auto t_start = Clock::now();
  VF_ASSIGN(RunResult result, run_job_in(clone, job));
  const auto t_teardown = Clock::now();
  clone.machine.reset();
  result.timings.teardown_us = us_since(t_teardown);
  result.timings.total_us = clone.timings.total_us + us_since(t_start);
  return result;
}

Status reset_clone(Clone& clone) {
  const auto t_start = Clock::now();
  const TemplateMeta& meta = clone.image->meta();
  using ResetAbi = vmm::Machine::ResetAbi;
  const ResetAbi guest = meta.abi_major != 1 || meta.abi_minor < 5 ? ResetAbi::kDrop
                       : meta.abi_minor < 6                      ? ResetAbi::kList
                                                                 : ResetAbi::kListAndResync;
  VF_TRY(clone.machine->reset(clone.image->state().machine, guest));
  clone.timings.reset_us = us_since(t_start);
  return {};
}

Result<RunResult> run_job_in(Clone& clone, const CloneJob& job, ProgramCache* programs) {
  const auto t_start = Clock::now();
  const auto deadline = job.timeout.count() > 0 ? t_start + job.timeout : Clock::time_point::max();
  RunResult result;
  const TemplateMeta& meta = clone.image->meta();
  const std::string& name = clone.image->name();
  result.accel = vmm::accel_name(meta.accel);
  result.timings.create_us = clone.timings.total_us;
  vmm::Machine& machine = *clone.machine;
  auto& mem = machine.memory();
  const bool kernel_ready = meta.freeze_point == "kernel-ready";
  const bool runtime = meta.freeze_point == "runtime";

  // ---- load: the job (kernel-ready, runtime) and a fresh identity for this clone
  const auto t_load = Clock::now();
  auto* boot = mem.at<abi::BootInfo>(abi::kBootInfoGpa);
  const std::vector<std::string>& env = job.env.empty() ? default_env() : job.env;
  if (kernel_ready) {
    if (job.program.empty()) return plain_error("template " + name + " has no program: give one");
    JobImage image;
    if (clone.image->rootfs()) {
      // The program is a path in the template's root file system, as given.
      VF_ASSIGN(image, prepare_rootfs_job(job.argv.empty() ? job.program : job.argv[0], job.argv, env));
    } else {
      VF_ASSIGN(image, prepare_job(job.program, job.argv, env, mem.size() / 2, job.program_fd, programs));
    }
    VF_TRY(place_job(mem, image));
  } else if (runtime) {
    // The runtime is frozen opening /dev/vmfork/job: it reads argv, env and the working
    // directory from the args block when it resumes (the kernel re-reads it after kReqJob).
    if (job.argv.empty()) return plain_error("template " + name + " runs a " + meta.runtime + " runtime: give the job's arguments");
    VF_ASSIGN(auto args, build_args(job.argv, env, job.argv[0]));
    VF_TRY(mem.write(abi::kArgsGpa, args));
    boot->args_gpa = abi::kArgsGpa;
    boot->args_bytes = args.size();
  } else if (!job.program.empty() || (!job.env.empty() && job.env != meta.env) || !job.files.empty()) {
    return plain_error("template " + name + " already runs " + meta.program +
                       " with its own arguments, environment and files; a clone takes only stdin");
  }
  // Both kinds: this host's TSC rate, new entropy, clock and generation; the guest takes them
  // at once on resume (BootInfo.generation).
  boot->tsc_khz = clone.tsc_khz;
  VF_TRY(refresh_entropy_and_clock(boot));
  if (job.fixed_start) {
    std::memcpy(boot->entropy, job.fixed_start->entropy, sizeof boot->entropy);
    boot->clock_realtime_ns = job.fixed_start->realtime_ns;
  }
  const uint64_t tsc_floor = boot->clock_tsc;
  CapturedOutput captured;
  vmm::ChannelDevice channel(mem, job.stdin_source, captured.stdout_sink(job.stdout_sink),
                             captured.stderr_sink(job.stderr_sink), job.max_output);
  JobFilesLink files;
  if (kernel_ready || runtime) VF_TRY(link_job_files(mem, channel, job.files, job.max_output, &files));
  // The job's output accounting starts at zero; the template's own counters stay in its state.
  vmm::StopInfo stop{vmm::StopInfo::kJobEnded};
  bool run = true;
  if (!kernel_ready) {
    // The guest is frozen inside its kReqStdin doorbell: answer it before it resumes.
    VF_ASSIGN(auto action, channel.answer_stdin_wait(deadline));
    if (action == vmm::ChannelDevice::Action::kTimeout) {
      stop.kind = vmm::StopInfo::kTimeout;
      run = false;
    }
  }
  result.timings.load_us = us_since(t_load);

  // ---- run: from here on this thread needs only what vmm/seccomp.cc allows
  if (job.seccomp) VF_TRY(vmm::confine_job_thread());
  const auto t_run = Clock::now();
  if (run) {
    VF_ASSIGN(stop, machine.run(channel, deadline));
  }
  result.timings.run_us = us_since(t_run);
  classify_stop(stop, channel.page(), &result);
  if (run) measure_run(stop, channel.page(), clone.tsc_khz, tsc_floor, job.measure_memory ? &mem : nullptr, &result);
  result.stdout_data = std::move(captured.out);
  result.stderr_data = std::move(captured.err);
  result.collected = std::move(files.decoder.files());
  collect_counters(channel, machine, &result);
  result.timings.total_us = us_since(t_start);
  return result;
}

Result<RunResult> run_in_clone(const std::filesystem::path& store_dir, std::string_view name,
                               const RunSpec& spec) {
  VF_ASSIGN(auto store, snapshot::PageStore::open(store_dir));
  VF_ASSIGN(Clone clone, restore_clone(*store, name));
  CloneJob job;
  job.program = spec.program;
  job.argv = spec.argv;
  job.env = spec.env;
  job.stdin_source = spec.stdin_source;
  job.stdout_sink = spec.stdout_sink;
  job.stderr_sink = spec.stderr_sink;
  job.timeout = spec.timeout;
  job.max_output = spec.max_output;
  job.files = spec.files;
  job.seccomp = spec.seccomp;
  job.measure_memory = spec.measure_memory;
  return run_clone(std::move(clone), job);
}

}  // namespace vmfork::engine
