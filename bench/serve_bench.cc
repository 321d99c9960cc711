// End-to-end figures of `vmfork serve` (pool/service.h + pool/server.h) in this process, over
// its Unix socket, on real clones:
//   ServeLatency/<job>/<mode>          one client, jobs one after another: request written ->
//                                      response read, p50/p99/mean over kLatencyJobs jobs.
//   ServeThroughput/<job>/<mode>/<W>/<R>
//                                      W workers kept busy by kClients concurrent clients, R
//                                      refill threads per pool (0 = the default, the online
//                                      CPUs, at least 2): sustained jobs/s over kThroughputJobs
//                                      jobs, the latency each client saw, acquire_waits per
//                                      1,000 jobs and the 1-minute load average at the end.
//   ServeNoJob                         a request answered without a VM (unknown template): the
//                                      socket, threads and JSON alone.
// <job>: 0 = `busybox echo hi` in a kernel-ready template (the program is read and loaded per
// job); 1 = `busybox cat` with 64 bytes of stdin in a template frozen at its first stdin read.
// <mode>: 0 = fresh (a new clone per job), 1 = reset (clones reset in place and reused).
// Figures are counters, never pass/fail limits. Needs /dev/kvm. The store lives in
// $VMFORK_BENCH_DIR/serve (default /var/tmp/vmfork-bench/serve) and is removed afterwards.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/guest_job.h"
#include "engine/template.h"
#include "pool/client.h"
#include "pool/server.h"
#include "pool/service.h"

using namespace vmfork;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kLatencyJobs = 1000;
constexpr int kThroughputJobs = 3000;
constexpr int kClients = 8;

std::filesystem::path bench_dir() {
  const char* d = getenv("VMFORK_BENCH_DIR");
  return std::filesystem::path(d && *d ? d : "/var/tmp/vmfork-bench") / "serve";
}

// The store with both templates, made on first use.
snapshot::PageStore* store(std::string* error) {
  static std::unique_ptr<snapshot::PageStore> s;
  static std::string err;
  static bool made = false;
  if (!made) {
    made = true;
    std::filesystem::remove_all(bench_dir());
    auto opened = snapshot::PageStore::open(bench_dir());
    if (!opened.ok()) {
      err = opened.error().message();
    } else {
      s = std::move(opened).value();
      engine::TemplateSpec base;
      base.name = "base";
      base.mem_bytes = 64ull << 20;
      engine::TemplateSpec cat = base;
      cat.name = "cat";
      cat.program = "/bin/busybox";
      cat.argv = {"/bin/busybox", "cat"};
      cat.env = engine::default_env();
      for (auto* spec : {&base, &cat}) {
        auto c = engine::create_template(*spec, *s);
        if (!c.ok()) err = "create " + spec->name + ": " + c.error().message();
      }
    }
  }
  *error = err;
  return err.empty() ? s.get() : nullptr;
}

// A service and server on a socket in the bench dir, serve() on its own thread.
struct Running {
  std::unique_ptr<pool::Service> service;
  std::unique_ptr<pool::Server> server;
  std::thread thread;
  ~Running() {
    if (server) server->stop();
    if (thread.joinable()) thread.join();
  }
};

std::unique_ptr<Running> start(benchmark::State& state, size_t workers, pool::Mode mode, size_t refill_threads = 0) {
  std::string err;
  auto* s = store(&err);
  if (!s) {
    state.SkipWithError(err.c_str());
    return nullptr;
  }
  pool::ServiceOptions opts;
  opts.templates = {"base", "cat"};
  opts.workers = workers;
  opts.pool.depth = 8;
  opts.pool.mode = mode;
  opts.pool.refill_threads = refill_threads;
  opts.queue_capacity = 256;
  auto r = std::make_unique<Running>();
  auto svc = pool::Service::create(*s, opts);
  if (!svc.ok()) {
    state.SkipWithError(svc.error().message().c_str());
    return nullptr;
  }
  r->service = std::move(svc).value();
  r->service->wait_ready(std::chrono::seconds(30));
  pool::ServerOptions so;
  so.socket_path = bench_dir() / "bench.sock";
  auto srv = pool::Server::listen(*r->service, so);
  if (!srv.ok()) {
    state.SkipWithError(srv.error().message().c_str());
    return nullptr;
  }
  r->server = std::move(srv).value();
  r->thread = std::thread([p = r->server.get()] { (void)p->serve(); });
  return r;
}

std::string job_line(int job, int id) {
  pool::Request r;
  r.id = id;
  if (job == 0) {
    r.template_name = "base";
    r.argv = {"/bin/busybox", "echo", "hi"};
  } else {
    r.template_name = "cat";
    r.stdin_data = std::string(63, 'x') + "\n";
  }
  r.timeout_ms = 10'000;
  return pool::serialize_request(r);
}

// Server-side timings summed over jobs (pool::JobTimings, microseconds).
struct ServerSide {
  double queue_us = 0, acquire_us = 0, run_us = 0, total_us = 0;
  int jobs = 0;
};

// Runs `n` jobs on one connection; appends each one's latency (us) and adds the server's own
// timings to `side`. False on any failure.
bool run_jobs(const std::filesystem::path& socket, int job, int n, std::vector<double>* lat, std::string* err,
              ServerSide* side = nullptr) {
  auto c = pool::Client::connect(socket);
  if (!c.ok()) {
    *err = c.error().message();
    return false;
  }
  for (int i = 0; i < n; i++) {
    const std::string line = job_line(job, i);
    auto t = Clock::now();
    auto resp = c->call(line);
    lat->push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
    if (!resp.ok()) {
      *err = resp.error().message();
      return false;
    }
    auto r = pool::parse_response(*resp);
    if (!r.ok() || !r->ok || r->exit_code != 0) {
      *err = "job failed: " + *resp;
      return false;
    }
    if (side) {
      side->queue_us += r->timings.queue_us;
      side->acquire_us += r->timings.acquire_us;
      side->run_us += r->timings.run_us;
      side->total_us += r->timings.total_us;
      side->jobs++;
    }
  }
  return true;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
  return v[i];
}

void report(benchmark::State& state, const std::vector<double>& lat) {
  double sum = 0;
  for (double x : lat) sum += x;
  state.counters["p50_us"] = percentile(lat, 0.50);
  state.counters["p99_us"] = percentile(lat, 0.99);
  state.counters["mean_us"] = lat.empty() ? 0 : sum / double(lat.size());
  state.counters["jobs"] = double(lat.size());
}

// vmfork_pool_acquire_waits_total of `tmpl` from the metrics text: jobs that found no ready clone.
double metric(const std::string& text, const std::string& tmpl) {
  const std::string key = "vmfork_pool_acquire_waits_total{template=\"" + tmpl + "\"} ";
  size_t at = text.find(key);
  return at == std::string::npos ? -1 : std::atof(text.c_str() + at + key.size());
}

// The 1-minute load average (/proc/loadavg, proc(5)): the machine is shared, so figures need it.
double loadavg() {
  double v = -1;
  if (FILE* f = fopen("/proc/loadavg", "r")) {
    if (fscanf(f, "%lf", &v) != 1) v = -1;
    fclose(f);
  }
  return v;
}

pool::Mode mode_arg(int64_t m) { return m ? pool::Mode::kReset : pool::Mode::kFresh; }

void ServeLatency(benchmark::State& state) {
  const int job = int(state.range(0));
  auto r = start(state, 2, mode_arg(state.range(1)));
  if (!r) return;
  std::vector<double> lat;
  std::string err;
  ServerSide side;
  for (auto _ : state) {
    lat.clear();
    if (!run_jobs(r->server->socket_path(), job, 50, &lat, &err)) return state.SkipWithError(err.c_str());  // warm-up
    lat.clear();
    side = {};
    auto t = Clock::now();
    if (!run_jobs(r->server->socket_path(), job, kLatencyJobs, &lat, &err, &side))
      return state.SkipWithError(err.c_str());
    state.counters["jobs_per_s"] = kLatencyJobs / std::chrono::duration<double>(Clock::now() - t).count();
  }
  report(state, lat);
  // Where the time went, as the server saw it (means): the rest of mean_us is the socket and
  // the connection thread.
  state.counters["srv_queue_us"] = side.queue_us / side.jobs;
  state.counters["srv_acquire_us"] = side.acquire_us / side.jobs;
  state.counters["srv_run_us"] = side.run_us / side.jobs;
  state.counters["srv_total_us"] = side.total_us / side.jobs;
}
BENCHMARK(ServeLatency)
    ->ArgNames({"job", "mode"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void ServeThroughput(benchmark::State& state) {
  const int job = int(state.range(0));
  const size_t workers = size_t(state.range(2));
  auto r = start(state, workers, mode_arg(state.range(1)), size_t(state.range(3)));
  if (!r) return;
  const double waits_before = metric(r->service->metrics_text(), job == 0 ? "base" : "cat");
  std::vector<std::vector<double>> lat(kClients);
  std::vector<std::string> errs(kClients);
  std::atomic<bool> failed{false};
  for (auto _ : state) {
    auto t = Clock::now();
    std::vector<std::thread> clients;
    for (int i = 0; i < kClients; i++)
      clients.emplace_back([&, i] {
        if (!run_jobs(r->server->socket_path(), job, kThroughputJobs / kClients, &lat[i], &errs[i])) failed = true;
      });
    for (auto& c : clients) c.join();
    const double secs = std::chrono::duration<double>(Clock::now() - t).count();
    if (failed) {
      for (auto& e : errs)
        if (!e.empty()) return state.SkipWithError(e.c_str());
    }
    state.counters["jobs_per_s"] = double(kThroughputJobs / kClients * kClients) / secs;
  }
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  report(state, all);
  const double waits = metric(r->service->metrics_text(), job == 0 ? "base" : "cat") - waits_before;
  state.counters["acquire_waits"] = waits;
  state.counters["acquire_waits_per_1000"] = all.empty() ? 0 : waits * 1000.0 / double(all.size());
  state.counters["loadavg_1m"] = loadavg();
}
BENCHMARK(ServeThroughput)
    ->ArgNames({"job", "mode", "workers", "refill"})
    ->ArgsProduct({{0, 1}, {0, 1}, {1, 2}, {1, 0, 4}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The transport and protocol alone: a request answered without a VM (unknown_template) over
// the same socket, one client.
void ServeNoJob(benchmark::State& state) {
  auto r = start(state, 2, pool::Mode::kFresh);
  if (!r) return;
  auto c = pool::Client::connect(r->server->socket_path());
  if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
  std::vector<double> lat;
  for (auto _ : state) {
    auto t = Clock::now();
    auto resp = c->call(R"({"id":1,"template":"none"})");
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
    if (!resp.ok()) return state.SkipWithError(resp.error().message().c_str());
  }
  report(state, lat);
}
BENCHMARK(ServeNoJob)->Iterations(20000)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::filesystem::remove_all(bench_dir());
  return 0;
}
