// Pack files: header/index/footer encoding, frame compression and checking, index reading.
#include "snapshot/pack.h"

#include <zstd.h>

#include <cstdio>
#include <cstring>

#include "snapshot/codec.h"
#include "snapshot/format.h"

namespace vmfork::snapshot {

using namespace format;

std::string pack_file_name(uint32_t id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08u.vfp", id);
  return buf;
}

std::optional<uint32_t> parse_pack_file_name(std::string_view name) {
  if (name.size() != 12 || name.substr(8) != ".vfp") return std::nullopt;
  uint32_t id = 0;
  for (char c : name.substr(0, 8)) {
    if (c < '0' || c > '9') return std::nullopt;
    id = id * 10 + static_cast<uint32_t>(c - '0');
  }
  return id;
}

std::vector<uint8_t> encode_pack_header(uint32_t id, uint64_t nonce) {
  Writer w;
  w.raw(kPackMagic, sizeof kPackMagic);
  w.u16(kPackMajor);
  w.u16(kPackMinor);
  w.u32(kPageBytes);
  w.u32(id);
  w.u32(0);  // flags
  w.u64(nonce);
  w.u64(checksum64(w.bytes()));
  return w.take();
}

std::vector<uint8_t> encode_pack_tail(std::span<const FrameInfo> frames, std::span<const PageHash> keys,
                                      uint64_t index_offset) {
  Writer w;
  w.u32(static_cast<uint32_t>(frames.size()));
  for (const FrameInfo& f : frames) {
    w.u64(f.offset);
    w.u32(f.compressed_bytes);
    w.u32(f.pages);
    w.u64(f.checksum);
    for (const PageHash& k : keys.subspan(f.first_key, f.pages)) {
      w.u64(k.lo);
      w.u64(k.hi);
    }
  }
  uint64_t index_bytes = w.size();
  uint64_t index_sum = checksum64(w.bytes());
  size_t footer_at = w.size();
  w.u64(index_offset);
  w.u64(index_bytes);
  w.u64(index_sum);
  w.u64(checksum64(std::span<const uint8_t>(w.bytes()).subspan(footer_at)));
  w.raw(kPackEndMagic, sizeof kPackEndMagic);
  return w.take();
}

// ---- Frames.

struct FrameCodec::Contexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~Contexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};

FrameCodec::FrameCodec(int level) : ctx_(std::make_unique<Contexts>()), level_(level) {}
FrameCodec::~FrameCodec() = default;

Status FrameCodec::compress(std::span<const uint8_t> pages, std::vector<uint8_t>* out) {
  if (!ctx_->c) return plain_error("ZSTD_createCCtx failed");
  out->resize(ZSTD_compressBound(pages.size()));
  size_t n = ZSTD_compressCCtx(ctx_->c, out->data(), out->size(), pages.data(), pages.size(), level_);
  if (ZSTD_isError(n)) return plain_error(std::string("ZSTD_compressCCtx: ") + ZSTD_getErrorName(n));
  out->resize(n);
  return Status::Ok();
}

namespace {

std::string frame_context(const std::filesystem::path& path, uint32_t frame_no, const FrameInfo& info) {
  return "pack " + path.string() + ": frame " + std::to_string(frame_no) + " at offset " + std::to_string(info.offset) +
         " (" + std::to_string(info.compressed_bytes) + " compressed bytes, " + std::to_string(info.pages) + " pages)";
}

}  // namespace

Status FrameCodec::decompress(std::span<const uint8_t> compressed, const FrameInfo& info, uint32_t frame_no,
                              const std::filesystem::path& path, std::span<uint8_t> dst) {
  const uint64_t want = uint64_t(info.pages) * kPageBytes;
  if (compressed.size() != info.compressed_bytes || dst.size() != want)
    return plain_error(frame_context(path, frame_no, info) + ": buffer sizes do not match the index");
  uint64_t sum = checksum64(compressed);
  if (sum != info.checksum)
    return plain_error(frame_context(path, frame_no, info) + ": checksum mismatch: expected XXH3-64 " +
                       hex64(info.checksum) + " (from the pack index), found " + hex64(sum));
  if (!ctx_->d) return plain_error("ZSTD_createDCtx failed");
  size_t frame_bytes = ZSTD_findFrameCompressedSize(compressed.data(), compressed.size());
  if (ZSTD_isError(frame_bytes) || frame_bytes != compressed.size())
    return plain_error(frame_context(path, frame_no, info) + ": expected exactly one zstd frame of " +
                       std::to_string(compressed.size()) + " bytes");
  unsigned long long content = ZSTD_getFrameContentSize(compressed.data(), compressed.size());
  if (content != want)
    return plain_error(frame_context(path, frame_no, info) + ": zstd frame declares " +
                       (content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR
                            ? std::string("no content size")
                            : std::to_string(content) + " bytes") +
                       ", expected " + std::to_string(want));
  size_t n = ZSTD_decompressDCtx(ctx_->d, dst.data(), dst.size(), compressed.data(), compressed.size());
  if (ZSTD_isError(n))
    return plain_error(frame_context(path, frame_no, info) + ": ZSTD_decompressDCtx: " + ZSTD_getErrorName(n));
  if (n != want)
    return plain_error(frame_context(path, frame_no, info) + ": decompressed to " + std::to_string(n) +
                       " bytes, expected " + std::to_string(want));
  return Status::Ok();
}

Status check_page(std::span<const uint8_t> page, const PageHash& key, uint32_t frame_no, uint32_t slot,
                  const FrameInfo& info, const std::filesystem::path& path) {
  PageHash got = hash_page(page);
  if (got == key) return Status::Ok();
  return plain_error(frame_context(path, frame_no, info) + ": page " + std::to_string(slot) + " hashes to XXH3-128 " +
                     to_hex(got) + ", expected " + to_hex(key) + " (from the pack index)");
}

// ---- Index.

Result<PackIndex> read_pack_index(UringIo& io, int fd, const std::filesystem::path& path, uint32_t id,
                                  uint64_t file_bytes) {
  const std::string ctx = "pack " + path.string();
  if (file_bytes < kPackHeaderBytes + kPackFooterBytes)
    return plain_error(ctx + ": file is " + std::to_string(file_bytes) + " bytes, expected at least " +
                       std::to_string(kPackHeaderBytes + kPackFooterBytes) + " (header and footer): truncated");
  uint8_t head[kPackHeaderBytes], foot[kPackFooterBytes];
  const uint64_t footer_at = file_bytes - kPackFooterBytes;
  ReadReq reqs[2] = {{0, head}, {footer_at, foot}};
  VF_TRY(io.read(fd, path, reqs));

  PackIndex pi;
  pi.id = id;
  pi.file_bytes = file_bytes;
  {
    Reader r(head, ctx);
    VF_ASSIGN(auto magic, r.take("magic", sizeof kPackMagic));
    if (std::memcmp(magic.data(), kPackMagic, sizeof kPackMagic) != 0)
      return r.bad_value("magic", 0, "expected \"VMFKPACK\": not a vmfork pack file");
    VF_ASSIGN(uint16_t major, r.u16("major version"));
    VF_ASSIGN(uint16_t minor, r.u16("minor version"));
    if (major != kPackMajor || minor > kPackMinor)
      return r.bad_value("version", 8,
                         "version " + std::to_string(major) + "." + std::to_string(minor) +
                             " is not supported (expected major " + std::to_string(kPackMajor) +
                             ", minor <= " + std::to_string(kPackMinor) + ")");
    uint64_t want = checksum64({head, 32}), have;
    std::memcpy(&have, head + 32, 8);
    if (want != have)
      return r.bad_value("header checksum", 32,
                         "expected XXH3-64 " + hex64(want) + " of bytes 0..31, found " + hex64(have));
    VF_ASSIGN(uint32_t page_bytes, r.u32("page_bytes"));
    if (page_bytes != kPageBytes)
      return r.bad_value("page_bytes", 12, std::to_string(page_bytes) + ", expected " + std::to_string(kPageBytes));
    VF_ASSIGN(uint32_t file_id, r.u32("pack_id"));
    if (file_id != id)
      return r.bad_value("pack_id", 16,
                         std::to_string(file_id) + ", expected " + std::to_string(id) + " (from the file name)");
    VF_ASSIGN(uint32_t flags, r.u32("flags"));
    if (flags != 0) return r.bad_value("flags", 20, hex64(flags) + ", expected 0 (no flags are defined)");
    VF_ASSIGN(pi.nonce, r.u64("nonce"));
  }

  uint64_t index_bytes = 0, index_sum = 0;
  {
    Reader r(foot, ctx, footer_at);
    if (std::memcmp(foot + 32, kPackEndMagic, sizeof kPackEndMagic) != 0)
      return r.bad_value("end magic", 32, "expected \"VMFKPEND\": truncated or not a vmfork pack file");
    uint64_t want = checksum64({foot, 24});
    uint64_t have;
    std::memcpy(&have, foot + 24, 8);
    if (want != have)
      return r.bad_value("footer checksum", 24,
                         "expected XXH3-64 " + hex64(want) + " of the 24 footer bytes before it, found " + hex64(have));
    VF_ASSIGN(pi.index_offset, r.u64("index_offset"));
    VF_ASSIGN(index_bytes, r.u64("index_bytes"));
    VF_ASSIGN(index_sum, r.u64("index checksum"));
    if (pi.index_offset < kPackHeaderBytes || pi.index_offset > footer_at)
      return r.bad_value("index_offset", 0,
                         std::to_string(pi.index_offset) + ", expected " + std::to_string(kPackHeaderBytes) + ".." +
                             std::to_string(footer_at));
    if (index_bytes > kMaxPackIndexBytes || index_bytes != footer_at - pi.index_offset)
      return r.bad_value("index_bytes", 8,
                         std::to_string(index_bytes) + ", expected " + std::to_string(footer_at - pi.index_offset) +
                             " (from the index offset to the footer) and at most " +
                             std::to_string(kMaxPackIndexBytes));
  }

  std::vector<uint8_t> index(index_bytes);
  ReadReq ireq{pi.index_offset, index};
  VF_TRY(io.read(fd, path, {&ireq, 1}));
  uint64_t sum = checksum64(index);
  if (sum != index_sum)
    return plain_error(ctx + ": index at offset " + std::to_string(pi.index_offset) + " (" +
                       std::to_string(index_bytes) + " bytes): checksum mismatch: expected XXH3-64 " +
                       hex64(index_sum) + " (from the footer), found " + hex64(sum));

  Reader r(index, ctx + " index", pi.index_offset);
  VF_ASSIGN(uint32_t frame_count, r.u32("frame_count"));
  if (uint64_t(frame_count) * kFrameEntryBytes > r.remaining())
    return r.bad_value(
        "frame_count", 0,
        std::to_string(frame_count) + " frames do not fit in the " + std::to_string(index_bytes) + "-byte index");
  pi.frames.reserve(frame_count);
  pi.keys.reserve((r.remaining() - uint64_t(frame_count) * kFrameEntryBytes) / kPageKeyBytes);
  uint64_t expect_offset = kPackHeaderBytes;
  for (uint32_t f = 0; f < frame_count; ++f) {
    const size_t at = r.offset();
    FrameInfo fi;
    VF_ASSIGN(fi.offset, r.u64("frame offset"));
    VF_ASSIGN(fi.compressed_bytes, r.u32("frame compressed_bytes"));
    VF_ASSIGN(fi.pages, r.u32("frame pages"));
    VF_ASSIGN(fi.checksum, r.u64("frame checksum"));
    const std::string what = "frame " + std::to_string(f);
    if (fi.offset != expect_offset)
      return r.bad_value(what.c_str(), at,
                         "offset " + std::to_string(fi.offset) + ", expected " + std::to_string(expect_offset) +
                             " (frames are back to back after the header)");
    if (fi.pages < 1 || fi.pages > kMaxFramePages)
      return r.bad_value(what.c_str(), at + 12,
                         std::to_string(fi.pages) + " pages, expected 1.." + std::to_string(kMaxFramePages));
    if (fi.compressed_bytes < 1 || fi.compressed_bytes > ZSTD_compressBound(uint64_t(fi.pages) * kPageBytes) ||
        fi.offset + fi.compressed_bytes > pi.index_offset)
      return r.bad_value(what.c_str(), at + 8,
                         std::to_string(fi.compressed_bytes) + " compressed bytes, expected 1.." +
                             std::to_string(ZSTD_compressBound(uint64_t(fi.pages) * kPageBytes)) +
                             " ending before the index at " + std::to_string(pi.index_offset));
    VF_ASSIGN(auto key_bytes, r.take("page keys", uint64_t(fi.pages) * kPageKeyBytes));
    fi.first_key = static_cast<uint32_t>(pi.keys.size());
    for (uint32_t s = 0; s < fi.pages; ++s) {
      PageHash k;
      std::memcpy(&k.lo, key_bytes.data() + s * kPageKeyBytes, 8);
      std::memcpy(&k.hi, key_bytes.data() + s * kPageKeyBytes + 8, 8);
      pi.keys.push_back(k);
    }
    expect_offset += fi.compressed_bytes;
    pi.frames.push_back(fi);
  }
  VF_TRY(r.expect_end());
  if (expect_offset != pi.index_offset)
    return plain_error(ctx + ": frames end at offset " + std::to_string(expect_offset) + ", expected " +
                       std::to_string(pi.index_offset) + " (the index offset from the footer)");
  return pi;
}

}  // namespace vmfork::snapshot
