// `vmfork measure` (see measure.h). Every figure it ranks runs by is host-measured
// (engine::HostMeasured: the vCPU thread's CPU time and the wall time of the vCPU's run of the
// job, not the restore); the guest's TSC figure is shown beside them, named guest-reported.
#include "cli/measure.h"

#include <sys/random.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/template.h"
#include "cli/util.h"
#include "common/stats.h"
#include "engine/guest_job.h"
#include "engine/restore.h"
#include "engine/template.h"
#include "engine/template_image.h"
#include "engine/units.h"
#include "snapshot/page_store.h"

namespace vmfork::cli {

namespace {

constexpr uint64_t kMaxStdin = 64ull << 20;

struct Side {
  std::string program;             // host path
  std::vector<std::string> argv;
  std::vector<nlohmann::json> runs;
  std::vector<double> cpu_us, wall_us, guest_us;
};

struct Run {
  engine::RunResult r;
  uint64_t stdout_hash = 0;
};

// All of stdin (empty for a terminal), at most kMaxStdin bytes.
Result<std::string> read_stdin() {
  std::string s;
  if (isatty(STDIN_FILENO)) return s;
  char buf[65536];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read stdin");
    if (n == 0) return s;
    s.append(buf, size_t(n));
    if (s.size() > kMaxStdin) return plain_error("stdin is more than 64 MiB");
  }
}

// Removes the temporary store on every path out.
struct TempDir {
  std::filesystem::path path;
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

nlohmann::json summary_json(const stats::Summary& s) {
  return {{"n", s.n},           {"min", s.min},     {"median", s.median}, {"mean", s.mean}, {"stddev", s.stddev},
          {"p90", s.p90},       {"p99", s.p99},     {"max", s.max},       {"cv", s.cv}};
}

nlohmann::json ratio_json(const stats::RatioInterval& r) {
  return {{"ratio", r.ratio}, {"low", r.low}, {"high", r.high}, {"confidence", r.confidence}, {"method", "delta"}};
}

std::string ms(double us) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", us / 1000);
  return b;
}

void print_row(const char* what, const stats::Summary& s) {
  std::printf("  %-18s %10s %10s %10s ± %-9s %10s %10s %6.2f%%\n", what, ms(s.min).c_str(), ms(s.median).c_str(),
              ms(s.mean).c_str(), ms(s.stddev).c_str(), ms(s.p90).c_str(), ms(s.p99).c_str(), s.cv * 100);
}

std::string command_line(const Side& s) {
  std::string out;
  for (const auto& a : s.argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

Result<Run> run_once(const std::shared_ptr<const engine::TemplateImage>& image, const Side& side,
                     const std::string& stdin_data, std::chrono::nanoseconds timeout,
                     const engine::FixedStart* fixed) {
  VF_ASSIGN(engine::Clone clone, engine::restore_clone(image));
  vmm::StringInput in(stdin_data);
  engine::CloneJob job;
  if (image->meta().freeze_point == "kernel-ready") {
    job.program = side.program;
    job.argv = side.argv;
  }
  job.stdin_source = &in;
  job.timeout = timeout;
  job.fixed_start = fixed;
  Run run;
  VF_ASSIGN(run.r, engine::run_clone(std::move(clone), job));
  run.stdout_hash = XXH3_64bits(run.r.stdout_data.data(), run.r.stdout_data.size());
  return run;
}

nlohmann::json run_json(const Run& run, int index, bool warmup) {
  const auto& r = run.r;
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(run.stdout_hash));
  return {{"index", index},
          {"warmup", warmup},
          {"exit_code", r.exit_code},
          {"reason", engine::reason_name(r.reason)},
          {"host", {{"vcpu_cpu_us", r.host.vcpu_cpu_us}, {"wall_us", r.host.wall_us},
                    {"memory_bytes", r.host.memory_bytes}, {"vm_exits", r.host.vm_exits}}},
          {"guest_reported", {{"run_us", r.guest.run_us}}},
          {"stdout_bytes", r.stdout_bytes},
          {"stdout_xxh3", hash}};
}

}  // namespace

void add_measure_cli(CLI::App& app, MeasureCli* c) {
  c->cmd = app.add_subcommand(
      "measure",
      "Run a program N times, each in a fresh clone of one template, and report its run time "
      "(host-measured vCPU CPU time and wall time). With --vs -- PROGRAM2 ARGS, run both "
      "interleaved (A B A B) and report mean(B)/mean(A) with a 95% confidence interval by the "
      "delta method (relative standard errors of the two means added in quadrature).");
  c->cmd->add_option("--repeat", c->repeat, "measured runs of each program")->check(CLI::Range(1, 100000))->capture_default_str();
  c->cmd->add_option("--warmup", c->warmup, "runs of each program first, not counted")->check(CLI::Range(0, 100000))->capture_default_str();
  c->cmd->add_option("--template", c->template_name,
                     "clone this kernel-ready template (default: a temporary one, removed afterwards)");
  c->cmd->add_option("--store", c->store, "template store directory (with --template)");
  c->cmd->add_option("--accel", c->accel, "auto|native|emulated|hardware (temporary template)")->capture_default_str();
  c->cmd->add_option("--mem", c->mem, "guest memory (temporary template)")->capture_default_str();
  c->cmd->add_option("--timeout", c->timeout, "wall-clock limit of each run")->capture_default_str();
  c->cmd->add_flag("--json", c->json, "print one JSON object with every run instead of the table");
  c->cmd->add_flag("--deterministic", c->deterministic,
                   "every run gets the same entropy and the same clock origin (docs/performance.md)");
  c->cmd->add_option("command", c->command, "PROGRAM [ARGS...] [--vs -- PROGRAM2 ARGS...] (after --)");
}

int run_measure_cli(const MeasureCli& c) {
  // ---- the programs: A, and B after --vs (its own "--" is optional)
  std::vector<Side> sides(1);
  for (size_t i = 0; i < c.command.size(); i++) {
    if (c.command[i] == "--vs") {
      sides.emplace_back();
      if (i + 1 < c.command.size() && c.command[i + 1] == "--") i++;
      continue;
    }
    sides.back().argv.push_back(c.command[i]);
  }
  for (auto& s : sides) {
    if (s.argv.empty()) return fail("measure: give PROGRAM [ARGS...] after -- (and after --vs --)");
    s.program = resolve_program(s.argv[0]);
  }
  auto timeout = engine::parse_duration(c.timeout);
  if (!timeout.ok()) return fail("--timeout: " + timeout.error().message());
  auto stdin_data = read_stdin();
  if (!stdin_data.ok()) return fail(stdin_data.error().message());

  // ---- the template every run clones
  TempDir temp;
  std::shared_ptr<const engine::TemplateImage> image;
  std::string template_label = c.template_name;
  {
    std::unique_ptr<snapshot::PageStore> store;
    if (!c.template_name.empty()) {
      auto s = snapshot::PageStore::open(store_dir(c.store));
      if (!s.ok()) return fail(s.error().message());
      store = std::move(*s);
    } else {
      char dir[] = "/tmp/vmfork-measure-XXXXXX";
      if (!mkdtemp(dir)) return fail(std::string("mkdtemp: ") + std::strerror(errno));
      temp.path = dir;
      auto s = snapshot::PageStore::open(temp.path / "store");
      if (!s.ok()) return fail(s.error().message());
      store = std::move(*s);
      engine::TemplateSpec spec;
      spec.name = "measure";
      auto mem = engine::parse_size(c.mem);
      if (!mem.ok()) return fail("--mem: " + mem.error().message());
      spec.mem_bytes = *mem;
      auto accel = vmm::parse_accel(c.accel);
      if (!accel.ok()) return fail(accel.error().message());
      spec.accel = *accel;
      auto created = engine::create_template(spec, *store);
      if (!created.ok()) return fail(created.error().message());
      template_label = "(temporary kernel-ready, " + created->accel + ")";
    }
    auto img = engine::TemplateImage::load(*store, c.template_name.empty() ? "measure" : c.template_name);
    if (!img.ok()) return fail(img.error().message());
    image = std::move(*img);
  }
  if (image->meta().freeze_point != "kernel-ready")
    return fail("measure: template " + image->name() + " is frozen at " + image->meta().freeze_point +
                "; measure needs a kernel-ready template (it gives each clone the program)");

  // ---- the same entropy and clock origin for every run, on request
  engine::FixedStart fixed;
  if (c.deterministic) {
    if (getrandom(fixed.entropy, sizeof fixed.entropy, 0) != sizeof fixed.entropy)
      return fail(std::string("getrandom: ") + std::strerror(errno));
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    fixed.realtime_ns = uint64_t(now.tv_sec) * 1000000000ull;  // a whole second: time(2) stays put
  }
  const engine::FixedStart* fixed_ptr = c.deterministic ? &fixed : nullptr;

  // ---- warm-up, then N rounds of A (B): interleaved so drifting host load hits both alike
  int status = 0;
  auto one = [&](Side& s, int index, bool warmup) -> bool {
    auto run = run_once(image, s, *stdin_data, *timeout, fixed_ptr);
    if (!run.ok()) {
      status = fail(command_line(s) + ": " + run.error().message());
      return false;
    }
    if (run->r.exit_code != 0 && status == 0) status = run->r.exit_code;
    s.runs.push_back(run_json(*run, index, warmup));
    if (!warmup) {
      s.cpu_us.push_back(run->r.host.vcpu_cpu_us);
      s.wall_us.push_back(run->r.host.wall_us);
      s.guest_us.push_back(run->r.guest.run_us);
    }
    return true;
  };
  for (int i = 0; i < c.warmup; i++)
    for (auto& s : sides)
      if (!one(s, i, true)) return status;
  for (int i = 0; i < c.repeat; i++)
    for (auto& s : sides)
      if (!one(s, i, false)) return status;

  // ---- report
  nlohmann::json out = {{"repeat", c.repeat}, {"warmup", c.warmup}, {"deterministic", c.deterministic},
                        {"template", template_label}, {"accel", vmm::accel_name(image->meta().accel)}};
  out["programs"] = nlohmann::json::array();
  for (const auto& s : sides) {
    out["programs"].push_back({{"argv", s.argv},
                               {"summary",
                                {{"vcpu_cpu_us", summary_json(stats::summarize(s.cpu_us))},
                                 {"wall_us", summary_json(stats::summarize(s.wall_us))},
                                 {"guest_reported_run_us", summary_json(stats::summarize(s.guest_us))}}},
                               {"runs", s.runs}});
  }
  stats::RatioInterval cpu_ratio, wall_ratio;
  if (sides.size() == 2) {
    cpu_ratio = stats::ratio_of_means(sides[0].cpu_us, sides[1].cpu_us);
    wall_ratio = stats::ratio_of_means(sides[0].wall_us, sides[1].wall_us);
    out["ratio_b_over_a"] = {{"vcpu_cpu_us", ratio_json(cpu_ratio)}, {"wall_us", ratio_json(wall_ratio)}};
  }
  if (c.json) {
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return status;
  }
  const char* names[] = {"A", "B"};
  for (size_t i = 0; i < sides.size(); i++) {
    const Side& s = sides[i];
    std::printf("%s: %s  (%d runs after %d warm-up, template %s, %s)\n", names[i], command_line(s).c_str(),
                c.repeat, c.warmup, template_label.c_str(), c.deterministic ? "deterministic" : "fresh entropy");
    std::printf("  %-18s %10s %10s %10s   %-9s %10s %10s %7s\n", "ms", "min", "median", "mean", "sd", "p90", "p99", "cv");
    print_row("vCPU CPU (host)", stats::summarize(s.cpu_us));
    print_row("wall (host)", stats::summarize(s.wall_us));
    print_row("guest TSC (guest)", stats::summarize(s.guest_us));
  }
  if (sides.size() == 2) {
    std::printf("B/A vCPU CPU: %.4f  95%% CI [%.4f, %.4f]\n", cpu_ratio.ratio, cpu_ratio.low, cpu_ratio.high);
    std::printf("B/A wall:     %.4f  95%% CI [%.4f, %.4f]  (delta method)\n", wall_ratio.ratio, wall_ratio.low,
                wall_ratio.high);
  }
  return status;
}

}  // namespace vmfork::cli
