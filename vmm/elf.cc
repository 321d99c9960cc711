// ELF64 parsing (see elf.h). Structure layouts: System V gABI, "ELF Header" and "Program Header".
#include "vmm/elf.h"

#include <elf.h>

#include <cstring>

namespace vmfork::vmm {

Result<ElfInfo> parse_elf(std::span<const uint8_t> file) {
  Elf64_Ehdr eh;
  if (file.size() < sizeof eh) return plain_error("not an ELF file: shorter than an ELF header");
  std::memcpy(&eh, file.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return plain_error("not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return plain_error("not a little-endian ELF64 file");
  if (eh.e_machine != EM_X86_64) return plain_error("not an x86-64 ELF file");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256)
    return plain_error("bad ELF program header table");
  if (eh.e_phoff > file.size() || uint64_t(eh.e_phnum) * sizeof(Elf64_Phdr) > file.size() - eh.e_phoff)
    return plain_error("ELF program headers extend past the end of the file");
  ElfInfo info;
  info.type = eh.e_type;
  info.entry = eh.e_entry;
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    std::memcpy(&ph, file.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_INTERP) info.has_interp = true;
    if (ph.p_type != PT_LOAD) continue;
    if (ph.p_offset > file.size() || ph.p_filesz > file.size() - ph.p_offset)
      return plain_error("ELF segment " + std::to_string(i) + " extends past the end of the file");
    if (ph.p_filesz > ph.p_memsz)
      return plain_error("ELF segment " + std::to_string(i) + " has filesz > memsz");
    info.loads.push_back({ph.p_offset, ph.p_vaddr, ph.p_paddr, ph.p_filesz, ph.p_memsz, ph.p_flags});
  }
  return info;
}

Result<ElfInfo> check_static_program(std::span<const uint8_t> file, const std::string& path) {
  auto info = parse_elf(file);
  if (!info.ok()) return plain_error(path + ": " + info.error().what);
  if (info->type != ET_EXEC && info->type != ET_DYN)
    return plain_error(path + ": not an executable (ELF type " + std::to_string(info->type) + ")");
  if (info->has_interp)
    return plain_error(path + ": dynamically linked; vmfork runs static executables (build with -static)");
  if (info->loads.empty()) return plain_error(path + ": no loadable segment");
  return info;
}

}  // namespace vmfork::vmm
