// Template manifests: encode/decode round trip, page lookups, name rules, and rejection of
// unknown versions, oversized fields, truncation, bad checksums and inconsistent page maps.
#include "snapshot/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "snapshot/codec.h"
#include "snapshot/page_hash.h"

namespace vmfork::snapshot {
namespace {

using testing::HasSubstr;

Template sample() {
  std::vector<Section> sections{{1, {1, 2, 3}}, {7, std::vector<uint8_t>(1000, 0xab)}, {3, {}}};
  std::vector<PackRef> packs{{1, 0x1111}, {4, 0x4444}};
  std::vector<PageRun> runs{{0, 3, {1, 0, 0}}, {3, 1, {4, 2, 5}}, {10, 4, {1, 1, 0}}, {100, 1, {4, 0, 0}}};
  return Template("web-1.0_x", 128 * kPageBytes, 1'700'000'000'123'456'789ull, R"({"accel":"native"})",
                  std::move(sections), std::move(packs), std::move(runs));
}

// A manifest whose body is `body` (written by a test, possibly invalid), sealed correctly.
std::vector<uint8_t> with_body(const std::vector<uint8_t>& body) {
  Writer w;
  w.raw(format::kManifestMagic, 8);
  w.u16(format::kManifestMajor);
  w.u16(format::kManifestMinor);
  w.u32(0);
  w.u64(body.size());
  w.u64(checksum64(body));
  w.raw(body.data(), body.size());
  return w.take();
}

// A body with the given runs and pack table, valid otherwise.
std::vector<uint8_t> body_with(uint64_t mem_pages, const std::vector<PackRef>& packs,
                               const std::vector<PageRun>& runs) {
  Writer b;
  b.str("t");
  b.u64(mem_pages * kPageBytes);
  b.u64(0);
  b.str("{}");
  b.u32(0);
  b.u32(uint32_t(packs.size()));
  for (auto& p : packs) {
    b.u32(p.id);
    b.u64(p.nonce);
  }
  b.u64(runs.size());
  for (auto& r : runs) {
    b.u64(r.first_gpn);
    b.u32(r.pages);
    b.u32(r.loc.pack);
    b.u32(r.loc.frame);
    b.u32(r.loc.slot);
  }
  return b.take();
}

std::string decode_error(const std::vector<uint8_t>& file) {
  auto t = decode_manifest(file, "/s/templates/t.vft");
  return t.ok() ? std::string("(decoded)") : t.error().message();
}

TEST(Manifest, RoundTrip) {
  Template t = sample();
  auto bytes = encode_manifest(t);
  auto back = decode_manifest(bytes, "x.vft");
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->name(), t.name());
  EXPECT_EQ(back->mem_bytes(), t.mem_bytes());
  EXPECT_EQ(back->created_unix_ns(), t.created_unix_ns());
  EXPECT_EQ(back->metadata_json(), t.metadata_json());
  EXPECT_EQ(back->sections(), t.sections());
  EXPECT_EQ(back->packs(), t.packs());
  EXPECT_EQ(back->runs(), t.runs());
  EXPECT_EQ(back->nonzero_pages(), 9u);
  EXPECT_EQ(back->manifest_bytes(), bytes.size());
  ASSERT_NE(back->section(7), nullptr);
  EXPECT_EQ(back->section(7)->bytes.size(), 1000u);
  EXPECT_EQ(back->section(2), nullptr);
}

TEST(Manifest, PageLookup) {
  Template t = sample();
  EXPECT_EQ(t.page(0), (PageLoc{1, 0, 0}));
  EXPECT_EQ(t.page(2), (PageLoc{1, 0, 2}));
  EXPECT_EQ(t.page(3), (PageLoc{4, 2, 5}));
  EXPECT_EQ(t.page(4), std::nullopt);
  EXPECT_EQ(t.page(13), (PageLoc{1, 1, 3}));
  EXPECT_EQ(t.page(14), std::nullopt);
  EXPECT_EQ(t.page(100), (PageLoc{4, 0, 0}));
  EXPECT_EQ(t.page(127), std::nullopt);
  EXPECT_EQ(t.page(1u << 30), std::nullopt);
}

TEST(Manifest, TemplateNames) {
  for (const char* ok : {"a", "web", "Web-1.2_rc", "x.y", "0", "a..b"}) EXPECT_TRUE(check_template_name(ok).ok()) << ok;
  EXPECT_TRUE(check_template_name(std::string(64, 'n')).ok());
  for (const char* bad : {"", ".hidden", "..", ".", "a/b", "../x", "a b", "tab\t", "semi;colon", "q\"", "é", "a\n"}) {
    Status s = check_template_name(bad);
    EXPECT_FALSE(s.ok()) << bad;
  }
  Status s = check_template_name(std::string(65, 'n'));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message(), HasSubstr("at most 64"));
  EXPECT_THAT(check_template_name("a/b").error().message(), HasSubstr("outside [A-Za-z0-9._-]"));
  EXPECT_THAT(check_template_name(".x").error().message(), HasSubstr("starts with '.'"));
}

TEST(Manifest, FieldCapsOnInput) {
  std::vector<Section> dup{{1, {}}, {1, {}}};
  EXPECT_THAT(check_template_fields("t", kPageBytes, "", dup).error().message(), HasSubstr("appears twice"));
  EXPECT_FALSE(check_template_fields("t", 4095, "", {}).ok());
  EXPECT_FALSE(check_template_fields("t", 0, "", {}).ok());
  EXPECT_FALSE(check_template_fields("t", kPageBytes, std::string(64 * 1024 + 1, 'x'), {}).ok());
  std::vector<Section> big{{1, std::vector<uint8_t>(format::kMaxSectionBytes + 1)}};
  EXPECT_FALSE(check_template_fields("t", kPageBytes, "", big).ok());
  std::vector<Section> many(65);
  for (uint32_t i = 0; i < many.size(); ++i) many[i].tag = i;
  EXPECT_FALSE(check_template_fields("t", kPageBytes, "", many).ok());
}

TEST(Manifest, RejectsUnknownMajorAndNewerMinor) {
  auto bytes = encode_manifest(sample());
  auto v2 = bytes;
  v2[8] = 2;  // major 2
  EXPECT_THAT(decode_error(v2), HasSubstr("version 2.0 is not supported"));
  auto minor = bytes;
  minor[10] = 1;  // minor 1 of major 1: newer than this reader
  EXPECT_THAT(decode_error(minor), HasSubstr("version 1.1 is not supported"));
  auto magic = bytes;
  magic[0] = 'X';
  EXPECT_THAT(decode_error(magic), HasSubstr("magic at offset 0"));
}

TEST(Manifest, RejectsTruncationAndBadChecksums) {
  auto bytes = encode_manifest(sample());
  auto cut = bytes;
  cut.resize(bytes.size() - 10);
  std::string e = decode_error(cut);
  EXPECT_THAT(e, HasSubstr("/s/templates/t.vft"));
  EXPECT_THAT(e, HasSubstr("body_bytes at offset 16"));
  EXPECT_THAT(e, HasSubstr("truncated"));
  cut.resize(20);
  EXPECT_THAT(decode_error(cut), HasSubstr("truncated"));
  auto flipped = bytes;
  flipped[bytes.size() - 5] ^= 1;
  EXPECT_THAT(decode_error(flipped), HasSubstr("checksum mismatch"));
}

TEST(Manifest, RejectsOversizedLengthFieldsBeforeAllocating) {
  // Header body_bytes far beyond the cap.
  auto bytes = encode_manifest(sample());
  uint64_t huge = 1ull << 60;
  std::memcpy(bytes.data() + 16, &huge, 8);
  EXPECT_THAT(decode_error(bytes), HasSubstr("exceeds the limit"));
  // Metadata length over 64 KiB inside a correctly sealed body.
  Writer b;
  b.str("t");
  b.u64(kPageBytes);
  b.u64(0);
  b.u64(1ull << 40);  // metadata_json length
  EXPECT_THAT(decode_error(with_body(b.take())), HasSubstr("metadata_json at offset 57: length 1099511627776 exceeds"));
  // A section length claiming more bytes than the file has.
  Writer c;
  c.str("t");
  c.u64(kPageBytes);
  c.u64(0);
  c.str("");
  c.u32(1);
  c.u32(9);
  c.u64(1000);  // section bytes: 1000 claimed, none present
  EXPECT_THAT(decode_error(with_body(c.take())), HasSubstr("section bytes at offset"));
  // Run count larger than the guest's pages.
  auto d = body_with(4, {}, {});
  uint64_t many = 5;
  std::memcpy(d.data() + d.size() - 8, &many, 8);
  EXPECT_THAT(decode_error(with_body(d)), HasSubstr("run_count"));
}

TEST(Manifest, RejectsInconsistentPageMaps) {
  std::vector<PackRef> one{{1, 9}};
  EXPECT_EQ(decode_error(with_body(body_with(8, one, {{0, 2, {1, 0, 0}}, {2, 2, {1, 0, 2}}}))), "(decoded)");
  EXPECT_THAT(decode_error(with_body(body_with(8, one, {{0, 2, {1, 0, 0}}, {1, 2, {1, 0, 2}}}))),
              HasSubstr("runs sorted, not overlapping"));
  EXPECT_THAT(decode_error(with_body(body_with(8, one, {{2, 1, {1, 0, 0}}, {0, 1, {1, 0, 2}}}))),
              HasSubstr("runs sorted, not overlapping"));
  EXPECT_THAT(decode_error(with_body(body_with(8, one, {{7, 2, {1, 0, 0}}}))), HasSubstr("exceed the 8 guest pages"));
  EXPECT_THAT(decode_error(with_body(body_with(8, one, {{0, 0, {1, 0, 0}}}))), HasSubstr("0 pages"));
  EXPECT_THAT(decode_error(with_body(body_with(8, one, {{0, 1, {2, 0, 0}}}))), HasSubstr("not in the pack table"));
  EXPECT_THAT(decode_error(with_body(body_with(8, one, {{0, 2, {1, 0, 1023}}}))), HasSubstr("exceed a frame's"));
  EXPECT_THAT(decode_error(with_body(body_with(8, {{2, 1}, {1, 1}}, {{0, 1, {1, 0, 0}}}))),
              HasSubstr("increasing order"));
  EXPECT_THAT(decode_error(with_body(body_with(8, {{1, 1}, {2, 1}}, {{0, 1, {1, 0, 0}}}))),
              HasSubstr("used by no run"));
  auto trailing = body_with(8, one, {{0, 1, {1, 0, 0}}});
  trailing.push_back(0);
  EXPECT_THAT(decode_error(with_body(trailing)), HasSubstr("unexpected trailing bytes"));
}

TEST(Manifest, RejectsBadNameAndMemSizeInFile) {
  auto b = body_with(8, {}, {});
  b[8] = '/';  // name "t" -> "/"
  EXPECT_THAT(decode_error(with_body(b)), HasSubstr("name at offset 32"));
  auto m = body_with(8, {}, {});
  uint64_t odd = 4097;
  std::memcpy(m.data() + 9, &odd, 8);
  EXPECT_THAT(decode_error(with_body(m)), HasSubstr("mem_bytes at offset 41"));
}

}  // namespace
}  // namespace vmfork::snapshot
