// What one `vmfork bench` run does: how many repetitions, which guest memory size, where it
// works. Plain values; thread-safety: read-only once the suite starts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace vmfork::bench {

struct SuiteOptions {
  bool quick = false;
  uint64_t mem_bytes = 256ull << 20;       // every peer's guest memory (bytes)
  std::vector<uint64_t> disk_mem_sizes;    // guest sizes (bytes) for bytes-on-disk against memory
  int latency_reps = 100;                  // restore and job latency samples per peer
  int create_reps = 5;                     // snapshot creations per peer
  int throughput_rounds = 5;               // jobs/s rounds per worker count
  double throughput_round_s = 1.0;         // seconds per round
  int memory_clones = 20;                  // live clones for private memory per clone
  int qemu_reps = 5;                       // QEMU save + restore cycles
  std::filesystem::path work_dir;          // scratch (stores, raw images); removed at the end
  std::string program = "/bin/busybox";    // the job: PROGRAM ARGS (a static ELF)
  std::vector<std::string> argv = {"busybox", "true"};
  std::function<void(const std::string&)> progress;  // one line per step (stderr)

  /// The defaults above (full run) or the --quick ones (under a minute on a 2-core host).
  static SuiteOptions defaults(bool quick);
  void say(const std::string& line) const {
    if (progress) progress(line);
  }
};

}  // namespace vmfork::bench
