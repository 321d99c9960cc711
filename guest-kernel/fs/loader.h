// Loads the job's static ELF (ET_EXEC or static-PIE ET_DYN) from the program image the VMM
// placed at BootInfo.program_gpa, maps its stack and builds the initial stack (System V x86-64
// psABI 3.4.1: argc, argv, envp, auxv). Single vCPU.
#pragma once

#include <stdint.h>

namespace k::loader {

/// Maps the program and its stack; sets *entry and *sp for the first IRETQ. Ends the job (panic
/// with a message) on a malformed image; ends it with memory-limit when memory runs out.
void load(uint64_t* entry, uint64_t* sp);

/// The executable path given by the VMM (for readlink("/proc/self/exe")).
const char* exe_path();
/// Job virtual address of the 16 AT_RANDOM bytes (0 before a job is loaded).
uint64_t at_random_va();
/// Initial program break (page-aligned end of the highest segment).
uint64_t initial_brk();

}  // namespace k::loader

// TEMPORARY (replaced by the execve loader work): one program.
namespace k::loader {
struct ProcInfo;
ProcInfo* current_info();
void set_current_info(ProcInfo* i);
ProcInfo* info_clone(const ProcInfo* i);
void info_free(ProcInfo* i);
}  // namespace k::loader
