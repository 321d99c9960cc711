// The guest kernel ELF built with vmfork and embedded in its binary (kernel_blob.S), so that
// build/vmfork runs without any other file. Thread-safety: immutable data.
#pragma once

#include <cstdint>
#include <span>

namespace vmfork::engine {

/// The embedded guest kernel ELF image.
std::span<const uint8_t> embedded_kernel();

}  // namespace vmfork::engine
