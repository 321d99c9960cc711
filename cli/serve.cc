// `vmfork serve` and `vmfork submit` (see cli_serve.h).
#include "cli/serve.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <tuple>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <spdlog/spdlog.h>

#include "cli/template.h"
#include "cli/util.h"
#include "cli/worker.h"
#include "engine/units.h"
#include "pool/client.h"
#include "pool/server.h"
#include "pool/service.h"
#include "snapshot/page_store.h"
#include "vmm/seccomp.h"

namespace vmfork::cli {

using namespace vmfork::engine;

void add_serve_cli(CLI::App& app, ServeCli* c) {
  c->cmd = app.add_subcommand("serve", "Serve jobs in warm pools of template clones over a Unix socket");
  c->cmd->add_option("--template", c->templates, "template to serve (repeatable)")->required();
  c->cmd->add_option("--pool", c->pool, "clones kept ready per template")->capture_default_str();
  c->cmd->add_option("--mode", c->mode, "fresh (a new clone per job) or reset (clones reset and reused)")
      ->capture_default_str();
  c->cmd->add_option("--refill-threads", c->refill_threads,
                     "threads per template that restore, reset and destroy clones (default: online CPUs, at least 2)")
      ->check(CLI::Range(size_t(0), size_t(256)));
  c->cmd->add_option("--workers", c->workers, "jobs run at once")->capture_default_str();
  c->cmd->add_flag("--no-seccomp", c->no_seccomp, "turn off both seccomp filters: the job-thread one and the process one (debugging)");
  c->cmd->add_option("--queue", c->queue, "jobs waiting for a worker before requests are answered busy")
      ->capture_default_str();
  c->cmd->add_option("--socket", c->socket, "Unix socket path to listen on (created with mode 0600)")->required();
  c->cmd->add_option("--store", c->store, "store directory (default: $VMFORK_STORE or ~/.local/share/vmfork/store)");
  c->cmd->add_option("--max-connections", c->max_connections, "connections served at once; more get busy")
      ->capture_default_str();
  c->cmd->add_option("--idle-timeout", c->idle_timeout, "close a connection with nothing in progress after this")
      ->capture_default_str();
  c->cmd->add_option("--line-timeout", c->line_timeout, "a request line must be complete this long after its first byte")
      ->capture_default_str();
  c->cmd->add_option("--max-buffered", c->max_buffered,
                     "bytes held for all connections together (unfinished lines, requests, answers); beyond: busy")
      ->capture_default_str();
}

void add_submit_cli(CLI::App& app, SubmitCli* c) {
  c->cmd = app.add_subcommand("submit", "Send one job to a `vmfork serve` daemon and print its result");
  c->cmd->add_option("--socket", c->socket, "the daemon's Unix socket");
  c->cmd->add_option("--redis", c->redis, "instead of --socket: enqueue on a Redis Stream served by `vmfork worker`");
  c->cmd->add_option("--stream", c->stream, "with --redis: the job stream");
  c->cmd->add_option("--results", c->results, "with --redis: the results stream (default STREAM:results)");
  c->cmd->add_option("--wait", c->wait, "with --redis: longest wait for the result (default: the job's timeout + 60s)");
  c->cmd->add_option("--template", c->template_name, "template to run in (optional if the daemon serves one)");
  c->cmd->add_option("--timeout", c->timeout, "wall-clock limit of the job (e.g. 10s, 500ms; default 30s)");
  c->cmd->add_option("--max-output", c->max_output, "limit on stdout+stderr bytes (default 16M, at most 64M)");
  c->cmd->add_flag("--json", c->json, "print the daemon's raw response line");
  c->cmd->add_flag("--metrics", c->metrics, "print the daemon's metrics (Prometheus text) instead of running a job");
  c->cmd->add_option("--file", c->files, "HOST:GUEST: a host file for the job's file system (repeatable)")->allow_extra_args(false);
  c->cmd->add_option("--workdir", c->workdir, "the job's working directory");
  c->cmd->add_option("--collect", c->collect, "GUEST[:HOST]: bring back a file the job wrote (repeatable)")->allow_extra_args(false);
  c->cmd->add_option("command", c->command,
                     "PROGRAM [ARGS...] (after --) for a kernel-ready template; none for a stdin-wait one");
}

int run_serve_cli(const ServeCli& c) {
  pool::ServiceOptions opts;
  opts.templates = c.templates;
  opts.pool.depth = c.pool;
  opts.pool.refill_threads = c.refill_threads;  // 0: pool::default_refill_threads()
  if (c.mode == "fresh") opts.pool.mode = pool::Mode::kFresh;
  else if (c.mode == "reset") opts.pool.mode = pool::Mode::kReset;
  else return fail("--mode: '" + c.mode + "' is not fresh or reset");
  opts.workers = c.workers;
  opts.seccomp = !c.no_seccomp;
  opts.queue_capacity = c.queue;

  // SIGTERM and SIGINT are taken through a signalfd that wakes the accept loop; blocking them
  // before any thread starts makes every thread inherit the mask, so none is interrupted.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigset_t hup_signal;
  sigemptyset(&hup_signal);
  sigaddset(&hup_signal, SIGHUP);
  sigset_t all = stop_signals;
  sigaddset(&all, SIGHUP);
  if (pthread_sigmask(SIG_BLOCK, &all, nullptr) != 0) return fail("pthread_sigmask failed");
  Fd sig(signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  Fd hup(signalfd(-1, &hup_signal, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sig.valid() || !hup.valid()) return fail(errno_error("signalfd").message());

  pool::ServerOptions sopts;
  sopts.socket_path = c.socket;
  sopts.stop_fd = sig.get();
  sopts.max_connections = c.max_connections;
  for (auto [flag, text, out] : {std::tuple{"--idle-timeout", &c.idle_timeout, &sopts.idle_timeout},
                                 std::tuple{"--line-timeout", &c.line_timeout, &sopts.line_timeout}}) {
    auto d = parse_duration(*text);
    if (!d.ok()) return fail(std::string(flag) + ": " + d.error().message());
    *out = std::chrono::ceil<std::chrono::milliseconds>(*d);
  }
  auto buffered = parse_size(c.max_buffered);
  if (!buffered.ok()) return fail("--max-buffered: " + buffered.error().message());
  sopts.max_buffered_bytes = size_t(*buffered);

  auto store = snapshot::PageStore::open(store_dir(c.store));
  if (!store.ok()) return fail(store.error().message());
  auto service = pool::Service::create(**store, opts);
  if (!service.ok()) return fail(service.error().message());
  if (!(*service)->wait_ready(std::chrono::seconds(60)))
    spdlog::warn("not every pool filled within 60 s; serving anyway (jobs wait for clones)");

  // SIGHUP: reload templates re-created in the store, on a thread of its own (a load takes
  // a while); signals arriving meanwhile are folded into the one running.
  std::thread reloader;
  std::atomic<bool> reloading{false};
  pool::Service* svc = service->get();
  sopts.hup_fd = hup.get();
  sopts.on_hup_fd = [&] {
    signalfd_siginfo si;
    while (read(hup.get(), &si, sizeof si) == ssize_t(sizeof si)) {
    }
    if (reloading.exchange(true)) return;
    if (reloader.joinable()) reloader.join();
    reloader = std::thread([&, svc] {
      auto r = svc->reload();
      if (!r.ok()) spdlog::error("{}", r.error().message());
      if (r.ok())
        for (const auto& n : *r) spdlog::info("reloaded template {} (re-created in the store)", n);
      if (r.ok() && r->empty()) spdlog::info("SIGHUP: no template changed");
      reloading = false;
    });
  };
  auto server = pool::Server::listen(**service, sopts);
  if (!server.ok()) return fail(server.error().message());
  std::string names;
  for (auto& t : c.templates) names += (names.empty() ? "" : ", ") + t;
  spdlog::info("serving {} on {} (pool {} {}, {} refill threads, {} workers, queue {})", names, c.socket, c.pool,
               c.mode, c.refill_threads ? c.refill_threads : pool::default_refill_threads(), c.workers, c.queue);
  // Set up (store open, pools filled, socket bound, threads started) and no job run yet, so
  // no job thread has its own filter: the process filter goes on every thread (TSYNC).
  if (!c.no_seccomp) {
    Status confined = vmm::confine_process(vmm::ProcessRole::kServe);
    if (!confined.ok()) return fail(confined.error().message());
  }
  auto served = (*server)->serve();
  if (reloader.joinable()) reloader.join();
  if (!served.ok()) return fail(served.error().message());
  spdlog::info("stopped: every accepted job answered");
  return 0;
}

namespace {

// All of stdin, unless it is a terminal (a job gets no interactive input: the request carries
// its whole stdin). Errors: read failed, more than `max` bytes.
Result<std::string> read_stdin(size_t max) {
  std::string data;
  if (isatty(STDIN_FILENO)) return data;
  char buf[64 << 10];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read stdin");
    if (n == 0) return data;
    data.append(buf, size_t(n));
    if (data.size() > max) return plain_error("stdin: more than " + std::to_string(max) + " bytes for one request");
  }
}

}  // namespace

int run_submit_cli(const SubmitCli& c) {
  if (c.socket.empty() == c.redis.empty()) return fail("submit: give one of --socket and --redis");
  if (!c.redis.empty() && c.metrics) return fail("--metrics: a worker's metrics are on its --metrics-listen endpoint");
  pool::Request req;
  req.id = static_cast<int64_t>(getpid());
  req.op = c.metrics ? pool::Op::kMetrics : pool::Op::kRun;
  req.template_name = c.template_name;
  if (!c.timeout.empty()) {
    auto t = parse_duration(c.timeout);
    if (!t.ok()) return fail("--timeout: " + t.error().message());
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*t).count();
    if (ms < 1 || uint64_t(ms) > pool::kMaxTimeoutMs) return fail("--timeout: must be 1ms..1h");
    req.timeout_ms = uint64_t(ms);
  }
  if (!c.max_output.empty()) {
    auto m = parse_size(c.max_output);
    if (!m.ok()) return fail("--max-output: " + m.error().message());
    if (*m < 1 || *m > pool::kMaxMaxOutput) return fail("--max-output: must be 1..64M");
    req.max_output_bytes = *m;
  }
  if (!c.command.empty()) {
    req.argv = c.command;
    // The daemon opens a host argv[0] itself, from its own working directory. A path that is
    // no host file is left as given: a path in the template's root file system, or a runtime's
    // argument (`-c`).
    std::string program = resolve_program(c.command[0]);
    struct stat st;
    if (program.find('/') != std::string::npos && ::stat(program.c_str(), &st) == 0)
      program = std::filesystem::absolute(program).string();
    req.argv[0] = program;
  }
  auto jf = read_job_files(c.files, c.workdir, c.collect);
  if (!jf.ok()) return fail(jf.error().message());
  req.files = std::move(*jf);
  if (!c.metrics) {
    // base64 grows stdin by 4/3 and the line must stay within kMaxRequestLine.
    auto in = read_stdin(pool::kMaxRequestLine / 4 * 3 - (64 << 10));
    if (!in.ok()) return fail(in.error().message());
    req.stdin_data = std::move(in).value();
  }
  const std::string line = pool::serialize_request(req);
  if (line.size() > pool::kMaxRequestLine) return fail("request longer than the daemon accepts (16 MiB)");

  Result<std::string> raw = plain_error("");
  if (!c.redis.empty()) {
    req.id = "submit-" + std::to_string(getpid());
    raw = submit_via_redis(c, pool::serialize_request(req), req.timeout_ms);
  } else {
    auto client = pool::Client::connect(c.socket);
    if (!client.ok()) return fail(client.error().message());
    raw = client->call(line);
  }
  if (!raw.ok()) return fail(raw.error().message());
  auto resp = pool::parse_response(*raw);
  if (c.json) {
    std::cout << *raw << "\n";
    return resp.ok() && resp->ok ? resp->exit_code : 125;
  }
  if (!resp.ok()) return fail(resp.error().message());
  if (!resp->ok) return fail(resp->error_code + ": " + resp->error_message);
  if (resp->has_metrics) {
    std::cout << resp->metrics;
    return 0;
  }
  write_all(STDOUT_FILENO, {reinterpret_cast<const uint8_t*>(resp->stdout_data.data()), resp->stdout_data.size()});
  write_all(STDERR_FILENO, {reinterpret_cast<const uint8_t*>(resp->stderr_data.data()), resp->stderr_data.size()});
  if (!write_collected(resp->collected, c.collect) && resp->exit_code == 0) return 125;
  if (resp->reason != "exited") {
    std::string what = resp->reason;
    if (resp->fault.is_object() && resp->fault.contains("name") && resp->fault["name"].is_string())
      what += ": " + resp->fault["name"].get<std::string>();
    spdlog::warn("job ended: {}", what);
  }
  return resp->exit_code;
}

}  // namespace vmfork::cli
