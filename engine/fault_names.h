// Names for x86 exception vectors (Intel SDM vol. 3A, table 6-1) and Linux signals (signal(7)).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

namespace vmfork::engine {

/// "#PF", "#GP", ... or "vector N".
std::string exception_name(uint64_t vector);
/// "SIGABRT", "SIGSEGV", ... or "signal N".
std::string signal_name(int sig);

}  // namespace vmfork::engine
