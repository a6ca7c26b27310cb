/* The four pieces of exception handling that are yours: encoding an IDT gate
 * and the TSS descriptor, finding a fix-up, and spelling out a page-fault
 * error code. SDM vol. 3A: 6.14.1 (gates), 8.2.3 (TSS descriptor), 4.7
 * (page-fault error code).
 */
#include "trap.h"
#include "x86.h"

/* void idt_set_gate(int vector, void (*handler)(void), int ist)
 *
 * Contract: make idt[vector] a present 64-bit interrupt gate (GATE_PRESENT |
 * GATE_INTERRUPT, DPL 0) to `handler` in the kernel code segment SEG_KCODE,
 * using IST stack `ist` (0: the current stack). The handler's 64-bit address
 * is split over offset_low, offset_mid and offset_high; reserved stays 0.
 */
void
idt_set_gate(int vector, void (*handler)(void), int ist)
{
    // LAB 5: your code here.
    uint64_t a = (uint64_t)handler;
    struct idt_gate *g = &idt[vector];
    g->offset_low = (uint16_t)a;
    g->selector = SEG_KCODE;
    g->ist = (uint8_t)(ist & 7);
    g->type_attr = GATE_PRESENT | GATE_INTERRUPT;
    g->offset_mid = (uint16_t)(a >> 16);
    g->offset_high = (uint32_t)(a >> 32);
    g->reserved = 0;
    // LAB 5: end of your code.
}

/* void tss_descriptor(uint64_t base, uint32_t limit, uint64_t desc[2])
 *
 * Contract: the 16-byte GDT descriptor of a 64-bit TSS at `base` with byte
 * limit `limit` (size - 1): in desc[0], limit bits 15..0 at bits 15..0, base
 * bits 23..0 at 39..16, the type TSS_TYPE at 43..40, S = 0 (bit 44), DPL 0,
 * P (bit 47), limit bits 19..16 at 51..48, G = 0, base bits 31..24 at 63..56;
 * in desc[1], base bits 63..32 at 31..0, the rest 0.
 */
void
tss_descriptor(uint64_t base, uint32_t limit, uint64_t desc[2])
{
    // LAB 5: your code here.
    desc[0] = (limit & 0xffffull) | ((base & 0xffffffull) << 16) | ((uint64_t)TSS_TYPE << 40) | (1ull << 47) |
              (((uint64_t)limit >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
    desc[1] = base >> 32;
    // LAB 5: end of your code.
}

/* uint64_t fixup_find(uint64_t rip)
 *
 * Contract: the resume address of the fix-up entry whose insn is rip, or 0
 * if rip has no entry. The entries lie from __fixup_start to __fixup_end.
 */
uint64_t
fixup_find(uint64_t rip)
{
    // LAB 5: your code here.
    for (struct fixup *f = __fixup_start; f < __fixup_end; f++)
        if (f->insn == rip)
            return f->resume;
    return 0;
    // LAB 5: end of your code.
}

/* void pf_decode(uint64_t error, char *buf, int size)
 *
 * Contract: write into buf (at most size bytes, NUL included) the words of a
 * page-fault error code, joined by '|', in bit order:
 *   bit 0: "protection" if set, else "not-present"
 *   bit 1: "write" if set, else "read"
 *   bit 2: "user" if set, else "kernel"
 *   bit 3: "reserved-bit", bit 4: "fetch", bit 5: "protection-key",
 *   bit 6: "shadow-stack": each only if set.
 * Example: 0x11 gives "protection|read|kernel|fetch".
 */
void
pf_decode(uint64_t error, char *buf, int size)
{
    // LAB 5: your code here.
    const char *words[7] = {
        error & 1 ? "protection" : "not-present", error & 2 ? "write" : "read", error & 4 ? "user" : "kernel",
        error & 8 ? "reserved-bit" : NULL,        error & 16 ? "fetch" : NULL,  error & 32 ? "protection-key" : NULL,
        error & 64 ? "shadow-stack" : NULL,
    };
    int n = 0;
    for (int i = 0; i < 7; i++) {
        for (const char *w = words[i]; w && *w && n < size - 1; w++)
            buf[n++] = *w;
        if (i + 1 < 7 && words[i + 1] && n < size - 1)
            buf[n++] = '|';
    }
    buf[n] = 0;
    // LAB 5: end of your code.
}
