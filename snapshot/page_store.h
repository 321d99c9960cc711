// The content-addressed page store: a directory of templates (guest memory + opaque state),
// where memory is kept as 4 KiB pages keyed by XXH3-128, zero pages not stored, identical pages
// stored once across all templates, packed into independently decompressible, checksummed zstd
// frames. Layout, formats, write ordering and reclaim: docs/snapshot-format.md.
//
//   DIR/lock                  flock: exclusive for put/remove/reclaim, shared for readers
//   DIR/packs/<id>.vfp        one pack per put: that put's new frames, an index, a footer
//   DIR/templates/<name>.vft  one manifest per template; it exists only once complete
//   DIR/images/<digest>.img   a template's memory, ready to mmap (sparse; a cache: rebuilt
//   DIR/images/<digest>.sum   from the packs when missing or damaged) and its checked digest
//
// Thread-safety: a PageStore may be used from several threads at once. Reads (load,
// read_memory, list, inspect, stats, verify) run concurrently; put, remove and reclaim take
// the exclusive flock, so they serialize with each other and with readers, in this process and
// in others.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/status.h"
#include "snapshot/format.h"
#include "snapshot/manifest.h"
#include "snapshot/pack.h"
#include "snapshot/page_hash.h"
#include "snapshot/store_fs.h"
#include "snapshot/uring_io.h"

namespace vmfork::snapshot {

/// What to store: `memory` is the guest memory image (guest physical address 0 upwards; its
/// size a non-zero multiple of kPageBytes, at most format::kMaxMemBytes); `metadata_json` is
/// kept verbatim (<= 64 KiB); `sections` are opaque state (<= 64, each <= 16 MiB, unique tags).
struct TemplateInput {
  std::string name;
  uint64_t created_unix_ns = 0;
  std::string metadata_json;
  std::vector<Section> sections;
  std::span<const uint8_t> memory;
};

/// What a put did. Pages are guest pages; bytes are file bytes.
struct PutStats {
  uint64_t pages_total = 0;    // guest pages (memory.size() / kPageBytes)
  uint64_t pages_zero = 0;     // all-zero pages (not stored)
  uint64_t pages_new = 0;      // distinct pages written to this put's pack
  uint64_t pages_deduped = 0;  // non-zero pages already stored (other templates, or earlier in this one)
  uint64_t frames_written = 0;
  uint64_t pack_bytes = 0;      // size of the new pack file (0 if every page was zero or deduped)
  uint64_t manifest_bytes = 0;  // size of the manifest file
  double hash_seconds = 0;      // zero test, XXH3-128 and dedup lookup of every page
  double compress_seconds = 0;  // zstd (on StoreOptions::threads threads)
  double write_seconds = 0;     // io_uring writes of the pack and the manifest
  double sync_seconds = 0;      // fsyncs of files and directories, renames
};

/// Progress callback: `step` ("hash", "write", "read", "verify"), `done` of `total` units
/// (pages for "hash", frames otherwise). Called on the calling thread.
using Progress = std::function<void(std::string_view step, uint64_t done, uint64_t total)>;

/// Store options. Defaults measured by bench/page_store_bench.cc (docs/snapshot-format.md,
/// "Choosing frame size and level").
struct StoreOptions {
  /// Pages per zstd frame (1..format::kMaxFramePages): bigger frames compress better, smaller
  /// ones waste less when a template needs only some of a frame's pages.
  uint32_t frame_pages = 64;
  /// zstd level for new frames (ZSTD_minCLevel()..ZSTD_maxCLevel()).
  int zstd_level = 3;
  /// io_uring requests in flight (1..4096).
  unsigned queue_depth = 32;
  /// Threads for hashing, compression and decompression, the caller's included (1..64).
  unsigned threads = 2;
  /// Mutating file operations go through this; null = the real file system.
  std::shared_ptr<StoreFs> fs;
};

/// A template's ready-to-map memory image, opened (open_image).
struct MemoryImage {
  Fd fd;                        // the image, O_RDONLY: map it MAP_PRIVATE, never write it
  std::filesystem::path path;   // DIR/images/<digest>.img
  bool built = false;           // this call wrote the image (it was missing or damaged)
  std::string rebuilt_because;  // why an existing image was not used ("" if it was, or missing)
  bool content_checked = false; // the stamp did not match, so the content digest was recomputed
  double open_us = 0;           // the whole call, a build included
  double build_us = 0;          // the build alone (0 if none)
};

/// Per-template figures from inspect(). Pages are guest pages, bytes are bytes on disk.
struct TemplateStats {
  uint64_t pages_total = 0;                // guest pages
  uint64_t pages_zero = 0;                 // not stored
  uint64_t pages_unique = 0;               // non-zero pages whose stored copy no other template references
  uint64_t pages_shared = 0;               // non-zero pages whose stored copy another template references too
  uint64_t frames = 0;                     // distinct frames the page map references
  uint64_t bytes_on_disk = 0;              // manifest + compressed bytes of those frames (shared ones counted in full)
  uint64_t bytes_stored_uncompressed = 0;  // pages in those frames * kPageBytes
  double compression_ratio = 0;            // bytes_stored_uncompressed / compressed bytes of those frames
};

/// Whole-store figures from stats().
struct StoreStats {
  uint64_t templates = 0;
  uint64_t packs = 0;          // pack files, orphans included
  uint64_t live_frames = 0;    // frames some template references
  uint64_t bytes_on_disk = 0;  // allocated bytes (st_blocks * 512) of every file in the store
};

class PageStore {
 public:
  /// Opens the store in `dir`, creating `dir` (and missing parents), its `packs/` and
  /// `templates/` folders and the lock file if missing; an existing store is not modified and
  /// nothing is read yet. Errors: bad options (named), mkdir/create failed (e.g. `dir` is a
  /// file: "mkdir DIR/packs: Not a directory").
  static Result<std::unique_ptr<PageStore>> open(const std::filesystem::path& dir, StoreOptions opts = {});

  /// Stores template `in` and makes it visible once complete and durable: new pages are
  /// written to a new pack (temp file, fsync, rename, directory fsync), then the manifest
  /// (temp file, fsync, atomic rename, directory fsync). Pages already in a frame some existing
  /// template uses are not written again. Temp files of earlier puts that were interrupted
  /// (killed) are removed first, under the exclusive lock. On failure before the manifest's rename the store is
  /// unchanged apart from orphan data that reclaim() removes (temp files and the new pack are
  /// removed best-effort); a failure of the last step (the directory fsync after the rename)
  /// leaves the template visible and complete, and is still returned. Errors: bad input (name,
  /// sizes: see TemplateInput), "put NAME: template already exists" (EEXIST), a corrupt existing
  /// manifest or pack (the live page set cannot be known), or the failing file operation
  /// ("fsync /DIR/packs/00000002.vfp.tmp: Input/output error").
  Result<PutStats> put(const TemplateInput& in, const Progress& progress = {});

  /// Reads and fully validates template `name`'s manifest, and checks that every (pack, frame,
  /// slot) of its page map exists in a pack carrying the recorded nonce. Page data is not read.
  /// Errors: bad name, missing template, corrupt or missing manifest/pack (path, offset, what).
  Result<Template> load(std::string_view name) const;

  /// Writes template `t`'s non-zero pages into `dst` (dst.size() == t.mem_bytes(), zeroed by the
  /// caller; zero pages are not touched). Frames are read with io_uring and decompressed on
  /// StoreOptions::threads threads; every frame checksum and every page's XXH3-128 is checked.
  /// On error `dst` holds unspecified bytes. Errors: size mismatch, missing/corrupt pack or
  /// frame (path, offset, expected).
  Status read_memory(const Template& t, std::span<uint8_t> dst, const Progress& progress = {}) const;

  /// Template `t`'s memory as a file any process can mmap MAP_PRIVATE: DIR/images/<t.digest()>.img,
  /// t.mem_bytes() long, zero pages as holes. Trusted only if its side file DIR/images/<digest>.sum
  /// names this template digest and size and its verified stamp (device, inode, size, mtime,
  /// ctime in ns) matches the open file; on a stamp mismatch the content digest (XXH3-128 of
  /// every non-zero page and its number) is recomputed and compared with the side file's. An
  /// image that is missing, or fails either check, is rebuilt from the packs with read_memory
  /// (every page hash checked) and written atomically (temp file, fsync, rename, directory
  /// fsync; then the side file the same way). The trust argument: docs/snapshot-format.md,
  /// "Memory images". `t` must come from load(). Errors: as read_memory, or the failing file
  /// operation ("rename DIR/images/.X.tmp to DIR/images/X.img: ...").
  Result<MemoryImage> open_image(const Template& t) const;

  /// Re-checks template `name`'s image in full, ignoring its stamp: its content digest against
  /// one computed from the packs (read_memory, every page hash checked). A damaged image is
  /// removed and rebuilt. Returns "" when the image is good or absent, else what was wrong
  /// with it (it has been rebuilt). Errors: as load and open_image.
  Result<std::string> verify_image(std::string_view name) const;

  /// Names of all templates, sorted.
  Result<std::vector<std::string>> list() const;

  /// An opaque token that changes whenever template `name` is re-created (removed and put
  /// again): its manifest file's device, inode, size and modification time (ns). Reads no data.
  /// Errors: bad name, "stat DIR/templates/NAME.vft: No such file or directory".
  Result<std::string> identity(std::string_view name) const;

  /// Figures for template `name` (see TemplateStats). Errors: as load, for any template.
  Result<TemplateStats> inspect(std::string_view name) const;

  /// Figures for the whole store. Errors: a corrupt manifest, a failed stat.
  Result<StoreStats> stats() const;

  /// Re-reads template `name` from disk, bypassing caches: manifest, pack headers, footers and
  /// indexes, every frame it references (checksum, decompression) and every page in those
  /// frames (XXH3-128 against the index). Errors name the file, byte offset and expected value.
  Status verify(std::string_view name, const Progress& progress = {}) const;

  /// Removes template `name`: unlinks its manifest (the template is gone once this is durable,
  /// directory fsynced), then reclaim(). Works on a corrupt manifest too. Errors: bad name,
  /// "remove NAME: no such template" (ENOENT), the failing file operation, reclaim's errors.
  Status remove(std::string_view name);

  /// Frees space no template uses: temp files of failed puts and image builds are unlinked;
  /// images (and side files) whose digest no manifest has are unlinked; in each pack, runs of
  /// frames no manifest references are punched out (fallocate PUNCH_HOLE|KEEP_SIZE, whole
  /// 4 KiB blocks); a pack with no live frame is unlinked. Refuses (error) if any manifest is
  /// unreadable, since its frames could not be told from dead ones.
  Status reclaim();

  /// The store directory given to open().
  const std::filesystem::path& dir() const { return dir_; }
  /// The options in use (fs filled in: never null).
  const StoreOptions& options() const { return opts_; }

 private:
  PageStore(std::filesystem::path dir, StoreOptions opts);

  struct OpenPack {
    uint32_t id = 0;
    std::filesystem::path path;
    Fd fd;
    std::shared_ptr<const PackIndex> index;
  };

  std::filesystem::path manifest_path(std::string_view name) const;
  std::filesystem::path pack_path(uint32_t id) const;
  Result<Fd> lock(bool exclusive) const;
  Result<Template> read_manifest(UringIo& io, std::string_view name) const;
  /// Every template's manifest, by name (for put, inspect, stats, reclaim).
  Result<std::vector<Template>> read_catalog(UringIo& io) const;
  /// Opens pack `id` and returns its index (cached by inode; `fresh` re-reads it). If `nonce`
  /// is given the pack's must match.
  Result<OpenPack> open_pack(UringIo& io, uint32_t id, const uint64_t* nonce, bool fresh = false) const;
  /// Checks every run of `t` against its packs' indexes; returns them (sorted by id).
  Result<std::vector<OpenPack>> open_template_packs(UringIo& io, const Template& t, bool fresh) const;
  Status reclaim_locked(UringIo& io);
  /// Writes t's image and side file (open_image's build), under the caller's shared lock.
  Status build_image(const Template& t) const;
  Status read_frames(UringIo& io, const Template& t, std::vector<OpenPack>& packs, std::span<uint8_t> dst,
                     bool verify_all, const Progress& progress) const;

  std::filesystem::path dir_;
  StoreOptions opts_;

  /// A pack index and the identity of the file it was read from.
  struct CachedIndex {
    uint64_t dev = 0, ino = 0, size = 0, mtime_ns = 0;
    std::shared_ptr<const PackIndex> index;
  };
  mutable std::mutex cache_mu_;
  mutable std::map<uint32_t, CachedIndex> cache_;
};

}  // namespace vmfork::snapshot
