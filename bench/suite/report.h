// The outputs of `vmfork bench` from its results.json document: a Markdown table (results.md)
// and SVG plots drawn by gnuplot (Debian's gnuplot-nox; scripts/install-deps.sh installs it):
// latency CDFs, jobs/s against workers, bytes on disk against guest memory size.
// Thread-safety: plain functions of their arguments.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace vmfork::bench {

/// Adds "ratios": {peer: {metric: peer median / vmfork median}} to `results` (which has "peers").
void add_ratios(nlohmann::json& results);

/// The Markdown table: one row per metric, one column per peer, each cell
/// "median (min-max, n) xRATIO", then the peers' reasons and notes.
std::string markdown_table(const nlohmann::json& results);

/// Writes the .dat files and plots.gp to `out_dir` and runs gnuplot on it; returns the SVG file
/// names written. Errors: a file could not be written, or gnuplot failed (its exit status).
Result<std::vector<std::string>> write_plots(const nlohmann::json& results, const std::filesystem::path& out_dir);

}  // namespace vmfork::bench
