// vmfork, Firecracker-style and naive restore of one template (see vm_peers.h).
#include "bench/suite/vm_peers.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <memory>
#include <thread>

#include "bench/suite/private_memory.h"
#include "common/fd.h"
#include "engine/guest_job.h"
#include "engine/restore.h"
#include "engine/template.h"
#include "engine/template_image.h"
#include "vmm/devices/channel.h"

namespace vmfork::bench {

namespace {

using Clock = std::chrono::steady_clock;
double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

enum class Kind { kVmfork, kFirecracker, kNaive };

uint64_t allocated_bytes(const std::filesystem::path& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 ? uint64_t(st.st_blocks) * 512 : 0;
}

// Writes [data, data+len) to `path` densely with write(2), then fsync(2): what a Firecracker
// snapshot of guest memory does (one file of the whole memory). Returns microseconds.
Result<double> write_raw(const std::filesystem::path& path, const uint8_t* data, uint64_t len) {
  const auto t = Clock::now();
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return errno_error("open " + path.string());
  for (uint64_t off = 0; off < len;) {
    ssize_t n = write(fd.get(), data + off, std::min<uint64_t>(1 << 20, len - off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error("write " + path.string());
    off += uint64_t(n);
  }
  if (fsync(fd.get()) != 0) return errno_error("fsync " + path.string());
  return us_since(t);
}

// The template's guest memory as the memfd holds it, written to `path`.
Result<double> dump_image(const engine::TemplateImage& img, const std::filesystem::path& path) {
  void* p = mmap(nullptr, img.mem_bytes(), PROT_READ, MAP_SHARED, img.memory_fd(), 0);
  if (p == MAP_FAILED) return errno_error("mmap template memfd");
  auto r = write_raw(path, static_cast<const uint8_t*>(p), img.mem_bytes());
  munmap(p, img.mem_bytes());
  return r;
}

engine::TemplateSpec template_spec(const std::string& name, uint64_t mem_bytes) {
  engine::TemplateSpec s;
  s.name = name;
  s.mem_bytes = mem_bytes;
  return s;  // kernel-ready: the job's program is given to each clone
}

struct Env {
  const SuiteOptions* opt;
  std::shared_ptr<const engine::TemplateImage> image;
  Fd raw;  // the raw image, O_RDONLY
};

// Guest memory for one clone of `kind`, then its state restored.
Result<engine::Clone> restore(const Env& env, Kind kind) {
  if (kind == Kind::kVmfork) return engine::restore_clone(env.image);
  const uint64_t bytes = env.image->mem_bytes();
  if (kind == Kind::kFirecracker) {
    VF_ASSIGN(vmm::GuestMemory mem, vmm::GuestMemory::map_private(env.raw.get(), bytes));
    return engine::restore_clone_over(env.image, std::move(mem));
  }
  VF_ASSIGN(vmm::GuestMemory mem, vmm::GuestMemory::create_anonymous(bytes));
  for (uint64_t off = 0; off < bytes;) {
    ssize_t n = pread(env.raw.get(), mem.host() + off, std::min<uint64_t>(8 << 20, bytes - off), off_t(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_error("pread raw image");
    off += uint64_t(n);
  }
  return engine::restore_clone_over(env.image, std::move(mem));
}

// Per-phase microseconds of one job, for "where the time goes" (extra.phases_us).
struct Phases {
  double map = 0, vm = 0, state = 0, load = 0, run = 0, teardown = 0;
};

Status run_job(const Env& env, engine::Clone& c, Phases* ph = nullptr) {
  vmm::StringInput in("");
  engine::CloneJob job;
  job.program = env.opt->program;
  job.argv = env.opt->argv;
  job.stdin_source = &in;
  job.timeout = std::chrono::seconds(10);
  VF_ASSIGN(auto r, engine::run_job_in(c, job));
  if (r.reason != engine::ExitReason::kExited || r.exit_code != 0)
    return plain_error("job in clone ended with " + std::string(engine::reason_name(r.reason)) + ", exit " +
                       std::to_string(r.exit_code));
  if (ph) {
    ph->map = c.timings.map_us;
    ph->vm = c.timings.vm_us;
    ph->state = c.timings.state_us;
    ph->load = r.timings.load_us;
    ph->run = r.timings.run_us;
  }
  return {};
}

// One end-to-end job; returns {restore_us, job_us}.
Result<std::pair<double, double>> one_job(const Env& env, Kind kind, Phases* ph = nullptr) {
  const auto t0 = Clock::now();
  VF_ASSIGN(engine::Clone c, restore(env, kind));
  const double restore_us = us_since(t0);
  VF_TRY(run_job(env, c, ph));
  const auto t_down = Clock::now();
  c.machine.reset();  // teardown counts
  if (ph) ph->teardown = us_since(t_down);
  return std::make_pair(restore_us, us_since(t0));
}

// Jobs per second of `workers` threads restoring and running for `seconds`.
Result<double> throughput(const Env& env, Kind kind, int workers, double seconds) {
  std::atomic<uint64_t> done{0};
  std::atomic<bool> failed{false};
  std::string why;
  std::mutex why_mu;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; w++)
    threads.emplace_back([&] {
      while (!failed && Clock::now() < end) {
        auto r = one_job(env, kind);
        if (!r.ok()) {
          std::lock_guard l(why_mu);
          why = r.error().message();
          failed = true;
          return;
        }
        done++;
      }
    });
  for (auto& t : threads) t.join();
  if (failed) return plain_error(why);
  return double(done) / (us_since(t0) / 1e6);
}

// Private memory added per live clone that ran its job.
Result<double> private_per_clone(const Env& env, Kind kind, int n) {
  std::vector<engine::Clone> clones;
  const double before = private_kib();
  for (int i = 0; i < n; i++) {
    VF_ASSIGN(engine::Clone c, restore(env, kind));
    VF_TRY(run_job(env, c));
    clones.push_back(std::move(c));
  }
  return (private_kib() - before) / n;
}

const char* kind_name(Kind k) {
  return k == Kind::kVmfork ? "vmfork" : k == Kind::kFirecracker ? "firecracker-style" : "naive";
}

// Latency, throughput and memory of the three peers, interleaved (vmfork, firecracker-style,
// naive, vmfork, ...) so that a shared host's changing load falls on all of them alike. A
// peer's failure becomes its reason and drops it from the rest of the run.
void measure_all(const Env& env, const std::array<PeerResult*, 3>& peers) {
  const SuiteOptions& opt = *env.opt;
  const Kind kinds[3] = {Kind::kVmfork, Kind::kFirecracker, Kind::kNaive};
  bool alive[3] = {true, true, true};
  auto fail = [&](int k, const std::string& step, const Error& e) {
    alive[k] = false;
    peers[k]->ran = false;
    peers[k]->reason = step + ": " + e.message();
    opt.say(std::string(kind_name(kinds[k])) + ": " + peers[k]->reason);
  };
  std::map<std::string, std::vector<double>> phases[3];
  // Naive restore reads the whole image per clone: it runs every 5th round only.
  opt.say("vmfork, firecracker-style, naive: " + std::to_string(opt.latency_reps) + " jobs each (naive " +
          std::to_string(opt.latency_reps / 5) + "), one at a time, interleaved");
  for (int i = 0; i < opt.latency_reps + 1; i++) {
    for (int k = 0; k < 3; k++) {
      if (!alive[k] || (kinds[k] == Kind::kNaive && i % 5 != 0)) continue;
      Phases ph;
      auto r = one_job(env, kinds[k], &ph);
      if (!r.ok()) {
        fail(k, "job", r.error());
        continue;
      }
      if (i == 0) continue;  // warm-up: first-touch of the host's page cache and KVM's caches
      peers[k]->samples["restore_us"].push_back(r->first);
      peers[k]->samples["job_us"].push_back(r->second);
      using P = std::pair<const char*, double>;
      for (const P& x : {P{"map", ph.map}, P{"vm_vcpu", ph.vm}, P{"state", ph.state}, P{"load", ph.load},
                         P{"run", ph.run}, P{"teardown", ph.teardown}})
        phases[k][x.first].push_back(x.second);
    }
  }
  // Medians of the phases of the jobs above (engine RestoreTimings and RunResult::timings; for
  // naive and firecracker-style, getting memory is inside restore_us, not in "map").
  for (int k = 0; k < 3; k++)
    for (auto& [name, v] : phases[k]) peers[k]->extra["phases_us_median"][name] = summarize(v).median;
  opt.say("jobs/s with 1 and 2 workers, " + std::to_string(opt.throughput_rounds) + " rounds of " +
          std::to_string(opt.throughput_round_s) + " s each, interleaved");
  for (int round = 0; round < opt.throughput_rounds; round++)
    for (int workers : {1, 2})
      for (int k = 0; k < 3; k++) {
        if (!alive[k]) continue;
        auto r = throughput(env, kinds[k], workers, opt.throughput_round_s);
        if (!r.ok()) {
          fail(k, "throughput", r.error());
          continue;
        }
        peers[k]->samples["jobs_per_s_" + std::to_string(workers)].push_back(*r);
      }
  for (int k = 0; k < 3; k++) {
    if (!alive[k]) continue;
    // Naive clones hold the whole image privately: fewer at once spare a shared host's memory.
    const int n = kinds[k] == Kind::kNaive ? std::min(opt.memory_clones, 4) : opt.memory_clones;
    opt.say(std::string(kind_name(kinds[k])) + ": private memory of " + std::to_string(n) + " live clones");
    auto m = private_per_clone(env, kinds[k], n);
    if (!m.ok()) {
      fail(k, "private memory", m.error());
      continue;
    }
    peers[k]->samples["private_kib_per_clone"].push_back(*m);
    peers[k]->extra["private_memory_clones"] = n;
    peers[k]->ran = true;
  }
}

}  // namespace

SuiteOptions SuiteOptions::defaults(bool quick) {
  SuiteOptions o;
  o.quick = quick;
  if (quick) {
    o.latency_reps = 20;
    o.create_reps = 2;
    o.throughput_rounds = 2;
    o.throughput_round_s = 0.4;
    o.memory_clones = 4;
    o.qemu_reps = 2;
    o.disk_mem_sizes = {64ull << 20, 128ull << 20};  // small: --quick is a smoke test
  } else {
    o.disk_mem_sizes = {64ull << 20, 256ull << 20, 1024ull << 20};
  }
  return o;
}

Result<DiskPoint> disk_point(const SuiteOptions& opt, uint64_t mem_bytes) {
  DiskPoint d;
  d.mem_bytes = mem_bytes;
  const auto dir = opt.work_dir / ("disk-" + std::to_string(mem_bytes >> 20));
  { std::error_code e_; std::filesystem::remove_all(dir, e_); }
  VF_ASSIGN(auto store, snapshot::PageStore::open(dir / "store"));
  VF_TRY(engine::create_template(template_spec("disk", mem_bytes), *store));
  VF_ASSIGN(auto stats, store->stats());
  d.vmfork_bytes = stats.bytes_on_disk;
  VF_ASSIGN(auto img, engine::TemplateImage::load(*store, "disk"));
  VF_TRY(dump_image(*img, dir / "raw.img"));
  d.raw_bytes = allocated_bytes(dir / "raw.img");
  { std::error_code e_; std::filesystem::remove_all(dir, e_); }
  return d;
}

Result<std::vector<PeerResult>> run_vm_peers(const SuiteOptions& opt) {
  PeerResult vf{"vmfork", "the store's ready-to-map memory image of the page-store template (sparse file, checked), MAP_PRIVATE per clone"};
  PeerResult fc{"firecracker-style", "whole raw memory image in one file, MAP_PRIVATE per clone, same state restore"};
  PeerResult nv{"naive", "raw memory image pread into fresh anonymous memory per clone, same state restore"};
  const std::string mib = std::to_string(opt.mem_bytes >> 20) + " MiB";

  // Snapshot creation: vmfork = Machine::save + PageStore::put (hash, zstd, write, fsync) into a
  // fresh store; raw = Machine::save + the whole memory written densely and fsynced.
  std::unique_ptr<snapshot::PageStore> store;
  for (int i = 0; i < opt.create_reps; i++) {
    opt.say("vmfork: template create " + std::to_string(i + 1) + "/" + std::to_string(opt.create_reps) + " (" + mib + ")");
    const auto dir = opt.work_dir / ("store-" + std::to_string(i));
    { std::error_code e_; std::filesystem::remove_all(dir, e_); }
    VF_ASSIGN(store, snapshot::PageStore::open(dir));
    VF_ASSIGN(auto c, engine::create_template(template_spec("bench", opt.mem_bytes), *store));
    vf.samples["snapshot_create_us"].push_back(c.save_us + c.store_us);
    VF_ASSIGN(auto st, store->stats());
    vf.samples["bytes_on_disk"].push_back(double(st.bytes_on_disk));
    vf.extra["accel"] = c.accel;
    vf.extra["pages_total"] = c.put.pages_total;
    vf.extra["pages_zero"] = c.put.pages_zero;
    if (i + 1 < opt.create_reps) {
      store.reset();
      { std::error_code e_; std::filesystem::remove_all(dir, e_); }
    }
  }
  {
    opt.say("raw image: freeze + write " + mib + " densely, " + std::to_string(opt.create_reps) + " times");
    VF_ASSIGN(auto frozen, engine::freeze_template(template_spec("raw", opt.mem_bytes)));
    auto& m = frozen.machine->memory();
    for (int i = 0; i < opt.create_reps; i++) {
      const auto path = opt.work_dir / "raw-create.img";
      VF_ASSIGN(double us, write_raw(path, m.host(), m.size()));
      double bytes = double(allocated_bytes(path));
      { std::error_code e_; std::filesystem::remove(path, e_); }
      for (auto* p : {&fc, &nv}) {
        p->samples["snapshot_create_us"].push_back(frozen.save_us + us);
        p->samples["bytes_on_disk"].push_back(bytes);
      }
    }
  }

  Env env;
  env.opt = &opt;
  VF_ASSIGN(env.image, engine::TemplateImage::load(*store, "bench"));
  const auto raw_path = opt.work_dir / "raw.img";
  VF_TRY(dump_image(*env.image, raw_path));
  env.raw = Fd(open(raw_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (env.raw.get() < 0) return errno_error("open " + raw_path.string());
  vf.extra["materialize_us"] = env.image->materialize_us();

  measure_all(env, {&vf, &fc, &nv});
  if (!vf.ran) return plain_error("vmfork itself: " + vf.reason);
  for (auto* p : {&fc, &nv}) p->extra["raw_image_in_page_cache"] = true;
  return std::vector<PeerResult>{std::move(vf), std::move(fc), std::move(nv)};
}

}  // namespace vmfork::bench
