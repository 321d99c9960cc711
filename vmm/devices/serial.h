// A 16550/8250 UART subset on COM1 (0x3f8..0x3ff) for the guest kernel's log: transmit holding
// register, divisor latch, IER/LCR/MCR/SCR read back, LSR always "transmitter empty". No
// interrupts, no receive. Register map: TI PC16550D datasheet, table 2.
// Thread-safety: driven by the vCPU thread only.
#pragma once

#include <cstdint>
#include <string>

namespace vmfork::vmm {

class Serial {
 public:
  /// Register state; the host resources (the log sink) are not state.
  struct State {
    uint8_t ier = 0, lcr = 0, mcr = 0, scr = 0, dll = 0, dlm = 0;
  };

  /// `max_log_bytes` bounds what is kept of the guest's log (a hostile guest cannot grow it).
  explicit Serial(size_t max_log_bytes = 64 * 1024) : max_log_(max_log_bytes) {}

  static constexpr uint16_t kBase = 0x3f8;
  static bool handles(uint16_t port) { return port >= kBase && port < kBase + 8; }

  /// Port write of one byte at `port`.
  void out(uint16_t port, uint8_t value);
  /// Port read of one byte at `port`.
  uint8_t in(uint16_t port) const;

  /// Everything the guest printed so far (truncated at max_log_bytes).
  const std::string& log() const { return log_; }
  /// Forgets the log (a reset clone starts a new one).
  void clear_log() { log_.clear(); }

  State save() const { return state_; }
  void restore(const State& s) { state_ = s; }

 private:
  State state_;
  std::string log_;
  size_t max_log_;
};

}  // namespace vmfork::vmm
