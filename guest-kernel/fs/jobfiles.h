// Job files in the guest: pulls the VMM's bundle through the files window (kReqFiles) into the
// writable layer before the job starts (files, working directory, the paths to collect), and
// at the end of the job sends the collected files back (kReqCollect). Formats:
// abi/vmfork_abi.h "Job files". Single vCPU: no locking.
#pragma once

#include <stdint.h>

namespace k::jobfiles {

/// Installs BootInfo.files_bytes of bundle (nothing when 0). Errors end the job as a kernel
/// panic with the reason (a malformed bundle is the VMM's bug); a full guest memory ends it
/// with memory-limit.
void install();

/// Sends every collected path's file back to the VMM (a kFileMissing record for one that is
/// not a readable regular file). Output buffers must have been flushed.
void collect();

}  // namespace k::jobfiles
