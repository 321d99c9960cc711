// Container images into a staging directory: an OCI image layout (image-spec "Image Layout":
// oci-layout, index.json -> manifest -> layers) or a `docker save` tarball (manifest.json ->
// Layers), layers applied in order with whiteouts (image-spec "Layer" / "Whiteouts").
// Thread-safety: one call per staging directory at a time.
#pragma once

#include <filesystem>

#include "common/status.h"
#include "rootfs/staging.h"

namespace vmfork::rootfs {

/// Applies one layer tarball (plain, gzip, zstd or xz; ustar/pax/GNU) onto `root`: entries are
/// created with their modes (owners are not kept: the image is all-root), `.wh.NAME` deletes
/// NAME from the layers below, `.wh..wh..opq` empties its directory of what the layers below put
/// there. Every path is confined to `root`: an entry with a `..` component is refused, a
/// leading `/` is dropped, and symlinks met on the way resolve as if `root` were `/`
/// (openat2 RESOLVE_IN_ROOT), so no entry can reach outside. Sockets, FIFOs and device nodes
/// are skipped. Each created entry is charged to `budget`. Errors name the layer and the entry.
Status apply_layer(const std::filesystem::path& layer, const std::filesystem::path& root, Budget& budget,
                   bool whiteouts = true);

/// Imports the image at `src` (an OCI layout directory, a directory holding an unpacked
/// `docker save`, or a tar file of either) into `root`. `work` is an empty scratch directory
/// (a tar file is unpacked there first). Of an index naming several images, the linux/amd64
/// one (else the first) is taken. Layer digests are not re-verified.
Status import_oci(const std::filesystem::path& src, const std::filesystem::path& work,
                  const std::filesystem::path& root, Budget& budget);

}  // namespace vmfork::rootfs
