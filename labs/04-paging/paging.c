/* Building the kernel's page tables from the memory map (Intel SDM vol. 3A,
 * 4.5): usable RAM identity-mapped read-write and no-execute, 2 MiB pages
 * where a whole aligned 2 MiB is usable and away from the kernel, 4 KiB pages
 * elsewhere; each kernel section with its own permissions; the page under
 * the stack and the page at address 0 left unmapped.
 */
#include "paging.h"
#include "heap.h"
#include "serial.h"

#define KERNEL_TEXT   (PTE_P)                  /* r-x */
#define KERNEL_RODATA (PTE_P | PTE_NX)         /* r-- */
#define KERNEL_DATA   (PTE_P | PTE_W | PTE_NX) /* rw- */
#define RAM           (PTE_P | PTE_W | PTE_NX) /* rw- */

pte_t *pt_root;

/* Map the 2 MiB page at va (2 MiB-aligned) to pa: a PD entry with PTE_PS.
 * Returns 0, or -1 if something already maps that PD entry. */
int
pt_map_large(uint64_t va, uint64_t pa, uint64_t flags)
{
    pte_t *pd_entry = pt_entry(va, 2, 1);
    int free = pd_entry != NULL && !(*pd_entry & PTE_P);
    if (free)
        *pd_entry = pa | flags | PTE_P | PTE_PS;
    return free ? 0 : -1;
}

/* Identity-map [start, end) with 4 KiB pages; pages already mapped are kept. */
static int
paging_map_range(uint64_t start, uint64_t end, uint64_t flags)
{
    int failures = 0;
    uint64_t pa, f;
    for (uint64_t a = start & ~(uint64_t)(PAGE_SIZE - 1); a < end; a += PAGE_SIZE)
        if (pt_translate(a, &pa, &f) != 0 && pt_map(a, a, flags) != 0)
            failures++;
    return failures;
}

/* Usable RAM: 2 MiB pages for whole aligned chunks that are usable and do
 * not touch the 2 MiB chunks holding the kernel, 4 KiB pages for the rest. */
static int
paging_map_ram(const struct boot_info *bi)
{
    uint64_t klo = (uint64_t)__kernel_start & ~(uint64_t)(LARGE_PAGE_SIZE - 1);
    uint64_t khi = ((uint64_t)__kernel_end + LARGE_PAGE_SIZE - 1) & ~(uint64_t)(LARGE_PAGE_SIZE - 1);
    int failures = 0;
    for (int i = 0; i < bi->nregions; i++) {
        const struct mem_region *r = &bi->regions[i];
        uint64_t a = (r->base + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1), end = r->base + r->length;
        if (r->type != MB2_MEM_USABLE)
            continue;
        if (a == 0)
            a = PAGE_SIZE; /* page 0 stays unmapped: NULL faults */
        while (a + PAGE_SIZE <= end) {
            if (a % LARGE_PAGE_SIZE == 0 && a + LARGE_PAGE_SIZE <= end && (a >= khi || a + LARGE_PAGE_SIZE <= klo)) {
                failures += pt_map_large(a, a, RAM) != 0;
                a += LARGE_PAGE_SIZE;
            } else {
                if (a < (uint64_t)__kernel_start || a >= (uint64_t)__kernel_end)
                    failures += paging_map_range(a, a + PAGE_SIZE, RAM);
                a += PAGE_SIZE;
            }
        }
    }
    return failures;
}

/* Before CR3 changes, every address the kernel is about to touch must map to
 * itself in the new tables; otherwise keep the boot tables and say why. */
static int
paging_verify(const struct boot_info *bi)
{
    uint64_t must[] = {(uint64_t)__text_start, (uint64_t)paging_verify, (uint64_t)__rodata_start,
                       (uint64_t)__data_start, (uint64_t)__bss_start,   (uint64_t)__stack_top - 8,
                       (uint64_t)pt_root,      (uint64_t)&bi->nregions};
    for (unsigned i = 0; i < sizeof must / sizeof must[0]; i++) {
        uint64_t pa = 0, flags;
        if (pt_translate(must[i], &pa, &flags) != 0 || pa != must[i]) {
            kprintf("[paging] FAIL: in the new tables %p %s: keeping the boot page tables\n", (void *)must[i],
                    pt_translate(must[i], &pa, &flags) ? "is not mapped (pt_map, pt_translate)" : "maps elsewhere");
            return -1;
        }
    }
    return 0;
}

/* Wait for one byte on COM1: the grader compares QEMU's view of the tables
 * (its monitor) with our dump meanwhile. Only when the command line asks. */
static void
paging_wait_for_grader(void)
{
    kprintf("[paging] tables final, waiting for the grader\n");
    while (!(inb(COM1_PORT + UART_LSR) & LSR_DR))
        ;
    (void)inb(COM1_PORT + UART_RBR);
}

void
paging_init(const struct boot_info *bi)
{
    pt_root = kmalloc_pages(1);
    if (pt_root == NULL)
        panic("paging_init: no page for the PML4");
    int failures = paging_map_range((uint64_t)__kernel_start, (uint64_t)__text_end, KERNEL_TEXT);
    failures += paging_map_range((uint64_t)__rodata_start, (uint64_t)__rodata_end, KERNEL_RODATA);
    failures += paging_map_range((uint64_t)__data_start, (uint64_t)__data_end, KERNEL_DATA);
    failures += paging_map_range((uint64_t)__bss_start, (uint64_t)__stack_guard, KERNEL_DATA);
    failures += paging_map_range((uint64_t)__stack_bottom, (uint64_t)__stack_top, KERNEL_DATA);
    failures += paging_map_ram(bi);
    if (failures)
        kprintf("[paging] FAIL: %d pages could not be mapped (pt_map, pt_entry)\n", failures);
    if (paging_verify(bi) != 0)
        return;
    write_cr3((uint64_t)pt_root);
    kprintf("[paging] CR3 = %p, kernel heap used for tables and tests: %lu bytes\n", pt_root, heap_used(&kernel_heap));
    paging_dump();
    if (monitor_wanted("paging"))
        paging_wait_for_grader();
}

struct dump_run {
    uint64_t start, end, pa; /* [start, end) maps to [pa, pa + end - start) */
    uint64_t flags;          /* effective PTE_W and PTE_NX */
};

static void
paging_dump_flush(struct dump_run *run)
{
    if (run->end == run->start)
        return;
    kprintf("[paging] map %p-%p r%c%c", (void *)run->start, (void *)run->end, run->flags & PTE_W ? 'w' : '-',
            run->flags & PTE_NX ? '-' : 'x');
    if (run->pa != run->start)
        kprintf(" -> %p", (void *)run->pa);
    kprintf("\n");
}

/* One leaf mapping: extend the current run, or print it and start anew. */
static void
paging_dump_leaf(struct dump_run *run, uint64_t va, uint64_t size, uint64_t pa, uint64_t flags)
{
    if (va == run->end && pa == run->pa + (run->end - run->start) && flags == run->flags) {
        run->end += size;
        return;
    }
    paging_dump_flush(run);
    *run = (struct dump_run){va, va + size, pa, flags};
}

static void
paging_dump_table(struct dump_run *run, pte_t *table, int level, uint64_t base, uint64_t flags)
{
    for (uint64_t i = 0; i < PT_ENTRIES; i++) {
        pte_t e = table[i];
        if (!(e & PTE_P))
            continue;
        uint64_t va = base + (i << PT_LEVEL_SHIFT(level));
        if (level == 4 && i >= PT_ENTRIES / 2)
            va |= CANONICAL_HIGH; /* canonical upper half */
        uint64_t eff = (flags & e & PTE_W) | ((flags | e) & PTE_NX);
        if (level == 1 || (e & PTE_PS))
            paging_dump_leaf(run, va, 1ull << PT_LEVEL_SHIFT(level),
                             PTE_ADDR(e) & ~((1ull << PT_LEVEL_SHIFT(level)) - 1), eff);
        else
            paging_dump_table(run, (pte_t *)PTE_ADDR(e), level - 1, va, eff);
    }
}

/* Print every mapping of pt_root as ranges [start, end) with permissions,
 * read from the tables themselves (not through pt_translate). */
void
paging_dump(void)
{
    struct dump_run run = {0, 0, 0, 0};
    paging_dump_table(&run, pt_root, 4, 0, PTE_W);
    paging_dump_flush(&run);
}
