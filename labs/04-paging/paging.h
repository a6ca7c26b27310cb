/* The kernel's own 4-level page tables (Intel SDM vol. 3A, chapter 4.5,
 * "4-level paging"): built in C from the memory map, each kernel section
 * mapped with its permissions, a guard page under the stack.
 *
 *   63    48 47    39 38    30 29    21 20    12 11        0
 *  +--------+--------+--------+--------+--------+-----------+
 *  |  sign  | PML4   | PDPT   |  PD    |  PT    |  offset   |
 *  +--------+--------+--------+--------+--------+-----------+
 *            level 4  level 3  level 2  level 1
 */
#ifndef PAGING_H
#define PAGING_H
#include "kernel.h"
#include "mb2.h"
#include "memlayout.h"
#include "x86.h"

typedef uint64_t pte_t; /* one page-table entry: address bits and flags */

#define PT_ENTRIES            512
#define PT_LEVEL_SHIFT(level) (12 + 9 * ((level)-1)) /* 12, 21, 30, 39 */
#define PT_INDEX(va, level)   (((va) >> PT_LEVEL_SHIFT(level)) & (PT_ENTRIES - 1))
#define PTE_ADDR_MASK         0x000ffffffffff000ull /* bits 51..12 */
#define PTE_ADDR(e)           ((e)&PTE_ADDR_MASK)
#define PTE_PAT_LARGE         (1ull << 12) /* in a 2 MiB entry: PAT; its address is bits 51..21 */

extern pte_t *pt_root;       /* the PML4 that CR3 holds after paging_init */
extern char __stack_guard[]; /* bss.ld: the page under the stack, left unmapped */

/* pt.c (LAB 4) */
pte_t *pt_entry(uint64_t va, int level, int create);
int pt_map(uint64_t va, uint64_t pa, uint64_t flags);
int pt_unmap(uint64_t va);
int pt_translate(uint64_t va, uint64_t *pa, uint64_t *flags);

/* paging.c */
int pt_map_large(uint64_t va, uint64_t pa, uint64_t flags);
void paging_init(const struct boot_info *bi);
void paging_dump(void);
void paging_selftest(uint64_t seed, const struct boot_info *bi);

static inline void
invlpg(uint64_t va)
{
    __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static inline void
write_cr3(uint64_t pa)
{
    __asm__ volatile("mov %0, %%cr3" : : "r"(pa) : "memory");
}
#endif
