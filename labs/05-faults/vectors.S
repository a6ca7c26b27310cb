/* The entry stubs of the 32 exceptions (SDM vol. 3A, 6.14: exception handling
 * in 64-bit mode). Each makes the stack look the same, a struct trap_frame,
 * whether or not the CPU pushed an error code, and calls trap_handler.
 */
#include "trap.h"

    .section .text
.macro stub v
    .globl trap_stub_\v
    .type trap_stub_\v, @function
trap_stub_\v:
    .if !TRAP_HAS_ERROR(\v)
    push $0                           /* a dummy error code: one frame layout for all */
    .endif
    push $\v
    jmp trap_common
.endm

    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    stub \v
    .endr

/* Save every general register, hand the frame to trap_handler, restore,
 * drop the vector and the error code, and return with iretq. */
trap_common:
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
    mov %rsp, %rdi                    /* struct trap_frame * */
    cld
    call trap_handler
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
    add $16, %rsp                     /* the vector and the error code */
    iretq

    .section .rodata
    .balign 8
    .globl trap_stubs
trap_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad trap_stub_\v
    .endr
