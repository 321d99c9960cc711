// `vmfork bench [--quick] [--out DIR]`: the benchmark suite beside its peers (bench/suite/suite.h),
// progress on stderr, a summary table on stdout. Thread-safety: single-threaded main.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace vmfork::cli {

/// Options of `vmfork bench`, filled by CLI11.
struct BenchCli {
  CLI::App* cmd = nullptr;
  bool quick = false;
  std::string out = "bench-results";
  std::string mem = "256M";
  std::string work;  // scratch base; the suite uses WORK/suite-PID (default base: $VMFORK_BENCH_DIR,
                     // else /var/tmp/vmfork-bench)
};

/// Registers `bench` on `app`; `cli` must outlive parsing.
void add_bench_cli(CLI::App& app, BenchCli* cli);

/// Runs the suite. Returns 0 when results.json, results.md and the plots were written (peers
/// that could not run are recorded there with their reason), 125 after printing why not.
int run_bench_cli(const BenchCli& cli);

}  // namespace vmfork::cli
