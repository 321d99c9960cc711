// The guest's file system tree: the read-only root file system image (EROFS, fs/erofs.h) with a
// writable layer in guest RAM on top (copy-up on write; whiteouts hide deleted image entries),
// plus the synthetic /dev and /proc. Everything written lives in the clone's memory and is gone
// with it. Nodes are made lazily: a directory's image entries become nodes only when looked up
// or listed. Single vCPU, no preemption: no locking.
#pragma once

#include <stdint.h>

#include "fs/erofs.h"
#include "kernel.h"
#include "linux_abi.h"

namespace k::fs {

/// What a node is beyond its st_mode: ordinary file-system objects, or a device/stream/proc entry
/// whose behaviour the file layer (fs/files.cc) implements.
enum class Special : uint8_t {
  kNone, kNull, kZero, kFull, kRandom, kStdin, kStdout, kStderr,
  kProcSelf,     // /proc/self: a symlink to the job's pid directory
  kProcExe,      // /proc/self/exe: its target is the executable's path
  kProcFdDir,    // /proc/self/fd: lists the open fds
  kProcFd,       // /proc/self/fd/N: a "magic" link to the open file itself (fd in `proc_arg`)
  kProcGen,      // a generated text file (/proc/self/maps, /proc/meminfo, ...): `proc_arg` says which
  kJob,          // /dev/vmfork/job: opening it asks the VMM for the job (kReqJob, docs/guest-abi.md)
  kEpoll,        // an epoll instance (epoll_create1): its interest list hangs off `priv`
  kPipe,         // a pipe (fs/pipe.h): its ring hangs off `priv`
  kEventfd,      // an eventfd counter (fs/eventfd.h), off `priv`
  kTimerfd,      // a timerfd (fs/timerfd.h), off `priv`
  kSignalfd,     // a signalfd's mask (fs/signalfd.h), off `priv`
};

struct Node;

/// One name in a directory. `node` is made on first lookup; `whiteout` hides an image entry
/// that was deleted or renamed away.
struct Dentry {
  Dentry* next;
  Node* node;
  uint64_t lower_nid;  // the image entry behind it (0: none)
  uint32_t hash;
  uint16_t len;
  uint8_t type;        // DT_* of the entry
  bool whiteout;
  char name[];         // len bytes + NUL
};

struct Node {
  uint64_t ino;
  uint32_t mode;        // S_IFMT | permission bits
  uint32_t uid, gid, nlink;
  uint64_t size;        // bytes
  timespec atime, mtime, ctime;
  uint32_t opens;       // open file descriptions
  Special special;
  uint32_t proc_arg;
  void* priv;           // kEpoll: the interest list (files.cc); kPipe, kEventfd, kTimerfd, kSignalfd: their state
  Node* parent;         // directories: the one holding it (the root: itself)
  // The image inode behind this node, if any (its data is read there until copied up).
  bool lower;
  erofs::Inode li;
  // Writable-layer data: a regular file's pages once copied up or created, a symlink's target.
  bool upper;
  bool mapped;          // some writable-layer page is mapped into the job in place (MAP_SHARED):
                        // its pages are never freed again (the job may still use them)
  uint64_t** page_dir;  // kernel page of 512 pointers to kernel pages of 512 page GPAs
  char* link;
  // Directories: the merged entries; `complete` once every image entry has a Dentry.
  Dentry* children;
  bool complete;
};

/// Largest path accepted (PATH_MAX, limits.h).
inline constexpr uint64_t kPathMax = 4096;
/// Largest regular file in the writable layer: 512 * 512 pages of 4 KiB.
inline constexpr uint64_t kMaxUpperFile = 1ull << 30;

/// Mounts the root file system image from BootInfo (if any) and builds /, /dev, /proc, /tmp.
/// Panics on a bad image: the VMM built it.
void init();

Node* root();
/// The current process's working directory, and setting it. They live in its file table
/// (files::Table, defined in fs/files.cc); before the first table exists cwd() is the root.
Node* cwd();
void set_cwd(Node* dir);
/// The stream nodes behind fds 0, 1, 2.
Node* stream_node(int fd);

/// Resolves `path` (absolute, or relative to `base`), following symlinks (at most 40 in all)
/// and, if `follow`, a symlink in the last component too. 0 with *out, or -ENOENT, -ENOTDIR,
/// -ELOOP, -ENAMETOOLONG, -EIO. A trailing '/' requires a directory.
int64_t resolve(Node* base, const char* path, bool follow, Node** out);
/// Resolves all but the last component of `path`: *dir is the directory and [*name, *name+*len)
/// the last name (inside `path`; "." and ".." are returned as names). Errors as resolve(),
/// and -ENOENT for an empty path, -EISDIR for "/".
int64_t resolve_parent(Node* base, const char* path, Node** dir, const char** name, uint64_t* len);

/// Looks one name up in `dir`. 0 with *out, -ENOENT, -ENOTDIR.
int64_t lookup(Node* dir, const char* name, uint64_t len, Node** out);
/// A new node in `dir` (regular file, directory, symlink by `mode`; symlinks get `target`).
/// -EEXIST if the name exists, -ENOMEM.
int64_t create(Node* dir, const char* name, uint64_t len, uint32_t mode, const char* target, Node** out);
/// Removes a name: files and symlinks (`rmdir` false) or empty directories (`rmdir` true).
int64_t remove(Node* dir, const char* name, uint64_t len, bool rmdir);
/// rename(2) / renameat2 with RENAME_NOREPLACE (`noreplace`).
int64_t rename(Node* odir, const char* oname, uint64_t olen, Node* ndir, const char* nname, uint64_t nlen,
               bool noreplace);
/// A hard link to `target` (not a directory) as `name` in `dir`.
int64_t link(Node* target, Node* dir, const char* name, uint64_t len);

/// One directory entry for getdents64.
struct DirEntry {
  uint64_t ino;
  uint8_t type;
  const char* name;
  uint64_t len;
};
/// The entry at *cursor (0 = ".", 1 = "..", then the merged entries); advances it. 1, 0 at the
/// end, or -errno.
int64_t readdir(Node* dir, uint64_t* cursor, DirEntry* out);

/// File data. read: bytes copied (0 at EOF). write: grows the file; copies it up first.
int64_t read(Node* n, uint64_t off, void* dst, uint64_t len);
int64_t write(Node* n, uint64_t off, const void* src, uint64_t len);
/// Sets a regular file's size (copying it up first). -EFBIG beyond kMaxUpperFile, -ENOMEM.
int64_t truncate(Node* n, uint64_t size);
/// Guest-physical address of the file's page at `off` (a multiple of 4096) if it can be mapped
/// without copying: an image page (`*image` true) or a writable-layer page. 0 if it must be copied.
uint64_t page_gpa(Node* n, uint64_t off, bool* image);
/// A symlink's target into buf (not NUL-terminated): its length, or -EINVAL.
int64_t readlink(Node* n, char* buf, uint64_t cap);
/// The absolute path of `n` (a directory, or any node reached through `dir`) into buf,
/// NUL-terminated: its length, or -ENAMETOOLONG / -ENOENT (detached).
int64_t path_of(Node* n, char* buf, uint64_t cap);

void fill_stat(const Node* n, stat* st);

/// True for directory nodes.
inline bool is_dir(const Node* n) { return (n->mode & 0170000) == S_IFDIR; }
inline bool is_reg(const Node* n) { return (n->mode & 0170000) == S_IFREG; }
inline bool is_lnk(const Node* n) { return (n->mode & 0170000) == 0120000; }

/// A node outside the tree (a generated /proc file's snapshot), freed by release() when its
/// last open file closes.
Node* new_anonymous_file();
/// Called when an open file description of `n` closes: frees an unlinked file's pages.
void release(Node* n);

}  // namespace k::fs
