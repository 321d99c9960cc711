// Template creation (see template.h): boot -> run to the freeze point -> save -> store.
#include "engine/template.h"

#include "engine/guest_job.h"
#include "engine/runtimes.h"
#include "engine/template_meta.h"
#include "guest-kernel/abi/vmfork_abi.h"

namespace vmfork::engine {

using vmm::Clock;

namespace {


// Stdin with no bytes yet and no end: the program's first read finds nothing and waits, which
// is the stdin-wait freeze point.
class NoInputYet : public vmm::InputSource {
 public:
  Result<Chunk> read(uint8_t*, size_t, Clock::time_point, bool) override { return Chunk{}; }
};

}  // namespace

const char* freeze_point_name(FreezePoint p) {
  switch (p) {
    case FreezePoint::kKernelReady: return "kernel-ready";
    case FreezePoint::kStdinWait: return "stdin-wait";
    case FreezePoint::kRuntime: return "runtime";
  }
  return "?";
}

Status use_runtime(TemplateSpec* spec, std::string_view name) {
  VF_ASSIGN(Runtime rt, find_runtime(name));
  spec->program = rt.program;
  spec->argv = rt.argv;
  spec->env = default_env();
  spec->files.files.push_back(rt.runner);
  spec->runtime = std::string(name);
  spec->wait_for_job = true;
  return {};
}

void use_rootfs(TemplateSpec* spec, const rootfs::ImageInfo& img) {
  spec->rootfs_path = img.path.string();
  spec->rootfs_hash = img.hash;
  spec->rootfs_name = img.name;
  spec->rootfs_bytes = img.bytes;
}

Result<Frozen> freeze_template(const TemplateSpec& spec) {
  const auto t_start = Clock::now();
  const auto deadline = spec.timeout.count() > 0 ? t_start + spec.timeout : Clock::time_point::max();
  VF_ASSIGN(uint64_t mem_bytes, guest_mem_bytes(spec.mem_bytes));
  Frozen f;
  f.point = spec.program.empty() ? FreezePoint::kKernelReady
            : spec.wait_for_job   ? FreezePoint::kRuntime
                                  : FreezePoint::kStdinWait;
  if (spec.wait_for_job && (spec.program.empty() || spec.rootfs_path.empty()))
    return plain_error("a runtime template needs a root file system and a program");
  JobImage job;
  std::shared_ptr<const vmm::RootfsImage> rootfs;
  if (!spec.rootfs_path.empty()) {
    VF_ASSIGN(rootfs, vmm::RootfsImage::open(spec.rootfs_path, spec.rootfs_bytes));
    if (!spec.program.empty()) {
      VF_ASSIGN(job, prepare_rootfs_job(spec.program, spec.argv, spec.env));
    }
  } else if (!spec.program.empty()) {
    VF_ASSIGN(job, prepare_job(spec.program, spec.argv, spec.env, mem_bytes / 2));
  }

  VF_ASSIGN(auto kvm, shared_kvm());
  VF_ASSIGN(auto probe, vmm::probe_accel(*kvm));
  VF_ASSIGN(f.accel, vmm::choose_accel(spec.accel, probe));
  VF_ASSIGN(BootedMachine booted, boot_machine(mem_bytes, f.accel, probe, spec.stack_bytes, spec.verbose, spec.irqchip,
                                               rootfs));
  f.machine = std::move(booted.machine);
  const BootParams& params = booted.params;
  auto& m = f.machine->memory();
  if (!spec.program.empty()) VF_TRY(place_job(m, job));

  NoInputYet no_input;
  auto capture = [&](std::span<const uint8_t> b) { f.output.append(reinterpret_cast<const char*>(b.data()), b.size()); };
  vmm::ChannelDevice channel(m, &no_input, capture, capture, spec.max_output);
  VF_TRY(channel.start());
  channel.freeze_at_stdin_wait(f.point == FreezePoint::kStdinWait);
  channel.freeze_at_job(f.point == FreezePoint::kRuntime);
  JobFilesLink files;
  VF_TRY(link_job_files(m, channel, spec.files, 0, &files));
  VF_ASSIGN(vmm::StopInfo stop, f.machine->run(channel, deadline));
  const uint32_t want = f.point == FreezePoint::kKernelReady ? abi::kReqReady
                        : f.point == FreezePoint::kRuntime   ? abi::kReqJob
                                                             : abi::kReqStdin;
  if (stop.kind != vmm::StopInfo::kFreezePoint || stop.request != want) {
    RunResult r;
    classify_stop(stop, channel.page(), &r);
    std::string why = reason_name(r.reason);
    if (r.reason == ExitReason::kExited) why += " with status " + std::to_string(r.exit_code);
    if (r.fault) why += " (" + r.fault->name + " " + r.fault->message + ")";
    if (stop.kind == vmm::StopInfo::kFreezePoint) why = "stopped at the wrong freeze point";
    std::string what = spec.program.empty() ? "the guest kernel" : spec.program;
    return plain_error(what + " " + why + " before reaching the " + freeze_point_name(f.point) +
                       " freeze point" + (f.output.empty() ? "" : "; its output:\n" + f.output.substr(0, 4096)));
  }
  f.boot_us = us_since(t_start);

  const auto t_save = Clock::now();
  VF_ASSIGN(f.state.machine, f.machine->save());
  f.state.channel = channel.save();
  f.save_us = us_since(t_save);

  TemplateMeta meta;
  meta.abi_major = abi::kAbiMajor;
  meta.abi_minor = abi::kAbiMinor;
  meta.accel = f.accel;
  meta.freeze_point = freeze_point_name(f.point);
  meta.mem_bytes = mem_bytes;
  meta.irqchip = spec.irqchip;
  meta.program = spec.program;
  meta.argv = spec.argv;
  meta.env = spec.env;
  meta.stack_bytes = spec.stack_bytes;
  meta.tsc_khz = params.tsc_khz;
  meta.rootfs_hash = spec.rootfs_hash;
  meta.rootfs_name = spec.rootfs_name;
  meta.rootfs_bytes = spec.rootfs_bytes;
  meta.runtime = spec.runtime;
  f.metadata_json = meta_to_json(meta);
  return f;
}

Result<TemplateCreated> create_template(const TemplateSpec& spec, snapshot::PageStore& store,
                                        const snapshot::Progress& progress) {
  const auto t_start = Clock::now();
  if (progress) progress("boot to freeze point", 0, 1);
  VF_ASSIGN(Frozen f, freeze_template(spec));
  if (progress) progress("boot to freeze point", 1, 1);
  TemplateCreated c;
  c.point = f.point;
  c.accel = vmm::accel_name(f.accel);
  c.boot_us = f.boot_us;
  c.save_us = f.save_us;
  c.output = std::move(f.output);

  const auto t_store = Clock::now();
  snapshot::TemplateInput in;
  in.name = spec.name;
  in.created_unix_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::system_clock::now().time_since_epoch()).count());
  in.metadata_json = f.metadata_json;
  in.sections = encode_state(f.state);
  auto& m = f.machine->memory();
  in.memory = std::span<const uint8_t>(m.host(), m.size());
  VF_ASSIGN(c.put, store.put(in, progress));
  c.store_us = us_since(t_store);
  const auto t_image = Clock::now();
  auto stored = store.load(spec.name);
  if (stored.ok()) {
    auto image = store.open_image(*stored);
    if (!image.ok()) c.image_error = image.error().message();
  } else {
    c.image_error = stored.error().message();
  }
  c.image_us = us_since(t_image);
  c.total_us = us_since(t_start);
  return c;
}

}  // namespace vmfork::engine
