// Pack files (`packs/<8-digit id>.vfp`): one per put, holding that put's new pages as zstd
// frames back to back, then an index (per frame: offset, sizes, checksum, page keys) and a
// fixed footer. Here: encoding the header and the index + footer, compressing a frame,
// checking and decompressing a frame, and reading a pack's index with every field validated.
// Byte layout: format.h and docs/snapshot-format.md.
// Thread-safety: free functions are pure or use only their arguments; FrameCodec is used by
// one thread at a time (it owns zstd contexts).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "snapshot/page_hash.h"
#include "snapshot/uring_io.h"

namespace vmfork::snapshot {

/// One zstd frame of a pack: `pages` pages (kPageBytes each) compressed to `compressed_bytes`
/// bytes at byte `offset` of the pack file; `checksum` is the XXH3-64 of the compressed bytes.
/// Its page keys are PackIndex::keys[first_key, first_key + pages) (slot i = page i of the frame).
struct FrameInfo {
  uint64_t offset = 0;
  uint32_t compressed_bytes = 0;
  uint32_t pages = 0;
  uint64_t checksum = 0;
  uint32_t first_key = 0;
};

/// The validated index of one pack file.
struct PackIndex {
  uint32_t id = 0;
  uint64_t nonce = 0;       // random, from the header; manifests record it
  uint64_t file_bytes = 0;  // size of the pack file (header + frames + index + footer)
  uint64_t index_offset = 0;
  std::vector<FrameInfo> frames;
  std::vector<PageHash> keys;

  /// The keys of frame `frame`'s pages, slot order (frame < frames.size()).
  std::span<const PageHash> frame_keys(uint32_t frame) const {
    return std::span<const PageHash>(keys).subspan(frames[frame].first_key, frames[frame].pages);
  }
};

/// "00000007.vfp" for pack 7.
std::string pack_file_name(uint32_t id);
/// The id of a pack file name ("00000007.vfp" -> 7); nullopt for any other name.
std::optional<uint32_t> parse_pack_file_name(std::string_view name);

/// The kPackHeaderBytes header of pack `id`.
std::vector<uint8_t> encode_pack_header(uint32_t id, uint64_t nonce);
/// The index of `frames` (with their keys in `keys`) followed by the footer, for a pack whose
/// index starts at byte `index_offset` (= the end of the last frame).
std::vector<uint8_t> encode_pack_tail(std::span<const FrameInfo> frames, std::span<const PageHash> keys,
                                      uint64_t index_offset);

/// zstd compression and decompression of frames, with reusable contexts.
class FrameCodec {
 public:
  /// `level`: zstd compression level (ZSTD_minCLevel()..ZSTD_maxCLevel()).
  explicit FrameCodec(int level = 3);
  ~FrameCodec();
  FrameCodec(const FrameCodec&) = delete;
  FrameCodec& operator=(const FrameCodec&) = delete;

  /// Compresses `pages` (a whole number of pages) into one zstd frame that records its content
  /// size, replacing `out`. Errors: zstd failed (only on allocation failure).
  Status compress(std::span<const uint8_t> pages, std::vector<uint8_t>* out);

  /// Checks frame `frame_no` of pack `path` and decompresses it into `dst` (exactly
  /// info.pages * kPageBytes bytes): the XXH3-64 of `compressed` must equal info.checksum
  /// (checked before zstd sees a byte), it must be exactly one zstd frame declaring
  /// dst.size() bytes of content, and decompress to exactly that. Errors name the pack, the
  /// frame, its file offset and what was expected.
  Status decompress(std::span<const uint8_t> compressed, const FrameInfo& info, uint32_t frame_no,
                    const std::filesystem::path& path, std::span<uint8_t> dst);

 private:
  struct Contexts;
  std::unique_ptr<Contexts> ctx_;
  int level_;
};

/// Checks that page `slot` of decompressed frame `frame_no` hashes to `key`. Errors name the
/// pack, frame, its offset, the slot and both keys.
Status check_page(std::span<const uint8_t> page, const PageHash& key, uint32_t frame_no, uint32_t slot,
                  const FrameInfo& info, const std::filesystem::path& path);

/// Reads and validates the header, footer and index of pack file `fd` (named `path`, expected
/// id `id`, `file_bytes` long): magics, major/minor version, page size, header/footer/index
/// checksums, every length against its cap and the file size before allocating, frames
/// contiguous from the header to the index. Errors name the file, the byte offset and what
/// was expected.
Result<PackIndex> read_pack_index(UringIo& io, int fd, const std::filesystem::path& path, uint32_t id,
                                  uint64_t file_bytes);

}  // namespace vmfork::snapshot
