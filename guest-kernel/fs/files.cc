// File descriptors and I/O syscalls (see files.h). Semantics follow the Linux man pages of each
// call (read(2), write(2), open(2), fstat(2), fcntl(2), dup(2), ...).
#include "fs/files.h"

#include "linux_abi.h"
#include "fs/loader.h"
#include "mm/mm.h"
#include "kernel/random.h"

namespace k::files {
namespace {

enum class Kind : uint8_t { kClosed, kStdin, kStdout, kStderr, kNull, kZero, kUrandom };

struct File {
  Kind kind;
  bool cloexec;
  uint32_t status_flags;  // O_ACCMODE | O_APPEND | O_NONBLOCK
};

constexpr int kMaxFds = 256;
File g_fds[kMaxFds];

File* get(uint64_t fd) {
  return fd < kMaxFds && g_fds[fd].kind != Kind::kClosed ? &g_fds[fd] : nullptr;
}

bool streq(const char* a, const char* b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

// Copies a NUL-terminated user path into buf (max n bytes incl. NUL). 0 or -errno.
int64_t copy_path(uint64_t upath, char* buf, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    if (!mm::user_ok(upath + i, 1, false)) return -EFAULT;
    buf[i] = *reinterpret_cast<const char*>(upath + i);
    if (!buf[i]) return 0;
  }
  return -ENAMETOOLONG;
}

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

int64_t do_read(File* f, uint8_t* dst, uint64_t n) {
  if ((f->status_flags & O_ACCMODE) == O_WRONLY) return -EBADF;
  switch (f->kind) {
    case Kind::kStdin: return read_stdin(dst, n);
    case Kind::kNull: return 0;
    case Kind::kZero: memset(dst, 0, n); return int64_t(n);
    case Kind::kUrandom: random::fill(dst, n); return int64_t(n);
    default: return -EBADF;
  }
}

int64_t do_write(File* f, const uint8_t* src, uint64_t n) {
  if ((f->status_flags & O_ACCMODE) == 0 && f->kind != Kind::kNull) return -EBADF;
  switch (f->kind) {
    case Kind::kStdout: return append(kStdoutGpa, kStdoutCap, &chan->stdout_len, src, n);
    case Kind::kStderr: return append(kStderrGpa, kStderrCap, &chan->stderr_len, src, n);
    case Kind::kNull: case Kind::kZero: case Kind::kUrandom: return int64_t(n);
    default: return -EBADF;
  }
}

int64_t alloc_fd(uint64_t from, Kind kind, uint32_t flags, bool cloexec) {
  for (uint64_t fd = from; fd < kMaxFds; fd++) {
    if (g_fds[fd].kind == Kind::kClosed) {
      g_fds[fd] = {kind, cloexec, flags};
      return int64_t(fd);
    }
  }
  return -EMFILE;
}

// Resolves a device path to a file kind (Kind::kClosed if none), following /dev/fd/N.
Kind lookup(const char* p, uint32_t* mode_out) {
  const char* fdpfx[] = {"/dev/fd/", "/proc/self/fd/"};
  for (const char* pfx : fdpfx) {
    size_t n = strlen(pfx);
    if (!memcmp(p, pfx, n) && p[n] >= '0' && p[n] <= '9' && !p[n + 1]) {
      File* f = get(uint64_t(p[n] - '0'));
      return f ? f->kind : Kind::kClosed;
    }
  }
  *mode_out = S_IFCHR | 0666;
  if (streq(p, "/dev/stdin")) return g_fds[0].kind;
  if (streq(p, "/dev/stdout")) return g_fds[1].kind;
  if (streq(p, "/dev/stderr")) return g_fds[2].kind;
  if (streq(p, "/dev/null")) return Kind::kNull;
  if (streq(p, "/dev/zero")) return Kind::kZero;
  if (streq(p, "/dev/urandom") || streq(p, "/dev/random")) return Kind::kUrandom;
  return Kind::kClosed;
}

void fill_stat(Kind kind, stat* st) {
  memset(st, 0, sizeof *st);
  st->st_dev = 5;
  st->st_nlink = 1;
  st->st_uid = st->st_gid = 1000;
  switch (kind) {
    case Kind::kStdin: case Kind::kStdout: case Kind::kStderr:
      // A pipe: libc then buffers fully with st_blksize bytes, so few syscalls (and exits).
      st->st_mode = S_IFIFO | 0600;
      st->st_ino = 1 + uint64_t(kind);
      st->st_blksize = 65536;
      break;
    default:
      st->st_mode = S_IFCHR | 0666;
      st->st_rdev = (1 << 8) | (kind == Kind::kNull ? 3 : kind == Kind::kZero ? 5 : 9);
      st->st_ino = 10 + uint64_t(kind);
      st->st_blksize = 4096;
  }
}

int64_t stat_path(int64_t dirfd, uint64_t upath, bool empty_ok, Kind* kind, uint32_t* mode) {
  char path[256];
  int64_t r = copy_path(upath, path, sizeof path);
  if (r) return r;
  if (!path[0]) {
    if (!empty_ok) return -ENOENT;
    File* f = get(uint64_t(dirfd));
    if (!f) return -EBADF;
    *kind = f->kind;
    return 0;
  }
  *kind = lookup(path, mode);
  return *kind == Kind::kClosed ? -ENOENT : 0;
}

}  // namespace

void init() {
  for (auto& f : g_fds) f = {Kind::kClosed, false, 0};
  g_fds[0] = {Kind::kStdin, false, 0};
  g_fds[1] = {Kind::kStdout, false, O_WRONLY};
  g_fds[2] = {Kind::kStderr, false, O_WRONLY};
}

bool is_dev_zero(uint64_t fd) {
  File* f = get(fd);
  return f && f->kind == Kind::kZero;
}

void flush() {
  if (chan->stdout_len || chan->stderr_len) ring(kReqFlush);
}

int64_t sys_read(uint64_t fd, uint64_t buf, uint64_t n) {
  File* f = get(fd);
  if (!f) return -EBADF;
  if (!n) return 0;
  if (!mm::user_ok(buf, n, true)) return -EFAULT;
  return do_read(f, reinterpret_cast<uint8_t*>(buf), n);
}

int64_t sys_write(uint64_t fd, uint64_t buf, uint64_t n) {
  File* f = get(fd);
  if (!f) return -EBADF;
  if (!n) return 0;
  if (!mm::user_ok(buf, n, false)) return -EFAULT;
  return do_write(f, reinterpret_cast<const uint8_t*>(buf), n);
}

int64_t sys_pread(uint64_t fd, uint64_t buf, uint64_t n, uint64_t) {
  File* f = get(fd);
  if (!f) return -EBADF;
  if (f->kind == Kind::kStdin || f->kind == Kind::kStdout || f->kind == Kind::kStderr)
    return -ESPIPE;
  return sys_read(fd, buf, n);
}

static int64_t vector_io(uint64_t fd, uint64_t uiov, uint64_t cnt, bool write) {
  File* f = get(fd);
  if (!f) return -EBADF;
  if (cnt > 1024) return -EINVAL;
  if (!mm::user_ok(uiov, cnt * sizeof(iovec), false)) return -EFAULT;
  const auto* iov = reinterpret_cast<const iovec*>(uiov);
  int64_t total = 0;
  for (uint64_t i = 0; i < cnt; i++) {
    if (!iov[i].len) continue;
    if (!mm::user_ok(iov[i].base, iov[i].len, !write)) return total ? total : -EFAULT;
    int64_t r = write ? do_write(f, reinterpret_cast<const uint8_t*>(iov[i].base), iov[i].len)
                      : do_read(f, reinterpret_cast<uint8_t*>(iov[i].base), iov[i].len);
    if (r < 0) return total ? total : r;
    total += r;
    if (uint64_t(r) < iov[i].len) break;  // short read: stop like Linux does for pipes
  }
  return total;
}

int64_t sys_readv(uint64_t fd, uint64_t iov, uint64_t cnt) { return vector_io(fd, iov, cnt, false); }
int64_t sys_writev(uint64_t fd, uint64_t iov, uint64_t cnt) { return vector_io(fd, iov, cnt, true); }

int64_t sys_openat(int64_t dirfd, uint64_t upath, uint64_t flags) {
  (void)dirfd;
  char path[256];
  int64_t r = copy_path(upath, path, sizeof path);
  if (r) return r;
  uint32_t mode = 0;
  Kind kind = lookup(path, &mode);
  if (kind == Kind::kClosed) return (flags & O_CREAT) ? -EROFS : -ENOENT;
  if (flags & O_DIRECTORY) return -ENOTDIR;
  return alloc_fd(0, kind, uint32_t(flags & (O_ACCMODE | O_APPEND | O_NONBLOCK)),
                  flags & O_CLOEXEC);
}

int64_t sys_close(uint64_t fd) {
  File* f = get(fd);
  if (!f) return -EBADF;
  f->kind = Kind::kClosed;
  return 0;
}

int64_t sys_fstat(uint64_t fd, uint64_t ust) {
  File* f = get(fd);
  if (!f) return -EBADF;
  if (!mm::user_ok(ust, sizeof(stat), true)) return -EFAULT;
  fill_stat(f->kind, reinterpret_cast<stat*>(ust));
  return 0;
}

int64_t sys_newfstatat(int64_t dirfd, uint64_t upath, uint64_t ust, uint64_t flags) {
  Kind kind;
  uint32_t mode;
  int64_t r = stat_path(dirfd, upath, flags & AT_EMPTY_PATH, &kind, &mode);
  if (r) return r;
  if (!mm::user_ok(ust, sizeof(stat), true)) return -EFAULT;
  fill_stat(kind, reinterpret_cast<stat*>(ust));
  return 0;
}

int64_t sys_statx(int64_t dirfd, uint64_t upath, uint64_t flags, uint64_t, uint64_t ustx) {
  Kind kind;
  uint32_t mode;
  int64_t r = stat_path(dirfd, upath, flags & AT_EMPTY_PATH, &kind, &mode);
  if (r) return r;
  if (!mm::user_ok(ustx, sizeof(statx), true)) return -EFAULT;
  stat st;
  fill_stat(kind, &st);
  auto* x = reinterpret_cast<statx*>(ustx);
  memset(x, 0, sizeof *x);
  x->stx_mask = 0x7ff;  // STATX_BASIC_STATS
  x->stx_blksize = uint32_t(st.st_blksize);
  x->stx_nlink = 1;
  x->stx_uid = x->stx_gid = 1000;
  x->stx_mode = uint16_t(st.st_mode);
  x->stx_ino = st.st_ino;
  x->stx_rdev_major = uint32_t(st.st_rdev >> 8);
  x->stx_rdev_minor = uint32_t(st.st_rdev & 0xff);
  x->stx_dev_minor = 5;
  return 0;
}

int64_t sys_lseek(uint64_t fd, int64_t, uint64_t) {
  File* f = get(fd);
  if (!f) return -EBADF;
  return (f->kind == Kind::kNull || f->kind == Kind::kZero || f->kind == Kind::kUrandom) ? 0
                                                                                        : -ESPIPE;
}

int64_t sys_ioctl(uint64_t fd, uint64_t, uint64_t) {
  return get(fd) ? -ENOTTY : -EBADF;  // TCGETS, TIOCGWINSZ, ...: the job never has a terminal
}

int64_t sys_fcntl(uint64_t fd, uint64_t cmd, uint64_t arg) {
  File* f = get(fd);
  if (!f) return -EBADF;
  switch (cmd) {
    case F_DUPFD: return alloc_fd(arg, f->kind, f->status_flags, false);
    case F_DUPFD_CLOEXEC: return alloc_fd(arg, f->kind, f->status_flags, true);
    case F_GETFD: return f->cloexec ? 1 : 0;
    case F_SETFD: f->cloexec = arg & 1; return 0;
    case F_GETFL: return f->status_flags;
    case F_SETFL:
      f->status_flags = uint32_t((f->status_flags & O_ACCMODE) | (arg & (O_APPEND | O_NONBLOCK)));
      return 0;
    default: return -EINVAL;
  }
}

int64_t sys_dup(uint64_t fd) {
  File* f = get(fd);
  return f ? alloc_fd(0, f->kind, f->status_flags, false) : -EBADF;
}

int64_t sys_dup3(uint64_t oldfd, uint64_t newfd, uint64_t flags, bool dup2) {
  File* f = get(oldfd);
  if (!f) return -EBADF;
  if (newfd >= kMaxFds) return -EBADF;
  if (oldfd == newfd) return dup2 ? int64_t(newfd) : -EINVAL;
  g_fds[newfd] = {f->kind, (flags & O_CLOEXEC) != 0, f->status_flags};
  return int64_t(newfd);
}

int64_t sys_faccessat(int64_t dirfd, uint64_t upath, uint64_t) {
  Kind kind;
  uint32_t mode;
  return stat_path(dirfd, upath, false, &kind, &mode);
}

int64_t sys_readlinkat(int64_t, uint64_t upath, uint64_t buf, uint64_t n) {
  char path[256];
  int64_t r = copy_path(upath, path, sizeof path);
  if (r) return r;
  if (!streq(path, "/proc/self/exe")) return -ENOENT;
  const char* exe = loader::exe_path();
  uint64_t len = strlen(exe);
  if (len > n) len = n;  // readlink(2) truncates silently
  if (!mm::user_ok(buf, len, true)) return -EFAULT;
  memcpy(reinterpret_cast<void*>(buf), exe, len);
  return int64_t(len);
}

int64_t sys_getcwd(uint64_t buf, uint64_t n) {
  if (n < 2) return -ERANGE;
  if (!mm::user_ok(buf, 2, true)) return -EFAULT;
  memcpy(reinterpret_cast<void*>(buf), "/", 2);
  return 2;
}

int64_t sys_poll(uint64_t ufds, uint64_t n) {
  if (n > kMaxFds) return -EINVAL;
  if (!mm::user_ok(ufds, n * sizeof(pollfd), true)) return -EFAULT;
  auto* p = reinterpret_cast<pollfd*>(ufds);
  int64_t ready = 0;
  for (uint64_t i = 0; i < n; i++) {
    // Every stream is always ready: reads block in the VMM until input or EOF arrives.
    p[i].revents = get(uint64_t(p[i].fd)) ? int16_t(p[i].events & 0x5) : int16_t(0x20);
    if (p[i].revents) ready++;
  }
  return ready;
}

}  // namespace k::files
