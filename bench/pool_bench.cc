// Benchmarks of copy-on-write restore and the warm pool (issue: copy-on-write restore and a warm
// pool):
//   Restore/<template>     restore_clone from a materialized template: p50/p99 of the phases
//                          (map, VM + vCPU, state) and of restore + first guest exit (the clone
//                          resumes and runs until its first doorbell, so its first instruction
//                          has run).
//   RestoreTeardown/<template>  one restore and one teardown (the Machine destroyed), each as
//                          wall and thread CPU time, p50/p99: what a refill thread spends.
//   PoolAcquire/<mode>     WarmPool: p50/p99 of taking a ready clone for a job.
//   Reset                  reset_clone after a busybox echo job: p50/p99.
//   IdleCloneMemory        private memory (Private_Clean + Private_Dirty of /proc/self/smaps_rollup)
//                          added per idle restored clone and per clone after a job, in KiB; and
//                          the guest memory alone (pagemap): private pages per clone idle, after
//                          a job and after a reset, beside the pages whose bytes differ from
//                          the template's (a private page that does not differ was written
//                          without a change). shared_program:1 maps a kernel-ready job's
//                          program from an engine::ProgramCache as pools do; 0 copies it in.
//   JobPath                one trivial job's path through a reset-mode clone of "cat", piece by
//                          piece (issue 11, docs/performance.md "Where a job's time goes"): the
//                          request parsed, stdin written (run_job_in's load), KVM_RUN entered to
//                          the guest's exit_group (the host's TSC before run_job_in against the
//                          guest's own tsc_exit stamp, same TSC on this host, checked per job),
//                          exit_group back to the host, the response serialized, and the reset
//                          off the path; with the VM exits per job. memfd:0 maps the store's
//                          image (the default), memfd:1 a private memfd decoded from the packs.
// Templates: "base" (kernel-ready) and "cat" (busybox cat frozen at its first stdin read), 256
// MiB each, in a temporary store under $VMFORK_BENCH_DIR (default /var/tmp/vmfork-bench).
// Figures are counters; docs/performance.md records a run. Needs /dev/kvm.
#include <benchmark/benchmark.h>
#include <sys/mman.h>
#include <time.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "bench/suite/private_memory.h"
#include "common/timing.h"
#include "engine/guest_job.h"
#include "engine/restore.h"
#include "engine/template.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "pool/protocol.h"
#include "pool/warm_pool.h"

using namespace vmfork;
using vmfork::bench::private_kib;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::filesystem::path bench_dir() {
  const char* d = getenv("VMFORK_BENCH_DIR");
  return std::filesystem::path(d && *d ? d : "/var/tmp/vmfork-bench") / "pool";
}

// Templates made once per process.
std::shared_ptr<const engine::TemplateImage> image(const std::string& name,
                                                   engine::MemorySource src = engine::MemorySource::kStoreImage) {
  static std::unique_ptr<snapshot::PageStore> store;
  static std::map<std::pair<std::string, engine::MemorySource>, std::shared_ptr<const engine::TemplateImage>> images;
  if (!store) {
    std::filesystem::remove_all(bench_dir());
    auto s = snapshot::PageStore::open(bench_dir());
    if (!s.ok()) return nullptr;
    store = std::move(s).value();
    engine::TemplateSpec base;
    base.name = "base";
    engine::TemplateSpec cat;
    cat.name = "cat";
    cat.program = "/bin/busybox";
    cat.argv = {"busybox", "cat"};
    cat.env = engine::default_env();
    for (auto* spec : {&base, &cat})
      if (!engine::create_template(*spec, *store).ok()) return nullptr;
  }
  auto& img = images[{name, src}];
  if (!img) {
    auto r = engine::TemplateImage::load(*store, name, src);
    if (r.ok()) img = *r;
  }
  return img;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

void report(benchmark::State& state, const std::string& what, const std::vector<double>& us) {
  state.counters[what + "_p50_us"] = pct(us, 0.50);
  state.counters[what + "_p99_us"] = pct(us, 0.99);
}

engine::CloneJob echo_job(vmm::StringInput* in) {
  engine::CloneJob job;
  job.program = "/bin/busybox";
  job.argv = {"busybox", "echo", "hi"};
  job.stdin_source = in;
  return job;
}

void Restore(benchmark::State& state, const std::string& name) {
  auto img = image(name);
  if (!img) return state.SkipWithError("template setup failed");
  std::vector<double> map, vm, st, total, first_exit;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto c = engine::restore_clone(img);
    if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
    map.push_back(c->timings.map_us);
    vm.push_back(c->timings.vm_us);
    st.push_back(c->timings.state_us);
    total.push_back(c->timings.total_us);
    // Resume until the first VM exit: the stdin-wait clone reads EOF and cat exits; the
    // kernel-ready clone needs a job, so it is given busybox true.
    vmm::StringInput in("");
    engine::CloneJob job;
    job.stdin_source = &in;
    if (name == "base") {
      job.program = "/bin/busybox";
      job.argv = {"busybox", "true"};
    }
    auto r = engine::run_job_in(*c, job);
    if (!r.ok()) return state.SkipWithError(r.error().message().c_str());
    first_exit.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  report(state, "map", map);
  report(state, "vm", vm);
  report(state, "state", st);
  report(state, "restore", total);
  report(state, "restore_plus_job", first_exit);
}
BENCHMARK_CAPTURE(Restore, base, std::string("base"))->Iterations(200)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Restore, cat, std::string("cat"))->Iterations(200)->Unit(benchmark::kMicrosecond);

// Wall and thread CPU time of one restore and one teardown, each as a refill thread does them:
// time a refill thread spends off the CPU (sleeping in the kernel) is time another refill thread
// can use, so wall/cpu says whether more refill threads than CPUs can help.
double thread_cpu_us() { return double(thread_cpu_ns()) / 1e3; }

void RestoreTeardown(benchmark::State& state, const std::string& name) {
  auto img = image(name);
  if (!img) return state.SkipWithError("template setup failed");
  std::vector<double> restore_wall, restore_cpu, teardown_wall, teardown_cpu;
  for (auto _ : state) {
    auto t0 = Clock::now();
    double c0 = thread_cpu_us();
    auto c = engine::restore_clone(img);
    if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
    restore_wall.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    restore_cpu.push_back(thread_cpu_us() - c0);
    t0 = Clock::now();
    c0 = thread_cpu_us();
    c->machine.reset();
    teardown_wall.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    teardown_cpu.push_back(thread_cpu_us() - c0);
  }
  report(state, "restore_wall", restore_wall);
  report(state, "restore_cpu", restore_cpu);
  report(state, "teardown_wall", teardown_wall);
  report(state, "teardown_cpu", teardown_cpu);
}
BENCHMARK_CAPTURE(RestoreTeardown, base, std::string("base"))->Iterations(200)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(RestoreTeardown, cat, std::string("cat"))->Iterations(200)->Unit(benchmark::kMicrosecond);

void PoolAcquire(benchmark::State& state) {
  auto img = image("base");
  if (!img) return state.SkipWithError("template setup failed");
  pool::PoolOptions opts{4, state.range(0) ? pool::Mode::kReset : pool::Mode::kFresh};
  auto p = pool::WarmPool::create(img, opts);
  if (!p.ok()) return state.SkipWithError(p.error().message().c_str());
  std::vector<double> acquire, job_us;
  for (auto _ : state) {
    (*p)->wait_ready(5s);  // as a pool under moderate load: a clone is ready
    vmm::StringInput in("");
    pool::PoolJobTimings t;
    auto t0 = Clock::now();
    auto r = (*p)->run(echo_job(&in), 5s, &t);
    if (!r.ok()) return state.SkipWithError(r.error().message().c_str());
    job_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    acquire.push_back(t.acquire_us);
  }
  report(state, "acquire", acquire);
  report(state, "echo_job", job_us);
}
BENCHMARK(PoolAcquire)->ArgName("reset")->Arg(0)->Arg(1)->Iterations(200)->Unit(benchmark::kMicrosecond);

void Reset(benchmark::State& state) {
  auto img = image("base");
  if (!img) return state.SkipWithError("template setup failed");
  auto c = engine::restore_clone(img);
  if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
  std::vector<double> reset;
  for (auto _ : state) {
    vmm::StringInput in("");
    if (!engine::run_job_in(*c, echo_job(&in)).ok()) return state.SkipWithError("job failed");
    auto t0 = Clock::now();
    if (!engine::reset_clone(*c).ok()) return state.SkipWithError("reset failed");
    reset.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  report(state, "reset", reset);
}
BENCHMARK(Reset)->Iterations(200)->Unit(benchmark::kMicrosecond);

// Pages of `c`'s guest memory that are private (pagemap) and, of those, how many differ from the
// template's bytes: a private page with the template's bytes was written without a change.
struct PrivatePages {
  double priv = 0, changed = 0;
};
PrivatePages private_pages(engine::Clone& c) {
  PrivatePages r;
  auto& mem = c.machine->memory();
  auto n = mem.private_resident_pages();
  r.priv = n.ok() ? double(*n) : -1;
  void* file = mmap(nullptr, mem.size(), PROT_READ, MAP_PRIVATE, c.image->memory_fd(), 0);
  if (file == MAP_FAILED) return r;
  // Only pages that differ can be private ones, so comparing every page finds them all.
  const uint8_t* f = static_cast<const uint8_t*>(file);
  for (uint64_t at = 0; at < mem.size(); at += 4096)
    if (std::memcmp(mem.host() + at, f + at, 4096) != 0) r.changed++;
  munmap(file, mem.size());
  return r;
}

void IdleCloneMemory(benchmark::State& state) {
  auto img = image(state.range(0) ? "cat" : "base");
  if (!img) return state.SkipWithError("template setup failed");
  const int n = 20;
  engine::ProgramCache programs;
  engine::ProgramCache* shared = state.range(1) ? &programs : nullptr;
  for (auto _ : state) {
    std::vector<engine::Clone> clones;
    double before = private_kib();
    for (int i = 0; i < n; i++) {
      auto c = engine::restore_clone(img);
      if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
      clones.push_back(std::move(c).value());
    }
    double idle = private_kib();
    PrivatePages idle_pages, job_pages, reset_pages;
    for (auto& c : clones) {
      auto p = private_pages(c);
      idle_pages.priv += p.priv / n;
      idle_pages.changed += p.changed / n;
    }
    for (auto& c : clones) {
      vmm::StringInput in("");
      engine::CloneJob job = echo_job(&in);
      if (state.range(0)) job = engine::CloneJob{};
      job.stdin_source = &in;
      if (!engine::run_job_in(c, job, shared).ok()) return state.SkipWithError("job failed");
    }
    double after = private_kib();
    for (auto& c : clones) {
      auto p = private_pages(c);
      job_pages.priv += p.priv / n;
      job_pages.changed += p.changed / n;
    }
    for (auto& c : clones) {
      if (!engine::reset_clone(c).ok()) return state.SkipWithError("reset failed");
      auto p = private_pages(c);
      reset_pages.priv += p.priv / n;
      reset_pages.changed += p.changed / n;
    }
    state.counters["idle_private_KiB_per_clone"] = (idle - before) / n;
    state.counters["after_job_private_KiB_per_clone"] = (after - before) / n;
    // Guest memory alone (pagemap), per clone: private pages and those that differ from the
    // template (after a reset that copies back, the copies stay private with the template's bytes).
    state.counters["idle_guest_private_pages"] = idle_pages.priv;
    state.counters["idle_guest_changed_pages"] = idle_pages.changed;
    state.counters["after_job_guest_private_pages"] = job_pages.priv;
    state.counters["after_job_guest_changed_pages"] = job_pages.changed;
    state.counters["after_reset_guest_private_pages"] = reset_pages.priv;
    state.counters["after_reset_guest_changed_pages"] = reset_pages.changed;
  }
}
BENCHMARK(IdleCloneMemory)
    ->ArgNames({"stdin_wait", "shared_program"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({1, 0})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void JobPath(benchmark::State& state) {
  auto img = image("cat", state.range(0) ? engine::MemorySource::kMemfd : engine::MemorySource::kStoreImage);
  if (!img) return state.SkipWithError("template setup failed");
  auto c = engine::restore_clone(img);
  if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
  const double tsc_per_us = double(c->tsc_khz) / 1000.0;
  const std::string line = R"({"id":7,"op":"run","template":"cat","stdin":"aGkK","timeout_ms":5000})";
  std::vector<double> parse, load, to_exit, from_exit, run, serialize, reset, exits;
  uint64_t unordered = 0;
  for (auto _ : state) {
    auto t_parse = Clock::now();
    nlohmann::json id;
    auto req = pool::parse_request(line, &id);
    if (!req.ok()) return state.SkipWithError(req.error().message().c_str());
    parse.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t_parse).count());
    vmm::StringInput in(req->stdin_data);
    engine::CloneJob job;
    job.stdin_source = &in;
    const uint64_t tsc0 = __rdtsc();
    auto r = engine::run_job_in(*c, job);
    const uint64_t tsc1 = __rdtsc();
    if (!r.ok() || r->stdout_data != "hi\n") return state.SkipWithError("job failed");
    const uint64_t tsc_exit = c->machine->memory().at<abi::Channel>(abi::kChannelGpa)->tsc_exit;
    load.push_back(r->timings.load_us);
    run.push_back(r->timings.run_us);
    exits.push_back(double(r->host.vm_exits));
    if (tsc0 < tsc_exit && tsc_exit < tsc1 && tsc_per_us > 0) {
      // KVM_RUN is entered load_us after tsc0 (to within the clock reads between them).
      to_exit.push_back(double(tsc_exit - tsc0) / tsc_per_us - r->timings.load_us);
      from_exit.push_back(double(tsc1 - tsc_exit) / tsc_per_us);
    } else {
      unordered++;  // the guest's TSC is not the host's: no split
    }
    auto t_ser = Clock::now();
    std::string out = pool::serialize_result(id, *r, pool::JobTimings{});
    serialize.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t_ser).count());
    benchmark::DoNotOptimize(out);
    auto t_reset = Clock::now();
    if (!engine::reset_clone(*c).ok()) return state.SkipWithError("reset failed");
    reset.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t_reset).count());
  }
  report(state, "parse", parse);
  report(state, "stdin_written", load);
  report(state, "run_entered_to_guest_exit", to_exit);
  report(state, "guest_exit_to_host_done", from_exit);
  report(state, "run", run);
  report(state, "serialize", serialize);
  report(state, "reset_offpath", reset);
  report(state, "vm_exits", exits);
  state.counters["tsc_unordered_jobs"] = double(unordered);
}
BENCHMARK(JobPath)->ArgName("memfd")->Arg(0)->Arg(1)->Iterations(500)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
