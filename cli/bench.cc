// `vmfork bench` (see bench.h).
#include "cli/bench.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "bench/suite/suite.h"
#include "engine/units.h"

namespace vmfork::cli {

void add_bench_cli(CLI::App& app, BenchCli* cli) {
  cli->cmd = app.add_subcommand("bench",
                                "Measure vmfork beside QEMU, Firecracker-style and naive restore, a bare process "
                                "and the KVM floor; write results.json, results.md and SVG plots");
  cli->cmd->add_flag("--quick", cli->quick, "fewer repetitions: under a minute (CI smoke test)");
  cli->cmd->add_option("--out", cli->out, "output directory")->capture_default_str();
  cli->cmd->add_option("--mem", cli->mem, "every peer's guest memory size")->capture_default_str();
  cli->cmd->add_option("--work", cli->work, "scratch directory on a real disk; the suite works in DIR/suite-PID and removes that");
}

int run_bench_cli(const BenchCli& cli) {
  auto opt = bench::SuiteOptions::defaults(cli.quick);
  auto mem = engine::parse_size(cli.mem);
  if (!mem.ok()) {
    std::fprintf(stderr, "vmfork bench: --mem: %s\n", mem.error().message().c_str());
    return 125;
  }
  opt.mem_bytes = *mem;
  // A directory of our own inside the scratch directory: the suite removes it when done.
  const char* d = std::getenv("VMFORK_BENCH_DIR");
  std::filesystem::path base = !cli.work.empty() ? std::filesystem::path(cli.work)
                                                 : std::filesystem::path(d && *d ? d : "/var/tmp/vmfork-bench");
  opt.work_dir = base / ("suite-" + std::to_string(getpid()));
  opt.progress = [](const std::string& line) { std::fprintf(stderr, "bench: %s\n", line.c_str()); };
  auto r = bench::run_suite(opt, cli.out);
  if (!r.ok()) {
    std::fprintf(stderr, "vmfork bench: %s\n", r.error().message().c_str());
    return 125;
  }
  std::ifstream md(std::filesystem::path(cli.out) / "results.md");
  std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  std::fputs(text.c_str(), stdout);
  std::fprintf(stderr, "bench: wrote %s/results.json, results.md and %zu plots in %.1f s\n", cli.out.c_str(),
               (*r)["plots"].size(), (*r)["suite_seconds"].get<double>());
  return 0;
}

}  // namespace vmfork::cli
