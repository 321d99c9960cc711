/* hostile_report.c: a job that lies to the VMM. It burns CPU (argv[2] million iterations of a
 * volatile add), touches argv[3] MiB of memory, then overwrites the figures in the shared
 * Channel page (reached through the direct map, as every page is user-accessible on PVM) and,
 * with argv[1] other than "exit", rings the doorbell itself through the guest kernel's
 * privileged-op gate (priv_trap, whose address is argv[4] in hex). Modes: exit (plain exit(0)
 * after faking), ring-exit, ring-fault, ring-signal, ring-panic. Offsets: guest-kernel/abi/
 * vmfork_abi.h (struct Channel, its static_asserts) and docs/guest-abi.md. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHANNEL ((volatile uint64_t*)(0xffff888000000000ull + 0x2000))
enum { EXIT_STATUS = 6, FAULT_VECTOR, FAULT_ERROR, FAULT_RIP, FAULT_ADDR, FAULT_RSP, FAULT_USER,
       TSC_KERNEL_ENTRY = 14, TSC_READY, TSC_USER_ENTRY, TSC_EXIT, SYSCALLS, UNKNOWN, PAGES_PEAK };
#define PANIC_MSG ((char*)(0xffff888000000000ull + 0x2000 + 168))

static void ring(uint64_t gate, uint32_t request)
{
    /* priv_trap(kOpOut32 = 1, port 0x501, request): rdi, rsi, rdx */
    register uint64_t rdi asm("rdi") = 1, rsi asm("rsi") = 0x501, rdx asm("rdx") = request;
    asm volatile("call *%3" : "+r"(rdi), "+r"(rsi), "+r"(rdx) : "r"(gate) : "rax", "rcx", "r8", "r9", "r10", "r11", "memory");
}

int main(int argc, char** argv)
{
    if (argc < 5) return 2;
    const char* mode = argv[1];
    volatile uint64_t sink = 0;
    for (uint64_t i = 0, n = strtoull(argv[2], 0, 10) * 1000000ull; i < n; i++) sink += i;
    size_t bytes = strtoull(argv[3], 0, 10) << 20;
    char* mem = bytes ? malloc(bytes) : 0;
    for (size_t i = 0; i < bytes; i += 4096) mem[i] = 1;
    if (write(1, "faking\n", 7) != 7) return 3;
    uint64_t gate = strtoull(argv[4], 0, 16);
    /* The lies: no memory at all, a run that began long ago, a load of 7e15 us, billions of syscalls. */
    CHANNEL[PAGES_PEAK] = 0;
    CHANNEL[TSC_READY] = 1;
    CHANNEL[TSC_USER_ENTRY] = 2;
    CHANNEL[TSC_EXIT] = ~0ull;
    CHANNEL[SYSCALLS] = ~0ull;
    if (!strcmp(mode, "exit")) exit(0);
    if (!strcmp(mode, "huge-peak")) { CHANNEL[PAGES_PEAK] = ~0ull / 4096;  /* 2^64 - 4096 bytes */ exit(0); }
    strcpy(PANIC_MSG, "crashed with #PF");
    if (!strcmp(mode, "ring-exit")) { CHANNEL[EXIT_STATUS] = 0; ring(gate, 3); }
    if (!strcmp(mode, "ring-fault")) {
        CHANNEL[FAULT_VECTOR] = 14; CHANNEL[FAULT_USER] = 0; CHANNEL[FAULT_ADDR] = 0xdead;
        ring(gate, 4);
    }
    if (!strcmp(mode, "ring-signal")) { CHANNEL[EXIT_STATUS] = 127; ring(gate, 8); }
    if (!strcmp(mode, "ring-panic")) ring(gate, 7);
    return 4;  /* a doorbell that came back: the VMM resumed us */
}
