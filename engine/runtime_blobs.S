/* Embeds the warm-runtime runners (runtimes/, set by CMake) in the vmfork binary. */
	.section .rodata
	.globl vmfork_python3_runner_start
vmfork_python3_runner_start:
	.incbin VMFORK_PYTHON3_RUNNER
	.globl vmfork_python3_runner_end
vmfork_python3_runner_end:
	.section .note.GNU-stack, "", @progbits
