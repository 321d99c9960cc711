// `vmfork template create|ls|inspect|verify|rm`: the command-line face of engine/template.h and
// the page store. Thread-safety: single-threaded main.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace vmfork::cli {

/// The store directory: --store, else $VMFORK_STORE, else $XDG_DATA_HOME/vmfork/store, else
/// $HOME/.local/share/vmfork/store (XDG Base Directory Specification, "XDG_DATA_HOME").
std::filesystem::path store_dir(const std::string& flag);

/// Options of every template subcommand, filled by CLI11.
struct TemplateCli {
  CLI::App* cmd = nullptr;
  CLI::App *create = nullptr, *ls = nullptr, *inspect = nullptr, *verify = nullptr, *rm = nullptr;
  std::string store, name, accel = "auto", mem = "256M", timeout = "60s", stack = "8M";
  std::vector<std::string> envs, command;
  std::string rootfs, runtime;
  bool json = false, verbose = false, irqchip = false, wait_for_job = false;
};

/// Registers `template` and its subcommands on `app`; `cli` must outlive parsing.
void add_template_cli(CLI::App& app, TemplateCli* cli);

/// Runs the parsed subcommand; returns the process exit status (0, or 125 after printing why).
int run_template_cli(const TemplateCli& cli);

}  // namespace vmfork::cli
