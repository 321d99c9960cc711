/* Guest kernel entry points: boot (_start), SYSCALL (syscall_entry), exceptions (trap_stubs),
 * and the first drop to the job (enter_user). Single vCPU, so plain globals replace per-CPU data.
 * Frame layouts here must match SyscallFrame and TrapFrame in kernel.h. */
	.section .text.entry, "ax"
	.code64

	.globl _start
_start:
	/* The VMM enters here in 64-bit mode with its page tables loaded (docs/guest-abi.md). */
	lea kernel_stack_top(%rip), %rsp
	xor %ebp, %ebp
	call kmain
1:	hlt
	jmp 1b

/* SYSCALL: RCX = user RIP, R11 = user RFLAGS, RSP still the job's. No stack switch is done by the
 * CPU, so save the job's RSP first. Return with IRETQ: about 2x faster than SYSRETQ on PVM. */
	.globl syscall_entry
syscall_entry:
	mov %rsp, user_rsp_scratch(%rip)
	lea kernel_stack_top(%rip), %rsp
	pushq $0x2b                     /* ss  (abi::kUserDs) */
	pushq user_rsp_scratch(%rip)    /* rsp */
	push %r11                       /* rflags */
	pushq $0x33                     /* cs  (abi::kUserCs) */
	push %rcx                       /* rip */
	push %r9
	push %r8
	push %r10
	push %rdx
	push %rsi
	push %rdi
	push %rax
	mov %rsp, %rdi
	call syscall_dispatch           /* returns the syscall result in rax */
	add $8, %rsp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %r10
	pop %r8
	pop %r9
	mov (%rsp), %rcx                /* Linux leaves rcx = rip, r11 = rflags */
	mov 16(%rsp), %r11
	iretq

/* enter_user(rip, rsp): first entry into the job, all registers cleared (psABI 3.4.1: rdx=0
 * means no rtld_fini). */
	.globl enter_user
enter_user:
	pushq $0x2b
	push %rsi
	pushq $0x202
	pushq $0x33
	push %rdi
	xor %eax, %eax
	xor %ebx, %ebx
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %ebp, %ebp
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
	iretq

/* drop_to_cpl3(fn): continue in fn at CPL 3 on the current stack (PVM emulated mode, where CPL 0
 * code is emulated ~1000x slower but CPL 3 runs natively; every kernel page has U=1). fn must
 * not return. RSP at fn's entry is this function's entry RSP, so it is aligned like a call. */
	.globl drop_to_cpl3
drop_to_cpl3:
	mov %rsp, %rax
	pushq $0x2b
	push %rax
	pushq $0x2
	pushq $0x33
	push %rdi
	iretq

/* 256 exception/interrupt stubs, 16 bytes apart: push a 0 error code where the CPU pushes none,
 * push the vector, then move to a private stack. In PVM native mode the CPU pushed the frame on
 * the current stack (maybe the job's), so the handler must not return there: it ends the job. */
	.altmacro
	.macro TRAP_STUB vec
	.balign 16
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq $0
	.endif
	pushq $\vec
	jmp trap_common
	.endm

	.balign 16
	.globl trap_stubs
trap_stubs:
	.set vec, 0
	.rept 256
	TRAP_STUB %vec
	.set vec, vec + 1
	.endr

trap_common:
	cmpq $6, (%rsp)                 /* #UD may be a privileged-op request (priv_trap) */
	je 3f
	mov %rsp, %rdi
	lea trap_stack_top(%rip), %rsp
	call trap_handler               /* [[noreturn]] */
2:	hlt
	jmp 2b
3:	/* Save every GPR (a PrivFrame, kernel.h) and let ud_handler emulate or end the job. */
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	call ud_handler                 /* returns only if it handled the #UD */
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp                   /* vector, error code */
	iretq

/* priv_trap(op, a, b): in PVM emulated mode the kernel's syscall path runs at CPL3 (SYSCALL
 * there does not raise privilege), so privileged instructions are requested with a #UD at this
 * known address; ud_handler, entered at CPL0 through the IDT, does the operation. */
	.globl priv_trap, priv_trap_insn
priv_trap:
priv_trap_insn:
	ud2
	ret

	.bss
	.balign 16
user_rsp_scratch:
	.quad 0
	.balign 4096
	.space 65536
	.globl kernel_stack_top
kernel_stack_top:
	.space 16384
	.globl priv_stack_top
priv_stack_top:                         /* TSS.RSP0: ordinary-mode traps from CPL3 land here */
	.space 16384
trap_stack_top:
	.section .note.GNU-stack, "", @progbits
