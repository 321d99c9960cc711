// The files of the rootfs store and the crash-safe way they are written (temp file, fsync,
// rename, fsync of the directory: the order snapshot/page_store_put.cc follows), shared by the
// catalog (store.cc) and the image builder (build.cc). Thread-safety: pure functions.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/fd.h"
#include "common/status.h"
#include "rootfs/store.h"

namespace vmfork::rootfs::files {

inline std::filesystem::path images_dir(const std::filesystem::path& d) { return d / "images"; }
inline std::filesystem::path names_dir(const std::filesystem::path& d) { return d / "names"; }
inline std::filesystem::path tmp_dir(const std::filesystem::path& d) { return d / "tmp"; }
inline std::filesystem::path image_path(const std::filesystem::path& d, std::string_view hash) {
  return images_dir(d) / (std::string(hash) + ".erofs");
}
inline std::filesystem::path name_path(const std::filesystem::path& d, std::string_view name) {
  return names_dir(d) / (std::string(name) + ".json");
}

/// The exclusive flock on DIR/lock, held while the returned Fd lives.
Result<Fd> lock_exclusive(const std::filesystem::path& dir);

/// fsync(2) of a directory, making renames and unlinks in it durable.
Status fsync_dir(const std::filesystem::path& dir);

/// Writes `bytes` to `tmp`, fsyncs it, renames it to `final` (replacing it) and fsyncs
/// final's directory.
Status write_durably(const std::filesystem::path& tmp, const std::filesystem::path& final, std::string_view bytes);

/// The name file's JSON for `info` (hash, source, created_unix, files, bytes).
std::string name_json(const ImageInfo& info);

/// Reads and validates DIR/names/<name>.json (hash must be 32 hex digits); error "rootfs NAME:
/// not found" (ENOENT) when missing.
Result<ImageInfo> read_name(const std::filesystem::path& dir, std::string_view name);

/// XXH3-128 of the file's bytes as 32 lowercase hex digits (canonical big-endian form); the
/// file's size in `*bytes`.
Result<std::string> hash_file(const std::filesystem::path& path, uint64_t* bytes);

}  // namespace vmfork::rootfs::files
