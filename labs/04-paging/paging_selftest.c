/* The seeded self-test of lab 04: section permissions, unmapped pages,
 * translations the grader computes from the memory map and the seed, made-up
 * mappings with high addresses, and a map, unmap, remap sequence that a
 * missing invlpg gives away.
 */
#include "paging.h"
#include "heap.h"
#include "serial.h"

#define SELFTEST_MARK_A 0xaaaa0000aaaa0000ull
#define SELFTEST_MARK_B 0xbbbb0000bbbb0000ull

/* What the map, unmap, remap test saw, for the grader to read from memory:
 * 0 not run, 1 ok, 2 failed (reads A, unmapped, both refused, reads B). */
int paging_selftest_seen[4];

static const char *
selftest_perms(uint64_t va)
{
    static char s[4];
    uint64_t pa, flags;
    if (pt_translate(va, &pa, &flags) != 0)
        return "not mapped";
    s[0] = 'r';
    s[1] = (flags & PTE_W) ? 'w' : '-';
    s[2] = (flags & PTE_NX) ? '-' : 'x';
    return s;
}

static void
selftest_section(const char *name, char *start, char *end)
{
    char first[16];
    const char *p = selftest_perms((uint64_t)start);
    memcpy(first, p, strlen(p) + 1);
    const char *last = selftest_perms((uint64_t)end - 1);
    int same = strncmp(first, last, sizeof first) == 0;
    kprintf("[paging] %s %p-%p %s%s%s\n", name, start, end, first, same ? "" : " up to ", same ? "" : last);
}

/* Print what pt_translate says of va; if va is usable RAM (`touch`), read it
 * too: every byte of usable RAM must be mapped, whatever the tables claim. */
static void
selftest_translate(uint64_t va, int touch)
{
    uint64_t pa, flags;
    if (pt_translate(va, &pa, &flags) == 0)
        kprintf("[paging] translate %p -> %p\n", (void *)va, (void *)pa);
    else
        kprintf("[paging] translate %p -> not mapped\n", (void *)va);
    if (touch)
        (void)*(volatile uint8_t *)va;
}

/* Map a 4 KiB page and a 2 MiB page (PAT set) to made-up high physical
 * addresses, translate an address inside each, and take them away again. */
static void
selftest_high(void)
{
    uint64_t pa, flags, va = SELFTEST_HIGH_VA + 0x123, large = SELFTEST_LARGE_VA + SELFTEST_LARGE_OFFSET;
    if (pt_map(SELFTEST_HIGH_VA, SELFTEST_HIGH_PA, PTE_NX) != 0) {
        kprintf("[paging] FAIL: pt_map(%p, %p) did not map it\n", (void *)SELFTEST_HIGH_VA, (void *)SELFTEST_HIGH_PA);
    } else if (pt_translate(va, &pa, &flags) != 0) {
        kprintf("[paging] translate %p -> not mapped (4 KiB, made up)\n", (void *)va);
    } else {
        pte_t *e = pt_entry(SELFTEST_HIGH_VA, 1, 0), want = PTE_P | PTE_NX;
        if (e && (*e & (PTE_NX | 0xfff)) != want) /* the entry itself: pt_map's doing */
            kprintf("[paging] translate %p -> %p (4 KiB, made up), flags FAIL: pt_map set 0x%lx, asked for 0x%lx\n",
                    (void *)va, (void *)pa, *e & (PTE_NX | 0xfff), want);
        else
            kprintf("[paging] translate %p -> %p (4 KiB, made up), flags %s\n", (void *)va, (void *)pa,
                    flags == want ? "r--" : "FAIL: pt_translate's are not those of the entry");
    }
    pt_unmap(SELFTEST_HIGH_VA);
    if (pt_map_large(SELFTEST_LARGE_VA, SELFTEST_LARGE_PA, PTE_NX | PTE_PAT_LARGE) != 0) {
        kprintf("[paging] FAIL: pt_map_large(%p) found its PD entry taken\n", (void *)SELFTEST_LARGE_VA);
        return;
    }
    if (pt_translate(large, &pa, &flags) != 0)
        kprintf("[paging] translate %p -> not mapped (2 MiB, PAT, made up)\n", (void *)large);
    else
        kprintf("[paging] translate %p -> %p (2 MiB, PAT, made up)\n", (void *)large, (void *)pa);
    pte_t *pd_entry = pt_entry(SELFTEST_LARGE_VA, 2, 0);
    if (pd_entry)
        *pd_entry = 0;
    invlpg(SELFTEST_LARGE_VA);
}

/* pt_entry must stop at a 2 MiB page (and pt_map refuse to map inside one),
 * and make no table when create is 0. The line shows what pt_entry and
 * pt_map returned ("not tried" after an earlier step failed), then the verdict. */
static void
selftest_entries(const struct mem_region *big)
{
    uint64_t large = ((big->base + big->length) & ~(uint64_t)(LARGE_PAGE_SIZE - 1)) - LARGE_PAGE_SIZE + 0x5000;
    uint64_t used = heap_used(&kernel_heap);
    pte_t *pd_entry = pt_entry(large, 2, 0), *below = NULL;
    int tried = 0, mapped = 0;
    const char *why = "ok";
    if (pd_entry == NULL || !(*pd_entry & PTE_PS)) {
        why = "FAIL: the test page is not a 2 MiB page";
    } else {
        tried = 1;
        below = pt_entry(large, 1, 0);
        if (below != NULL) {
            why = "FAIL: pt_entry went below a PTE_PS entry";
        } else {
            tried = 2;
            mapped = pt_map(large, large, PTE_W | PTE_NX);
            if (mapped == 0)
                why = "FAIL: pt_map mapped a page inside a 2 MiB page";
            else if (pt_entry(SELFTEST_EMPTY_VA, 1, 0) != NULL || heap_used(&kernel_heap) != used)
                why = "FAIL: pt_entry made a table with create 0";
        }
    }
    kprintf("[paging] pt_entry inside a 2 MiB page: ");
    if (tried == 0)
        kprintf("not tried");
    else if (below)
        kprintf("%p", (void *)below);
    else
        kprintf("NULL");
    if (tried == 2)
        kprintf(", pt_map there: %d", mapped);
    else
        kprintf(", pt_map there: not tried");
    kprintf(", no table made with create 0: %s\n", why);
}

static void
selftest_remap(uint64_t seed)
{
    uint64_t va = SELFTEST_MAP_VA + PAGE_SIZE * (seed % 4096), pa, flags;
    uint64_t *a = kmalloc_pages(1), *b = kmalloc_pages(1);
    *a = SELFTEST_MARK_A;
    *b = SELFTEST_MARK_B;
    if (pt_map(va, (uint64_t)a, PTE_W | PTE_NX) != 0 || pt_translate(va, &pa, &flags) != 0 || pa != (uint64_t)a) {
        kprintf("[paging] FAIL: pt_map(%p, %p) did not map it\n", (void *)va, a);
        return;
    }
    uint64_t v = *(volatile uint64_t *)va;
    paging_selftest_seen[0] = v == SELFTEST_MARK_A ? 1 : 2;
    kprintf("[paging] map %p -> page A, reads %s\n", (void *)va, v == SELFTEST_MARK_A ? "A" : "something else");
    int again = pt_map(va, (uint64_t)b, PTE_W | PTE_NX);
    int r = pt_unmap(va);
    int gone = r == 0 && pt_translate(va, &pa, &flags) != 0;
    paging_selftest_seen[1] = gone ? 1 : 2;
    kprintf("[paging] unmap %p: %s\n", (void *)va, gone ? "not mapped any more" : "FAIL: still mapped");
    int twice = pt_unmap(va);
    paging_selftest_seen[2] = again == -1 && twice == -1 ? 1 : 2;
    kprintf("[paging] map it while mapped: %d, unmap it while not mapped: %d\n", again, twice);
    if (pt_map(va, (uint64_t)b, PTE_W | PTE_NX) != 0) {
        kprintf("[paging] FAIL: pt_map(%p, %p) after unmap\n", (void *)va, b);
        return;
    }
    v = *(volatile uint64_t *)va;
    paging_selftest_seen[3] = v == SELFTEST_MARK_B ? 1 : 2;
    kprintf("[paging] remap %p -> page B, reads %s\n", (void *)va,
            v == SELFTEST_MARK_B   ? "B"
            : v == SELFTEST_MARK_A ? "A: a stale TLB entry (invlpg missing?)"
                                   : "something else");
    pt_unmap(va);
}

/* Twin: labs/04-paging/checks.py paging_values computes its seeded translations. */
void
paging_selftest(uint64_t seed, const struct boot_info *bi)
{
    if (read_cr3() != (uint64_t)pt_root) {
        kprintf("[paging] FAIL: the kernel still runs on the boot page tables\n");
        return;
    }
    selftest_section(".text", __text_start, __text_end);
    selftest_section(".rodata", __rodata_start, __rodata_end);
    selftest_section(".data", __data_start, __data_end);
    selftest_section(".bss", __bss_start, __stack_guard);
    kprintf("[paging] stack guard page %p: %s\n", __stack_guard, selftest_perms((uint64_t)__stack_guard));
    kprintf("[paging] page 0: %s\n", selftest_perms(0));
    const struct mem_region *big = NULL;
    uint64_t top = 0, st = seed, lo;
    for (int i = 0; i < bi->nregions; i++) {
        const struct mem_region *r = &bi->regions[i];
        if (r->type == MB2_MEM_USABLE && (big == NULL || r->length > big->length))
            big = r;
        if (r->type == MB2_MEM_USABLE && r->base + r->length > top)
            top = r->base + r->length;
    }
    /* usable RAM above the kernel image: not the guard page, not page 0 */
    lo = ((uint64_t)__kernel_end + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
    lo = big && big->base > lo ? big->base : lo;
    for (int i = 0; big && lo < big->base + big->length && i < 5; i++)
        selftest_translate(lo + (seed_next(&st) % (big->base + big->length - lo) & ~7ull), 1);
    selftest_translate(((top + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1)) + PAGE_SIZE * (seed_next(&st) % 256), 0);
    selftest_high();
    if (big)
        selftest_entries(big);
    selftest_remap(seed_next(&st));
}
