// One peer's results as `vmfork bench` records them, summarized with common/stats.h (the same
// quantile rule as `vmfork measure`). Plain values; thread-safety: none needed (copied between
// threads).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/stats.h"

namespace vmfork::bench {

using stats::Summary;
using stats::summarize;

/// The figures `vmfork bench` compares, by key (results.json "metrics"), with their unit.
/// restore_us           restore until the vCPU can run its first instruction (µs)
/// job_us               end to end: restore + job (`busybox true`) + teardown (µs)
/// jobs_per_s_1/_2      completed jobs per second with 1 and 2 workers (one value per round)
/// snapshot_create_us   state save + writing the snapshot durably (µs)
/// bytes_on_disk        bytes the snapshot occupies on disk (st_blocks * 512)
/// private_kib_per_clone  Private_Clean + Private_Dirty added per live clone after its job (KiB)
const std::vector<std::pair<std::string, std::string>>& metric_units();

/// One peer: its samples per metric, or why it (or one metric) could not be measured.
struct PeerResult {
  std::string name;       // "vmfork", "firecracker-style", ...
  std::string what;       // one line: what exactly runs
  bool ran = false;       // false: `reason` says why nothing was measured
  std::string reason;
  std::map<std::string, std::vector<double>> samples;  // metric -> samples
  std::map<std::string, std::string> not_measured;     // metric -> why not
  nlohmann::json extra = nlohmann::json::object();     // peer-specific figures (phases, notes)
};

/// {"name","what","ran","reason","metrics":{key:{n,min,median,max,p50,p99,unit}}, (p50 is the
/// median; quantiles as stats::quantile)
///  "not_measured":{...},"samples":{...},"extra":{...}}
nlohmann::json to_json(const PeerResult& p);

}  // namespace vmfork::bench
