// `vmfork worker` and `vmfork submit --redis` (see worker.h).
#include "cli/worker.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <spdlog/spdlog.h>

#include "cli/template.h"
#include "cli/util.h"
#include "common/fd.h"
#include "engine/units.h"
#include "pool/http_metrics.h"
#include "pool/redis_queue.h"
#include "pool/redis_worker.h"
#include "pool/service.h"
#include "snapshot/page_store.h"
#include "vmm/seccomp.h"

namespace vmfork::cli {

namespace {

Result<std::chrono::milliseconds> millis(const char* flag, const std::string& text) {
  auto d = engine::parse_duration(text);
  if (!d.ok()) return plain_error(std::string(flag) + ": " + d.error().message());
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*d);
  if (ms.count() < 1) return plain_error(std::string(flag) + ": must be at least 1ms");
  return ms;
}

std::string default_consumer() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "host");
  return std::string(host) + "-" + std::to_string(getpid());
}

}  // namespace

void add_worker_cli(CLI::App& app, WorkerCli* c) {
  c->cmd = app.add_subcommand("worker", "Run jobs from a Redis Stream consumer group in warm pools of template clones");
  c->cmd->add_option("--redis", c->redis, "redis://[[user]:password@]host[:port][/db] or unix:///path")->required();
  c->cmd->add_option("--stream", c->stream, "the job stream (entries with a 'job' field)")->required();
  c->cmd->add_option("--group", c->group, "consumer group (created from the stream's start if missing)")->required();
  c->cmd->add_option("--consumer", c->consumer, "this worker's name in the group (default HOSTNAME-PID)");
  c->cmd->add_option("--template", c->templates, "template to serve (repeatable)")->required();
  c->cmd->add_option("--pool", c->pool, "clones kept ready per template")->capture_default_str();
  c->cmd->add_option("--mode", c->mode, "fresh (a new clone per job) or reset (clones reset and reused)")
      ->capture_default_str();
  c->cmd->add_option("--refill-threads", c->refill_threads,
                     "threads per template that restore, reset and destroy clones (default: online CPUs, at least 2)")
      ->check(CLI::Range(size_t(0), size_t(256)));
  c->cmd->add_option("--workers", c->workers, "jobs run at once")->capture_default_str();
  c->cmd->add_flag("--no-seccomp", c->no_seccomp, "turn off both seccomp filters: the job-thread one and the process one (debugging)");
  c->cmd->add_option("--inflight", c->inflight, "entries read and not yet finished (default 2 x --workers)");
  c->cmd->add_option("--results", c->results, "results stream (default STREAM:results)");
  c->cmd->add_option("--results-maxlen", c->results_maxlen, "XADD MAXLEN ~ of the results and dead-letter streams")
      ->capture_default_str();
  c->cmd->add_option("--claim-idle", c->claim_idle, "claim other workers' pending entries idle this long")
      ->capture_default_str();
  c->cmd->add_option("--max-deliveries", c->max_deliveries, "deliveries before an entry goes to STREAM:dead")
      ->capture_default_str();
  c->cmd->add_option("--drain-timeout", c->drain_timeout, "on SIGTERM, longest wait to store finished results")
      ->capture_default_str();
  c->cmd->add_option("--metrics-listen", c->metrics_listen, "serve Prometheus metrics over HTTP on HOST:PORT");
  c->cmd->add_option("--log-level", c->log_level, "info, or debug for one line per job")->capture_default_str();
  c->cmd->add_option("--store", c->store, "store directory (default: $VMFORK_STORE or ~/.local/share/vmfork/store)");
}

int run_worker_cli(const WorkerCli& c) {
  if (c.log_level == "debug") spdlog::set_level(spdlog::level::debug);
  else if (c.log_level != "info") return fail("--log-level: '" + c.log_level + "' is not info or debug");
  auto url = pool::RedisUrl::parse(c.redis);
  if (!url.ok()) return fail(url.error().message());
  pool::RedisWorkerOptions wopts;
  wopts.url = *url;
  wopts.stream = c.stream;
  wopts.group = c.group;
  wopts.consumer = c.consumer.empty() ? default_consumer() : c.consumer;
  wopts.results = c.results;
  wopts.results_maxlen = c.results_maxlen;
  wopts.max_deliveries = c.max_deliveries;
  auto idle = millis("--claim-idle", c.claim_idle);
  if (!idle.ok()) return fail(idle.error().message());
  wopts.claim_idle = *idle;
  auto drain = millis("--drain-timeout", c.drain_timeout);
  if (!drain.ok()) return fail(drain.error().message());
  wopts.drain_timeout = *drain;

  pool::ServiceOptions sopts;
  sopts.templates = c.templates;
  sopts.pool.depth = c.pool;
  sopts.pool.refill_threads = c.refill_threads;  // 0: pool::default_refill_threads()
  if (c.mode == "fresh") sopts.pool.mode = pool::Mode::kFresh;
  else if (c.mode == "reset") sopts.pool.mode = pool::Mode::kReset;
  else return fail("--mode: '" + c.mode + "' is not fresh or reset");
  sopts.workers = c.workers;
  sopts.seccomp = !c.no_seccomp;
  wopts.inflight = c.inflight ? c.inflight : 2 * c.workers;
  // The worker never hands the service more than `inflight` jobs, so this queue never says busy.
  sopts.queue_capacity = std::max<size_t>(1, wopts.inflight);

  // As for serve: SIGTERM/SIGINT through a signalfd, blocked before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) return fail("pthread_sigmask failed");
  Fd sig(signalfd(-1, &stop_signals, SFD_CLOEXEC));
  if (!sig.valid()) return fail(errno_error("signalfd").message());

  auto store = snapshot::PageStore::open(store_dir(c.store));
  if (!store.ok()) return fail(store.error().message());
  auto service = pool::Service::create(**store, sopts);
  if (!service.ok()) return fail(service.error().message());
  if (!(*service)->wait_ready(std::chrono::seconds(60)))
    spdlog::warn("not every pool filled within 60 s; working anyway (jobs wait for clones)");
  auto worker = pool::RedisWorker::create(**service, wopts);
  if (!worker.ok()) return fail(worker.error().message());
  std::unique_ptr<pool::MetricsHttp> http;
  if (!c.metrics_listen.empty()) {
    auto h = pool::MetricsHttp::start(c.metrics_listen, [w = worker->get()] { return w->metrics_text(); });
    if (!h.ok()) return fail(h.error().message());
    http = std::move(h).value();
    spdlog::info("metrics on http://{}/metrics (port {})", c.metrics_listen, http->port());
  }
  // Set up (store open, pools filled, Redis reached, metrics listening) and no entry read yet, so
  // no job thread has its own filter: the process filter goes on every thread (TSYNC).
  if (!c.no_seccomp) {
    Status confined = vmm::confine_process(vmm::ProcessRole::kWorker);
    if (!confined.ok()) return fail(confined.error().message());
  }
  (*worker)->start();
  const auto& o = (*worker)->options();
  spdlog::info("worker {} on redis {}: stream {}, group {}, results {}, dead {} (pool {} {}, {} workers, inflight {})",
               o.consumer, url->where(), o.stream, o.group, o.results, o.dead, c.pool, c.mode, c.workers, o.inflight);

  signalfd_siginfo si;
  while (read(sig.get(), &si, sizeof si) < 0 && errno == EINTR) {
  }
  spdlog::info("stopping: no new entries; finishing {} in flight", (*worker)->stats().inflight);
  (*worker)->stop();
  Status drained = (*worker)->wait();
  http.reset();
  if (!drained.ok()) {
    spdlog::error("{}", drained.error().message());
    return 1;
  }
  spdlog::info("stopped: every job taken was answered and acknowledged");
  return 0;
}

Result<std::string> submit_via_redis(const SubmitCli& c, const std::string& request_line, uint64_t timeout_ms) {
  if (c.stream.empty()) return plain_error("--redis needs --stream");
  VF_ASSIGN(auto url, pool::RedisUrl::parse(c.redis));
  std::chrono::milliseconds wait(timeout_ms + 60'000);
  if (!c.wait.empty()) {
    VF_ASSIGN(wait, millis("--wait", c.wait));
  }
  const std::string results = c.results.empty() ? pool::results_stream_of(c.stream) : c.results;
  pool::RedisConn conn(url, pool::RedisTimeouts{});
  // The results stream's end before the job exists, so its result cannot be missed.
  VF_ASSIGN(std::string after, pool::last_entry_id(conn, results));
  VF_ASSIGN(std::string entry, pool::enqueue_job(conn, c.stream, request_line));
  spdlog::debug("enqueued {} on {}", entry, c.stream);
  VF_ASSIGN(auto found, pool::wait_result(conn, results, &after, entry, std::chrono::steady_clock::now() + wait));
  if (!found) {
    return plain_error("no result for job " + entry + " on " + results + " within " + std::to_string(wait.count()) +
                       " ms; it stays queued");
  }
  return found->result;
}

}  // namespace vmfork::cli
