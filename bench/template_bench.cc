// Benchmarks of templates and the page store on real guests (issue: templates and snapshots):
//   TemplateCreate/<MiB>  freeze a guest of 256 MiB or 2 GiB running tests/programs/working_set
//                         (48 MiB touched), then time PageStore::put of it and report bytes on
//                         disk, against writing the same memory image raw with write() + fsync
//                         in the same run.
//   TemplateDedup         10 templates of the same guest kernel with different programs, each
//                         frozen at its first stdin read: how much the store grows per template.
//   TemplateReadBack      PageStore::read_memory (io_uring reads, zstd, XXH3-128 of every page)
//                         of the 2 GiB template: GiB/s of stored pages and of guest memory.
//   TemplateLoad/<src>    engine::TemplateImage::load of the 256 MiB working_set template (48 MiB
//                         touched), as every process that clones it does once (issue 11):
//                         image = the store's mapped image (built once, before timing), memfd =
//                         decoding the packs into a private memfd as before images existed.
// Figures are counters; docs/performance.md records a run. Needs /dev/kvm. The store lives in
// $VMFORK_BENCH_DIR (default /var/tmp/vmfork-bench), on a real disk, and is removed afterwards.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/guest_job.h"
#include "engine/template.h"
#include "engine/template_image.h"

using namespace vmfork;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kPrograms = VMFORK_TEST_PROGRAMS;

std::filesystem::path bench_dir() {
  const char* d = getenv("VMFORK_BENCH_DIR");
  return d && *d ? d : "/var/tmp/vmfork-bench";
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

engine::TemplateSpec working_set_spec(const std::string& name, uint64_t mem_bytes) {
  engine::TemplateSpec s;
  s.name = name;
  s.mem_bytes = mem_bytes;
  s.program = kPrograms + "/working_set.glibc";
  s.argv = {s.program, "48"};
  s.env = engine::default_env();
  return s;
}

std::unique_ptr<snapshot::PageStore> fresh_store(benchmark::State& state, const std::string& sub) {
  auto dir = bench_dir() / sub;
  std::filesystem::remove_all(dir);
  auto s = snapshot::PageStore::open(dir);
  if (!s.ok()) state.SkipWithError(s.error().message().c_str());
  return s.ok() ? std::move(s).value() : nullptr;
}

// Raw baseline: the whole image with write(2) in 1 MiB chunks, then fsync.
double raw_write_seconds(const std::filesystem::path& path, std::span<const uint8_t> image) {
  auto t = Clock::now();
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  for (size_t off = 0; off < image.size();) {
    ssize_t n = write(fd, image.data() + off, std::min<size_t>(1 << 20, image.size() - off));
    if (n <= 0) break;
    off += size_t(n);
  }
  fsync(fd);
  close(fd);
  double s = seconds_since(t);
  std::filesystem::remove(path);
  return s;
}

void TemplateCreate(benchmark::State& state) {
  const uint64_t mem = uint64_t(state.range(0)) << 20;
  auto frozen = engine::freeze_template(working_set_spec("ws", mem));
  if (!frozen.ok()) return state.SkipWithError(frozen.error().message().c_str());
  auto& m = frozen->machine->memory();
  std::span<const uint8_t> image(m.host(), m.size());
  snapshot::PutStats put;
  double put_s = 0, raw_s = 0;
  uint64_t disk = 0;
  int n = 0;
  for (auto _ : state) {
    auto store = fresh_store(state, "create");
    if (!store) return;
    snapshot::TemplateInput in;
    in.name = "ws";
    in.created_unix_ns = 1;
    in.metadata_json = frozen->metadata_json;
    in.sections = engine::encode_state(frozen->state);
    in.memory = image;
    auto t = Clock::now();
    auto r = store->put(in);
    put_s += seconds_since(t);
    if (!r.ok()) return state.SkipWithError(r.error().message().c_str());
    put = *r;
    auto st = store->stats();
    if (st.ok()) disk = st->bytes_on_disk;
    raw_s += raw_write_seconds(bench_dir() / "raw.img", image);
    n++;
  }
  std::filesystem::remove_all(bench_dir() / "create");
  state.counters["put_ms"] = put_s / n * 1e3;
  state.counters["raw_write_ms"] = raw_s / n * 1e3;
  state.counters["store_MiB_on_disk"] = double(disk) / (1 << 20);
  state.counters["raw_MiB"] = double(mem) / (1 << 20);
  state.counters["pages_nonzero"] = double(put.pages_total - put.pages_zero);
  state.counters["pages_stored"] = double(put.pages_new);
  state.counters["hash_ms"] = put.hash_seconds * 1e3;
  state.counters["compress_ms"] = put.compress_seconds * 1e3;
  state.counters["write_ms"] = put.write_seconds * 1e3;
  state.counters["sync_ms"] = put.sync_seconds * 1e3;
  state.counters["freeze_ms"] = frozen->boot_us / 1e3;
}
BENCHMARK(TemplateCreate)->Arg(256)->Arg(2048)->Iterations(3)->Unit(benchmark::kMillisecond);

void TemplateDedup(benchmark::State& state) {
  const std::string bb = "/bin/busybox";
  const std::vector<std::vector<std::string>> programs = {
      {bb, "cat"}, {bb, "sort"}, {bb, "wc"}, {bb, "sha256sum"}, {bb, "md5sum"}, {bb, "tr", "a", "b"},
      {kPrograms + "/read_stdin.glibc"}, {kPrograms + "/read_stdin.musl"},
      {kPrograms + "/warm_server.glibc"}, {kPrograms + "/working_set.glibc", "16"}};
  for (auto _ : state) {
    auto store = fresh_store(state, "dedup");
    if (!store) return;
    uint64_t prev = 0, first = 0;
    double growth_sum = 0;
    for (size_t i = 0; i < programs.size(); i++) {
      engine::TemplateSpec s;
      s.name = "t" + std::to_string(i);
      s.program = programs[i][0];
      s.argv = programs[i];
      s.env = engine::default_env();
      auto c = engine::create_template(s, *store);
      if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
      auto st = store->stats();
      if (!st.ok()) return state.SkipWithError(st.error().message().c_str());
      if (i == 0) first = st->bytes_on_disk;
      else growth_sum += double(st->bytes_on_disk - prev);
      std::string label = std::filesystem::path(programs[i][0]).filename().string();
      if (programs[i].size() > 1) label += "_" + programs[i][1];
      state.counters["KiB_" + std::to_string(i) + "_" + label] = double(st->bytes_on_disk - prev) / 1024;
      prev = st->bytes_on_disk;
    }
    state.counters["first_template_KiB"] = double(first) / 1024;
    state.counters["growth_per_extra_KiB"] = growth_sum / double(programs.size() - 1) / 1024;
    state.counters["store_total_KiB"] = double(prev) / 1024;
  }
  std::filesystem::remove_all(bench_dir() / "dedup");
}
BENCHMARK(TemplateDedup)->Iterations(1)->Unit(benchmark::kMillisecond);

void TemplateReadBack(benchmark::State& state) {
  const unsigned threads = unsigned(state.range(0));
  auto frozen = engine::freeze_template(working_set_spec("rb", 2048ull << 20));
  if (!frozen.ok()) return state.SkipWithError(frozen.error().message().c_str());
  auto dir = bench_dir() / "readback";
  std::filesystem::remove_all(dir);
  snapshot::StoreOptions opts;
  opts.threads = threads;
  auto store = snapshot::PageStore::open(dir, opts);
  if (!store.ok()) return state.SkipWithError(store.error().message().c_str());
  auto c = (*store)->put({"rb", 1, frozen->metadata_json, engine::encode_state(frozen->state),
                          std::span<const uint8_t>(frozen->machine->memory().host(), frozen->machine->memory().size())});
  if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
  frozen->machine.reset();
  auto t = (*store)->load("rb");
  if (!t.ok()) return state.SkipWithError(t.error().message().c_str());
  auto mem = vmm::GuestMemory::create_anonymous(t->mem_bytes());
  if (!mem.ok()) return state.SkipWithError(mem.error().message().c_str());
  std::span<uint8_t> dst(mem->host(), mem->size());
  double secs = 0;
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto r = (*store)->read_memory(*t, dst);
    secs += seconds_since(t0);
    if (!r.ok()) return state.SkipWithError(r.error().message().c_str());
  }
  double n = double(state.iterations());
  double stored = double(t->nonzero_pages()) * 4096;
  state.counters["stored_GiB_per_s"] = stored / (secs / n) / double(1ull << 30);
  state.counters["read_ms"] = secs / n * 1e3;
  state.counters["nonzero_MiB"] = stored / (1 << 20);
  std::filesystem::remove_all(dir);
}
BENCHMARK(TemplateReadBack)->Arg(1)->Arg(2)->Iterations(5)->Unit(benchmark::kMillisecond);

void TemplateLoad(benchmark::State& state) {
  auto store = fresh_store(state, "load");
  if (!store) return;
  auto c = engine::create_template(working_set_spec("ws", 256ull << 20), *store);
  if (!c.ok()) return state.SkipWithError(c.error().message().c_str());
  if (!c->image_error.empty()) return state.SkipWithError(c->image_error.c_str());
  const auto src = state.range(0) ? engine::MemorySource::kMemfd : engine::MemorySource::kStoreImage;
  double total = 0, mem = 0;
  int n = 0;
  for (auto _ : state) {
    auto t = Clock::now();
    auto img = engine::TemplateImage::load(*store, "ws", src);
    if (!img.ok()) return state.SkipWithError(img.error().message().c_str());
    if ((*img)->image_built()) return state.SkipWithError("the image was rebuilt while timing");
    total += seconds_since(t);
    mem += (*img)->materialize_us();
    n++;
  }
  state.counters["load_ms"] = total / n * 1e3;
  state.counters["memory_ms"] = mem / n / 1e3;
  state.counters["image_build_ms"] = c->image_us / 1e3;
  std::filesystem::remove_all(bench_dir() / "load");
}
BENCHMARK(TemplateLoad)->ArgName("memfd")->Arg(0)->Arg(1)->Iterations(10)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
