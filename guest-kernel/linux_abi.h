// The slice of the Linux x86-64 user ABI the guest kernel implements: errno values
// (include/uapi/asm-generic/errno-base.h, errno.h), flags and structure layouts
// (arch/x86/include/uapi/asm/stat.h, include/uapi/linux/*.h). Values are the kernel's own.
#pragma once

#include <stdint.h>

namespace k {

enum : int64_t {
  EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, EBADF = 9, ECHILD = 10, EAGAIN = 11,
  ENOMEM = 12, EACCES = 13, EFAULT = 14, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22,
  EMFILE = 24, ENOTTY = 25, ESPIPE = 29, EROFS = 30, EPIPE = 32, ERANGE = 34, EDEADLK = 35,
  ENAMETOOLONG = 36, ENOSYS = 38, ENODEV = 19, ETIMEDOUT = 110, ENXIO = 6, E2BIG = 7, ENOEXEC = 8,
  EBUSY = 16, EXDEV = 18, EFBIG = 27, ENOSPC = 28, EMLINK = 31, ENOTEMPTY = 39, ELOOP = 40,
  EOPNOTSUPP = 95, EOVERFLOW = 75, ENODATA = 61,
};

// open(2) flags.
inline constexpr uint64_t O_ACCMODE = 3, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0100,
                          O_TRUNC = 01000, O_APPEND = 02000, O_NONBLOCK = 04000,
                          O_DIRECTORY = 0200000, O_CLOEXEC = 02000000;
inline constexpr int64_t AT_FDCWD = -100;
inline constexpr uint64_t AT_EMPTY_PATH = 0x1000;

// mmap(2).
inline constexpr uint64_t MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20,
                          MAP_FIXED_NOREPLACE = 0x100000;
inline constexpr uint64_t MREMAP_MAYMOVE = 1, MREMAP_FIXED = 2;
inline constexpr uint64_t MADV_DONTNEED = 4;

// fcntl(2).
inline constexpr uint64_t F_DUPFD = 0, F_GETFD = 1, F_SETFD = 2, F_GETFL = 3, F_SETFL = 4,
                          F_DUPFD_CLOEXEC = 1030;

// ioctl(2) requests answered with ENOTTY (the job's files are never terminals).
inline constexpr uint64_t TCGETS = 0x5401, TIOCGWINSZ = 0x5413;

// clock ids.
inline constexpr uint64_t CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_PROCESS_CPUTIME_ID = 2,
                          CLOCK_THREAD_CPUTIME_ID = 3, CLOCK_MONOTONIC_RAW = 4,
                          CLOCK_REALTIME_COARSE = 5, CLOCK_MONOTONIC_COARSE = 6,
                          CLOCK_BOOTTIME = 7;
inline constexpr uint64_t TIMER_ABSTIME = 1;

// arch_prctl(2).
inline constexpr uint64_t ARCH_SET_GS = 0x1001, ARCH_SET_FS = 0x1002, ARCH_GET_FS = 0x1003,
                          ARCH_GET_GS = 0x1004;

// futex(2).
inline constexpr uint64_t FUTEX_WAIT = 0, FUTEX_WAKE = 1, FUTEX_CMD_MASK = 0x7f & ~0x80;

// Signals.
inline constexpr uint64_t SIGABRT = 6, SIGKILL = 9, SIGSEGV = 11, SIGFPE = 8, SIGILL = 4,
                          SIGBUS = 7, SIGTRAP = 5;

// rlimit resources.
inline constexpr uint64_t RLIMIT_STACK = 3, RLIMIT_NOFILE = 7, RLIMIT_AS = 9;
inline constexpr uint64_t RLIM_INFINITY = ~0ull;

// File types for st_mode.
inline constexpr uint32_t S_IFIFO = 0010000, S_IFCHR = 0020000, S_IFDIR = 0040000,
                          S_IFREG = 0100000;

struct timespec {
  int64_t tv_sec, tv_nsec;
};
struct timeval {
  int64_t tv_sec, tv_usec;
};

// struct stat for x86-64 (arch/x86/include/uapi/asm/stat.h), 144 bytes.
struct stat {
  uint64_t st_dev, st_ino, st_nlink;
  uint32_t st_mode, st_uid, st_gid, pad0;
  uint64_t st_rdev;
  int64_t st_size, st_blksize, st_blocks;
  timespec st_atim, st_mtim, st_ctim;
  int64_t reserved[3];
};
static_assert(sizeof(stat) == 144);

// struct statx (include/uapi/linux/stat.h), 256 bytes.
struct statx_timestamp {
  int64_t tv_sec;
  uint32_t tv_nsec, reserved;
};
struct statx {
  uint32_t stx_mask, stx_blksize;
  uint64_t stx_attributes;
  uint32_t stx_nlink, stx_uid, stx_gid;
  uint16_t stx_mode, pad1;
  uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
  statx_timestamp stx_atime, stx_btime, stx_ctime, stx_mtime;
  uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
  uint64_t spare[14];
};
static_assert(sizeof(statx) == 256);

struct utsname {
  char sysname[65], nodename[65], release[65], version[65], machine[65], domainname[65];
};

struct iovec {
  uint64_t base, len;
};

struct rlimit {
  uint64_t cur, max;
};

struct pollfd {
  int32_t fd;
  int16_t events, revents;
};

// struct sysinfo (include/uapi/linux/sysinfo.h), 112 bytes on x86-64.
struct sysinfo {
  int64_t uptime;
  uint64_t loads[3], totalram, freeram, sharedram, bufferram, totalswap, freeswap;
  uint16_t procs, pad;
  uint32_t pad2;
  uint64_t totalhigh, freehigh;
  uint32_t mem_unit;
  char f[4];
};
static_assert(sizeof(sysinfo) == 112);

// ELF auxiliary vector tags (include/uapi/linux/auxvec.h).
enum : uint64_t {
  AT_NULL = 0, AT_PHDR = 3, AT_PHENT = 4, AT_PHNUM = 5, AT_PAGESZ = 6, AT_BASE = 7, AT_FLAGS = 8,
  AT_ENTRY = 9, AT_UID = 11, AT_EUID = 12, AT_GID = 13, AT_EGID = 14, AT_PLATFORM = 15,
  AT_HWCAP = 16, AT_CLKTCK = 17, AT_SECURE = 23, AT_RANDOM = 25, AT_HWCAP2 = 26, AT_EXECFN = 31,
  AT_MINSIGSTKSZ = 51,
};

}  // namespace k
