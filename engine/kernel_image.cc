// The embedded guest kernel (see kernel_image.h).
#include "engine/kernel_image.h"

extern "C" const uint8_t vmfork_kernel_start[];
extern "C" const uint8_t vmfork_kernel_end[];

namespace vmfork::engine {

std::span<const uint8_t> embedded_kernel() {
  return {vmfork_kernel_start, size_t(vmfork_kernel_end - vmfork_kernel_start)};
}

}  // namespace vmfork::engine
