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
    // LAB 1: end of your code.
    ret
    .size lm_enable, . - lm_enable
