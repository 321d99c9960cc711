// The job service: queue, workers, pools (see service.h).
#include "pool/service.h"

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <future>
#include <optional>
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
  bool stdin_wait = false;
  std::shared_ptr<WarmPool> pool;  // the template's pool when the job was accepted
  Fd program;                      // kernel-ready: argv[0], opened once at accept
  Reply reply;
  Clock::time_point accepted;
};

Service::Service(const snapshot::PageStore& store, ServiceOptions opts)
    : store_(store), opts_(std::move(opts)), env_(engine::default_env()) {}

Result<Service::Served> Service::load_served(const snapshot::PageStore& store, const std::string& name,
                                            const PoolOptions& opts) {
  // The identity first: a template re-created during the load is then seen as changed by the
  // next reload, never as the one loaded.
  VF_ASSIGN(std::string identity, store.identity(name));
  auto image = engine::TemplateImage::load(store, name);
  if (!image.ok()) return image.error();  // names the template
  const bool stdin_wait = (*image)->meta().freeze_point == "stdin-wait";
  auto pool = WarmPool::create(*image, opts);
  if (!pool.ok()) return plain_error("pool for " + name + ": " + pool.error().message());
  return Served{name, stdin_wait, std::shared_ptr<WarmPool>(std::move(pool).value()), std::move(identity)};
}

Result<std::unique_ptr<Service>> Service::create(const snapshot::PageStore& store, ServiceOptions opts) {
  if (opts.templates.empty()) return plain_error("serve: no template given");
  if (opts.workers < 1 || opts.workers > 256) return plain_error("serve: workers must be 1..256");
  if (opts.queue_capacity < 1 || opts.queue_capacity > 65536) return plain_error("serve: queue must be 1..65536");
  std::set<std::string> seen;
  for (const auto& n : opts.templates)
    if (!seen.insert(n).second) return plain_error("serve: template " + n + " given twice");

  std::unique_ptr<Service> s(new Service(store, std::move(opts)));
  for (const auto& name : s->opts_.templates) {
    VF_ASSIGN(Served served, load_served(store, name, s->opts_.pool));
    s->served_.push_back(std::move(served));
  }
  for (size_t i = 0; i < s->opts_.workers; i++) s->workers_.emplace_back([p = s.get()] { p->worker_loop(); });
  return s;
}

Service::~Service() { shutdown(); }

Result<std::vector<std::string>> Service::reload() {
  std::lock_guard one(reload_mu_);
  std::vector<std::string> reloaded;
  std::optional<Error> first_error;
  for (size_t i = 0; i < served_.size(); i++) {
    const std::string& name = served_[i].name;  // names never change
    std::string loaded_identity;
    {
      std::lock_guard lock(mu_);
      loaded_identity = served_[i].identity;
    }
    auto now = store_.identity(name);
    if (now.ok() && *now == loaded_identity) continue;
    auto fresh = now.ok() ? load_served(store_, name, opts_.pool) : Result<Served>(now.error());
    if (!fresh.ok()) {
      if (!first_error) first_error = plain_error("reload " + name + ": " + fresh.error().message());
      continue;
    }
    std::shared_ptr<WarmPool> old;
    {
      std::lock_guard lock(mu_);
      old = std::exchange(served_[i].pool, fresh->pool);
      served_[i].stdin_wait = fresh->stdin_wait;
      served_[i].identity = fresh->identity;
    }
    reloaded.push_back(name);
    // `old` goes here unless a queued or running job still holds it.
  }
  if (first_error) return *first_error;
  return reloaded;
}

void Service::answer_error(const nlohmann::json& id, ErrorCode code, const std::string& message,
                           const Reply& reply) {
  metrics_.request_failed(error_code_name(code));
  reply(serialize_error(id, code, message));
}

namespace {

// The start of an ELF header (System V gABI, "ELF Header"): magic, ELFCLASS64, little-endian,
// x86-64, an executable type, and no PT_INTERP (the job rules of vmm::check_static_program).
// The segments are checked when the worker reads the whole file.
bool is_x86_64_elf(int fd, std::string* why) {
  Elf64_Ehdr eh;
  ssize_t n;
  do n = pread(fd, &eh, sizeof eh, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    *why = std::string("read: ") + std::strerror(errno);
    return false;
  }
  if (size_t(n) < sizeof eh || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) *why = "not an ELF file";
  else if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    *why = "not a little-endian ELF64 file";
  else if (eh.e_machine != EM_X86_64) *why = "not an x86-64 ELF file";
  else if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) *why = "not an executable (ELF type " + std::to_string(eh.e_type) + ")";
  else if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256) *why = "bad ELF program header table";
  if (!why->empty()) return false;
  // A PT_INTERP entry: dynamically linked, which a kernel-ready clone cannot run.
  Elf64_Phdr ph[256];
  const size_t want = sizeof(Elf64_Phdr) * eh.e_phnum;
  do n = pread(fd, ph, want, off_t(eh.e_phoff));
  while (n < 0 && errno == EINTR);
  if (n < 0 || size_t(n) != want) {
    *why = "ELF program headers extend past the end of the file";
    return false;
  }
  for (size_t i = 0; i < eh.e_phnum; i++)
    if (ph[i].p_type == PT_INTERP) {
      *why = "dynamically linked; vmfork runs static executables (build with -static)";
      return false;
    }
  return true;
}

}  // namespace

bool Service::route(const Request& req, Job* job, ErrorCode* code, std::string* message) {
  const Served* served = nullptr;
  if (req.template_name.empty()) {
    if (served_.size() != 1) {
      *code = ErrorCode::kBadRequest;
      *message = "template: required, this server has " + std::to_string(served_.size()) + " (" +
                 names_of(opts_.templates) + ")";
      return false;
    }
    served = &served_[0];
  } else {
    for (auto& s : served_)
      if (s.name == req.template_name) served = &s;
    if (!served) {
      *code = ErrorCode::kUnknownTemplate;
      *message = "no template '" + req.template_name + "' here (serving " + names_of(opts_.templates) + ")";
      return false;
    }
  }
  {
    std::lock_guard lock(mu_);  // reload() may swap the pool
    job->pool = served->pool;
    job->stdin_wait = served->stdin_wait;
  }
  *code = ErrorCode::kBadRequest;
  if (job->stdin_wait) {
    if (!req.argv.empty()) {
      *message = "argv: must be empty, template " + served->name + " is frozen at stdin-wait (its program already runs)";
      return false;
    }
    if (!req.files.empty()) {
      *message = "files, workdir, collect: template " + served->name + " is frozen at stdin-wait (its program already runs)";
      return false;
    }
    return true;
  }
  const engine::TemplateImage& image = job->pool->image();
  const bool runtime = image.meta().freeze_point == "runtime";
  if (req.argv.empty()) {
    *message = "argv: required, template " + served->name +
               (runtime ? " runs a runtime (argv is the job's command line, e.g. [\"/box/sol.py\"])"
                        : " is frozen at kernel-ready (argv[0] is the program)");
    return false;
  }
  // A runtime's argv and a program in a root file system are guest paths: nothing to open here.
  if (runtime || image.rootfs()) return true;
  // The program is opened here, once, and the worker reads this very fd: a path swapped
  // afterwards (a symlink turned to a FIFO) changes nothing, and opening never blocks (a FIFO
  // or device opens at once with O_NONBLOCK and is refused by its fstat). Half the guest's
  // memory caps it, as the clone does.
  auto fd = engine::open_program(req.argv[0], job->pool->image().mem_bytes() / 2);
  if (!fd.ok()) {
    *message = "argv[0] " + fd.error().message();
    return false;
  }
  std::string why;
  if (!is_x86_64_elf(fd->get(), &why)) {
    *message = "argv[0] " + req.argv[0] + ": " + why;
    return false;
  }
  job->program = std::move(fd).value();
  return true;
}

void Service::submit(std::string_view line, Reply reply) {
  const auto accepted = Clock::now();
  nlohmann::json id;
  auto req = parse_request(line, &id);
  if (!req.ok()) return answer_error(id, ErrorCode::kBadRequest, req.error().what, reply);
  if (req->op == Op::kMetrics) return reply(serialize_metrics(req->id, metrics_text()));

  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  auto job = std::make_unique<Job>();
  if (!route(*req, job.get(), &code, &message)) return answer_error(req->id, code, message, reply);
  job->req = std::move(req).value();
  job->reply = std::move(reply);
  job->accepted = accepted;
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && queue_.size() < opts_.queue_capacity) {
      queue_.push_back(std::move(job));
      wake_one_idle();
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

void Service::wake_one_idle() {
  if (idle_.empty()) return;
  IdleWorker* w = idle_.back();
  idle_.pop_back();
  w->woken = true;
  w->cv.notify_one();  // under mu_: once it is woken the worker may return and `w` go away
}

void Service::worker_loop() {
  IdleWorker me;
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      while (!stopping_ && queue_.empty()) {
        me.woken = false;
        idle_.push_back(&me);
        me.cv.wait(lock, [&] { return me.woken; });
      }
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
    if (!job.stdin_wait) {
      cj.program = req.argv[0];
      cj.program_fd = job.program.get();
      cj.files = req.files;
      cj.argv = req.argv;
      cj.env = env_;
    }
    cj.stdin_source = &input;
    cj.timeout = std::chrono::milliseconds(req.timeout_ms);
    cj.max_output = req.max_output_bytes;
    cj.seccomp = opts_.seccomp;
    const auto wait = std::min<std::chrono::nanoseconds>(opts_.acquire_wait, cj.timeout);
    PoolJobTimings pt;
    auto r = job.pool->run(cj, wait, &pt);
    const auto ran = Clock::now();
    t.acquire_us = pt.acquire_us;
    t.run_us = std::max(0.0, us_between(started, ran) - pt.acquire_us);
    t.total_us = us_between(job.accepted, ran);
    if (r.ok()) {
      metrics_.job_finished(engine::reason_name(r->reason));
      metrics_.observe_restore(r->timings.create_us / 1e6);
      metrics_.observe_vcpu_cpu(r->host.vcpu_cpu_us / 1e6);
      metrics_.observe_exits(r->host.vm_exits);
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
  job.program.reset();
  job.pool.reset();  // a pool replaced by reload() goes with its last job
  job.reply(std::move(line));
}

void Service::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    while (!idle_.empty()) wake_one_idle();
  }
  std::lock_guard join(join_mu_);
  for (auto& w : workers_)
    if (w.joinable()) w.join();
}

bool Service::wait_ready(std::chrono::nanoseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<std::shared_ptr<WarmPool>> pools;
  {
    std::lock_guard lock(mu_);
    for (auto& s : served_) pools.push_back(s.pool);
  }
  bool all = true;
  for (auto& p : pools) {
    auto left = std::max<std::chrono::nanoseconds>(deadline - Clock::now(), std::chrono::nanoseconds(0));
    all = p->wait_ready(left) && all;
  }
  return all;
}

std::string Service::metrics_text() const {
  std::vector<std::pair<std::string, std::shared_ptr<WarmPool>>> served;
  {
    std::lock_guard lock(mu_);
    for (const auto& s : served_) served.emplace_back(s.name, s.pool);
  }
  std::vector<PoolGauge> pools;
  for (const auto& [name, pool] : served) pools.push_back(PoolGauge{name, pool->stats()});
  ServiceLoad l = load();
  return metrics_.render(pools, l.queued, l.running);
}

ServiceLoad Service::load() const {
  std::lock_guard lock(mu_);
  return ServiceLoad{queue_.size(), running_};
}

}  // namespace vmfork::pool
