// Runs Debian's mkfs.erofs (erofs-utils) on a staging directory, with the options that make the
// image deterministic and readable by the guest kernel (docs/rootfs.md "Image format").
// Thread-safety: may be called from several threads (each call spawns its own process).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace vmfork::rootfs {

/// The fixed UUID every image carries (-U), so equal trees give equal bytes.
inline constexpr const char* kImageUuid = "766d666f-726b-726f-6f74-667300000001";

/// The mkfs.erofs arguments for `image` from `dir`: uncompressed (no -z: file data stays
/// 4096-byte block-aligned), no extended attributes (-x-1), each file's own mtime
/// (--preserve-mtime: CPython checks a .pyc against its source's mtime), the fixed UUID (-U),
/// every file owned by root (--all-root). The superblock's build time is then set to 0 by
/// normalize_superblock, so equal trees (equal mtimes) give equal bytes.
std::vector<std::string> mkfs_erofs_args(const std::filesystem::path& image, const std::filesystem::path& dir);

/// Sets the superblock's build time (EROFS superblock bytes 24..35 at offset 1024: build_time,
/// build_time_nsec) to 0 and recomputes its CRC32C (feature_compat bit 0, SB_CHKSUM: crc32c with
/// seed ~0 and no final inversion over the superblock block from offset 1024, the checksum field
/// zeroed; Linux fs/erofs/super.c erofs_superblock_csum_verify). Errors: I/O, a bad magic, a
/// stored checksum that does not verify before the change.
Status normalize_superblock(const std::filesystem::path& image);

/// Finds mkfs.erofs on $PATH, then in /usr/sbin, /sbin, /usr/bin; error when missing.
Result<std::string> find_mkfs_erofs();

/// Runs mkfs.erofs (posix_spawn; stdout discarded, stderr captured, at most 8 KiB kept) and waits
/// for it until `deadline` has passed, then kills it (SIGKILL). Error "mkfs.erofs ...: exit
/// status N: <stderr>" or "...: timed out after N s".
Status run_mkfs_erofs(const std::filesystem::path& image, const std::filesystem::path& dir,
                      std::chrono::milliseconds deadline);

}  // namespace vmfork::rootfs
