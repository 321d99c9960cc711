// `vmfork serve` (the job daemon, pool/service.h + pool/server.h) and `vmfork submit` (its
// client, pool/client.h): the command-line faces of the serving path. Thread-safety:
// single-threaded main.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace vmfork::cli {

/// Options of `vmfork serve`, filled by CLI11.
struct ServeCli {
  CLI::App* cmd = nullptr;
  std::vector<std::string> templates;
  size_t pool = 4, refill_threads = 0, workers = 2, queue = 64, max_connections = 4096;
  std::string mode = "fresh", socket, store;
  std::string idle_timeout = "60s", line_timeout = "30s", max_buffered = "256M";
  bool no_seccomp = false;
};

/// Options of `vmfork submit`, filled by CLI11.
struct SubmitCli {
  CLI::App* cmd = nullptr;
  std::string socket, template_name, timeout, max_output;
  std::string redis, stream, results, wait;  // --redis: through a Redis Streams queue (cli/worker.h)
  bool json = false, metrics = false;
  std::vector<std::string> command;
  std::vector<std::string> files, collect;  // --file HOST:GUEST, --collect GUEST[:HOST]
  std::string workdir;
};

/// Registers `serve` on `app`; `cli` must outlive parsing.
void add_serve_cli(CLI::App& app, ServeCli* cli);
/// Registers `submit` on `app`; `cli` must outlive parsing.
void add_submit_cli(CLI::App& app, SubmitCli* cli);

/// Serves until SIGTERM or SIGINT, then drains (SIGHUP reloads re-created templates); returns the process exit status (0 after a
/// clean drain, 125 after printing why it could not start or failed).
int run_serve_cli(const ServeCli& cli);

/// Sends one job and prints its result: stdout and stderr bytes to vmfork's own, exit status
/// the job's (125 after printing the error when the server answered with one or could not be
/// reached); with --json the raw response line; with --metrics the metrics text.
int run_submit_cli(const SubmitCli& cli);

}  // namespace vmfork::cli
