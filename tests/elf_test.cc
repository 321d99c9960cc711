// Tests for host-side ELF validation: malformed files get clear errors, never a crash.
#include "vmm/elf.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

using namespace vmfork::vmm;

namespace {

// A minimal ELF64 executable image with `nph` program headers.
std::vector<uint8_t> make_elf(uint16_t type, std::vector<Elf64_Phdr> phs) {
  std::vector<uint8_t> f(4096);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_type = type;
  eh.e_machine = EM_X86_64;
  eh.e_entry = 0x401000;
  eh.e_phoff = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = uint16_t(phs.size());
  std::memcpy(f.data(), &eh, sizeof eh);
  std::memcpy(f.data() + sizeof eh, phs.data(), phs.size() * sizeof(Elf64_Phdr));
  return f;
}

Elf64_Phdr load(uint64_t off, uint64_t filesz, uint64_t memsz) {
  Elf64_Phdr p{};
  p.p_type = PT_LOAD;
  p.p_offset = off;
  p.p_vaddr = 0x400000 + off;
  p.p_filesz = filesz;
  p.p_memsz = memsz;
  p.p_flags = PF_R | PF_X;
  return p;
}

}  // namespace

TEST(Elf, AcceptsStaticExecutable) {
  auto f = make_elf(ET_EXEC, {load(0, 4096, 8192)});
  auto info = check_static_program(f, "prog");
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->loads.size(), 1u);
  EXPECT_EQ(info->entry, 0x401000u);
}

TEST(Elf, RejectsDynamicExecutable) {
  Elf64_Phdr interp{};
  interp.p_type = PT_INTERP;
  auto f = make_elf(ET_DYN, {interp, load(0, 4096, 4096)});
  auto info = check_static_program(f, "prog");
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.error().what.find("dynamically linked"), std::string::npos);
}

TEST(Elf, RejectsTruncatedAndCorrupt) {
  auto good = make_elf(ET_EXEC, {load(0, 4096, 4096)});
  EXPECT_FALSE(parse_elf(std::span(good).first(10)).ok());  // shorter than a header
  auto bad_magic = good;
  bad_magic[1] = 'X';
  EXPECT_FALSE(parse_elf(bad_magic).ok());
  auto past_end = make_elf(ET_EXEC, {load(0, 1 << 20, 1 << 20)});
  auto r = parse_elf(past_end);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find("past the end"), std::string::npos);
  auto filesz_gt_memsz = make_elf(ET_EXEC, {load(0, 4096, 100)});
  EXPECT_FALSE(parse_elf(filesz_gt_memsz).ok());
  auto too_many = good;
  reinterpret_cast<Elf64_Ehdr*>(too_many.data())->e_phnum = 60000;
  EXPECT_FALSE(parse_elf(too_many).ok());
}

TEST(Elf, RejectsOtherMachines) {
  auto f = make_elf(ET_EXEC, {load(0, 4096, 4096)});
  reinterpret_cast<Elf64_Ehdr*>(f.data())->e_machine = EM_AARCH64;
  EXPECT_FALSE(parse_elf(f).ok());
}
