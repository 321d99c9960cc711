// Job files: host files placed in the job's writable layer before it starts, its working
// directory, and files it wrote that come back at its end. Encoded as the bundle the guest
// pulls through the files window and decoded from the records it sends back
// (guest-kernel/abi/vmfork_abi.h "Job files", docs/guest-abi.md). Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace vmfork::engine {

/// One file to place: `path` absolute in the guest, `data` its bytes, `mode` permission bits.
struct JobFile {
  std::string path;
  std::string data;
  uint32_t mode = 0644;
};

/// What a job gets and gives back besides argv, env and stdio.
struct JobFiles {
  std::vector<JobFile> files;
  std::string workdir;                // absolute; empty: "/" (or the template's)
  std::vector<std::string> collect;   // absolute guest paths returned at the end of the job
  bool empty() const { return files.empty() && workdir.empty() && collect.empty(); }
};

/// A file the job left at a collected path.
struct CollectedFile {
  std::string path;
  std::string data;
  uint32_t mode = 0;
  bool missing = false;   // not a readable regular file at the end of the job
  bool truncated = false; // cut at the output limit
};

/// The bundle for `f` (FilesHeader + records). Errors: a path that is not absolute, contains
/// NUL or is longer than 4095 bytes; more than 4096 entries.
Result<std::vector<uint8_t>> encode_job_files(const JobFiles& f);

/// Reassembles collected files from the records the guest sends with kReqCollect, keeping at
/// most `max_bytes` of data in all (the rest is dropped and the file marked truncated).
class CollectDecoder {
 public:
  explicit CollectDecoder(uint64_t max_bytes) : room_(max_bytes) {}
  /// Takes one window's worth of records. Errors: a record that breaks the format (bounds,
  /// chunk out of order, a path the job was not asked for is accepted but capped like any other).
  Status take(std::span<const uint8_t> window);
  std::vector<CollectedFile>& files() { return files_; }

 private:
  std::vector<CollectedFile> files_;
  uint64_t room_;
};

}  // namespace vmfork::engine
