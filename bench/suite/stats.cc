// Summaries and JSON of bench results (see stats.h).
#include "bench/suite/stats.h"

#include <algorithm>
#include <cmath>

namespace vmfork::bench {

namespace {
double rank(const std::vector<double>& sorted, double p) {
  // Nearest rank: the smallest sample with at least p of all samples at or below it.
  size_t k = size_t(std::ceil(p * double(sorted.size())));
  return sorted[std::clamp<size_t>(k, 1, sorted.size()) - 1];
}
}  // namespace

Summary summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  s.p50 = rank(v, 0.50);
  s.p99 = rank(v, 0.99);
  return s;
}

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
                    {"p50", s.p50}, {"p99", s.p99}, {"unit", unit}};
  }
  j["metrics"] = metrics;
  j["not_measured"] = p.not_measured;
  j["samples"] = p.samples;
  j["extra"] = p.extra;
  return j;
}

}  // namespace vmfork::bench
