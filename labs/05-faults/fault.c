/* Exception handling: the IDT and TSS set up with your encoders (checked
 * before they are loaded), the common handler that every stub calls, the
 * reports it prints, and the self-test that provokes each fault on purpose.
 */
#include "trap.h"
#include "paging.h"
#include "serial.h"

struct idt_gate idt[256] __attribute__((aligned(16)));
/* The GDT from fault_init on: the boot GDT's descriptors (boot.S), then the
 * 16-byte TSS descriptor in slots 3 and 4 (SEG_TSS). */
static uint64_t fault_gdt[SEG_TSS / 8 + 2] __attribute__((aligned(16)));
static struct tss tss;
static uint8_t ist_stack[IST_STACK_SIZE] __attribute__((aligned(16)));
static int fault_ready;
extern uint64_t probe_exec_target;
extern char probe_exec_resume[];

static const char *const fault_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range",
    "#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor overrun",
    "#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
    "#PF page fault", "reserved 15", "#MF x87 error", "#AC alignment check", "#MC machine check",
    "#XM SIMD exception", "#VE virtualization", "#CP control protection", "reserved 22", "reserved 23",
    "reserved 24", "reserved 25", "reserved 26", "reserved 27", "#HV hypervisor injection",
    "#VC VMM communication", "#SX security", "reserved 31",
};

/* Read back what idt_set_gate wrote; name the first field that is wrong. */
static int
fault_check_gate(int v, void (*handler)(void), int ist)
{
    const struct idt_gate *g = &idt[v];
    uint64_t a = g->offset_low | ((uint64_t)g->offset_mid << 16) | ((uint64_t)g->offset_high << 32);
    const char *bad = !(g->type_attr & GATE_PRESENT) ? "the present bit is clear"
                    : (g->type_attr & 0x0f) != GATE_INTERRUPT ? "the type is not a 64-bit interrupt gate (0xe)"
                    : (g->type_attr & 0x60) ? "the DPL is not 0"
                    : a != (uint64_t)handler ? "the offset fields do not give the handler's address"
                    : g->selector != SEG_KCODE ? "the selector is not SEG_KCODE"
                    : (g->ist & 7) != ist ? "the IST field is wrong" : NULL;
    if (bad)
        kprintf("[fault] FAIL: idt_set_gate(%d): %s (type_attr 0x%x, ist %d)\n", v, bad, g->type_attr, g->ist);
    return bad == NULL;
}

static int
fault_check_tss(const uint64_t desc[2])
{
    uint64_t base = ((desc[0] >> 16) & 0xffffff) | ((desc[0] >> 56) << 24) | (desc[1] << 32);
    uint64_t limit = (desc[0] & 0xffff) | (((desc[0] >> 48) & 0xf) << 16);
    const char *bad = ((desc[0] >> 40) & 0xf) != TSS_TYPE ? "the type is not an available 64-bit TSS (9)"
                    : !(desc[0] & (1ull << 47)) ? "the present bit is clear"
                    : base != (uint64_t)&tss ? "the base fields do not give the TSS's address"
                    : limit != sizeof tss - 1 ? "the limit is not sizeof(struct tss) - 1" : NULL;
    if (bad)
        kprintf("[fault] FAIL: tss_descriptor: %s\n", bad);
    return bad == NULL;
}

/* Build and check the IDT, the TSS with IST1 for double faults, and the
 * fix-up lookup; load them only if they are right. */
void
fault_init(void)
{
    int ok = 1;
    for (int v = 0; v < 32; v++)
        idt_set_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);
    for (int v = 0; v < 32 && ok; v++)
        ok = fault_check_gate(v, trap_stubs[v], v == 8 ? IST_DOUBLE_FAULT : 0);
    tss.ist[IST_DOUBLE_FAULT - 1] = (uint64_t)ist_stack + sizeof ist_stack;
    tss.iomap_base = sizeof tss;
    uint64_t desc[2];
    tss_descriptor((uint64_t)&tss, sizeof tss - 1, desc);
    ok = ok && fault_check_tss(desc);
    int entries = (int)(__fixup_end - __fixup_start);
    if (ok && (fixup_find(__fixup_start[0].insn) != __fixup_start[0].resume || fixup_find(0) != 0)) {
        kprintf("[fault] FAIL: fixup_find does not find the probes' entries\n");
        ok = 0;
    }
    if (!ok)
        return;
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr = {sizeof idt - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" : : "m"(idtr));
    memcpy(fault_gdt, gdt, SEG_TSS);
    fault_gdt[SEG_TSS / 8] = desc[0];
    fault_gdt[SEG_TSS / 8 + 1] = desc[1];
    struct { uint16_t limit; uint64_t base; } __attribute__((packed)) gdtr = {sizeof fault_gdt - 1,
                                                                             (uint64_t)fault_gdt};
    __asm__ volatile("lgdt %0; ltr %w1" : : "m"(gdtr), "r"(SEG_TSS));
    fault_ready = 1;
    kprintf("[fault] IDT: 32 gates loaded, vector 8 on IST1; TSS loaded; fix-ups: %d entries\n", entries);
}

/* One line: which exception, where, its error code (decoded for #PF, with
 * what the page tables say of CR2), and what happens next. */
static void
fault_report(const struct trap_frame *tf, uint64_t cr2, const char *outcome)
{
    kprintf("[fault] %s at rip %p", fault_names[tf->vector & 31], (void *)tf->rip);
    if (TRAP_HAS_ERROR(tf->vector))
        kprintf(" error 0x%lx", tf->error);
    if (tf->vector == 14) {
        char words[96];
        uint64_t pa, flags;
        pf_decode(tf->error, words, sizeof words);
        kprintf(" (%s) cr2 %p", words, (void *)cr2);
        if (pt_translate(cr2, &pa, &flags) != 0)
            kprintf(" (not mapped)");
        else
            kprintf(" (maps to %s, r%c%c)", pa == cr2 ? "itself" : "elsewhere", flags & PTE_W ? 'w' : '-',
                    flags & PTE_NX ? '-' : 'x');
    }
    kprintf(": %s\n", outcome);
}

/* Vector 8 runs on IST1: the stack it interrupted may be unusable. */
__attribute__((noreturn)) static void
fault_double(const struct trap_frame *tf, uint64_t cr2)
{
    uint64_t guard = (uint64_t)__stack_guard, bottom = (uint64_t)__stack_bottom;
    if (tf->rsp >= guard && tf->rsp <= bottom + 64)
        kprintf("[fault] #DF double fault on IST1: rsp %p is at the stack guard page %p: "
                "a kernel stack overflow (cr2 %p)\n", (void *)tf->rsp, (void *)guard, (void *)cr2);
    else
        kprintf("[fault] #DF double fault on IST1 at rip %p, rsp %p, cr2 %p\n", (void *)tf->rip,
                (void *)tf->rsp, (void *)cr2);
    poweroff(EXIT_DOUBLE_FAULT);
}

/* Every exception comes here from trap_common. */
void
trap_handler(struct trap_frame *tf)
{
    uint64_t cr2 = read_cr2();
    if (tf->vector == 8)
        fault_double(tf, cr2);
    uint64_t resume = fixup_find(tf->rip);
    if (resume == 0 && probe_exec_target != 0 && tf->rip == probe_exec_target) {
        resume = (uint64_t)probe_exec_resume;   /* a fetch fault: drop probe_exec's return address */
        tf->rsp += 8;
    }
    if (resume) {
        fault_report(tf, cr2, "recovered by a fix-up");
        tf->rax = PROBE_FAULTED | (tf->vector << 32) | (tf->error & 0xffffffff);
        tf->rip = resume;
        return;
    }
    if (tf->vector == 3) {
        kprintf("[fault] #BP breakpoint at %p: resuming\n", (void *)tf->rip);
        return;
    }
    fault_report(tf, cr2, "unexpected, powering off");
    poweroff(EXIT_PANIC);
}

static void
fault_test(const char *what, uint64_t addr, uint64_t r)
{
    kprintf("[fault] test %s", what);
    if (addr)
        kprintf(" %p", (void *)addr);
    if (r & PROBE_FAULTED)
        kprintf(" -> vector %lu error 0x%lx\n", (r >> 32) & 0xff, r & 0xffffffff);
    else
        kprintf(" -> no fault\n");
}

/* Recursion that only the guard page ends: each call keeps a frame on the
 * stack (the depth limit is far beyond the stack's size). */
static uint64_t
fault_recurse(uint64_t n)
{
    volatile uint8_t pad[256];
    pad[0] = (uint8_t)n;
    if (n > (1ull << 40))
        return pad[0];
    return fault_recurse(n + 1) + pad[0];
}

void
fault_selftest(uint64_t seed)
{
    if (!fault_ready) {
        kprintf("[fault] FAIL: exceptions are not set up: no self-test\n");
        return;
    }
    uint64_t st = seed, text = (uint64_t)(__text_end - __text_start);
    fault_test("divide", 0, probe_divide(seed));
    fault_test("ud2", 0, probe_ud2());
    __asm__ volatile("int3");
    kprintf("[fault] test int3 -> resumed\n");
    uint64_t gp = 0x0000800000000000ull + (seed_next(&st) & 0xfffff000ull);
    fault_test("non-canonical read", gp, probe_read(gp));
    uint64_t unmapped = 0x00007e0000000000ull + PAGE_SIZE * (seed_next(&st) % 4096);
    fault_test("read", unmapped, probe_read(unmapped));
    uint64_t ro = (uint64_t)__rodata_start + seed_next(&st) % (uint64_t)(__rodata_end - __rodata_start);
    fault_test("write .rodata", ro, probe_write(ro));
    uint64_t nx = (uint64_t)__data_start + seed_next(&st) % (uint64_t)(__data_end - __data_start);
    fault_test("execute .data", nx, probe_exec(nx));
    uint64_t code = (uint64_t)__text_start + seed_next(&st) % text;
    fault_test("write .text", code, probe_write(code));
    if (test_named("overflow")) {
        kprintf("[fault] test stack overflow: recursing into the guard page\n");
        fault_recurse(0);
    }
}
