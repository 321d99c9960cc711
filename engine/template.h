// Template creation: boot the guest kernel once, run it to a freeze point, capture its complete
// state, and put it into the page store. The path of `vmfork template create`
// (docs/architecture.md). Freeze points:
//   kernel-ready : no PROGRAM. The kernel has initialized and rings kReqReady; a clone is later
//                  given its program, arguments, entropy and clock there.
//   stdin-wait   : with a PROGRAM. The kernel starts it and the template is taken the moment it
//                  first waits for stdin with none left; a clone only feeds it its input.
//   runtime      : with a PROGRAM (a runtime such as --runtime python3's runner) that does its
//                  start-up and then opens /dev/vmfork/job (kReqJob); a clone is resumed there
//                  with its own argv, environment, working directory and files.
// Thread-safety: each call uses its own VM; calls may run concurrently (the store serializes
// its own writes).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/job_files.h"
#include "engine/snapshot_state.h"
#include "rootfs/store.h"
#include "snapshot/page_store.h"
#include "vmm/accel.h"
#include "vmm/machine.h"

namespace vmfork::engine {

enum class FreezePoint { kKernelReady, kStdinWait, kRuntime };

/// "kernel-ready", "stdin-wait" or "runtime".
const char* freeze_point_name(FreezePoint p);

struct TemplateSpec {
  std::string name;                    // store name: [A-Za-z0-9._-]{1,64}
  uint64_t mem_bytes = 256ull << 20;   // guest memory, rounded up to 2 MiB, at least 32 MiB
  vmm::AccelRequest accel = vmm::AccelRequest::kAuto;
  std::string program;                 // empty: freeze at kernel-ready
  std::vector<std::string> argv;       // argv[0] included
  std::vector<std::string> env;
  std::chrono::nanoseconds timeout = std::chrono::seconds(60);  // boot to freeze point
  uint64_t stack_bytes = 8ull << 20;
  uint64_t max_output = 64ull << 20;   // what the program may print before it freezes
  bool verbose = false;                // guest kernel logs on the serial console
  bool irqchip = false;                // give the VM an in-kernel irqchip + PIT (saved too)
  // Root file system (rootfs/store.h ImageInfo): PROGRAM is then a path in it.
  std::string rootfs_path, rootfs_hash, rootfs_name;
  uint64_t rootfs_bytes = 0;
  bool wait_for_job = false;           // freeze when PROGRAM opens /dev/vmfork/job (runtime)
  std::string runtime;                 // recorded in the metadata ("python3")
  JobFiles files;                      // placed before PROGRAM starts (a runtime's runner)
};

/// A guest paused at its freeze point, state captured, not yet stored.
struct Frozen {
  std::unique_ptr<vmm::Machine> machine;
  FrozenState state;
  FreezePoint point = FreezePoint::kKernelReady;
  vmm::Accel accel = vmm::Accel::kNative;
  std::string metadata_json;          // TemplateMeta as JSON (engine/template_meta.h)
  std::string output;                 // stdout + stderr the program wrote before freezing
  double boot_us = 0;                 // VM creation to freeze point
  double save_us = 0;                 // Machine::save (state ioctls)
};

/// Makes `spec` a template of the runtime vmfork ships as `name` (engine/runtimes.h): its program,
/// the runner's command line, the default environment and the runner file, frozen at the
/// runtime freeze point. The root file system is set apart (use_rootfs). Errors: unknown name.
Status use_runtime(TemplateSpec* spec, std::string_view name);

/// Gives `spec` the root file system image `img` (path, hash, name and size recorded).
void use_rootfs(TemplateSpec* spec, const rootfs::ImageInfo& img);

/// Boots and runs `spec` to its freeze point and captures the state. Errors: bad spec or
/// program, no /dev/kvm, or the guest never reached the freeze point (the program exited,
/// crashed or timed out first; the message says which and includes its output).
Result<Frozen> freeze_template(const TemplateSpec& spec);

struct TemplateCreated {
  snapshot::PutStats put;
  FreezePoint point = FreezePoint::kKernelReady;
  std::string accel;
  double boot_us = 0, save_us = 0, store_us = 0, total_us = 0;
  double image_us = 0;       // building the mapped memory image (PageStore::open_image)
  std::string image_error;   // why it could not be built ("" if it was); clones build it later
  std::string output;
};

/// freeze_template, then PageStore::put of its memory and state, then the store's mapped image
/// of that memory (PageStore::open_image; a failure there is reported in image_error, not
/// returned: the template is complete and clones build the image when they first need it).
/// `progress` gets the store's steps. Errors: as freeze_template, or the store's (name taken, I/O failure: the store is
/// left as it was).
Result<TemplateCreated> create_template(const TemplateSpec& spec, snapshot::PageStore& store,
                                        const snapshot::Progress& progress = {});

}  // namespace vmfork::engine
