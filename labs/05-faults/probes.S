/* Probes: instructions that may fault on purpose. Each risky instruction has
 * an entry in .fixup_table: when it faults, trap_handler resumes at the entry's
 * second address with %rax = PROBE_FAULTED | vector << 32 | error code.
 * Otherwise the probe returns 0. SysV calling convention: argument in %rdi.
 */
#define FIXUP(insn, resume) .pushsection .fixup_table, "a"; .balign 8; .quad insn, resume; .popsection

    .section .text
    .globl probe_read, probe_write, probe_exec, probe_divide, probe_ud2, probe_exec_target
    .type probe_read, @function
probe_read:
    xor %eax, %eax
probe_read_insn:
    mov (%rdi), %rcx
    FIXUP(probe_read_insn, 1f)
1:  ret

    .type probe_write, @function
probe_write:
    xor %eax, %eax
probe_write_insn:
    movb $0, (%rdi)
    FIXUP(probe_write_insn, 1f)
1:  ret

/* Jump to addr with a return address pushed. If fetching there faults, the
 * fault's RIP is addr itself: trap_handler recognises probe_exec_target and
 * resumes at probe_exec_resume, dropping the pushed return address. */
    .type probe_exec, @function
probe_exec:
    xor %eax, %eax
    mov %rdi, probe_exec_target(%rip)
    lea probe_exec_resume(%rip), %rcx
    push %rcx
    jmp *%rdi
    .globl probe_exec_resume
probe_exec_resume:
    movq $0, probe_exec_target(%rip)
    ret

    .type probe_divide, @function
probe_divide:
    mov %rdi, %rax
    xor %edx, %edx
    xor %ecx, %ecx
probe_divide_insn:
    div %rcx                          /* divide by zero: #DE */
    FIXUP(probe_divide_insn, 1f)
1:  ret

    .type probe_ud2, @function
probe_ud2:
    xor %eax, %eax
probe_ud2_insn:
    ud2                               /* the defined invalid opcode: #UD */
    FIXUP(probe_ud2_insn, 1f)
1:  ret

    .section .data
    .balign 8
probe_exec_target: .quad 0
