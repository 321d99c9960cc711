// apply_layer and import_oci (see oci.h): libarchive for the tarballs, openat2(RESOLVE_IN_ROOT)
// to keep every path inside the staging root.
#include "rootfs/oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.h"

namespace vmfork::rootfs {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uint64_t kMaxJsonBytes = 16 << 20;
constexpr int kMaxIndexDepth = 4;

// The path below `root` an entry names: leading "/" and "./" dropped, "." components skipped;
// a ".." component is an error (the layer is refused rather than guessed at).
Result<std::vector<std::string>> entry_components(const std::string& raw, const std::string& where) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find('/', start);
    if (end == std::string::npos) end = raw.size();
    std::string c = raw.substr(start, end - start);
    if (c == "..") return plain_error(where + ": entry '" + raw + "' has a '..' component (refused)");
    if (!c.empty() && c != ".") out.push_back(std::move(c));
    start = end + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& c, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += (i ? "/" : "") + c[i];
  return s;
}

// Opens directory `rel` of the root held by `rootfd`, resolving symlinks as if the root were "/"
// (so none escapes it); with `create`, missing directories are made (mode 0755).
Result<Fd> open_dir_in_root(int rootfd, const std::vector<std::string>& comps, size_t n, bool create, Budget& budget,
                            std::set<std::string>* made) {
  const std::string rel = n == 0 ? "." : join(comps, n);
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  for (int attempt = 0; attempt < 2; ++attempt) {
    long fd = ::syscall(SYS_openat2, rootfd, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return Fd(int(fd));
    if (errno != ENOENT || !create || n == 0 || attempt == 1) return errno_error("openat2 " + rel);
    VF_ASSIGN(Fd parent, open_dir_in_root(rootfd, comps, n - 1, true, budget, made));
    VF_TRY(budget.charge(0, rel));
    if (::mkdirat(parent.get(), comps[n - 1].c_str(), 0755) < 0) {
      if (errno != EEXIST) return errno_error("mkdir " + rel);
      continue;  // there already (a symlink to a missing directory fails on the retry)
    }
    // Explicitly, so that the umask cannot change the image's bytes.
    if (::fchmodat(parent.get(), comps[n - 1].c_str(), 0755, AT_SYMLINK_NOFOLLOW) < 0 &&
        ::fchmodat(parent.get(), comps[n - 1].c_str(), 0755, 0) < 0)
      return errno_error("chmod " + rel);
    if (made) made->insert(rel);
  }
  return errno_error("openat2 " + rel);
}

// Removes `name` in `dirfd` and, for a directory, all below it (no symlink is followed).
Status remove_at(int dirfd, const std::string& name, const std::string& shown) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return {};
    return errno_error("fstatat " + shown);
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno_error("open " + shown);
    std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), ::closedir);
    if (!d) {
      ::close(fd);
      return errno_error("fdopendir " + shown);
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d.get()))
      if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    for (const auto& n : names) VF_TRY(remove_at(::dirfd(d.get()), n, shown + "/" + n));
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) < 0) return errno_error("rmdir " + shown);
    return {};
  }
  if (::unlinkat(dirfd, name.c_str(), 0) < 0) return errno_error("unlink " + shown);
  return {};
}

Result<json> read_json(const fs::path& p) {
  std::error_code ec;
  auto size = fs::file_size(p, ec);
  if (ec) return Error{"stat " + p.string(), ec.value()};
  if (size > kMaxJsonBytes) return plain_error(p.string() + ": larger than 16 MiB");
  std::ifstream in(p, std::ios::binary);
  if (!in) return errno_error("open " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return plain_error(p.string() + ": not valid JSON");
  return j;
}

std::string str_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// blobs/<algorithm>/<encoded> for a digest "algorithm:encoded" (image-spec "Descriptor"); both
// parts checked against the spec's character sets so a digest cannot name another path.
Result<fs::path> blob_path(const fs::path& layout, const std::string& digest) {
  auto colon = digest.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == digest.size())
    return plain_error("OCI: bad digest '" + digest + "'");
  const std::string alg = digest.substr(0, colon), enc = digest.substr(colon + 1);
  for (char c : alg)
    if (!(islower(uint8_t(c)) || isdigit(uint8_t(c)) || c == '+' || c == '.' || c == '_' || c == '-'))
      return plain_error("OCI: bad digest algorithm in '" + digest + "'");
  for (char c : enc)
    if (!(isalnum(uint8_t(c)) || c == '=' || c == '_' || c == '-'))
      return plain_error("OCI: bad digest encoding in '" + digest + "'");
  return layout / "blobs" / alg / enc;
}

bool is_index(const json& j) {
  const std::string mt = str_field(j, "mediaType");
  return mt == "application/vnd.oci.image.index.v1+json" ||
         mt == "application/vnd.docker.distribution.manifest.list.v2+json" ||
         (mt.empty() && j.contains("manifests"));
}

// The layer files of the OCI layout at `dir`, bottom first.
Result<std::vector<fs::path>> oci_layers(const fs::path& dir) {
  VF_ASSIGN(json j, read_json(dir / "index.json"));
  for (int depth = 0; is_index(j); ++depth) {
    if (depth >= kMaxIndexDepth) return plain_error("OCI: image indexes nested deeper than " + std::to_string(kMaxIndexDepth));
    auto m = j.find("manifests");
    if (m == j.end() || !m->is_array() || m->empty()) return plain_error("OCI: index without manifests");
    const json* pick = &(*m)[0];
    for (const auto& d : *m) {
      auto p = d.find("platform");
      if (d.is_object() && p != d.end() && p->is_object() && str_field(*p, "os") == "linux" &&
          str_field(*p, "architecture") == "amd64") {
        pick = &d;
        break;
      }
    }
    if (!pick->is_object()) return plain_error("OCI: bad manifest descriptor");
    VF_ASSIGN(fs::path blob, blob_path(dir, str_field(*pick, "digest")));
    VF_ASSIGN(j, read_json(blob));
  }
  auto layers = j.find("layers");
  if (!j.is_object() || layers == j.end() || !layers->is_array()) return plain_error("OCI: manifest without layers");
  std::vector<fs::path> out;
  for (const auto& l : *layers) {
    if (!l.is_object()) return plain_error("OCI: bad layer descriptor");
    VF_ASSIGN(fs::path p, blob_path(dir, str_field(l, "digest")));
    out.push_back(p);
  }
  return out;
}

// The layer files of an unpacked `docker save` at `dir` (manifest.json: [{"Layers": [...]}]).
Result<std::vector<fs::path>> docker_layers(const fs::path& dir) {
  VF_ASSIGN(json j, read_json(dir / "manifest.json"));
  if (!j.is_array() || j.empty() || !j[0].is_object()) return plain_error("docker save: manifest.json is not [{...}]");
  auto layers = j[0].find("Layers");
  if (layers == j[0].end() || !layers->is_array()) return plain_error("docker save: manifest.json without Layers");
  std::vector<fs::path> out;
  for (const auto& l : *layers) {
    if (!l.is_string()) return plain_error("docker save: a layer that is not a string");
    const std::string rel = l.get<std::string>();
    VF_ASSIGN(auto comps, entry_components(rel, "docker save manifest.json"));
    if (comps.empty() || rel[0] == '/') return plain_error("docker save: bad layer path '" + rel + "'");
    out.push_back(dir / join(comps, comps.size()));
  }
  return out;
}

}  // namespace

Status apply_layer(const fs::path& layer, const fs::path& root, Budget& budget, bool whiteouts) {
  const std::string where = "layer " + layer.string();
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  if (!a) return plain_error(where + ": archive_read_new failed");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), layer.c_str(), 1 << 16) != ARCHIVE_OK)
    return Error{where + ": " + archive_error_string(a.get()), archive_errno(a.get())};
  Fd rootfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd.valid()) return errno_error("open " + root.string());
  std::set<std::string> this_layer;  // paths this layer made: whiteouts only hide what is below
  archive_entry* e = nullptr;
  for (;;) {
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) return Error{where + ": " + archive_error_string(a.get()), archive_errno(a.get())};
    const char* raw_name = archive_entry_pathname(e);
    if (!raw_name) return plain_error(where + ": an entry without a path");
    const std::string raw = raw_name;
    VF_ASSIGN(auto comps, entry_components(raw, where));
    if (comps.empty()) continue;  // the root itself
    const std::string rel = join(comps, comps.size());
    const std::string name = comps.back();
    const std::string shown = where + ": " + raw;

    if (whiteouts && name.rfind(".wh.", 0) == 0) {
      auto parent = open_dir_in_root(rootfd.get(), comps, comps.size() - 1, name == ".wh..wh..opq", budget, &this_layer);
      if (!parent.ok()) {
        if (parent.error().sys_errno == ENOENT) continue;  // nothing below to hide
        return Error{shown + ": " + parent.error().what, parent.error().sys_errno};
      }
      const std::string dir_rel = join(comps, comps.size() - 1);
      if (name == ".wh..wh..opq") {
        int fd = ::openat(parent->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return errno_error(shown + ": open");
        std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(fd), ::closedir);
        if (!d) {
          ::close(fd);
          return errno_error(shown + ": fdopendir");
        }
        std::vector<std::string> names;
        while (dirent* de = ::readdir(d.get()))
          if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) names.emplace_back(de->d_name);
        for (const auto& n : names) {
          const std::string child = dir_rel.empty() ? n : dir_rel + "/" + n;
          if (!this_layer.count(child)) VF_TRY(remove_at(parent->get(), n, child));
        }
      } else {
        const std::string victim = name.substr(4);
        if (victim.empty() || victim == "." || victim == ".." || victim.rfind(".wh.", 0) == 0)
          return plain_error(shown + ": bad whiteout");
        const std::string victim_rel = dir_rel.empty() ? victim : dir_rel + "/" + victim;
        if (!this_layer.count(victim_rel)) VF_TRY(remove_at(parent->get(), victim, victim_rel));
      }
      continue;
    }

    auto parent_r = open_dir_in_root(rootfd.get(), comps, comps.size() - 1, true, budget, &this_layer);
    if (!parent_r.ok()) return Error{shown + ": " + parent_r.error().what, parent_r.error().sys_errno};
    const int pfd = parent_r->get();
    const mode_t mode = archive_entry_perm(e) & 07777;
    const char* hardlink = archive_entry_hardlink(e);
    const mode_t type = archive_entry_filetype(e);
    struct stat have;
    const bool exists = ::fstatat(pfd, name.c_str(), &have, AT_SYMLINK_NOFOLLOW) == 0;

    if (!hardlink && type == AE_IFDIR) {
      if (exists && !S_ISDIR(have.st_mode)) VF_TRY(remove_at(pfd, name, rel));
      if (!exists || !S_ISDIR(have.st_mode)) {
        VF_TRY(budget.charge(0, rel));
        if (::mkdirat(pfd, name.c_str(), 0700) < 0) return errno_error(shown + ": mkdir");
      }
      if (::fchmodat(pfd, name.c_str(), mode, 0) < 0) return errno_error(shown + ": chmod");
      this_layer.insert(rel);
      continue;
    }
    if (!hardlink && type != AE_IFREG && type != AE_IFLNK) continue;  // devices, FIFOs, sockets
    if (exists) VF_TRY(remove_at(pfd, name, rel));
    if (hardlink) {
      VF_ASSIGN(auto tcomps, entry_components(hardlink, where));
      if (tcomps.empty()) return plain_error(shown + ": hard link to the root");
      auto tparent = open_dir_in_root(rootfd.get(), tcomps, tcomps.size() - 1, false, budget, nullptr);
      if (!tparent.ok()) return Error{shown + ": hard link target " + hardlink + ": " + tparent.error().what, tparent.error().sys_errno};
      struct stat ts;
      if (::fstatat(tparent->get(), tcomps.back().c_str(), &ts, AT_SYMLINK_NOFOLLOW) < 0)
        return errno_error(shown + ": hard link target " + hardlink);
      if (!S_ISREG(ts.st_mode)) return plain_error(shown + ": hard link to a non-regular file " + hardlink);
      if (::linkat(tparent->get(), tcomps.back().c_str(), pfd, name.c_str(), 0) < 0) return errno_error(shown + ": link");
    } else if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      if (!target || !*target) return plain_error(shown + ": symlink without a target");
      VF_TRY(budget.charge(0, rel));
      if (::symlinkat(target, pfd, name.c_str()) < 0) return errno_error(shown + ": symlink");
    } else {
      VF_TRY(budget.charge(uint64_t(std::max<int64_t>(0, archive_entry_size(e))), rel));
      Fd out(::openat(pfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out.valid()) return errno_error(shown + ": create");
      uint64_t written = 0;
      const uint64_t declared = uint64_t(std::max<int64_t>(0, archive_entry_size(e)));
      for (;;) {
        const void* buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a.get(), &buf, &len, &off);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) return Error{shown + ": " + archive_error_string(a.get()), archive_errno(a.get())};
        // Sparse entries give offsets with holes; never write past the size that was charged.
        if (off < 0 || uint64_t(off) > declared || len > declared - uint64_t(off))
          return plain_error(shown + ": data beyond the entry's size");
        for (size_t done = 0; done < len;) {
          ssize_t w = ::pwrite(out.get(), static_cast<const char*>(buf) + done, len - done, off_t(off + done));
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return errno_error(shown + ": write");
          done += size_t(w);
        }
        written = std::max(written, uint64_t(off) + len);
      }
      if (::ftruncate(out.get(), off_t(declared)) < 0) return errno_error(shown + ": ftruncate");
      if (::fchmod(out.get(), mode) < 0) return errno_error(shown + ": fchmod");
      // The layer's mtime (mkfs.erofs --preserve-mtime): same layers, same image bytes.
      const struct timespec times[2] = {{archive_entry_mtime(e), 0}, {archive_entry_mtime(e), 0}};
      if (::futimens(out.get(), times) < 0) return errno_error(shown + ": futimens");
    }
    this_layer.insert(rel);
  }
  return {};
}

Status import_oci(const fs::path& src, const fs::path& work, const fs::path& root, Budget& budget) {
  struct stat st;
  if (::stat(src.c_str(), &st) < 0) return errno_error("--from-oci: stat " + src.string());
  fs::path dir = src;
  if (S_ISREG(st.st_mode)) {
    // A tar of the layout (docker save): unpack it, confined like a layer, without whiteouts.
    dir = work / "image";
    if (::mkdir(dir.c_str(), 0700) < 0) return errno_error("mkdir " + dir.string());
    Budget outer{budget.limits};
    VF_TRY(apply_layer(src, dir, outer, false));
  } else if (!S_ISDIR(st.st_mode)) {
    return plain_error("--from-oci: " + src.string() + " is neither a directory nor a tar file");
  }
  std::vector<fs::path> layers;
  if (::access((dir / "index.json").c_str(), F_OK) == 0) {
    if (::access((dir / "oci-layout").c_str(), F_OK) != 0)
      return plain_error("--from-oci: " + src.string() + " has index.json but no oci-layout");
    VF_ASSIGN(layers, oci_layers(dir));
  } else if (::access((dir / "manifest.json").c_str(), F_OK) == 0) {
    VF_ASSIGN(layers, docker_layers(dir));
  } else {
    return plain_error("--from-oci: " + src.string() + " has neither index.json (OCI layout) nor manifest.json (docker save)");
  }
  for (const auto& l : layers) VF_TRY(apply_layer(l, root, budget, true));
  return {};
}

}  // namespace vmfork::rootfs
