// The job service behind `vmfork serve`: one WarmPool per template, a bounded queue of accepted
// run requests and W worker threads that take jobs from it and run each in a pooled clone.
// Requests come in as protocol lines (pool/protocol.h) and leave as response lines; the
// transport (pool/server.h) only moves lines. A request that cannot run (malformed, unknown
// template, queue full, shutting down) is answered at once on the caller's thread; a run
// request is answered later on a worker thread. Every request gets exactly one answer.
// Thread-safety: every public method may be called from any thread concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "pool/metrics.h"
#include "pool/protocol.h"
#include "pool/warm_pool.h"
#include "snapshot/page_store.h"

namespace vmfork::pool {

struct ServiceOptions {
  std::vector<std::string> templates;  // names in the store, at least one, no repeats
  PoolOptions pool;                    // depth and mode of every template's pool
  size_t workers = 2;                  // jobs run at once (1..256)
  size_t queue_capacity = 64;          // accepted jobs waiting for a worker (1..65536); beyond: busy
  /// Longest a job waits for a ready clone (capped by its own timeout); then it fails "internal".
  std::chrono::nanoseconds acquire_wait = std::chrono::seconds(10);
  /// Each worker thread confines itself (vmm::confine_job_thread) before its first guest runs;
  /// other threads (event loop, refill, reload) are not confined. On by default: the service
  /// owns its worker threads (`serve --no-seccomp` turns it off).
  bool seccomp = true;
};

/// Jobs waiting and running right now.
struct ServiceLoad {
  size_t queued = 0;
  size_t running = 0;
};

class Service {
 public:
  /// Receives one response line ('\n'-terminated). Called exactly once per request, on the
  /// submitting thread or on a worker thread; it must not block for long (workers call it).
  using Reply = std::function<void(std::string line)>;

  /// Loads every template (engine::TemplateImage::load: validated, memory materialized), makes
  /// its WarmPool (which starts restoring clones in the background) and starts the workers.
  /// `store` must outlive the Service (reload() reads it). Errors: bad options, a template that
  /// cannot be loaded (the store's message, naming it).
  static Result<std::unique_ptr<Service>> create(const snapshot::PageStore& store, ServiceOptions opts);

  /// Picks up templates re-created in the store since they were loaded (PageStore::identity
  /// changed): each is loaded again and gets a new WarmPool; jobs accepted from then on run in
  /// it, jobs already accepted finish in the old one, which goes when they have. A template
  /// that fails to load keeps its old pool. Slow (a template load); call it off the hot path
  /// (`vmfork serve` does on SIGHUP). Returns the names reloaded. Errors: the first template
  /// that could not be loaded (the others are still reloaded).
  Result<std::vector<std::string>> reload();

  /// shutdown(), then the pools are destroyed.
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  /// Handles one request line (without '\n'); `reply` gets the answer (see Reply). Never
  /// throws on any input.
  void submit(std::string_view line, Reply reply);

  /// submit() and wait for the answer.
  std::string call(std::string_view line);

  /// Stops accepting (run requests from now on are answered busy, "shutting down"), lets the
  /// workers finish every queued and running job (each gets its answer), joins them and
  /// returns. Idempotent; concurrent callers all return once the drain is complete.
  void shutdown();

  /// Blocks until every pool has its full depth of clones ready or `timeout` passes; true if
  /// they all have.
  bool wait_ready(std::chrono::nanoseconds timeout);

  /// The Prometheus exposition text (pool/metrics.h) as of now.
  std::string metrics_text() const;

  ServiceLoad load() const;
  const ServiceOptions& options() const { return opts_; }

 private:
  struct Served {
    std::string name;
    bool stdin_wait = false;  // frozen at stdin-wait: the program already runs, argv must be empty
    std::shared_ptr<WarmPool> pool;  // replaced by reload() (under mu_); jobs hold their own ref
    std::string identity;            // PageStore::identity when loaded
  };
  struct Job;

  Service(const snapshot::PageStore& store, ServiceOptions opts);
  /// Checks a parsed run request against the templates and opens its program (engine::
  /// open_program: once, non-blocking, a regular file that starts as an x86-64 ELF). Fills the
  /// job's template fields and program fd, or returns false with the error to answer.
  bool route(const Request& req, Job* job, ErrorCode* code, std::string* message);
  static Result<Served> load_served(const snapshot::PageStore& store, const std::string& name,
                                    const PoolOptions& opts);
  void worker_loop();
  void run_job(Job& job);
  void answer_error(const nlohmann::json& id, ErrorCode code, const std::string& message, const Reply& reply);

  const snapshot::PageStore& store_;
  ServiceOptions opts_;
  std::vector<std::string> env_;  // engine::default_env(), for kernel-ready jobs
  std::vector<Served> served_;  // fixed names; each entry's pool and identity change under mu_
  std::mutex reload_mu_;        // one reload() at a time
  Metrics metrics_;

  // A worker waiting for a job. The most recently idle one is woken first (idle_ is a stack):
  // it is likely still on a core that is awake and has its caches, where waking the longest
  // idle one (a shared condition variable's order) costs a sleeping core's wake-up and, on
  // PVM, the vCPU thread's move between cores (docs/performance.md, "Which worker runs a job").
  struct IdleWorker {
    std::condition_variable cv;
    bool woken = false;  // mu_: set by whoever popped it from idle_
  };
  void wake_one_idle();  // mu_ held

  mutable std::mutex mu_;
  std::vector<IdleWorker*> idle_;  // most recently idle last; each lives on its worker's stack
  std::deque<std::unique_ptr<Job>> queue_;
  size_t running_ = 0;
  bool stopping_ = false;

  std::mutex join_mu_;  // serializes shutdown()'s joins
  std::vector<std::thread> workers_;
};

}  // namespace vmfork::pool
