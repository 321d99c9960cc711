// The job service: queue, workers, pools (see service.h).
#include "pool/service.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <future>
#include <set>

#include "engine/guest_job.h"
#include "engine/restore.h"
#include "engine/template_image.h"
#include "vmm/devices/channel.h"

namespace vmfork::pool {

namespace {

using Clock = std::chrono::steady_clock;

double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

std::string names_of(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

/// An accepted run request on its way through the queue.
struct Service::Job {
  Request req;
  Served* served = nullptr;
  Reply reply;
  Clock::time_point accepted;
};

Service::Service(ServiceOptions opts) : opts_(std::move(opts)), env_(engine::default_env()) {}

Result<std::unique_ptr<Service>> Service::create(const snapshot::PageStore& store, ServiceOptions opts) {
  if (opts.templates.empty()) return plain_error("serve: no template given");
  if (opts.workers < 1 || opts.workers > 256) return plain_error("serve: workers must be 1..256");
  if (opts.queue_capacity < 1 || opts.queue_capacity > 65536) return plain_error("serve: queue must be 1..65536");
  std::set<std::string> seen;
  for (const auto& n : opts.templates)
    if (!seen.insert(n).second) return plain_error("serve: template " + n + " given twice");

  std::unique_ptr<Service> s(new Service(std::move(opts)));
  for (const auto& name : s->opts_.templates) {
    auto image = engine::TemplateImage::load(store, name);
    if (!image.ok()) return image.error();  // names the template
    const bool stdin_wait = (*image)->meta().freeze_point == "stdin-wait";
    const bool runtime = (*image)->meta().freeze_point == "runtime";
    const bool rootfs = (*image)->rootfs() != nullptr;
    auto pool = WarmPool::create(*image, s->opts_.pool);
    if (!pool.ok()) return plain_error("pool for " + name + ": " + pool.error().message());
    s->served_.push_back(Served{name, stdin_wait, runtime, rootfs, std::move(pool).value()});
  }
  for (size_t i = 0; i < s->opts_.workers; i++) s->workers_.emplace_back([p = s.get()] { p->worker_loop(); });
  return s;
}

Service::~Service() { shutdown(); }

void Service::answer_error(const nlohmann::json& id, ErrorCode code, const std::string& message,
                           const Reply& reply) {
  metrics_.request_failed(error_code_name(code));
  reply(serialize_error(id, code, message));
}

Service::Served* Service::route(const Request& req, ErrorCode* code, std::string* message) {
  Served* served = nullptr;
  if (req.template_name.empty()) {
    if (served_.size() != 1) {
      *code = ErrorCode::kBadRequest;
      *message = "template: required, this server has " + std::to_string(served_.size()) + " (" +
                 names_of(opts_.templates) + ")";
      return nullptr;
    }
    served = &served_[0];
  } else {
    for (auto& s : served_)
      if (s.name == req.template_name) served = &s;
    if (!served) {
      *code = ErrorCode::kUnknownTemplate;
      *message = "no template '" + req.template_name + "' here (serving " + names_of(opts_.templates) + ")";
      return nullptr;
    }
  }
  *code = ErrorCode::kBadRequest;
  if (served->stdin_wait) {
    if (!req.argv.empty()) {
      *message = "argv: must be empty, template " + served->name + " is frozen at stdin-wait (its program already runs)";
      return nullptr;
    }
    if (!req.files.empty()) {
      *message = "files, workdir, collect: template " + served->name + " is frozen at stdin-wait (its program already runs)";
      return nullptr;
    }
    return served;
  }
  if (req.argv.empty()) {
    *message = "argv: required, template " + served->name +
               (served->runtime ? " runs a runtime (argv is the job's command line, e.g. [\"/box/sol.py\"])"
                                : " is frozen at kernel-ready (argv[0] is the program)");
    return nullptr;
  }
  // A runtime's argv and a root file system's program are guest paths: nothing to check here.
  if (served->runtime || served->rootfs) return served;
  // The program is read on the worker; checking here answers the common mistakes (a typo, a
  // directory) as bad_request instead of a failed job.
  struct stat st;
  if (stat(req.argv[0].c_str(), &st) != 0) {
    *message = "argv[0] " + req.argv[0] + ": " + std::strerror(errno);
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    *message = "argv[0] " + req.argv[0] + ": not a regular file";
    return nullptr;
  }
  return served;
}

void Service::submit(std::string_view line, Reply reply) {
  const auto accepted = Clock::now();
  nlohmann::json id;
  auto req = parse_request(line, &id);
  if (!req.ok()) return answer_error(id, ErrorCode::kBadRequest, req.error().what, reply);
  if (req->op == Op::kMetrics) return reply(serialize_metrics(req->id, metrics_text()));

  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  Served* served = route(*req, &code, &message);
  if (!served) return answer_error(req->id, code, message, reply);

  auto job = std::make_unique<Job>();
  job->req = std::move(req).value();
  job->served = served;
  job->reply = std::move(reply);
  job->accepted = accepted;
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < opts_.queue_capacity) {
      queue_.push_back(std::move(job));
      work_.notify_one();
      return;
    }
    message = stopping_ ? "server is shutting down"
                        : "queue full (" + std::to_string(opts_.queue_capacity) + " jobs waiting)";
  }
  answer_error(job->req.id, ErrorCode::kBusy, message, job->reply);
}

std::string Service::call(std::string_view line) {
  std::promise<std::string> answer;
  auto got = answer.get_future();
  submit(line, [&answer](std::string l) { answer.set_value(std::move(l)); });
  return got.get();
}

void Service::worker_loop() {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
      running_++;
    }
    run_job(*job);
    std::lock_guard lock(mu_);
    running_--;
  }
}

void Service::run_job(Job& job) {
  const auto started = Clock::now();
  JobTimings t;
  t.queue_us = us_between(job.accepted, started);
  std::string line;
  try {
    const Request& req = job.req;
    vmm::StringInput input(std::move(job.req.stdin_data));  // outlives the run below
    engine::CloneJob cj;
    if (!job.served->stdin_wait) {
      cj.program = req.argv[0];
      cj.argv = req.argv;
      cj.env = env_;
      cj.files = req.files;
    }
    cj.stdin_source = &input;
    cj.timeout = std::chrono::milliseconds(req.timeout_ms);
    cj.max_output = req.max_output_bytes;
    const auto wait = std::min<std::chrono::nanoseconds>(opts_.acquire_wait, cj.timeout);
    PoolJobTimings pt;
    auto r = job.served->pool->run(cj, wait, &pt);
    const auto ran = Clock::now();
    t.acquire_us = pt.acquire_us;
    t.run_us = std::max(0.0, us_between(started, ran) - pt.acquire_us);
    t.total_us = us_between(job.accepted, ran);
    if (r.ok()) {
      metrics_.job_finished(engine::reason_name(r->reason));
      metrics_.observe_restore(r->timings.create_us / 1e6);
      line = serialize_result(req.id, *r, t);
    } else {
      metrics_.request_failed(error_code_name(ErrorCode::kInternal));
      line = serialize_error(req.id, ErrorCode::kInternal, r.error().message());
    }
  } catch (const std::exception& e) {
    // Only allocation failure can get here; the client still gets its one answer.
    metrics_.request_failed(error_code_name(ErrorCode::kInternal));
    line = serialize_error(job.req.id, ErrorCode::kInternal, std::string("vmfork: ") + e.what());
  }
  metrics_.observe_job(us_between(job.accepted, Clock::now()) / 1e6);
  job.reply(std::move(line));
}

void Service::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  std::lock_guard join(join_mu_);
  for (auto& w : workers_)
    if (w.joinable()) w.join();
}

bool Service::wait_ready(std::chrono::nanoseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  bool all = true;
  for (auto& s : served_) {
    auto left = std::max<std::chrono::nanoseconds>(deadline - Clock::now(), std::chrono::nanoseconds(0));
    all = s.pool->wait_ready(left) && all;
  }
  return all;
}

std::string Service::metrics_text() const {
  std::vector<PoolGauge> pools;
  for (const auto& s : served_) pools.push_back(PoolGauge{s.name, s.pool->stats()});
  ServiceLoad l = load();
  return metrics_.render(pools, l.queued, l.running);
}

ServiceLoad Service::load() const {
  std::lock_guard lock(mu_);
  return ServiceLoad{queue_.size(), running_};
}

}  // namespace vmfork::pool
