// Job files (see jobfiles.h).
#include "fs/jobfiles.h"

#include "fs/vfs.h"
#include "kernel.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"

namespace k::jobfiles {
namespace {

// The paths to collect, kept from install() to collect().
struct CollectPath {
  CollectPath* next;
  uint32_t len;
  char path[];
};
CollectPath* g_collect;
uint64_t g_installed_generation = ~0ull;  // BootInfo.generation the last bundle was installed for
uint64_t g_window_start, g_window_len;  // bundle range [start, start+len) now in the window

const uint8_t* window() { return phys(kFilesWindowGpa); }

// Makes bundle bytes [pos, pos+n) (n <= the window) present in the window; returns a pointer.
const uint8_t* fetch(uint64_t pos, uint64_t n) {
  if (n > kFilesWindowCap) panic("job files: record larger than the files window");
  if (pos < g_window_start || pos + n > g_window_start + g_window_len) {
    chan->files_pos = pos;
    ring(kReqFiles);
    g_window_start = pos;
    g_window_len = chan->files_len <= kFilesWindowCap ? chan->files_len : 0;
    if (n > g_window_len) panic("job files: bundle shorter than its records");
  }
  return window() + (pos - g_window_start);
}

// mkdir -p of every parent of `path` (and of path itself when `self`), following symlinks as
// a path walk does (an image's /lib -> usr/lib). Returns the directory. The host checked that
// no component is empty, "." or "..".
fs::Node* make_dirs(char* path, uint64_t len, bool self) {
  fs::Node* dir = fs::root();
  uint64_t i = 0;
  while (i < len) {
    while (i < len && path[i] == '/') i++;
    uint64_t s = i;
    while (i < len && path[i] != '/') i++;
    if (i == s) break;
    if (i >= len && !self) break;  // the last component is the file itself
    char saved = path[i];
    path[i] = 0;
    fs::Node* next;
    int64_t r = fs::resolve(fs::root(), path, true, &next);
    path[i] = saved;
    if (r == -ENOENT && fs::create(dir, path + s, i - s, 0040755, nullptr, &next) < 0) end_job(kReqMemLimit, 0);
    if (r < 0 && r != -ENOENT) panic("job files: a parent of a job file cannot be resolved");
    if (!fs::is_dir(next)) panic("job files: a parent of a job file is not a directory");
    dir = next;
  }
  return dir;
}

}  // namespace

void install() {
  // Once per job: a cold run's runtime that opens /dev/vmfork/job gets no new bundle (same
  // generation); a clone resumed there has a new generation and its own bundle.
  if (g_installed_generation == boot->generation) return;
  g_installed_generation = boot->generation;
  g_collect = nullptr;
  uint64_t total = boot->files_bytes;
  if (!total) return;
  g_window_start = g_window_len = 0;
  FilesHeader h;
  memcpy(&h, fetch(0, sizeof h), sizeof h);
  if (h.magic != kFilesMagic || h.count > 4096) panic("job files: bad bundle header");
  uint64_t pos = sizeof h;
  static char path[4096];
  for (uint64_t i = 0; i < h.count; i++) {
    FileRecord r;
    if (pos + sizeof r > total) panic("job files: record beyond the bundle");
    memcpy(&r, fetch(pos, sizeof r), sizeof r);
    pos += sizeof r;
    if (r.path_len == 0 || r.path_len > 4095 || pos + r.path_len > total) panic("job files: bad path length");
    memcpy(path, fetch(pos, r.path_len), r.path_len);
    path[r.path_len] = 0;
    pos += r.path_len;
    if (path[0] != '/') panic("job files: relative path");
    switch (r.kind) {
      case kFileData: {
        if (r.data_len > total - pos) panic("job files: data beyond the bundle");
        uint64_t len = r.path_len;
        while (len > 1 && path[len - 1] == '/') len--;
        fs::Node* dir = make_dirs(path, len, false);
        uint64_t ns = len;
        while (ns > 0 && path[ns - 1] != '/') ns--;
        fs::Node* n;
        int64_t e = fs::resolve(fs::root(), path, true, &n);  // an existing file, through symlinks
        if (e == 0 && fs::is_reg(n)) e = fs::truncate(n, 0);
        else if (e == -ENOENT) e = fs::create(dir, path + ns, len - ns, 0100000 | (r.mode & 07777), nullptr, &n);
        else if (e == 0) e = -EISDIR;
        if (e == -ENOMEM) end_job(kReqMemLimit, 0);
        if (e < 0) panic("job files: a job file's path names something that is not a regular file");
        n->mode = 0100000 | (r.mode & 07777);
        for (uint64_t off = 0; off < r.data_len;) {
          uint64_t take = r.data_len - off < kFilesWindowCap ? r.data_len - off : kFilesWindowCap;
          if (fs::write(n, off, fetch(pos + off, take), take) != int64_t(take)) end_job(kReqMemLimit, 0);
          off += take;
        }
        pos += r.data_len;
        break;
      }
      case kFileWorkdir: fs::set_cwd(make_dirs(path, r.path_len, true)); break;
      case kFileCollect: {
        auto* c = static_cast<CollectPath*>(mm::kmalloc(sizeof(CollectPath) + r.path_len + 1));
        if (!c) end_job(kReqMemLimit, 0);
        c->len = r.path_len;
        memcpy(c->path, path, r.path_len + 1);
        CollectPath** tail = &g_collect;
        while (*tail) tail = &(*tail)->next;
        *tail = c;
        break;
      }
      default: panic("job files: unknown record kind");
    }
    pos = (pos + 7) & ~7ull;
  }
}

void collect() {
  uint8_t* w = phys<uint8_t>(kFilesWindowGpa);
  uint64_t used = 0;
  auto flush = [&] {
    if (!used) return;
    chan->files_len = used;
    ring(kReqCollect);
    used = 0;
  };
  // Appends one record (header, path, `data` bytes) to the window, flushing first if needed.
  auto put = [&](FileRecord r, const char* path, fs::Node* n) {
    uint64_t need = (sizeof r + r.path_len + r.data_len + 7) & ~7ull;
    if (used + need > kFilesWindowCap) flush();
    memcpy(w + used, &r, sizeof r);
    memcpy(w + used + sizeof r, path, r.path_len);
    if (r.data_len) fs::read(n, r.data_off, w + used + sizeof r + r.path_len, r.data_len);
    used += need;
  };
  for (CollectPath* c = g_collect; c; c = c->next) {
    fs::Node* n;
    FileRecord r{};
    r.path_len = c->len;
    if (fs::resolve(fs::root(), c->path, true, &n) < 0 || !fs::is_reg(n)) {
      r.kind = kFileMissing;
      put(r, c->path, nullptr);
      continue;
    }
    r.kind = kFileData;
    r.mode = n->mode & 07777;
    r.file_size = n->size;
    // Chunks that fit the window with their header; an empty file is one empty chunk.
    uint64_t chunk_max = kFilesWindowCap - ((sizeof r + c->len + 7) & ~7ull) - 8;
    uint64_t off = 0;
    do {
      r.data_off = off;
      r.data_len = n->size - off < chunk_max ? n->size - off : chunk_max;
      put(r, c->path, n);
      off += r.data_len;
    } while (off < n->size);
  }
  flush();
}

}  // namespace k::jobfiles
