// io_uring batch I/O: the submit / complete / resubmit loop.
#include "snapshot/uring_io.h"

#include <liburing.h>

#include <algorithm>
#include <string>
#include <vector>

namespace vmfork::snapshot {

struct UringIo::Ring {
  io_uring ring{};
  bool live = false;    // io_uring_queue_init succeeded
  bool broken = false;  // a submit failed: SQEs may be stuck in the ring, do not use it
  ~Ring() {
    if (live) io_uring_queue_exit(&ring);
  }
};

namespace {

// -EAGAIN / -EINTR completions are resubmitted; this many in a row for one request is a hang,
// not a transient condition.
constexpr unsigned kMaxRetries = 10000;

uint8_t* data_of(const ReadReq& r) { return r.buf.data(); }
// io_uring_prep_write takes a const pointer; the cast only unifies the two request kinds.
uint8_t* data_of(const WriteReq& r) { return const_cast<uint8_t*>(r.buf.data()); }

}  // namespace

Result<UringIo> UringIo::create(Options opts) {
  if (opts.queue_depth < 1 || opts.queue_depth > 4096)
    return plain_error("io_uring queue depth " + std::to_string(opts.queue_depth) + " not in 1..4096");
  if (opts.max_op_bytes < 1) return plain_error("io_uring max_op_bytes must be >= 1");
  auto ring = std::make_unique<Ring>();
  int rc = io_uring_queue_init(opts.queue_depth, &ring->ring, 0);
  if (rc < 0) return Error{"io_uring_queue_init(" + std::to_string(opts.queue_depth) + ")", -rc};
  ring->live = true;
  return UringIo(std::move(ring), opts);
}

UringIo::UringIo(std::unique_ptr<Ring> ring, Options opts) : ring_(std::move(ring)), opts_(opts) {}
UringIo::UringIo(UringIo&&) noexcept = default;
UringIo& UringIo::operator=(UringIo&&) noexcept = default;
UringIo::~UringIo() = default;

Status UringIo::read(int fd, const std::filesystem::path& path, std::span<const ReadReq> reqs) {
  return run(false, fd, path, reqs);
}

Status UringIo::write(int fd, const std::filesystem::path& path, std::span<const WriteReq> reqs) {
  return run(true, fd, path, reqs);
}

template <typename Req>
Status UringIo::run(bool is_write, int fd, const std::filesystem::path& path, std::span<const Req> reqs) {
  io_uring* ring = &ring_->ring;
  const char* verb = is_write ? "io_uring write " : "io_uring read ";
  if (ring_->broken) return plain_error(verb + path.string() + ": the ring failed earlier and is not usable");

  // One slot per request in flight; the slot index is the op's user_data.
  struct Slot {
    size_t req = 0;
    uint64_t done = 0;  // bytes of the request already transferred
    unsigned retries = 0;
  };
  std::vector<Slot> slots(std::min<size_t>(opts_.queue_depth, std::max<size_t>(reqs.size(), 1)));
  std::vector<unsigned> free_slots;
  for (unsigned i = slots.size(); i-- > 0;) free_slots.push_back(i);

  Status first_error;
  auto fail = [&](Error e) {
    if (first_error.ok()) first_error = std::move(e);
  };
  // Queues the rest of slot `s`'s request. The SQ has queue_depth entries and at most
  // queue_depth ops are in flight or queued, so an SQE is always available.
  auto prep = [&](unsigned s) {
    const Req& r = reqs[slots[s].req];
    uint64_t left = r.buf.size() - slots[s].done;
    unsigned len = static_cast<unsigned>(std::min<uint64_t>(left, opts_.max_op_bytes));
    io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (is_write)
      io_uring_prep_write(sqe, fd, data_of(r) + slots[s].done, len, r.offset + slots[s].done);
    else
      io_uring_prep_read(sqe, fd, data_of(r) + slots[s].done, len, r.offset + slots[s].done);
    io_uring_sqe_set_data64(sqe, s);
  };

  size_t next = 0;
  size_t in_flight = 0;
  while (true) {
    while (first_error.ok() && next < reqs.size() && !free_slots.empty()) {
      if (reqs[next].buf.empty()) {
        ++next;
        continue;
      }
      unsigned s = free_slots.back();
      free_slots.pop_back();
      slots[s] = Slot{next++, 0, 0};
      prep(s);
      ++in_flight;
    }
    if (in_flight == 0) break;

    int rc = io_uring_submit_and_wait(ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      // Only a broken ring fails this way (EBADF, EFAULT; not seen in practice). Ops the kernel
      // already took still complete into the caller's buffers, so they are waited for; the
      // SQEs it did not take can never be withdrawn, so the ring is not used again.
      fail(Error{std::string("io_uring_submit_and_wait for ") + verb + path.string(), -rc});
      ring_->broken = true;
      for (size_t in_kernel = in_flight - io_uring_sq_ready(ring); in_kernel > 0; --in_kernel) {
        io_uring_cqe* cqe;
        if (io_uring_wait_cqe(ring, &cqe) < 0) break;
        io_uring_cqe_seen(ring, cqe);
      }
      return first_error;
    }

    io_uring_cqe* cqe;
    while (io_uring_peek_cqe(ring, &cqe) == 0) {
      unsigned s = static_cast<unsigned>(io_uring_cqe_get_data64(cqe));
      int res = cqe->res;
      io_uring_cqe_seen(ring, cqe);
      Slot& slot = slots[s];
      const Req& r = reqs[slot.req];
      uint64_t at = r.offset + slot.done;
      uint64_t left = r.buf.size() - slot.done;
      bool finished = false;
      if (res == -EAGAIN || res == -EINTR) {
        if (++slot.retries > kMaxRetries) {
          fail(Error{verb + path.string() + " at offset " + std::to_string(at) + " (" + std::to_string(left) +
                         " bytes): still failing after " + std::to_string(kMaxRetries) + " retries",
                     -res});
          finished = true;
        }
      } else if (res < 0) {
        fail(Error{verb + path.string() + " at offset " + std::to_string(at) + " (" + std::to_string(left) + " bytes)",
                   -res});
        finished = true;
      } else if (res == 0) {
        fail(plain_error(is_write ? verb + path.string() + " at offset " + std::to_string(at) + ": wrote 0 of " +
                                        std::to_string(left) + " bytes"
                                  : verb + path.string() + ": unexpected end of file at offset " + std::to_string(at) +
                                        ", expected " + std::to_string(left) + " more bytes (request of " +
                                        std::to_string(r.buf.size()) + " bytes at offset " + std::to_string(r.offset) +
                                        ")"));
        finished = true;
      } else {
        slot.done += static_cast<uint64_t>(res);
        slot.retries = 0;
        finished = slot.done >= r.buf.size();
      }
      if (finished || !first_error.ok()) {
        free_slots.push_back(s);
        --in_flight;
      } else {
        prep(s);  // the remainder of a short transfer, or a retry
      }
    }
  }
  return first_error;
}

}  // namespace vmfork::snapshot
