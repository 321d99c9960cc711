// Host side of the host<->guest channel (see channel.h).
#include "vmm/devices/channel.h"

#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace vmfork::vmm {

namespace abi = vmfork::abi;

Result<InputSource::Chunk> FdInput::read(uint8_t* dst, size_t cap, Clock::time_point deadline,
                                         bool nonblocking) {
  for (;;) {
    int timeout_ms = 0;
    if (!nonblocking) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Chunk{0, false, true};
      timeout_ms = int(std::min<int64_t>(left, 1 << 30));
    }
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_error("poll of stdin");
    }
    if (r == 0) return Chunk{0, false, !nonblocking};
    ssize_t n = ::read(fd_, dst, cap);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno_error("read of stdin");
    }
    return Chunk{size_t(n), n == 0, false};
  }
}

Result<InputSource::Chunk> StringInput::read(uint8_t* dst, size_t cap, Clock::time_point, bool) {
  size_t n = std::min(cap, data_.size() - pos_);
  std::memcpy(dst, data_.data() + pos_, n);
  pos_ += n;
  return Chunk{n, pos_ == data_.size(), false};
}

ChannelDevice::ChannelDevice(GuestMemory& mem, InputSource* in, OutputSink out, OutputSink err,
                             uint64_t max_output)
    : mem_(mem),
      chan_(mem.at<abi::Channel>(abi::kChannelGpa)),
      in_(in),
      out_(std::move(out)),
      err_(std::move(err)),
      max_output_(max_output) {}

Status ChannelDevice::start() {
  std::memset(static_cast<void*>(chan_), 0, sizeof *chan_);
  auto r = refill_stdin(Clock::now(), true);
  if (!r.ok()) return r.error();
  return {};
}

Status ChannelDevice::deliver(uint64_t gpa, uint64_t cap, uint64_t* len, const OutputSink& sink,
                              uint64_t* count) {
  uint64_t n = *len;  // guest-written: check before use
  if (n > cap) return plain_error("guest channel: output length " + std::to_string(n) + " > buffer");
  *len = 0;
  if (!n) return {};
  uint64_t total = state_.stdout_bytes + state_.stderr_bytes;
  uint64_t room = total < max_output_ ? max_output_ - total : 0;
  uint64_t take = std::min(n, room);
  if (take && sink) sink(std::span<const uint8_t>(mem_.host() + gpa, take));
  *count += take;
  if (take < n) state_.output_limited = true;
  return {};
}

Status ChannelDevice::drain_output() {
  VF_TRY(deliver(abi::kStdoutGpa, abi::kStdoutCap, &chan_->stdout_len, out_, &state_.stdout_bytes));
  VF_TRY(deliver(abi::kStderrGpa, abi::kStderrCap, &chan_->stderr_len, err_, &state_.stderr_bytes));
  return {};
}

Result<ChannelDevice::Action> ChannelDevice::refill_stdin(Clock::time_point deadline, bool nonblocking) {
  chan_->stdin_len = chan_->stdin_pos = 0;
  if (!in_) {
    chan_->stdin_eof = 1;
    return Action::kResume;
  }
  uint8_t* buf = mem_.host() + abi::kStdinGpa;
  uint64_t len = 0;
  // Fill as much as is ready; block (until the deadline) only if nothing is.
  while (len < abi::kStdinCap) {
    bool nb = nonblocking || len > 0;
    VF_ASSIGN(auto c, in_->read(buf + len, abi::kStdinCap - len, deadline, nb));
    len += c.bytes;
    if (c.eof) {
      chan_->stdin_eof = 1;
      break;
    }
    if (c.timed_out) {
      if (len == 0 && !nonblocking) return Action::kTimeout;
      break;
    }
    if (c.bytes == 0) break;
  }
  chan_->stdin_len = len;
  return Action::kResume;
}

Result<ChannelDevice::Action> ChannelDevice::answer_stdin_wait(Clock::time_point deadline) {
  if (chan_->stdin_eof) return Action::kResume;
  return refill_stdin(deadline, false);
}

Result<ChannelDevice::Action> ChannelDevice::on_doorbell(uint32_t value, Clock::time_point deadline) {
  VF_TRY(drain_output());
  if (state_.output_limited) return Action::kOutputLimit;
  switch (value) {
    case abi::kReqFlush:
      return Action::kResume;
    case abi::kReqStdin:
      if (chan_->stdin_eof) return Action::kResume;  // nothing more: the guest sees EOF
      if (freeze_at_stdin_ && chan_->stdin_pos >= chan_->stdin_len) return Action::kFreezePoint;
      return refill_stdin(deadline, false);
    case abi::kReqReady:
      return Action::kFreezePoint;
    case abi::kReqJob:
      return freeze_at_job_ ? Action::kFreezePoint : Action::kResume;
    case abi::kReqTick:
      return Action::kTicks;
    case abi::kReqFiles: {
      uint64_t pos = chan_->files_pos;  // guest-written
      if (pos > files_.size()) return plain_error("guest channel: files_pos beyond the bundle");
      uint64_t n = std::min<uint64_t>(files_.size() - pos, abi::kFilesWindowCap);
      if (n) std::memcpy(mem_.host() + abi::kFilesWindowGpa, files_.data() + pos, n);
      chan_->files_len = n;
      chan_->files_total = files_.size();
      return Action::kResume;
    }
    case abi::kReqCollect: {
      uint64_t n = chan_->files_len;  // guest-written
      if (n > abi::kFilesWindowCap) return plain_error("guest channel: collect length beyond the window");
      chan_->files_len = 0;
      if (collect_ && n) VF_TRY(collect_(std::span<const uint8_t>(mem_.host() + abi::kFilesWindowGpa, n)));
      return Action::kResume;
    }
    case abi::kReqSleep: {
      timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      uint64_t now_ns = uint64_t(now.tv_sec) * 1000000000 + uint64_t(now.tv_nsec);
      uint64_t until = chan_->sleep_until_ns;
      if (until > now_ns) {
        auto wake = Clock::now() + std::chrono::nanoseconds(until - now_ns);
        if (wake > deadline) {
          std::this_thread::sleep_until(deadline);
          return Action::kTimeout;
        }
        std::this_thread::sleep_until(wake);
      }
      return Action::kResume;
    }
    case abi::kReqExit:
    case abi::kReqFault:
    case abi::kReqMemLimit:
    case abi::kReqPanic:
    case abi::kReqSignal:
      return Action::kJobEnded;
    default:
      return plain_error("guest channel: unknown doorbell request " + std::to_string(value));
  }
}

}  // namespace vmfork::vmm
