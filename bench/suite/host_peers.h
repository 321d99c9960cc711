// The two peers without a snapshot:
//   bare-process  posix_spawn (fork+exec) + waitpid of the same program on the host, no isolation
//   kvm-floor     KVM_CREATE_VM + a 2 MiB memslot + vCPU + the first KVM_RUN (one HLT) alone:
//                 the least any KVM-based restore can cost on this host; teardown timed apart
// Thread-safety: called from one thread; the bare-process throughput starts its own threads.
#pragma once

#include "bench/suite/options.h"
#include "bench/suite/stats.h"

namespace vmfork::bench {

/// Measures bare-process; a failure is recorded as the peer's reason.
PeerResult run_bare_process(const SuiteOptions& opt);

/// Measures kvm-floor; a failure (e.g. no /dev/kvm) is recorded as the peer's reason.
PeerResult run_kvm_floor(const SuiteOptions& opt);

}  // namespace vmfork::bench
