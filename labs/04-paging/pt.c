/* Walking and editing the 4-level page tables that pt_root points to.
 * Tables are identity-mapped (virtual == physical), so an entry's address
 * can be used as a pointer directly.
 */
#include "paging.h"
#include "heap.h"

/* pte_t *pt_entry(uint64_t va, int level, int create)
 *
 * Contract: return a pointer to the entry that maps va at `level` (1: the PT
 * entry of a 4 KiB page, 2: the PD entry of a 2 MiB page), starting from
 * pt_root at level 4. At each level above `level`, an entry that is not
 * present leads nowhere: return NULL, unless create is set; then take a
 * zeroed page with kmalloc_pages(1) for the next table and point the entry at
 * it with PTE_P | PTE_W (the leaf entry decides the real permissions).
 * Return NULL too when an entry above `level` maps a large page (PTE_PS),
 * or when a table cannot be allocated.
 */
pte_t *
pt_entry(uint64_t va, int level, int create)
{
    // LAB 4: your code here.
    (void)va, (void)level, (void)create;
    return NULL;
    // LAB 4: end of your code.
}

/* int pt_map(uint64_t va, uint64_t pa, uint64_t flags)
 *
 * Contract: map the 4 KiB page at va to the physical page pa with `flags`
 * (PTE_W, PTE_NX, ...; PTE_P is implied). va and pa are page-aligned.
 * Return 0, or -1 if va is already mapped or a table cannot be made.
 */
int
pt_map(uint64_t va, uint64_t pa, uint64_t flags)
{
    // LAB 4: your code here.
    (void)va, (void)pa, (void)flags;
    return -1;
    // LAB 4: end of your code.
}

/* int pt_unmap(uint64_t va)
 *
 * Contract: remove the 4 KiB mapping of va and drop the CPU's cached
 * translation of it (invlpg in paging.h). Return 0, or -1 if va was not
 * mapped by a 4 KiB page.
 * Fact: the TLB keeps a translation after its entry is cleared; without
 * invlpg the old page stays reachable through va.
 */
int
pt_unmap(uint64_t va)
{
    // LAB 4: your code here.
    (void)va;
    return -1;
    // LAB 4: end of your code.
}

/* int pt_translate(uint64_t va, uint64_t *pa, uint64_t *flags)
 *
 * Contract: the physical address va maps to, through a 2 MiB page (a PD
 * entry with PTE_PS) or a 4 KiB page, in *pa, and the flags of the entry
 * that maps it (the low 12 bits and PTE_NX, bit 63) in *flags. Return 0, or
 * -1 if va is not mapped.
 * Facts: a 4 KiB entry's address is bits 51..12 (PTE_ADDR); a 2 MiB entry's
 * is bits 51..21, and its bit 12 is PAT, not an address bit; add the offset
 * of va within its page (12 or 21 low bits).
 */
int
pt_translate(uint64_t va, uint64_t *pa, uint64_t *flags)
{
    // LAB 4: your code here.
    (void)va, (void)pa, (void)flags;
    return -1;
    // LAB 4: end of your code.
}
