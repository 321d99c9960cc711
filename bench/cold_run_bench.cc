// Benchmarks of `vmfork run` (issue: boot the guest kernel and run static programs):
//   ColdRun/busybox_echo   cold run of `busybox echo` split into create/boot/load/run/teardown
//   Nbody/sandbox_vs_host  the n-body program inside the sandbox vs the same binary on the host
//   Syscall/getppid        a guest syscall round trip, vs the host's
// Figures are reported as counters (microseconds, nanoseconds, ratios); docs/performance.md
// records a run. Needs /dev/kvm. Usage: build/bench/vmfork_bench [--accel=native|emulated]
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "engine/cold_run.h"

using namespace vmfork;

namespace {

const std::string kPrograms = VMFORK_TEST_PROGRAMS;
vmm::AccelRequest g_accel = vmm::AccelRequest::kAuto;

Result<engine::RunResult> run(const std::string& program, std::vector<std::string> argv) {
  engine::RunSpec spec;
  spec.program = program;
  spec.argv = std::move(argv);
  spec.env = engine::default_env();
  spec.accel = g_accel;
  spec.timeout = std::chrono::seconds(120);
  return engine::run_cold(spec);
}

// Wall time of running `argv` natively on the host (posix_spawn + wait), in microseconds;
// its stdout goes to `out` (read through a pipe).
double host_run_us(const std::vector<std::string>& argv, std::string* out) {
  int pipefd[2];
  if (pipe(pipefd) < 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while (rc == 0 && (n = read(pipefd[0], buf, sizeof buf)) > 0) out->append(buf, size_t(n));
  int st;
  if (rc == 0) waitpid(pid, &st, 0);
  auto t1 = std::chrono::steady_clock::now();
  close(pipefd[0]);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? std::chrono::duration<double, std::micro>(t1 - t0).count() : -1;
}

void ColdRunBusyboxEcho(benchmark::State& state) {
  engine::Timings sum;
  int n = 0;
  std::string accel;
  for (auto _ : state) {
    auto r = run("/bin/busybox", {"busybox", "echo", "hello"});
    if (!r.ok() || r->reason != engine::ExitReason::kExited) {
      state.SkipWithError(r.ok() ? "job failed" : r.error().message().c_str());
      return;
    }
    sum.create_us += r->timings.create_us;
    sum.boot_us += r->timings.boot_us;
    sum.load_us += r->timings.load_us;
    sum.run_us += r->timings.run_us;
    sum.teardown_us += r->timings.teardown_us;
    sum.total_us += r->timings.total_us;
    accel = r->accel;
    n++;
  }
  state.counters["create_us"] = sum.create_us / n;
  state.counters["boot_us"] = sum.boot_us / n;
  state.counters["load_us"] = sum.load_us / n;
  state.counters["run_us"] = sum.run_us / n;
  state.counters["teardown_us"] = sum.teardown_us / n;
  state.counters["total_us"] = sum.total_us / n;
  state.SetLabel(accel);
}
BENCHMARK(ColdRunBusyboxEcho)->Name("ColdRun/busybox_echo")->Unit(benchmark::kMillisecond)->Iterations(20);

void NbodySandboxVsHost(benchmark::State& state) {
  const std::string prog = kPrograms + "/nbody.glibc";
  const std::string steps = std::to_string(state.range(0));
  double guest_run = 0, guest_total = 0, host = 0;
  int n = 0;
  std::string accel;
  for (auto _ : state) {
    std::string host_out;
    host += host_run_us({prog, steps}, &host_out);
    auto r = run(prog, {"nbody", steps});
    if (!r.ok() || r->stdout_data != host_out) {
      state.SkipWithError(r.ok() ? "sandbox output differs from the host's" : r.error().message().c_str());
      return;
    }
    guest_run += r->timings.run_us;
    guest_total += r->timings.total_us;
    accel = r->accel;
    n++;
  }
  state.counters["host_us"] = host / n;
  state.counters["sandbox_run_us"] = guest_run / n;
  state.counters["sandbox_total_us"] = guest_total / n;
  state.counters["run_ratio"] = guest_run / host;
  state.counters["total_ratio"] = guest_total / host;
  state.SetLabel(accel);
}
BENCHMARK(NbodySandboxVsHost)->Name("Nbody/sandbox_vs_host")->Arg(20000000)->Unit(benchmark::kMillisecond)->Iterations(3);

double parse_ns(const std::string& out) {
  size_t p = out.find("ns_per_syscall=");
  return p == std::string::npos ? -1 : std::stod(out.substr(p + 15));
}

void SyscallGetppid(benchmark::State& state) {
  const std::string prog = kPrograms + "/getppid_loop.glibc";
  double guest = 0, host = 0;
  int n = 0;
  std::string accel;
  for (auto _ : state) {
    std::string host_out;
    host_run_us({prog, "1000000"}, &host_out);
    host += parse_ns(host_out);
    auto r = run(prog, {"getppid_loop", "1000000"});
    if (!r.ok()) {
      state.SkipWithError(r.error().message().c_str());
      return;
    }
    guest += parse_ns(r->stdout_data);
    accel = r->accel;
    n++;
  }
  state.counters["guest_ns"] = guest / n;
  state.counters["host_ns"] = host / n;
  state.SetLabel(accel);
}
BENCHMARK(SyscallGetppid)->Name("Syscall/getppid")->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a.rfind("--accel=", 0) == 0) {
      auto r = vmm::parse_accel(a.substr(8));
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.error().message().c_str());
        return 2;
      }
      g_accel = *r;
      for (int j = i; j + 1 < argc; j++) argv[j] = argv[j + 1];
      argc--;
      i--;
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
