// The host<->guest ABI of vmfork: guest-physical layout, the boot-info page the VMM writes
// before the first instruction, and the shared channel page both sides use during a job.
// Included by the VMM (hosted C++20) and by the guest kernel (freestanding C++20): plain
// integer fields only, every offset pinned by static_assert. docs/guest-abi.md explains it.
//
// Thread-safety: the guest has one vCPU, and the VMM touches these pages only while that vCPU
// is stopped in an exit, so no field needs atomics. Every value the guest writes is untrusted
// by the VMM and bounds-checked there before use.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vmfork::abi {

// ---- Versioning ---------------------------------------------------------------------------
inline constexpr uint64_t kBootMagic = 0x31544f4f424b4656ull;  // "VFKBOOT1" little-endian
inline constexpr uint32_t kAbiMajor = 1;
inline constexpr uint32_t kAbiMinor = 6;  // 1.1: kReqReady; 1.2: BootInfo.generation; 1.3: rootfs,
                                          // job files, collect, the runtime freeze point;
                                          // 1.4: preemption ticks (kReqTick, Channel.tick_*);
                                          // 1.5: the reset list (BootInfo.reset_pages);
                                          // 1.6: kResetMmuResynced in BootInfo.reset_pages

// ---- Guest-physical layout (bytes) --------------------------------------------------------
// 0x0000..0x0fff is never mapped by the guest kernel so that a NULL deref in the kernel faults.
inline constexpr uint64_t kBootInfoGpa = 0x1000;    // BootInfo, written by the VMM
inline constexpr uint64_t kChannelGpa = 0x2000;     // Channel, shared during the job
inline constexpr uint64_t kSyscallCountGpa = 0x3000;  // uint32_t[kSyscallCountSlots], guest-written
inline constexpr uint64_t kGdtGpa = 0x4000;         // GDT, written by the VMM
inline constexpr uint64_t kTssGpa = 0x5000;         // 64-bit TSS, written by the VMM
inline constexpr uint64_t kIdtGpa = 0x6000;         // IDT, filled by the guest kernel at boot
// ABI 1.5: the reset list, uint64_t GPAs of the pages an in-place reset copied back (see
// BootInfo.reset_pages), written by the VMM. 0x7000..0x10fff is reserved for it; the VMM lists
// at most kResetListCap pages (each may cost the next job one exit: see BootInfo.reset_pages).
inline constexpr uint64_t kResetListGpa = 0x7000;
inline constexpr uint64_t kResetListCap = 1024;
inline constexpr uint64_t kResetMmuResynced = 1ull << 63;  // in BootInfo.reset_pages (ABI 1.6)
inline constexpr uint64_t kPageTableGpa = 0x11000;  // VMM-built kernel page tables (PML4 first)
inline constexpr uint64_t kPageTableEnd = 0x100000;
inline constexpr uint64_t kKernelGpa = 0x100000;    // guest kernel image (its ELF p_paddr)
inline constexpr uint64_t kKernelEnd = 0x400000;    // kernel image + bss must end below this
inline constexpr uint64_t kStdinGpa = 0x400000;     // stdin buffer
inline constexpr uint64_t kStdinCap = 1u << 20;
inline constexpr uint64_t kStdoutGpa = 0x500000;    // stdout buffer
inline constexpr uint64_t kStdoutCap = 1u << 20;
inline constexpr uint64_t kStderrGpa = 0x600000;    // stderr buffer
inline constexpr uint64_t kStderrCap = 1u << 20;
inline constexpr uint64_t kArgsGpa = 0x700000;      // argv/envp/exe-path block (see ArgsBlock)
inline constexpr uint64_t kArgsCap = 512u << 10;
// ABI 1.3: the window job files travel through, both ways (kReqFiles in, kReqCollect out).
inline constexpr uint64_t kFilesWindowGpa = 0x780000;
inline constexpr uint64_t kFilesWindowCap = 512u << 10;
inline constexpr uint64_t kProgramGpa = 0x800000;   // the job's ELF file, page-aligned
inline constexpr uint64_t kMinMemBytes = 16u << 20;
inline constexpr uint64_t kSyscallCountSlots = 512;  // syscall numbers >= this share the last slot
// The root file system image (EROFS, docs/rootfs.md), a read-only memslot of its own at this GPA,
// backed by the image file that every VM on the host shares. Guest memory must end below it.
inline constexpr uint64_t kRootfsGpa = 64ull << 30;
inline constexpr uint64_t kRootfsMaxBytes = 16ull << 30;

// ---- Guest-virtual layout -----------------------------------------------------------------
// All guest-physical memory is mapped at kDirectMapBase + gpa (2 MiB pages). The kernel image is
// linked at kKernelVirtBase + gpa (-mcmodel=kernel), an alias of the first GiB. The lower half
// (PML4 entries 0..255) belongs to the job and is built by the guest kernel. Every entry has
// U=1: in PVM native mode a page without U cannot be touched by the kernel (pvm-host.md).
inline constexpr uint64_t kDirectMapBase = 0xffff888000000000ull;  // Linux's own
inline constexpr uint64_t kKernelVirtBase = 0xffffffff80000000ull;

// ---- Segments (GDT written by the VMM at kGdtGpa) ------------------------------------------
// User selectors are the ones Linux uses, so SYSCALL/IRETQ frames look as a Linux program
// expects. In PVM native mode the guest kernel itself runs as 0x33/0x2b (pvm-host.md), so IDT
// gates must name 0x33 there and 0x10 in ordinary x86-64 mode.
inline constexpr uint16_t kKernelCs = 0x10;
inline constexpr uint16_t kKernelDs = 0x18;
inline constexpr uint16_t kUserCs32 = 0x23;
inline constexpr uint16_t kUserDs = 0x2b;
inline constexpr uint16_t kUserCs = 0x33;
inline constexpr uint16_t kTss = 0x40;

// ---- Doorbell ------------------------------------------------------------------------------
// The guest rings the VMM with a 32-bit OUT of a Request code to kDoorbellPort. Each ring is one
// VM exit (~25 us on a PVM host), so the guest batches: output is flushed only when a buffer is
// full, before waiting for stdin, and at exit.
inline constexpr uint16_t kDoorbellPort = 0x501;
inline constexpr uint16_t kSerialPort = 0x3f8;  // COM1, 8250 subset, kernel log

enum Request : uint32_t {
  kReqNone = 0,
  kReqFlush = 1,      // stdout/stderr buffers hold data; drain them and resume
  kReqStdin = 2,      // stdin buffer consumed; refill it (or set stdin_eof) and resume
  kReqExit = 3,       // the job ended: exit_status valid; never resumed
  kReqFault = 4,      // the job (or the kernel) took an exception: fault_* valid; never resumed
  kReqSleep = 5,      // sleep until realtime sleep_until_ns, then resume
  kReqMemLimit = 6,   // guest memory exhausted: job ends with reason memory-limit
  kReqPanic = 7,      // kernel bug or bad boot info; panic_msg valid; never resumed
  kReqSignal = 8,     // the job killed itself with signal exit_status (abort, raise)
  kReqReady = 9,      // kernel initialized and BootInfo.program_bytes == 0: waiting for a job.
                      // The VMM (a template's freeze point) writes program, args, entropy and
                      // clock into BootInfo and resumes; the kernel re-reads all of them.
  // ABI 1.3:
  kReqFiles = 10,     // copy the job-files bundle from byte files_pos into the files window
                      // (files_len bytes valid after, files_total the bundle's size), resume
  kReqCollect = 11,   // the files window holds files_len bytes of collected-file records:
                      // take them, resume
  kReqJob = 12,       // a runtime asks for its job (read of /dev/vmfork/job): the warm-runtime
                      // freeze point. The VMM (re)writes the args block, the job-files bundle,
                      // entropy and clock, and resumes; in a cold run it resumes at once.
  // ABI 1.4:
  kReqTick = 13,      // Channel.tick_ns changed from 0: start injecting preemption ticks, resume
};

// ---- Job files (ABI 1.3) --------------------------------------------------------------------
// The bundle the guest pulls with kReqFiles: FilesHeader, then `count` records, each a
// FileRecord, its path (path_len bytes, no NUL) and, for kind kFileData, data_len bytes; every
// record starts 8-byte aligned. Collected files come back with kReqCollect as a stream of the
// same FileRecords (kind kFileData with data_off/data_len naming the chunk, or kFileMissing).
inline constexpr uint64_t kFilesMagic = 0x53454c49464b4656ull;  // "VFKFILES"
struct FilesHeader {
  uint64_t magic;
  uint64_t count;
};
enum FileKind : uint32_t {
  kFileData = 1,     // a regular file to create (parents are made as needed) / a collected chunk
  kFileWorkdir = 2,  // the job's working directory (made if missing)
  kFileCollect = 3,  // a path whose file the kernel returns at the end of the job
  kFileMissing = 4,  // collect: the path was not a readable regular file
};
struct FileRecord {
  uint32_t kind;       // FileKind
  uint32_t mode;       // permission bits for kFileData
  uint32_t path_len;   // bytes, at most 4095
  uint32_t reserved;
  uint64_t data_len;   // kFileData: bytes of data following the path (a chunk when collecting)
  uint64_t data_off;   // collect: offset of this chunk in the file
  uint64_t file_size;  // collect: the whole file's size
};
static_assert(sizeof(FileRecord) == 40, "FileRecord layout: see docs/guest-abi.md");
static_assert(sizeof(FilesHeader) == 16, "FilesHeader layout: see docs/guest-abi.md");

// BootInfo flags.
inline constexpr uint64_t kFlagNativePvm = 1u << 0;  // PVM native mode is on (MSR 0x4b564d10 = 1)
inline constexpr uint64_t kFlagVerbose = 1u << 1;    // kernel logs to the serial console
inline constexpr uint64_t kFlagPvmEmulated = 1u << 2;  // PVM without native mode: CPL 0 is emulated
// ABI 1.3: the job's program is not an image at program_gpa but the executable path of the args
// block (its last string), looked up in the root file system (rootfs_bytes != 0), as execve(2).
inline constexpr uint64_t kFlagExecPath = 1u << 3;

// ---- BootInfo (VMM -> guest, at kBootInfoGpa, one page) -------------------------------------
// Every field is little-endian and 8 bytes; an address is guest-physical.
struct BootInfo {
  uint64_t magic;              // kBootMagic
  uint64_t abi_version;        // (kAbiMajor << 32) | kAbiMinor
  uint64_t flags;              // kFlag*
  uint64_t mem_bytes;          // size of guest-physical memory (one memslot at GPA 0)
  uint64_t free_gpa;           // first byte the kernel may allocate (page-aligned)
  uint64_t program_gpa;        // the job's ELF image
  uint64_t program_bytes;
  uint64_t args_gpa;           // ArgsBlock
  uint64_t args_bytes;
  uint64_t tsc_khz;            // guest TSC frequency in kHz
  uint64_t clock_tsc;          // a guest TSC reading ...
  uint64_t clock_realtime_ns;  // ... and CLOCK_REALTIME (ns since the epoch) at that instant
  uint64_t entropy[4];         // 32 fresh random bytes from the host, seed of the guest CSPRNG
  uint64_t stack_bytes;        // job stack size (RLIMIT_STACK)
  // Identity generation (ABI 1.2): the VMM increments it whenever it gives a restored clone new
  // entropy and a new clock pair. The kernel compares it after every doorbell and, when it
  // changed, re-reads the clock, reseeds its CSPRNG and rewrites the job's AT_RANDOM bytes, so
  // two clones of one frozen template never share random bytes or a stale clock.
  uint64_t generation;
  // Root file system (ABI 1.3): the image's GPA (kRootfsGpa) and size in bytes; 0 bytes = none.
  uint64_t rootfs_gpa;
  uint64_t rootfs_bytes;
  // Job files (ABI 1.3): the size of the bundle the kernel pulls with kReqFiles (0: none).
  uint64_t files_bytes;
  // Processes (ABI 1.4): fork/clone beyond this many live processes fail with EAGAIN (0: 256).
  uint64_t max_procs;
  // Reset list (ABI 1.5). An in-place reset returns the pages a job changed to the template's
  // bytes by copying them back, so they stay mapped; the host's shadow of the guest page tables
  // (PVM, like any shadow MMU) is not told about those copies. So the VMM lists the GPAs it
  // copied at kResetListGpa, and on resume (a new generation) the kernel, before anything else
  // runs, stores to each listed page once across a page-table-entry boundary (8 bytes at offset
  // 4, the same bytes back): KVM takes such a write to a shadowed page table as "no longer a page
  // table" and drops its shadow (arch/x86/kvm/mmu/mmu.c, detect_write_misaligned), then reloads
  // CR3 so unsynchronized shadows are checked again. 0: nothing to forget. ABI 1.6: with
  // kResetMmuResynced set (the count is the other bits) the VMM has already made KVM reload its
  // MMU roots, sync every unsynchronized shadow and flush the guest's TLB, so the kernel skips
  // the CR3 reload (on PVM an emulated instruction, ~45 us).
  uint64_t reset_pages;
  uint64_t reserved[10];
};
static_assert(offsetof(BootInfo, entropy) == 96, "BootInfo layout: see docs/guest-abi.md");
static_assert(offsetof(BootInfo, generation) == 136, "BootInfo layout: see docs/guest-abi.md");
static_assert(offsetof(BootInfo, rootfs_gpa) == 144, "BootInfo layout: see docs/guest-abi.md");
static_assert(offsetof(BootInfo, files_bytes) == 160, "BootInfo layout: see docs/guest-abi.md");
static_assert(offsetof(BootInfo, reset_pages) == 176, "BootInfo layout: see docs/guest-abi.md");
static_assert(sizeof(BootInfo) == 264, "BootInfo layout: see docs/guest-abi.md");

// ArgsBlock at args_gpa: uint64_t argc, envc; then argc + envc + 1 NUL-terminated strings packed
// back to back: argv[0..argc), envp[0..envc), and the executable path (for /proc/self/exe).
struct ArgsHeader {
  uint64_t argc;
  uint64_t envc;
};

// ---- Channel (shared, at kChannelGpa, one page) ---------------------------------------------
struct Channel {
  uint32_t request;            // Request, also the OUT value
  uint32_t reserved0;
  // Output: the guest appends; the VMM drains on every exit and sets the length back to 0.
  uint64_t stdout_len;         // bytes valid at kStdoutGpa
  uint64_t stderr_len;         // bytes valid at kStderrGpa
  // Input: the VMM fills the buffer from offset 0 and sets stdin_len; the guest keeps
  // stdin_pos (bytes consumed) and rings kReqStdin when stdin_pos == stdin_len.
  uint64_t stdin_len;
  uint64_t stdin_pos;
  uint64_t stdin_eof;          // 1: no more input after stdin_len
  // End of job.
  uint64_t exit_status;        // exit_group status (0..255), or the signal for kReqSignal
  uint64_t fault_vector;       // x86 exception vector
  uint64_t fault_error;        // exception error code (0 if none)
  uint64_t fault_rip;
  uint64_t fault_addr;         // CR2 for #PF
  uint64_t fault_rsp;
  uint64_t fault_user;         // 1 if the fault was taken in the job, 0 in the kernel
  uint64_t sleep_until_ns;     // kReqSleep: CLOCK_REALTIME deadline
  // Guest TSC timestamps of the phases (0 = not reached).
  uint64_t tsc_kernel_entry;   // first kernel instruction in C++
  uint64_t tsc_ready;          // kernel initialized, before loading the job's ELF
  uint64_t tsc_user_entry;     // just before the first user instruction
  uint64_t tsc_exit;           // exit_group (or fault) seen
  // Counters.
  uint64_t syscalls;           // total syscalls made by the job
  uint64_t unknown_syscalls;   // of which answered -ENOSYS
  uint64_t pages_peak;         // peak guest pages allocated by the kernel for the job
  char panic_msg[256];         // kReqPanic / fault description, NUL-terminated
  // Job files (ABI 1.3): the window at kFilesWindowGpa.
  uint64_t files_pos;          // kReqFiles: bundle offset wanted (guest-written)
  uint64_t files_len;          // kReqFiles: bytes valid in the window; kReqCollect: bytes to take
  uint64_t files_total;        // kReqFiles: the bundle's size (0: no files)
  // Preemption ticks (ABI 1.4, docs/guest-abi.md "Preemption"). While tick_ns != 0 the VMM
  // interrupts the vCPU every tick_ns; if the vCPU is then in the job (RIP in the lower half),
  // it stores the job's registers in tick_regs and resumes the vCPU at tick_entry, a kernel
  // trampoline that enters the kernel with SYSCALL. Nothing is pushed on the job's stack.
  uint64_t tick_ns;            // guest-written: tick period wanted, 0 = no ticks
  uint64_t tick_entry;         // guest-written: the trampoline's address
  uint64_t tick_count;         // VMM-written: ticks injected so far
  uint64_t tick_armed;         // VMM-written: the period its timer runs at now (0: none); the
                               // guest rings kReqTick only when this is 0
  uint64_t tick_regs[18];      // VMM-written, TickReg order
};
/// Order of Channel.tick_regs.
enum TickReg : uint32_t {
  kTickRax, kTickRbx, kTickRcx, kTickRdx, kTickRsi, kTickRdi, kTickRbp, kTickRsp, kTickR8,
  kTickR9, kTickR10, kTickR11, kTickR12, kTickR13, kTickR14, kTickR15, kTickRip, kTickRflags,
};
static_assert(offsetof(Channel, stdout_len) == 8, "Channel layout: see docs/guest-abi.md");
static_assert(offsetof(Channel, tsc_kernel_entry) == 112, "Channel layout: see docs/guest-abi.md");
static_assert(offsetof(Channel, panic_msg) == 168, "Channel layout: see docs/guest-abi.md");
static_assert(offsetof(Channel, files_pos) == 424, "Channel layout: see docs/guest-abi.md");
static_assert(offsetof(Channel, tick_ns) == 448, "Channel layout: see docs/guest-abi.md");
static_assert(sizeof(Channel) <= 4096, "Channel must fit its page");

}  // namespace vmfork::abi
