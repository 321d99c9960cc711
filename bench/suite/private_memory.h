// This process's private memory, read from /proc/self/smaps_rollup: the one reader that the bench
// suite (vm_peers.cc), pool_bench and python_bench share. Header-only, so a bench binary needs
// no link to the suite library. Thread-safety: reentrant (each call opens its own stream).
#pragma once

#include <fstream>
#include <string>

namespace vmfork::bench {

/// Private_Clean + Private_Dirty of this process, in KiB (proc(5), /proc/pid/smaps_rollup, whose
/// fields are "Name:  <value> kB"). 0 if the file cannot be read. Pages of a clone that it has
/// not written are the template file's shared page cache and do not count.
inline double private_kib() {
  std::ifstream f("/proc/self/smaps_rollup");
  std::string key;
  double kib = 0, total = 0;
  while (f >> key) {
    if (key == "Private_Clean:" || key == "Private_Dirty:") {
      f >> kib;
      total += kib;
    }
  }
  return total;
}

}  // namespace vmfork::bench
