// `vmfork measure`: runs a program N times, each in a fresh clone of one template (same memory,
// same files, same stdin), and reports the host-measured distribution of its run time; with
// --vs, a second program interleaved (A B A B) and the ratio of their means with a confidence
// interval. Thread-safety: single-threaded main.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace vmfork::cli {

/// Options of `vmfork measure`, filled by CLI11.
struct MeasureCli {
  CLI::App* cmd = nullptr;
  int repeat = 10, warmup = 1;
  std::string template_name, store, accel = "auto", mem = "256M", timeout = "30s";
  bool json = false, deterministic = false;
  std::vector<std::string> command;  // PROGRAM ARGS [--vs -- PROGRAM2 ARGS]
};

/// Registers `measure` on `app`; `cli` must outlive parsing.
void add_measure_cli(CLI::App& app, MeasureCli* cli);

/// Runs it; returns 0 when every run exited 0, else the first failing run's exit code (as
/// `vmfork run`), or 125 after printing why vmfork itself could not measure.
int run_measure_cli(const MeasureCli& cli);

}  // namespace vmfork::cli
