// library_closure and friends (see elf_deps.h). ELF layout facts: the System V gABI (ELF
// header, program header, dynamic section) and the x86-64 psABI (EM_X86_64 = 62).
#include "rootfs/elf_deps.h"

#include <elf.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/fd.h"
#include "rootfs/elf_deps_internal.h"

namespace vmfork::rootfs {

namespace fs = std::filesystem;

namespace {

// Bounds on what is read from one ELF file: the program headers and the dynamic section of a
// real library are far smaller; a bigger claim is a corrupt file, not a reason to allocate.
constexpr uint64_t kMaxPhdrs = 4096;
constexpr uint64_t kMaxDynBytes = 1 << 20;
constexpr uint64_t kMaxStrtabBytes = 16 << 20;
constexpr int kMaxSymlinks = 40;  // as the kernel's MAXSYMLINKS: path_resolution(7)

Status pread_all(int fd, void* buf, size_t n, uint64_t off, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(buf) + done, n - done, off_t(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno_error("pread " + path);
    if (r == 0) return plain_error(path + ": truncated ELF file (wanted " + std::to_string(n) + " bytes at offset " +
                                   std::to_string(off) + ")");
    done += size_t(r);
  }
  return {};
}

std::vector<std::string> split_colon(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Replaces $ORIGIN/${ORIGIN}, $LIB/${LIB} and $PLATFORM/${PLATFORM} (ld.so(8) "Dynamic string
// tokens"); $LIB is Debian's multiarch directory.
std::string expand_tokens(std::string s, const std::string& origin) {
  const std::pair<const char*, std::string> tokens[] = {
      {"ORIGIN", origin}, {"LIB", "lib/x86_64-linux-gnu"}, {"PLATFORM", "x86_64"}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '$') {
      bool matched = false;
      for (const auto& [name, value] : tokens) {
        const std::string plain = std::string("$") + name, braced = std::string("${") + name + "}";
        if (s.compare(i, braced.size(), braced) == 0) {
          out += value, i += braced.size(), matched = true;
        } else if (s.compare(i, plain.size(), plain) == 0 &&
                   (i + plain.size() == s.size() || !(isalnum(uint8_t(s[i + plain.size()])) || s[i + plain.size()] == '_'))) {
          out += value, i += plain.size(), matched = true;
        }
        if (matched) break;
      }
      if (matched) continue;
    }
    out += s[i++];
  }
  return out;
}

void read_ld_conf(const fs::path& conf, std::vector<std::string>& dirs, std::set<std::string>& seen_files, int depth) {
  if (depth > 8 || !seen_files.insert(conf.string()).second) return;
  std::ifstream in(conf);
  std::string line;
  while (std::getline(in, line)) {
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream words(line);
    std::string w;
    if (!(words >> w)) continue;
    if (w == "include") {
      std::string pattern;
      while (words >> pattern) {
        if (pattern[0] != '/') pattern = (conf.parent_path() / pattern).string();
        glob_t g{};
        if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
          for (size_t i = 0; i < g.gl_pathc; ++i) read_ld_conf(g.gl_pathv[i], dirs, seen_files, depth + 1);
        ::globfree(&g);
      }
    } else if (w == "hwcap") {
      continue;  // obsolete ldconfig directive: not a directory
    } else {
      // A line may hold several directories separated by spaces, tabs, commas or colons.
      for (char& c : line)
        if (c == ',' || c == ':' || c == '\t') c = ' ';
      std::istringstream all(line);
      while (all >> w)
        if (w[0] == '/') dirs.push_back(w);
    }
  }
}

}  // namespace

Result<ElfDeps> read_elf_deps(const fs::path& path) {
  ElfDeps deps;
  const std::string p = path.string();
  Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + p);
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return errno_error("fstat " + p);
  if (!S_ISREG(st.st_mode) || uint64_t(st.st_size) < sizeof(Elf64_Ehdr)) return deps;
  Elf64_Ehdr eh;
  VF_TRY(pread_all(fd.get(), &eh, sizeof eh, 0, p));
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
    return deps;
  deps.elf64_x86_64 = true;
  if (eh.e_phnum == 0) return deps;
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > kMaxPhdrs)
    return plain_error(p + ": bad ELF program header table (e_phentsize " + std::to_string(eh.e_phentsize) +
                       ", e_phnum " + std::to_string(eh.e_phnum) + ")");
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  VF_TRY(pread_all(fd.get(), ph.data(), ph.size() * sizeof(Elf64_Phdr), eh.e_phoff, p));

  // Maps a virtual address to a file offset through the PT_LOAD segments (DT_STRTAB is an address).
  auto file_offset = [&](uint64_t vaddr, uint64_t len) -> Result<uint64_t> {
    for (const auto& s : ph)
      if (s.p_type == PT_LOAD && vaddr >= s.p_vaddr && vaddr - s.p_vaddr <= s.p_filesz &&
          len <= s.p_filesz - (vaddr - s.p_vaddr))
        return s.p_offset + (vaddr - s.p_vaddr);
    return plain_error(p + ": address " + std::to_string(vaddr) + " of the dynamic string table is in no PT_LOAD segment");
  };

  const Elf64_Phdr* dyn_ph = nullptr;
  for (const auto& s : ph) {
    if (s.p_type == PT_INTERP) {
      if (s.p_filesz == 0 || s.p_filesz > 4096) return plain_error(p + ": bad PT_INTERP size");
      std::string interp(s.p_filesz, '\0');
      VF_TRY(pread_all(fd.get(), interp.data(), interp.size(), s.p_offset, p));
      deps.interp = interp.c_str();  // NUL-terminated in the file
    } else if (s.p_type == PT_DYNAMIC) {
      dyn_ph = &s;
    }
  }
  if (!dyn_ph) return deps;
  if (dyn_ph->p_filesz > kMaxDynBytes) return plain_error(p + ": PT_DYNAMIC too large");
  std::vector<Elf64_Dyn> dyn(dyn_ph->p_filesz / sizeof(Elf64_Dyn));
  VF_TRY(pread_all(fd.get(), dyn.data(), dyn.size() * sizeof(Elf64_Dyn), dyn_ph->p_offset, p));
  uint64_t strtab = 0, strsz = 0;
  bool have_strtab = false;
  std::vector<uint64_t> needed, rpath, runpath;
  for (const auto& d : dyn) {
    if (d.d_tag == DT_NULL) break;
    switch (d.d_tag) {
      case DT_STRTAB: strtab = d.d_un.d_ptr, have_strtab = true; break;
      case DT_STRSZ: strsz = d.d_un.d_val; break;
      case DT_NEEDED: needed.push_back(d.d_un.d_val); break;
      case DT_RPATH: rpath.push_back(d.d_un.d_val); break;
      case DT_RUNPATH: runpath.push_back(d.d_un.d_val); break;
      default: break;
    }
  }
  if (needed.empty() && rpath.empty() && runpath.empty()) return deps;
  if (!have_strtab || strsz == 0 || strsz > kMaxStrtabBytes) return plain_error(p + ": bad DT_STRTAB/DT_STRSZ");
  VF_ASSIGN(uint64_t str_off, file_offset(strtab, strsz));
  std::string strs(strsz, '\0');
  VF_TRY(pread_all(fd.get(), strs.data(), strs.size(), str_off, p));
  auto str_at = [&](uint64_t off) -> Result<std::string> {
    if (off >= strs.size()) return plain_error(p + ": dynamic string offset out of range");
    size_t end = strs.find('\0', off);
    if (end == std::string::npos) return plain_error(p + ": unterminated dynamic string");
    return strs.substr(off, end - off);
  };
  for (uint64_t o : needed) {
    VF_ASSIGN(std::string s, str_at(o));
    deps.needed.push_back(s);
  }
  for (uint64_t o : rpath) {
    VF_ASSIGN(std::string s, str_at(o));
    for (auto& d : split_colon(s)) deps.rpath.push_back(d);
  }
  for (uint64_t o : runpath) {
    VF_ASSIGN(std::string s, str_at(o));
    for (auto& d : split_colon(s)) deps.runpath.push_back(d);
  }
  return deps;
}

Result<bool> is_dynamic_elf(const fs::path& path) {
  VF_ASSIGN(ElfDeps d, read_elf_deps(path));
  if (!d.elf64_x86_64) return plain_error(path.string() + ": not an ELF64 x86-64 file");
  return !d.interp.empty();
}

std::vector<std::string> system_library_dirs(const fs::path& conf) {
  std::vector<std::string> dirs;
  std::set<std::string> seen_files;
  read_ld_conf(conf, dirs, seen_files, 0);
  for (const char* d : {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/lib"})
    dirs.push_back(d);
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (auto& d : dirs)
    if (seen.insert(d).second) unique.push_back(d);
  return unique;
}

Result<std::vector<std::string>> symlink_chain(const std::string& path) {
  if (path.empty() || path[0] != '/') return plain_error("symlink_chain: not an absolute path: " + path);
  std::vector<std::string> out{fs::path(path).lexically_normal().string()};
  // `todo` holds the components still to walk, last first; `cur` is resolved and free of links.
  std::vector<std::string> todo;
  for (const auto& c : fs::path(path).relative_path()) todo.push_back(c.string());
  std::reverse(todo.begin(), todo.end());
  std::string cur;  // "" is "/"
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.back());
    todo.pop_back();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      cur = cur.substr(0, cur.rfind('/'));
      continue;
    }
    std::string next = cur + "/" + c;
    struct stat st;
    if (::lstat(next.c_str(), &st) < 0) return errno_error("lstat " + next);
    if (!S_ISLNK(st.st_mode)) {
      if (!todo.empty() && !S_ISDIR(st.st_mode)) return Error{"resolve " + path + ": " + next + " is not a directory", ENOTDIR};
      cur = next;
      continue;
    }
    if (++links > kMaxSymlinks) return Error{"resolve " + path, ELOOP};
    out.push_back(next);
    char buf[4096];
    ssize_t n = ::readlink(next.c_str(), buf, sizeof buf);
    if (n < 0) return errno_error("readlink " + next);
    if (size_t(n) == sizeof buf) return Error{"readlink " + next, ENAMETOOLONG};
    fs::path target(std::string(buf, size_t(n)));
    if (target.is_absolute()) cur.clear();
    std::vector<std::string> parts;
    for (const auto& t : target.relative_path()) parts.push_back(t.string());
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(*it);
  }
  std::string final_path = cur.empty() ? "/" : cur;
  if (out.back() != final_path) out.push_back(final_path);
  return out;
}

Result<Closure> library_closure_report(const std::vector<std::string>& elf_paths) {
  Closure c;
  const std::vector<std::string> sysdirs = system_library_dirs();
  std::set<std::string> listed;    // every path put in c.paths
  std::set<std::string> scanned;   // canonical paths of ELF files already read
  struct Item {
    std::string path;         // as found
    std::vector<std::string> program_rpath;  // DT_RPATH of the program that loads it
    bool is_program;
  };
  std::vector<Item> work;
  for (const auto& p : elf_paths) work.push_back({p, {}, true});
  std::map<std::string, std::string> found_cache;  // (search key) -> path

  auto add_chain = [&](const std::string& p) -> Status {
    VF_ASSIGN(auto chain, symlink_chain(p));
    for (auto& q : chain) listed.insert(q);
    return {};
  };
  auto usable = [](const std::string& cand) {
    auto d = read_elf_deps(cand);
    return d.ok() && d->elf64_x86_64;
  };

  while (!work.empty()) {
    Item item = std::move(work.back());
    work.pop_back();
    std::error_code ec;
    const fs::path canon = fs::canonical(item.path, ec);
    if (ec) return Error{"realpath " + item.path, ec.value()};
    if (!scanned.insert(canon.string()).second) continue;
    VF_ASSIGN(ElfDeps d, read_elf_deps(canon));
    if (!d.elf64_x86_64) continue;
    // $ORIGIN: the program's own (resolved) directory, as glibc takes it from /proc/self/exe;
    // a library's is the directory it was found in.
    const std::string origin = (item.is_program ? canon : fs::path(item.path)).parent_path().string();
    std::vector<std::string> prog_rpath = item.is_program ? d.rpath : item.program_rpath;
    if (item.is_program)
      for (auto& r : prog_rpath) r = expand_tokens(r, origin);
    if (!d.interp.empty()) {
      if (!usable(d.interp)) {
        c.missing.push_back(d.interp + " (interpreter of " + item.path + ")");
      } else {
        VF_TRY(add_chain(d.interp));
        work.push_back({d.interp, prog_rpath, false});
      }
    }
    std::vector<std::string> dirs;
    if (d.runpath.empty()) {
      for (auto& r : d.rpath) dirs.push_back(expand_tokens(r, origin));
      if (!item.is_program)
        for (auto& r : prog_rpath) dirs.push_back(r);
    }
    for (auto& r : d.runpath) dirs.push_back(expand_tokens(r, origin));
    for (const auto& name : d.needed) {
      std::string hit;
      if (name.find('/') != std::string::npos) {
        if (usable(name)) hit = name;
      } else {
        std::string key;
        for (auto& dir : dirs) key += dir + ":";
        key += "|" + name;
        if (auto it = found_cache.find(key); it != found_cache.end()) {
          hit = it->second;
        } else {
          const std::vector<std::string>* lists[] = {&dirs, &sysdirs};
          for (const auto* list : lists) {
            for (const auto& dir : *list) {
              std::string cand = dir + "/" + name;
              if (::access(cand.c_str(), R_OK) == 0 && usable(cand)) {
                hit = cand;
                break;
              }
            }
            if (!hit.empty()) break;
          }
          found_cache[key] = hit;
        }
      }
      if (hit.empty()) {
        c.missing.push_back(name + " needed by " + item.path);
        continue;
      }
      if (hit[0] != '/') hit = fs::absolute(hit).lexically_normal().string();
      VF_TRY(add_chain(hit));
      work.push_back({hit, prog_rpath, false});
    }
  }
  c.paths.assign(listed.begin(), listed.end());
  std::sort(c.missing.begin(), c.missing.end());
  c.missing.erase(std::unique(c.missing.begin(), c.missing.end()), c.missing.end());
  return c;
}

Result<std::vector<std::string>> library_closure(const std::vector<std::string>& elf_paths) {
  VF_ASSIGN(Closure c, library_closure_report(elf_paths));
  if (!c.missing.empty()) return Error{"library closure: " + c.missing.front() + ": not found", ENOENT};
  return c.paths;
}

}  // namespace vmfork::rootfs
