// The Redis Streams worker (pool/redis_worker.h) beside `vmfork serve` (pool/server.h) in the same
// run, on the same jobs and real clones, so the queue's own cost shows:
//   Jobs/<path>/<job>/<workers>/<window>
// <path>: 0 = serve (Unix socket, `window` client threads each sending one job and waiting for
// its answer), 1 = queue (a redis-server started here on a free loopback port; one producer
// keeps `window` jobs enqueued with XADD and a collector reads the results stream with XREAD).
// <workers>: serve: the service's worker threads; queue: that many RedisWorkers, each with its
// own Service of one worker thread (as `vmfork worker --workers 1` on one host).
// <job>: 0 = `busybox echo hi` in a kernel-ready template, 1 = `busybox cat` with 64 bytes of
// stdin in a template frozen at its first stdin read; reset mode, pool depth 8; 2 = a request
// answered without a VM (bad_request, stored as a result like any other): the transport alone.
// Counters: jobs_per_s, and p50_us/p99_us/mean_us of the latency each job saw: request written
// -> response read (serve) or XADD sent -> its result read from the results stream (queue).
// Figures, never pass/fail limits. Needs /dev/kvm and redis-server. Store in
// $VMFORK_BENCH_DIR/redis (default /var/tmp/vmfork-bench/redis), removed afterwards.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/guest_job.h"
#include "engine/template.h"
#include "pool/client.h"
#include "pool/redis_conn.h"
#include "pool/redis_queue.h"
#include "pool/redis_worker.h"
#include "pool/server.h"
#include "pool/service.h"

using namespace vmfork;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::filesystem::path bench_dir() {
  const char* d = getenv("VMFORK_BENCH_DIR");
  return std::filesystem::path(d && *d ? d : "/var/tmp/vmfork-bench") / "redis";
}

// The store with both templates and a redis-server, made on first use, ended by main().
struct Env {
  std::unique_ptr<snapshot::PageStore> store;
  pid_t redis = -1;
  pool::RedisUrl url;
  std::string error;
};

bool g_env_made = false;

Env& env() {
  static Env e;
  if (g_env_made) return e;
  g_env_made = true;
  std::filesystem::remove_all(bench_dir());
  std::filesystem::create_directories(bench_dir());
  auto opened = snapshot::PageStore::open(bench_dir() / "store");
  if (!opened.ok()) {
    e.error = opened.error().message();
    return e;
  }
  e.store = std::move(opened).value();
  engine::TemplateSpec base;
  base.name = "base";
  base.mem_bytes = 64ull << 20;
  engine::TemplateSpec cat = base;
  cat.name = "cat";
  cat.program = "/bin/busybox";
  cat.argv = {"/bin/busybox", "cat"};
  cat.env = engine::default_env();
  for (auto* spec : {&base, &cat}) {
    auto c = engine::create_template(*spec, *e.store);
    if (!c.ok()) e.error = "create " + spec->name + ": " + c.error().message();
  }
  // A free loopback port for redis-server.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  e.url.host = "127.0.0.1";
  e.url.port = ntohs(a.sin_port);
  e.redis = fork();
  if (e.redis == 0) {
    int fd = open((bench_dir() / "redis.log").c_str(), O_WRONLY | O_CREAT, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    const std::string port = std::to_string(e.url.port);
    execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", bench_dir().c_str(), nullptr);
    _exit(127);
  }
  pool::RedisConn c(e.url, pool::RedisTimeouts{});
  bool up = false;
  for (auto deadline = Clock::now() + 10s; !up && Clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
    auto r = c.command({"PING"});
    up = r.ok() && r->text() == "PONG";
  }
  if (!up) e.error = "redis-server did not start";
  return e;
}

std::string job_line(int job, int id) {
  if (job == 2) return R"({"id":)" + std::to_string(id) + R"(,"argv":5})" "\n";
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

bool answered_right(int job, const Result<pool::Response>& r) {
  if (!r.ok()) return false;
  return job == 2 ? r->error_code == "bad_request" : r->ok && r->exit_code == 0;
}

std::unique_ptr<pool::Service> make_service(benchmark::State& state, size_t workers) {
  pool::ServiceOptions opts;
  opts.templates = {"base", "cat"};
  opts.workers = workers;
  opts.pool.depth = 8;
  opts.pool.mode = pool::Mode::kReset;
  opts.queue_capacity = 256;
  auto svc = pool::Service::create(*env().store, opts);
  if (!svc.ok()) {
    state.SkipWithError(svc.error().message().c_str());
    return nullptr;
  }
  (*svc)->wait_ready(30s);
  return std::move(svc).value();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

void report(benchmark::State& state, const std::vector<double>& lat, double secs) {
  double sum = 0;
  for (double x : lat) sum += x;
  state.counters["jobs_per_s"] = double(lat.size()) / secs;
  state.counters["p50_us"] = percentile(lat, 0.50);
  state.counters["p99_us"] = percentile(lat, 0.99);
  state.counters["mean_us"] = lat.empty() ? 0 : sum / double(lat.size());
  state.counters["jobs"] = double(lat.size());
}

// `n` jobs through a Service + Server over its socket, `window` clients at once.
bool run_serve(benchmark::State& state, int job, size_t workers, int window, int n, std::vector<double>* lat,
               double* secs) {
  auto svc = make_service(state, workers);
  if (!svc) return false;
  pool::ServerOptions so;
  so.socket_path = bench_dir() / "bench.sock";
  auto srv = pool::Server::listen(*svc, so);
  if (!srv.ok()) {
    state.SkipWithError(srv.error().message().c_str());
    return false;
  }
  std::thread serving([p = srv->get()] { (void)p->serve(); });
  std::vector<std::vector<double>> per(static_cast<size_t>(window));
  std::atomic<bool> failed{false};
  auto t0 = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < window; c++)
    clients.emplace_back([&, c] {
      auto cl = pool::Client::connect(so.socket_path);
      if (!cl.ok()) return void(failed = true);
      for (int i = c; i < n; i += window) {
        auto t = Clock::now();
        auto resp = cl->call(job_line(job, i));
        per[size_t(c)].push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
        auto r = resp.ok() ? pool::parse_response(*resp) : Result<pool::Response>(resp.error());
        if (!answered_right(job, r)) failed = true;
      }
    });
  for (auto& c : clients) c.join();
  *secs = std::chrono::duration<double>(Clock::now() - t0).count();
  (*srv)->stop();
  serving.join();
  for (auto& p : per) lat->insert(lat->end(), p.begin(), p.end());
  if (failed) state.SkipWithError("a serve job failed");
  return !failed;
}

// `n` jobs through the Redis queue: `workers` RedisWorkers, a producer keeping `window` jobs
// enqueued, a collector reading results.
bool run_queue(benchmark::State& state, int job, size_t workers, int window, int n, std::vector<double>* lat,
               double* secs) {
  static int round = 0;
  const std::string stream = "bench" + std::to_string(round++);
  std::vector<std::unique_ptr<pool::Service>> services;
  std::vector<std::unique_ptr<pool::RedisWorker>> ws;
  for (size_t i = 0; i < workers; i++) {
    auto svc = make_service(state, 1);
    if (!svc) return false;
    pool::RedisWorkerOptions o;
    o.url = env().url;
    o.stream = stream;
    o.group = "g";
    o.consumer = "w" + std::to_string(i);
    auto w = pool::RedisWorker::create(*svc, o);
    if (!w.ok()) {
      state.SkipWithError(w.error().message().c_str());
      return false;
    }
    services.push_back(std::move(svc));
    ws.push_back(std::move(w).value());
  }
  for (auto& w : ws) w->start();
  std::this_thread::sleep_for(200ms);  // the group exists and the readers block on it

  pool::RedisConn producer(env().url, pool::RedisTimeouts{}), collector(env().url, pool::RedisTimeouts{});
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Clock::time_point> sent;  // job entry -> XADD time
  int outstanding = 0, done = 0;
  bool failed = false;
  const std::string results = pool::results_stream_of(stream);

  std::thread collect([&] {
    std::string after = "0-0";
    while (true) {
      {
        std::lock_guard l(mu);
        if (done == n || failed) return;
      }
      auto r = collector.command({"XREAD", "COUNT", "512", "BLOCK", "1000", "STREAMS", results, after});
      if (!r.ok()) {
        std::lock_guard l(mu);
        failed = true;
        cv.notify_all();
        return;
      }
      if (r->is_nil() || !r->is_array() || r->elements.empty()) continue;
      const auto now = Clock::now();
      pool::for_each_entry(r->elements[0].elements[1], [&](const std::string& id, const pool::RedisReply& f) {
        after = id;
        const std::string* je = pool::entry_field(f, pool::kJobEntryField);
        const std::string* res = pool::entry_field(f, pool::kResultField);
        std::lock_guard l(mu);
        auto it = je ? sent.find(*je) : sent.end();
        if (it == sent.end()) return;  // the producer has not recorded it yet: cannot happen, see below
        lat->push_back(std::chrono::duration<double, std::micro>(now - it->second).count());
        sent.erase(it);
        auto parsed = res ? pool::parse_response(*res) : Result<pool::Response>(plain_error("no result"));
        if (!answered_right(job, parsed)) failed = true;
        outstanding--;
        done++;
        cv.notify_all();
      });
    }
  });

  auto t0 = Clock::now();
  for (int i = 0; i < n; i++) {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return outstanding < window || failed; });
    if (failed) break;
    // Recorded under the lock before the collector can see the result (it takes the lock to
    // match it), so the time is the XADD's send time.
    auto t = Clock::now();
    auto id = pool::enqueue_job(producer, stream, job_line(job, i));
    if (!id.ok()) {
      failed = true;
      break;
    }
    sent[*id] = t;
    outstanding++;
  }
  {
    std::unique_lock l(mu);
    cv.wait_for(l, 120s, [&] { return done == n || failed; });
    if (done != n) failed = true;
  }
  *secs = std::chrono::duration<double>(Clock::now() - t0).count();
  collect.join();
  for (auto& w : ws) w->stop();
  for (auto& w : ws) (void)w->wait();
  if (failed) state.SkipWithError("a queued job failed or timed out");
  return !failed;
}

void Jobs(benchmark::State& state) {
  if (!env().error.empty()) return state.SkipWithError(env().error.c_str());
  const bool queue = state.range(0) == 1;
  const int job = int(state.range(1));
  const size_t workers = size_t(state.range(2));
  const int window = int(state.range(3));
  const int n = window == 1 ? 300 : 1000;
  std::vector<double> lat;
  double secs = 1;
  for (auto _ : state) {
    bool ok = queue ? run_queue(state, job, workers, window, n, &lat, &secs)
                    : run_serve(state, job, workers, window, n, &lat, &secs);
    if (!ok) return;
  }
  report(state, lat, secs);
}
BENCHMARK(Jobs)
    ->ArgNames({"queue", "job", "workers", "window"})
    ->ArgsProduct({{0, 1}, {0, 1, 2}, {1, 2}, {1, 8}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (g_env_made && env().redis > 0) {
    kill(env().redis, SIGKILL);
    waitpid(env().redis, nullptr, 0);
  }
  std::filesystem::remove_all(bench_dir());
  return 0;
}
