// A StoreFs for tests and benchmarks that counts mutating operations and fails a chosen one
// (after LevelDB's fault_injection_test): "fail the N-th operation from now with EIO", once or
// from then on. A failed write batch is torn: the first half of its first request is written
// before the error, as a crash or a full disk could leave it. Every other call is forwarded to
// the wrapped StoreFs. Thread-safety: all members may be called from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "snapshot/store_fs.h"

namespace vmfork::snapshot {

class FaultyFs final : public StoreFs {
 public:
  /// Wraps `base` (null: the real file system).
  explicit FaultyFs(std::shared_ptr<StoreFs> base = nullptr);

  /// Arms a fault: the `n`-th mutating operation counted from now (1-based) fails with errno
  /// `err` (EIO, ENOSPC, ...); with `sticky` every later operation fails too (a dead disk).
  /// n = 0 disarms. Resets the operation count and the log.
  void fail_at(uint64_t n, int err, bool sticky = false);
  /// Disarms and resets the count and the log.
  void reset() { fail_at(0, 0); }
  /// Mutating operations attempted since the last fail_at/reset, failed ones included.
  uint64_t ops() const;
  /// Operations attempted since the last fail_at/reset, e.g. "fsync /s/packs/00000001.vfp.tmp".
  std::vector<std::string> log() const;
  /// The operation that failed first since the last fail_at/reset ("" if none).
  std::string failed_op() const;

  Result<Fd> create_file(const std::filesystem::path& path) override;
  Status write_batch(UringIo& io, int fd, const std::filesystem::path& path, std::span<const WriteReq> reqs) override;
  Status fsync(int fd, const std::filesystem::path& path) override;
  Status rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  Status unlink(const std::filesystem::path& path) override;
  Status fsync_dir(const std::filesystem::path& dir) override;
  Status punch_hole(int fd, const std::filesystem::path& path, uint64_t offset, uint64_t bytes) override;
  Status make_dir(const std::filesystem::path& path) override;
  Status set_size(int fd, const std::filesystem::path& path, uint64_t bytes) override;

 private:
  /// Counts operation `what`; returns the injected error if this one must fail.
  Status count(const std::string& what);

  std::shared_ptr<StoreFs> base_;
  mutable std::mutex mu_;
  uint64_t ops_ = 0;
  uint64_t fail_at_ = 0;
  int errno_ = 0;
  bool sticky_ = false;
  std::vector<std::string> log_;
  std::string failed_op_;
};

}  // namespace vmfork::snapshot
