// Summaries and JSON of bench results (see stats.h).
#include "bench/suite/stats.h"

namespace vmfork::bench {

const std::vector<std::pair<std::string, std::string>>& metric_units() {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"restore_us", "us"},          {"job_us", "us"},
      {"jobs_per_s_1", "jobs/s"},    {"jobs_per_s_2", "jobs/s"},
      {"snapshot_create_us", "us"},  {"bytes_on_disk", "bytes"},
      {"private_kib_per_clone", "KiB"}};
  return m;
}

nlohmann::json to_json(const PeerResult& p) {
  nlohmann::json j;
  j["name"] = p.name;
  j["what"] = p.what;
  j["ran"] = p.ran;
  j["reason"] = p.reason;
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [key, unit] : metric_units()) {
    auto it = p.samples.find(key);
    if (it == p.samples.end() || it->second.empty()) continue;
    Summary s = summarize(it->second);
    metrics[key] = {{"n", s.n}, {"min", s.min}, {"median", s.median}, {"max", s.max},
                    {"p50", s.median}, {"p99", s.p99}, {"unit", unit}};
  }
  j["metrics"] = metrics;
  j["not_measured"] = p.not_measured;
  j["samples"] = p.samples;
  j["extra"] = p.extra;
  return j;
}

}  // namespace vmfork::bench
