// ELF64 parsing for the VMM: loading the guest kernel and validating a job's program before
// boot, so that a bad file gets a clear error on the host (System V gABI, ELF-64 object format).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace vmfork::vmm {

struct ElfSegment {
  uint64_t offset, vaddr, paddr, filesz, memsz;
  uint32_t flags;  // PF_R=4, PF_W=2, PF_X=1
};

struct ElfInfo {
  uint16_t type = 0;  // ET_EXEC=2, ET_DYN=3
  uint64_t entry = 0;
  bool has_interp = false;  // PT_INTERP: needs a dynamic loader
  std::vector<ElfSegment> loads;  // PT_LOAD, in file order
};

/// Parses and bounds-checks an x86-64 little-endian ELF64 executable. Errors say what is wrong
/// ("not an ELF file", "segment 2 extends past the end of the file", ...).
Result<ElfInfo> parse_elf(std::span<const uint8_t> file);

/// parse_elf plus the job rules: ET_EXEC or ET_DYN, no PT_INTERP ("dynamically linked: build
/// it with -static"), at least one PT_LOAD.
Result<ElfInfo> check_static_program(std::span<const uint8_t> file, const std::string& path);

}  // namespace vmfork::vmm
