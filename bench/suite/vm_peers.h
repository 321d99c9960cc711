// The three peers that restore the same template of the vmfork guest kernel (kernel-ready, the
// same memory size) and run the same job in it, differing only in where guest memory comes from:
//   vmfork             the page store's template materialized once into a sealed memfd, mapped
//                      MAP_PRIVATE per clone (engine/restore.h)
//   firecracker-style  the whole raw memory image in one regular file, mapped MAP_PRIVATE per
//                      clone; no deduplication or compression
//   naive              the raw image read (pread) into fresh anonymous memory per clone
// VM, vCPU and device state are restored by the same engine call for all three.
// Thread-safety: run_vm_peers is called from one thread; it starts worker threads itself.
#pragma once

#include <vector>

#include "bench/suite/options.h"
#include "bench/suite/stats.h"
#include "common/status.h"

namespace vmfork::bench {

/// Measures the three peers above. Errors: the vmfork template could not be made or restored
/// at all (no /dev/kvm, ...); a peer that fails later carries its reason instead.
Result<std::vector<PeerResult>> run_vm_peers(const SuiteOptions& opt);

/// Bytes on disk of one template of a `mem_bytes` guest: the page store's and a raw image's
/// (dense, as a Firecracker snapshot writes it). Errors: template creation or I/O.
struct DiskPoint {
  uint64_t mem_bytes = 0, vmfork_bytes = 0, raw_bytes = 0;
};
Result<DiskPoint> disk_point(const SuiteOptions& opt, uint64_t mem_bytes);

}  // namespace vmfork::bench
