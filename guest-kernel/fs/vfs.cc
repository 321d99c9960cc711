// The merged file system tree (see vfs.h). Path resolution follows path_resolution(7); the
// writable layer's rules (copy-up, whiteouts, opaque new directories) are overlayfs's
// (Documentation/filesystems/overlayfs.rst), kept in RAM.
#include "fs/vfs.h"

#include "fs/proc.h"
#include "kernel/clock.h"
#include "mm/kmalloc.h"
#include "mm/pmm.h"

namespace k::fs {
namespace {

constexpr uint32_t S_IFMT = 0170000, S_IFLNK = 0120000;
constexpr uint8_t DT_UNKNOWN = 0, DT_CHR = 2, DT_DIR = 4, DT_REG = 8, DT_LNK = 10;
constexpr int kMaxSymlinks = 40;  // MAXSYMLINKS, path_resolution(7)

Node* g_root;
Node* g_streams[3];
uint64_t g_next_ino = 1ull << 40;  // writable-layer inode numbers, above any image nid

uint32_t hash_name(const char* s, uint64_t len) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (uint64_t i = 0; i < len; i++) h = (h ^ uint8_t(s[i])) * 16777619u;
  return h;
}

uint8_t dtype_of(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFDIR: return DT_DIR;
    case S_IFREG: return DT_REG;
    case S_IFLNK: return DT_LNK;
    case S_IFCHR: return DT_CHR;
    case S_IFIFO: return 1;
    default: return DT_UNKNOWN;
  }
}

timespec now() {
  uint64_t ns = clock::realtime_ns();
  return timespec{int64_t(ns / 1000000000), int64_t(ns % 1000000000)};
}

Node* new_node(uint32_t mode, Node* parent) {
  auto* n = static_cast<Node*>(mm::kmalloc(sizeof(Node)));
  if (!n) return nullptr;
  n->ino = g_next_ino++;
  n->mode = mode;
  n->uid = n->gid = 1000;
  n->nlink = 1;
  n->atime = n->mtime = n->ctime = now();
  n->parent = parent;
  if ((mode & S_IFMT) == S_IFDIR) n->nlink = 2, n->complete = true;
  return n;
}

Node* node_from_image(uint64_t nid, Node* parent) {
  erofs::Inode li;
  if (erofs::get_inode(nid, &li) < 0) return nullptr;
  auto* n = static_cast<Node*>(mm::kmalloc(sizeof(Node)));
  if (!n) return nullptr;
  n->ino = nid;
  n->mode = li.mode;
  n->uid = li.uid;
  n->gid = li.gid;
  n->nlink = li.nlink;
  n->size = li.size;
  n->atime = n->mtime = n->ctime = timespec{int64_t(li.mtime), int64_t(li.mtime_nsec)};
  n->parent = parent;
  n->lower = true;
  n->li = li;
  return n;
}

Dentry* add_dentry(Node* dir, const char* name, uint64_t len, Node* node, uint64_t lower_nid, uint8_t type) {
  auto* d = static_cast<Dentry*>(mm::kmalloc(sizeof(Dentry) + len + 1));
  if (!d) return nullptr;
  d->node = node;
  d->lower_nid = lower_nid;
  d->hash = hash_name(name, len);
  d->len = uint16_t(len);
  d->type = type;
  memcpy(d->name, name, len);
  d->name[len] = 0;
  // Append, so that readdir cursors (indexes) stay valid while entries are added.
  Dentry** p = &dir->children;
  while (*p) p = &(*p)->next;
  *p = d;
  return d;
}

Dentry* find_dentry(Node* dir, const char* name, uint64_t len) {
  uint32_t h = hash_name(name, len);
  for (Dentry* d = dir->children; d; d = d->next)
    if (d->hash == h && d->len == len && !memcmp(d->name, name, len)) return d;
  return nullptr;
}

// Gives every image entry of `dir` a Dentry (for readdir and emptiness checks).
int64_t complete_dir(Node* dir) {
  if (dir->complete) return 0;
  if (dir->lower) {
    uint64_t pos = 0;
    erofs::Dirent e;
    for (;;) {
      int64_t r = erofs::readdir(dir->li, &pos, &e);
      if (r < 0) return r;
      if (r == 0) break;
      if ((e.name_len == 1 && e.name[0] == '.') || (e.name_len == 2 && e.name[0] == '.' && e.name[1] == '.'))
        continue;
      if (find_dentry(dir, e.name, e.name_len)) continue;  // shadowed or whited out
      if (!add_dentry(dir, e.name, e.name_len, nullptr, e.nid, e.type)) return -ENOMEM;
    }
  }
  dir->complete = true;
  return 0;
}

// Node behind a Dentry, made from the image on first use.
int64_t dentry_node(Node* dir, Dentry* d, Node** out) {
  if (d->whiteout) return -ENOENT;
  if (!d->node) {
    d->node = node_from_image(d->lower_nid, dir);
    if (!d->node) return -EIO;
  }
  *out = d->node;
  return 0;
}

// ---- Writable-layer file data: page_dir[i / 512][i % 512] is the GPA of page i (0 = hole).
uint64_t* slot_for(Node* n, uint64_t page, bool create) {
  if (page >= 512 * 512) return nullptr;
  if (!n->page_dir) {
    if (!create) return nullptr;
    n->page_dir = static_cast<uint64_t**>(mm::kpage_alloc());
    if (!n->page_dir) return nullptr;
  }
  uint64_t*& idx = n->page_dir[page / 512];
  if (!idx) {
    if (!create) return nullptr;
    idx = static_cast<uint64_t*>(mm::kpage_alloc());
    if (!idx) return nullptr;
  }
  return &idx[page % 512];
}

void free_pages_from(Node* n, uint64_t first_page) {
  if (!n->page_dir) return;
  for (uint64_t i = first_page / 512; i < 512; i++) {
    uint64_t* idx = n->page_dir[i];
    if (!idx) continue;
    uint64_t from = i == first_page / 512 ? first_page % 512 : 0;
    for (uint64_t j = from; j < 512; j++) {
      if (idx[j] && !n->mapped) pmm::free(idx[j]);
      idx[j] = 0;
    }
    if (from == 0) mm::kpage_free(idx), n->page_dir[i] = nullptr;
  }
}

int64_t upper_read(Node* n, uint64_t off, uint8_t* dst, uint64_t len) {
  uint64_t done = 0;
  while (done < len) {
    uint64_t pos = off + done, in = pos % kPage, take = kPage - in < len - done ? kPage - in : len - done;
    uint64_t* s = slot_for(n, pos / kPage, false);
    if (s && *s) memcpy(dst + done, phys(*s + in), take);
    else memset(dst + done, 0, take);
    done += take;
  }
  return int64_t(done);
}

int64_t copy_up(Node* n) {
  if (n->upper || !is_reg(n)) return 0;
  if (n->size > kMaxUpperFile) return -EFBIG;
  for (uint64_t off = 0; off < n->size; off += kPage) {
    uint64_t* s = slot_for(n, off / kPage, true);
    uint64_t pa = s ? pmm::alloc() : 0;
    if (!pa) return -ENOMEM;
    *s = pa;
    uint64_t take = n->size - off < kPage ? n->size - off : kPage;
    if (n->lower && erofs::read(n->li, off, phys(pa), take) != int64_t(take)) return -EIO;
  }
  n->upper = true;
  return 0;
}

bool is_dot(const char* s, uint64_t len) { return len == 1 && s[0] == '.'; }
bool is_dotdot(const char* s, uint64_t len) { return len == 2 && s[0] == '.' && s[1] == '.'; }

// A symlink's target into a fresh buffer of kPathMax bytes (caller frees), length in *len.
int64_t link_target(Node* n, char** out, uint64_t* len);

// The working buffers of one resolution: the remaining path is kept in a kernel page so that
// symlink targets can be spliced in front of it without recursion.
int64_t walk(Node* base, const char* path, bool follow_last, bool stop_before_last, Node** out_dir,
             const char** out_name, uint64_t* out_len, char* scratch) {
  uint64_t plen = strlen(path);
  if (plen >= kPathMax) return -ENAMETOOLONG;
  if (plen == 0) return -ENOENT;
  // scratch holds the path still to walk at its end, so prefixes can be inserted before it.
  uint64_t start = kPathMax * 2 - plen - 1;
  memcpy(scratch + start, path, plen + 1);
  Node* cur = base;
  int links = 0;
  for (;;) {
    if (scratch[start] == '/') {
      cur = g_root;
      while (scratch[start] == '/') start++;
    }
    if (!scratch[start]) {  // nothing (left) but slashes
      if (stop_before_last) return -EISDIR;
      *out_dir = cur;
      return 0;
    }
    const char* name = scratch + start;
    uint64_t len = 0;
    while (name[len] && name[len] != '/') len++;
    if (len > 255) return -ENAMETOOLONG;
    uint64_t next = start + len;
    bool trailing_slash = name[len] == '/';
    while (scratch[next] == '/') next++;
    bool last = !scratch[next];
    if (!is_dir(cur)) return -ENOTDIR;
    if (last && stop_before_last) {
      *out_dir = cur;
      *out_name = name;  // inside scratch: valid until the next resolution
      *out_len = len;
      return 0;
    }
    Node* child;
    if (is_dot(name, len)) {
      child = cur;
    } else if (is_dotdot(name, len)) {
      child = cur->parent ? cur->parent : g_root;
    } else {
      int64_t r = lookup(cur, name, len, &child);
      if (r < 0) return r;
    }
    if (is_lnk(child) && (!last || follow_last || trailing_slash)) {
      if (++links > kMaxSymlinks) return -ELOOP;
      if (child->special == Special::kProcFd) {  // a magic link: the open file itself
        Node* t = proc_fd_target(child->proc_arg);
        if (!t) return -ENOENT;
        cur = t;
        start = next;
        if (last) {
          *out_dir = cur;
          return 0;
        }
        continue;
      }
      char* target;
      uint64_t tlen;
      int64_t r = link_target(child, &target, &tlen);
      if (r < 0) return r;
      if (tlen == 0) {
        mm::kpage_free(target);
        return -ENOENT;
      }
      // The remaining path stays at the end of scratch; the target goes in front of it.
      uint64_t rest = last ? 0 : strlen(scratch + next);
      if (tlen + 1 + rest >= kPathMax) {
        mm::kpage_free(target);
        return -ENAMETOOLONG;
      }
      if (last) {
        start = kPathMax * 2 - tlen - 1;
        memcpy(scratch + start, target, tlen);
        scratch[start + tlen] = 0;
      } else {
        start = next - tlen - 1;
        memcpy(scratch + start, target, tlen);
        scratch[start + tlen] = '/';
      }
      mm::kpage_free(target);
      continue;
    }
    cur = child;
    start = next;
    if (last) {
      if (trailing_slash && !is_dir(cur)) return -ENOTDIR;
      *out_dir = cur;
      return 0;
    }
  }
}

char g_scratch[2 * kPathMax];  // the path being resolved (one resolution at a time)

int64_t link_target(Node* n, char** out, uint64_t* len) {
  auto* buf = static_cast<char*>(mm::kpage_alloc());
  if (!buf) return -ENOMEM;
  int64_t r = readlink(n, buf, kPage - 1);
  if (r < 0) {
    mm::kpage_free(buf);
    return r;
  }
  *out = buf;
  *len = uint64_t(r);
  return 0;
}

}  // namespace

// ---- Public --------------------------------------------------------------------------------

Node* root() { return g_root; }
Node* stream_node(int fd) { return fd >= 0 && fd < 3 ? g_streams[fd] : nullptr; }

int64_t lookup(Node* dir, const char* name, uint64_t len, Node** out) {
  if (!is_dir(dir)) return -ENOTDIR;
  if (dir->special == Special::kProcFdDir) {
    uint64_t fd = 0;
    if (!len || len > 4) return -ENOENT;
    for (uint64_t i = 0; i < len; i++) {
      if (name[i] < '0' || name[i] > '9') return -ENOENT;
      fd = fd * 10 + uint64_t(name[i] - '0');
    }
    if (!proc_fd_target(uint32_t(fd))) return -ENOENT;
    // A fresh link node per lookup is wasteful but rare; keep one per fd number instead.
    Dentry* d = find_dentry(dir, name, len);
    if (!d) {
      Node* n = new_node(S_IFLNK | 0700, dir);
      if (!n) return -ENOMEM;
      n->special = Special::kProcFd;
      n->proc_arg = uint32_t(fd);
      d = add_dentry(dir, name, len, n, 0, DT_LNK);
      if (!d) return -ENOMEM;
    }
    *out = d->node;
    return 0;
  }
  if (Dentry* d = find_dentry(dir, name, len)) return dentry_node(dir, d, out);
  if (dir->complete || !dir->lower) return -ENOENT;
  uint64_t nid;
  int64_t r = erofs::lookup(dir->li, name, len, &nid);
  if (r < 0) return r == -ENOTDIR ? -ENOENT : r;
  Node* n = node_from_image(nid, dir);
  if (!n) return -EIO;
  if (!add_dentry(dir, name, len, n, nid, dtype_of(n->mode))) return -ENOMEM;
  *out = n;
  return 0;
}

int64_t resolve(Node* base, const char* path, bool follow, Node** out) {
  const char* name;
  uint64_t len;
  return walk(base, path, follow, false, out, &name, &len, g_scratch);
}

int64_t resolve_parent(Node* base, const char* path, Node** dir, const char** name, uint64_t* len) {
  int64_t r = walk(base, path, false, true, dir, name, len, g_scratch);
  if (r < 0) return r;
  if (!is_dir(*dir)) return -ENOTDIR;
  return 0;
}

int64_t create(Node* dir, const char* name, uint64_t len, uint32_t mode, const char* target, Node** out) {
  if (!is_dir(dir)) return -ENOTDIR;
  if (dir->special != Special::kNone) return -EACCES;
  if (len > 255) return -ENAMETOOLONG;
  if (is_dot(name, len) || is_dotdot(name, len)) return -EEXIST;
  Dentry* d = find_dentry(dir, name, len);
  if (d && !d->whiteout) return -EEXIST;
  if (!d && dir->lower && !dir->complete) {
    uint64_t nid;
    if (erofs::lookup(dir->li, name, len, &nid) == 0) return -EEXIST;
  }
  Node* n = new_node(mode, dir);
  if (!n) return -ENOMEM;
  if ((mode & S_IFMT) == S_IFREG) n->upper = true;
  if ((mode & S_IFMT) == S_IFLNK) {
    uint64_t tl = strlen(target);
    n->link = static_cast<char*>(mm::kpage_alloc());
    if (!n->link) return -ENOMEM;
    memcpy(n->link, target, tl);
    n->size = tl;
    n->upper = true;
  }
  if (d) {
    d->whiteout = false;
    d->node = n;
    d->lower_nid = 0;
    d->type = dtype_of(mode);
  } else if (!add_dentry(dir, name, len, n, 0, dtype_of(mode))) {
    return -ENOMEM;
  }
  if ((mode & S_IFMT) == S_IFDIR) dir->nlink++;
  dir->mtime = dir->ctime = now();
  *out = n;
  return 0;
}

namespace {
// Marks the entry deleted: a whiteout hides the image's entry of the same name, if any.
void drop_entry(Node* dir, Dentry* d) {
  d->whiteout = true;
  d->node = nullptr;
  d->lower_nid = 0;
  dir->mtime = dir->ctime = now();
}

int64_t dir_empty(Node* n) {
  int64_t r = complete_dir(n);
  if (r < 0) return r;
  for (Dentry* d = n->children; d; d = d->next)
    if (!d->whiteout) return -ENOTEMPTY;
  return 0;
}
}  // namespace

int64_t remove(Node* dir, const char* name, uint64_t len, bool rmdir) {
  if (!is_dir(dir)) return -ENOTDIR;
  if (is_dot(name, len)) return rmdir ? -EINVAL : -EISDIR;
  if (is_dotdot(name, len)) return rmdir ? -ENOTEMPTY : -EISDIR;
  Node* n;
  int64_t r = lookup(dir, name, len, &n);
  if (r < 0) return r;
  if (dir->special != Special::kNone || n->special != Special::kNone) return -EACCES;
  if (rmdir) {
    if (!is_dir(n)) return -ENOTDIR;
    if (n == g_root) return -EBUSY;
    r = dir_empty(n);
    if (r < 0) return r;
    dir->nlink--;
  } else if (is_dir(n)) {
    return -EISDIR;
  }
  drop_entry(dir, find_dentry(dir, name, len));
  if (n->nlink) n->nlink--;
  n->ctime = now();
  if (is_dir(n)) n->nlink = 0;
  release(n);
  return 0;
}

int64_t rename(Node* odir, const char* oname, uint64_t olen, Node* ndir, const char* nname, uint64_t nlen,
               bool noreplace) {
  if (!is_dir(odir) || !is_dir(ndir)) return -ENOTDIR;
  if (is_dot(oname, olen) || is_dotdot(oname, olen) || is_dot(nname, nlen) || is_dotdot(nname, nlen))
    return -EBUSY;
  if (nlen > 255) return -ENAMETOOLONG;
  Node* n;
  int64_t r = lookup(odir, oname, olen, &n);
  if (r < 0) return r;
  if (odir->special != Special::kNone || ndir->special != Special::kNone) return -EACCES;
  // A directory cannot move below itself.
  for (Node* p = ndir; p && p != g_root; p = p->parent)
    if (p == n) return -EINVAL;
  Node* old;
  r = lookup(ndir, nname, nlen, &old);
  if (r == 0) {
    if (old == n) return 0;
    if (noreplace) return -EEXIST;
    if (is_dir(n) && !is_dir(old)) return -ENOTDIR;
    if (!is_dir(n) && is_dir(old)) return -EISDIR;
    if (is_dir(old)) {
      r = dir_empty(old);
      if (r < 0) return r;
      ndir->nlink--;
    }
    Dentry* od = find_dentry(ndir, nname, nlen);
    od->node = n;
    od->type = dtype_of(n->mode);
    od->lower_nid = 0;
    if (old->nlink) old->nlink--;
    release(old);
  } else if (r == -ENOENT) {
    Dentry* d = find_dentry(ndir, nname, nlen);
    if (d) {  // reuse a whiteout
      d->whiteout = false;
      d->node = n;
      d->lower_nid = 0;
      d->type = dtype_of(n->mode);
    } else if (!add_dentry(ndir, nname, nlen, n, 0, dtype_of(n->mode))) {
      return -ENOMEM;
    }
  } else {
    return r;
  }
  drop_entry(odir, find_dentry(odir, oname, olen));
  if (is_dir(n)) {
    odir->nlink--;
    ndir->nlink++;
  }
  n->parent = ndir;
  n->ctime = ndir->mtime = ndir->ctime = now();
  return 0;
}

int64_t link(Node* target, Node* dir, const char* name, uint64_t len) {
  if (is_dir(target)) return -EPERM;
  if (target->special != Special::kNone) return -EPERM;
  if (!is_dir(dir)) return -ENOTDIR;
  if (dir->special != Special::kNone) return -EACCES;
  if (len > 255) return -ENAMETOOLONG;
  if (is_dot(name, len) || is_dotdot(name, len)) return -EEXIST;
  Node* existing;
  if (lookup(dir, name, len, &existing) == 0) return -EEXIST;
  Dentry* d = find_dentry(dir, name, len);
  if (d) {
    d->whiteout = false;
    d->node = target;
    d->lower_nid = 0;
    d->type = dtype_of(target->mode);
  } else if (!add_dentry(dir, name, len, target, 0, dtype_of(target->mode))) {
    return -ENOMEM;
  }
  target->nlink++;
  target->ctime = now();
  return 0;
}

int64_t readdir(Node* dir, uint64_t* cursor, DirEntry* out) {
  if (!is_dir(dir)) return -ENOTDIR;
  if (*cursor == 0 || *cursor == 1) {
    Node* n = *cursor == 0 ? dir : (dir->parent ? dir->parent : dir);
    *out = DirEntry{n->ino, DT_DIR, *cursor == 0 ? "." : "..", *cursor == 0 ? 1u : 2u};
    ++*cursor;
    return 1;
  }
  if (dir->special == Special::kProcFdDir) {
    static char num[8];
    for (uint64_t fd = *cursor - 2; fd < 256; fd++) {
      if (!proc_fd_target(uint32_t(fd))) continue;
      uint64_t l = 0, v = fd;
      char tmp[8];
      do tmp[l++] = char('0' + v % 10), v /= 10;
      while (v);
      for (uint64_t i = 0; i < l; i++) num[i] = tmp[l - 1 - i];
      *out = DirEntry{1000 + fd, DT_LNK, num, l};
      *cursor = fd + 3;
      return 1;
    }
    return 0;
  }
  int64_t r = complete_dir(dir);
  if (r < 0) return r;
  uint64_t i = 2;
  for (Dentry* d = dir->children; d; d = d->next, i++) {
    if (i < *cursor || d->whiteout) continue;
    uint64_t ino = d->node ? d->node->ino : d->lower_nid;
    *out = DirEntry{ino, d->type, d->name, d->len};
    *cursor = i + 1;
    return 1;
  }
  *cursor = i;
  return 0;
}

int64_t read(Node* n, uint64_t off, void* dst, uint64_t len) {
  if (is_dir(n)) return -EISDIR;
  if (off >= n->size) return 0;
  if (len > n->size - off) len = n->size - off;
  if (n->upper) return upper_read(n, off, static_cast<uint8_t*>(dst), len);
  if (n->lower) return erofs::read(n->li, off, dst, len);
  return 0;
}

int64_t write(Node* n, uint64_t off, const void* src, uint64_t len) {
  if (is_dir(n)) return -EISDIR;
  if (off > kMaxUpperFile || len > kMaxUpperFile - off) return -EFBIG;
  int64_t r = copy_up(n);
  if (r < 0) return r;
  const auto* s = static_cast<const uint8_t*>(src);
  uint64_t done = 0;
  while (done < len) {
    uint64_t pos = off + done, in = pos % kPage, take = kPage - in < len - done ? kPage - in : len - done;
    uint64_t* slot = slot_for(n, pos / kPage, true);
    if (!slot) return done ? int64_t(done) : -ENOMEM;
    if (!*slot) {
      *slot = pmm::alloc();
      if (!*slot) return done ? int64_t(done) : -ENOMEM;
    }
    memcpy(phys(*slot + in), s + done, take);
    done += take;
  }
  if (off + len > n->size) n->size = off + len;
  n->mtime = n->ctime = now();
  return int64_t(done);
}

int64_t truncate(Node* n, uint64_t size) {
  if (is_dir(n)) return -EISDIR;
  if (!is_reg(n)) return -EINVAL;
  if (size > kMaxUpperFile) return -EFBIG;
  int64_t r = copy_up(n);
  if (r < 0) return r;
  if (size < n->size) {
    // Zero the tail of the last kept page and free whole pages past it.
    if (size % kPage) {
      uint64_t* s = slot_for(n, size / kPage, false);
      if (s && *s) memset(phys(*s + size % kPage), 0, kPage - size % kPage);
    }
    free_pages_from(n, page_up(size) / kPage);
  }
  n->size = size;
  n->mtime = n->ctime = now();
  return 0;
}

uint64_t page_gpa(Node* n, uint64_t off, bool* image) {
  *image = false;
  if (n->upper) {
    uint64_t* s = slot_for(n, off / kPage, false);
    return s ? *s : 0;
  }
  if (!n->lower || off >= n->size) return 0;
  int64_t o = erofs::page_offset(n->li, off);
  if (o < 0) return 0;
  *image = true;
  return boot->rootfs_gpa + uint64_t(o);
}

int64_t readlink(Node* n, char* buf, uint64_t cap) {
  if (!is_lnk(n)) return -EINVAL;
  if (n->special == Special::kProcExe) {
    const char* p = proc_exe_path();
    uint64_t l = strlen(p);
    if (l > cap) l = cap;
    memcpy(buf, p, l);
    return int64_t(l);
  }
  if (n->special == Special::kProcSelf) {
    if (!cap) return 0;
    buf[0] = '1';
    return 1;
  }
  if (n->special == Special::kProcFd) {
    return proc_fd_link(n->proc_arg, buf, cap);
  }
  if (n->upper) {
    uint64_t l = n->size < cap ? n->size : cap;
    memcpy(buf, n->link, l);
    return int64_t(l);
  }
  if (n->lower) return erofs::readlink(n->li, buf, cap);
  return -EINVAL;
}

int64_t path_of(Node* n, char* buf, uint64_t cap) {
  if (n == g_root) {
    if (cap < 2) return -ENAMETOOLONG;
    buf[0] = '/', buf[1] = 0;
    return 1;
  }
  // Build from the end: each step finds the node's name in its parent.
  uint64_t pos = cap;
  if (!pos) return -ENAMETOOLONG;
  buf[--pos] = 0;
  for (Node* cur = n; cur != g_root;) {
    Node* p = cur->parent;
    if (!p) return -ENOENT;
    Dentry* found = nullptr;
    for (Dentry* d = p->children; d; d = d->next)
      if (d->node == cur && !d->whiteout) found = d;
    if (!found) return -ENOENT;
    if (pos < uint64_t(found->len) + 1) return -ENAMETOOLONG;
    pos -= found->len;
    memcpy(buf + pos, found->name, found->len);
    buf[--pos] = '/';
    cur = p;
  }
  uint64_t len = cap - 1 - pos;
  memmove(buf, buf + pos, len + 1);
  return int64_t(len);
}

void fill_stat(const Node* n, stat* st) {
  memset(st, 0, sizeof *st);
  st->st_dev = 0x801;  // one device for the merged tree: a RAM-layer dir is no mount point
  st->st_ino = n->ino;
  st->st_nlink = n->nlink;
  st->st_mode = n->mode;
  st->st_uid = n->uid;
  st->st_gid = n->gid;
  st->st_size = int64_t(n->size);
  st->st_blksize = 4096;
  st->st_blocks = int64_t(page_up(n->size) / 512);
  st->st_atim = n->atime;
  st->st_mtim = n->mtime;
  st->st_ctim = n->ctime;
  switch (n->special) {
    case Special::kNull: st->st_rdev = (1 << 8) | 3; break;
    case Special::kZero: st->st_rdev = (1 << 8) | 5; break;
    case Special::kFull: st->st_rdev = (1 << 8) | 7; break;
    case Special::kRandom: st->st_rdev = (1 << 8) | 9; break;
    case Special::kStdin: case Special::kStdout: case Special::kStderr:
      // A pipe: libc then buffers fully with st_blksize bytes, so few syscalls (and exits).
      st->st_blksize = 65536;
      st->st_dev = 0xc;
      break;
    default: if (n->lower && (n->mode & S_IFMT) == S_IFCHR) st->st_rdev = n->li.rdev;
  }
}

Node* new_anonymous_file() {
  Node* n = new_node(S_IFREG | 0444, nullptr);
  if (n) {
    n->upper = true;
    n->nlink = 0;
  }
  return n;
}

void release(Node* n) {
  if (n->nlink == 0 && n->opens == 0 && n->upper && is_reg(n)) {
    free_pages_from(n, 0);
    n->size = 0;
  }
}

// ---- Boot ---------------------------------------------------------------------------------

namespace {
Node* mkdir_synthetic(Node* parent, const char* name, uint32_t mode = S_IFDIR | 0755) {
  Node* n;
  uint64_t len = strlen(name);
  // Replace whatever the image has under that name (a mount point hides it).
  if (Dentry* d = find_dentry(parent, name, len)) {
    n = new_node(mode, parent);
    if (!n) panic("out of memory building the file system");
    d->node = n, d->whiteout = false, d->lower_nid = 0, d->type = dtype_of(mode);
    return n;
  }
  if (parent->lower && !parent->complete) {
    uint64_t nid;
    if (erofs::lookup(parent->li, name, len, &nid) == 0) {
      n = new_node(mode, parent);
      if (!n || !add_dentry(parent, name, len, n, 0, dtype_of(mode))) panic("out of memory building the file system");
      return n;
    }
  }
  if (create(parent, name, len, mode, nullptr, &n) < 0) panic("out of memory building the file system");
  return n;
}

Node* special_node(Node* dir, const char* name, uint32_t mode, Special s, uint32_t arg = 0) {
  Node* n = new_node(mode, dir);
  if (!n) panic("out of memory building the file system");
  n->special = s;
  n->proc_arg = arg;
  if (dir && !add_dentry(dir, name, strlen(name), n, 0, dtype_of(mode))) panic("out of memory building the file system");
  return n;
}

void symlink_synthetic(Node* dir, const char* name, const char* target) {
  Node* n;
  if (create(dir, name, strlen(name), S_IFLNK | 0777, target, &n) < 0) panic("out of memory building the file system");
}
}  // namespace

void init() {
  if (boot->rootfs_bytes) {
    if (erofs::mount(phys<const uint8_t>(boot->rootfs_gpa), boot->rootfs_bytes) < 0)
      panic("the root file system image is not a valid EROFS image");
    g_root = node_from_image(erofs::root_nid(), nullptr);
    if (!g_root || !is_dir(g_root)) panic("the root file system image has no root directory");
  } else {
    g_root = new_node(S_IFDIR | 0755, nullptr);
  }
  g_root->parent = g_root;

  Node* dev = mkdir_synthetic(g_root, "dev");
  special_node(dev, "null", S_IFCHR | 0666, Special::kNull);
  special_node(dev, "zero", S_IFCHR | 0666, Special::kZero);
  special_node(dev, "full", S_IFCHR | 0666, Special::kFull);
  special_node(dev, "random", S_IFCHR | 0666, Special::kRandom);
  special_node(dev, "urandom", S_IFCHR | 0666, Special::kRandom);
  symlink_synthetic(dev, "stdin", "/proc/self/fd/0");
  symlink_synthetic(dev, "stdout", "/proc/self/fd/1");
  symlink_synthetic(dev, "stderr", "/proc/self/fd/2");
  symlink_synthetic(dev, "fd", "/proc/self/fd");
  mkdir_synthetic(dev, "shm", S_IFDIR | 01777);
  Node* vmfork = mkdir_synthetic(dev, "vmfork", S_IFDIR | 0755);
  special_node(vmfork, "job", S_IFREG | 0444, Special::kJob);
  g_streams[0] = special_node(nullptr, "", S_IFIFO | 0600, Special::kStdin);
  g_streams[1] = special_node(nullptr, "", S_IFIFO | 0600, Special::kStdout);
  g_streams[2] = special_node(nullptr, "", S_IFIFO | 0600, Special::kStderr);

  Node* proc = mkdir_synthetic(g_root, "proc", S_IFDIR | 0555);
  proc->special = Special::kNone;
  special_node(proc, "self", S_IFLNK | 0777, Special::kProcSelf);
  Node* pid = mkdir_synthetic(proc, "1", S_IFDIR | 0555);
  special_node(pid, "exe", S_IFLNK | 0777, Special::kProcExe);
  Node* fd = special_node(pid, "fd", S_IFDIR | 0500, Special::kProcFdDir);
  fd->complete = true;
  fd->nlink = 2;
  proc_populate(proc, pid);

  static const char* const kWritableDirs[] = {"tmp", "root", "home"};
  for (const char* d : kWritableDirs) {
    Node* n;
    if (lookup(g_root, d, strlen(d), &n) < 0) mkdir_synthetic(g_root, d, d[0] == 't' ? S_IFDIR | 01777 : S_IFDIR | 0755);
  }
}

}  // namespace k::fs
