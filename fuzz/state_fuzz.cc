// libFuzzer target for the state-section decoder (engine/snapshot_state.cc): the first byte
// picks the section (vCPU, VM, serial, channel), the rest is its bytes. Decoding must never
// crash or read out of bounds; a section that decodes must encode to bytes that decode to the
// same bytes again. Built and run by fuzz/run.sh.
#include <stddef.h>
#include <stdint.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "engine/snapshot_state.h"

using namespace vmfork;

namespace {

template <typename Decode, typename Encode>
void round_trip(std::span<const uint8_t> b, Decode decode, Encode encode) {
  auto s = decode(b);
  if (!s.ok()) return;
  auto again = encode(*s);
  auto back = decode(again);
  if (!back.ok() || encode(*back) != again) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // A copy of exactly the section's bytes, so that ASan catches any read past them.
  const size_t n = size - 1;
  std::unique_ptr<uint8_t[]> copy(new uint8_t[n ? n : 1]);
  if (n) std::memcpy(copy.get(), data + 1, n);
  std::span<const uint8_t> b(copy.get(), n);
  switch (data[0] % 4) {
    case 0: round_trip(b, engine::decode_vcpu, engine::encode_vcpu); break;
    case 1: round_trip(b, engine::decode_vm, engine::encode_vm); break;
    case 2: round_trip(b, engine::decode_serial, engine::encode_serial); break;
    default: round_trip(b, engine::decode_channel, engine::encode_channel); break;
  }
  return 0;
}
