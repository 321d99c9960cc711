// Host side of the host<->guest channel (guest-kernel/abi/vmfork_abi.h, docs/guest-abi.md):
// drains the guest's stdout/stderr buffers into sinks, refills its stdin buffer from a source,
// and turns doorbell requests into actions for the run loop. All guest-written lengths are
// bounds-checked: a hostile guest gets a protocol error, never an out-of-range access.
// Thread-safety: driven by the vCPU thread while the vCPU is stopped in an exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "common/status.h"
#include "guest-kernel/abi/vmfork_abi.h"
#include "vmm/guest_memory.h"

namespace vmfork::vmm {

using Clock = std::chrono::steady_clock;

/// Where a job's stdin comes from.
class InputSource {
 public:
  struct Chunk {
    size_t bytes = 0;
    bool eof = false;
    bool timed_out = false;
  };
  virtual ~InputSource() = default;
  /// Reads up to `cap` bytes, waiting at most until `deadline`. `nonblocking` returns at once
  /// with whatever is ready (used to preload input before the guest starts).
  virtual Result<Chunk> read(uint8_t* dst, size_t cap, Clock::time_point deadline, bool nonblocking) = 0;
};

/// Input from a file descriptor (vmfork's own stdin), waited on with poll(2).
class FdInput : public InputSource {
 public:
  explicit FdInput(int fd) : fd_(fd) {}
  Result<Chunk> read(uint8_t* dst, size_t cap, Clock::time_point deadline, bool nonblocking) override;

 private:
  int fd_;
};

/// Input from a byte string held in memory.
class StringInput : public InputSource {
 public:
  explicit StringInput(std::string data) : data_(std::move(data)) {}
  Result<Chunk> read(uint8_t* dst, size_t cap, Clock::time_point deadline, bool nonblocking) override;

 private:
  std::string data_;
  size_t pos_ = 0;
};

/// Receives a job's output bytes as they are drained.
using OutputSink = std::function<void(std::span<const uint8_t>)>;

class ChannelDevice {
 public:
  /// Counters that survive a snapshot of the device; sinks and sources are not state.
  struct State {
    uint64_t stdout_bytes = 0;  // delivered to the stdout sink so far
    uint64_t stderr_bytes = 0;
    bool output_limited = false;
  };

  /// What the run loop should do after a doorbell.
  enum class Action {
    kResume,       // let the vCPU continue
    kJobEnded,     // the guest reported the end of the job (the doorbell value says how)
    kOutputLimit,  // the job wrote more than max_output bytes
    kTimeout,      // the deadline passed while waiting for stdin or sleeping
    kFreezePoint,  // the guest is where a template is frozen: kernel ready with no job
                   // (kReqReady), or, with freeze_at_stdin_wait(), the job waiting for stdin
    kTicks,        // the guest asked for preemption ticks (Channel.tick_ns); then resume
  };

  /// `max_output` bounds stdout + stderr bytes (the rest is dropped and the job stopped).
  ChannelDevice(GuestMemory& mem, InputSource* in, OutputSink out, OutputSink err, uint64_t max_output);

  /// Resets the shared page and loads whatever stdin is ready without blocking.
  Status start();
  /// Handles a doorbell OUT of `value`. Errors: the guest broke the protocol (bad lengths).
  Result<Action> on_doorbell(uint32_t value, Clock::time_point deadline);
  /// Drains the guest's output buffers into the sinks, enforcing max_output.
  Status drain_output();
  /// When on, a kReqStdin that finds no unread input stops the run with kFreezePoint instead of
  /// waiting for the source: the warm-runtime point of `vmfork template create -- PROGRAM`.
  void freeze_at_stdin_wait(bool on) { freeze_at_stdin_ = on; }
  /// When on, kReqJob (a runtime asking for its job) stops the run with kFreezePoint; when off
  /// (a cold run, or a clone given its job) the guest is resumed at once.
  void freeze_at_job(bool on) { freeze_at_job_ = on; }
  /// The job-files bundle the guest pulls with kReqFiles (engine/job_files.h); it must outlive
  /// the run. Empty: no files.
  void set_files(std::span<const uint8_t> bundle) { files_ = bundle; }
  /// Receives each window of collected-file records (kReqCollect); an error ends the run as a
  /// guest protocol error. Unset: the records are dropped.
  void set_collect_sink(std::function<Status(std::span<const uint8_t>)> sink) { collect_ = std::move(sink); }
  /// Answers the kReqStdin a restored guest was frozen in: fills the stdin buffer from the
  /// source (waiting until `deadline` for the first bytes) before the vCPU resumes.
  Result<Action> answer_stdin_wait(Clock::time_point deadline);

  /// The guest's channel page (read after kJobEnded for exit status and fault details).
  const abi::Channel& page() const { return *chan_; }
  /// The shared page itself, for the run loop's tick injection (guest-writable: validate).
  abi::Channel* mutable_page() { return chan_; }
  bool output_limited() const { return state_.output_limited; }

  State save() const { return state_; }
  void restore(const State& s) { state_ = s; }

 private:
  Status deliver(uint64_t gpa, uint64_t cap, uint64_t* len, const OutputSink& sink, uint64_t* count);
  Result<Action> refill_stdin(Clock::time_point deadline, bool nonblocking);

  GuestMemory& mem_;
  abi::Channel* chan_;
  InputSource* in_;
  OutputSink out_, err_;
  uint64_t max_output_;
  bool freeze_at_stdin_ = false;
  bool freeze_at_job_ = false;
  std::span<const uint8_t> files_;
  std::function<Status(std::span<const uint8_t>)> collect_;
  State state_;
};

}  // namespace vmfork::vmm
