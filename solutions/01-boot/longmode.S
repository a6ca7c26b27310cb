/* Switching long mode on: the four steps of Intel SDM vol. 3A, 10.8.5.
 * Called by boot.S in 32-bit protected mode, paging off.
 */
#include "x86.h"

    .section .text.code32, "ax"
    .code32

// void lm_enable(uint32_t pml4): switch long mode on, in four steps.
// Contract and steps: the comment above `call lm_enable` in boot.S.
    .globl lm_enable
    .type lm_enable, @function
lm_enable:
    // LAB 1: your code here.
    mov %cr4, %eax                    /* 1. PAE */
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov 4(%esp), %eax                 /* 2. CR3 = pml4 */
    mov %eax, %cr3
    mov $MSR_EFER, %ecx               /* 3. EFER.LME and EFER.NXE */
    rdmsr
    or $(EFER_LME | EFER_NXE), %eax
    wrmsr
    mov %cr0, %eax                    /* 4. paging on, write protect on */
    or $(CR0_PG | CR0_WP), %eax
    mov %eax, %cr0
    // LAB 1: end of your code.
    ret
    .size lm_enable, . - lm_enable
