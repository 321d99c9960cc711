// PageStore::put: hash and dedup the pages, compress the new ones into a pack, write the
// manifest, in the order that keeps the store valid across a crash at any point.
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "snapshot/page_store.h"
#include "snapshot/parallel.h"
#include "snapshot/store_layout.h"

namespace vmfork::snapshot {

using namespace format;
namespace fs = std::filesystem;

namespace {

// Uncompressed bytes compressed (and then written in one batch) per step: bounds the memory a
// put holds, and is big enough that a step's fixed costs (thread starts, a submit) do not show.
constexpr uint64_t kWriteChunkBytes = 32ull << 20;
// Pages hashed between two progress reports.
constexpr uint64_t kHashStepPages = 16384;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

uint64_t random_nonce() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) {
    // No entropy source: time and pid still make a collision with the one reused pack id a
    // nonce guards against practically impossible.
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint64_t(ts.tv_sec) << 32) ^ uint64_t(ts.tv_nsec) ^ (uint64_t(getpid()) << 48);
  }
  return v;
}

/// Removes a failed put's files (best effort: the store is valid with or without them).
struct PutCleanup {
  StoreFs* store_fs;
  fs::path tmp_pack, final_pack, tmp_manifest;
  bool tmp_pack_created = false, pack_renamed = false, tmp_manifest_created = false, committed = false;
  ~PutCleanup() {
    if (committed) return;
    if (tmp_manifest_created) (void)store_fs->unlink(tmp_manifest);
    if (pack_renamed)
      (void)store_fs->unlink(final_pack);
    else if (tmp_pack_created)
      (void)store_fs->unlink(tmp_pack);
  }
};

// Under the exclusive lock no other put runs, so every temp file is left by one that was
// interrupted (killed, crashed): remove them before writing, so that repeated killed creates
// do not pile up packs/*.vfp.tmp until a reclaim.
Status remove_stale_temps(StoreFs& fsys, const fs::path& dir) {
  for (const char* sub : {"packs", "templates"}) {
    VF_ASSIGN(auto files, list_dir(dir / sub));
    for (const std::string& f : files)
      if ((f.ends_with(".vfp.tmp")) || (f[0] == '.' && f.ends_with(".vft.tmp"))) VF_TRY(fsys.unlink(dir / sub / f));
  }
  return Status::Ok();
}

}  // namespace

// Crash safety comes from the order of the writes. Nothing refers to a pack until a manifest
// does, and a manifest appears (by rename) only after everything it refers to is durable:
//   1. pack temp file: create, write, fsync; rename to packs/<id>.vfp; fsync packs/.
//   2. manifest temp file: create, write, fsync; rename to templates/<name>.vft; fsync templates/.
// A crash before 2's rename leaves at most an orphan pack or temp files, which no manifest
// references: readers never see them and reclaim() deletes them. Pages are deduplicated only
// against frames some manifest references, never against orphans, so a new template never
// depends on data that reclaim may delete. Everything runs under the exclusive flock.
Result<PutStats> PageStore::put(const TemplateInput& in, const Progress& progress) {
  VF_TRY(check_template_fields(in.name, in.memory.size(), in.metadata_json, in.sections));
  StoreFs& fsys = *opts_.fs;
  PutStats stats;
  const uint64_t npages = in.memory.size() / kPageBytes;
  stats.pages_total = npages;

  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  VF_ASSIGN(Fd held_lock, lock(true));
  VF_TRY(remove_stale_temps(fsys, dir_));
  const fs::path manifest = manifest_path(in.name);
  struct stat st;
  if (::lstat(manifest.c_str(), &st) == 0)
    return Error{"put " + in.name + ": template already exists (" + manifest.string() + ")", EEXIST};

  // The live pages: every page of every frame that some template references.
  std::unordered_map<PageHash, PageLoc, PageHashHasher> known;
  std::map<uint32_t, uint64_t> nonce_of;  // pack id -> nonce, for packs with live frames
  uint32_t max_id = 0;
  {
    VF_ASSIGN(std::vector<Template> catalog, read_catalog(io));
    std::map<uint32_t, std::shared_ptr<const PackIndex>> indexes;
    std::set<uint64_t> live;
    for (const Template& t : catalog) {
      VF_ASSIGN(auto packs, open_template_packs(io, t, false));
      for (OpenPack& op : packs) {
        indexes[op.id] = op.index;
        nonce_of[op.id] = op.index->nonce;
      }
      for (const PageRun& r : t.runs()) live.insert(frame_key(r.loc.pack, r.loc.frame));
    }
    for (uint64_t k : live) {
      uint32_t pack = uint32_t(k >> 32), frame = uint32_t(k);
      auto keys = indexes.at(pack)->frame_keys(frame);
      for (uint32_t s = 0; s < keys.size(); ++s) known.try_emplace(keys[s], PageLoc{pack, frame, s});
    }
    if (!nonce_of.empty()) max_id = nonce_of.rbegin()->first;
    VF_ASSIGN(auto files, list_dir(dir_ / "packs"));
    for (const std::string& f : files) {
      std::string_view n = f;
      if (n.ends_with(".tmp")) n.remove_suffix(4);
      if (auto id = parse_pack_file_name(n)) max_id = std::max(max_id, *id);
    }
  }
  if (max_id >= kMaxPackId)
    return plain_error("put " + in.name + ": pack ids exhausted (" + std::to_string(max_id) + ")");
  const uint32_t new_id = max_id + 1;

  // 1. Zero test and XXH3-128 of every page, in parallel; then dedup in guest page order.
  auto t0 = Clock::now();
  std::vector<PageHash> hashes(npages);
  std::vector<uint8_t> zero(npages);
  const uint8_t* mem = in.memory.data();
  constexpr uint64_t kHashBlock = 256;  // pages per parallel work item
  for (uint64_t step = 0; step < npages; step += kHashStepPages) {
    const uint64_t end = std::min(npages, step + kHashStepPages);
    parallel_for((end - step + kHashBlock - 1) / kHashBlock, opts_.threads, [&](size_t b, unsigned) {
      const uint64_t first = step + b * kHashBlock, last = std::min(end, first + kHashBlock);
      for (uint64_t p = first; p < last; ++p) {
        std::span<const uint8_t> page(mem + p * kPageBytes, kPageBytes);
        zero[p] = is_zero_page(page);
        if (!zero[p]) hashes[p] = hash_page(page);
      }
    });
    if (progress) progress("hash", end, npages);
  }
  const uint32_t fp = opts_.frame_pages;
  std::vector<uint64_t> new_pages;  // gpn of each new page, in pack slot order
  std::vector<PageHash> new_keys;
  std::vector<PageRun> runs;
  std::set<uint32_t> used_packs;
  known.reserve(known.size() + npages / 4);
  for (uint64_t gpn = 0; gpn < npages; ++gpn) {
    if (zero[gpn]) {
      ++stats.pages_zero;
      continue;
    }
    const uint64_t n = new_pages.size();
    auto [it, inserted] = known.try_emplace(hashes[gpn], PageLoc{new_id, uint32_t(n / fp), uint32_t(n % fp)});
    if (inserted) {
      new_pages.push_back(gpn);
      new_keys.push_back(hashes[gpn]);
    } else {
      ++stats.pages_deduped;
    }
    const PageLoc loc = it->second;
    used_packs.insert(loc.pack);
    if (!runs.empty()) {
      PageRun& last = runs.back();
      if (last.first_gpn + last.pages == gpn && last.loc.pack == loc.pack && last.loc.frame == loc.frame &&
          last.loc.slot + last.pages == loc.slot) {
        ++last.pages;
        continue;
      }
    }
    runs.push_back(PageRun{gpn, 1, loc});
  }
  stats.pages_new = new_pages.size();
  stats.hash_seconds = seconds_since(t0);
  std::vector<PageHash>().swap(hashes);
  std::vector<uint8_t>().swap(zero);

  PutCleanup cleanup{&fsys, dir_ / "packs" / (pack_file_name(new_id) + ".tmp"), pack_path(new_id),
                     dir_ / "templates" / ("." + in.name + ".vft.tmp")};
  const uint64_t nonce = random_nonce();

  // 2. The pack: header, frames (compressed in parallel, a chunk at a time), index, footer.
  if (!new_pages.empty()) {
    VF_ASSIGN(Fd pfd, fsys.create_file(cleanup.tmp_pack));
    cleanup.tmp_pack_created = true;
    const uint64_t nframes = (new_pages.size() + fp - 1) / fp;
    std::vector<FrameInfo> frames(nframes);
    std::vector<uint8_t> header = encode_pack_header(new_id, nonce), tail;
    uint64_t offset = kPackHeaderBytes;
    const uint64_t chunk_frames = std::max<uint64_t>(opts_.threads, kWriteChunkBytes / (uint64_t(fp) * kPageBytes));
    std::vector<std::unique_ptr<FrameCodec>> codecs(opts_.threads);
    std::vector<std::vector<uint8_t>> scratch(opts_.threads);
    for (auto& c : codecs) c = std::make_unique<FrameCodec>(opts_.zstd_level);
    std::vector<std::vector<uint8_t>> out;
    for (uint64_t f0 = 0; f0 < nframes; f0 += chunk_frames) {
      const uint64_t f1 = std::min(nframes, f0 + chunk_frames);
      out.assign(f1 - f0, {});
      std::mutex err_mu;
      Status err;
      auto tc = Clock::now();
      parallel_for(f1 - f0, opts_.threads, [&](size_t i, unsigned w) {
        const uint64_t f = f0 + i, first = f * fp;
        const uint32_t count = uint32_t(std::min<uint64_t>(fp, new_pages.size() - first));
        std::vector<uint8_t>& in_buf = scratch[w];
        in_buf.resize(uint64_t(count) * kPageBytes);
        for (uint32_t j = 0; j < count; ++j)
          std::memcpy(in_buf.data() + uint64_t(j) * kPageBytes, mem + new_pages[first + j] * kPageBytes, kPageBytes);
        Status s = codecs[w]->compress(in_buf, &out[i]);
        if (!s.ok()) {
          std::lock_guard g(err_mu);
          if (err.ok()) err = s;
          return;
        }
        frames[f] = FrameInfo{0, uint32_t(out[i].size()), count, checksum64(out[i]), uint32_t(first)};
      });
      stats.compress_seconds += seconds_since(tc);
      VF_TRY(err);
      std::vector<WriteReq> reqs;
      if (f0 == 0) reqs.push_back({0, header});
      for (uint64_t f = f0; f < f1; ++f) {
        frames[f].offset = offset;
        reqs.push_back({offset, out[f - f0]});
        offset += frames[f].compressed_bytes;
      }
      if (f1 == nframes) {
        tail = encode_pack_tail(frames, new_keys, offset);
        reqs.push_back({offset, tail});
      }
      auto tw = Clock::now();
      VF_TRY(fsys.write_batch(io, pfd.get(), cleanup.tmp_pack, reqs));
      stats.write_seconds += seconds_since(tw);
      if (progress) progress("write", f1, nframes);
    }
    stats.frames_written = nframes;
    stats.pack_bytes = offset + tail.size();
    auto ts = Clock::now();
    VF_TRY(fsys.fsync(pfd.get(), cleanup.tmp_pack));
    pfd.reset();
    VF_TRY(fsys.rename(cleanup.tmp_pack, cleanup.final_pack));
    cleanup.pack_renamed = true;
    VF_TRY(fsys.fsync_dir(dir_ / "packs"));
    stats.sync_seconds += seconds_since(ts);
  }

  // 3. The manifest; its rename is the commit point.
  std::vector<PackRef> pack_table;
  for (uint32_t id : used_packs) pack_table.push_back({id, id == new_id ? nonce : nonce_of.at(id)});
  Template t(in.name, in.memory.size(), in.created_unix_ns, in.metadata_json, in.sections, std::move(pack_table),
             std::move(runs));
  std::vector<uint8_t> bytes = encode_manifest(t);
  stats.manifest_bytes = bytes.size();
  auto tw = Clock::now();
  VF_ASSIGN(Fd mfd, fsys.create_file(cleanup.tmp_manifest));
  cleanup.tmp_manifest_created = true;
  WriteReq mreq{0, bytes};
  VF_TRY(fsys.write_batch(io, mfd.get(), cleanup.tmp_manifest, {&mreq, 1}));
  stats.write_seconds += seconds_since(tw);
  auto ts = Clock::now();
  VF_TRY(fsys.fsync(mfd.get(), cleanup.tmp_manifest));
  mfd.reset();
  VF_TRY(fsys.rename(cleanup.tmp_manifest, manifest));
  // From here the template is visible and complete; if the directory fsync fails it stays (its
  // durability is what is unknown), and the error is returned.
  cleanup.committed = true;
  VF_TRY(fsys.fsync_dir(dir_ / "templates"));
  stats.sync_seconds += seconds_since(ts);
  return stats;
}

}  // namespace vmfork::snapshot
