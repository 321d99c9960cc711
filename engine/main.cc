// The vmfork command line: `vmfork run` (cold run of one static program in a fresh VM) and
// `vmfork accel` (what this host's /dev/kvm offers). Thread-safety: single-threaded main.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "engine/cold_run.h"
#include "engine/result_json.h"
#include "engine/units.h"
#include "vmm/accel.h"
#include "vmm/kvm.h"

namespace {

using namespace vmfork;

// Finds `name` on $PATH like execvp(3) when it has no slash.
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string cand = dirs.substr(start, end - start) + "/" + name;
    struct stat st;
    if (stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return cand;
    start = end + 1;
  }
  return name;
}

void write_all(int fd, std::span<const uint8_t> b) {
  while (!b.empty()) {
    ssize_t n = write(fd, b.data(), b.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // reader went away: drop the rest, the job keeps its own exit status
    b = b.subspan(size_t(n));
  }
}

int fail(const std::string& msg) {
  spdlog::error("{}", msg);
  return 125;  // like env(1)/timeout(1): vmfork itself failed
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  auto logger = spdlog::stderr_color_st("vmfork");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("vmfork: %^%l%$: %v");

  CLI::App app{"vmfork: disposable micro-VMs for untrusted static Linux programs"};
  app.require_subcommand(1);

  // ---- run
  auto* run = app.add_subcommand("run", "Boot a fresh VM and run one static x86-64 program in it");
  std::string accel = "auto", mem = "256M", timeout = "30s", max_output = "64M", stack = "8M";
  bool json = false, verbose = false, inherit_env = false;
  std::vector<std::string> envs, command;
  run->add_option("--accel", accel, "auto|native|emulated|hardware")->capture_default_str();
  run->add_option("--mem", mem, "guest memory size (e.g. 256M, 1G)")->capture_default_str();
  run->add_option("--timeout", timeout, "wall-clock limit (e.g. 10s, 500ms; 0 = none)")->capture_default_str();
  run->add_option("--max-output", max_output, "limit on stdout+stderr bytes")->capture_default_str();
  run->add_option("--stack", stack, "job stack size (RLIMIT_STACK)")->capture_default_str();
  run->add_option("--env", envs, "KEY=VALUE for the job's environment (repeatable)");
  run->add_flag("--inherit-env", inherit_env, "pass vmfork's own environment to the job");
  run->add_flag("--json", json, "print one JSON result object instead of streaming output");
  run->add_flag("--verbose", verbose, "show the guest kernel's serial log on stderr");
  run->add_option("command", command, "PROGRAM [ARGS...] (after --)")->required();

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
  spec.program = resolve_program(command[0]);
  spec.argv = command;
  if (inherit_env) {
    for (char** e = environ; *e; e++) spec.env.emplace_back(*e);
  } else {
    spec.env = engine::default_env();
  }
  for (auto& e : envs) {
    if (e.find('=') == std::string::npos) return fail("--env wants KEY=VALUE, got '" + e + "'");
    spec.env.push_back(e);
  }
  vmm::FdInput input(STDIN_FILENO);
  spec.stdin_source = &input;
  if (!json) {
    spec.stdout_sink = [](std::span<const uint8_t> b) { write_all(STDOUT_FILENO, b); };
    spec.stderr_sink = [](std::span<const uint8_t> b) { write_all(STDERR_FILENO, b); };
  }

  auto result = engine::run_cold(spec);
  if (!result.ok()) return fail(result.error().message());
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
