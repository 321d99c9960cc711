// The seam between the page store and the file system for every *mutating* operation (create,
// write, fsync, rename, unlink, directory fsync, punch hole, mkdir), after LevelDB's Env: the
// store never mutates a file except through a StoreFs, so FaultyFs (faulty_fs.h) can fail any
// one of them in tests. Reads (open for reading, io_uring reads, stat, directory listing) do
// not go through it. Thread-safety: RealFs is stateless and may be shared by threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include "common/fd.h"
#include "common/status.h"
#include "snapshot/uring_io.h"

namespace vmfork::snapshot {

/// Mutating file-system operations. Each failure is an Error naming the call and the path
/// ("fsync /s/packs/00000001.vfp.tmp") with the errno.
class StoreFs {
 public:
  virtual ~StoreFs() = default;

  /// Creates `path` (mode 0644), truncating an existing file, open for writing.
  virtual Result<Fd> create_file(const std::filesystem::path& path) = 0;
  /// Writes a batch of byte ranges to `fd` (the file `path`) through `io`; either all bytes are
  /// written or an error is returned ("io_uring write PATH at offset N").
  virtual Status write_batch(UringIo& io, int fd, const std::filesystem::path& path,
                             std::span<const WriteReq> reqs) = 0;
  /// fsync(2) of an open file.
  virtual Status fsync(int fd, const std::filesystem::path& path) = 0;
  /// rename(2): atomically replaces `to`.
  virtual Status rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  /// unlink(2) of a file.
  virtual Status unlink(const std::filesystem::path& path) = 0;
  /// Opens directory `dir` and fsyncs it, making renames and unlinks in it durable.
  virtual Status fsync_dir(const std::filesystem::path& dir) = 0;
  /// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) of `bytes` bytes at `offset` of `fd`
  /// (opened for writing): the range reads back as zeros and its blocks are freed.
  virtual Status punch_hole(int fd, const std::filesystem::path& path, uint64_t offset, uint64_t bytes) = 0;
  /// mkdir(2) with mode 0755; an existing directory is not an error.
  virtual Status make_dir(const std::filesystem::path& path) = 0;
  /// ftruncate(2) of `fd` (open for writing) to `bytes`: growing leaves a hole that reads zeros.
  virtual Status set_size(int fd, const std::filesystem::path& path, uint64_t bytes) = 0;
};

/// The real file system (POSIX calls and io_uring).
class RealFs final : public StoreFs {
 public:
  Result<Fd> create_file(const std::filesystem::path& path) override;
  Status write_batch(UringIo& io, int fd, const std::filesystem::path& path, std::span<const WriteReq> reqs) override;
  Status fsync(int fd, const std::filesystem::path& path) override;
  Status rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Status unlink(const std::filesystem::path& path) override;
  Status fsync_dir(const std::filesystem::path& dir) override;
  Status punch_hole(int fd, const std::filesystem::path& path, uint64_t offset, uint64_t bytes) override;
  Status make_dir(const std::filesystem::path& path) override;
  Status set_size(int fd, const std::filesystem::path& path, uint64_t bytes) override;
};

/// A shared RealFs (the default of StoreOptions::fs).
std::shared_ptr<StoreFs> real_fs();

}  // namespace vmfork::snapshot
