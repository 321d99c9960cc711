// results.md and the SVG plots (see report.h).
#include "bench/suite/report.h"

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "bench/suite/stats.h"

extern char** environ;

namespace vmfork::bench {

namespace {

std::string fmt(double v) {
  char b[64];
  if (v >= 1e9) std::snprintf(b, sizeof b, "%.3g", v);
  else if (v >= 100) std::snprintf(b, sizeof b, "%.0f", v);
  else if (v >= 10) std::snprintf(b, sizeof b, "%.1f", v);
  else std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// Bytes shown in MiB for readability.
double scale(const std::string& metric, double v) { return metric == "bytes_on_disk" ? v / (1 << 20) : v; }
std::string unit_label(const std::string& metric, const std::string& unit) {
  return metric == "bytes_on_disk" ? "MiB" : unit == "us" ? "µs" : unit;
}

Status write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::trunc);
  f << text;
  f.close();
  if (!f) return plain_error("write " + p.string() + " failed");
  return {};
}

// gnuplot string literal (single quotes; a quote doubled).
std::string q(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("''") : std::string(1, c);
  return r + "'";
}

}  // namespace

void add_ratios(nlohmann::json& results) {
  nlohmann::json ratios = nlohmann::json::object();
  const nlohmann::json* vf = nullptr;
  for (const auto& p : results["peers"])
    if (p["name"] == "vmfork") vf = &p;
  if (!vf) return;
  for (const auto& p : results["peers"]) {
    nlohmann::json r = nlohmann::json::object();
    for (const auto& [key, unit] : metric_units()) {
      if (!p["metrics"].contains(key) || !(*vf)["metrics"].contains(key)) continue;
      double base = (*vf)["metrics"][key]["median"].get<double>();
      if (base != 0) r[key] = p["metrics"][key]["median"].get<double>() / base;
    }
    ratios[p["name"].get<std::string>()] = r;
  }
  results["ratios"] = ratios;
}

std::string markdown_table(const nlohmann::json& results) {
  std::ostringstream o;
  const auto& peers = results["peers"];
  o << "Each cell: median (min-max, n repetitions) and, after x, the ratio of the medians to vmfork's.\n\n";
  o << "| metric |";
  for (const auto& p : peers) o << " " << p["name"].get<std::string>() << " |";
  o << "\n|---|";
  for (size_t i = 0; i < peers.size(); i++) o << "---|";
  o << "\n";
  for (const auto& [key, unit] : metric_units()) {
    o << "| " << key << " (" << unit_label(key, unit) << ") |";
    for (const auto& p : peers) {
      if (!p["metrics"].contains(key)) {
        o << " - |";
        continue;
      }
      const auto& m = p["metrics"][key];
      o << " " << fmt(scale(key, m["median"].get<double>())) << " (" << fmt(scale(key, m["min"].get<double>())) << "-"
        << fmt(scale(key, m["max"].get<double>())) << ", " << m["n"].get<size_t>() << ")";
      const auto& r = results["ratios"][p["name"].get<std::string>()];
      if (p["name"] != "vmfork" && r.contains(key)) o << " x" << fmt(r[key].get<double>());
      o << " |";
    }
    o << "\n";
  }
  // End-to-end latency percentiles (the table above shows the median).
  for (const std::string pct : {"p50", "p99"}) {
    o << "| job_us " << pct << " (µs) |";
    for (const auto& p : peers) {
      if (!p["metrics"].contains("job_us")) {
        o << " - |";
        continue;
      }
      const double v = p["metrics"]["job_us"][pct].get<double>();
      o << " " << fmt(v);
      const nlohmann::json* vf = nullptr;
      for (const auto& x : peers)
        if (x["name"] == "vmfork") vf = &x;
      if (p["name"] != "vmfork" && vf && (*vf)["metrics"].contains("job_us"))
        o << " x" << fmt(v / (*vf)["metrics"]["job_us"][pct].get<double>());
      o << " |";
    }
    o << "\n";
  }
  o << "\n";
  for (const auto& p : peers) {
    o << "- **" << p["name"].get<std::string>() << "**: " << p["what"].get<std::string>() << ".";
    if (!p["ran"].get<bool>()) o << " Not measured: " << p["reason"].get<std::string>() << ".";
    if (p["extra"].contains("deviation")) o << " Note: " << p["extra"]["deviation"].get<std::string>() << ".";
    o << "\n";
  }
  return o.str();
}

Result<std::vector<std::string>> write_plots(const nlohmann::json& results, const std::filesystem::path& out_dir) {
  // The script names its files relative to out_dir (gnuplot runs there), so the directory can be
  // moved or committed and re-plotted with `gnuplot plots.gp`.
  std::error_code ec;
  const auto dir = std::filesystem::absolute(out_dir, ec);
  if (ec) return Error{"absolute path of " + out_dir.string(), ec.value()};
  auto rel = [](const std::filesystem::path& p) { return p.filename().string(); };
  std::ostringstream gp;
  gp << "set terminal svg size 800,500 dynamic enhanced font 'sans,12' background rgb 'white'\n"
     << "set key bottom right\nset grid\n";
  std::vector<std::string> svgs;

  // Latency CDFs: job (end to end) and restore, one line per peer that has the metric.
  for (const std::string metric : {"job_us", "restore_us"}) {
    std::vector<std::string> plots;
    for (const auto& p : results["peers"]) {
      if (!p["samples"].contains(metric) || p["samples"][metric].empty()) continue;
      auto v = p["samples"][metric].get<std::vector<double>>();
      std::sort(v.begin(), v.end());
      std::ostringstream d;
      for (size_t i = 0; i < v.size(); i++) d << v[i] / 1000 << " " << double(i + 1) / double(v.size()) << "\n";
      const std::string name = p["name"].get<std::string>();
      const auto dat = dir / ("cdf_" + metric + "_" + name + ".dat");
      VF_TRY(write_file(dat, d.str()));
      plots.push_back(q(rel(dat)) + " using 1:2 with steps lw 2 title " + q(name));
    }
    if (plots.empty()) continue;
    const std::string svg = metric == "job_us" ? "latency_cdf_job.svg" : "latency_cdf_restore.svg";
    gp << "set output " << q(svg) << "\nset logscale x\nset xlabel 'ms'\nset ylabel 'fraction'\n"
       << "set title " << q(metric == "job_us" ? "End-to-end job latency (restore + busybox true + teardown)"
                                                : "Restore until the vCPU can run")
       << "\nplot ";
    for (size_t i = 0; i < plots.size(); i++) gp << (i ? ", " : "") << plots[i];
    gp << "\nunset logscale x\n";
    svgs.push_back(svg);
  }

  // Jobs/s against workers (medians).
  {
    std::vector<std::string> plots;
    for (const auto& p : results["peers"]) {
      std::ostringstream d;
      int rows = 0;
      for (int w : {1, 2}) {
        const std::string key = "jobs_per_s_" + std::to_string(w);
        if (!p["metrics"].contains(key)) continue;
        d << w << " " << p["metrics"][key]["median"].get<double>() << "\n";
        rows++;
      }
      if (!rows) continue;
      const std::string name = p["name"].get<std::string>();
      const auto dat = dir / ("jobs_per_s_" + name + ".dat");
      VF_TRY(write_file(dat, d.str()));
      plots.push_back(q(rel(dat)) + " using 1:2 with linespoints lw 2 pt 7 title " + q(name));
    }
    if (!plots.empty()) {
      gp << "set output " << q("jobs_per_s.svg")
         << "\nset logscale y\nset xlabel 'workers'\nset ylabel 'jobs/s (median)'\nset xtics 1\nset xrange [0.8:2.2]\n"
         << "set key top left\nset title 'Jobs per second against workers'\nplot ";
      for (size_t i = 0; i < plots.size(); i++) gp << (i ? ", " : "") << plots[i];
      gp << "\nunset logscale y\nset autoscale x\nset xtics autofreq\nset key bottom right\n";
      svgs.push_back("jobs_per_s.svg");
    }
  }

  // Bytes on disk against guest memory size.
  if (results.contains("disk_vs_mem") && !results["disk_vs_mem"].empty()) {
    std::ostringstream d;
    for (const auto& pt : results["disk_vs_mem"])
      d << pt["mem_mib"].get<double>() << " " << pt["vmfork_bytes"].get<double>() / (1 << 20) << " "
        << pt["raw_bytes"].get<double>() / (1 << 20) << "\n";
    const auto dat = dir / "disk_vs_mem.dat";
    VF_TRY(write_file(dat, d.str()));
    gp << "set output " << q("disk_vs_mem.svg")
       << "\nset logscale xy\nset xlabel 'guest memory (MiB)'\nset ylabel 'bytes on disk (MiB)'\nset key top left\n"
       << "set title 'Snapshot bytes on disk against guest memory size'\nplot " << q(rel(dat))
       << " using 1:3 with linespoints lw 2 pt 7 title 'raw image (firecracker-style, naive)', " << q(rel(dat))
       << " using 1:2 with linespoints lw 2 pt 7 title 'vmfork page store'\nunset logscale xy\n";
    svgs.push_back("disk_vs_mem.svg");
  }

  const auto script = dir / "plots.gp";
  VF_TRY(write_file(script, gp.str()));
  std::string gnuplot = "/usr/bin/gnuplot", s = "plots.gp", cwd = dir.string();
  char* argv[] = {gnuplot.data(), s.data(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  pid_t pid;
  int e = posix_spawn(&pid, gnuplot.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) return Error{"posix_spawn " + gnuplot + " (apt-get install gnuplot-nox)", e};
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return errno_error("waitpid gnuplot");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return plain_error("gnuplot " + (dir / s).string() + " failed");
  return svgs;
}

}  // namespace vmfork::bench
