/* The kernel's life in one screen. Each line is one subsystem, in boot order;
 * the stage being built (-DLAB=N) switches on what later labs add.
 */
#include "kernel.h"
#include "mb2.h"
#if LAB >= 2
#include "serial.h"
#endif
#if LAB >= 3
#include "heap.h"
#endif
#if LAB >= 4
#include "paging.h"
#endif
#if LAB >= 5
#include "trap.h"
#endif
#if LAB >= 6
#include "model.h"
#endif

void
kmain(uint32_t magic, uint64_t mbi)
{
#if LAB >= 2
    serial_setup();                        /* lab 02: our 16550 driver takes the console */
#endif
    struct boot_info *bi = bootinfo_init(magic, mbi);   /* lab 01: what GRUB told us */
    uint64_t seed = cmdline_seed();
#if LAB >= 2
    serial_selftest(seed);                 /* lab 02: kprintf formats; panic if asked */
#endif
#if LAB >= 3
    heap_setup();                          /* lab 03: the kernel heap, in .bss */
    heap_selftest(seed);                   /* lab 03: seeded allocations, patterns, exhaustion */
    freelist_selftest(seed);               /* lab 03, challenge: an allocator with kfree */
#endif
#if LAB >= 4
    paging_init(bi);                       /* lab 04: our own page tables, W^X, a stack guard */
    paging_selftest(seed, bi);             /* lab 04: permissions, translations, invlpg */
#endif
#if LAB >= 5
    fault_init();                          /* lab 05: IDT, TSS with IST1, fix-ups */
    fault_selftest(seed);                  /* lab 05: each fault on purpose; overflow if asked */
#endif
#if LAB >= 6
    model_selftest(seed, bi);              /* lab 06: the model, interpreted and JIT-compiled */
#endif
    (void)bi;
    (void)seed;
    con_puts("[kmain] all done\n");
    poweroff(EXIT_OK);
}
