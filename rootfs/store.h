// The root file system image store: read-only EROFS images, content-addressed by XXH3-128 and
// found by name, in the rootfs/ part of the store directory (docs/rootfs.md):
//
//   STORE/rootfs/lock                 flock: exclusive while a name or image is added or removed
//   STORE/rootfs/images/<hash>.erofs  one image per distinct content (mode 0444)
//   STORE/rootfs/names/<name>.json    {"hash", "source", "created_unix", "files", "bytes"}
//   STORE/rootfs/tmp/<id>/            one create in progress (staging tree, image); <id>.lock
//                                     is flocked while it runs, so open() removes only dead ones
//
// Thread-safety: a Store is a plain value (its directory); any number of Stores, in this
// process and others, may use one directory at once: creates build in private temp dirs and
// commit under the exclusive flock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "rootfs/elf_deps.h"
#include "rootfs/staging.h"

namespace vmfork::rootfs {

/// One stored image.
struct ImageInfo {
  std::string name;               // user-given name ([A-Za-z0-9._-], 1..64 chars, not starting with '.')
  std::string hash;               // 32 hex chars: XXH3-128 of the image file's bytes (libxxhash)
  std::filesystem::path path;     // absolute path of the read-only EROFS image file in the store
  uint64_t bytes = 0;             // image file size
  uint64_t files = 0;             // regular files + dirs + symlinks in it
  std::string source;             // "host: /usr/bin/python3 ...", "dir: /x", "oci: /y"
  int64_t created_unix = 0;       // seconds since the epoch, when this name was made
};

class Store {
 public:
  /// The rootfs part of the store directory `store_dir` (the same directory as the page store:
  /// cli's store_dir()); creates STORE/rootfs/ and its subdirectories if missing; removes stale
  /// temp files of interrupted creates (those whose <id>.lock no process holds).
  static Result<Store> open(const std::filesystem::path& store_dir, Limits limits = {});

  /// An image of host files and directories (recursively), each at its own absolute path, plus
  /// the shared-library closure of every ELF file among them (library_closure), plus the
  /// directories every image has (Staging::finish). Error "rootfs NAME: already exists" (EEXIST)
  /// when the name is taken.
  Result<ImageInfo> create_from_host(std::string_view name, const std::vector<std::string>& paths);
  /// An image of the whole tree under `dir` (its root becomes the image's /).
  Result<ImageInfo> create_from_dir(std::string_view name, const std::filesystem::path& dir);
  /// An image of an OCI image layout directory or `docker save` tarball (oci.h).
  Result<ImageInfo> create_from_oci(std::string_view name, const std::filesystem::path& oci);

  /// The image called `name`; error "rootfs NAME: not found" (ENOENT).
  Result<ImageInfo> find(std::string_view name) const;
  /// Every named image, sorted by name.
  Result<std::vector<ImageInfo>> list() const;
  /// Removes the name; the image file is unlinked when no other name refers to it (and so is
  /// any image a crashed create left without a name).
  Status remove(std::string_view name);

  /// Re-reads image `name` and checks its bytes against the name's hash and size. Errors:
  /// "rootfs NAME: not found", "rootfs NAME: IMAGE: XXH3-128 H1, expected H2" (or a size
  /// mismatch), the failing read.
  Status verify(std::string_view name) const;

  /// Removes, under the exclusive lock, image files no name refers to (left by an interrupted
  /// remove) and temp dirs of dead creates. Returns the bytes freed. Errors: an unreadable
  /// name file (nothing is removed then: its image could not be told from an orphan).
  Result<uint64_t> gc();

  /// The automatic image of a dynamically linked host program: the program + its shared-library
  /// closure, cached in the store (name "auto-<16 hex of XXH3-64 of the program's canonical
  /// path, size and mtime>"); built on first use, reused after.
  Result<ImageInfo> ensure_program_image(const std::filesystem::path& program);

  /// The stored image with content hash `hash` (32 hex digits), whatever its names: for a
  /// template that recorded the hash of the image it was made with. Error "rootfs image HASH:
  /// not found" (ENOENT).
  Result<std::filesystem::path> image_path(std::string_view hash) const;

  /// STORE/rootfs.
  const std::filesystem::path& dir() const { return dir_; }

 private:
  Store(std::filesystem::path dir, Limits limits) : dir_(std::move(dir)), limits_(limits) {}
  template <typename Fill>
  Result<ImageInfo> build(std::string_view name, std::string source, Fill fill);

  std::filesystem::path dir_;
  Limits limits_;
};

/// Re-reads the image file and checks that its XXH3-128 is `hash`; error "rootfs image PATH:
/// content hash H, want HASH" when it was changed. Reads the whole file (~20 ms per 100 MiB
/// from the page cache).
Status verify_image(const std::filesystem::path& image, std::string_view hash);

/// Checks an image name: [A-Za-z0-9._-], 1..64 characters, not starting with '.'.
Status check_image_name(std::string_view name);

}  // namespace vmfork::rootfs
