// Clone restore and run (see restore.h).
#include "engine/restore.h"

#include "engine/guest_job.h"
#include "guest-kernel/abi/vmfork_abi.h"

namespace vmfork::engine {

using vmm::Clock;

Result<Clone> restore_clone(std::shared_ptr<const TemplateImage> image) {
  const auto t_start = Clock::now();
  Clone c;
  VF_ASSIGN(vmm::GuestMemory mem, vmm::GuestMemory::map_private(image->memfd(), image->mem_bytes()));
  c.timings.map_us = us_since(t_start);
  const auto t_vm = Clock::now();
  VF_ASSIGN(auto kvm, shared_kvm());
  VF_ASSIGN(c.machine, vmm::Machine::create(kvm, std::move(mem), image->meta().irqchip));
  VF_ASSIGN(auto probe, vmm::probe_accel(*kvm));
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
  VF_TRY(clone.machine->reset(clone.image->state().machine));
  clone.timings.reset_us = us_since(t_start);
  return {};
}

Result<RunResult> run_job_in(Clone& clone, const CloneJob& job) {
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

  // ---- load: the job (kernel-ready) and a fresh identity for this clone
  const auto t_load = Clock::now();
  auto* boot = mem.at<abi::BootInfo>(abi::kBootInfoGpa);
  if (kernel_ready) {
    if (job.program.empty()) return plain_error("template " + name + " has no program: give one");
    VF_ASSIGN(JobImage image, prepare_job(job.program, job.argv, job.env.empty() ? default_env() : job.env,
                                          mem.size() / 2, job.program_fd));
    VF_TRY(place_job(mem, image));
  } else if (!job.program.empty() || (!job.env.empty() && job.env != meta.env)) {
    return plain_error("template " + name + " already runs " + meta.program +
                       " with its own arguments and environment; a clone takes only stdin");
  }
  // Both kinds: this host's TSC rate, new entropy, clock and generation; the guest takes them
  // at once on resume (BootInfo.generation).
  boot->tsc_khz = clone.tsc_khz;
  VF_TRY(refresh_entropy_and_clock(boot));
  CapturedOutput captured;
  vmm::ChannelDevice channel(mem, job.stdin_source, captured.stdout_sink(job.stdout_sink),
                             captured.stderr_sink(job.stderr_sink), job.max_output);
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

  // ---- run
  const auto t_run = Clock::now();
  if (run) {
    VF_ASSIGN(stop, machine.run(channel, deadline));
  }
  result.timings.run_us = us_since(t_run);
  classify_stop(stop, channel.page(), &result);
  result.stdout_data = std::move(captured.out);
  result.stderr_data = std::move(captured.err);
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
  return run_clone(std::move(clone), job);
}

}  // namespace vmfork::engine
