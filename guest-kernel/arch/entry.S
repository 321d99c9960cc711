/* Guest kernel entry points: boot (_start), SYSCALL (syscall_entry), exceptions (trap_stubs),
 * and the first drop to the job (enter_user). Single vCPU, so plain globals replace per-CPU data.
 * Frame layouts here must match Regs and TrapFrame in kernel.h. */
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
 * CPU, so save the job's RSP first and move to the current task's kernel stack (g_kstack_top).
 * Every register is saved (a Regs frame, kernel.h, Linux's pt_regs order) so that fork, signal
 * frames and preemption can read and rewrite the whole user context. Return with IRETQ: about
 * 2x faster than SYSRETQ on PVM. */
	.globl syscall_entry
syscall_entry:
	mov %rsp, user_rsp_scratch(%rip)
	mov g_kstack_top(%rip), %rsp
	pushq $0x2b                     /* ss  (abi::kUserDs) */
	pushq user_rsp_scratch(%rip)    /* rsp */
	push %r11                       /* rflags */
	pushq $0x33                     /* cs  (abi::kUserCs) */
	push %rcx                       /* rip */
	push %rax                       /* orig_rax: the syscall number */
	push %rdi
	push %rsi
	push %rdx
	push %rcx
	pushq $-38                      /* rax: -ENOSYS until the call sets it */
	push %r8
	push %r9
	push %r10
	push %r11
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	call syscall_entry_c            /* sets regs->rax, may switch tasks, deliver signals */
	.globl ret_to_user
ret_to_user:                    /* RSP at a Regs frame: restore it all and IRETQ to the job */
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rax
	pop %rcx
	pop %rdx
	pop %rsi
	pop %rdi
	add $8, %rsp                    /* orig_rax */
	iretq

/* A new task's first switch_to lands here (sched.cc builds its stack): RSP at its Regs. */
	.globl fork_return
fork_return:
	mov %rsp, %rdi
	call task_first_entry
	jmp ret_to_user

/* switch_to(&prev_ksp, next_ksp): saves the callee-saved registers on the current kernel stack,
 * stores RSP in *prev_ksp and continues on next_ksp's stack where switch_to once saved it. */
	.globl switch_to
switch_to:
	push %rbp
	push %rbx
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, (%rdi)
	mov %rsi, %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret

/* Preemption tick trampoline: the VMM saved the job's registers in Channel.tick_regs and resumed
 * the vCPU here, still in user mode; enter the kernel like a syscall (docs/guest-abi.md). */
	.globl tick_trampoline
tick_trampoline:
	mov $0x7f564d01, %eax           /* kNrTick (sched.h) */
	syscall
	ud2

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
	/* Move to the trap stack first: in PVM native mode the current stack may be the job's. */
	mov %rax, trap_scratch(%rip)
	mov %rsp, %rax                  /* vector, error, rip, cs, rflags, rsp, ss */
	lea trap_stack_top(%rip), %rsp
	pushq 48(%rax)
	pushq 40(%rax)
	pushq 32(%rax)
	pushq 24(%rax)
	pushq 16(%rax)
	pushq 8(%rax)
	pushq 0(%rax)
	mov trap_scratch(%rip), %rax
	call save_gprs_and_dispatch
	jmp 4f
3:	/* Save every GPR (a PrivFrame, kernel.h) and let ud_handler emulate or end the job. */
	call save_gprs_and_ud
	test %rax, %rax
	jnz 4f
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
4:	/* A fault of the job that a signal handler takes: resume through the task's Regs. */
	mov %rax, %rsp
	mov %rsp, %rdi
	call trap_exit_to_user
	jmp ret_to_user

/* Called with the TrapFrame right above the return address: push a PrivFrame below it, call the
 * handler with it, and leave it there (the caller pops it on the priv_trap path). */
	.macro SAVE_GPRS_AND_CALL fn
	pop trap_ret(%rip)
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
	push trap_ret(%rip)
	jmp \fn
	.endm
save_gprs_and_dispatch:
	SAVE_GPRS_AND_CALL trap_dispatch   /* returns the Regs to resume with, or does not return */
save_gprs_and_ud:
	SAVE_GPRS_AND_CALL ud_handler      /* 0: a priv op done; else the Regs to resume with */

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
trap_scratch:
	.quad 0
trap_ret:
	.quad 0
	.globl g_kstack_top
g_kstack_top:                           /* syscall stack of the current task */
	.quad 0
	.balign 4096
	.space 65536
	.globl kernel_stack_top
kernel_stack_top:                       /* boot stack; each task has its own (sched.cc) */
	.space 16384
	.globl priv_stack_top
priv_stack_top:                         /* TSS.RSP0: ordinary-mode traps from CPL3 land here */
	.space 16384
trap_stack_top:
	.section .note.GNU-stack, "", @progbits
