// 8250 subset (see serial.h).
#include "vmm/devices/serial.h"

namespace vmfork::vmm {

namespace {
constexpr uint8_t kDlab = 0x80;
constexpr uint8_t kLsrThrEmpty = 0x20, kLsrTxEmpty = 0x40;
}  // namespace

void Serial::out(uint16_t port, uint8_t v) {
  bool dlab = state_.lcr & kDlab;
  switch (port - kBase) {
    case 0:
      if (dlab) state_.dll = v;
      else if (log_.size() < max_log_) log_.push_back(char(v));
      break;
    case 1:
      if (dlab) state_.dlm = v;
      else state_.ier = v & 0x0f;
      break;
    case 3: state_.lcr = v; break;
    case 4: state_.mcr = v & 0x1f; break;
    case 7: state_.scr = v; break;
    default: break;  // FCR and read-only registers
  }
}

uint8_t Serial::in(uint16_t port) const {
  bool dlab = state_.lcr & kDlab;
  switch (port - kBase) {
    case 0: return dlab ? state_.dll : 0;
    case 1: return dlab ? state_.dlm : state_.ier;
    case 2: return 0x01;  // IIR: no interrupt pending
    case 3: return state_.lcr;
    case 4: return state_.mcr;
    case 5: return kLsrThrEmpty | kLsrTxEmpty;
    case 6: return 0xb0;  // MSR: DCD, DSR, CTS
    case 7: return state_.scr;
    default: return 0xff;
  }
}

}  // namespace vmfork::vmm
