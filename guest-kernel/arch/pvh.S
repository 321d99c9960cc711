/* QEMU-mode entry (the `vmfork bench` QEMU peer only): a PVH entry that QEMU's -kernel loader
 * finds by the XEN_ELFNOTE_PHYS32_ENTRY note (type 18, xen/include/public/elfnote.h; Xen's PVH
 * boot ABI, docs/misc/pvh.pandoc: 32-bit protected mode, paging off, interrupts off, ebx =
 * start_info). It builds identity + upper-half page tables, enters long mode and idles in the
 * kernel's own text, writing one byte to COM1 (0x3f8) about every 2^19 TSC cycles, so a host can
 * see the guest run again after a restore. kmain is not run: it needs vmfork's BootInfo and
 * channel page, which QEMU has not. The vmfork VMM never enters here (it starts _start in long
 * mode). Single vCPU; nothing here is reentered. */
#define KV 0xffffffff80000000
#define PT 0x70000          /* PML4, PDPT, PD: 3 pages of low RAM, unused by QEMU's PVH boot */

	.section .note.Xen, "a", @note
	.balign 4
	.long 4                 /* namesz: "Xen\0" */
	.long 4                 /* descsz */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_start - KV    /* physical entry address */

	.section .text.pvh, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cld
	mov $PT, %edi
	xor %eax, %eax
	mov $(3 * 4096 / 4), %ecx
	rep stosl
	/* P|RW|U at every level (U=1: what PVM's native mode asks of every page; harmless elsewhere). */
	movl $(PT + 0x1000 + 7), PT                    /* PML4[0]   -> PDPT */
	movl $(PT + 0x1000 + 7), PT + 511 * 8          /* PML4[511] -> PDPT */
	movl $(PT + 0x2000 + 7), PT + 0x1000           /* PDPT[0]   -> PD: 0..1 GiB */
	movl $(PT + 0x2000 + 7), PT + 0x1000 + 510 * 8 /* PDPT[510] -> PD: KV.. (the kernel's alias) */
	mov $(PT + 0x2000), %edi
	mov $0x87, %eax                                /* P|RW|U|PS: 2 MiB pages */
	mov $512, %ecx
1:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b
	mov %cr4, %eax
	or $0x20, %eax                                 /* CR4.PAE */
	mov %eax, %cr4
	mov $PT, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx                          /* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	lgdt (pvh_gdt_ptr - KV)
	mov %cr0, %eax
	or $0x80000001, %eax                           /* CR0.PG | PE */
	mov %eax, %cr0
	ljmp $0x08, $(pvh_long - KV)

	.code64
pvh_long:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	movabs $qemu_idle, %rax
	jmp *%rax

/* The idle loop, run from the kernel's upper-half alias. */
qemu_idle:
	mov $0x3f8, %dx
1:	mov $'.', %al
	out %al, %dx
	rdtsc
	shl $32, %rdx
	or %rdx, %rax
	lea (1 << 19)(%rax), %rsi
2:	pause
	rdtsc
	shl $32, %rdx
	or %rdx, %rax
	cmp %rsi, %rax
	jb 2b
	mov $0x3f8, %dx
	jmp 1b

	.balign 8
pvh_gdt:
	.quad 0
	.quad 0x00af9a000000ffff    /* 0x08: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff    /* 0x10: data */
pvh_gdt_ptr:
	.word 23
	.long pvh_gdt - KV

	.section .note.GNU-stack, "", @progbits
