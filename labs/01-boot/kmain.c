/* The kernel's life in one screen. Each line is one subsystem, in boot order.
 * LAB_n(call) makes the call in a stage that has lab n and nothing in one
 * that has not; stage.h, made by the build, defines it and includes each
 * lab's header.
 */
#include "kernel.h"
#include "mb2.h"
#include "stage.h"

void
kmain(uint32_t magic, uint64_t mbi)
{
    LAB_2(serial_setup());                            /* lab 02: our 16550 driver takes the console */
    struct boot_info *bi = bootinfo_init(magic, mbi); /* lab 01: what GRUB told us */
    uint64_t seed = cmdline_seed();
    LAB_2(serial_selftest(seed));     /* lab 02: kprintf formats; panic if asked */
    LAB_3(heap_setup());              /* lab 03: the kernel heap, in .bss */
    LAB_3(heap_selftest(seed));       /* lab 03: seeded allocations, patterns, exhaustion */
    LAB_3(freelist_selftest(seed));   /* lab 03, challenge: an allocator with kfree */
    LAB_4(paging_init(bi));           /* lab 04: our own page tables, W^X, a stack guard */
    LAB_4(paging_selftest(seed, bi)); /* lab 04: permissions, translations, invlpg */
    LAB_5(fault_init());              /* lab 05: IDT, TSS with IST1, fix-ups */
    LAB_5(fault_selftest(seed));      /* lab 05: each fault on purpose; overflow if asked */
    LAB_6(model_selftest(seed, bi));  /* lab 06: the model, interpreted and JIT-compiled */
    (void)bi;
    (void)seed;
    con_puts("[kmain] all done\n");
    poweroff(EXIT_OK);
}
