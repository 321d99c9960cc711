// PageStore::read_memory and verify: frames read with io_uring a chunk at a time, checked and
// decompressed on the store's threads while the next chunk is read, every page hash checked.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <tuple>

#include "snapshot/page_store.h"
#include "snapshot/parallel.h"

namespace vmfork::snapshot {

using namespace format;

namespace {

// Compressed bytes read per step: bounds memory (two steps are held, one being read while the
// other is decompressed) and is big enough that a submit and a thread start do not show.
constexpr uint64_t kReadChunkBytes = 16ull << 20;

}  // namespace

Status PageStore::read_memory(const Template& t, std::span<uint8_t> dst, const Progress& progress) const {
  if (dst.size() != t.mem_bytes())
    return plain_error("read_memory " + t.name() + ": destination is " + std::to_string(dst.size()) +
                       " bytes, expected mem_bytes = " + std::to_string(t.mem_bytes()));
  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  VF_ASSIGN(Fd held_lock, lock(false));
  VF_ASSIGN(auto packs, open_template_packs(io, t, false));
  return read_frames(io, t, packs, dst, false, progress);
}

Status PageStore::verify(std::string_view name, const Progress& progress) const {
  VF_TRY(check_template_name(name));
  VF_ASSIGN(UringIo io, UringIo::create(opts_.queue_depth));
  VF_ASSIGN(Fd held_lock, lock(false));
  VF_ASSIGN(Template t, read_manifest(io, name));
  VF_ASSIGN(auto packs, open_template_packs(io, t, true));
  return read_frames(io, t, packs, {}, true, progress);
}

// Reads every frame `t` references, a chunk of frames at a time; while the worker threads
// decompress one chunk, another thread reads the next. With `verify_all` every page of every
// such frame is hashed and nothing is copied; otherwise each page the template uses is hashed
// and copied to dst. open_template_packs has checked every run against the pack indexes.
Status PageStore::read_frames(UringIo& io, const Template& t, std::vector<OpenPack>& packs, std::span<uint8_t> dst,
                              bool verify_all, const Progress& progress) const {
  struct Piece {
    uint32_t pack_idx, frame, slot, pages;
    uint64_t gpn;
  };
  std::vector<Piece> pieces;
  pieces.reserve(t.runs().size());
  for (const PageRun& r : t.runs()) {
    auto p = std::lower_bound(packs.begin(), packs.end(), r.loc.pack,
                              [](const OpenPack& op, uint32_t id) { return op.id < id; });
    pieces.push_back({uint32_t(p - packs.begin()), r.loc.frame, r.loc.slot, r.pages, r.first_gpn});
  }
  std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
    return std::tie(a.pack_idx, a.frame, a.slot) < std::tie(b.pack_idx, b.frame, b.slot);
  });
  struct Job {
    uint32_t pack_idx, frame;
    size_t first_piece, end_piece;
    uint64_t buf_offset = 0;  // of its compressed bytes in the chunk buffer
  };
  std::vector<Job> jobs;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (jobs.empty() || jobs.back().pack_idx != pieces[i].pack_idx || jobs.back().frame != pieces[i].frame)
      jobs.push_back({pieces[i].pack_idx, pieces[i].frame, i, i});
    jobs.back().end_piece = i + 1;
  }
  auto info_of = [&](const Job& j) -> const FrameInfo& { return packs[j.pack_idx].index->frames[j.frame]; };
  // Chunks: [chunk_starts[c], chunk_starts[c + 1]) of jobs, about kReadChunkBytes compressed each.
  std::vector<size_t> chunk_starts{0};
  for (size_t i = 0, bytes = 0; i < jobs.size(); ++i) {
    if (bytes > 0 && bytes + info_of(jobs[i]).compressed_bytes > kReadChunkBytes) {
      chunk_starts.push_back(i);
      bytes = 0;
    }
    bytes += info_of(jobs[i]).compressed_bytes;
  }
  chunk_starts.push_back(jobs.size());
  const size_t nchunks = chunk_starts.size() - 1;

  auto read_chunk = [&](size_t c, std::vector<uint8_t>& buf) -> Status {
    uint64_t total = 0;
    for (size_t i = chunk_starts[c]; i < chunk_starts[c + 1]; ++i) {
      jobs[i].buf_offset = total;
      total += info_of(jobs[i]).compressed_bytes;
    }
    buf.resize(total);
    // One io_uring batch per pack; frames adjacent in the file become one request.
    size_t i = chunk_starts[c];
    while (i < chunk_starts[c + 1]) {
      const uint32_t pi = jobs[i].pack_idx;
      std::vector<ReadReq> reqs;
      uint64_t file_end = 0;
      for (; i < chunk_starts[c + 1] && jobs[i].pack_idx == pi; ++i) {
        const FrameInfo& f = info_of(jobs[i]);
        std::span<uint8_t> b(buf.data() + jobs[i].buf_offset, f.compressed_bytes);
        if (!reqs.empty() && file_end == f.offset && reqs.back().buf.data() + reqs.back().buf.size() == b.data())
          reqs.back().buf = std::span<uint8_t>(reqs.back().buf.data(), reqs.back().buf.size() + b.size());
        else
          reqs.push_back({f.offset, b});
        file_end = f.offset + f.compressed_bytes;
      }
      VF_TRY(io.read(packs[pi].fd.get(), packs[pi].path, reqs));
    }
    return Status::Ok();
  };

  std::vector<std::unique_ptr<FrameCodec>> codecs(opts_.threads);
  for (auto& c : codecs) c = std::make_unique<FrameCodec>();
  std::vector<std::vector<uint8_t>> scratch(opts_.threads);
  auto decode_chunk = [&](size_t c, const std::vector<uint8_t>& buf) -> Status {
    std::mutex err_mu;
    Status err;
    std::atomic<bool> failed{false};
    parallel_for(chunk_starts[c + 1] - chunk_starts[c], opts_.threads, [&](size_t k, unsigned w) {
      if (failed.load(std::memory_order_relaxed)) return;
      const Job& j = jobs[chunk_starts[c] + k];
      const OpenPack& op = packs[j.pack_idx];
      const FrameInfo& f = info_of(j);
      std::vector<uint8_t>& page_buf = scratch[w];
      page_buf.resize(uint64_t(f.pages) * kPageBytes);
      auto keys = op.index->frame_keys(j.frame);
      auto page = [&](uint32_t slot) {
        return std::span<const uint8_t>(page_buf).subspan(slot * kPageBytes, kPageBytes);
      };
      Status s = codecs[w]->decompress(std::span<const uint8_t>(buf).subspan(j.buf_offset, f.compressed_bytes), f,
                                       j.frame, op.path, page_buf);
      for (uint32_t slot = 0; s.ok() && verify_all && slot < f.pages; ++slot)
        s = check_page(page(slot), keys[slot], j.frame, slot, f, op.path);
      for (size_t pc = j.first_piece; s.ok() && !verify_all && pc < j.end_piece; ++pc) {
        const Piece& p = pieces[pc];
        for (uint32_t i = 0; s.ok() && i < p.pages; ++i) {
          s = check_page(page(p.slot + i), keys[p.slot + i], j.frame, p.slot + i, f, op.path);
          // In bounds: open_template_packs checked gpn + pages <= mem_pages, and dst.size() ==
          // mem_pages * kPageBytes.
          if (s.ok()) std::memcpy(dst.data() + (p.gpn + i) * kPageBytes, page(p.slot + i).data(), kPageBytes);
        }
      }
      if (!s.ok()) {
        failed = true;
        std::lock_guard g(err_mu);
        if (err.ok()) err = s;
      }
    });
    return err;
  };

  const char* step = verify_all ? "verify" : "read";
  std::vector<uint8_t> bufs[2];
  if (nchunks > 0) VF_TRY(read_chunk(0, bufs[0]));
  for (size_t c = 0; c < nchunks; ++c) {
    Status next_status;
    std::thread prefetch;
    if (c + 1 < nchunks) {
      try {
        prefetch = std::thread([&] { next_status = read_chunk(c + 1, bufs[(c + 1) % 2]); });
      } catch (...) {  // no thread: read the next chunk after this one is decoded
      }
    }
    Status s = decode_chunk(c, bufs[c % 2]);
    if (prefetch.joinable())
      prefetch.join();
    else if (c + 1 < nchunks && s.ok())
      next_status = read_chunk(c + 1, bufs[(c + 1) % 2]);
    VF_TRY(s);
    VF_TRY(next_status);
    if (progress) progress(step, chunk_starts[c + 1], jobs.size());
  }
  return Status::Ok();
}

}  // namespace vmfork::snapshot
