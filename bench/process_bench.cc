// Figures of issue 9 for docs/performance.md, guest beside host in one run: fork+execve+wait4 of
// a static `true`, pthread_create+join, futex ping-pong between two threads, pipe ping-pong
// between two processes (us per round trip), and an n-body loop alone vs beside a spinning thread
// (the preemption tick's cost: beside a spinner on one CPU the loop should take 2x its time
// alone, within 2%). The timed loops are bench/programs/process_bench_guest.c, run in a VM
// (from a root file system image holding it and `true`) and on the host pinned to one CPU.
// Prints a table; no limits are asserted. Needs /dev/kvm. Usage: process_bench [rounds] [steps]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "engine/cold_run.h"
#include "rootfs/store.h"

using namespace vmfork;

namespace {

const std::string kDir = VMFORK_BENCH_PROGRAMS;

// "name value" lines -> map; a value that is not a number ("error") becomes -1.
std::map<std::string, double> parse(const std::string& out) {
  std::map<std::string, double> m;
  std::istringstream in(out);
  std::string name, value;
  while (in >> name >> value) {
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    m[name] = (end && *end == '\0') ? v : -1;
  }
  return m;
}

std::string host_run(const std::string& args) {
  std::string out;
  FILE* p = popen((kDir + "/process_bench_guest " + kDir + "/true " + args).c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

std::string fmt(const std::map<std::string, double>& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return "missing";
  if (it->second < 0) return "error";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", it->second);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  std::string rounds = argc > 1 ? argv[1] : "200";
  std::string steps = argc > 2 ? argv[2] : "3000000";
  std::string tmp = std::filesystem::temp_directory_path() / ("vmfork_process_bench_" + std::to_string(getpid()));
  auto store = rootfs::Store::open(tmp);
  if (!store.ok()) {
    std::fprintf(stderr, "rootfs store: %s\n", store.error().message().c_str());
    return 1;
  }
  auto img = store->create_from_host("bench", {kDir + "/process_bench_guest", kDir + "/true"});
  if (!img.ok()) {
    std::fprintf(stderr, "rootfs image: %s\n", img.error().message().c_str());
    return 1;
  }
  engine::RunSpec spec;
  spec.rootfs = img->path.string();
  spec.program = kDir + "/process_bench_guest";
  spec.argv = {spec.program, kDir + "/true", rounds, steps};
  spec.env = engine::default_env();
  spec.accel = vmm::AccelRequest::kNative;
  spec.timeout = std::chrono::seconds(300);
  auto r = engine::run_cold(spec);
  std::filesystem::remove_all(tmp);
  std::string guest_out;
  if (!r.ok()) {
    std::fprintf(stderr, "guest run: %s\n", r.error().message().c_str());
  } else {
    guest_out = r->stdout_data;
    if (r->reason != engine::ExitReason::kExited || r->exit_code != 0)
      std::fprintf(stderr, "guest run ended %s (exit %d): %s\n", engine::reason_name(r->reason), r->exit_code,
                   r->stderr_data.c_str());
  }
  auto guest = parse(guest_out);
  auto host = parse(host_run(rounds + " " + steps));

  std::string head = "figure (rounds " + rounds + ", n-body steps " + steps + ")";
  std::printf("| %-44s | %12s | %12s |\n", head.c_str(), "guest", "host (1 CPU)");
  std::printf("|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(14, '-').c_str(), std::string(14, '-').c_str());
  const char* rows[][2] = {
      {"fork_exec_wait_us", "fork+execve(true)+wait4, us"},
      {"pthread_create_join_us", "pthread_create+join, us"},
      {"futex_pingpong_us", "futex ping-pong (2 threads), us/round trip"},
      {"pipe_pingpong_us", "pipe ping-pong (2 processes), us/round trip"},
      {"nbody_alone_us", "n-body alone, us"},
      {"nbody_ticks_us", "n-body alone, preemption ticks on, us"},
      {"nbody_with_spinner_us", "n-body beside a spinning thread, us"},
      {"nbody_alone_cpu_us", "n-body alone, thread CPU us"},
      {"nbody_with_spinner_cpu_us", "n-body beside spinner, thread CPU us"},
  };
  for (auto& row : rows)
    std::printf("| %-44s | %12s | %12s |\n", row[1], fmt(guest, row[0]).c_str(), fmt(host, row[0]).c_str());
  // A fair one-CPU scheduler gives each spinning thread half the CPU: anything above 2x the time
  // alone is switching and tick overhead.
  for (auto* m : {&guest, &host}) {
    double a0 = (*m)["nbody_alone_us"], t = (*m)["nbody_ticks_us"];
    std::printf("%s: n-body with ticks on / alone = %s (goal for the guest: <= 1.02)\n",
                m == &guest ? "guest" : "host", a0 > 0 && t > 0 ? std::to_string(t / a0).c_str() : "n/a");
  }
  for (auto* m : {&guest, &host}) {
    double a = (*m)["nbody_alone_us"], b = (*m)["nbody_with_spinner_us"];
    std::printf("%s: n-body beside spinner / (2 x alone) = %s\n", m == &guest ? "guest" : "host",
                a > 0 && b > 0 ? std::to_string(b / (2 * a)).c_str() : "n/a");
  }
  if (guest_out.empty() && r.ok()) std::printf("guest stderr: %s\n", r->stderr_data.c_str());
  return 0;
}
