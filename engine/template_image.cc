// Template images (see template_image.h).
#include "engine/template_image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>

#include "engine/guest_job.h"
#include "rootfs/store.h"

namespace vmfork::engine {

using Clock = std::chrono::steady_clock;

Result<std::shared_ptr<const TemplateImage>> TemplateImage::load(const snapshot::PageStore& store,
                                                                  std::string_view name, MemorySource source) {
  const auto t_start = Clock::now();
  auto img = std::make_shared<TemplateImage>();
  img->name_ = std::string(name);

  // ---- validate, without side effects
  VF_ASSIGN(snapshot::Template t, store.load(name));
  VF_ASSIGN(img->meta_, meta_from_json(t.metadata_json()));
  VF_ASSIGN(img->state_, decode_state(t));
  const std::string what = "template " + img->name_;
  if (img->meta_.mem_bytes != t.mem_bytes())
    return plain_error(what + ": metadata says " + std::to_string(img->meta_.mem_bytes) +
                       " bytes of memory, the page map " + std::to_string(t.mem_bytes()));
  if (t.mem_bytes() % (2u << 20) || t.mem_bytes() < kMinGuestBytes)
    return plain_error(what + ": memory of " + std::to_string(t.mem_bytes()) +
                       " bytes is not a multiple of 2 MiB of at least " + std::to_string(kMinGuestBytes >> 20) + " MiB");
  const bool chip = img->meta_.irqchip;
  if (chip != img->state_.machine.vm.irqchip.has_value() || chip != img->state_.machine.vcpu.lapic.has_value())
    return plain_error(what + ": irqchip in metadata and state sections disagree");
  if (img->state_.channel.output_limited) return plain_error(what + ": frozen after its output limit was hit");
  VF_ASSIGN(auto kvm, shared_kvm());
  VF_ASSIGN(auto probe, vmm::probe_accel(*kvm));
  VF_TRY(check_restorable(img->meta_, probe));
  if (!img->meta_.rootfs_hash.empty()) {
    // The image every clone maps must be the one the template was frozen with: find it by its
    // hash and hash it again (rootfs::verify_image) before any clone uses it.
    VF_ASSIGN(auto rstore, rootfs::Store::open(store.dir()));
    VF_ASSIGN(auto path, rstore.image_path(img->meta_.rootfs_hash));
    VF_TRY(rootfs::verify_image(path, img->meta_.rootfs_hash));
    VF_ASSIGN(img->rootfs_, vmm::RootfsImage::open(path.string(), img->meta_.rootfs_bytes));
  }
  img->nonzero_pages_ = t.nonzero_pages();
  img->validate_us_ = us_since(t_start);

  // ---- the store's image, or else a memfd of our own; zero pages stay holes either way
  const auto t_mem = Clock::now();
  auto mapped = source == MemorySource::kStoreImage ? store.open_image(t)
                                                   : Result<snapshot::MemoryImage>(plain_error("memfd requested"));
  if (mapped.ok()) {
    img->memory_fd_ = std::move(mapped->fd);
    img->mapped_image_ = true;
    img->image_built_ = mapped->built;
    img->image_rebuilt_because_ = std::move(mapped->rebuilt_because);
    img->materialize_us_ = us_since(t_mem);
    return std::shared_ptr<const TemplateImage>(std::move(img));
  }
  img->image_error_ = mapped.error().message();
  img->memory_fd_ = Fd(memfd_create(("vmfork-template:" + img->name_).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!img->memory_fd_.valid()) return errno_error("memfd_create for " + what);
  if (ftruncate(img->memory_fd(), off_t(t.mem_bytes())) < 0) return errno_error("ftruncate of the memfd of " + what);
  void* p = mmap(nullptr, t.mem_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, img->memory_fd(), 0);
  if (p == MAP_FAILED) return errno_error("mmap of the memfd of " + what);
  Status read = store.read_memory(t, std::span<uint8_t>(static_cast<uint8_t*>(p), t.mem_bytes()));
  munmap(p, t.mem_bytes());
  VF_TRY(read);
  // Freeze the file: clones map it MAP_PRIVATE (still allowed); nothing can write it again.
  if (fcntl(img->memory_fd(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
    return errno_error("fcntl F_ADD_SEALS on the memfd of " + what);
  img->materialize_us_ = us_since(t_mem);
  return std::shared_ptr<const TemplateImage>(std::move(img));
}

}  // namespace vmfork::engine
