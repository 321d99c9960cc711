// A template made ready for cloning inside this process: its manifest validated, its state
// sections decoded, its metadata checked against this host, and its memory materialized once
// into a sealed memfd from the page store (io_uring reads, frames decompressed on two threads,
// every page's hash checked; zero pages are never written, so they stay holes: no disk or
// memory until a clone reads one, which then maps one shared zero-filled shmem page). Every clone maps that memfd MAP_PRIVATE: clones share all pages until they write
// one, and no clone can change the template (F_SEAL_WRITE, memfd_create(2), fcntl(2) "File
// Sealing").
// Thread-safety: immutable after load(); share it between threads with shared_ptr.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/fd.h"
#include "common/status.h"
#include "engine/snapshot_state.h"
#include "engine/template_meta.h"
#include "snapshot/page_store.h"
#include "vmm/rootfs_image.h"

namespace vmfork::engine {

class TemplateImage {
 public:
  /// Validates template `name` without side effects, then materializes its memory. Errors: the
  /// store's (missing template, corrupt manifest or pack: file, offset, what was expected), a bad
  /// section or metadata, a host that cannot run it, or memfd_create/ftruncate/mmap/fcntl.
  static Result<std::shared_ptr<const TemplateImage>> load(const snapshot::PageStore& store,
                                                            std::string_view name);

  const std::string& name() const { return name_; }
  const TemplateMeta& meta() const { return meta_; }
  const FrozenState& state() const { return state_; }
  /// The sealed memfd of guest memory (mem_bytes() long); map it with GuestMemory::map_private.
  int memfd() const { return memfd_.get(); }
  uint64_t mem_bytes() const { return meta_.mem_bytes; }
  /// Non-zero guest pages (those the memfd actually holds).
  uint64_t nonzero_pages() const { return nonzero_pages_; }
  /// The root file system image the template was made with (its hash checked at load), or null.
  const std::shared_ptr<const vmm::RootfsImage>& rootfs() const { return rootfs_; }
  double validate_us() const { return validate_us_; }
  double materialize_us() const { return materialize_us_; }

 private:
  std::string name_;
  TemplateMeta meta_;
  FrozenState state_;
  Fd memfd_;
  std::shared_ptr<const vmm::RootfsImage> rootfs_;
  uint64_t nonzero_pages_ = 0;
  double validate_us_ = 0, materialize_us_ = 0;
};

}  // namespace vmfork::engine
