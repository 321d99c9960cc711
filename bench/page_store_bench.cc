// Benchmarks of the page store (snapshot/page_store.h), the figures behind its defaults:
//   PutEmptyStore          put of a guest memory image into an empty store, vs write() + fsync
//                          of the raw image to a file on the same file system
//   Sweep/<frame>/<level>  frame_pages x zstd level: put time, compressed bytes, read-back GiB/s
//                          (best of 3 reads from the page cache, 2 threads)
//   ReadMemory/<threads>/<cold>  read_memory (read, checksum, decompress, hash every page) in
//                          GiB/s of non-zero guest data, from the page cache or with the pack
//                          evicted first (posix_fadvise DONTNEED)
//   Dedup                  10 puts of images sharing most pages: store growth per template
// The image is $VMFORK_BENCH_IMAGE (raw guest memory) if set, else a synthetic 256 MiB one:
// ~30 MiB of real bytes from files under /usr/bin and /usr/lib (some placed twice), 4 MiB of
// random bytes, the rest zero. Stores live in $VMFORK_BENCH_DIR (default /tmp, which must be a
// real disk, not tmpfs, for the fsync figures to mean anything) and are removed afterwards.
// Figures are counters; docs/snapshot-format.md records a run.
// Usage: build/bench/page_store_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "snapshot/page_store.h"

using namespace vmfork;
using namespace vmfork::snapshot;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
constexpr double kMiB = 1024.0 * 1024.0, kGiB = kMiB * 1024.0;

// ---- The image.

// Page-aligned placements of real file bytes into the image.
void place(std::vector<uint8_t>& img, uint64_t& cursor, const std::vector<uint8_t>& bytes, std::mt19937_64& rng) {
  const uint64_t len = (bytes.size() + kPageBytes - 1) / kPageBytes * kPageBytes;
  if (cursor + len > img.size()) return;
  std::memcpy(img.data() + cursor, bytes.data(), bytes.size());
  cursor += len + (rng() % 64) * kPageBytes;  // a gap of 0-63 zero pages, like free memory
}

std::vector<uint8_t> synthetic_image() {
  std::vector<uint8_t> img(256ull << 20, 0);
  std::mt19937_64 rng(42);
  // Regular files of 16 KiB .. 4 MiB under /usr/bin and /usr/lib, in path order, up to 24 MiB.
  std::vector<fs::path> files;
  for (const char* root : {"/usr/bin", "/usr/lib"}) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      std::error_code e2;
      if (!it->is_regular_file(e2) || it->is_symlink(e2)) continue;
      auto sz = it->file_size(e2);
      if (!e2 && sz >= (16u << 10) && sz <= (4u << 20)) files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  std::shuffle(files.begin(), files.end(), rng);
  std::vector<std::vector<uint8_t>> contents;
  uint64_t total = 0;
  for (const auto& f : files) {
    if (total >= (24ull << 20)) break;
    std::ifstream in(f, std::ios::binary);
    std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (b.empty()) continue;
    total += b.size();
    contents.push_back(std::move(b));
  }
  uint64_t cursor = 1ull << 20;
  for (const auto& b : contents) place(img, cursor, b, rng);
  // ~6 MiB of it again (a library mapped twice, page-cache copies).
  for (uint64_t i = 0, dup = 0; i < contents.size() && dup < (6ull << 20); i += 3) {
    place(img, cursor, contents[i], rng);
    dup += contents[i].size();
  }
  // 4 MiB of random bytes (keys, compressed or encrypted data).
  std::vector<uint8_t> random(4ull << 20);
  for (size_t i = 0; i < random.size(); i += 8) {
    uint64_t w = rng();
    std::memcpy(random.data() + i, &w, 8);
  }
  place(img, cursor, random, rng);
  return img;
}

const std::vector<uint8_t>& image() {
  static const std::vector<uint8_t> img = [] {
    if (const char* path = std::getenv("VMFORK_BENCH_IMAGE")) {
      std::ifstream in(path, std::ios::binary);
      std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      b.resize((b.size() + kPageBytes - 1) / kPageBytes * kPageBytes);
      if (b.empty()) {
        std::fprintf(stderr, "VMFORK_BENCH_IMAGE=%s: empty or unreadable\n", path);
        std::exit(1);
      }
      return b;
    }
    return synthetic_image();
  }();
  return img;
}

uint64_t nonzero_bytes(const std::vector<uint8_t>& img) {
  static const std::vector<uint8_t> zero(kPageBytes, 0);
  uint64_t n = 0;
  for (size_t off = 0; off < img.size(); off += kPageBytes)
    if (std::memcmp(img.data() + off, zero.data(), kPageBytes) != 0) n += kPageBytes;
  return n;
}

// ---- Store directories.

fs::path bench_root() {
  static const fs::path root = [] {
    const char* base = std::getenv("VMFORK_BENCH_DIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/vmfork-bench-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      std::exit(1);
    }
    return fs::path(tmpl);
  }();
  return root;
}

/// An empty directory for one store, removed on destruction.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const std::string& name) : path(bench_root() / name) { fs::remove_all(path); }
  ~ScratchDir() { fs::remove_all(path); }
};

std::unique_ptr<PageStore> must_open(const fs::path& dir, StoreOptions o = {}) {
  auto s = PageStore::open(dir, std::move(o));
  if (!s.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), s.error().message().c_str());
    std::exit(1);
  }
  return std::move(*s);
}

PutStats must_put(PageStore& s, const std::string& name, std::span<const uint8_t> mem) {
  TemplateInput in{name, 0, "{}", {}, mem};
  auto r = s.put(in);
  if (!r.ok()) {
    std::fprintf(stderr, "put %s: %s\n", name.c_str(), r.error().message().c_str());
    std::exit(1);
  }
  return *r;
}

double read_back_seconds(const PageStore& s, const std::string& name, std::vector<uint8_t>& buf) {
  auto t = s.load(name);
  if (!t.ok()) std::exit(1);
  buf.assign(t->mem_bytes(), 0);
  auto t0 = Clock::now();
  Status st = s.read_memory(*t, buf);
  double secs = seconds_since(t0);
  if (!st.ok()) {
    std::fprintf(stderr, "read_memory: %s\n", st.error().message().c_str());
    std::exit(1);
  }
  return secs;
}

uint64_t store_bytes(const PageStore& s) {
  auto st = s.stats();
  return st.ok() ? st->bytes_on_disk : 0;
}

// ---- Benchmarks.

// put into an empty store (manual time), and write() + fsync of the raw image for comparison.
void PutEmptyStore(benchmark::State& state) {
  const auto& img = image();
  double put_s = 0, raw_s = 0, on_disk = 0;
  PutStats last;
  for (auto _ : state) {
    ScratchDir d("put");
    auto s = must_open(d.path);
    auto t0 = Clock::now();
    last = must_put(*s, "t", img);
    double secs = seconds_since(t0);
    state.SetIterationTime(secs);
    put_s += secs;
    on_disk = double(store_bytes(*s));

    const fs::path raw = bench_root() / "raw.img";
    t0 = Clock::now();
    int fd = ::open(raw.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    for (size_t off = 0; fd >= 0 && off < img.size();) {
      ssize_t n = ::write(fd, img.data() + off, std::min<size_t>(img.size() - off, 8u << 20));
      if (n <= 0) break;
      off += size_t(n);
    }
    if (fd < 0 || ::fsync(fd) < 0) std::perror("raw write");
    ::close(fd);
    raw_s += seconds_since(t0);
    fs::remove(raw);
  }
  const double n = double(state.iterations());
  state.counters["image_MiB"] = double(img.size()) / kMiB;
  state.counters["nonzero_MiB"] = double(nonzero_bytes(img)) / kMiB;
  state.counters["put_ms"] = put_s / n * 1e3;
  state.counters["raw_write_fsync_ms"] = raw_s / n * 1e3;
  state.counters["store_on_disk_MiB"] = on_disk / kMiB;
  state.counters["raw_on_disk_MiB"] = double(img.size()) / kMiB;
  state.counters["pages_zero"] = double(last.pages_zero);
  state.counters["pages_new"] = double(last.pages_new);
  state.counters["pages_deduped"] = double(last.pages_deduped);
  state.counters["hash_ms"] = last.hash_seconds * 1e3;
  state.counters["compress_ms"] = last.compress_seconds * 1e3;
  state.counters["write_ms"] = last.write_seconds * 1e3;
  state.counters["sync_ms"] = last.sync_seconds * 1e3;
}
BENCHMARK(PutEmptyStore)->Iterations(3)->UseManualTime()->Unit(benchmark::kMillisecond);

// frame_pages x zstd level: put time, compressed size, read-back throughput (2 threads).
void Sweep(benchmark::State& state) {
  const auto& img = image();
  StoreOptions o;
  o.frame_pages = uint32_t(state.range(0));
  o.zstd_level = int(state.range(1));
  double put_s = 0, read_s = 0;
  PutStats last;
  std::vector<uint8_t> buf;
  for (auto _ : state) {
    ScratchDir d("sweep");
    auto s = must_open(d.path, o);
    auto t0 = Clock::now();
    last = must_put(*s, "t", img);
    double secs = seconds_since(t0);
    state.SetIterationTime(secs);
    put_s += secs;
    double best = 1e9;  // best of 3: one read is ~20 ms, too short to trust alone
    for (int k = 0; k < 3; ++k) best = std::min(best, read_back_seconds(*s, "t", buf));
    read_s += best;
  }
  const double n = double(state.iterations());
  const double nonzero = double(nonzero_bytes(img));
  state.counters["put_ms"] = put_s / n * 1e3;
  state.counters["compress_ms"] = last.compress_seconds * 1e3;
  state.counters["pack_MiB"] = double(last.pack_bytes) / kMiB;
  state.counters["ratio"] = nonzero / double(std::max<uint64_t>(1, last.pack_bytes));
  state.counters["read_GiBps"] = nonzero / kGiB / (read_s / n);
}
BENCHMARK(Sweep)
    ->ArgsProduct({{16, 64, 256}, {1, 3, 9}})
    ->ArgNames({"frame_pages", "level"})
    ->Iterations(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// read_memory with 1 or 2 threads, warm (page cache) or cold (pack evicted before each read).
void ReadMemory(benchmark::State& state) {
  const auto& img = image();
  const unsigned threads = unsigned(state.range(0));
  const bool cold = state.range(1) != 0;
  ScratchDir d("read");
  StoreOptions o;
  o.threads = threads;
  auto s = must_open(d.path, o);
  must_put(*s, "t", img);
  auto t = s->load("t");
  if (!t.ok()) std::exit(1);
  std::vector<uint8_t> buf(t->mem_bytes());
  for (auto _ : state) {
    std::memset(buf.data(), 0, buf.size());
    if (cold) {
      for (const auto& e : fs::directory_iterator(d.path / "packs")) {
        int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
      }
    }
    auto t0 = Clock::now();
    Status st = s->read_memory(*t, buf);
    state.SetIterationTime(seconds_since(t0));
    if (!st.ok()) {
      state.SkipWithError(st.error().message().c_str());
      break;
    }
  }
  if (buf != img) state.SkipWithError("read-back differs from the image");
  state.counters["nonzero_GiBps"] =
      benchmark::Counter(double(nonzero_bytes(img)) / kGiB, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(ReadMemory)
    ->ArgsProduct({{1, 2}, {0, 1}})
    ->ArgNames({"threads", "cold"})
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// 10 templates that share most pages: each is the image with ~3 MiB of its non-zero pages
// replaced (half by fresh random bytes, half by edited copies of their old bytes).
void Dedup(benchmark::State& state) {
  const auto& base = image();
  std::vector<uint64_t> nonzero_pages;
  static const std::vector<uint8_t> zero(kPageBytes, 0);
  for (uint64_t p = 0; p < base.size() / kPageBytes; ++p)
    if (std::memcmp(base.data() + p * kPageBytes, zero.data(), kPageBytes) != 0) nonzero_pages.push_back(p);
  constexpr int kTemplates = 10;
  constexpr uint64_t kChangedPages = (3u << 20) / kPageBytes;
  double first_bytes = 0, growth = 0, put_s = 0, later_put_s = 0;
  uint64_t new_pages_later = 0;
  for (auto _ : state) {
    ScratchDir d("dedup");
    auto s = must_open(d.path);
    std::vector<uint8_t> img = base;
    std::mt19937_64 rng(7);
    double before = 0;
    for (int i = 0; i < kTemplates; ++i) {
      if (i > 0) {
        img = base;
        for (uint64_t k = 0; k < kChangedPages; ++k) {
          uint8_t* page = img.data() + nonzero_pages[rng() % nonzero_pages.size()] * kPageBytes;
          if (k % 2) {
            for (size_t b = 0; b < kPageBytes; b += 8) {
              uint64_t w = rng();
              std::memcpy(page + b, &w, 8);
            }
          } else {
            page[rng() % kPageBytes] ^= uint8_t(1 + i);  // a one-byte edit: a new page all the same
          }
        }
      }
      auto t0 = Clock::now();
      PutStats st = must_put(*s, "t" + std::to_string(i), img);
      double secs = seconds_since(t0);
      put_s += secs;
      if (i > 0) {
        later_put_s += secs;
        new_pages_later += st.pages_new;
      }
      if (i == 0) before = first_bytes = double(store_bytes(*s));
    }
    growth = (double(store_bytes(*s)) - before) / (kTemplates - 1);
    state.SetIterationTime(put_s);
  }
  state.counters["first_template_MiB"] = first_bytes / kMiB;
  state.counters["growth_per_template_MiB"] = growth / kMiB;
  state.counters["changed_MiB_per_template"] = double(kChangedPages * kPageBytes) / kMiB;
  state.counters["new_pages_per_template"] = double(new_pages_later) / (kTemplates - 1);
  state.counters["later_put_ms"] = later_put_s / (kTemplates - 1) * 1e3;
}
BENCHMARK(Dedup)->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(bench_root(), ec);
  return 0;
}
