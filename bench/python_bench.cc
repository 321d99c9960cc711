// Figures of issue 8 for docs/performance.md, measured side by side in one run:
//   host   bare `/usr/bin/python3 -c CODE` started on the host (posix_spawn + wait), no isolation
//   cold   `vmfork run --rootfs` of the same: a new VM booted per run from the rootfs image
//   warm   the same job through `vmfork serve` (in this process, over its Unix socket) in clones
//          of a warm CPython template (--runtime python3), fresh and reset modes; request
//          written -> response read, as a client sees it
// plus the template's bytes on disk, the image's size, what a second template from the same image
// adds, and the private memory of an idle and of a used warm clone. Prints a table; no limits
// are asserted. Needs /dev/kvm and Debian's python3.11. Usage: python_bench [runs]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/suite/private_memory.h"
#include "engine/cold_run.h"
#include "engine/restore.h"
#include "engine/template.h"
#include "pool/client.h"
#include "pool/server.h"
#include "pool/service.h"
#include "rootfs/store.h"

using namespace vmfork;
using vmfork::bench::private_kib;
using Clock = std::chrono::steady_clock;

namespace {

const char* kCode = "print(sum(range(10**6)))";

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Dist {
  std::vector<double> v;
  double pct(double p) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[std::min(v.size() - 1, size_t(p * double(v.size())))];
  }
};

void row(const char* what, Dist d) {
  std::printf("| %-46s | %8.2f | %8.2f | %8.2f | %5zu |\n", what, d.pct(0.0), d.pct(0.5), d.pct(0.99), d.v.size());
}

Dist host_runs(int n) {
  Dist d;
  for (int i = 0; i < n; i++) {
    const char* argv[] = {"/usr/bin/python3", "-c", kCode, nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    auto t = Clock::now();
    pid_t pid;
    if (posix_spawn(&pid, argv[0], &fa, nullptr, const_cast<char**>(argv), environ) != 0) std::exit(1);
    int st;
    waitpid(pid, &st, 0);
    d.v.push_back(ms_since(t));
    posix_spawn_file_actions_destroy(&fa);
  }
  return d;
}

Dist cold_runs(int n, const std::string& image) {
  Dist d;
  for (int i = 0; i < n; i++) {
    engine::RunSpec spec;
    spec.rootfs = image;
    spec.program = "/usr/bin/python3";
    spec.argv = {"python3", "-c", kCode};
    spec.env = engine::default_env();
    vmm::StringInput in("");
    spec.stdin_source = &in;
    auto t = Clock::now();
    auto r = engine::run_cold(spec);
    d.v.push_back(ms_since(t));
    if (!r.ok() || r->stdout_data != "499999500000\n") {
      std::fprintf(stderr, "cold run failed: %s\n", r.ok() ? r->stderr_data.c_str() : r.error().message().c_str());
      std::exit(1);
    }
  }
  return d;
}

Dist warm_runs(int n, snapshot::PageStore& store, pool::Mode mode, const std::filesystem::path& sock) {
  pool::ServiceOptions opts;
  opts.templates = {"pyt"};
  opts.pool.depth = 4;
  opts.pool.mode = mode;
  opts.workers = 1;
  auto service = pool::Service::create(store, opts);
  if (!service.ok()) std::exit((std::fprintf(stderr, "%s\n", service.error().message().c_str()), 1));
  (*service)->wait_ready(std::chrono::seconds(30));
  pool::ServerOptions so;
  so.socket_path = sock;
  auto server = pool::Server::listen(**service, so);
  if (!server.ok()) std::exit((std::fprintf(stderr, "%s\n", server.error().message().c_str()), 1));
  std::thread loop([&] { (void)(*server)->serve(); });
  auto client = pool::Client::connect(sock);
  if (!client.ok()) std::exit(1);
  std::string req = std::string(R"({"id": 1, "argv": ["-c", ")") + kCode + R"("]})";
  Dist d;
  for (int i = 0; i < n + 5; i++) {
    auto t = Clock::now();
    auto line = client->call(req);
    double ms = ms_since(t);
    auto r = line.ok() ? pool::parse_response(*line) : Result<pool::Response>(line.error());
    if (!r.ok() || !r->ok || r->stdout_data != "499999500000\n") {
      std::fprintf(stderr, "warm job failed: %s\n", line.ok() ? line->c_str() : line.error().message().c_str());
      std::exit(1);
    }
    if (i >= 5) d.v.push_back(ms);  // the first jobs warm the page cache and the pool
    // Let the pool refill off the job's path, as a server between requests would.
    if (mode == pool::Mode::kFresh) (*service)->wait_ready(std::chrono::seconds(5));
  }
  (*server)->stop();
  loop.join();
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 30;
  const char* base = std::getenv("VMFORK_BENCH_DIR");
  std::filesystem::path dir = std::filesystem::path(base ? base : "/var/tmp/vmfork-bench") / "python";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto rstore = rootfs::Store::open(dir);
  auto img = rstore.ok() ? rstore->create_from_host("py", {"/usr/bin/python3", "/usr/lib/python3.11"})
                         : Result<rootfs::ImageInfo>(rstore.error());
  if (!img.ok()) return std::fprintf(stderr, "%s\n", img.error().message().c_str()), 1;
  auto store = snapshot::PageStore::open(dir);
  if (!store.ok()) return 1;
  engine::TemplateSpec spec;
  if (!engine::use_runtime(&spec, "python3").ok()) return 1;
  engine::use_rootfs(&spec, *img);
  std::vector<engine::TemplateCreated> made;
  for (const char* name : {"pyt", "pyt2"}) {
    spec.name = name;
    auto c = engine::create_template(spec, **store);
    if (!c.ok()) return std::fprintf(stderr, "%s\n", c.error().message().c_str()), 1;
    made.push_back(*c);
  }

  std::printf("python3 -c '%s', %d runs each (ms)\n\n", kCode, runs);
  std::printf("| %-46s | %8s | %8s | %8s | %5s |\n|---|---|---|---|---|\n", "path", "min", "p50", "p99", "runs");
  row("bare python3 on the host (spawn + wait)", host_runs(runs));
  row("vmfork run --rootfs (cold VM per run)", cold_runs(std::max(5, runs / 3), img->path.string()));
  row("warm clone via serve, fresh mode", warm_runs(runs, **store, pool::Mode::kFresh, dir / "f.sock"));
  row("warm clone via serve, reset mode", warm_runs(runs, **store, pool::Mode::kReset, dir / "r.sock"));

  std::printf("\nimage: %.1f MiB (%llu files); template pyt: %.2f MiB of packs (%llu pages, %llu new); "
              "a second template from the same image adds %.2f MiB (%llu new pages)\n",
              double(img->bytes) / 1048576, (unsigned long long)img->files, double(made[0].put.pack_bytes) / 1048576,
              (unsigned long long)made[0].put.pages_total, (unsigned long long)made[0].put.pages_new,
              double(made[1].put.pack_bytes) / 1048576, (unsigned long long)made[1].put.pages_new);

  // Private memory of clones: restore 8, measure, run one job in each, measure again.
  auto image = engine::TemplateImage::load(**store, "pyt");
  if (!image.ok()) return 1;
  const int n = 8;
  double before = private_kib();
  std::vector<engine::Clone> clones;
  for (int i = 0; i < n; i++) clones.push_back(*engine::restore_clone(*image));
  double idle = private_kib();
  for (auto& c : clones) {
    engine::CloneJob job;
    job.argv = {"-c", kCode};
    vmm::StringInput in("");
    job.stdin_source = &in;
    (void)engine::run_job_in(c, job);
  }
  double used = private_kib();
  std::printf("private memory per clone: %.1f KiB idle, %.1f KiB after the job\n", (idle - before) / n,
              (used - before) / n);
  clones.clear();
  std::filesystem::remove_all(dir);
  return 0;
}
