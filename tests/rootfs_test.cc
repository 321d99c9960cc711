// Tests of the root file system image store (rootfs/): the library closure against ldd, images
// from host files, trees and OCI layouts checked with Debian's own fsck.erofs --extract,
// content addressing, removal, temp-file sweeping and the automatic program image. Real
// mkfs.erofs, no /dev/kvm. Thread-safety: tests run one at a time.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <glob.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rootfs/elf_deps.h"
#include "rootfs/erofs_check.h"
#include "rootfs/mkfs.h"
#include "rootfs/oci.h"
#include "rootfs/store.h"

namespace vmfork::rootfs {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = testing::TempDir() + "vmfork-rootfs-XXXXXX";
    char* d = ::mkdtemp(tmpl.data());
    EXPECT_NE(d, nullptr) << "mkdtemp " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& s, mode_t mode = 0644) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
  ::chmod(p.c_str(), mode);
}

bool has_suffix(const std::vector<std::string>& v, const std::string& suffix) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.ends_with(suffix); });
}

// Extracts an image with erofs-utils' own fsck.erofs, so the checks read it as an independent
// EROFS implementation does.
fs::path extract(const ImageInfo& info, const fs::path& where) {
  const fs::path out = where / ("x-" + info.name);
  int st = -1;
  std::string log = run("fsck.erofs --extract=" + out.string() + " " + info.path.string() + " 2>&1", &st);
  EXPECT_EQ(st, 0) << log;
  return out;
}

// The inode number of `path` in the image, by dump.erofs (fsck.erofs --extract does not keep
// hard links, so they are checked here).
std::string nid_of(const fs::path& image, const std::string& path) {
  std::string out = run("dump.erofs --path=" + path + " " + image.string() + " 2>&1");
  auto at = out.find("NID: ");
  return at == std::string::npos ? "(none: " + out + ")" : out.substr(at + 5, out.find(' ', at + 5) - at - 5);
}

// Every entry under `src` matches the same path under `copy`: type, mode, symlink target, bytes.
void expect_same_tree(const fs::path& src, const fs::path& copy) {
  size_t n = 0;
  for (auto it = fs::recursive_directory_iterator(src); it != fs::recursive_directory_iterator(); ++it, ++n) {
    const fs::path rel = it->path().lexically_relative(src), other = copy / rel;
    struct stat a, b;
    ASSERT_EQ(::lstat(it->path().c_str(), &a), 0);
    ASSERT_EQ(::lstat(other.c_str(), &b), 0) << "missing in image: " << rel;
    EXPECT_EQ(a.st_mode, b.st_mode) << rel;
    if (S_ISLNK(a.st_mode)) {
      EXPECT_EQ(fs::read_symlink(it->path()), fs::read_symlink(other)) << rel;
    }
    if (S_ISREG(a.st_mode)) {
      EXPECT_TRUE(read_file(it->path()) == read_file(other)) << "content differs: " << rel;
    }
  }
  EXPECT_GT(n, 0u);
}

// A small tree with the kinds of entries images carry.
void make_tree(const fs::path& d, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::string big(3 * 4096 + 123, '\0');
  for (auto& c : big) c = char(rng());
  write_file(d / "a.txt", "hello\n", 0640);
  write_file(d / "run.sh", "#!/bin/sh\necho hi\n", 0755);
  write_file(d / "sub" / "big.bin", big);
  write_file(d / "sub" / "deeper" / "empty", "");
  write_file(d / "exact", std::string(4096, 'x'));
  fs::create_directories(d / "emptydir");
  fs::create_symlink("a.txt", d / "link");
  fs::create_symlink("sub/deeper", d / "dirlink");
  fs::create_symlink("/nonexistent/target", d / "dangling");
  ::link((d / "a.txt").c_str(), (d / "hardlink").c_str());
}

// ---- OCI: layers written with libarchive.

struct TarEntry {
  std::string path;
  char type;  // 'f' file, 'd' dir, 'l' symlink, 'h' hard link
  std::string data;  // file content or link target
  mode_t mode = 0644;
};

void write_tar(const fs::path& out, const std::vector<TarEntry>& entries, bool gzip) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  ASSERT_EQ(archive_write_open_filename(a, out.c_str()), ARCHIVE_OK);
  for (const auto& e : entries) {
    archive_entry* en = archive_entry_new();
    archive_entry_set_pathname(en, e.path.c_str());
    archive_entry_set_perm(en, e.mode);
    archive_entry_set_uid(en, 1000);
    if (e.type == 'f') {
      archive_entry_set_filetype(en, AE_IFREG);
      archive_entry_set_size(en, la_int64_t(e.data.size()));
    } else if (e.type == 'd') {
      archive_entry_set_filetype(en, AE_IFDIR);
    } else if (e.type == 'l') {
      archive_entry_set_filetype(en, AE_IFLNK);
      archive_entry_set_symlink(en, e.data.c_str());
    } else {
      archive_entry_set_filetype(en, AE_IFREG);
      archive_entry_set_hardlink(en, e.data.c_str());
    }
    ASSERT_EQ(archive_write_header(a, en), ARCHIVE_OK) << archive_error_string(a);
    if (e.type == 'f') archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(en);
  }
  archive_write_close(a);
  archive_write_free(a);
}

std::vector<TarEntry> layer1() {
  return {{"./", 'd', "", 0755},
          {"etc/", 'd', "", 0755},
          {"etc/hello", 'f', "old\n"},
          {"usr/bin/tool", 'f', "#!/bin/sh\n", 0755},
          {"keep/a", 'f', "a"},
          {"keep/b", 'f', "b"},
          {"opaque/", 'd', "", 0750},
          {"opaque/x", 'f', "x"},
          {"opaque/sub/y", 'f', "y"},
          {"gone.txt", 'f', "gone"},
          {"gonedir/f", 'f', "f"},
          {"bin", 'l', "usr/bin"},
          {"usr/bin/tool2", 'h', "usr/bin/tool"}};
}

std::vector<TarEntry> layer2() {
  return {{"./.wh.gone.txt", 'f', ""},
          {".wh.gonedir", 'f', ""},
          {"opaque/", 'd', "", 0750},
          {"opaque/.wh..wh..opq", 'f', ""},
          {"opaque/z", 'f', "z"},
          {"etc/hello", 'f', "new\n", 0600},
          {"/abs/file", 'f', "confined\n"}};
}

void check_layers_applied(const fs::path& x, const fs::path& image) {
  EXPECT_EQ(read_file(x / "etc/hello"), "new\n");
  EXPECT_EQ(fs::status(x / "etc/hello").permissions(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(read_file(x / "keep/a"), "a");
  EXPECT_EQ(read_file(x / "keep/b"), "b");
  EXPECT_FALSE(fs::exists(x / "gone.txt"));
  EXPECT_FALSE(fs::exists(x / "gonedir"));
  EXPECT_FALSE(fs::exists(x / ".wh.gone.txt"));
  EXPECT_FALSE(fs::exists(x / "opaque/x"));
  EXPECT_FALSE(fs::exists(x / "opaque/sub"));
  EXPECT_FALSE(fs::exists(x / "opaque/.wh..wh..opq"));
  EXPECT_EQ(read_file(x / "opaque/z"), "z");
  EXPECT_EQ(fs::read_symlink(x / "bin"), "usr/bin");
  EXPECT_EQ(read_file(x / "usr/bin/tool2"), "#!/bin/sh\n");
  EXPECT_EQ(read_file(x / "abs/file"), "confined\n");
  EXPECT_EQ(nid_of(image, "/usr/bin/tool"), nid_of(image, "/usr/bin/tool2"));
  EXPECT_EQ(fs::status(x / "usr/bin/tool").permissions(), fs::perms(0755));
  EXPECT_TRUE(fs::is_directory(x / "tmp"));
  EXPECT_TRUE(fs::exists(x / "etc/passwd"));
}

// An OCI image layout (image-spec "Image Layout") with the two layers; digests are names only
// here (the importer does not re-hash blobs).
void make_oci_layout(const fs::path& d) {
  fs::create_directories(d / "blobs/sha256");
  const std::string l1 = std::string(63, '1') + "a", l2 = std::string(63, '2') + "b", m = std::string(63, '3') + "c",
                    cfg = std::string(63, '4') + "d";
  write_tar(d / "blobs/sha256" / l1, layer1(), true);
  write_tar(d / "blobs/sha256" / l2, layer2(), false);
  write_file(d / "blobs/sha256" / cfg, "{}");
  write_file(d / "blobs/sha256" / m,
             R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
             R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" + cfg + R"(","size":2},)"
             R"("layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:)" + l1 + R"(","size":1},)"
             R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:)" + l2 + R"(","size":1}]})");
  write_file(d / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  write_file(d / "index.json",
             R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
             R"("digest":"sha256:)" + m + R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})");
}

TEST(RootfsClosure, Python3MatchesLdd) {
  auto c = library_closure({"/usr/bin/python3"});
  ASSERT_TRUE(c.ok()) << c.error().message();
  for (const char* lib : {"/ld-linux-x86-64.so.2", "/libc.so.6", "/libm.so.6", "/libz.so.1", "/libexpat.so.1"})
    EXPECT_TRUE(has_suffix(*c, lib)) << lib;
  // Every library ldd reports resolves (through the listed symlinks) to a listed file.
  std::set<std::string> listed(c->begin(), c->end());
  std::istringstream ldd(run("ldd /usr/bin/python3"));
  std::string line;
  int checked = 0;
  while (std::getline(ldd, line)) {
    std::istringstream w(line);
    std::string a, arrow, path;
    w >> a >> arrow >> path;
    std::string lib = arrow == "=>" ? path : a;
    if (lib.empty() || lib[0] != '/') continue;  // linux-vdso.so.1
    EXPECT_TRUE(listed.count(fs::canonical(lib).string())) << lib;
    EXPECT_TRUE(listed.count(lib)) << lib;
    ++checked;
  }
  EXPECT_GE(checked, 5);
  // The merged-/usr symlinks on the way are listed as such.
  EXPECT_TRUE(listed.count("/lib64"));
  EXPECT_TRUE(listed.count("/lib"));
}

TEST(RootfsClosure, ExtensionModuleNeedsLibsqlite) {
  glob_t g{};
  ASSERT_EQ(::glob("/usr/lib/python3.11/lib-dynload/_sqlite3*.so", 0, nullptr, &g), 0);
  std::string mod = g.gl_pathv[0];
  ::globfree(&g);
  auto c = library_closure({mod});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_TRUE(has_suffix(*c, "/libsqlite3.so.0"));
  auto dyn = is_dynamic_elf(mod);
  ASSERT_TRUE(dyn.ok());
  EXPECT_FALSE(*dyn);  // a shared object has no PT_INTERP
  auto py = is_dynamic_elf("/usr/bin/python3");
  ASSERT_TRUE(py.ok());
  EXPECT_TRUE(*py);
  EXPECT_FALSE(is_dynamic_elf("/etc/passwd").ok());
}

TEST(RootfsClosure, MissingLibraryIsAnError) {
  // A copy of a real program with its DT_NEEDED "libc.so.6" string patched to a name that exists nowhere.
  TempDir t;
  std::string bin = read_file("/bin/true");
  auto at = bin.find(std::string("libc.so.6\0", 10));
  ASSERT_NE(at, std::string::npos);
  bin.replace(at, 9, "libq.so.6");
  write_file(t.path() / "true", bin, 0755);
  auto c = library_closure({(t.path() / "true").string()});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("libq.so.6"), std::string::npos) << c.error().message();
}

TEST(RootfsClosure, SymlinkChainOfTheInterpreter) {
  auto c = symlink_chain("/lib64/ld-linux-x86-64.so.2");
  ASSERT_TRUE(c.ok()) << c.error().message();
  struct stat st;
  ASSERT_EQ(::lstat(c->back().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << c->back();
  for (size_t i = 1; i + 1 < c->size(); ++i) {
    ASSERT_EQ(::lstat((*c)[i].c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << (*c)[i];
  }
}

TEST(RootfsStore, FromHostCopiesFilesLinksAndLibraries) {
  TempDir t;
  const fs::path src = t.path() / "src";
  make_tree(src);
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok()) << store.error().message();
  auto info = store->create_from_host("small", {src.string(), "/bin/true"});
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->hash.size(), 32u);
  EXPECT_EQ(info->path, store->dir() / "images" / (info->hash + ".erofs"));
  EXPECT_EQ(info->bytes, fs::file_size(info->path));
  EXPECT_EQ(info->bytes % 4096, 0u);
  EXPECT_EQ(info->source, "host: " + src.string() + " /bin/true");
  EXPECT_EQ(fs::status(info->path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);

  auto sum = check_erofs_image(info->path);
  ASSERT_TRUE(sum.ok()) << sum.error().message();
  EXPECT_EQ(sum->files, info->files);
  EXPECT_EQ(sum->flat_plain + sum->flat_inline, sum->files);
  EXPECT_GT(sum->symlinks, 3u);

  const fs::path x = extract(*info, t.path());
  expect_same_tree(src, x / src.relative_path());
  // Hard links stay one inode.
  EXPECT_EQ(nid_of(info->path, (src / "a.txt").string()), nid_of(info->path, (src / "hardlink").string()));
  EXPECT_NE(nid_of(info->path, (src / "a.txt").string()), nid_of(info->path, (src / "run.sh").string()));
  // /bin/true through the /bin -> usr/bin symlink, and its libraries byte for byte.
  EXPECT_TRUE(fs::is_symlink(x / "bin"));
  EXPECT_EQ(fs::read_symlink(x / "bin"), fs::read_symlink("/bin"));
  EXPECT_TRUE(read_file(x / "usr/bin/true") == read_file("/usr/bin/true"));
  auto closure = library_closure({"/bin/true"});
  ASSERT_TRUE(closure.ok());
  for (const auto& p : *closure) {
    struct stat hs, is;
    ASSERT_EQ(::lstat(p.c_str(), &hs), 0) << p;
    ASSERT_EQ(::lstat((x / fs::path(p).relative_path()).c_str(), &is), 0) << "not in image: " << p;
    EXPECT_EQ(hs.st_mode, is.st_mode) << p;
    if (S_ISREG(hs.st_mode)) {
      EXPECT_TRUE(read_file(p) == read_file(x / fs::path(p).relative_path())) << p;
    }
  }
  // What every image has.
  for (const char* d : {"tmp", "root", "home", "dev", "proc", "etc"}) EXPECT_TRUE(fs::is_directory(x / d)) << d;
  EXPECT_EQ(fs::status(x / "tmp").permissions(), fs::perms::all | fs::perms::sticky_bit);
  EXPECT_NE(read_file(x / "etc/passwd").find("root:x:0:0:"), std::string::npos);
  EXPECT_NE(read_file(x / "etc/group").find("root:x:0:"), std::string::npos);
  // All files owned by root (--all-root).
  struct stat rs;
  ASSERT_EQ(::lstat(info->path.c_str(), &rs), 0);
  ASSERT_EQ(::stat((x / src.relative_path() / "a.txt").c_str(), &rs), 0);
  EXPECT_EQ(rs.st_uid, 0u);

  EXPECT_TRUE(verify_image(info->path, info->hash).ok());
  auto by_hash = store->image_path(info->hash);
  ASSERT_TRUE(by_hash.ok()) << by_hash.error().message();
  EXPECT_EQ(*by_hash, info->path);
  EXPECT_FALSE(store->image_path(std::string(32, '0')).ok());
  EXPECT_FALSE(store->image_path("../../etc/passwd").ok());
  {
    // A changed image is caught (written through a copy: the stored file is read-only).
    const fs::path copy = t.path() / "changed.erofs";
    fs::copy_file(info->path, copy);
    fs::permissions(copy, fs::perms::owner_write, fs::perm_options::add);
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 2);
    f.put('!');
    f.close();
    Status v = verify_image(copy, info->hash);
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error().message().find("want " + info->hash), std::string::npos) << v.error().message();
  }

  auto found = store->find("small");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->hash, info->hash);
  EXPECT_EQ(found->files, info->files);
  auto again = store->create_from_host("small", {src.string()});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().sys_errno, EEXIST);
}

TEST(RootfsStore, SameTreeTwiceIsStoredOnce) {
  TempDir t;
  make_tree(t.path() / "one");
  make_tree(t.path() / "two");
  // Files keep their mtimes in the image (CPython checks .pyc files by them), so the same tree
  // means the same contents and the same file mtimes; directories' mtimes and creation order
  // do not matter.
  for (auto& e : fs::recursive_directory_iterator(t.path() / "one")) {
    if (!e.is_regular_file() || e.is_symlink()) continue;
    fs::last_write_time(t.path() / "two" / fs::relative(e.path(), t.path() / "one"), e.last_write_time());
  }
  fs::last_write_time(t.path() / "two", fs::file_time_type::clock::now() - std::chrono::hours(1000));
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok());
  auto a = store->create_from_dir("a", t.path() / "one");
  auto b = store->create_from_dir("b", t.path() / "two");
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(a->hash, b->hash);
  EXPECT_EQ(a->path, b->path);
  size_t images = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(store->dir() / "images")) ++images;
  EXPECT_EQ(images, 1u);
  make_tree(t.path() / "three");
  fs::last_write_time(t.path() / "three" / "a.txt", fs::file_time_type::clock::now() - std::chrono::hours(1000));
  auto other = store->create_from_dir("other", t.path() / "three");
  ASSERT_TRUE(other.ok()) << other.error().message();
  EXPECT_NE(other->hash, a->hash);  // a file's mtime is part of the tree
  ASSERT_TRUE(store->remove("other").ok());
  auto l = store->list();
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].name, "a");
  EXPECT_EQ((*l)[1].name, "b");
  expect_same_tree(t.path() / "one", extract(*a, t.path()));

  // rm keeps the image while another name uses it, then removes it.
  ASSERT_TRUE(store->remove("a").ok());
  EXPECT_TRUE(fs::exists(b->path));
  auto gone = store->find("a");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().message(), "rootfs a: not found: No such file or directory");
  EXPECT_FALSE(store->remove("a").ok());
  ASSERT_TRUE(store->remove("b").ok());
  EXPECT_FALSE(fs::exists(b->path));
  EXPECT_TRUE(store->list()->empty());

  // An image a crashed create left without a name goes with the next remove.
  auto c = store->create_from_dir("c", t.path() / "one");
  ASSERT_TRUE(c.ok());
  write_file(store->dir() / "images" / (std::string(32, '0') + ".erofs"), "orphan", 0444);
  ASSERT_TRUE(store->remove("c").ok());
  EXPECT_TRUE(fs::is_empty(store->dir() / "images"));
}

// Creates from several threads (each with its own Store, as separate processes would have)
// commit under the flock: same content -> one image; same name -> exactly one winner.
TEST(RootfsStore, ConcurrentCreates) {
  TempDir t;
  make_tree(t.path() / "src");
  ASSERT_TRUE(Store::open(t.path() / "store").ok());
  std::vector<Result<ImageInfo>> results(6, Error{"not run"});
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      auto store = Store::open(t.path() / "store");
      if (!store.ok()) return;
      results[size_t(i)] = store->create_from_dir(i < 4 ? "n" + std::to_string(i) : "same", t.path() / "src");
    });
  for (auto& th : threads) th.join();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(results[size_t(i)].ok()) << results[size_t(i)].error().message();
  EXPECT_NE(results[4].ok(), results[5].ok());
  const auto& loser = results[4].ok() ? results[5] : results[4];
  if (!loser.ok()) {
    EXPECT_EQ(loser.error().sys_errno, EEXIST) << loser.error().message();
  }
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(store->list()->size(), 5u);
  size_t images = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(store->dir() / "images")) ++images;
  EXPECT_EQ(images, 1u);
  EXPECT_TRUE(fs::is_empty(store->dir() / "tmp"));
}

TEST(RootfsStore, UmaskDoesNotChangeTheImage) {
  TempDir t;
  make_oci_layout(t.path() / "oci");
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok());
  mode_t old = ::umask(022);
  auto a = store->create_from_oci("a", t.path() / "oci");
  ::umask(077);
  auto b = store->create_from_oci("b", t.path() / "oci");
  ::umask(old);
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_TRUE(b.ok()) << b.error().message();
  EXPECT_EQ(a->hash, b->hash);
}

TEST(RootfsStore, BadNamesAndLimits) {
  TempDir t;
  auto store = Store::open(t.path() / "store", Limits{1 << 20, 8});
  ASSERT_TRUE(store.ok());
  for (const char* bad : {"", ".hidden", "a/b", "../x", "sp ace", "x\n"})
    EXPECT_FALSE(store->create_from_dir(bad, t.path()).ok()) << bad;
  EXPECT_FALSE(store->create_from_dir(std::string(65, 'a'), t.path()).ok());
  EXPECT_TRUE(check_image_name(std::string(64, 'a')).ok());
  make_tree(t.path() / "src");
  auto many = store->create_from_dir("many", t.path() / "src");
  ASSERT_FALSE(many.ok());
  EXPECT_NE(many.error().message().find("too many files"), std::string::npos) << many.error().message();
  write_file(t.path() / "bigsrc" / "f", std::string(2 << 20, 'z'));
  auto big = store->create_from_dir("big", t.path() / "bigsrc");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message().find("too large"), std::string::npos) << big.error().message();
  EXPECT_FALSE(store->create_from_dir("nodir", t.path() / "does-not-exist").ok());
  EXPECT_FALSE(store->create_from_host("nohost", {"/does/not/exist"}).ok());
  // Nothing is left behind by the failures.
  EXPECT_TRUE(fs::is_empty(store->dir() / "tmp"));
  EXPECT_TRUE(fs::is_empty(store->dir() / "images"));
}

TEST(RootfsStore, PseudoFileSystemsAreNotCopied) {
  TempDir t;
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok());
  auto info = store->create_from_host("p", {"/proc/sys/kernel"});
  ASSERT_TRUE(info.ok()) << info.error().message();
  const fs::path x = extract(*info, t.path());
  EXPECT_TRUE(fs::is_directory(x / "proc/sys/kernel"));
  EXPECT_TRUE(fs::is_empty(x / "proc/sys/kernel"));
  auto file = store->create_from_host("q", {"/proc/version"});
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.error().message().find("pseudo file system"), std::string::npos) << file.error().message();
}

TEST(RootfsStore, OpenRemovesStaleTempFiles) {
  TempDir t;
  ASSERT_TRUE(Store::open(t.path() / "store").ok());
  const fs::path tmp = t.path() / "store/rootfs/tmp";
  write_file(tmp / "dead-1" / "root" / "f", "x");
  write_file(tmp / "dead-1.lock", "");
  write_file(tmp / "orphan" / "image.erofs", "x");
  write_file(tmp / "live-2" / "root" / "f", "x");
  write_file(tmp / "live-2.lock", "");
  int held = ::open((tmp / "live-2.lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(held, 0);
  ASSERT_EQ(::flock(held, LOCK_EX), 0);
  // A lock held through another open file description blocks the sweep as another process's would.
  ASSERT_TRUE(Store::open(t.path() / "store").ok());
  EXPECT_FALSE(fs::exists(tmp / "dead-1"));
  EXPECT_FALSE(fs::exists(tmp / "dead-1.lock"));
  EXPECT_FALSE(fs::exists(tmp / "orphan"));
  EXPECT_TRUE(fs::exists(tmp / "live-2" / "root" / "f"));
  ::close(held);
  ASSERT_TRUE(Store::open(t.path() / "store").ok());
  EXPECT_FALSE(fs::exists(tmp / "live-2"));
}

TEST(RootfsStore, ProgramImageIsCached) {
  TempDir t;
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok());
  auto a = store->ensure_program_image("/bin/ls");
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->name.rfind("auto-", 0), 0u);
  EXPECT_EQ(a->name.size(), 5u + 16u);
  const fs::path name_file = store->dir() / "names" / (a->name + ".json");
  struct stat before, after;
  ASSERT_EQ(::stat(name_file.c_str(), &before), 0);
  auto b = store->ensure_program_image("/bin/ls");
  ASSERT_TRUE(b.ok()) << b.error().message();
  ASSERT_EQ(::stat(name_file.c_str(), &after), 0);
  EXPECT_EQ(a->name, b->name);
  EXPECT_EQ(a->hash, b->hash);
  EXPECT_EQ(before.st_ino, after.st_ino);  // not rewritten: the second call did not rebuild
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
  const fs::path x = extract(*a, t.path());
  EXPECT_TRUE(read_file(x / "usr/bin/ls") == read_file("/usr/bin/ls"));
  EXPECT_TRUE(fs::exists(x / "lib64/ld-linux-x86-64.so.2"));
  EXPECT_TRUE(fs::exists(x / "lib/x86_64-linux-gnu/libselinux.so.1"));
}

// The issue's example image: CPython with its standard library. Every extension module must
// import in a chroot of the extracted image, which proves the library closure is complete.
TEST(RootfsStore, PythonImageImportsEveryExtensionModule) {
  if (::geteuid() != 0) GTEST_SKIP() << "chroot(2) needs root";
  TempDir t;
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok());
  auto info = store->create_from_host("py", {"/usr/bin/python3", "/usr/lib/python3.11"});
  ASSERT_TRUE(info.ok()) << info.error().message();
  const fs::path x = extract(*info, t.path());
  int st = -1;
  std::string out = run("chroot " + x.string() + " /usr/bin/python3 -c '"
                        "import os, importlib\n"
                        "bad = []\n"
                        "for f in sorted(os.listdir(\"/usr/lib/python3.11/lib-dynload\")):\n"
                        "  m = f.split(\".\")[0]\n"
                        "  try: importlib.import_module(m)\n"
                        "  except Exception as e: bad.append(m + \": \" + str(e))\n"
                        "import sqlite3, hashlib\n"
                        "print(sqlite3.connect(\":memory:\").execute(\"select 6*7\").fetchone()[0], hashlib.sha256(b\"\").hexdigest()[:8], bad)"
                        "' 2>&1",
                        &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_EQ(out, "42 e3b0c442 []\n");
}

TEST(RootfsMkfs, FailureCarriesItsStderr) {
  TempDir t;
  Status s = run_mkfs_erofs(t.path() / "x.erofs", t.path() / "no-such-dir", std::chrono::seconds(30));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("mkfs.erofs"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("exit status"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("no-such-dir"), std::string::npos) << s.error().message();
}

TEST(RootfsCheck, RefusesWhatTheGuestCannotRead) {
  TempDir t;
  write_file(t.path() / "src" / "f", std::string(100000, 'a'));
  EXPECT_FALSE(check_erofs_image(t.path() / "src" / "f").ok());  // not EROFS at all
  // A compressed image (mkfs.erofs -zlz4) uses an incompat feature and compressed layouts.
  int st = -1;
  std::string log = run("mkfs.erofs --quiet -zlz4 " + (t.path() / "z.erofs").string() + " " + (t.path() / "src").string() + " 2>&1", &st);
  ASSERT_EQ(st, 0) << log;
  auto z = check_erofs_image(t.path() / "z.erofs");
  ASSERT_FALSE(z.ok());
  EXPECT_NE(z.error().message().find("incompatible features"), std::string::npos) << z.error().message();
  // A truncated image is refused, not read past its end.
  ASSERT_EQ(run("mkfs.erofs --quiet -x-1 " + (t.path() / "p.erofs").string() + " " + (t.path() / "src").string() + " 2>&1", &st), "");
  ASSERT_TRUE(check_erofs_image(t.path() / "p.erofs").ok());
  fs::resize_file(t.path() / "p.erofs", 4096);
  EXPECT_FALSE(check_erofs_image(t.path() / "p.erofs").ok());
}

TEST(RootfsOci, LayoutLayersAndWhiteouts) {
  TempDir t;
  make_oci_layout(t.path() / "oci");
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok());
  auto info = store->create_from_oci("img", t.path() / "oci");
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->source, "oci: " + (t.path() / "oci").string());
  check_layers_applied(extract(*info, t.path()), info->path);
}

TEST(RootfsOci, DockerSaveTarball) {
  TempDir t;
  const fs::path d = t.path() / "save";
  fs::create_directories(d);
  write_tar(d / "l1.tar", layer1(), false);
  write_tar(d / "l2.tar", layer2(), false);
  const std::string manifest = R"([{"Config":"c.json","RepoTags":["x:latest"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}])";
  write_tar(t.path() / "image.tar",
            {{"aaa/", 'd', "", 0755}, {"aaa/layer.tar", 'f', read_file(d / "l1.tar")},
             {"bbb/layer.tar", 'f', read_file(d / "l2.tar")}, {"c.json", 'f', "{}"}, {"manifest.json", 'f', manifest}},
            false);
  auto store = Store::open(t.path() / "store");
  ASSERT_TRUE(store.ok());
  auto info = store->create_from_oci("saved", t.path() / "image.tar");
  ASSERT_TRUE(info.ok()) << info.error().message();
  check_layers_applied(extract(*info, t.path()), info->path);
}

TEST(RootfsOci, DotDotEntryIsRefused) {
  TempDir t;
  const fs::path layer = t.path() / "evil.tar";
  write_tar(layer, {{"ok", 'f', "fine"}, {"a/../../escaped-" + t.path().filename().string(), 'f', "evil"}}, false);
  fs::create_directories(t.path() / "root");
  Budget budget;
  Status s = apply_layer(layer, t.path() / "root", budget);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("'..'"), std::string::npos) << s.error().message();
  EXPECT_FALSE(fs::exists(t.path() / ("escaped-" + t.path().filename().string())));
  EXPECT_FALSE(fs::exists(t.path().parent_path() / ("escaped-" + t.path().filename().string())));
}

TEST(RootfsOci, SymlinksCannotLeadOutOfTheRoot) {
  TempDir t;
  const std::string unique = "vmfork-escape-" + t.path().filename().string();
  const fs::path outside = t.path() / "outside";
  fs::create_directories(outside);
  const fs::path layer_a = t.path() / "a.tar", layer_b = t.path() / "b.tar";
  // Inside the root, the links' targets exist as directories (made by the layer itself).
  write_tar(layer_a, {{outside.relative_path().string() + "/", 'd', "", 0755},
                      {"abs", 'l', outside.string()},
                      {"rel", 'l', "../../../../../../.." + outside.string()},
                      {"nowhere", 'l', "/does-not-exist-" + unique}},
            false);
  write_tar(layer_b, {{"abs/" + unique, 'f', "1"}, {"rel/" + unique + "2", 'f', "2"},
                      {"hard", 'h', "abs/" + unique}}, false);
  fs::create_directories(t.path() / "root");
  Budget budget;
  ASSERT_TRUE(apply_layer(layer_a, t.path() / "root", budget).ok());
  Status s = apply_layer(layer_b, t.path() / "root", budget);
  ASSERT_TRUE(s.ok()) << s.error().message();
  // Both resolve inside the root, as they would in the guest with the image at /.
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_EQ(read_file(t.path() / "root" / outside.relative_path() / unique), "1");
  EXPECT_EQ(read_file(t.path() / "root" / outside.relative_path() / (unique + "2")), "2");
  EXPECT_EQ(read_file(t.path() / "root/hard"), "1");
  // Through a link to a directory missing in the root: an error, nothing made outside.
  const fs::path layer_c = t.path() / "c.tar";
  write_tar(layer_c, {{"nowhere/f", 'f', "3"}}, false);
  EXPECT_FALSE(apply_layer(layer_c, t.path() / "root", budget).ok());
  EXPECT_FALSE(fs::exists("/does-not-exist-" + unique));
}

#ifdef VMFORK_BINARY
TEST(RootfsCli, CreateLsInspectRm) {
  TempDir t;
  make_tree(t.path() / "src");
  const std::string vm = std::string(VMFORK_BINARY) + " rootfs ";
  const std::string store = " --store " + (t.path() / "store").string();
  int st = -1;
  std::string out = run(vm + "create c1 --from-dir " + (t.path() / "src").string() + store + " 2>&1", &st);
  EXPECT_EQ(st, 0) << out;
  out = run(vm + "create c2 --from-host " + (t.path() / "src").string() + " /bin/true" + store + " --json 2>&1", &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("\"hash\""), std::string::npos) << out;
  out = run(vm + "ls" + store, &st);
  EXPECT_EQ(st, 0);
  EXPECT_NE(out.find("c1"), std::string::npos) << out;
  EXPECT_NE(out.find("c2"), std::string::npos) << out;
  out = run(vm + "inspect c1 --json" + store, &st);
  EXPECT_EQ(st, 0);
  EXPECT_NE(out.find("\"source\":\"dir: "), std::string::npos) << out;
  out = run(vm + "create c3" + store + " 2>&1", &st);
  EXPECT_EQ(st, 125) << out;
  out = run(vm + "rm c1" + store, &st);
  EXPECT_EQ(st, 0);
  out = run(vm + "inspect c1" + store + " 2>&1", &st);
  EXPECT_EQ(st, 125);
  EXPECT_NE(out.find("rootfs c1: not found"), std::string::npos) << out;
}

// `vmfork store verify` re-hashes every image (a flipped byte is reported, exit 1); `store gc`
// removes an image no name refers to (left by an interrupted remove).
TEST(RootfsCli, StoreVerifyAndGc) {
  TempDir t;
  make_tree(t.path() / "src");
  const std::string vm = std::string(VMFORK_BINARY);
  const std::string store = " --store " + (t.path() / "store").string();
  int st = -1;
  std::string out = run(vm + " rootfs create v1 --from-dir " + (t.path() / "src").string() + store + " 2>&1", &st);
  ASSERT_EQ(st, 0) << out;
  out = run(vm + " store verify" + store + " 2>&1", &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("ok      rootfs v1"), std::string::npos) << out;
  auto info = Store::open(t.path() / "store")->find("v1");
  ASSERT_TRUE(info.ok());
  fs::permissions(info->path, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(info->path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1100);
    f.put('\x5a');
  }
  out = run(vm + " store verify" + store + " 2>&1", &st);
  EXPECT_EQ(st, 1) << out;
  EXPECT_NE(out.find("DAMAGED rootfs v1"), std::string::npos) << out;
  // An orphan image: gc removes it and reports its bytes; the named one stays.
  const fs::path orphan = info->path.parent_path() / (std::string(32, '0') + ".erofs");
  { std::ofstream(orphan) << std::string(5000, 'x'); }
  out = run(vm + " store gc" + store + " 2>&1", &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("rootfs images: 5000 bytes freed"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_TRUE(fs::exists(info->path));
}
#endif

}  // namespace
}  // namespace vmfork::rootfs
