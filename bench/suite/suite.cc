// Runs every peer and writes the outputs (see suite.h).
#include "bench/suite/suite.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include "bench/suite/host_peers.h"
#include "bench/suite/qemu_peer.h"
#include "bench/suite/report.h"
#include "bench/suite/vm_peers.h"
#include "engine/guest_job.h"
#include "engine/kernel_image.h"
#include "vmm/accel.h"

namespace vmfork::bench {

namespace {

std::string first_line_with(const char* file, const std::string& key) {
  std::ifstream f(file);
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) {
      auto c = line.find(':');
      return c == std::string::npos ? line : line.substr(c + 1 + (c + 1 < line.size() && line[c + 1] == ' '));
    }
  return "";
}

nlohmann::json machine() {
  nlohmann::json m;
  utsname u{};
  uname(&u);
  m["kernel"] = std::string(u.sysname) + " " + u.release;
  m["cpu"] = first_line_with("/proc/cpuinfo", "model name");
  m["cpus"] = std::thread::hardware_concurrency();
  std::string mem = first_line_with("/proc/meminfo", "MemTotal");
  while (!mem.empty() && mem[0] == ' ') mem.erase(0, 1);
  m["memory"] = mem;
  auto kvm = engine::shared_kvm();
  if (kvm.ok()) {
    auto probe = vmm::probe_accel(**kvm);
    // The peers measure VM creation from a host with no VM of ours: drop the probe's now.
    vmm::release_probe_vm();
    if (probe.ok()) {
      auto pick = vmm::choose_accel(vmm::AccelRequest::kAuto, *probe);
      if (pick.ok()) m["accel"] = vmm::accel_name(*pick);
    }
  }
  std::ifstream la("/proc/loadavg");
  std::string l1;
  la >> l1;
  m["loadavg_1min_at_start"] = l1;
  return m;
}

std::string now_utc() {
  char b[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

}  // namespace

Result<nlohmann::json> run_suite(const SuiteOptions& opt, const std::filesystem::path& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return Error{"mkdir " + out_dir.string(), ec.value()};
  std::filesystem::remove_all(opt.work_dir, ec);
  std::filesystem::create_directories(opt.work_dir, ec);
  if (ec) return Error{"mkdir " + opt.work_dir.string(), ec.value()};
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code e;
      std::filesystem::remove_all(dir, e);
    }
  } cleanup{opt.work_dir};

  const auto t0 = std::chrono::steady_clock::now();
  nlohmann::json r;
  r["date"] = now_utc();
  r["quick"] = opt.quick;
  r["machine"] = machine();
  r["guest_mem_bytes"] = opt.mem_bytes;
  std::string job;
  for (const auto& a : opt.argv) job += (job.empty() ? "" : " ") + a;
  r["job"] = job + " (" + opt.program + ")";

  opt.say("machine: " + r["machine"].dump());
  VF_ASSIGN(auto vm_peers, run_vm_peers(opt));
  std::vector<PeerResult> peers = std::move(vm_peers);
  peers.push_back(run_bare_process(opt));
  peers.push_back(run_kvm_floor(opt));
  {
    const auto kernel = opt.work_dir / "vmfork-guest-kernel.elf";
    auto k = engine::embedded_kernel();
    std::ofstream f(kernel, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(k.data()), std::streamsize(k.size()));
    f.close();
    if (!f) return plain_error("write " + kernel.string() + " failed");
    peers.push_back(run_qemu(opt, kernel));
  }
  nlohmann::json disk = nlohmann::json::array();
  for (uint64_t mem : opt.disk_mem_sizes) {
    opt.say("bytes on disk: template of " + std::to_string(mem >> 20) + " MiB");
    VF_ASSIGN(auto d, disk_point(opt, mem));
    disk.push_back({{"mem_mib", double(mem >> 20)}, {"vmfork_bytes", double(d.vmfork_bytes)},
                    {"raw_bytes", double(d.raw_bytes)}});
  }
  r["disk_vs_mem"] = disk;
  r["peers"] = nlohmann::json::array();
  for (const auto& p : peers) r["peers"].push_back(to_json(p));
  add_ratios(r);
  r["suite_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  opt.say("writing plots (gnuplot)");
  auto svgs = write_plots(r, out_dir);
  if (svgs.ok()) r["plots"] = *svgs;
  else r["plots_error"] = svgs.error().message();

  {
    std::ofstream f(out_dir / "results.json", std::ios::trunc);
    f << r.dump(2) << "\n";
    f.close();
    if (!f) return plain_error("write " + (out_dir / "results.json").string() + " failed");
  }
  {
    std::ofstream f(out_dir / "results.md", std::ios::trunc);
    f << markdown_table(r);
    f.close();
    if (!f) return plain_error("write " + (out_dir / "results.md").string() + " failed");
  }
  if (!svgs.ok()) return svgs.error();
  return r;
}

}  // namespace vmfork::bench
