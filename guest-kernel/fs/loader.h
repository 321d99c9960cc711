// Loads programs, the job's first one and every execve: ELF (ET_EXEC or ET_DYN, with PT_INTERP)
// and "#!" scripts, from the VMM's program image or the root file system, then builds the initial
// stack (System V x86-64 psABI 3.4.1). Kernel code only; not reentrant across a sched:: wait.
#pragma once

#include <stdint.h>

namespace k::loader {

/// Largest execve argument area: argv + envp + "#!" prefix strings (NULs included) plus 8 bytes
/// per argv/envp pointer, in bytes. Linux allows a quarter of RLIMIT_STACK (fs/exec.c
/// bprm_stack_limits); here it is a quarter of BootInfo.stack_bytes clamped to [128 KiB, 2 MiB].
/// Beyond it exec_prepare fails with -E2BIG.
inline constexpr uint64_t kArgsMaxBytes = 2ull << 20;
inline constexpr uint64_t kArgsMinBytes = 128ull << 10;  // Linux's ARG_MAX floor
/// Longest single argument or environment string, NUL included (MAX_ARG_STRLEN: 32 pages).
inline constexpr uint64_t kArgStrMax = 32 * 4096;
/// Most "#!" scripts in one chain; one more is -ELOOP (fs/exec.c exec_binprm: depth > 5).
inline constexpr int kMaxScriptDepth = 5;

/// What a process remembers about the program it runs: owned by the process, copied by fork
/// (info_clone), replaced in place by exec_commit.
struct ProcInfo {
  char* exe;                   // absolute path for readlink("/proc/self/exe") (kernel heap)
  uint64_t brk;                // initial program break: 2 MiB-aligned end of the highest segment
  uint64_t at_random;          // job VA of the 16 AT_RANDOM bytes (rewritten on a new identity)
  uint64_t arg_start, arg_end;  // job VA range of the argv strings (/proc/self/cmdline)
  uint64_t env_start, env_end;  // job VA range of the envp strings (/proc/self/environ)
};

/// The process running now (nullptr before the first program is loaded).
ProcInfo* current_info();
/// Makes `p` the current process's info (the scheduler calls it on a process switch).
void set_current_info(ProcInfo* p);
/// A copy of `p` for a forked child, or nullptr when kernel memory ran out (fork: -ENOMEM).
ProcInfo* info_clone(const ProcInfo* p);
/// Frees a ProcInfo (process exit). nullptr is ignored.
void info_free(ProcInfo* p);

/// The current process's executable path ("" before a program is loaded).
const char* exe_path();
/// Job virtual address of the current process's AT_RANDOM bytes (0 before a job is loaded).
uint64_t at_random_va();
/// Initial program break of the current process.
uint64_t initial_brk();

/// Everything execve needs, checked and copied into kernel memory (opaque).
struct ExecImage;

/// execve(2)/execveat(2) step 1: copies the path, argv and envp (user pointers of the calling
/// process; uargv/uenvp may be 0 = empty), resolves the file relative to `dirfd` (AT_FDCWD or
/// a directory fd; `flags` AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW), follows "#!" lines (prepending
/// interpreter, optional argument and script path to argv as fs/binfmt_script.c) and checks the
/// ELF headers, every PT_LOAD and the PT_INTERP interpreter. Changes nothing in the process.
/// Returns 0 with *out, or -EFAULT, -E2BIG, -ENAMETOOLONG, -ENOENT, -ENOTDIR, -ELOOP, -EACCES
/// (not a regular file, no x bit), -ENOEXEC, -EBADF, -EINVAL (flags), -EIO, -ENOMEM.
int64_t exec_prepare(int64_t dirfd, uint64_t upath, uint64_t uargv, uint64_t uenvp, uint64_t flags,
                     ExecImage** out);
/// execve step 3, in the caller's new, empty, active address space: maps the program (and its
/// interpreter) and the stack, writes argc/argv/envp/auxv with fresh AT_RANDOM bytes, fills the
/// current ProcInfo (making one if there is none) and frees `img`. Sets *entry and *sp for the
/// return to user mode. Cannot fail: out of memory ends the job with kReqMemLimit.
void exec_commit(ExecImage* img, uint64_t* entry, uint64_t* sp);
/// Frees a prepared image that will not be committed. nullptr is ignored.
void exec_free(ExecImage* img);

/// The job's first program: prepares from the VMM's argument block (PATH search when
/// BootInfo has kFlagExecPath, else the program image) and commits it, as execve does. A
/// program that cannot run ends the job with 127 (not found) or 126 and a message on stderr; a
/// malformed program image (the VMM's fault) panics.
void load(uint64_t* entry, uint64_t* sp);

}  // namespace k::loader
