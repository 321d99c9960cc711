/* Embeds the guest kernel ELF (VMFORK_KERNEL_ELF, set by CMake) in the vmfork binary. */
	.section .rodata
	.balign 4096
	.globl vmfork_kernel_start
vmfork_kernel_start:
	.incbin VMFORK_KERNEL_ELF
	.globl vmfork_kernel_end
vmfork_kernel_end:
	.section .note.GNU-stack, "", @progbits
