// `vmfork rootfs create|ls|inspect|rm`: the command-line face of rootfs/store.h.
// Thread-safety: single-threaded main.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace vmfork::cli {

/// Options of every rootfs subcommand, filled by CLI11.
struct RootfsCli {
  CLI::App* cmd = nullptr;
  CLI::App *create = nullptr, *ls = nullptr, *inspect = nullptr, *rm = nullptr;
  std::string store, name, from_dir, from_oci;
  std::vector<std::string> from_host;
  bool json = false;
};

/// Registers `rootfs` and its subcommands on `app`; `cli` must outlive parsing.
void add_rootfs_cli(CLI::App& app, RootfsCli* cli);

/// Runs the parsed subcommand; returns the process exit status (0, or 125 after printing why).
int run_rootfs_cli(const RootfsCli& cli);

}  // namespace vmfork::cli
