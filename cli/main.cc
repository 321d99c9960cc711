// The vmfork command line: `vmfork run` (one static program in a fresh VM, cold or in a clone of
// a template), `vmfork template ...` (cli/template.h), `vmfork rootfs ...` (cli/rootfs.h),
// `vmfork serve` and `vmfork submit` (cli/serve.h), `vmfork worker` (cli/worker.h), `vmfork
// measure` (cli/measure.h), `vmfork bench` (cli/bench.h) and `vmfork accel` (what this host's
// /dev/kvm offers). Thread-safety: single-threaded main.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <thread>

#include "cli/bench.h"
#include "cli/measure.h"
#include "cli/rootfs.h"
#include "cli/serve.h"
#include "cli/store.h"
#include "cli/template.h"
#include "cli/util.h"
#include "cli/worker.h"
#include "rootfs/elf_deps.h"
#include "rootfs/store.h"
#include "engine/cold_run.h"
#include "engine/restore.h"
#include "engine/result_json.h"
#include "engine/units.h"
#include "vmm/accel.h"
#include "vmm/kvm.h"

namespace {

using namespace vmfork;
using cli::fail;
using cli::resolve_program;
using cli::write_all;

}  // namespace

static int vmfork_main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  auto logger = spdlog::stderr_color_st("vmfork");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("vmfork: %^%l%$: %v");

  CLI::App app{"vmfork: disposable micro-VMs for untrusted static Linux programs"};
  app.require_subcommand(1);

  // ---- run
  auto* run = app.add_subcommand("run", "Boot a fresh VM and run one static x86-64 program in it");
  std::string accel = "auto", mem = "256M", timeout = "30s", max_output = "64M", stack = "8M";
  bool json = false, verbose = false, inherit_env = false, no_seccomp = false;
  std::vector<std::string> envs, command;
  run->add_option("--accel", accel, "auto|native|emulated|hardware")->capture_default_str();
  run->add_option("--mem", mem, "guest memory size (e.g. 256M, 1G)")->capture_default_str();
  run->add_option("--timeout", timeout, "wall-clock limit (e.g. 10s, 500ms; 0 = none)")->capture_default_str();
  run->add_option("--max-output", max_output, "limit on stdout+stderr bytes")->capture_default_str();
  run->add_option("--stack", stack, "job stack size (RLIMIT_STACK)")->capture_default_str();
  uint32_t max_procs = 256;
  run->add_option("--max-procs", max_procs, "live processes in the job; fork beyond fails with EAGAIN")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  run->add_option("--env", envs, "KEY=VALUE for the job's environment (repeatable)");
  run->add_flag("--inherit-env", inherit_env, "pass vmfork's own environment to the job");
  run->add_flag("--json", json, "print one JSON result object instead of streaming output");
  run->add_flag("--verbose", verbose, "show the guest kernel's serial log on stderr");
  run->add_flag("--no-seccomp", no_seccomp,
                "run the guest without the job-thread seccomp filter (for debugging; see README)");
  std::string template_name, store;
  run->add_option("--template", template_name, "run in a clone of this template instead of a cold VM");
  run->add_option("--store", store, "template store directory (with --template)");
  std::vector<std::string> job_files, collect;
  std::string workdir;
  run->add_option("--file", job_files, "HOST:GUEST: put a host file in the job's file system first (repeatable)")->allow_extra_args(false);
  run->add_option("--workdir", workdir, "the job's working directory (made if missing; default /)");
  run->add_option("--collect", collect,
                  "GUEST[:HOST]: bring back a file the job wrote (default HOST: its name here; repeatable)")
      ->allow_extra_args(false);
  std::string rootfs_image, rootfs_name;
  run->add_option("--rootfs", rootfs_name,
                  "root file system NAME from `vmfork rootfs create`; PROGRAM is then a path in it");
  run->add_option("--rootfs-image", rootfs_image,
                  "root file system from an EROFS image file (mkfs.erofs, uncompressed)");
  run->add_option("command", command,
                  "PROGRAM [ARGS...] (after --); with a --template frozen at stdin-wait, none");

  // ---- template
  cli::TemplateCli template_cli;
  cli::add_template_cli(app, &template_cli);

  // ---- rootfs
  cli::RootfsCli rootfs_cli;
  cli::add_rootfs_cli(app, &rootfs_cli);

  // ---- store
  cli::StoreCli store_cli;
  cli::add_store_cli(app, &store_cli);

  // ---- serve, submit
  cli::ServeCli serve_cli;
  cli::add_serve_cli(app, &serve_cli);
  cli::SubmitCli submit_cli;
  cli::add_submit_cli(app, &submit_cli);
  cli::WorkerCli worker_cli;
  cli::add_worker_cli(app, &worker_cli);
  cli::BenchCli bench_cli;
  cli::add_bench_cli(app, &bench_cli);

  // ---- measure
  cli::MeasureCli measure_cli;
  cli::add_measure_cli(app, &measure_cli);

  // ---- accel
  auto* accel_cmd = app.add_subcommand("accel", "Report which accelerators /dev/kvm offers");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (*accel_cmd) {
    auto kvm = vmm::Kvm::open();
    if (!kvm.ok()) return fail(kvm.error().message());
    auto probe = vmm::probe_accel(**kvm);
    if (!probe.ok()) return fail(probe.error().message());
    auto chosen = vmm::choose_accel(vmm::AccelRequest::kAuto, *probe);
    std::printf("pvm: %s\npvm native mode: %s\nauto picks: %s\n", probe->pvm ? "yes" : "no",
                probe->pvm_native ? "yes" : "no", chosen.ok() ? vmm::accel_name(*chosen) : "none");
    return 0;
  }

  if (*template_cli.cmd) return cli::run_template_cli(template_cli);
  if (*rootfs_cli.cmd) return cli::run_rootfs_cli(rootfs_cli);
  if (*store_cli.cmd) return cli::run_store_cli(store_cli);
  if (*serve_cli.cmd) return cli::run_serve_cli(serve_cli);
  if (*submit_cli.cmd) return cli::run_submit_cli(submit_cli);
  if (*worker_cli.cmd) return cli::run_worker_cli(worker_cli);
  if (*measure_cli.cmd) return cli::run_measure_cli(measure_cli);
  if (*bench_cli.cmd) return cli::run_bench_cli(bench_cli);
  if (command.empty() && template_name.empty()) return fail("run: give PROGRAM [ARGS...] after --");
  if (!template_name.empty())
    for (const char* opt : {"--mem", "--accel", "--stack", "--max-procs"})
      if (run->count(opt)) return fail(std::string(opt) + " comes from the template; it cannot be set with --template");

  engine::RunSpec spec;
  auto req = vmm::parse_accel(accel);
  if (!req.ok()) return fail(req.error().message());
  spec.accel = *req;
  std::string bad;
  auto size_option = [&](const char* flag, const std::string& text, uint64_t* out) {
    auto r = engine::parse_size(text);
    if (!r.ok()) bad = std::string(flag) + ": " + r.error().message();
    else *out = *r;
    return r.ok();
  };
  if (!size_option("--mem", mem, &spec.mem_bytes) ||
      !size_option("--max-output", max_output, &spec.max_output) ||
      !size_option("--stack", stack, &spec.stack_bytes))
    return fail(bad);
  auto t = engine::parse_duration(timeout);
  if (!t.ok()) return fail("--timeout: " + t.error().message());
  spec.timeout = *t;
  spec.verbose = verbose;
  spec.seccomp = !no_seccomp;
  spec.measure_memory = json;  // host.memory_bytes is only printed with --json
  spec.max_procs = max_procs;
  if (!rootfs_name.empty() && !rootfs_image.empty()) return fail("give --rootfs or --rootfs-image, not both");
  if (!rootfs_name.empty()) {
    auto rstore = rootfs::Store::open(cli::store_dir(store));
    if (!rstore.ok()) return fail(rstore.error().message());
    auto img = rstore->find(rootfs_name);
    if (!img.ok()) return fail(img.error().message());
    rootfs_image = img->path.string();
  } else if (!command.empty() && template_name.empty() && rootfs_image.empty()) {
    // A dynamically linked host program gets an image of itself and its library closure
    // (built once, cached in the store); a static one runs as it is.
    std::string host_program = resolve_program(command[0]);
    auto dynamic = rootfs::is_dynamic_elf(host_program);
    if (dynamic.ok() && *dynamic) {
      auto rstore = rootfs::Store::open(cli::store_dir(store));
      if (!rstore.ok()) return fail(rstore.error().message());
      auto img = rstore->ensure_program_image(host_program);
      if (!img.ok()) return fail(img.error().message());
      rootfs_image = img->path.string();
      char* real = realpath(host_program.c_str(), nullptr);
      command[0] = real ? real : host_program;
      free(real);
    }
  }
  spec.rootfs = rootfs_image;
  if (!command.empty()) spec.program = rootfs_image.empty() ? resolve_program(command[0]) : command[0];
  spec.argv = command;
  if (inherit_env) {
    for (char** e = environ; *e; e++) spec.env.emplace_back(*e);
  } else {
    spec.env = engine::default_env();
  }
  // A clone of a stdin-wait template keeps the template's environment: only pass one on request.
  if (!template_name.empty() && !inherit_env && envs.empty()) spec.env.clear();
  for (auto& e : envs) {
    if (e.find('=') == std::string::npos) return fail("--env wants KEY=VALUE, got '" + e + "'");
    spec.env.push_back(e);
  }
  auto jf = cli::read_job_files(job_files, workdir, collect);
  if (!jf.ok()) return fail(jf.error().message());
  spec.files = std::move(*jf);
  vmm::FdInput input(STDIN_FILENO);
  spec.stdin_source = &input;
  if (!json) {
    spec.stdout_sink = [](std::span<const uint8_t> b) { write_all(STDOUT_FILENO, b); };
    spec.stderr_sink = [](std::span<const uint8_t> b) { write_all(STDERR_FILENO, b); };
  }

  // The job runs on a thread of its own, which confines itself with the seccomp filter once
  // its VM is set up (spec.seccomp) and ends with the job; this thread stays free to write
  // --collect files and to let sanitizers' exit-time checks (LSan) run.
  std::optional<Result<engine::RunResult>> ran;
  std::thread job_thread([&] {
    ran.emplace(template_name.empty() ? engine::run_cold(spec)
                                      : engine::run_in_clone(cli::store_dir(store), template_name, spec));
  });
  job_thread.join();
  auto& result = *ran;
  if (!result.ok()) return fail(result.error().message());
  if (!cli::write_collected(result->collected, collect) && result->exit_code == 0) return 125;
  if (verbose) {
    std::fprintf(stderr, "%s", result->kernel_log.c_str());
    spdlog::info("accelerator: {}", result->accel);
  }
  if (json) {
    std::cout << engine::to_json(*result).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (result->reason != engine::ExitReason::kExited) {
    std::string what = engine::reason_name(result->reason);
    if (result->fault) what += ": " + result->fault->name + " " + result->fault->message;
    spdlog::warn("job ended: {}", what);
  }
  return result->exit_code;
}

int main(int argc, char** argv) {
  // Errors are values throughout; this only stops a library exception (a JSON or CLI11 corner)
  // from ending the process without a message.
  try {
    return vmfork_main(argc, argv);
  } catch (const std::exception& e) {
    return vmfork::cli::fail(std::string("internal error: ") + e.what());
  }
}
