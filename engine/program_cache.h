// Job programs shared between clones: each distinct program file a kernel-ready clone runs is
// read once per process into a sealed memfd, which every clone then maps copy-on-write at
// abi::kProgramGpa (vmm::GuestMemory::overlay) instead of copying the program into its own
// memory, so a job's private pages are only those it writes.
// Thread-safety: ProgramCache is safe to use from any number of threads (one mutex, held only
// for lookups and inserts, never while a file is read); a SharedProgram is immutable.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "common/fd.h"
#include "common/status.h"

namespace vmfork::engine {

/// fstat(2) of program file `fd`: a regular file of at most `max_bytes` (`path` names it in
/// errors). Errors: fstat, "PATH: not a regular file", "PATH: N bytes does not fit in guest
/// memory".
Result<struct stat> stat_program(int fd, const std::string& path, uint64_t max_bytes);

/// Reads the first `bytes` of `fd` into `dst` with pread(2) from offset 0 (the fd's offset
/// stays as it was). Errors: read, "PATH: file shrank while being read".
Status read_program_bytes(int fd, uint8_t* dst, uint64_t bytes, const std::string& path);

/// One program file's bytes in a sealed memfd (memfd_create(2), F_SEAL_SHRINK | F_SEAL_GROW |
/// F_SEAL_WRITE | F_SEAL_SEAL: nobody can change them once checked), zero-padded to whole
/// 4 KiB pages. Checked as a static x86-64 ELF program (vmm::check_static_program) before it
/// was sealed.
struct SharedProgram {
  Fd memfd;
  uint64_t bytes = 0;         // the file's size
  uint64_t mapped_bytes = 0;  // bytes rounded up to 4 KiB: the memfd's size
};

/// A bounded cache of SharedPrograms keyed by the opened file's identity and version (fstat(2):
/// st_dev, st_ino, st_size, st_mtim, st_ctim; any write to the file changes st_ctim), least
/// recently used evicted first. Evicted programs live on while a clone maps them.
class ProgramCache {
 public:
  /// At most `max_entries` programs and `max_bytes` of them (one program larger than that is
  /// still returned, just not kept).
  explicit ProgramCache(size_t max_entries = 64, uint64_t max_bytes = 512ull << 20)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  /// The program open as `fd` (a regular file, see open_program; `path` names it in errors),
  /// from the cache or read now (pread(2) into a new memfd). A file that changes while it is
  /// read is returned but not kept. Errors: fstat, "PATH: not a regular file", "PATH: N bytes
  /// does not fit in guest memory" (above `max_bytes`), memfd_create, ftruncate, mmap, read,
  /// "PATH: file shrank while being read", the ELF check's, fcntl F_ADD_SEALS.
  Result<std::shared_ptr<const SharedProgram>> get(int fd, const std::string& path, uint64_t max_bytes);

  struct Stats {
    uint64_t hits = 0, misses = 0, entries = 0, bytes = 0;
  };
  Stats stats() const;

 private:
  struct Key {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns, ctime_ns;
    bool operator==(const Key&) const = default;
  };
  static Key key_of(const struct stat& st);  // a file's identity and version
  struct Entry {
    Key key;
    std::shared_ptr<const SharedProgram> program;
  };

  const size_t max_entries_;
  const uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  uint64_t bytes_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace vmfork::engine
