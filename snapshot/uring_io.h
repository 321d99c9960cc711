// Batched file reads and writes through io_uring (liburing), after liburing's io_uring-cp
// example: a bounded number of requests in flight (the queue depth), each request's context in
// its user_data, short transfers resubmitted for the remainder, -EAGAIN and -EINTR retried.
// An unexpected end of file is an error naming the file, the offset and the bytes expected.
// Thread-safety: a UringIo (one ring) is used by one thread at a time; instances are independent.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include "common/status.h"

namespace vmfork::snapshot {

/// Read `buf.size()` bytes at byte `offset` of the file into `buf`.
struct ReadReq {
  uint64_t offset = 0;
  std::span<uint8_t> buf;
};

/// Write all of `buf` at byte `offset` of the file.
struct WriteReq {
  uint64_t offset = 0;
  std::span<const uint8_t> buf;
};

class UringIo {
 public:
  struct Options {
    /// Requests in flight at once (ring size), 1..4096.
    unsigned queue_depth = 32;
    /// Largest transfer handed to one io_uring op, bytes (>= 1); longer requests continue where
    /// the previous op stopped, exactly like a short transfer. Tests lower it to exercise
    /// resubmission.
    uint32_t max_op_bytes = 1u << 30;
  };

  /// A ring of `opts.queue_depth` entries. Errors: bad options, io_uring_queue_init failed
  /// (e.g. io_uring disabled by the kernel or a seccomp policy).
  static Result<UringIo> create(Options opts);
  static Result<UringIo> create(unsigned queue_depth) { return create(Options{queue_depth}); }

  UringIo(UringIo&&) noexcept;
  UringIo& operator=(UringIo&&) noexcept;
  ~UringIo();

  /// Fills every request's buffer from `fd` (`path` names it in errors). All requests are
  /// attempted with at most queue_depth in flight; on the first failure no new request starts,
  /// the ones in flight are drained, and the error is returned ("io_uring read PATH at offset N
  /// (L bytes): errno", or "io_uring read PATH: unexpected end of file at offset X, expected N
  /// more bytes"). Buffers of a failed call hold unspecified bytes.
  Status read(int fd, const std::filesystem::path& path, std::span<const ReadReq> reqs);

  /// Writes every request's bytes to `fd`; same contract and errors as read ("io_uring write").
  Status write(int fd, const std::filesystem::path& path, std::span<const WriteReq> reqs);

 private:
  struct Ring;
  explicit UringIo(std::unique_ptr<Ring> ring, Options opts);
  template <typename Req>
  Status run(bool is_write, int fd, const std::filesystem::path& path, std::span<const Req> reqs);

  std::unique_ptr<Ring> ring_;
  Options opts_;
};

}  // namespace vmfork::snapshot
