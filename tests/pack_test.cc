// Pack files: header/index/footer round trip, frame compression, and rejection of corrupt
// frames (checksum first), unknown versions, truncation and inconsistent indexes.
#include "snapshot/pack.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fd.h"
#include "snapshot/format.h"
#include "snapshot_test_util.h"

namespace vmfork::snapshot {
namespace {

using testing::HasSubstr;
using testutil::TempDir;

struct BuiltPack {
  std::vector<uint8_t> bytes;
  std::vector<FrameInfo> frames;
  std::vector<PageHash> keys;
  std::vector<uint8_t> pages;  // uncompressed, all frames back to back
};

// A pack of `frame_pages`-page frames holding `npages` pages.
BuiltPack build(uint32_t id, uint64_t npages, uint32_t frame_pages) {
  BuiltPack b;
  b.pages = testutil::zero_image(npages);
  for (uint64_t p = 0; p < npages; ++p) {
    if (p % 2)
      testutil::fill_page(b.pages, p, p + 1);
    else
      testutil::fill_text_page(b.pages, p, p + 1);
    b.keys.push_back(hash_page({b.pages.data() + p * kPageBytes, kPageBytes}));
  }
  b.bytes = encode_pack_header(id, 0xfeed);
  FrameCodec codec(3);
  for (uint64_t first = 0; first < npages; first += frame_pages) {
    uint32_t n = uint32_t(std::min<uint64_t>(frame_pages, npages - first));
    std::vector<uint8_t> out;
    EXPECT_TRUE(codec.compress({b.pages.data() + first * kPageBytes, n * kPageBytes}, &out).ok());
    b.frames.push_back({b.bytes.size(), uint32_t(out.size()), n, checksum64(out), uint32_t(first)});
    b.bytes.insert(b.bytes.end(), out.begin(), out.end());
  }
  auto tail = encode_pack_tail(b.frames, b.keys, b.bytes.size());
  b.bytes.insert(b.bytes.end(), tail.begin(), tail.end());
  return b;
}

Result<PackIndex> read_index(const std::filesystem::path& p, uint32_t id) {
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  auto io = UringIo::create(4);
  if (!io.ok()) return io.error();
  return read_pack_index(*io, fd.get(), p, id, std::filesystem::file_size(p));
}

TEST(Pack, FileNames) {
  EXPECT_EQ(pack_file_name(7), "00000007.vfp");
  EXPECT_EQ(parse_pack_file_name("00000007.vfp"), 7u);
  EXPECT_EQ(parse_pack_file_name("99999999.vfp"), 99999999u);
  EXPECT_EQ(parse_pack_file_name("0000007.vfp"), std::nullopt);
  EXPECT_EQ(parse_pack_file_name("00000007.vfp.tmp"), std::nullopt);
  EXPECT_EQ(parse_pack_file_name("0000000a.vfp"), std::nullopt);
}

TEST(Pack, IndexRoundTripAndFrameDecompression) {
  TempDir dir;
  auto b = build(3, 10, 4);
  auto p = dir.path() / pack_file_name(3);
  testutil::write_file(p, b.bytes);
  auto idx = read_index(p, 3);
  ASSERT_TRUE(idx.ok()) << idx.error().message();
  EXPECT_EQ(idx->nonce, 0xfeedu);
  ASSERT_EQ(idx->frames.size(), 3u);
  EXPECT_EQ(idx->keys, b.keys);
  FrameCodec codec;
  for (uint32_t f = 0; f < 3; ++f) {
    const FrameInfo& fi = idx->frames[f];
    EXPECT_EQ(fi.offset, b.frames[f].offset);
    EXPECT_EQ(fi.checksum, b.frames[f].checksum);
    std::vector<uint8_t> out(fi.pages * kPageBytes);
    ASSERT_TRUE(codec.decompress({b.bytes.data() + fi.offset, fi.compressed_bytes}, fi, f, p, out).ok());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), b.pages.begin() + fi.first_key * kPageBytes));
    for (uint32_t s = 0; s < fi.pages; ++s)
      EXPECT_TRUE(check_page({out.data() + s * kPageBytes, kPageBytes}, idx->frame_keys(f)[s], f, s, fi, p).ok());
  }
}

TEST(Pack, CorruptFrameFailsOnChecksumBeforeDecompressing) {
  auto b = build(1, 4, 4);
  FrameInfo fi = b.frames[0];
  std::vector<uint8_t> frame(b.bytes.begin() + fi.offset, b.bytes.begin() + fi.offset + fi.compressed_bytes);
  frame[frame.size() / 2] ^= 0x40;
  std::vector<uint8_t> out(fi.pages * kPageBytes);
  FrameCodec codec;
  Status s = codec.decompress(frame, fi, 0, "/s/packs/00000001.vfp", out);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("pack /s/packs/00000001.vfp: frame 0 at offset 40"));
  EXPECT_THAT(s.error().message(), HasSubstr("checksum mismatch: expected XXH3-64 0x"));
  // With the checksum "fixed", zstd's own framing or the size checks still catch it (or the
  // page hashes do): never silently accepted as the same bytes.
  fi.checksum = checksum64(frame);
  s = codec.decompress(frame, fi, 0, "p", out);
  bool same = s.ok() && std::equal(out.begin(), out.end(), b.pages.begin());
  EXPECT_FALSE(same);
}

TEST(Pack, WrongPageKeyIsReported) {
  auto b = build(1, 1, 1);
  PageHash wrong = b.keys[0];
  wrong.hi ^= 1;
  Status s = check_page({b.pages.data(), kPageBytes}, wrong, 0, 0, b.frames[0], "/p.vfp");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("page 0 hashes to XXH3-128"));
}

TEST(Pack, RejectsUnknownVersionTruncationAndBadIndex) {
  TempDir dir;
  auto b = build(2, 6, 2);
  auto p = dir.path() / pack_file_name(2);
  auto check = [&](std::vector<uint8_t> bytes, const std::string& want) {
    testutil::write_file(p, bytes);
    auto idx = read_index(p, 2);
    ASSERT_FALSE(idx.ok()) << want;
    EXPECT_THAT(idx.error().message(), HasSubstr(p.string())) << want;
    EXPECT_THAT(idx.error().message(), HasSubstr(want));
  };
  auto major = b.bytes;
  major[8] = 9;
  check(major, "version 9.0 is not supported");
  auto trunc = b.bytes;
  trunc.resize(trunc.size() - 7);
  check(trunc, "end magic at offset");
  auto tiny = b.bytes;
  tiny.resize(50);
  check(tiny, "truncated");
  auto hdr = b.bytes;
  hdr[24] ^= 1;  // nonce byte: header checksum
  check(hdr, "header checksum at offset 32");
  auto idx = b.bytes;
  idx[b.frames.back().offset + b.frames.back().compressed_bytes + 2] ^= 1;  // inside the index
  check(idx, "checksum mismatch");
  auto foot = b.bytes;
  foot[foot.size() - 40] ^= 1;  // index_offset
  check(foot, "footer checksum");
}

TEST(Pack, RejectsPackWhoseIdDiffersFromItsName) {
  TempDir dir;
  auto b = build(5, 2, 2);
  auto p = dir.path() / pack_file_name(6);
  testutil::write_file(p, b.bytes);
  auto idx = read_index(p, 6);
  ASSERT_FALSE(idx.ok());
  EXPECT_THAT(idx.error().message(), HasSubstr("pack_id at offset 16: 5, expected 6"));
}

}  // namespace
}  // namespace vmfork::snapshot
