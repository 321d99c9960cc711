// File descriptors and file syscalls (see files.h). Numbers from arch/x86/entry/syscalls/
// syscall_64.tbl; semantics from each call's man page (open(2), read(2), getdents64(2), ...).
#include "fs/files.h"

#include "fs/jobfiles.h"
#include "fs/loader.h"
#include "fs/proc.h"
#include "kernel/clock.h"
#include "kernel/random.h"
#include "linux_abi.h"
#include "mm/kmalloc.h"
#include "mm/mm.h"
#include "mm/pmm.h"

namespace k::files {
namespace {

using fs::Node;
using fs::Special;

constexpr uint64_t O_EXCL = 0200, O_NOFOLLOW = 0400000, O_PATH = 010000000, O_TMPFILE = 020000000 | 0200000;
constexpr uint64_t AT_SYMLINK_NOFOLLOW = 0x100, AT_REMOVEDIR = 0x200, AT_SYMLINK_FOLLOW = 0x400;
constexpr uint64_t SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2, SEEK_DATA = 3, SEEK_HOLE = 4;
constexpr uint64_t F_GETLK = 5, F_SETLK = 6, F_SETLKW = 7, F_OFD_GETLK = 36, F_OFD_SETLK = 37,
                   F_OFD_SETLKW = 38, F_ADD_SEALS = 1033, F_GET_SEALS = 1034, F_GETPIPE_SZ = 1032;
constexpr uint64_t FIONREAD = 0x541b, FIOCLEX = 0x5451, FIONCLEX = 0x5450, FIONBIO = 0x5421;
constexpr uint32_t kUmaskDefault = 022;

struct OpenFile {
  uint32_t refs;
  uint32_t flags;   // O_ACCMODE | O_APPEND | O_NONBLOCK | O_PATH
  Node* node;
  uint64_t pos;     // byte offset, or the readdir cursor for directories
};

struct Fd {
  OpenFile* file;
  bool cloexec;
};

constexpr int kMaxFds = 1024;
Fd g_fds[kMaxFds];
uint32_t g_umask = kUmaskDefault;
char g_path[fs::kPathMax], g_path2[fs::kPathMax];

OpenFile* get(uint64_t fd) { return fd < kMaxFds ? g_fds[fd].file : nullptr; }

// Copies a NUL-terminated user path (at most fs::kPathMax bytes with the NUL). 0 or -errno.
int64_t copy_path(uint64_t upath, char* buf) {
  for (uint64_t i = 0; i < fs::kPathMax; i++) {
    if ((i == 0 || ((upath + i) & (kPage - 1)) == 0) && !mm::user_ok(upath + i, 1, false)) return -EFAULT;
    buf[i] = *reinterpret_cast<const char*>(upath + i);
    if (!buf[i]) return 0;
  }
  return -ENAMETOOLONG;
}

OpenFile* new_open_file(Node* n, uint32_t flags) {
  auto* f = static_cast<OpenFile*>(mm::kmalloc(sizeof(OpenFile)));
  if (!f) return nullptr;
  f->refs = 1;
  f->flags = flags;
  f->node = n;
  n->opens++;
  return f;
}

void put_file(OpenFile* f) {
  if (--f->refs) return;
  f->node->opens--;
  fs::release(f->node);
  mm::kfree(f);
}

int64_t install(uint64_t from, OpenFile* f, bool cloexec) {
  for (uint64_t fd = from; fd < kMaxFds; fd++) {
    if (!g_fds[fd].file) {
      g_fds[fd] = {f, cloexec};
      return int64_t(fd);
    }
  }
  return -EMFILE;
}

// The base directory for an *at call: AT_FDCWD or an fd open on a directory.
int64_t base_dir(int64_t dirfd, const char* path, Node** base) {
  if (path[0] == '/' || dirfd == AT_FDCWD) {
    *base = fs::cwd();
    return 0;
  }
  OpenFile* f = get(uint64_t(dirfd));
  if (!f) return -EBADF;
  if (!fs::is_dir(f->node)) return -ENOTDIR;
  *base = f->node;
  return 0;
}

// Resolves (dirfd, user path) to a node; AT_EMPTY_PATH allows "" for the fd itself.
int64_t resolve_at(int64_t dirfd, uint64_t upath, uint64_t at_flags, bool follow, Node** out) {
  int64_t r = copy_path(upath, g_path);
  if (r) return r;
  if (!g_path[0]) {
    if (!(at_flags & AT_EMPTY_PATH)) return -ENOENT;
    if (dirfd == AT_FDCWD) {
      *out = fs::cwd();
      return 0;
    }
    OpenFile* f = get(uint64_t(dirfd));
    if (!f) return -EBADF;
    *out = f->node;
    return 0;
  }
  Node* base;
  r = base_dir(dirfd, g_path, &base);
  if (r) return r;
  return fs::resolve(base, g_path, follow, out);
}

// Resolves the parent of (dirfd, path) and copies the last name into `name` (256 bytes).
int64_t parent_at(int64_t dirfd, const char* path, Node** dir, char* name, uint64_t* len) {
  Node* base;
  int64_t r = base_dir(dirfd, path, &base);
  if (r) return r;
  const char* n;
  r = fs::resolve_parent(base, path, dir, &n, len);
  if (r) return r;
  if (*len > 255) return -ENAMETOOLONG;
  memcpy(name, n, *len);
  name[*len] = 0;
  return 0;
}

// The directory and last name of a user path, for the calls that make or remove a name. A path
// with no last name ("/") is `root_errno`: EEXIST for those that create, EBUSY for the others.
int64_t user_parent(int64_t dirfd, uint64_t upath, int64_t root_errno, Node** dir, char* name, uint64_t* len) {
  int64_t r = copy_path(upath, g_path);
  if (r) return r;
  r = parent_at(dirfd, g_path, dir, name, len);
  return r == -EISDIR ? root_errno : r;
}

// ---- Streams (fds 0-2 by default) ----------------------------------------------------------

// Appends to an output stream buffer, ringing the VMM to drain it whenever it fills.
int64_t append(uint64_t gpa, uint64_t cap, uint64_t* len, const uint8_t* src, uint64_t n) {
  uint64_t done = 0;
  while (done < n) {
    if (*len >= cap) {
      ring(kReqFlush);
      if (*len >= cap) return done ? int64_t(done) : -EIO;  // the VMM did not drain
    }
    uint64_t take = n - done < cap - *len ? n - done : cap - *len;
    memcpy(phys(gpa + *len), src + done, take);
    *len += take;
    done += take;
  }
  return int64_t(done);
}

int64_t read_stdin(uint8_t* dst, uint64_t n) {
  while (chan->stdin_pos >= chan->stdin_len) {
    if (chan->stdin_eof) return 0;
    ring(kReqStdin);
  }
  uint64_t len = chan->stdin_len < kStdinCap ? chan->stdin_len : kStdinCap;
  uint64_t avail = len > chan->stdin_pos ? len - chan->stdin_pos : 0;
  uint64_t take = n < avail ? n : avail;
  memcpy(dst, phys(kStdinGpa + chan->stdin_pos), take);
  chan->stdin_pos += take;
  return int64_t(take);
}

bool readable(const OpenFile* f) { return (f->flags & O_ACCMODE) != O_WRONLY && !(f->flags & O_PATH); }
bool writable(const OpenFile* f) { return (f->flags & O_ACCMODE) != 0 && !(f->flags & O_PATH); }
bool is_stream(const Node* n) {
  return n->special == Special::kStdin || n->special == Special::kStdout || n->special == Special::kStderr;
}

// Reads at `*pos` (advanced) or, for pread, at `off` with pos == nullptr.
int64_t do_read(OpenFile* f, uint8_t* dst, uint64_t n, uint64_t* pos, uint64_t off) {
  if (!readable(f)) return -EBADF;
  Node* node = f->node;
  switch (node->special) {
    case Special::kStdin: return read_stdin(dst, n);
    case Special::kStdout: case Special::kStderr: return -EBADF;
    case Special::kNull: return 0;
    case Special::kZero: case Special::kFull: memset(dst, 0, n); return int64_t(n);
    case Special::kRandom: random::fill(dst, n); return int64_t(n);
    default: break;
  }
  if (fs::is_dir(node)) return -EISDIR;
  uint64_t at = pos ? *pos : off;
  int64_t r = fs::read(node, at, dst, n);
  if (r > 0 && pos) *pos += uint64_t(r);
  return r;
}

int64_t do_write(OpenFile* f, const uint8_t* src, uint64_t n, uint64_t* pos, uint64_t off) {
  if (!writable(f)) return -EBADF;
  Node* node = f->node;
  switch (node->special) {
    case Special::kStdout: return append(kStdoutGpa, kStdoutCap, &chan->stdout_len, src, n);
    case Special::kStderr: return append(kStderrGpa, kStderrCap, &chan->stderr_len, src, n);
    case Special::kStdin: return -EBADF;
    case Special::kNull: case Special::kZero: case Special::kRandom: return int64_t(n);
    case Special::kFull: return -ENOSPC;
    default: break;
  }
  if (fs::is_dir(node)) return -EISDIR;
  uint64_t at = pos ? ((f->flags & O_APPEND) ? node->size : *pos) : off;
  int64_t r = fs::write(node, at, src, n);
  if (r == -ENOMEM) return -ENOSPC;  // the writable layer is guest RAM: full is ENOSPC, like tmpfs
  if (r > 0 && pos) *pos = at + uint64_t(r);
  return r;
}

// ---- The calls -----------------------------------------------------------------------------

int64_t sys_read(uint64_t fd, uint64_t buf, uint64_t n) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  if (!n) return 0;
  if (!mm::user_ok(buf, n, true)) return -EFAULT;
  return do_read(f, reinterpret_cast<uint8_t*>(buf), n, &f->pos, 0);
}

int64_t sys_write(uint64_t fd, uint64_t buf, uint64_t n) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  if (!n) return 0;
  if (!mm::user_ok(buf, n, false)) return -EFAULT;
  return do_write(f, reinterpret_cast<const uint8_t*>(buf), n, &f->pos, 0);
}

int64_t sys_pread(uint64_t fd, uint64_t buf, uint64_t n, uint64_t off, bool write) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  if (is_stream(f->node)) return -ESPIPE;
  if (int64_t(off) < 0) return -EINVAL;
  if (!n) return 0;
  if (!mm::user_ok(buf, n, !write)) return -EFAULT;
  return write ? do_write(f, reinterpret_cast<const uint8_t*>(buf), n, nullptr, off)
               : do_read(f, reinterpret_cast<uint8_t*>(buf), n, nullptr, off);
}

// readv/writev (positional when `off` >= 0: preadv/pwritev).
int64_t vector_io(uint64_t fd, uint64_t uiov, uint64_t cnt, bool write, int64_t off) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  if (cnt > 1024) return -EINVAL;
  if (off >= 0 && is_stream(f->node)) return -ESPIPE;
  if (!mm::user_ok(uiov, cnt * sizeof(iovec), false)) return -EFAULT;
  const auto* iov = reinterpret_cast<const iovec*>(uiov);
  int64_t total = 0;
  for (uint64_t i = 0; i < cnt; i++) {
    if (!iov[i].len) continue;
    if (!mm::user_ok(iov[i].base, iov[i].len, !write)) return total ? total : -EFAULT;
    uint64_t* pos = off >= 0 ? nullptr : &f->pos;
    uint64_t at = off >= 0 ? uint64_t(off) + uint64_t(total) : 0;
    int64_t r = write ? do_write(f, reinterpret_cast<const uint8_t*>(iov[i].base), iov[i].len, pos, at)
                      : do_read(f, reinterpret_cast<uint8_t*>(iov[i].base), iov[i].len, pos, at);
    if (r < 0) return total ? total : r;
    total += r;
    if (uint64_t(r) < iov[i].len) break;  // short transfer: stop as Linux does
  }
  return total;
}

// The warm-runtime freeze point: asks the VMM for the job (kReqJob; a template is frozen here
// and each clone resumed with its own job), installs its files, and returns its description:
// "vmfork-job 1", the working directory, argc, argv..., envc, env..., each NUL-terminated.
Node* wait_for_job() {
  flush();
  ring(kReqJob);
  jobfiles::install();
  Node* n = fs::new_anonymous_file();
  if (!n) return nullptr;
  auto put = [&](const char* s, uint64_t len) { return fs::write(n, n->size, s, len) == int64_t(len); };
  auto put_num = [&](uint64_t v) {
    char b[24];
    int l = 0;
    do b[l++] = char('0' + v % 10), v /= 10;
    while (v);
    char r[25];
    for (int i = 0; i < l; i++) r[i] = b[l - 1 - i];
    r[l] = 0;
    return put(r, uint64_t(l) + 1);
  };
  bool ok = put("vmfork-job 1", 13);
  int64_t cl = fs::path_of(fs::cwd(), g_path2, sizeof g_path2);
  ok = ok && cl >= 0 && put(g_path2, uint64_t(cl) + 1);
  const uint8_t* args = phys(boot->args_gpa);
  ArgsHeader ah;
  memcpy(&ah, args, sizeof ah);
  if (boot->args_bytes < sizeof ah || ah.argc > 65536 || ah.envc > 65536) panic("bad argument block");
  const char* str = reinterpret_cast<const char*>(args + sizeof ah);
  uint64_t left = boot->args_bytes - sizeof ah;
  for (uint64_t i = 0; ok && i < ah.argc + ah.envc; i++) {
    if (i == 0) ok = put_num(ah.argc);
    if (i == ah.argc) ok = ok && put_num(ah.envc);
    uint64_t l = 0;
    while (l < left && str[l]) l++;
    if (l >= left) panic("argument block strings not terminated");
    ok = ok && put(str, l + 1);
    str += l + 1;
    left -= l + 1;
  }
  if (ok && ah.argc == 0) ok = put_num(0) && put_num(ah.envc);
  if (ok && ah.envc == 0 && ah.argc) ok = put_num(0);
  if (!ok) return nullptr;
  return n;
}

int64_t open_node(Node* n, uint64_t flags) {
  uint32_t acc = uint32_t(flags & O_ACCMODE);
  if (flags & O_PATH) acc = 0;
  if (fs::is_dir(n) && (acc != 0 || (flags & O_TRUNC)) && !(flags & O_PATH)) return -EISDIR;
  if ((flags & O_DIRECTORY) && !fs::is_dir(n)) return -ENOTDIR;
  if (fs::is_lnk(n) && !(flags & O_PATH)) return -ELOOP;  // O_NOFOLLOW on a symlink
  if (n->special == Special::kProcGen && !(flags & O_PATH)) {
    Node* snap = fs::proc_generate(n);
    if (!snap) return -ENOMEM;
    n = snap;
  }
  if (n->special == Special::kJob && !(flags & O_PATH)) {
    Node* job = wait_for_job();
    if (!job) return -ENOMEM;
    n = job;
  }
  if ((flags & O_TRUNC) && fs::is_reg(n) && acc != 0) {
    int64_t r = fs::truncate(n, 0);
    if (r < 0) return r == -ENOMEM ? -ENOSPC : r;
  }
  OpenFile* f = new_open_file(n, acc | uint32_t(flags & (O_APPEND | O_NONBLOCK | O_PATH)));
  if (!f) return -ENOMEM;
  int64_t fd = install(0, f, flags & O_CLOEXEC);
  if (fd < 0) put_file(f);
  return fd;
}

int64_t sys_openat(int64_t dirfd, uint64_t upath, uint64_t flags, uint64_t mode) {
  int64_t r = copy_path(upath, g_path);
  if (r) return r;
  if ((flags & O_TMPFILE) == O_TMPFILE) return -EOPNOTSUPP;
  Node* base;
  r = base_dir(dirfd, g_path, &base);
  if (r) return r;
  Node* n;
  r = fs::resolve(base, g_path, !(flags & O_NOFOLLOW), &n);
  if (r == 0) {
    if ((flags & O_CREAT) && (flags & O_EXCL)) return -EEXIST;
    return open_node(n, flags);
  }
  if (r != -ENOENT || !(flags & O_CREAT)) return r;
  // Create: the parent must exist; the name is the last component.
  Node* dir;
  char name[256];
  uint64_t len;
  r = parent_at(dirfd, g_path, &dir, name, &len);
  if (r) return r;
  uint64_t plen = strlen(g_path);
  if (plen && g_path[plen - 1] == '/') return -EISDIR;
  r = fs::create(dir, name, len, S_IFREG | (uint32_t(mode) & 07777 & ~g_umask), nullptr, &n);
  if (r) return r == -ENOMEM ? -ENOSPC : r;
  return open_node(n, flags & ~O_TRUNC);
}

int64_t sys_close(uint64_t fd) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  g_fds[fd].file = nullptr;
  put_file(f);
  return 0;
}

int64_t stat_to_user(Node* n, uint64_t ust) {
  if (!mm::user_ok(ust, sizeof(stat), true)) return -EFAULT;
  fs::fill_stat(n, reinterpret_cast<stat*>(ust));
  return 0;
}

int64_t sys_fstat(uint64_t fd, uint64_t ust) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  return stat_to_user(f->node, ust);
}

int64_t sys_newfstatat(int64_t dirfd, uint64_t upath, uint64_t ust, uint64_t flags) {
  Node* n;
  int64_t r = resolve_at(dirfd, upath, flags, !(flags & AT_SYMLINK_NOFOLLOW), &n);
  return r ? r : stat_to_user(n, ust);
}

int64_t sys_statx(int64_t dirfd, uint64_t upath, uint64_t flags, uint64_t, uint64_t ustx) {
  Node* n;
  int64_t r = resolve_at(dirfd, upath, flags, !(flags & AT_SYMLINK_NOFOLLOW), &n);
  if (r) return r;
  if (!mm::user_ok(ustx, sizeof(statx), true)) return -EFAULT;
  stat st;
  fs::fill_stat(n, &st);
  auto* x = reinterpret_cast<statx*>(ustx);
  memset(x, 0, sizeof *x);
  x->stx_mask = 0x7ff;  // STATX_BASIC_STATS
  x->stx_blksize = uint32_t(st.st_blksize);
  x->stx_nlink = uint32_t(st.st_nlink);
  x->stx_uid = st.st_uid;
  x->stx_gid = st.st_gid;
  x->stx_mode = uint16_t(st.st_mode);
  x->stx_ino = st.st_ino;
  x->stx_size = uint64_t(st.st_size);
  x->stx_blocks = uint64_t(st.st_blocks);
  x->stx_atime = {st.st_atim.tv_sec, uint32_t(st.st_atim.tv_nsec), 0};
  x->stx_mtime = {st.st_mtim.tv_sec, uint32_t(st.st_mtim.tv_nsec), 0};
  x->stx_ctime = {st.st_ctim.tv_sec, uint32_t(st.st_ctim.tv_nsec), 0};
  x->stx_rdev_major = uint32_t(st.st_rdev >> 8);
  x->stx_rdev_minor = uint32_t(st.st_rdev & 0xff);
  x->stx_dev_major = uint32_t(st.st_dev >> 8);
  x->stx_dev_minor = uint32_t(st.st_dev & 0xff);
  return 0;
}

int64_t sys_lseek(uint64_t fd, int64_t off, uint64_t whence) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  Node* n = f->node;
  if (is_stream(n)) return -ESPIPE;
  if (n->special != Special::kNone) return 0;
  if (fs::is_dir(n)) {  // a directory offset is a readdir cursor: only absolute seeks
    if (whence != SEEK_SET || off < 0) return -EINVAL;
    f->pos = uint64_t(off);
    return off;
  }
  int64_t base;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = int64_t(f->pos); break;
    case SEEK_END: base = int64_t(n->size); break;
    case SEEK_DATA:
      if (off < 0 || uint64_t(off) >= n->size) return -ENXIO;
      f->pos = uint64_t(off);
      return off;
    case SEEK_HOLE:
      if (off < 0 || uint64_t(off) > n->size) return -ENXIO;
      f->pos = n->size;
      return int64_t(n->size);
    default: return -EINVAL;
  }
  int64_t pos = base + off;
  if (pos < 0) return -EINVAL;
  f->pos = uint64_t(pos);
  return pos;
}

// linux_dirent64 (getdents64(2)): ino u64, off s64, reclen u16, type u8, name, NUL, padded to 8.
int64_t sys_getdents64(uint64_t fd, uint64_t ubuf, uint64_t count) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  if (!fs::is_dir(f->node)) return -ENOTDIR;
  if (!mm::user_ok(ubuf, count, true)) return -EFAULT;
  auto* out = reinterpret_cast<uint8_t*>(ubuf);
  uint64_t used = 0;
  for (;;) {
    uint64_t cursor = f->pos;
    fs::DirEntry e;
    int64_t r = fs::readdir(f->node, &cursor, &e);
    if (r < 0) return used ? int64_t(used) : r;
    if (r == 0) break;
    uint64_t reclen = (8 + 8 + 2 + 1 + e.len + 1 + 7) & ~7ull;
    if (used + reclen > count) {
      if (!used) return -EINVAL;
      break;
    }
    uint8_t* d = out + used;
    memcpy(d, &e.ino, 8);
    int64_t next = int64_t(cursor);
    memcpy(d + 8, &next, 8);
    uint16_t rl = uint16_t(reclen);
    memcpy(d + 16, &rl, 2);
    d[18] = e.type;
    memcpy(d + 19, e.name, e.len);
    memset(d + 19 + e.len, 0, reclen - 19 - e.len);
    used += reclen;
    f->pos = cursor;
  }
  return int64_t(used);
}

int64_t sys_readlinkat(int64_t dirfd, uint64_t upath, uint64_t buf, uint64_t n) {
  if (int64_t(n) <= 0) return -EINVAL;
  Node* node;
  int64_t r = resolve_at(dirfd, upath, AT_EMPTY_PATH, false, &node);
  if (r) return r;
  if (!fs::is_lnk(node)) return -EINVAL;
  if (!mm::user_ok(buf, n, true)) return -EFAULT;
  return fs::readlink(node, reinterpret_cast<char*>(buf), n);  // truncates silently (readlink(2))
}

int64_t sys_getcwd(uint64_t buf, uint64_t n) {
  int64_t len = fs::path_of(fs::cwd(), g_path2, sizeof g_path2);
  if (len < 0) return len;
  if (uint64_t(len) + 1 > n) return -ERANGE;
  if (!mm::user_ok(buf, uint64_t(len) + 1, true)) return -EFAULT;
  memcpy(reinterpret_cast<void*>(buf), g_path2, uint64_t(len) + 1);
  return len + 1;
}

int64_t sys_chdir(uint64_t upath) {
  Node* n;
  int64_t r = resolve_at(AT_FDCWD, upath, 0, true, &n);
  if (r) return r;
  if (!fs::is_dir(n)) return -ENOTDIR;
  fs::set_cwd(n);
  return 0;
}

int64_t sys_fchdir(uint64_t fd) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  if (!fs::is_dir(f->node)) return -ENOTDIR;
  fs::set_cwd(f->node);
  return 0;
}

int64_t sys_mkdirat(int64_t dirfd, uint64_t upath, uint64_t mode) {
  Node* dir;
  char name[256];
  uint64_t len;
  int64_t r = user_parent(dirfd, upath, -EEXIST, &dir, name, &len);
  if (r) return r;
  Node* n;
  r = fs::create(dir, name, len, S_IFDIR | (uint32_t(mode) & 07777 & ~g_umask), nullptr, &n);
  return r == -ENOMEM ? -ENOSPC : r;
}

int64_t sys_unlinkat(int64_t dirfd, uint64_t upath, uint64_t flags) {
  if (flags & ~AT_REMOVEDIR) return -EINVAL;
  Node* dir;
  char name[256];
  uint64_t len;
  int64_t r = user_parent(dirfd, upath, -EBUSY, &dir, name, &len);
  if (r) return r;
  return fs::remove(dir, name, len, flags & AT_REMOVEDIR);
}

int64_t sys_renameat2(int64_t olddirfd, uint64_t oldpath, int64_t newdirfd, uint64_t newpath, uint64_t flags) {
  constexpr uint64_t RENAME_NOREPLACE = 1;
  if (flags & ~RENAME_NOREPLACE) return -EINVAL;
  Node *odir, *ndir;
  char oname[256], nname[256];
  uint64_t olen, nlen;
  int64_t r = user_parent(olddirfd, oldpath, -EBUSY, &odir, oname, &olen);
  if (r) return r;
  r = user_parent(newdirfd, newpath, -EBUSY, &ndir, nname, &nlen);
  if (r) return r;
  return fs::rename(odir, oname, olen, ndir, nname, nlen, flags & RENAME_NOREPLACE);
}

int64_t sys_symlinkat(uint64_t utarget, int64_t dirfd, uint64_t upath) {
  int64_t r = copy_path(utarget, g_path2);
  if (r) return r;
  if (!g_path2[0]) return -ENOENT;
  Node* dir;
  char name[256];
  uint64_t len;
  r = user_parent(dirfd, upath, -EEXIST, &dir, name, &len);
  if (r) return r;
  Node* n;
  r = fs::create(dir, name, len, 0120777, g_path2, &n);
  return r == -ENOMEM ? -ENOSPC : r;
}

int64_t sys_linkat(int64_t olddirfd, uint64_t oldpath, int64_t newdirfd, uint64_t newpath, uint64_t flags) {
  Node* target;
  int64_t r = resolve_at(olddirfd, oldpath, flags, flags & AT_SYMLINK_FOLLOW, &target);
  if (r) return r;
  Node* dir;
  char name[256];
  uint64_t len;
  r = user_parent(newdirfd, newpath, -EEXIST, &dir, name, &len);
  if (r) return r;
  return fs::link(target, dir, name, len);
}

int64_t sys_fchmodat(int64_t dirfd, uint64_t upath, uint64_t mode, uint64_t flags) {
  Node* n;
  int64_t r = resolve_at(dirfd, upath, flags, !(flags & AT_SYMLINK_NOFOLLOW), &n);
  if (r) return r;
  n->mode = (n->mode & 0170000) | uint32_t(mode & 07777);
  n->ctime = timespec{int64_t(clock::realtime_ns() / 1000000000), int64_t(clock::realtime_ns() % 1000000000)};
  return 0;
}

// utimensat(2): times[2] (atime, mtime) with UTIME_NOW / UTIME_OMIT, or nullptr for now.
int64_t sys_utimensat(int64_t dirfd, uint64_t upath, uint64_t utimes, uint64_t flags) {
  constexpr int64_t UTIME_NOW = (1l << 30) - 1, UTIME_OMIT = (1l << 30) - 2;
  Node* n;
  int64_t r;
  if (!upath) {  // futimens: the fd itself
    OpenFile* f = get(uint64_t(dirfd));
    if (!f) return -EBADF;
    n = f->node;
  } else {
    r = resolve_at(dirfd, upath, flags, !(flags & AT_SYMLINK_NOFOLLOW), &n);
    if (r) return r;
  }
  uint64_t ns = clock::realtime_ns();
  timespec now{int64_t(ns / 1000000000), int64_t(ns % 1000000000)};
  timespec t[2] = {now, now};
  if (utimes) {
    if (!mm::user_ok(utimes, sizeof t, false)) return -EFAULT;
    memcpy(t, reinterpret_cast<const void*>(utimes), sizeof t);
  }
  for (int i = 0; i < 2; i++) {
    if (t[i].tv_nsec == UTIME_OMIT) continue;
    if (t[i].tv_nsec == UTIME_NOW) t[i] = now;
    else if (t[i].tv_nsec < 0 || t[i].tv_nsec >= 1000000000) return -EINVAL;
    (i == 0 ? n->atime : n->mtime) = t[i];
  }
  n->ctime = now;
  return 0;
}

int64_t sys_ftruncate(OpenFile* f, int64_t size) {
  if (size < 0) return -EINVAL;
  if (!writable(f)) return -EINVAL;
  if (!fs::is_reg(f->node)) return -EINVAL;
  int64_t r = fs::truncate(f->node, uint64_t(size));
  return r == -ENOMEM ? -ENOSPC : r;
}

int64_t sys_truncate(uint64_t upath, int64_t size) {
  Node* n;
  int64_t r = resolve_at(AT_FDCWD, upath, 0, true, &n);
  if (r) return r;
  if (fs::is_dir(n)) return -EISDIR;
  if (size < 0) return -EINVAL;
  r = fs::truncate(n, uint64_t(size));
  return r == -ENOMEM ? -ENOSPC : r;
}

int64_t sys_fallocate(uint64_t fd, uint64_t mode, int64_t off, int64_t len) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  if (off < 0 || len <= 0) return -EINVAL;
  if (!writable(f)) return -EBADF;
  if (!fs::is_reg(f->node)) return is_stream(f->node) ? -ESPIPE : -ENODEV;
  if (mode & ~1ull) return -EOPNOTSUPP;  // only FALLOC_FL_KEEP_SIZE
  uint64_t end = uint64_t(off) + uint64_t(len);
  if (!(mode & 1) && end > f->node->size) {
    int64_t r = fs::truncate(f->node, end);
    return r == -ENOMEM ? -ENOSPC : r;
  }
  return 0;
}

int64_t sys_faccessat(int64_t dirfd, uint64_t upath, uint64_t mode, uint64_t flags) {
  if (mode & ~7ull) return -EINVAL;
  Node* n;
  int64_t r = resolve_at(dirfd, upath, flags, !(flags & AT_SYMLINK_NOFOLLOW), &n);
  if (r) return r;
  // The job may write anything (its own writable layer); execute needs an x bit somewhere.
  if ((mode & 1) && !fs::is_dir(n) && !(n->mode & 0111)) return -EACCES;
  return 0;
}

int64_t sys_fcntl(uint64_t fd, uint64_t cmd, uint64_t arg) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  switch (cmd) {
    case F_DUPFD: case F_DUPFD_CLOEXEC: {
      if (arg >= kMaxFds) return -EINVAL;
      f->refs++;
      int64_t r = install(arg, f, cmd == F_DUPFD_CLOEXEC);
      if (r < 0) f->refs--;
      return r;
    }
    case F_GETFD: return g_fds[fd].cloexec ? 1 : 0;
    case F_SETFD: g_fds[fd].cloexec = arg & 1; return 0;
    case F_GETFL: return f->flags;
    case F_SETFL:
      f->flags = uint32_t((f->flags & (O_ACCMODE | O_PATH)) | (arg & (O_APPEND | O_NONBLOCK)));
      return 0;
    case F_GETLK: case F_OFD_GETLK: {
      // One process: no lock ever conflicts. l_type (first short) = F_UNLCK (2).
      if (!mm::user_ok(arg, 2, true)) return -EFAULT;
      int16_t unlck = 2;
      memcpy(reinterpret_cast<void*>(arg), &unlck, 2);
      return 0;
    }
    case F_SETLK: case F_SETLKW: case F_OFD_SETLK: case F_OFD_SETLKW: return 0;
    case F_ADD_SEALS: return 0;
    case F_GET_SEALS: return 0;
    case F_GETPIPE_SZ: return is_stream(f->node) ? 65536 : -EBADF;
    default: return -EINVAL;
  }
}

int64_t sys_dup3(uint64_t oldfd, uint64_t newfd, uint64_t flags, bool dup2) {
  OpenFile* f = get(oldfd);
  if (!f) return -EBADF;
  if (newfd >= kMaxFds) return -EBADF;
  if (flags & ~O_CLOEXEC) return -EINVAL;
  if (oldfd == newfd) return dup2 ? int64_t(newfd) : -EINVAL;
  f->refs++;
  if (g_fds[newfd].file) put_file(g_fds[newfd].file);
  g_fds[newfd] = {f, (flags & O_CLOEXEC) != 0};
  return int64_t(newfd);
}

int64_t sys_ioctl(uint64_t fd, uint64_t req, uint64_t arg) {
  OpenFile* f = get(fd);
  if (!f) return -EBADF;
  switch (req) {
    case FIOCLEX: g_fds[fd].cloexec = true; return 0;
    case FIONCLEX: g_fds[fd].cloexec = false; return 0;
    case FIONBIO: return 0;
    case FIONREAD: {
      int32_t avail = 0;
      if (f->node->special == Special::kStdin)
        avail = int32_t(chan->stdin_len > chan->stdin_pos ? chan->stdin_len - chan->stdin_pos : 0);
      else if (fs::is_reg(f->node))
        avail = int32_t(f->node->size > f->pos ? f->node->size - f->pos : 0);
      else
        return -ENOTTY;
      if (!mm::user_ok(arg, 4, true)) return -EFAULT;
      memcpy(reinterpret_cast<void*>(arg), &avail, 4);
      return 0;
    }
    default: return -ENOTTY;  // TCGETS, TIOCGWINSZ, ...: the job never has a terminal
  }
}

int64_t sys_poll(uint64_t ufds, uint64_t n) {
  if (n > kMaxFds) return -EINVAL;
  if (!mm::user_ok(ufds, n * sizeof(pollfd), true)) return -EFAULT;
  auto* p = reinterpret_cast<pollfd*>(ufds);
  int64_t ready = 0;
  for (uint64_t i = 0; i < n; i++) {
    // Files and streams are always ready: reads block in the VMM until input or EOF arrives.
    if (p[i].fd < 0) {
      p[i].revents = 0;
      continue;
    }
    p[i].revents = get(uint64_t(p[i].fd)) ? int16_t(p[i].events & 0x5) : int16_t(0x20);
    if (p[i].revents) ready++;
  }
  return ready;
}

// select(2)/pselect6: every open fd in the sets is ready.
int64_t sys_select(uint64_t nfds, uint64_t rd, uint64_t wr, uint64_t ex) {
  if (nfds > kMaxFds) return -EINVAL;
  uint64_t bytes = (nfds + 7) / 8;
  int64_t ready = 0;
  const uint64_t sets[2] = {rd, wr};
  for (uint64_t set : sets) {
    if (!set) continue;
    if (!mm::user_ok(set, bytes, true)) return -EFAULT;
    auto* bits = reinterpret_cast<uint8_t*>(set);
    for (uint64_t fd = 0; fd < nfds; fd++) {
      if (!(bits[fd / 8] & (1 << (fd % 8)))) continue;
      if (!get(fd)) return -EBADF;
      ready++;
    }
  }
  if (ex) {
    if (!mm::user_ok(ex, bytes, true)) return -EFAULT;
    memset(reinterpret_cast<void*>(ex), 0, bytes);
  }
  return ready;
}

// sendfile(2) and copy_file_range(2) through a kernel bounce page.
int64_t copy_between(OpenFile* in, uint64_t* in_pos, OpenFile* out, uint64_t* out_pos, uint64_t count) {
  if (count > 0x7ffff000) count = 0x7ffff000;  // MAX_RW_COUNT, as Linux caps one transfer
  auto* buf = static_cast<uint8_t*>(mm::kpage_alloc());
  if (!buf) return -ENOMEM;
  uint64_t done = 0;
  int64_t err = 0;
  while (done < count) {
    uint64_t take = count - done < kPage ? count - done : kPage;
    int64_t r = do_read(in, buf, take, in_pos, 0);
    if (r <= 0) {
      err = r;
      break;
    }
    int64_t w = do_write(out, buf, uint64_t(r), out_pos, 0);
    if (w < 0) {
      err = w;
      break;
    }
    done += uint64_t(w);
    if (w < r || uint64_t(r) < take) break;
  }
  mm::kpage_free(buf);
  return done ? int64_t(done) : err;
}

int64_t sys_sendfile(uint64_t out_fd, uint64_t in_fd, uint64_t uoff, uint64_t count) {
  OpenFile *in = get(in_fd), *out = get(out_fd);
  if (!in || !out) return -EBADF;
  if (!uoff) return copy_between(in, &in->pos, out, &out->pos, count);
  int64_t off;
  if (!mm::user_ok(uoff, 8, true)) return -EFAULT;
  memcpy(&off, reinterpret_cast<void*>(uoff), 8);
  if (off < 0) return -EINVAL;
  uint64_t pos = uint64_t(off);
  int64_t r = copy_between(in, &pos, out, &out->pos, count);
  off = int64_t(pos);
  memcpy(reinterpret_cast<void*>(uoff), &off, 8);
  return r;
}

int64_t sys_copy_file_range(uint64_t in_fd, uint64_t uoff_in, uint64_t out_fd, uint64_t uoff_out, uint64_t count) {
  OpenFile *in = get(in_fd), *out = get(out_fd);
  if (!in || !out) return -EBADF;
  if (!fs::is_reg(in->node) || !fs::is_reg(out->node)) return -EINVAL;
  uint64_t pin = in->pos, pout = out->pos;
  int64_t v;
  if (uoff_in) {
    if (!mm::user_ok(uoff_in, 8, true)) return -EFAULT;
    memcpy(&v, reinterpret_cast<void*>(uoff_in), 8);
    pin = uint64_t(v);
  }
  if (uoff_out) {
    if (!mm::user_ok(uoff_out, 8, true)) return -EFAULT;
    memcpy(&v, reinterpret_cast<void*>(uoff_out), 8);
    pout = uint64_t(v);
  }
  uint32_t saved = out->flags;
  out->flags &= ~uint32_t(O_APPEND);
  int64_t r = copy_between(in, &pin, out, &pout, count);
  out->flags = saved;
  if (uoff_in) memcpy(reinterpret_cast<void*>(uoff_in), &pin, 8);
  else in->pos = pin;
  if (uoff_out) memcpy(reinterpret_cast<void*>(uoff_out), &pout, 8);
  else out->pos = pout;
  return r;
}

// epoll(7) over what the job can have open: files, devices and the streams, all of which are
// always ready (a read of stdin blocks in the VMM), so epoll_wait reports every registered fd
// with the events it asked for, at once. The interest list is a kernel page of Interest slots.
struct Interest {
  int32_t fd;      // -1: free slot
  uint32_t events;
  uint64_t data;
};
constexpr uint64_t kMaxInterests = kPage / sizeof(Interest);
constexpr uint32_t EPOLLIN = 1, EPOLLOUT = 4;

int64_t sys_epoll_create(uint64_t flags) {
  if (flags & ~O_CLOEXEC) return -EINVAL;
  Node* n = fs::new_anonymous_file();
  if (!n) return -ENOMEM;
  auto* list = static_cast<Interest*>(mm::kpage_alloc());
  if (!list) return -ENOMEM;
  for (uint64_t i = 0; i < kMaxInterests; i++) list[i].fd = -1;
  n->special = Special::kEpoll;
  n->mode = 0600;
  n->priv = list;
  return open_node(n, O_RDWR | (flags & O_CLOEXEC));
}

Interest* interests(uint64_t epfd) {
  OpenFile* f = get(epfd);
  return f && f->node->special == Special::kEpoll ? static_cast<Interest*>(f->node->priv) : nullptr;
}

int64_t sys_epoll_ctl(uint64_t epfd, uint64_t op, uint64_t fd, uint64_t uevent) {
  constexpr uint64_t ADD = 1, DEL = 2, MOD = 3;
  Interest* list = interests(epfd);
  if (!get(epfd) || !get(fd)) return -EBADF;
  if (!list) return -EINVAL;
  if (fd == epfd) return -EINVAL;
  uint8_t ev[12] = {};  // struct epoll_event is packed on x86-64: u32 events, u64 data
  if (op != DEL) {
    if (!mm::user_ok(uevent, 12, false)) return -EFAULT;
    memcpy(ev, reinterpret_cast<const void*>(uevent), 12);
  }
  Interest* found = nullptr;
  for (uint64_t i = 0; i < kMaxInterests; i++)
    if (list[i].fd == int32_t(fd)) found = &list[i];
  switch (op) {
    case ADD:
      if (found) return -EEXIST;
      for (uint64_t i = 0; i < kMaxInterests && !found; i++)
        if (list[i].fd < 0) found = &list[i];
      if (!found) return -ENOSPC;
      found->fd = int32_t(fd);
      [[fallthrough]];
    case MOD:
      if (!found) return -ENOENT;
      memcpy(&found->events, ev, 4);
      memcpy(&found->data, ev + 4, 8);
      return 0;
    case DEL:
      if (!found) return -ENOENT;
      found->fd = -1;
      return 0;
    default: return -EINVAL;
  }
}

int64_t sys_epoll_wait(uint64_t epfd, uint64_t uevents, int64_t max, int64_t timeout_ms) {
  Interest* list = interests(epfd);
  if (!get(epfd)) return -EBADF;
  if (!list) return -EINVAL;
  if (max <= 0) return -EINVAL;
  if (max > int64_t(kMaxInterests)) max = int64_t(kMaxInterests);  // no more can be ready
  if (!mm::user_ok(uevents, uint64_t(max) * 12, true)) return -EFAULT;
  auto* out = reinterpret_cast<uint8_t*>(uevents);
  int64_t n = 0;
  for (uint64_t i = 0; i < kMaxInterests && n < max; i++) {
    if (list[i].fd < 0) continue;
    if (!get(uint64_t(list[i].fd))) {  // a closed fd leaves the set silently, as on Linux
      list[i].fd = -1;
      continue;
    }
    uint32_t ready = list[i].events & (EPOLLIN | EPOLLOUT);
    if (!ready) continue;
    memcpy(out + n * 12, &ready, 4);
    memcpy(out + n * 12 + 4, &list[i].data, 8);
    n++;
  }
  if (n || timeout_ms == 0) return n;
  // Nothing can become ready without another thread: a finite wait sleeps it out; an endless
  // one is a deadlock and ends the job as futex waits do.
  if (timeout_ms < 0) end_job(kReqSignal, SIGKILL);
  flush();
  chan->sleep_until_ns = clock::realtime_ns() + uint64_t(timeout_ms) * 1000000;
  ring(kReqSleep);
  return 0;
}

// statfs(2): a tmpfs-like view of guest memory for the writable layer.
int64_t fill_statfs(uint64_t ubuf) {
  if (!mm::user_ok(ubuf, 120, true)) return -EFAULT;
  uint64_t b[15] = {};
  b[0] = 0x01021994;  // TMPFS_MAGIC
  b[1] = kPage;
  b[2] = boot->mem_bytes / kPage;
  b[3] = b[4] = b[2] - pmm::used();
  b[5] = 1 << 20;
  b[6] = 1 << 20;
  b[8] = 255;  // f_namelen
  b[9] = kPage;  // f_frsize
  memcpy(reinterpret_cast<void*>(ubuf), b, 120);
  return 0;
}

int64_t sys_memfd_create(uint64_t uname, uint64_t flags) {
  int64_t r = copy_path(uname, g_path);
  if (r) return r;
  if (strlen(g_path) > 249) return -EINVAL;
  Node* n = fs::new_anonymous_file();
  if (!n) return -ENOMEM;
  n->mode = S_IFREG | 0777;
  return open_node(n, O_RDWR | ((flags & 1) ? O_CLOEXEC : 0));
}

}  // namespace

// ---- Public --------------------------------------------------------------------------------

void init() {
  for (auto& fd : g_fds) fd = {nullptr, false};
  for (int i = 0; i < 3; i++) {
    OpenFile* f = new_open_file(fs::stream_node(i), i == 0 ? 0 : uint32_t(O_WRONLY));
    if (!f) panic("out of memory opening the standard streams");
    g_fds[i] = {f, false};
  }
}

fs::Node* node_of(uint32_t fd) {
  OpenFile* f = get(fd);
  return f ? f->node : nullptr;
}

int64_t mmap_node(int64_t fd, fs::Node** node, bool* can_write) {
  if (fd < 0) return -EBADF;
  OpenFile* f = get(uint64_t(fd));
  if (!f) return -EBADF;
  if (f->flags & O_PATH) return -EBADF;
  if (!readable(f)) return -EACCES;
  *node = f->node;
  *can_write = writable(f);
  return 0;
}

void flush() {
  if (chan->stdout_len || chan->stderr_len) ring(kReqFlush);
}

bool dispatch(uint64_t nr, const uint64_t a[6], int64_t* ret) {
  // dirfd arguments are C ints: only the low 32 bits count (AT_FDCWD arrives as 0xffffff9c).
  auto fd_arg = [](uint64_t v) { return int64_t(int32_t(uint32_t(v))); };
  const int64_t dfd = fd_arg(a[0]);
  int64_t r;
  switch (nr) {
    case 0: r = sys_read(a[0], a[1], a[2]); break;
    case 1: r = sys_write(a[0], a[1], a[2]); break;
    case 2: r = sys_openat(AT_FDCWD, a[0], a[1], a[2]); break;                  // open
    case 3: r = sys_close(a[0]); break;
    case 4: r = sys_newfstatat(AT_FDCWD, a[0], a[1], 0); break;                 // stat
    case 5: r = sys_fstat(a[0], a[1]); break;
    case 6: r = sys_newfstatat(AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW); break;  // lstat
    case 7: r = sys_poll(a[0], a[1]); break;
    case 8: r = sys_lseek(a[0], int64_t(a[1]), a[2]); break;
    case 16: r = sys_ioctl(a[0], a[1], a[2]); break;
    case 17: r = sys_pread(a[0], a[1], a[2], a[3], false); break;
    case 18: r = sys_pread(a[0], a[1], a[2], a[3], true); break;                 // pwrite64
    case 19: r = vector_io(a[0], a[1], a[2], false, -1); break;
    case 20: r = vector_io(a[0], a[1], a[2], true, -1); break;
    case 21: r = sys_faccessat(AT_FDCWD, a[0], a[1], 0); break;                  // access
    case 23: r = sys_select(a[0], a[1], a[2], a[3]); break;
    case 32: {                                                                   // dup
      OpenFile* f = get(a[0]);
      if (!f) { r = -EBADF; break; }
      f->refs++;
      r = install(0, f, false);
      if (r < 0) f->refs--;
      break;
    }
    case 33: r = sys_dup3(a[0], a[1], 0, true); break;                          // dup2
    case 40: r = sys_sendfile(a[0], a[1], a[2], a[3]); break;
    case 72: r = sys_fcntl(a[0], a[1], a[2]); break;
    case 73: r = get(a[0]) ? 0 : -EBADF; break;                                 // flock
    case 74: case 75: r = get(a[0]) ? 0 : -EBADF; break;                        // fsync, fdatasync
    case 76: r = sys_truncate(a[0], int64_t(a[1])); break;
    case 77: {                                                                  // ftruncate
      OpenFile* f = get(a[0]);
      r = f ? sys_ftruncate(f, int64_t(a[1])) : -EBADF;
      break;
    }
    case 79: r = sys_getcwd(a[0], a[1]); break;
    case 80: r = sys_chdir(a[0]); break;
    case 81: r = sys_fchdir(a[0]); break;
    case 82: r = sys_renameat2(AT_FDCWD, a[0], AT_FDCWD, a[1], 0); break;         // rename
    case 83: r = sys_mkdirat(AT_FDCWD, a[0], a[1]); break;                       // mkdir
    case 84: r = sys_unlinkat(AT_FDCWD, a[0], AT_REMOVEDIR); break;               // rmdir
    case 85: r = sys_openat(AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, a[1]); break;  // creat
    case 86: r = sys_linkat(AT_FDCWD, a[0], AT_FDCWD, a[1], 0); break;           // link
    case 87: r = sys_unlinkat(AT_FDCWD, a[0], 0); break;                         // unlink
    case 88: r = sys_symlinkat(a[0], AT_FDCWD, a[1]); break;                     // symlink
    case 89: r = sys_readlinkat(AT_FDCWD, a[0], a[1], a[2]); break;              // readlink
    case 90: r = sys_fchmodat(AT_FDCWD, a[0], a[1], 0); break;                   // chmod
    case 91: {                                                                  // fchmod
      OpenFile* f = get(a[0]);
      if (!f) { r = -EBADF; break; }
      f->node->mode = (f->node->mode & 0170000) | uint32_t(a[1] & 07777);
      r = 0;
      break;
    }
    case 92: case 94: {                                                         // chown, lchown
      Node* n;
      r = resolve_at(AT_FDCWD, a[0], 0, nr == 92, &n);
      break;
    }
    case 93: r = get(a[0]) ? 0 : -EBADF; break;                                 // fchown
    case 95: r = g_umask; g_umask = uint32_t(a[0] & 0777); break;               // umask
    case 137: {                                                                 // statfs
      Node* n;
      r = resolve_at(AT_FDCWD, a[0], 0, true, &n);
      if (!r) r = fill_statfs(a[1]);
      break;
    }
    case 138: r = get(a[0]) ? fill_statfs(a[1]) : -EBADF; break;                // fstatfs
    case 188: case 189: case 190: r = -EOPNOTSUPP; break;                      // setxattr family
    case 191: case 192: case 193: r = -ENODATA; break;                          // getxattr family
    case 194: case 195: case 196: r = 0; break;                                 // listxattr: none
    case 197: case 198: case 199: r = -ENODATA; break;                          // removexattr
    case 217: r = sys_getdents64(a[0], a[1], a[2]); break;
    case 221: r = get(a[0]) ? 0 : -EBADF; break;                                // fadvise64
    case 257: r = sys_openat(dfd, a[1], a[2], a[3]); break;
    case 258: r = sys_mkdirat(dfd, a[1], a[2]); break;
    case 260: {                                                                 // fchownat
      Node* n;
      r = resolve_at(dfd, a[1], a[4], !(a[4] & AT_SYMLINK_NOFOLLOW), &n);
      break;
    }
    case 262: r = sys_newfstatat(dfd, a[1], a[2], a[3]); break;
    case 263: r = sys_unlinkat(dfd, a[1], a[2]); break;
    case 264: r = sys_renameat2(dfd, a[1], fd_arg(a[2]), a[3], 0); break;       // renameat
    case 265: r = sys_linkat(dfd, a[1], fd_arg(a[2]), a[3], a[4]); break;
    case 266: r = sys_symlinkat(a[0], fd_arg(a[1]), a[2]); break;
    case 267: r = sys_readlinkat(dfd, a[1], a[2], a[3]); break;
    case 268: r = sys_fchmodat(dfd, a[1], a[2], 0); break;
    case 269: r = sys_faccessat(dfd, a[1], a[2], 0); break;
    case 270: r = sys_select(a[0], a[1], a[2], a[3]); break;                     // pselect6
    case 271: r = sys_poll(a[0], a[1]); break;                                   // ppoll
    case 280: r = sys_utimensat(dfd, a[1], a[2], a[3]); break;
    case 285: r = sys_fallocate(a[0], a[1], int64_t(a[2]), int64_t(a[3])); break;
    case 292: r = sys_dup3(a[0], a[1], a[2], false); break;
    case 295: r = vector_io(a[0], a[1], a[2], false, int64_t(a[3])); break;      // preadv
    case 296: r = vector_io(a[0], a[1], a[2], true, int64_t(a[3])); break;       // pwritev
    case 316: r = sys_renameat2(dfd, a[1], fd_arg(a[2]), a[3], a[4]); break;
    case 319: r = sys_memfd_create(a[0], a[1]); break;
    case 326: r = sys_copy_file_range(a[0], a[1], a[2], a[3], a[4]); break;
    case 332: r = sys_statx(dfd, a[1], a[2], a[3], a[4]); break;
    case 213: r = sys_epoll_create(0); break;                                    // epoll_create
    case 291: r = sys_epoll_create(a[0]); break;                              // epoll_create1
    case 233: r = sys_epoll_ctl(a[0], a[1], a[2], a[3]); break;
    case 232: case 281: r = sys_epoll_wait(a[0], a[1], int64_t(int32_t(a[2])), int64_t(int32_t(a[3]))); break;
    case 437: {                                                                 // openat2
      // struct open_how { u64 flags, mode, resolve; }: the RESOLVE_* restrictions are not
      // implemented, so a request for any of them is refused rather than ignored.
      uint64_t how[3];
      if (a[3] < 24) { r = -EINVAL; break; }
      if (!mm::user_ok(a[2], 24, false)) { r = -EFAULT; break; }
      memcpy(how, reinterpret_cast<const void*>(a[2]), 24);
      r = how[2] ? -EINVAL : sys_openat(dfd, a[1], how[0], how[1]);
      break;
    }
    case 439: r = sys_faccessat(dfd, a[1], a[2], a[3]); break;                   // faccessat2
    default: return false;
  }
  *ret = r;
  return true;
}

}  // namespace k::files
