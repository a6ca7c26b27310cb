/* Exceptions: the IDT, the trap frame our entry stubs build, the TSS with
 * its IST stack for double faults, and the fix-up table that lets tests
 * provoke faults and go on. Intel SDM vol. 3A, chapter 6 (interrupts and
 * exceptions) and 8.7 (the 64-bit TSS).
 *
 *  the trap frame, as trap_common leaves it     (higher addresses up)
 *   +--------+
 *   |   ss   |  pushed by the CPU
 *   |  rsp   |
 *   | rflags |
 *   |   cs   |
 *   |  rip   |
 *   | error  |  by the CPU where TRAP_HAS_ERROR; else 0 by our stub
 *   | vector |  by our stub
 *   |  rax   |  by trap_common ... down to r15
 *   |  ...   |
 *   |  r15   |  <- the struct trap_frame pointer handed to trap_handler
 *   +--------+
 */
#ifndef TRAP_H
#define TRAP_H

/* The exceptions for which the CPU pushes an error code (SDM vol. 3A,
 * table 6-1): the stubs and the reports both ask this. */
#define TRAP_HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

#ifndef __ASSEMBLER__
#include "kernel.h"

struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

/* One 16-byte IDT gate in long mode (SDM vol. 3A, figure 6-8). */
struct idt_gate {
    uint16_t offset_low;  /* handler address bits 15..0 */
    uint16_t selector;    /* code segment: SEG_KCODE */
    uint8_t ist;          /* bits 2..0: IST stack, 0 = none */
    uint8_t type_attr;    /* P (bit 7), DPL (bits 6..5), type (bits 3..0) */
    uint16_t offset_mid;  /* bits 31..16 */
    uint32_t offset_high; /* bits 63..32 */
    uint32_t reserved;
};
#define GATE_PRESENT   0x80 /* P */
#define GATE_INTERRUPT 0x0e /* 64-bit interrupt gate: IF cleared on entry */
#define GATE_TRAP      0x0f /* 64-bit trap gate */

/* The 64-bit TSS (SDM vol. 3A, figure 8-11): only the IST pointers matter here. */
struct tss {
    uint32_t reserved0;
    uint64_t rsp[3]; /* stacks for privilege changes (unused: ring 0 only) */
    uint64_t reserved1;
    uint64_t ist[7]; /* IST1..IST7: ist[0] is IST1 */
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

#define SEG_TSS          0x18 /* GDT slots 3 and 4: the 16-byte TSS descriptor */
#define TSS_TYPE         0x09 /* available 64-bit TSS */
#define IST_DOUBLE_FAULT 1    /* vector 8 runs on IST1 */
#define IST_STACK_SIZE   8192

/* A fix-up: if an exception hits `insn`, resume at `resume`. The linker
 * collects the entries between __fixup_start and __fixup_end (kernel.ld). */
struct fixup {
    uint64_t insn;
    uint64_t resume;
};
extern struct fixup __fixup_start[], __fixup_end[];

/* What a probe returns: 0, or PROBE_FAULTED | vector << 32 | error. */
#define PROBE_FAULTED (1ull << 63)

/* trap.c (LAB 5) */
void idt_set_gate(int vector, void (*handler)(void), int ist);
void tss_descriptor(uint64_t base, uint32_t limit, uint64_t desc[2]);
uint64_t fixup_find(uint64_t rip);
void pf_decode(uint64_t error, char *buf, int size);

/* fault.c */
void fault_init(void);
void trap_handler(struct trap_frame *tf);
void fault_selftest(uint64_t seed);
extern struct idt_gate idt[256];
extern uint64_t gdt[]; /* the boot GDT (boot.S): code and data descriptors */

/* vectors.S and probes.S */
extern void (*const trap_stubs[32])(void);
uint64_t probe_read(uint64_t addr);
uint64_t probe_write(uint64_t addr);
uint64_t probe_exec(uint64_t addr);
extern uint64_t probe_exec_target; /* probes.S: the address probe_exec jumps to, while it runs */
extern char probe_exec_resume[];   /* probes.S: where a fetch fault at probe_exec_target resumes */
uint64_t probe_divide(uint64_t n);
uint64_t probe_ud2(void);
#endif /* __ASSEMBLER__ */
#endif
