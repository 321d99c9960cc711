// The guest kernel's EROFS reader (guest-kernel/fs/erofs.cc, built for the host) against real
// images from Debian's mkfs.erofs and the host's own view of the same trees, plus corrupted
// images. Thread-safety: the reader has one global image; tests run one at a time.
#include "guest-kernel/fs/erofs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace erofs = k::erofs;
namespace stdfs = std::filesystem;

constexpr uint64_t kBlock = 4096;

/// splitmix64: deterministic pseudo-random words.
uint64_t mix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// A fresh directory under testing::TempDir(), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = testing::TempDir() + "vmfork-erofs-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    stdfs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const stdfs::path& path() const { return path_; }

 private:
  stdfs::path path_;
};

/// Image bytes in an allocation of exactly their size, so ASan flags any read past the end.
struct Image {
  std::unique_ptr<uint8_t[]> bytes;
  uint64_t size = 0;

  Image() = default;
  Image(const uint8_t* p, uint64_t n) : bytes(new uint8_t[n ? n : 1]), size(n) {
    if (n) memcpy(bytes.get(), p, n);
  }
  const uint8_t* data() const { return bytes.get(); }
};

uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return uint32_t(le16(p)) | uint32_t(le16(p + 2)) << 16; }
uint64_t le64(const uint8_t* p) { return uint64_t(le32(p)) | uint64_t(le32(p + 4)) << 32; }

/// Runs mkfs.erofs (quiet) with `opts` over `tree` into `out` and returns the image.
Image mkfs(const stdfs::path& tree, const stdfs::path& out, const std::vector<std::string>& opts) {
  std::vector<std::string> args = {"mkfs.erofs", "--quiet"};
  args.insert(args.end(), opts.begin(), opts.end());
  args.push_back(out.string());
  args.push_back(tree.string());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, "mkfs.erofs", nullptr, nullptr, argv.data(), environ);
  EXPECT_EQ(rc, 0) << "posix_spawnp mkfs.erofs: " << strerror(rc);
  if (rc) return {};
  int st = 0;
  EXPECT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "mkfs.erofs failed, status " << st;
  std::ifstream f(out, std::ios::binary);
  std::vector<char> v((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return Image(reinterpret_cast<const uint8_t*>(v.data()), v.size());
}

void write_file(const stdfs::path& p, const std::string& content) {
  std::ofstream f(p, std::ios::binary);
  f.write(content.data(), std::streamsize(content.size()));
  ASSERT_TRUE(f.good()) << p;
}

std::string random_bytes(uint64_t n, uint64_t seed) {
  std::string s(n, '\0');
  for (uint64_t i = 0; i < n; i += 8) {
    uint64_t w = mix(seed);
    memcpy(s.data() + i, &w, std::min<uint64_t>(8, n - i));
  }
  return s;
}

std::string slurp(const stdfs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

uint8_t dt_of(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFREG: return DT_REG;
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFCHR: return DT_CHR;
    case S_IFBLK: return DT_BLK;
    case S_IFIFO: return DT_FIFO;
    case S_IFSOCK: return DT_SOCK;
  }
  return DT_UNKNOWN;
}

/// What a walk saw, for the tests to check coverage.
struct WalkStats {
  uint64_t inodes = 0, files = 0, dirs = 0, symlinks = 0, specials = 0, bytes = 0;
  uint64_t compact = 0, extended = 0, flat_plain = 0, flat_inline = 0, with_xattrs = 0;
  uint64_t tail_pages_zeroed = 0, tail_pages_dirty = 0;
};

/// Compares the mounted image with the host tree it was built from.
class Checker {
 public:
  Checker(const Image& img, uint64_t fixed_mtime, bool thorough)
      : img_(img), fixed_mtime_(fixed_mtime), thorough_(thorough) {
    const uint8_t* sb = img.data() + 1024;
    meta_off_ = uint64_t(le32(sb + 40)) * kBlock;
    build_time_ = le64(sb + 24);
  }

  void dir(const stdfs::path& host, uint64_t nid, uint64_t parent_nid) {
    SCOPED_TRACE(host.string());
    erofs::Inode d;
    ASSERT_EQ(erofs::get_inode(nid, &d), 0);
    inode(host, d);
    ASSERT_EQ(d.mode & S_IFMT, S_IFDIR);

    std::map<std::string, std::pair<uint64_t, uint8_t>> seen;
    std::vector<std::pair<uint64_t, std::string>> cursors;  // cursor before each entry
    uint64_t pos = 0;
    std::string prev;
    for (;;) {
      uint64_t before = pos;
      erofs::Dirent e;
      int64_t r = erofs::readdir(d, &pos, &e);
      ASSERT_GE(r, 0);
      if (r == 0) break;
      ASSERT_GT(pos, before);
      std::string name(e.name, e.name_len);
      if (!prev.empty()) { EXPECT_LT(prev, name) << "entries not sorted"; }
      prev = name;
      EXPECT_TRUE(seen.emplace(name, std::make_pair(e.nid, e.type)).second) << name;
      cursors.emplace_back(before, name);
    }
    // Stored cursors resume at the same entry.
    uint64_t seed = nid;
    for (int i = 0; i < 20 && !cursors.empty(); i++) {
      auto& [c, name] = cursors[mix(seed) % cursors.size()];
      erofs::Dirent e;
      uint64_t p = c;
      ASSERT_EQ(erofs::readdir(d, &p, &e), 1);
      EXPECT_EQ(std::string(e.name, e.name_len), name);
    }
    ASSERT_TRUE(seen.count(".") && seen.count(".."));
    EXPECT_EQ(seen["."].first, nid);
    EXPECT_EQ(seen[".."].first, parent_nid);
    EXPECT_EQ(seen["."].second, DT_DIR);

    std::set<std::string> host_names;
    DIR* hd = opendir(host.c_str());
    ASSERT_NE(hd, nullptr);
    while (dirent* he = ::readdir(hd)) {
      std::string n = he->d_name;
      if (n != "." && n != "..") host_names.insert(n);
    }
    closedir(hd);
    std::set<std::string> image_names;
    for (auto& [n, v] : seen)
      if (n != "." && n != "..") image_names.insert(n);
    EXPECT_EQ(image_names, host_names);

    for (auto& [name, v] : seen) {
      uint64_t found = ~0ull;
      EXPECT_EQ(erofs::lookup(d, name.data(), name.size(), &found), 0) << name;
      EXPECT_EQ(found, v.first) << name;
      // Near misses on both sides of every name.
      for (const std::string& miss : {name + "~", name + std::string(1, '\0'),
                                      name.substr(0, name.size() - 1) + "\x01", name + "\xff"}) {
        if (seen.count(miss) || miss.empty()) continue;
        EXPECT_EQ(erofs::lookup(d, miss.data(), miss.size(), &found), -ENOENT) << miss;
      }
    }
    for (const std::string& miss : {std::string("\x01"), std::string("\xff\xff"),
                                    std::string(255, 'z'), std::string(256, 'a')}) {
      uint64_t found;
      EXPECT_EQ(erofs::lookup(d, miss.data(), miss.size(), &found), -ENOENT);
    }

    for (auto& [name, v] : seen) {
      if (name == "." || name == "..") continue;
      stdfs::path hp = host / name;
      struct stat st;
      ASSERT_EQ(lstat(hp.c_str(), &st), 0) << hp;
      EXPECT_EQ(v.second, dt_of(st.st_mode)) << name;
      if (S_ISDIR(st.st_mode)) {
        dir(hp, v.first, nid);
      } else {
        erofs::Inode ino;
        ASSERT_EQ(erofs::get_inode(v.first, &ino), 0) << name;
        inode(hp, ino);
      }
    }
  }

  WalkStats stats;

 private:
  void inode(const stdfs::path& hp, const erofs::Inode& ino) {
    struct stat st;
    ASSERT_EQ(lstat(hp.c_str(), &st), 0);
    stats.inodes++;
    const uint8_t* raw = img_.data() + meta_off_ + ino.nid * 32;
    bool extended = le16(raw) & 1;
    (extended ? stats.extended : stats.compact)++;
    if (le16(raw + 2)) stats.with_xattrs++;
    EXPECT_EQ(ino.mode, st.st_mode);
    EXPECT_EQ(ino.uid, st.st_uid);
    EXPECT_EQ(ino.gid, st.st_gid);
    EXPECT_EQ(ino.nlink, st.st_nlink);
    if (fixed_mtime_) {
      EXPECT_EQ(ino.mtime, fixed_mtime_);
    } else if (extended) {
      EXPECT_EQ(ino.mtime, uint64_t(st.st_mtim.tv_sec));
      EXPECT_EQ(ino.mtime_nsec, uint64_t(st.st_mtim.tv_nsec));
    } else {
      EXPECT_EQ(ino.mtime, build_time_);
    }
    switch (st.st_mode & S_IFMT) {
      case S_IFREG: stats.files++; data(hp, ino, slurp(hp)); break;
      case S_IFDIR: stats.dirs++; layout(ino); break;
      case S_IFLNK: {
        stats.symlinks++;
        std::string target(8192, '\0');
        ssize_t n = ::readlink(hp.c_str(), target.data(), target.size());
        ASSERT_GT(n, 0);
        target.resize(size_t(n));
        EXPECT_EQ(ino.size, target.size());
        std::string got(target.size() + 10, '\0');
        EXPECT_EQ(erofs::readlink(ino, got.data(), got.size()), int64_t(target.size()));
        got.resize(target.size());
        EXPECT_EQ(got, target);
        EXPECT_EQ(erofs::readlink(ino, got.data(), 1), 1);
        EXPECT_EQ(got[0], target[0]);
        data(hp, ino, target);
        break;
      }
      default:
        stats.specials++;
        EXPECT_EQ(ino.size, 0u);
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) { EXPECT_EQ(ino.rdev, st.st_rdev); }
        char c;
        EXPECT_EQ(erofs::readlink(ino, &c, 1), -EINVAL);
    }
    if ((st.st_mode & S_IFMT) != S_IFLNK) {
      char c;
      EXPECT_EQ(erofs::readlink(ino, &c, 1), -EINVAL);
    }
  }

  void layout(const erofs::Inode& ino) {
    (ino.layout == 0 ? stats.flat_plain : stats.flat_inline)++;
    EXPECT_TRUE(ino.layout == 0 || ino.layout == 2);
    EXPECT_EQ(ino.inline_off != 0, ino.layout == 2);
  }

  // File data through read() and page_offset().
  void data(const stdfs::path& hp, const erofs::Inode& ino, const std::string& want) {
    SCOPED_TRACE(hp.string());
    layout(ino);
    ASSERT_EQ(ino.size, want.size());
    stats.bytes += want.size();
    std::string got(want.size() + 100, '\x55');
    ASSERT_EQ(erofs::read(ino, 0, got.data(), got.size()), int64_t(want.size()));
    got.resize(want.size());
    EXPECT_TRUE(got == want) << "whole-file read differs";
    char c;
    EXPECT_EQ(erofs::read(ino, want.size(), &c, 1), 0);
    EXPECT_EQ(erofs::read(ino, want.size() + 5000, &c, 1), 0);
    EXPECT_EQ(erofs::read(ino, ~0ull, &c, 1), 0);

    if (thorough_) {
      uint64_t seed = ino.nid * 7919 + want.size();
      std::vector<std::pair<uint64_t, uint64_t>> probes = {
          {0, 1}, {1, 4095}, {4095, 2}, {4096, 4096}, {4097, 8191}, {want.size() / 2, 1}};
      if (!want.empty()) probes.emplace_back(want.size() - 1, 10);
      for (int i = 0; i < 24; i++) {
        uint64_t off = want.empty() ? 0 : mix(seed) % want.size();
        probes.emplace_back(off, mix(seed) % 3 == 0 ? mix(seed) % 20000 : mix(seed) % 64);
      }
      for (auto [off, n] : probes) {
        std::string buf(n, '\0');
        int64_t r = erofs::read(ino, off, buf.data(), n);
        uint64_t expect = off >= want.size() ? 0 : std::min<uint64_t>(n, want.size() - off);
        ASSERT_EQ(r, int64_t(expect)) << "off " << off << " n " << n;
        EXPECT_EQ(0, memcmp(buf.data(), want.data() + std::min<uint64_t>(off, want.size()), expect))
            << "off " << off << " n " << n;
      }
    }

    // page_offset: every page but an inline tail maps straight into the image.
    uint64_t pages = (want.size() + kBlock - 1) / kBlock;
    for (uint64_t p = 0; p < pages; p++) {
      int64_t at = erofs::page_offset(ino, p * kBlock);
      bool last = p + 1 == pages;
      if (at < 0) {
        EXPECT_TRUE(last && ino.layout == 2) << "page " << p;
        continue;
      }
      ASSERT_EQ(at % int64_t(kBlock), 0);
      ASSERT_LE(uint64_t(at) + kBlock, img_.size);
      uint64_t n = std::min<uint64_t>(kBlock, want.size() - p * kBlock);
      ASSERT_EQ(0, memcmp(img_.data() + at, want.data() + p * kBlock, n)) << "page " << p;
      if (n < kBlock) {
        bool zero = std::all_of(img_.data() + at + n, img_.data() + at + kBlock,
                                [](uint8_t b) { return b == 0; });
        (zero ? stats.tail_pages_zeroed : stats.tail_pages_dirty)++;
      }
    }
    EXPECT_EQ(erofs::page_offset(ino, pages * kBlock), -1);
    if (want.size() > 1) { EXPECT_EQ(erofs::page_offset(ino, 1), -1); }
  }

  const Image& img_;
  uint64_t meta_off_ = 0, build_time_ = 0, fixed_mtime_;
  bool thorough_;
};

/// Mounts `img` and compares it with `tree`; returns what it saw.
WalkStats check_image(const Image& img, const stdfs::path& tree, uint64_t fixed_mtime,
                      bool thorough) {
  EXPECT_EQ(erofs::mount(img.data(), img.size), 0);
  Checker c(img, fixed_mtime, thorough);
  uint64_t root = erofs::root_nid();
  c.dir(tree, root, root);
  return c.stats;
}

/// The tree the format tests use: every size class, name shape and file type we can make.
struct RichTree {
  bool xattrs = false, root = false;

  void build(const stdfs::path& t) {
    root = geteuid() == 0;
    stdfs::create_directories(t);
    uint64_t seed = 42;
    for (uint64_t n : {0ul, 1ul, 100ul, 4095ul, 4096ul, 4097ul, 8192ul, 12287ul, 65536ul + 3})
      write_file(t / ("size" + std::to_string(n)), random_bytes(n, mix(seed)));
    write_file(t / "big10m", random_bytes(10 << 20, mix(seed)));
    write_file(t / "big10m_tail", random_bytes((10 << 20) + 777, mix(seed)));
    std::string text;
    while (text.size() < 200000) text += "compressible text " + std::to_string(text.size());
    write_file(t / "text", text);

    // Names: the longest, and characters sorting before '.' (so "." and ".." are not first).
    // mkfs.erofs 1.5 truncates a 255-byte name to 254 bytes and then fails to find the file,
    // so 254 is the longest name a Debian 12 image can hold.
    write_file(t / std::string(254, 'L'), "long name");
    stdfs::create_directory(t / std::string(254, 'D'));
    write_file(t / std::string(254, 'D') / std::string(254, 'x'), "inside");
    stdfs::create_directory(t / "sorting");
    for (const char* n : {"!bang", "-dash", "+plus", ",comma", "#hash", "a", "A", "~tilde",
                          "...", ".hidden", "-", "\xc3\xa9t\xc3\xa9", "\x7f", "\xff", " space"})
      write_file(t / "sorting" / n, n);

    // A 3,000-entry directory spanning many blocks, with mixed types and sizes.
    stdfs::create_directory(t / "many");
    for (int i = 0; i < 3000; i++) {
      char name[64];
      snprintf(name, sizeof name, "entry-%05d%s", i, i % 7 ? "" : "-with-a-longer-name");
      stdfs::path p = t / "many" / name;
      if (i % 100 == 0)
        stdfs::create_directory(p);
      else if (i % 37 == 0)
        stdfs::create_symlink(std::string("target-") + name, p);
      else
        write_file(p, random_bytes(uint64_t(i % 53) * 97, mix(seed)));
    }

    stdfs::create_directory(t / "emptydir");
    stdfs::path deep = t / "nest";
    for (int i = 0; i < 24; i++) deep /= "d" + std::to_string(i);
    stdfs::create_directories(deep);
    write_file(deep / "bottom", "deep file");

    // Symlinks: short, to a directory, dangling, 1000 bytes, and the longest (4095 bytes).
    stdfs::create_symlink("size100", t / "link_short");
    stdfs::create_symlink("nest/d0", t / "link_dir");
    stdfs::create_symlink("/does/not/exist", t / "link_dangling");
    stdfs::create_symlink(std::string(1000, 's'), t / "link_1000");
    std::string longest;
    while (longest.size() < 4095) longest += "component/";
    longest.resize(4095);
    stdfs::create_symlink(longest, t / "link_4095");

    // Hard links, special files, modes.
    write_file(t / "hard1", "hardlinked");
    stdfs::create_hard_link(t / "hard1", t / "hard2");
    EXPECT_EQ(mkfifo((t / "fifo").c_str(), 0640), 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string sp = (t / "sock").string();
    if (s >= 0 && sp.size() < sizeof a.sun_path) {
      memcpy(a.sun_path, sp.c_str(), sp.size() + 1);
      EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    }
    if (s >= 0) close(s);
    write_file(t / "mode600", "x");
    chmod((t / "mode600").c_str(), 0600);
    write_file(t / "setuid", "x");
    chmod((t / "setuid").c_str(), 04755);
    stdfs::create_directory(t / "sticky");
    chmod((t / "sticky").c_str(), 01777);

    // Distinct mtimes (with nanoseconds) force extended inodes unless mtimes are ignored.
    timespec ts[2] = {{1000000000, 123456789}, {1000000000, 123456789}};
    utimensat(AT_FDCWD, (t / "size100").c_str(), ts, AT_SYMLINK_NOFOLLOW);

    if (root) {
      EXPECT_EQ(mknod((t / "chr").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
      EXPECT_EQ(mknod((t / "blk").c_str(), S_IFBLK | 0660, makedev(8, 300)), 0);
      write_file(t / "owned", "x");
      EXPECT_EQ(chown((t / "owned").c_str(), 1000, 1001), 0);
      write_file(t / "owned_big", "x");  // ids past 16 bits need an extended inode
      EXPECT_EQ(chown((t / "owned_big").c_str(), 70000, 80000), 0);
    }

    // Inline xattrs move a FLAT_INLINE tail: put some on files with tails and on a directory.
    for (const char* f : {"size100", "size4097", "sorting"}) {
      std::string v(40, 'v');
      if (setxattr((t / f).c_str(), "user.vmfork", v.data(), v.size(), 0) == 0 ||
          (root && setxattr((t / f).c_str(), "trusted.vmfork", v.data(), v.size(), 0) == 0))
        xattrs = true;
    }
  }
};

class ErofsRich : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    tree_.build(dir_->path() / "tree");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static stdfs::path tree() { return dir_->path() / "tree"; }
  static stdfs::path out(const char* name) { return dir_->path() / name; }
  static TempDir* dir_;
  static RichTree tree_;
};
TempDir* ErofsRich::dir_ = nullptr;
RichTree ErofsRich::tree_;

TEST_F(ErofsRich, DefaultOptionsMatchHostTree) {
  Image img = mkfs(tree(), out("default.img"), {});
  ASSERT_GT(img.size, 0u);
  EXPECT_EQ(img.size, uint64_t(le32(img.data() + 1024 + 36)) * kBlock);  // blocks * 4096
  WalkStats s = check_image(img, tree(), 0, true);
  EXPECT_GT(s.files, 2900u);
  EXPECT_GT(s.flat_inline, 0u);
  EXPECT_GT(s.flat_plain, 0u);
  EXPECT_GT(s.extended, 0u);  // mkfs.erofs 1.5 goes extended whenever mtime != build time
  EXPECT_GE(s.specials, tree_.root ? 4u : 2u);
  if (tree_.xattrs) { EXPECT_GT(s.with_xattrs, 0u); }
  EXPECT_EQ(s.tail_pages_dirty, 0u) << "mkfs.erofs left non-zero bytes past EOF";
  RecordProperty("tail_pages_zeroed", std::to_string(s.tail_pages_zeroed));
  printf("default: %lu inodes (%lu compact, %lu extended, %lu with xattrs), %lu plain, %lu "
         "inline, %lu file bytes, image %lu bytes, xattrs on host %d\n",
         s.inodes, s.compact, s.extended, s.with_xattrs, s.flat_plain, s.flat_inline, s.bytes,
         img.size, tree_.xattrs);

  // The 3,000-entry directory spans many blocks.
  erofs::Inode root, many;
  uint64_t nid;
  ASSERT_EQ(erofs::get_inode(erofs::root_nid(), &root), 0);
  ASSERT_EQ(erofs::lookup(root, "many", 4, &nid), 0);
  ASSERT_EQ(erofs::get_inode(nid, &many), 0);
  EXPECT_GT(many.size, 10 * kBlock);
  // Lookups in a non-directory.
  ASSERT_EQ(erofs::lookup(root, "size100", 7, &nid), 0);
  erofs::Inode file;
  ASSERT_EQ(erofs::get_inode(nid, &file), 0);
  EXPECT_EQ(erofs::lookup(file, "x", 1, &nid), -ENOTDIR);
  uint64_t pos = 0;
  erofs::Dirent e;
  EXPECT_EQ(erofs::readdir(file, &pos, &e), -ENOTDIR);
  // Foreign cursors (lseek on a directory) never fail on a sound image.
  uint64_t seed = 9;
  for (int i = 0; i < 2000; i++) {
    pos = mix(seed) % (many.size + 100);
    int64_t r = erofs::readdir(many, &pos, &e);
    EXPECT_TRUE(r == 0 || r == 1);
  }
  EXPECT_EQ(erofs::get_inode(~0ull, &file), -EIO);
  EXPECT_EQ(erofs::get_inode(img.size / 32 + 1, &file), -EIO);
}

TEST_F(ErofsRich, ExtendedInodes) {
  Image img = mkfs(tree(), out("ext.img"), {"-Eforce-inode-extended"});
  WalkStats s = check_image(img, tree(), 0, false);
  EXPECT_EQ(s.compact, 0u);
}

TEST_F(ErofsRich, IgnoreMtimeGivesCompactInodes) {
  Image img = mkfs(tree(), out("compact.img"), {"--ignore-mtime"});
  WalkStats s = check_image(img, tree(), 0, false);
  EXPECT_GT(s.compact, 3000u);
  EXPECT_EQ(s.extended, tree_.root ? 1u : 0u);  // only owned_big
}

TEST_F(ErofsRich, FixedTimestamp) {
  Image img = mkfs(tree(), out("fixed.img"), {"-T", "1234567890"});
  check_image(img, tree(), 1234567890, false);
}

TEST_F(ErofsRich, NoInlineData) {
  Image img = mkfs(tree(), out("noinline.img"), {"-Enoinline_data"});
  WalkStats s = check_image(img, tree(), 0, true);
  EXPECT_GT(s.flat_plain, 2900u);
}

TEST_F(ErofsRich, NoXattrs) {
  Image img = mkfs(tree(), out("noxattr.img"), {"-x", "-1"});
  WalkStats s = check_image(img, tree(), 0, false);
  EXPECT_EQ(s.with_xattrs, 0u);
}

TEST_F(ErofsRich, UnsupportedLayoutsAreEio) {
  // Compressed and chunk-based files (never made without -z / --chunksize) fail alone; the
  // directories stay readable.
  for (auto opts : {std::vector<std::string>{"-zlz4", "text"}, {"--chunksize=4096", "big10m"}}) {
    Image img = mkfs(tree(), out("other.img"), {opts[0]});
    ASSERT_EQ(erofs::mount(img.data(), img.size), 0) << opts[0];
    erofs::Inode root, f;
    uint64_t nid;
    ASSERT_EQ(erofs::get_inode(erofs::root_nid(), &root), 0);
    ASSERT_EQ(erofs::lookup(root, opts[1].data(), opts[1].size(), &nid), 0);
    EXPECT_EQ(erofs::get_inode(nid, &f), -EIO) << opts[0];
  }
}

TEST(Erofs, MountRejectsBadSuperblocks) {
  TempDir d;
  stdfs::create_directory(d.path() / "t");
  write_file(d.path() / "t" / "f", "hello");
  Image good = mkfs(d.path() / "t", d.path() / "i.img", {});
  ASSERT_EQ(erofs::mount(good.data(), good.size), 0);
  auto mutated = [&](uint64_t off, uint8_t v) {
    Image m(good.data(), good.size);
    m.bytes[off] = v;
    return erofs::mount(m.data(), m.size);
  };
  EXPECT_EQ(mutated(1024, 0), -EINVAL);             // magic
  EXPECT_EQ(mutated(1024 + 12, 13), -EINVAL);       // 8 KiB blocks
  EXPECT_EQ(mutated(1024 + 12, 9), -EINVAL);        // 512 B blocks
  EXPECT_EQ(mutated(1024 + 80, 0x80), -EINVAL);     // unknown incompatible feature
  EXPECT_EQ(mutated(1024 + 39, 0x7f), -EINVAL);     // more blocks than the image
  EXPECT_EQ(mutated(1024 + 43, 0x7f), -EINVAL);     // meta_blkaddr past the end
  EXPECT_EQ(mutated(1024 + 15, 0x7f), -EINVAL);     // root nid past the end
  EXPECT_EQ(erofs::mount(good.data(), 1024 + 127), -EINVAL);
  EXPECT_EQ(erofs::mount(nullptr, 0), -EINVAL);
  Image cut(good.data(), good.size - kBlock);  // the superblock's block count no longer fits
  EXPECT_EQ(erofs::mount(cut.data(), cut.size), -EINVAL);
}

// Each rule of the format, broken one at a time on a small image, gives -EIO.
TEST(Erofs, DetectsEachCorruption) {
  TempDir d;
  stdfs::path t = d.path() / "t";
  stdfs::create_directories(t / "d");
  write_file(t / "f", std::string(100, 'f'));
  write_file(t / "big", random_bytes(9000, 3));
  for (const char* n : {"a", "b", "c"}) write_file(t / "d" / n, n);
  Image good = mkfs(t, d.path() / "i.img", {"-Eforce-inode-extended", "-Enoinline_data"});
  Image good_inline = mkfs(t, d.path() / "j.img", {"-Eforce-inode-extended"});
  ASSERT_EQ(erofs::mount(good_inline.data(), good_inline.size), 0);
  erofs::Inode root, f, dir;
  uint64_t f_nid, big_nid, d_nid;
  ASSERT_EQ(erofs::get_inode(erofs::root_nid(), &root), 0);
  ASSERT_EQ(erofs::lookup(root, "f", 1, &f_nid), 0);
  ASSERT_EQ(erofs::lookup(root, "big", 3, &big_nid), 0);
  ASSERT_EQ(erofs::lookup(root, "d", 1, &d_nid), 0);
  ASSERT_EQ(erofs::get_inode(f_nid, &f), 0);
  ASSERT_EQ(erofs::get_inode(d_nid, &dir), 0);
  ASSERT_EQ(f.layout, 2);
  ASSERT_EQ(dir.layout, 2);
  const uint64_t meta = uint64_t(le32(good_inline.data() + 1024 + 40)) * kBlock;
  const uint64_t f_off = meta + f_nid * 32, big_off = meta + big_nid * 32;
  const uint64_t dir_blk = dir.inline_off;  // the directory's only block is its inline tail

  // Applies `patch` to a copy of `base`, mounts it and returns `probe()`.
  auto with = [](const Image& base, auto patch, auto probe) {
    Image m(base.data(), base.size);
    patch(m.bytes.get());
    EXPECT_EQ(erofs::mount(m.data(), m.size), 0);
    return probe();
  };
  auto inode_of = [](uint64_t nid) {
    return [nid] {
      erofs::Inode i;
      return erofs::get_inode(nid, &i);
    };
  };
  auto put16 = [](uint8_t* p, uint16_t v) { memcpy(p, &v, 2); };
  auto put32 = [](uint8_t* p, uint32_t v) { memcpy(p, &v, 4); };
  auto put64 = [](uint8_t* p, uint64_t v) { memcpy(p, &v, 8); };
  const Image& gi = good_inline;

  EXPECT_EQ(with(gi, [&](uint8_t* p) { p[f_off] |= 0x10; }, inode_of(f_nid)), -EIO);  // format bit
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + f_off, 1 | 1 << 1); }, inode_of(f_nid)), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + f_off, 1 | 3 << 1); }, inode_of(f_nid)), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + f_off, 1 | 4 << 1); }, inode_of(f_nid)), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + f_off + 4, 0644); }, inode_of(f_nid)), -EIO);
  // Inline xattrs pushing the 100-byte tail across the end of its block.
  uint64_t room = kBlock - (f_off + 64) % kBlock;  // bytes left in the inode's block
  uint16_t icount = uint16_t((room - 100 + 4 - 12) / 4 + 2);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + f_off + 2, icount); }, inode_of(f_nid)), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + f_off + 2, 0xffff); }, inode_of(f_nid)), -EIO);
  // A tail longer than a block, a size past the image, data blocks past the image.
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put64(p + f_off + 8, 5000); }, inode_of(f_nid)), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put64(p + big_off + 8, 1ull << 63); }, inode_of(big_nid)),
            -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put64(p + big_off + 8, ~0ull); }, inode_of(big_nid)), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put32(p + big_off + 16, uint32_t(gi.size / kBlock)); },
                 inode_of(big_nid)), -EIO);
  // The same in a FLAT_PLAIN image: the last (partial) block must lie inside the image too.
  {
    ASSERT_EQ(erofs::mount(good.data(), good.size), 0);
    erofs::Inode r, b;
    uint64_t nid;
    ASSERT_EQ(erofs::get_inode(erofs::root_nid(), &r), 0);
    ASSERT_EQ(erofs::lookup(r, "big", 3, &nid), 0);
    ASSERT_EQ(erofs::get_inode(nid, &b), 0);
    ASSERT_EQ(b.layout, 0);
    uint64_t off = uint64_t(le32(good.data() + 1024 + 40)) * kBlock + nid * 32;
    uint32_t last_fit = uint32_t(good.size / kBlock - 3);  // 3 blocks end exactly at the end
    EXPECT_EQ(with(good, [&](uint8_t* p) { put32(p + off + 16, last_fit); }, inode_of(nid)), 0);
    EXPECT_EQ(with(good, [&](uint8_t* p) { put32(p + off + 16, last_fit + 1); }, inode_of(nid)),
              -EIO);
  }

  // Directory blocks.
  auto dir_probe = [&] {
    erofs::Inode dd;
    EXPECT_EQ(erofs::get_inode(d_nid, &dd), 0);
    uint64_t pos = 0, nid;
    erofs::Dirent e;
    int64_t r = 0;
    for (int i = 0; i < 10 && (r = erofs::readdir(dd, &pos, &e)) == 1; i++) {
    }
    // The first error readdir meets, else lookup's answer (a binary search may miss it).
    return r < 0 ? r : erofs::lookup(dd, "b", 1, &nid);
  };
  EXPECT_EQ(with(gi, [](uint8_t*) {}, dir_probe), 0);  // the probe itself passes on a good image
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + dir_blk + 8, 0); }, dir_probe), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + dir_blk + 8, 11); }, dir_probe), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + dir_blk + 8, uint16_t(dir.size)); }, dir_probe),
            -EIO);
  // Entry 2's name starting before entry 1's, and past the block.
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + dir_blk + 24 + 8, 40); }, dir_probe), -EIO);
  EXPECT_EQ(with(gi, [&](uint8_t* p) { put16(p + dir_blk + 24 + 8, 4000); }, dir_probe), -EIO);
  // An unknown file type in every entry.
  EXPECT_EQ(with(gi, [&](uint8_t* p) { for (int i = 0; i < 5; i++) p[dir_blk + 12 * i + 10] = 8; },
                 dir_probe), -EIO);
  // The last name of a block runs to the block's end when no NUL stops it: grow the directory
  // so that its last name is 255 'z' (fine: found by readdir and lookup), then 256 (-EIO).
  // mkfs.erofs 1.5 cannot write 255-byte names itself (see docs/erofs-reader.md).
  const uint16_t last_de = le16(gi.data() + dir_blk + 8) - 12;
  const uint16_t last_start = le16(gi.data() + dir_blk + last_de + 8);
  const uint64_t d_off = meta + d_nid * 32;
  for (uint64_t len : {255u, 256u}) {
    ASSERT_LE(dir_blk % kBlock + last_start + len, kBlock) << "the grown tail must stay in its block";
    int64_t r = with(gi, [&](uint8_t* p) {
      memset(p + dir_blk + last_start, 'z', len);
      put64(p + d_off + 8, last_start + len);
    }, [&]() -> int64_t {
      erofs::Inode dd;
      if (int64_t err = erofs::get_inode(d_nid, &dd)) return 2000 + err;
      uint64_t pos = 0, nid = 0;
      erofs::Dirent e;
      int64_t r;
      uint32_t last_len = 0;
      while ((r = erofs::readdir(dd, &pos, &e)) == 1) last_len = e.name_len;
      if (r) return r;
      std::string name(len, 'z');
      if (int64_t err = erofs::lookup(dd, name.data(), len, &nid)) return 3000 + err;
      return last_len;
    });
    EXPECT_EQ(r, len == 255 ? 255 : -EIO);
  }
}

TEST(Erofs, PythonStdlib) {
  const stdfs::path src = "/usr/lib/python3.11";
  ASSERT_TRUE(stdfs::is_directory(src)) << src << " missing: scripts/install-deps.sh installs it";
  TempDir d;
  Image img = mkfs(src, d.path() / "py.img", {});
  WalkStats s = check_image(img, src, 0, false);
  EXPECT_GT(s.files, 1000u);
  printf("python3.11: %lu inodes, %lu files, %lu dirs, %lu symlinks, %lu bytes, image %lu "
         "bytes\n", s.inodes, s.files, s.dirs, s.symlinks, s.bytes, img.size);
}

// ---- Corruption: random byte flips and truncations, then a walk of everything reachable.

uint64_t g_errors = 0;  // -EIO answers seen by hostile_walk

/// Walks whatever the mounted image claims, touching every reader entry point; returns the
/// number of inodes visited. Bounded by construction, so a corrupt image cannot hang it.
uint64_t hostile_walk(const Image& img) {
  std::vector<uint64_t> todo = {erofs::root_nid()};
  std::set<uint64_t> visited;
  std::vector<uint8_t> buf(64 * 1024);
  uint64_t budget = 4000;
  while (!todo.empty() && budget) {
    uint64_t nid = todo.back();
    todo.pop_back();
    if (!visited.insert(nid).second) continue;
    budget--;
    erofs::Inode ino;
    if (erofs::get_inode(nid, &ino) != 0) {
      g_errors++;
      continue;
    }
    if ((ino.mode & S_IFMT) == S_IFDIR) {
      uint64_t pos = 0;
      for (int i = 0; i < 20000; i++) {
        erofs::Dirent e;
        uint64_t before = pos;
        int64_t r = erofs::readdir(ino, &pos, &e);
        if (r < 0) g_errors++;
        if (r <= 0) break;
        EXPECT_GT(pos, before);
        EXPECT_GE(e.name_len, 1u);
        EXPECT_LE(e.name_len, 255u);
        EXPECT_GE(reinterpret_cast<const uint8_t*>(e.name), img.data());
        EXPECT_LE(reinterpret_cast<const uint8_t*>(e.name) + e.name_len, img.data() + img.size);
        uint64_t found;
        erofs::lookup(ino, e.name, e.name_len, &found);
        todo.push_back(e.nid);
      }
      uint64_t found;
      erofs::lookup(ino, "zz", 2, &found);
      erofs::lookup(ino, "!", 1, &found);
    }
    for (uint64_t off = 0; off < ino.size && off < 2 * img.size; off += buf.size()) {
      int64_t r = erofs::read(ino, off, buf.data(), buf.size());
      EXPECT_LE(r, int64_t(buf.size()));
      if (r <= 0) break;
    }
    for (uint64_t off = 0; off < ino.size && off < 2 * img.size; off += kBlock) {
      int64_t at = erofs::page_offset(ino, off);
      if (at >= 0) { EXPECT_LE(uint64_t(at) + kBlock, img.size); }
    }
    char link[4096];
    erofs::readlink(ino, link, sizeof link);
  }
  return visited.size();
}

TEST(Erofs, SurvivesCorruptImages) {
  TempDir d;
  stdfs::path t = d.path() / "t";
  stdfs::create_directories(t / "sub" / "deeper");
  stdfs::create_directory(t / "wide");
  uint64_t seed = 1;
  for (int i = 0; i < 400; i++)
    write_file(t / "wide" / ("name-" + std::to_string(i)), random_bytes(i % 9, mix(seed)));
  for (uint64_t n : {0ul, 10ul, 4096ul, 9000ul})
    write_file(t / ("f" + std::to_string(n)), random_bytes(n, mix(seed)));
  write_file(t / "sub" / "deeper" / "x", "x");
  stdfs::create_symlink("f10", t / "sub" / "link");
  stdfs::create_symlink(std::string(300, 'q'), t / "longlink");
  timespec ts[2] = {{1000000000, 5}, {1000000000, 5}};
  utimensat(AT_FDCWD, (t / "f10").c_str(), ts, 0);  // one extended inode
  Image good = mkfs(t, d.path() / "c.img", {});
  ASSERT_EQ(erofs::mount(good.data(), good.size), 0);
  uint64_t clean = hostile_walk(good);
  ASSERT_GT(clean, 400u);
  ASSERT_EQ(g_errors, 0u);

  // Mutations land mostly in metadata: the superblock, the inode table and directory blocks
  // (the first blocks of a mkfs.erofs 1.5 image), the rest anywhere.
  uint64_t meta_end = std::min<uint64_t>(good.size, 8 * kBlock);
  uint64_t mounted = 0, walked_inodes = 0;
  const int kMutations = 20000;
  for (int m = 0; m < kMutations; m++) {
    uint64_t size = good.size;
    bool truncated = mix(seed) % 10 == 0;
    if (truncated) size = mix(seed) % good.size;
    Image bad(good.data(), size);
    // Make most truncated images claim no more blocks than they hold, so they mount and the
    // walk meets inodes and directories that point past the end.
    if (truncated && size >= 1024 + 128 && mix(seed) % 4) {
      uint32_t blocks = uint32_t(size / kBlock);
      memcpy(&bad.bytes[1024 + 36], &blocks, 4);
    }
    int flips = 1 + int(mix(seed) % 8);
    for (int f = 0; f < flips && size; f++) {
      uint64_t off = mix(seed) % 4 ? (1024 + mix(seed) % (meta_end - 1024)) : mix(seed) % size;
      if (off >= size) continue;
      uint64_t how = mix(seed) % 4;
      if (how == 0)
        bad.bytes[off] ^= uint8_t(1u << (mix(seed) % 8));
      else if (how == 1)
        bad.bytes[off] = 0xff;
      else if (how == 2)
        bad.bytes[off] = 0;
      else
        bad.bytes[off] = uint8_t(mix(seed));
    }
    if (erofs::mount(bad.data(), bad.size) != 0) continue;
    mounted++;
    walked_inodes += hostile_walk(bad);
    if (HasFailure()) {
      ADD_FAILURE() << "mutation " << m;
      break;
    }
  }
  printf("corruption: %d mutations, %lu mounted, %lu inodes walked, %lu -EIO answers\n",
         kMutations, mounted, walked_inodes, g_errors);
  EXPECT_GT(mounted, uint64_t(kMutations / 2));
  EXPECT_GT(g_errors, uint64_t(kMutations / 10));  // the walk did meet corrupt metadata
}

}  // namespace
