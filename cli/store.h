// `vmfork store gc|verify`: the whole store at once, templates (snapshot/page_store.h) and root
// file system images (rootfs/store.h). Thread-safety: single-threaded main.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace vmfork::cli {

/// Options of the store subcommands, filled by CLI11.
struct StoreCli {
  CLI::App* cmd = nullptr;
  CLI::App *gc = nullptr, *verify = nullptr;
  std::string store;
};

/// Registers `store` and its subcommands on `app`; `cli` must outlive parsing.
void add_store_cli(CLI::App& app, StoreCli* cli);

/// Runs the parsed subcommand; returns the process exit status (0; 1 when verify found a
/// damaged template or image; 125 after printing why the command itself failed).
int run_store_cli(const StoreCli& cli);

}  // namespace vmfork::cli
