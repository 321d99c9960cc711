// The shared-library closure of ELF programs, resolved on the host the way ld.so(8) resolves it,
// so a root file system image can carry exactly what a dynamic program loads.
// Thread-safety: pure functions (they read the host file system only).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace vmfork::rootfs {

/// What the dynamic loader needs from one ELF file (ELF64 x86-64 only; gABI "Dynamic Section").
struct ElfDeps {
  bool elf64_x86_64 = false;  // false: not an ELF64 little-endian x86-64 file (the rest is empty)
  std::string interp;         // PT_INTERP, "" for a static file
  std::vector<std::string> needed, rpath, runpath;  // DT_NEEDED; DT_RPATH and DT_RUNPATH split at ':'
};

/// Reads the program headers and the dynamic section of `path`. A file that is not ELF (or not
/// ELF64 x86-64) gives elf64_x86_64 = false, not an error; a truncated or inconsistent ELF64
/// x86-64 file is an error naming it. Reads at most the headers and the dynamic string table.
Result<ElfDeps> read_elf_deps(const std::filesystem::path& path);

/// True if the ELF file at `path` has a PT_INTERP (is dynamically linked). Error if it cannot
/// be read or is not an ELF64 x86-64 file.
Result<bool> is_dynamic_elf(const std::filesystem::path& path);

/// The library search directories after DT_RPATH/DT_RUNPATH: those named in /etc/ld.so.conf
/// (with its `include` globs, ld.so.conf(5) as ldconfig(8) reads it), then the defaults
/// /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /lib, /usr/lib. `conf` is the file
/// to start from (tests may pass another).
std::vector<std::string> system_library_dirs(const std::filesystem::path& conf = "/etc/ld.so.conf");

/// The absolute host paths needed to reach `path` as the dynamic loader does: `path` itself,
/// and every symbolic link met on the way (in a directory component or at the end), each
/// followed by what it resolves to, ending with the final file. At most 40 links (ELOOP).
Result<std::vector<std::string>> symlink_chain(const std::string& path);

/// The shared-library closure of the ELF files: PT_INTERP and DT_NEEDED resolved as ld.so(8)
/// does (a name with a slash as is; else DT_RPATH of the object and of the program when the
/// object has no DT_RUNPATH, then DT_RUNPATH, with $ORIGIN, $LIB and $PLATFORM expanded; then
/// system_library_dirs()), keeping only candidates that are ELF64 x86-64 files. Every symlink
/// on the way is listed (symlink_chain) so that an image can keep it as a symlink with its
/// target. Not included: the inputs themselves, glibc-hwcaps subdirectories, LD_LIBRARY_PATH,
/// LD_PRELOAD, dlopen()ed names. Returns sorted, unique absolute host paths; error when a
/// needed library cannot be found ("libfoo.so.1 needed by /x: not found").
Result<std::vector<std::string>> library_closure(const std::vector<std::string>& elf_paths);

}  // namespace vmfork::rootfs
