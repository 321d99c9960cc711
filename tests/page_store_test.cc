// PageStore: read-back, zero pages, dedup within and across templates, corruption detection
// (frame checksum, page hash, truncated/missing/unknown-version files), name rules, remove and
// reclaim (punched frames, unlinked packs), inspect/stats figures, concurrent readers; memory
// images (built, byte-identical, sparse, trusted by stamp, rechecked, rebuilt, reclaimed, and
// never half-written when a file operation fails).
#include "snapshot/page_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "snapshot/codec.h"
#include "snapshot/faulty_fs.h"
#include "snapshot_test_util.h"

namespace vmfork::snapshot {
namespace {

using testing::ElementsAre;
using testing::HasSubstr;
using testutil::fill_page;
using testutil::fill_text_page;
using testutil::TempDir;
using testutil::zero_image;

class PageStoreTest : public testing::Test {
 protected:
  static StoreOptions small_frames() {
    StoreOptions o;
    o.frame_pages = 4;
    return o;
  }
  std::unique_ptr<PageStore> open(StoreOptions o = small_frames()) {
    auto s = PageStore::open(dir_.path() / "store", std::move(o));
    EXPECT_TRUE(s.ok()) << s.error().message();
    return s.ok() ? std::move(*s) : nullptr;
  }
  static PutStats put(PageStore& s, const std::string& name, const std::vector<uint8_t>& mem,
                      std::vector<Section> sections = {}) {
    TemplateInput in{name, 42, R"({"k":1})", std::move(sections), mem};
    auto r = s.put(in);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : PutStats{};
  }
  static std::vector<uint8_t> read(const PageStore& s, const std::string& name) {
    auto t = s.load(name);
    EXPECT_TRUE(t.ok()) << t.error().message();
    if (!t.ok()) return {};
    std::vector<uint8_t> mem(t->mem_bytes());
    Status st = s.read_memory(*t, mem);
    EXPECT_TRUE(st.ok()) << st.error().message();
    return mem;
  }
  std::filesystem::path pack(uint32_t id) const { return dir_.path() / "store" / "packs" / pack_file_name(id); }
  std::filesystem::path manifest(const std::string& name) const {
    return dir_.path() / "store" / "templates" / (name + ".vft");
  }

  TempDir dir_;
};

// 64 pages: 0-9 random, 10-19 zero, 20-29 text, 30-39 copies of 0-9, 40-63 zero.
std::vector<uint8_t> image_a() {
  auto m = zero_image(64);
  for (int p = 0; p < 10; ++p) fill_page(m, p, p + 1);
  for (int p = 20; p < 30; ++p) fill_text_page(m, p, p);
  for (int p = 30; p < 40; ++p) fill_page(m, p, p - 30 + 1);
  return m;
}

TEST_F(PageStoreTest, PutThenReadBackIsByteIdentical) {
  auto s = open();
  auto a = image_a();
  std::vector<Section> sections{{1, {9, 8, 7}}, {2, std::vector<uint8_t>(5000, 3)}};
  PutStats st = put(*s, "a", a, sections);
  EXPECT_EQ(st.pages_total, 64u);
  EXPECT_EQ(st.pages_zero, 34u);
  EXPECT_EQ(st.pages_new, 20u);
  EXPECT_EQ(st.pages_deduped, 10u);  // pages 30-39 repeat pages 0-9
  EXPECT_EQ(st.frames_written, 5u);
  EXPECT_EQ(st.pack_bytes, std::filesystem::file_size(pack(1)));
  EXPECT_EQ(st.manifest_bytes, std::filesystem::file_size(manifest("a")));
  EXPECT_EQ(read(*s, "a"), a);
  auto t = s->load("a");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->sections(), sections);
  EXPECT_EQ(t->metadata_json(), R"({"k":1})");
  EXPECT_EQ(t->created_unix_ns(), 42u);
  EXPECT_EQ(t->nonzero_pages(), 30u);
  EXPECT_EQ(t->page(30), t->page(0));  // the duplicate is the same stored page
  EXPECT_EQ(t->page(10), std::nullopt);
  EXPECT_TRUE(s->verify("a").ok());
  auto names = s->list();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("a"));
  // A second PageStore object on the same directory sees the same.
  auto again = open();
  EXPECT_EQ(read(*again, "a"), a);
}

TEST_F(PageStoreTest, OpenCreatesMissingDirectoriesAndRejectsAFile) {
  auto nested = PageStore::open(dir_.path() / "a" / "b" / "store");
  ASSERT_TRUE(nested.ok()) << nested.error().message();
  EXPECT_TRUE(std::filesystem::is_directory(dir_.path() / "a" / "b" / "store" / "packs"));
  EXPECT_TRUE(std::filesystem::exists(dir_.path() / "a" / "b" / "store" / "lock"));
  testutil::write_file(dir_.path() / "file", {1});
  auto file = PageStore::open(dir_.path() / "file");
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.error().message(), HasSubstr("mkdir " + (dir_.path() / "file" / "packs").string()));
  // Opening an existing store performs no mutating operation.
  auto faulty = std::make_shared<FaultyFs>();
  faulty->fail_at(1, EIO);
  StoreOptions o;
  o.fs = faulty;
  EXPECT_TRUE(PageStore::open(dir_.path() / "a" / "b" / "store", o).ok());
  EXPECT_EQ(faulty->ops(), 0u);
}

TEST_F(PageStoreTest, ZeroPagesAreNotStored) {
  auto s = open();
  auto z = zero_image(256);
  PutStats st = put(*s, "zero", z);
  EXPECT_EQ(st.pages_zero, 256u);
  EXPECT_EQ(st.pages_new, 0u);
  EXPECT_EQ(st.frames_written, 0u);
  EXPECT_EQ(st.pack_bytes, 0u);
  EXPECT_TRUE(testutil::files_in(dir_.path() / "store" / "packs").empty());
  auto t = s->load("zero");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->runs().empty());
  std::vector<uint8_t> mem(t->mem_bytes(), 0);
  EXPECT_TRUE(s->read_memory(*t, mem).ok());
  EXPECT_EQ(mem, z);
  // One non-zero byte makes a page non-zero.
  auto one = zero_image(8);
  one[5 * kPageBytes + 4095] = 1;
  PutStats st1 = put(*s, "one", one);
  EXPECT_EQ(st1.pages_zero, 7u);
  EXPECT_EQ(st1.pages_new, 1u);
  EXPECT_EQ(read(*s, "one"), one);
}

TEST_F(PageStoreTest, IdenticalPagesWithinOneTemplateAreStoredOnce) {
  auto s = open();
  auto m = zero_image(100);
  for (int p = 0; p < 100; ++p) fill_page(m, p, 77);
  PutStats st = put(*s, "same", m);
  EXPECT_EQ(st.pages_new, 1u);
  EXPECT_EQ(st.pages_deduped, 99u);
  EXPECT_EQ(st.frames_written, 1u);
  EXPECT_EQ(read(*s, "same"), m);
}

TEST_F(PageStoreTest, PagesSharedAcrossTemplatesAreStoredOnce) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  auto b = a;  // same pages, two of them changed, one page moved
  fill_page(b, 0, 1000);
  fill_page(b, 50, 1001);
  std::memcpy(b.data() + 60 * kPageBytes, a.data() + 25 * kPageBytes, kPageBytes);
  PutStats st = put(*s, "b", b);
  EXPECT_EQ(st.pages_new, 2u);
  EXPECT_EQ(st.pages_deduped, 30u);  // pages 1-9, 20-39 and the moved page 60 are a's
  EXPECT_EQ(read(*s, "a"), a);
  EXPECT_EQ(read(*s, "b"), b);
  auto ib = s->inspect("b");
  ASSERT_TRUE(ib.ok()) << ib.error().message();
  EXPECT_EQ(ib->pages_total, 64u);
  EXPECT_EQ(ib->pages_unique + ib->pages_shared, 32u);
  EXPECT_EQ(ib->pages_unique, 2u);
  auto ss = s->stats();
  ASSERT_TRUE(ss.ok());
  EXPECT_EQ(ss->templates, 2u);
  EXPECT_EQ(ss->packs, 2u);
  EXPECT_EQ(ss->live_frames, 5u + 1u);
}

TEST_F(PageStoreTest, RejectsBadNamesDuplicatesAndBadSizes) {
  auto s = open();
  auto a = image_a();
  for (const char* bad : {"", ".x", "a/b", "../a", "sp ace", "x\n"}) {
    TemplateInput in{bad, 0, "", {}, a};
    auto r = s->put(in);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.error().message(), HasSubstr("template name"));
    EXPECT_FALSE(s->load(bad).ok());
    EXPECT_FALSE(s->remove(bad).ok());
    EXPECT_FALSE(s->verify(bad).ok());
  }
  put(*s, "a", a);
  TemplateInput again{"a", 0, "", {}, a};
  auto r = s->put(again);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("already exists"));
  std::vector<uint8_t> odd(4097);
  TemplateInput bad_size{"odd", 0, "", {}, odd};
  EXPECT_FALSE(s->put(bad_size).ok());
  auto missing = s->load("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().sys_errno, ENOENT);
  EXPECT_EQ(s->remove("nope").error().sys_errno, ENOENT);
  EXPECT_FALSE(PageStore::open(dir_.path() / "o", StoreOptions{.frame_pages = 0}).ok());
  EXPECT_FALSE(PageStore::open(dir_.path() / "o", StoreOptions{.zstd_level = 99}).ok());
  EXPECT_FALSE(PageStore::open(dir_.path() / "o", StoreOptions{.threads = 0}).ok());
}

TEST_F(PageStoreTest, FlippedByteInAFrameIsDetectedWithFileAndOffset) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  auto bytes = testutil::read_file(pack(1));
  bytes[format::kPackHeaderBytes + 10] ^= 0x01;  // inside frame 0
  testutil::write_file(pack(1), bytes);
  Status v = s->verify("a");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.error().message(), HasSubstr("pack " + pack(1).string() + ": frame 0 at offset 40"));
  EXPECT_THAT(v.error().message(), HasSubstr("checksum mismatch: expected XXH3-64"));
  auto t = s->load("a");  // the manifest and index are fine
  ASSERT_TRUE(t.ok());
  std::vector<uint8_t> mem(t->mem_bytes());
  Status r = s->read_memory(*t, mem);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr("checksum mismatch"));
}

// Rewrites the index of a pack with `edit`, resealing the index and footer checksums.
void edit_index(const std::filesystem::path& p, const std::function<void(std::vector<uint8_t>&)>& edit) {
  auto bytes = testutil::read_file(p);
  uint64_t foot = bytes.size() - format::kPackFooterBytes, off, len;
  std::memcpy(&off, bytes.data() + foot, 8);
  std::memcpy(&len, bytes.data() + foot + 8, 8);
  std::vector<uint8_t> index(bytes.begin() + off, bytes.begin() + off + len);
  edit(index);
  std::copy(index.begin(), index.end(), bytes.begin() + off);
  uint64_t sum = checksum64(index);
  std::memcpy(bytes.data() + foot + 16, &sum, 8);
  uint64_t fsum = checksum64({bytes.data() + foot, 24});
  std::memcpy(bytes.data() + foot + 24, &fsum, 8);
  testutil::write_file(p, bytes);
}

TEST_F(PageStoreTest, PageWhoseHashDiffersFromItsKeyIsDetected) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  // Frame 0's first key: index = u32 count, then offset, size, pages, checksum (24 bytes).
  edit_index(pack(1), [](std::vector<uint8_t>& idx) { idx[4 + 24 + 3] ^= 0x80; });
  auto t = s->load("a");
  ASSERT_TRUE(t.ok()) << t.error().message();
  std::vector<uint8_t> mem(t->mem_bytes());
  Status r = s->read_memory(*t, mem);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr(pack(1).string()));
  EXPECT_THAT(r.error().message(), HasSubstr("page 0 hashes to XXH3-128"));
  Status v = s->verify("a");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.error().message(), HasSubstr("page 0 hashes to XXH3-128"));
}

TEST_F(PageStoreTest, TruncatedMissingAndUnknownVersionFilesAreReported) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  auto pack_bytes = testutil::read_file(pack(1));
  auto man_bytes = testutil::read_file(manifest("a"));

  auto expect_load_error = [&](const std::string& path, const std::string& what) {
    auto fresh = open();  // no cached pack index
    auto t = fresh->load("a");
    ASSERT_FALSE(t.ok()) << what;
    EXPECT_THAT(t.error().message(), HasSubstr(path)) << what;
    EXPECT_THAT(t.error().message(), HasSubstr(what));
    EXPECT_FALSE(fresh->verify("a").ok());
  };
  // Truncated pack.
  auto cut = pack_bytes;
  cut.resize(cut.size() - 100);
  testutil::write_file(pack(1), cut);
  expect_load_error(pack(1).string(), "end magic at offset");
  // Unknown major version in the pack.
  auto v2 = pack_bytes;
  v2[8] = 2;
  testutil::write_file(pack(1), v2);
  expect_load_error(pack(1).string(), "version 2.0 is not supported");
  // Missing pack.
  std::filesystem::remove(pack(1));
  expect_load_error(pack(1).string(), "is missing");
  testutil::write_file(pack(1), pack_bytes);
  // Truncated manifest.
  auto mcut = man_bytes;
  mcut.resize(mcut.size() / 2);
  testutil::write_file(manifest("a"), mcut);
  expect_load_error(manifest("a").string(), "truncated");
  // Unknown major version in the manifest.
  auto m2 = man_bytes;
  m2[8] = 3;
  testutil::write_file(manifest("a"), m2);
  expect_load_error(manifest("a").string(), "version 3.0 is not supported");
  // Oversized body length.
  auto big = man_bytes;
  uint64_t huge = 1ull << 62;
  std::memcpy(big.data() + 16, &huge, 8);
  testutil::write_file(manifest("a"), big);
  expect_load_error(manifest("a").string(), "exceeds the limit");
  // Restored: fine again.
  testutil::write_file(manifest("a"), man_bytes);
  auto fresh = open();
  EXPECT_TRUE(fresh->verify("a").ok());
}

TEST_F(PageStoreTest, AReplacedPackIsNotMistakenForTheOriginal) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  auto original = testutil::read_file(pack(1));
  // Another store's pack 1 (different nonce) copied over ours.
  auto other = PageStore::open(dir_.path() / "other", small_frames());
  ASSERT_TRUE(other.ok());
  put(**other, "a", a);
  std::filesystem::copy_file(dir_.path() / "other" / "packs" / pack_file_name(1), pack(1),
                             std::filesystem::copy_options::overwrite_existing);
  auto t = open()->load("a");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.error().message(), HasSubstr("the pack was replaced"));
}

TEST_F(PageStoreTest, RemoveReclaimsDeadFramesAndPacks) {
  auto s = open();
  auto x = zero_image(32);
  for (int p = 0; p < 32; ++p) fill_page(x, p, 100 + p);  // 8 frames in pack 1
  put(*s, "x", x);
  auto y = zero_image(16);
  for (int p = 0; p < 8; ++p) fill_page(y, p, 100 + p);   // frames 0 and 1 of pack 1
  for (int p = 8; p < 16; ++p) fill_page(y, p, 200 + p);  // 2 frames in pack 2
  PutStats sy = put(*s, "y", y);
  EXPECT_EQ(sy.pages_new, 8u);
  auto before = s->stats();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->live_frames, 10u);
  auto ix = s->inspect("x");
  ASSERT_TRUE(ix.ok());
  EXPECT_EQ(ix->pages_shared, 8u);
  EXPECT_EQ(ix->pages_unique, 24u);
  EXPECT_EQ(ix->frames, 8u);

  ASSERT_TRUE(s->remove("x").ok());
  auto after = s->stats();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->templates, 1u);
  EXPECT_EQ(after->packs, 2u);  // pack 1 keeps y's two frames
  EXPECT_EQ(after->live_frames, 4u);
  // Frames 2-7 of pack 1 (6 x ~16 KiB of random pages) were punched out.
  EXPECT_LT(after->bytes_on_disk + 80 * 1024, before->bytes_on_disk);
  EXPECT_EQ(read(*s, "y"), y);
  EXPECT_TRUE(s->verify("y").ok());
  auto names = s->list();
  EXPECT_THAT(*names, ElementsAre("y"));
  // Dead frames are never deduped against: x again rewrites its 24 pages y does not have.
  PutStats sx = put(*s, "x", x);
  EXPECT_EQ(sx.pages_new, 24u);
  EXPECT_EQ(sx.pages_deduped, 8u);
  EXPECT_EQ(read(*s, "x"), x);
  // Removing both leaves no pack at all.
  ASSERT_TRUE(s->remove("y").ok());
  ASSERT_TRUE(s->remove("x").ok());
  auto empty = s->stats();
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->packs, 0u);
  EXPECT_EQ(empty->templates, 0u);
  EXPECT_TRUE(testutil::files_in(dir_.path() / "store" / "packs").empty());
}

TEST_F(PageStoreTest, OrphanPackOfACrashedPutIsIgnoredThenReclaimed) {
  auto faulty = std::make_shared<FaultyFs>();
  StoreOptions o = small_frames();
  o.fs = faulty;
  auto s = open(o);
  auto a = image_a();
  // Find the manifest's create and make it and everything after it fail: the pack is renamed
  // into place but no manifest refers to it.
  faulty->reset();
  put(*s, "probe", a);
  auto log = faulty->log();
  uint64_t n = 0;
  for (uint64_t i = 0; i < log.size(); ++i)
    if (log[i].rfind("create", 0) == 0 && log[i].find(".vft.tmp") != std::string::npos) n = i + 1;
  ASSERT_GT(n, 0u);
  ASSERT_TRUE(s->remove("probe").ok());
  faulty->fail_at(n, EIO, /*sticky=*/true);
  TemplateInput in{"a", 0, "", {}, a};
  ASSERT_FALSE(s->put(in).ok());
  faulty->reset();
  auto st = s->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->templates, 0u);
  EXPECT_EQ(st->packs, 1u);  // the orphan
  // A put does not dedup against the orphan's frames.
  PutStats p = put(*s, "a", a);
  EXPECT_EQ(p.pages_new, 20u);
  ASSERT_TRUE(s->reclaim().ok());
  st = s->stats();
  EXPECT_EQ(st->packs, 1u);
  EXPECT_EQ(read(*s, "a"), a);
}

TEST_F(PageStoreTest, CorruptManifestBlocksPutAndReclaimButCanBeRemoved) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  put(*s, "b", zero_image(4));
  auto bytes = testutil::read_file(manifest("a"));
  bytes.back() ^= 1;
  testutil::write_file(manifest("a"), bytes);
  TemplateInput in{"c", 0, "", {}, a};
  auto r = s->put(in);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message(), HasSubstr(manifest("a").string()));
  EXPECT_FALSE(s->reclaim().ok());
  EXPECT_TRUE(s->remove("a").ok());  // unlinks, then reclaims the now-orphan pack
  auto st = s->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->packs, 0u);
}

TEST_F(PageStoreTest, LargeImageSpansSeveralWriteAndReadChunks) {
  StoreOptions o;
  o.frame_pages = 64;
  auto s = open(o);
  auto m = zero_image(10240 + 300);  // 40 MiB of incompressible pages, then zeros
  for (uint64_t p = 0; p < 10240; ++p) fill_page(m, p, p + 1);
  std::vector<std::string> steps;
  TemplateInput in{"big", 0, "", {}, m};
  auto r = s->put(in, [&](std::string_view step, uint64_t, uint64_t) { steps.emplace_back(step); });
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->pages_new, 10240u);
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "write"), 2);  // 32 MiB per write batch
  auto t = s->load("big");
  ASSERT_TRUE(t.ok());
  std::vector<uint8_t> back(t->mem_bytes());
  uint64_t last_done = 0, last_total = 0;
  Status st = s->read_memory(*t, back, [&](std::string_view step, uint64_t done, uint64_t total) {
    EXPECT_EQ(step, "read");
    last_done = done;
    last_total = total;
  });
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ(last_total, 160u);
  EXPECT_TRUE(back == m);
}

TEST_F(PageStoreTest, ConcurrentReadersGetTheSameBytes) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  auto t = s->load("a");
  ASSERT_TRUE(t.ok());
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        std::vector<uint8_t> mem(t->mem_bytes());
        if (s->read_memory(*t, mem).ok() && mem == a) ++good;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 20);
}

TEST_F(PageStoreTest, ReadMemoryChecksItsArguments) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  auto t = s->load("a");
  ASSERT_TRUE(t.ok());
  std::vector<uint8_t> small(kPageBytes);
  EXPECT_THAT(s->read_memory(*t, small).error().message(), HasSubstr("expected mem_bytes"));
  // A hand-made Template pointing at a frame that does not exist.
  Template bogus("a", 4 * kPageBytes, 0, "", {}, t->packs(), {{0, 1, {t->packs()[0].id, 99, 0}}});
  std::vector<uint8_t> mem(4 * kPageBytes);
  EXPECT_THAT(s->read_memory(bogus, mem).error().message(), HasSubstr("frame 99 does not exist"));
  Template outside("a", 4 * kPageBytes, 0, "", {}, t->packs(), {{3, 2, {t->packs()[0].id, 0, 0}}});
  EXPECT_THAT(s->read_memory(outside, mem).error().message(), HasSubstr("outside the 4 guest pages"));
}

// A killed `template create` leaves temp files; the next put (the store opened for writing)
// removes them, and an identity tells a re-created template from the one that was there.
TEST_F(PageStoreTest, PutRemovesStaleTempFilesAndIdentityChangesOnRecreate) {
  auto s = open();
  put(*s, "a", image_a());
  const auto store = dir_.path() / "store";
  const std::filesystem::path stale[] = {store / "packs" / (pack_file_name(7) + ".tmp"),
                                         store / "templates" / ".gone.vft.tmp"};
  for (const auto& p : stale) {
    FILE* f = fopen(p.c_str(), "w");
    ASSERT_NE(f, nullptr) << p;
    fputs("left by a killed put", f);
    fclose(f);
  }
  auto id1 = s->identity("a");
  ASSERT_TRUE(id1.ok()) << id1.error().message();
  put(*s, "b", image_a());
  for (const auto& p : stale) EXPECT_FALSE(std::filesystem::exists(p)) << p;
  ASSERT_TRUE(s->remove("a").ok());
  EXPECT_FALSE(s->identity("a").ok());
  put(*s, "a", image_a());
  auto id2 = s->identity("a");
  ASSERT_TRUE(id2.ok()) << id2.error().message();
  EXPECT_NE(*id1, *id2);
  EXPECT_EQ(*id2, *s->identity("a"));
  EXPECT_FALSE(s->identity("../x").ok());
}

// ---- memory images (open_image, verify_image)

std::vector<uint8_t> map_image(const MemoryImage& img, uint64_t bytes) {
  std::vector<uint8_t> out(bytes);
  void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, img.fd.get(), 0);
  EXPECT_NE(p, MAP_FAILED);
  if (p != MAP_FAILED) {
    std::memcpy(out.data(), p, bytes);
    ::munmap(p, bytes);
  }
  return out;
}

TEST_F(PageStoreTest, MemoryImageIsByteIdenticalSparseAndTrustedByItsStamp) {
  auto s = open();
  auto a = image_a();
  put(*s, "a", a);
  auto t = s->load("a");
  ASSERT_TRUE(t.ok()) << t.error().message();
  ASSERT_EQ(t->digest().size(), 32u);
  auto first = s->open_image(*t);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_TRUE(first->built);
  EXPECT_EQ(first->rebuilt_because, "");
  EXPECT_EQ(map_image(*first, a.size()), a);
  struct stat st;
  ASSERT_EQ(::fstat(first->fd.get(), &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), a.size());
  // Only pages 0-9 and 20-39 hold data (plus file-system block rounding).
  EXPECT_LE(uint64_t(st.st_blocks) * 512, 32u * kPageBytes);

  auto second = s->open_image(*t);
  ASSERT_TRUE(second.ok()) << second.error().message();
  EXPECT_FALSE(second->built);
  EXPECT_FALSE(second->content_checked);
  auto v = s->verify_image("a");
  ASSERT_TRUE(v.ok()) << v.error().message();
  EXPECT_EQ(*v, "");

  // Copied over itself (same bytes, new ctime): the content is checked, found good, re-stamped.
  {
    auto bytes = map_image(*second, a.size());
    std::ofstream(first->path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(bytes.data()),
                                                                         std::streamsize(bytes.size()));
  }
  auto copied = s->open_image(*t);
  ASSERT_TRUE(copied.ok()) << copied.error().message();
  EXPECT_FALSE(copied->built);
  EXPECT_TRUE(copied->content_checked);
  auto again = s->open_image(*t);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->content_checked);  // re-stamped

  // A side file that is not exactly what a build writes is never trusted.
  const auto side = first->path.parent_path() / (t->digest() + ".sum");
  std::ofstream(side, std::ios::app) << "extra\n";
  auto bad_side = s->open_image(*t);
  ASSERT_TRUE(bad_side.ok()) << bad_side.error().message();
  EXPECT_TRUE(bad_side->built);
  EXPECT_NE(bad_side->rebuilt_because.find("not a valid image side file"), std::string::npos)
      << bad_side->rebuilt_because;
  EXPECT_EQ(map_image(*bad_side, a.size()), a);
}

TEST_F(PageStoreTest, MemoryImagesOfRemovedTemplatesAreReclaimed) {
  auto s = open();
  put(*s, "a", image_a());
  auto b = image_a();
  fill_page(b, 50, 77);
  put(*s, "b", b);
  for (const char* n : {"a", "b"}) {
    auto t = s->load(n);
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE(s->open_image(*t).ok());
  }
  const auto images = dir_.path() / "store" / "images";
  auto count = [&] { return std::distance(std::filesystem::directory_iterator(images), {}); };
  EXPECT_EQ(count(), 4);  // two images, two side files
  ASSERT_TRUE(s->remove("a").ok());
  EXPECT_EQ(count(), 2);
  auto tb = s->load("b");
  ASSERT_TRUE(tb.ok());
  EXPECT_TRUE(std::filesystem::exists(images / (tb->digest() + ".img")));
  auto st = s->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_GT(st->bytes_on_disk, 0u);
}

TEST_F(PageStoreTest, FailedImageBuildLeavesNothingUsable) {
  // Fail each mutating step of a build in turn: the build fails with that step's error, and
  // the next open (on a healthy file system) builds a correct image.
  put(*open(), "a", image_a());
  const auto a = image_a();
  for (uint64_t n = 1;; n++) {
    std::filesystem::remove_all(dir_.path() / "store" / "images");
    auto faulty = std::make_shared<FaultyFs>();
    StoreOptions o = small_frames();
    o.fs = faulty;
    auto s = open(o);
    auto t = s->load("a");
    ASSERT_TRUE(t.ok());
    faulty->fail_at(n, EIO);
    auto img = s->open_image(*t);
    if (img.ok()) {
      EXPECT_GT(n, 5u);  // mkdir, create, ftruncate, write, fsync, rename, ... were all tried
      break;
    }
    EXPECT_NE(img.error().message().find(faulty->failed_op()), std::string::npos) << img.error().message();
    faulty->reset();
    auto healed = s->open_image(*t);
    ASSERT_TRUE(healed.ok()) << healed.error().message();
    EXPECT_EQ(map_image(*healed, a.size()), a) << "after failing step " << n << ": " << faulty->failed_op();
    ASSERT_LT(n, 50u);
  }
}

}  // namespace
}  // namespace vmfork::snapshot
