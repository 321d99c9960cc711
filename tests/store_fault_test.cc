// Crash safety of put and remove under injected file-system faults: for every N from 1 to the
// number of mutating operations a successful put (remove) performs, failing operation N
// returns an error naming the call, and the store reopened on the real file system still
// holds every other template intact and verifying, and the template being put (removed) is
// either absent or complete. Faults are tried as one-off (cleanup runs) and sticky (a dead
// disk: cleanup fails too, leaving orphans that a later reclaim removes), with EIO and ENOSPC.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "snapshot/faulty_fs.h"
#include "snapshot/page_store.h"
#include "snapshot_test_util.h"

namespace vmfork::snapshot {
namespace {

using testing::HasSubstr;
using testutil::fill_page;
using testutil::fill_text_page;
using testutil::TempDir;
using testutil::zero_image;

struct Images {
  std::vector<uint8_t> a, b, c, d;
  Images() : a(zero_image(48)), b(zero_image(48)), c(zero_image(24)), d(zero_image(16)) {
    for (int p = 0; p < 24; ++p) fill_page(a, p, p + 1);
    for (int p = 30; p < 40; ++p) fill_text_page(a, p, p);
    // b shares a's pages 0-11, and has 20 of its own.
    for (int p = 0; p < 12; ++p) fill_page(b, p, p + 1);
    for (int p = 12; p < 32; ++p) fill_page(b, p, 500 + p);
    // c shares b's own pages 12-19 (so b's pack stays partly live after b is removed).
    for (int p = 0; p < 8; ++p) fill_page(c, p, 500 + 12 + p);
    for (int p = 8; p < 12; ++p) fill_page(c, p, 900 + p);
    for (int p = 0; p < 16; ++p) fill_page(d, p, 1300 + p);
  }
};

const Images& images() {
  static const Images im;
  return im;
}

StoreOptions options(std::shared_ptr<StoreFs> fs = nullptr) {
  StoreOptions o;
  o.frame_pages = 4;
  o.fs = std::move(fs);
  return o;
}

std::unique_ptr<PageStore> open_store(const std::filesystem::path& dir, std::shared_ptr<StoreFs> fs = nullptr) {
  auto s = PageStore::open(dir, options(std::move(fs)));
  EXPECT_TRUE(s.ok()) << s.error().message();
  return s.ok() ? std::move(*s) : nullptr;
}

Status put(PageStore& s, const std::string& name, const std::vector<uint8_t>& mem) {
  TemplateInput in{name, 1, "{}", {{5, {1, 2}}}, mem};
  auto r = s.put(in);
  return r.ok() ? Status::Ok() : Status(r.error());
}

// The template is listed, verifies and reads back as `mem`.
void expect_intact(const PageStore& s, const std::string& name, const std::vector<uint8_t>& mem,
                   const std::string& when) {
  Status v = s.verify(name);
  ASSERT_TRUE(v.ok()) << when << ": verify " << name << ": " << v.error().message();
  auto t = s.load(name);
  ASSERT_TRUE(t.ok()) << when << ": " << t.error().message();
  std::vector<uint8_t> back(t->mem_bytes());
  Status r = s.read_memory(*t, back);
  ASSERT_TRUE(r.ok()) << when << ": " << r.error().message();
  EXPECT_TRUE(back == mem) << when << ": " << name << " reads back different bytes";
}

bool listed(const PageStore& s, const std::string& name) {
  auto l = s.list();
  EXPECT_TRUE(l.ok());
  return l.ok() && std::find(l->begin(), l->end(), name) != l->end();
}

bool has_temp_files(const std::filesystem::path& dir) {
  for (const char* sub : {"packs", "templates"})
    for (const auto& f : testutil::files_in(dir / sub))
      if (f.ends_with(".tmp")) return true;
  return false;
}

// Mutating operations of a successful `op` on a fresh store prepared by `setup`.
template <typename Setup, typename Op>
uint64_t count_ops(Setup setup, Op op) {
  TempDir dir;
  auto path = dir.path() / "store";
  setup(path);
  auto faulty = std::make_shared<FaultyFs>();
  auto s = open_store(path, faulty);
  faulty->reset();
  Status st = op(*s);
  EXPECT_TRUE(st.ok()) << st.error().message();
  return faulty->ops();
}

struct Mode {
  int err;
  bool sticky;
};
const Mode kModes[] = {{EIO, false}, {ENOSPC, false}, {EIO, true}, {ENOSPC, true}};

TEST(StoreFault, PutFailingAtEveryOperationLeavesTheStoreValid) {
  const Images& im = images();
  auto setup = [&](const std::filesystem::path& p) {
    auto s = open_store(p);
    ASSERT_TRUE(put(*s, "A", im.a).ok());
  };
  auto put_b = [&](PageStore& s) { return put(s, "B", im.b); };
  uint64_t total = 0;
  {
    testing::ScopedTrace trace(__FILE__, __LINE__, "counting");
    TempDir dir;
    auto path = dir.path() / "store";
    setup(path);
    auto faulty = std::make_shared<FaultyFs>();
    auto s = open_store(path, faulty);
    faulty->reset();
    ASSERT_TRUE(put_b(*s).ok());
    total = faulty->ops();
    // create, write, fsync, rename, fsync dir: once for the pack, once for the manifest.
    EXPECT_EQ(total, 10u) << testing::PrintToString(faulty->log());
  }
  for (const Mode& mode : kModes) {
    for (uint64_t n = 1; n <= total + 1; ++n) {
      const std::string when = "put B failing at operation " + std::to_string(n) + " with " + std::strerror(mode.err) +
                               (mode.sticky ? " (sticky)" : "");
      SCOPED_TRACE(when);
      TempDir dir;
      auto path = dir.path() / "store";
      setup(path);
      auto faulty = std::make_shared<FaultyFs>();
      auto s = open_store(path, faulty);
      faulty->fail_at(n, mode.err, mode.sticky);
      Status st = put_b(*s);
      if (n > total) {
        EXPECT_TRUE(st.ok());
        EXPECT_TRUE(faulty->failed_op().empty());
      } else {
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().sys_errno, mode.err);
        EXPECT_THAT(st.error().message(), HasSubstr(faulty->failed_op()));
        if (!mode.sticky) {
          EXPECT_FALSE(has_temp_files(path)) << "temp files left behind";
        }
      }
      // Reopened on the real file system.
      auto real = open_store(path);
      EXPECT_TRUE(listed(*real, "A"));
      expect_intact(*real, "A", im.a, when);
      if (listed(*real, "B")) expect_intact(*real, "B", im.b, when);
      // Reclaim removes whatever the failed put left, and the store takes B afterwards.
      ASSERT_TRUE(real->reclaim().ok());
      EXPECT_FALSE(has_temp_files(path));
      if (!listed(*real, "B")) {
        ASSERT_TRUE(put(*real, "B", im.b).ok());
      }
      expect_intact(*real, "A", im.a, when + ", after reclaim");
      expect_intact(*real, "B", im.b, when + ", after reclaim");
      auto stats = real->stats();
      ASSERT_TRUE(stats.ok());
      EXPECT_EQ(stats->packs, 2u);
    }
  }
}

TEST(StoreFault, RemoveFailingAtEveryOperationLeavesTheStoreValid) {
  const Images& im = images();
  // A, B (shares A's pages), C (shares some of B's own pages), and an orphan pack left by a
  // put of D that failed before its manifest was written: removing B then unlinks B's
  // manifest, punches B's dead frames (C keeps the others), and unlinks the orphan.
  auto setup = [&](const std::filesystem::path& p) {
    auto s = open_store(p);
    ASSERT_TRUE(put(*s, "A", im.a).ok());
    ASSERT_TRUE(put(*s, "B", im.b).ok());
    ASSERT_TRUE(put(*s, "C", im.c).ok());
    auto faulty = std::make_shared<FaultyFs>();
    auto f = open_store(p, faulty);
    faulty->fail_at(6, EIO, true);  // the manifest's create, and the cleanup after it
    ASSERT_FALSE(put(*f, "D", im.d).ok());
    ASSERT_TRUE(std::filesystem::exists(p / "packs" / pack_file_name(4)));
  };
  auto remove_b = [](PageStore& s) { return s.remove("B"); };
  const uint64_t total = count_ops(setup, remove_b);
  // unlink manifest, fsync dir, at least one punch, unlink of the orphan pack, fsync dir.
  EXPECT_GE(total, 5u);
  for (const Mode& mode : kModes) {
    for (uint64_t n = 1; n <= total + 1; ++n) {
      const std::string when = "remove B failing at operation " + std::to_string(n) + " with " +
                               std::strerror(mode.err) + (mode.sticky ? " (sticky)" : "");
      SCOPED_TRACE(when);
      TempDir dir;
      auto path = dir.path() / "store";
      setup(path);
      auto faulty = std::make_shared<FaultyFs>();
      auto s = open_store(path, faulty);
      faulty->fail_at(n, mode.err, mode.sticky);
      Status st = remove_b(*s);
      if (n > total) {
        EXPECT_TRUE(st.ok());
      } else {
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().sys_errno, mode.err);
        EXPECT_THAT(st.error().message(), HasSubstr(faulty->failed_op()));
      }
      auto real = open_store(path);
      expect_intact(*real, "A", im.a, when);
      expect_intact(*real, "C", im.c, when);
      if (listed(*real, "B")) expect_intact(*real, "B", im.b, when);
      // Finishing the job on the real file system always works and leaves A and C intact.
      Status finish = listed(*real, "B") ? real->remove("B") : real->reclaim();
      ASSERT_TRUE(finish.ok()) << finish.error().message();
      expect_intact(*real, "A", im.a, when + ", after reclaim");
      expect_intact(*real, "C", im.c, when + ", after reclaim");
      auto stats = real->stats();
      ASSERT_TRUE(stats.ok());
      EXPECT_EQ(stats->templates, 2u);
      EXPECT_EQ(stats->packs, 3u);  // A's, B's (C still uses part of it), C's
      EXPECT_FALSE(has_temp_files(path));
    }
  }
}

}  // namespace
}  // namespace vmfork::snapshot
