// Programs shared between clones without /dev/kvm: vmm::GuestMemory::overlay over a
// map_private() mapping of a memfd (the template's memory stands in), and engine::ProgramCache
// (one sealed memfd per file version). The pool test KernelReadyClonesShareTheProgramsPages
// runs the same on real clones.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/fd.h"
#include "engine/program_cache.h"
#include "vmm/guest_memory.h"

namespace vmfork {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMem = 4ull << 20;

// A memfd of `bytes`, every page filled with `fill`.
Fd filled_memfd(uint64_t bytes, uint8_t fill) {
  Fd fd(memfd_create("test", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(ftruncate(fd.get(), off_t(bytes)), 0);
  std::vector<uint8_t> buf(bytes, fill);
  EXPECT_EQ(pwrite(fd.get(), buf.data(), bytes, 0), ssize_t(bytes));
  return fd;
}

TEST(Overlay, SharesTheFileAndResetRestoresTheTemplate) {
  Fd tmpl = filled_memfd(kMem, 0x11);
  auto mem = vmm::GuestMemory::map_private(tmpl.get(), kMem);
  ASSERT_TRUE(mem.ok()) << mem.error().message();
  const uint64_t gpa = 1ull << 20, bytes = 8 * kPage;
  {
    Fd prog = filled_memfd(bytes, 0x22);
    ASSERT_TRUE(mem->overlay(gpa, prog.get(), bytes).ok());
    EXPECT_FALSE(mem->overlay(gpa, prog.get(), bytes).ok()) << "a second overlay";
  }  // the mapping holds the file: its fd may close
  EXPECT_EQ(mem->host()[gpa], 0x22);
  EXPECT_EQ(mem->host()[gpa + bytes - 1], 0x22);
  EXPECT_EQ(mem->host()[gpa - 1], 0x11);
  EXPECT_EQ(mem->host()[gpa + bytes], 0x11);
  auto pages = mem->private_resident_pages();
  ASSERT_TRUE(pages.ok());
  EXPECT_EQ(*pages, 0u) << "reading the overlay is not private memory";
  mem->host()[gpa + kPage] = 0x33;  // a copy-on-write copy of one overlay page
  mem->host()[0] = 0x44;            // and of one template page
  pages = mem->private_resident_pages();
  ASSERT_TRUE(pages.ok());
  EXPECT_EQ(*pages, 2u);

  auto list_all = [](uint64_t, const uint8_t*, const uint8_t*, const void*) { return vmm::GuestMemory::PageChange::kList; };
  uint64_t listed[8];
  auto copy = mem->copy_back_changed(listed, 8, list_all, nullptr);
  ASSERT_TRUE(copy.ok()) << copy.error().message();
  EXPECT_EQ(copy->changed, 1u) << "only the template page is compared; the overlay is dropped";
  EXPECT_EQ(copy->listed, 1u);
  EXPECT_EQ(listed[0], 0u);
  for (uint64_t a = 0; a < kMem; a += kPage) ASSERT_EQ(mem->host()[a], 0x11) << "gpa " << a;
  // Dropped: a new overlay may come, and discard_private drops it as well.
  Fd prog = filled_memfd(bytes, 0x55);
  ASSERT_TRUE(mem->overlay(gpa, prog.get(), bytes).ok());
  EXPECT_EQ(mem->host()[gpa], 0x55);
  ASSERT_TRUE(mem->discard_private().ok());
  EXPECT_EQ(mem->host()[gpa], 0x11);
}

TEST(Overlay, RefusesBadRangesAndAnonymousMemory) {
  Fd tmpl = filled_memfd(kMem, 0);
  auto mem = vmm::GuestMemory::map_private(tmpl.get(), kMem);
  ASSERT_TRUE(mem.ok());
  Fd prog = filled_memfd(kPage, 1);
  EXPECT_FALSE(mem->overlay(100, prog.get(), kPage).ok());
  EXPECT_FALSE(mem->overlay(0, prog.get(), 100).ok());
  EXPECT_FALSE(mem->overlay(kMem - kPage, prog.get(), 2 * kPage).ok());
  EXPECT_FALSE(mem->overlay(0, prog.get(), 0).ok());
  auto anon = vmm::GuestMemory::create_anonymous(kMem);
  ASSERT_TRUE(anon.ok());
  auto st = anon->overlay(0, prog.get(), kPage);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("not a file's private mapping"), std::string::npos);
}

class Cache : public testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = testing::TempDir() + "/vmfork_progcache_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A copy of /bin/busybox (a static ELF) at `name`.
  std::string copy_busybox(const std::string& name) {
    auto p = dir_ / name;
    std::filesystem::copy_file("/bin/busybox", p);
    return p;
  }
  std::filesystem::path dir_;
};

Fd open_ro(const std::string& p) { return Fd(open(p.c_str(), O_RDONLY | O_CLOEXEC)); }

TEST_F(Cache, OneSealedCopyPerFileVersion) {
  engine::ProgramCache cache;
  const std::string path = copy_busybox("bb");
  const uint64_t size = std::filesystem::file_size(path);
  Fd a = open_ro(path), b = open_ro(path);
  auto p1 = cache.get(a.get(), path, 1ull << 30);
  ASSERT_TRUE(p1.ok()) << p1.error().message();
  auto p2 = cache.get(b.get(), path, 1ull << 30);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p1->get(), p2->get()) << "the same file twice: one copy";
  EXPECT_EQ((*p1)->bytes, size);
  EXPECT_EQ((*p1)->mapped_bytes, (size + kPage - 1) / kPage * kPage);
  // Sealed: no writes, no growing, no shrinking, by anyone.
  const int seals = fcntl((*p1)->memfd.get(), F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
            F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  EXPECT_EQ(pwrite((*p1)->memfd.get(), "x", 1, 0), -1);
  // The bytes are the file's, zero-padded to a page.
  std::vector<uint8_t> want(size), got((*p1)->mapped_bytes);
  ASSERT_EQ(pread(a.get(), want.data(), size, 0), ssize_t(size));
  ASSERT_EQ(pread((*p1)->memfd.get(), got.data(), got.size(), 0), ssize_t(got.size()));
  EXPECT_EQ(std::memcmp(want.data(), got.data(), size), 0);
  for (uint64_t i = size; i < got.size(); i++) ASSERT_EQ(got[i], 0);

  // A write to the file is a new version (st_ctim): read again, not the stale copy.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(size - 1));
    f.put(char(want[size - 1] ^ 0xff));
  }
  Fd c = open_ro(path);
  auto p3 = cache.get(c.get(), path, 1ull << 30);
  ASSERT_TRUE(p3.ok()) << p3.error().message();
  EXPECT_NE(p3->get(), p1->get());
  auto st = cache.stats();
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 2u);
  EXPECT_EQ(st.entries, 2u);
}

TEST_F(Cache, BoundedAndRefusesWhatIsNotAStaticProgram) {
  engine::ProgramCache cache(2, 64ull << 20);
  std::vector<Fd> fds;
  for (int i = 0; i < 3; i++) {
    const std::string p = copy_busybox("bb" + std::to_string(i));
    fds.push_back(open_ro(p));
    auto r = cache.get(fds.back().get(), p, 1ull << 30);
    ASSERT_TRUE(r.ok()) << r.error().message();
  }
  EXPECT_EQ(cache.stats().entries, 2u) << "least recently used evicted";

  const std::string big = copy_busybox("big");
  Fd fb = open_ro(big);
  auto r = cache.get(fb.get(), big, 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("does not fit in guest memory"), std::string::npos) << r.error().message();

  const std::string text = (dir_ / "script.sh").string();
  std::ofstream(text) << "#!/bin/sh\necho hi\n";
  Fd ft = open_ro(text);
  r = cache.get(ft.get(), text, 1ull << 30);
  ASSERT_FALSE(r.ok());
  Fd dir = open_ro(dir_.string());
  r = cache.get(dir.get(), dir_.string(), 1ull << 30);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("not a regular file"), std::string::npos);
  EXPECT_EQ(cache.stats().entries, 2u) << "nothing kept of what failed";
}

}  // namespace
}  // namespace vmfork
