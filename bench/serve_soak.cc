// Soak of `vmfork serve` (issue 10): a real `vmfork serve` child process, IDLE connections held
// open and silent, and JOBS trivial jobs from CLIENTS concurrent clients (pool/client.h). Prints
// the server's RSS (KiB, /proc/PID/status VmRSS) and open fds (/proc/PID/fd) every EVERY jobs,
// jobs/s and the latency distribution (request written -> response read). A soak, not a test:
// it asserts nothing in CI, but exits 1 when a job fails, an idle connection was dropped, serve
// does not stop cleanly, or RSS / fds grow past the bounds it prints; 2 on a setup error; 77
// (ctest's skip) without /dev/kvm unless CI=true.
// Jobs: `cat` = `busybox cat` with 16 bytes of stdin in a template frozen at its first stdin read;
// `true` = a static `true` in a kernel-ready template (the program is read and loaded per job).
// Thread-safety: one Client per client thread; samples and failures under one mutex.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pool/client.h"

using namespace vmfork;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

extern char** environ;

namespace {

struct Options {
  std::string vmfork = VMFORK_BINARY;
  std::string program = VMFORK_SOAK_TRUE;  // for --job true
  std::string job = "cat", mode = "reset", dir = "/var/tmp/vmfork-soak";
  uint64_t jobs = 100'000, every = 10'000, warmup = 1'000;
  size_t clients = 4, idle = 300, workers = 2, pool = 4, refill_threads = 0;  // 0: serve's default
  uint64_t rss_growth_mib = 64, fd_growth = 8;
  bool no_seccomp = false;
};

struct Sample {
  uint64_t jobs;
  double seconds;
  uint64_t rss_kib;
  size_t fds;
};

uint64_t rss_kib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

size_t fd_count(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec))
    n++;
  return n;
}

// Runs a command to completion (template creation). Returns its exit status or -1.
int run_command(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int st = 0;
  if (waitpid(pid, &st, 0) < 0) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, size_t(p / 100.0 * double(v.size())));
  return v[i];
}

int fail_setup(const std::string& why) {
  fprintf(stderr, "serve_soak: %s\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Soak vmfork serve: many jobs beside idle connections; RSS, fds, latency"};
  app.add_option("--vmfork", o.vmfork, "vmfork binary")->capture_default_str();
  app.add_option("--job", o.job, "cat (stdin-wait template) or true (kernel-ready template)")->capture_default_str();
  app.add_option("--program", o.program, "static program for --job true")->capture_default_str();
  app.add_option("--mode", o.mode, "fresh or reset")->capture_default_str();
  app.add_option("--dir", o.dir, "work directory (store, socket, server log); emptied first")->capture_default_str();
  app.add_option("--jobs", o.jobs, "jobs in all")->capture_default_str();
  app.add_option("--every", o.every, "sample RSS and fds every this many jobs")->capture_default_str();
  app.add_option("--warmup", o.warmup, "jobs before the baseline sample")->capture_default_str();
  app.add_option("--clients", o.clients, "concurrent clients")->capture_default_str();
  app.add_option("--idle", o.idle, "idle connections held open")->capture_default_str();
  app.add_option("--workers", o.workers, "serve --workers")->capture_default_str();
  app.add_option("--pool", o.pool, "serve --pool")->capture_default_str();
  app.add_option("--refill-threads", o.refill_threads, "serve --refill-threads (0: serve's default)")->capture_default_str();
  app.add_option("--rss-growth-mib", o.rss_growth_mib, "allowed RSS growth over the baseline (MiB)")->capture_default_str();
  app.add_option("--fd-growth", o.fd_growth, "allowed fd growth over the baseline")->capture_default_str();
  app.add_flag("--no-seccomp", o.no_seccomp, "serve --no-seccomp");
  CLI11_PARSE(app, argc, argv);
  if (o.job != "cat" && o.job != "true") return fail_setup("--job: cat or true");
  if (o.every == 0 || o.clients == 0 || o.jobs <= o.warmup) return fail_setup("need --every, --clients > 0, --jobs > --warmup");
  if (access("/dev/kvm", R_OK | W_OK) != 0) {  // as tests/kvm_test_util.h: skip (77) unless CI=true
    const char* ci = getenv("CI");
    fprintf(stderr, "serve_soak: /dev/kvm is not available\n");
    return ci && std::string(ci) == "true" ? 2 : 77;
  }

  std::error_code ec;
  fs::remove_all(o.dir, ec);
  fs::create_directories(o.dir);
  const std::string store = o.dir + "/store", sock = o.dir + "/serve.sock", log = o.dir + "/serve.log";
  std::vector<std::string> create = {o.vmfork, "template", "--store", store, "create", "soak"};
  if (o.job == "cat") create.insert(create.end(), {"--", "busybox", "cat"});
  if (run_command(create) != 0) return fail_setup("template create failed");

  // ---- the server, its stderr in serve.log
  std::vector<std::string> sargs = {o.vmfork, "serve", "--store", store, "--template", "soak", "--socket", sock,
                                    "--mode", o.mode, "--workers", std::to_string(o.workers), "--pool",
                                    std::to_string(o.pool), "--queue", "1024", "--idle-timeout", "1h"};
  if (o.no_seccomp) sargs.push_back("--no-seccomp");
  if (o.refill_threads) sargs.insert(sargs.end(), {"--refill-threads", std::to_string(o.refill_threads)});
  std::vector<char*> sargv;
  for (auto& a : sargs) sargv.push_back(const_cast<char*>(a.c_str()));
  sargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t server;
  if (posix_spawn(&server, sargv[0], &fa, nullptr, sargv.data(), environ) != 0) return fail_setup("spawn serve");
  posix_spawn_file_actions_destroy(&fa);
  auto stop_server = [&](int sig) {
    kill(server, sig);
    int st = 0;
    for (int i = 0; i < 600; i++) {  // 60 s deadline, then SIGKILL
      if (waitpid(server, &st, WNOHANG) == server) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      usleep(100'000);
    }
    kill(server, SIGKILL);
    waitpid(server, &st, 0);
    return 137;
  };
  const auto connect_deadline = Clock::now() + std::chrono::seconds(120);
  while (!pool::Client::connect(sock).ok()) {
    if (Clock::now() > connect_deadline) {
      stop_server(SIGKILL);
      return fail_setup("serve did not listen within 120 s; see " + log);
    }
    usleep(50'000);
  }

  // ---- idle connections: connected, never written to
  std::vector<pool::Client> idle;
  for (size_t i = 0; i < o.idle; i++) {
    auto c = pool::Client::connect(sock);
    if (!c.ok()) {
      stop_server(SIGKILL);
      return fail_setup("idle connection " + std::to_string(i) + ": " + c.error().message());
    }
    idle.push_back(std::move(*c));
  }
  usleep(200'000);  // let the loop accept them all
  const Sample before{0, 0, rss_kib(server), fd_count(server)};

  // ---- clients
  std::mutex mu;
  std::vector<Sample> samples;
  std::vector<double> latencies_ms;
  std::string first_failure;
  std::atomic<uint64_t> next{0}, done{0}, failed{0};
  const auto t0 = Clock::now();
  Sample baseline{};
  auto client_loop = [&] {
    std::vector<double> mine;
    auto c = pool::Client::connect(sock);
    if (!c.ok()) {
      std::lock_guard l(mu);
      failed++;
      if (first_failure.empty()) first_failure = "connect: " + c.error().message();
      return;
    }
    for (;;) {
      uint64_t n = next.fetch_add(1);
      if (n >= o.jobs || failed.load() > 100) break;
      pool::Request req;
      req.id = int64_t(n);
      req.template_name = "soak";
      if (o.job == "cat") req.stdin_data = "soak job " + std::to_string(n % 1000000) + "\n";
      else req.argv = {o.program};
      req.timeout_ms = 30'000;
      const auto a = Clock::now();
      auto r = c->run(req);
      mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
      std::string bad;
      if (!r.ok()) bad = r.error().message();
      else if (!r->ok) bad = r->error_code + ": " + r->error_message;
      else if (r->exit_code != 0 || r->reason != "exited") bad = "reason " + r->reason + ", exit " + std::to_string(r->exit_code);
      else if (o.job == "cat" && r->stdout_data != req.stdin_data) bad = "stdout differs from stdin";
      if (!bad.empty()) {
        failed++;
        std::lock_guard l(mu);
        if (first_failure.empty()) first_failure = "job " + std::to_string(n) + ": " + bad;
        if (!r.ok()) break;  // the connection is gone
      }
      uint64_t d = done.fetch_add(1) + 1;
      if (d == o.warmup || d % o.every == 0 || d == o.jobs) {
        Sample s{d, std::chrono::duration<double>(Clock::now() - t0).count(), rss_kib(server), fd_count(server)};
        std::lock_guard l(mu);
        if (d == o.warmup) baseline = s;
        samples.push_back(s);
        fprintf(stderr, "%8llu jobs %8.1f s  rss %7llu KiB  fds %4zu\n", (unsigned long long)s.jobs, s.seconds,
                (unsigned long long)s.rss_kib, s.fds);
      }
    }
    std::lock_guard l(mu);
    latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < o.clients; i++) threads.emplace_back(client_loop);
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const Sample end{done.load(), seconds, rss_kib(server), fd_count(server)};

  // Every idle connection must still be open: no EOF, no error, nothing to read.
  size_t dropped = 0;
  for (auto& c : idle) {
    pollfd p{c.fd(), POLLIN, 0};
    if (poll(&p, 1, 0) != 0) dropped++;
  }
  idle.clear();
  const int server_exit = stop_server(SIGTERM);

  // ---- report
  std::sort(latencies_ms.begin(), latencies_ms.end());
  uint64_t rss_max = 0;
  for (auto& s : samples)
    if (s.jobs >= o.warmup) rss_max = std::max(rss_max, s.rss_kib);
  rss_max = std::max(rss_max, end.rss_kib);
  const uint64_t rss_bound = baseline.rss_kib + o.rss_growth_mib * 1024;
  const size_t fd_bound = baseline.fds + o.fd_growth;
  printf("serve soak: %s jobs, mode %s, %zu clients, %zu workers, %zu idle connections, seccomp %s\n", o.job.c_str(),
         o.mode.c_str(), o.clients, o.workers, o.idle, o.no_seccomp ? "off" : "on");
  printf("jobs: %llu done, %llu failed, %.1f s, %.0f jobs/s\n", (unsigned long long)end.jobs,
         (unsigned long long)failed.load(), seconds, double(end.jobs) / seconds);
  printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", pct(latencies_ms, 50),
         pct(latencies_ms, 90), pct(latencies_ms, 99), pct(latencies_ms, 99.9),
         latencies_ms.empty() ? 0.0 : latencies_ms.back());
  printf("server RSS KiB: before jobs %llu, after %llu jobs (baseline) %llu, end %llu, max %llu; bound %llu\n",
         (unsigned long long)before.rss_kib, (unsigned long long)o.warmup, (unsigned long long)baseline.rss_kib,
         (unsigned long long)end.rss_kib, (unsigned long long)rss_max, (unsigned long long)rss_bound);
  printf("server fds: before jobs %zu, baseline %zu, end %zu; bound %zu\n", before.fds, baseline.fds, end.fds, fd_bound);
  printf("idle connections dropped: %zu; serve exit on SIGTERM: %d\n", dropped, server_exit);
  bool bad = false;
  if (failed.load()) {
    printf("FAIL: %llu jobs failed; first: %s\n", (unsigned long long)failed.load(), first_failure.c_str());
    bad = true;
  }
  if (rss_max > rss_bound) printf("FAIL: RSS grew past the bound\n"), bad = true;
  if (end.fds > fd_bound) printf("FAIL: fds grew past the bound\n"), bad = true;
  if (dropped) printf("FAIL: idle connections were dropped\n"), bad = true;
  if (server_exit != 0) printf("FAIL: serve exited %d (log: %s)\n", server_exit, log.c_str()), bad = true;
  return bad ? 1 : 0;
}
