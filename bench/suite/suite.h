// The `vmfork bench` suite: every peer measured in one run on this host, on the same guest kernel
// and memory size, then results.json, results.md and SVG plots written to the output directory.
// Peers: vmfork, firecracker-style, naive (bench/suite/vm_peers.h), bare-process and kvm-floor
// (host_peers.h), qemu (qemu_peer.h). A peer that cannot run here carries its reason in the
// results instead of figures. Thread-safety: one suite at a time per process (it measures this
// process's private memory).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "bench/suite/options.h"
#include "common/status.h"

namespace vmfork::bench {

/// Runs the suite and writes `out_dir`/results.json, results.md and *.svg; returns the results
/// document. `opt.work_dir` is created and removed. Errors: vmfork's own peer could not run
/// (no /dev/kvm, ...), or an output file could not be written.
Result<nlohmann::json> run_suite(const SuiteOptions& opt, const std::filesystem::path& out_dir);

}  // namespace vmfork::bench
