// A template made ready for cloning inside this process: its manifest validated, its state
// sections decoded, its metadata checked against this host, and its memory opened as the
// store's ready-to-map image (PageStore::open_image: a sparse file checked by its stamp, built
// from the packs once if missing or damaged), so no process decompresses a template that has
// an image. Every clone, in every process, maps that file MAP_PRIVATE: clones share the page
// cache's copy of each page until they write it, and a write never reaches the file (opened
// read-only). If no image can be written (read-only or full store) the memory is materialized
// into a sealed memfd instead, as before images existed (F_SEAL_WRITE, memfd_create(2)).
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

/// Where a TemplateImage's memory comes from.
enum class MemorySource {
  kStoreImage,  // the store's mapped image (the default); the memfd if no image can be had
  kMemfd,       // always decode the packs into a private sealed memfd (benchmarks compare)
};

class TemplateImage {
 public:
  /// Validates template `name` without side effects, then opens its memory (the store's image,
  /// which this call writes if it is missing or damaged; or a memfd, see MemorySource). Errors: the
  /// store's (missing template, corrupt manifest or pack: file, offset, what was expected), a bad
  /// section or metadata, a host that cannot run it, or (only when the store's image cannot be
  /// opened or built) memfd_create/ftruncate/mmap/fcntl.
  static Result<std::shared_ptr<const TemplateImage>> load(const snapshot::PageStore& store,
                                                            std::string_view name,
                                                            MemorySource source = MemorySource::kStoreImage);

  const std::string& name() const { return name_; }
  const TemplateMeta& meta() const { return meta_; }
  const FrozenState& state() const { return state_; }
  /// The file of guest memory (mem_bytes() long): the store's image opened read-only, or the
  /// sealed memfd fallback. Map it with GuestMemory::map_private.
  int memory_fd() const { return memory_fd_.get(); }
  /// True if memory_fd() is the store's image (false: the memfd fallback).
  bool mapped_image() const { return mapped_image_; }
  /// True if this load wrote the image (it was missing or damaged).
  bool image_built() const { return image_built_; }
  /// Why an existing image was rebuilt ("" if it was used as is, or was missing).
  const std::string& image_rebuilt_because() const { return image_rebuilt_because_; }
  /// Why the memfd fallback was used ("" if the image was).
  const std::string& image_error() const { return image_error_; }
  uint64_t mem_bytes() const { return meta_.mem_bytes; }
  /// Non-zero guest pages (those the memory file actually holds).
  uint64_t nonzero_pages() const { return nonzero_pages_; }
  /// The root file system image the template was made with (its hash checked at load), or null.
  const std::shared_ptr<const vmm::RootfsImage>& rootfs() const { return rootfs_; }
  double validate_us() const { return validate_us_; }
  /// Opening the image (a build included), or materializing the memfd fallback.
  double materialize_us() const { return materialize_us_; }

 private:
  std::string name_;
  TemplateMeta meta_;
  FrozenState state_;
  Fd memory_fd_;
  bool mapped_image_ = false, image_built_ = false;
  std::string image_rebuilt_because_, image_error_;
  std::shared_ptr<const vmm::RootfsImage> rootfs_;
  uint64_t nonzero_pages_ = 0;
  double validate_us_ = 0, materialize_us_ = 0;
};

}  // namespace vmfork::engine
