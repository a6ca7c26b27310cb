/* Memory for the kernel: a bump allocator over a region of .bss (the
 * heap between __heap_start and __heap_end, HEAP_SIZE bytes, that this lab's
 * bss.ld adds to the linker script), and the challenge of this lab, a
 * free-list allocator with kfree.
 */
#ifndef HEAP_H
#define HEAP_H

#define HEAP_SIZE  0x400000 /* 4 MiB of .bss for the kernel heap (bss.ld) */
#define HEAP_ALIGN 16       /* every kmalloc block starts on this boundary */

#ifndef __ASSEMBLER__
#include "kernel.h"

extern char __heap_start[], __heap_end[]; /* bss.ld: use their addresses */

/* A bump allocator: blocks are handed out from `next` upwards, never freed. */
struct heap {
    uint64_t start; /* first byte of the region */
    uint64_t end;   /* one past the last byte */
    uint64_t next;  /* first byte not handed out yet */
};

/* heap.c (LAB 3) */
void heap_init(struct heap *h, void *start, void *end);
void *heap_alloc(struct heap *h, uint64_t size, uint64_t align);
uint64_t heap_used(const struct heap *h);

/* kheap.c: the kernel heap and its wrappers */
extern struct heap kernel_heap;
void heap_setup(void);
void *kmalloc(uint64_t size);
void *kmalloc_pages(uint64_t npages);

/* heap_selftest.c: the seeded self-tests of both allocators */
void heap_selftest(uint64_t seed);

/* The challenge: a first-fit free list with splitting and coalescing.
 * Each block starts with this header; free blocks are linked in address order. */
struct fl_block {
    uint64_t size;         /* bytes, header included; a multiple of 16 */
    struct fl_block *next; /* next free block (free blocks only) */
};
#define FL_HEADER    sizeof(struct fl_block) /* 16 bytes */
#define FL_MIN_BLOCK (FL_HEADER + 16)        /* the smallest block worth keeping */

struct freelist {
    struct fl_block *head; /* the free blocks, lowest address first */
};

/* freelist.c (LAB 3, challenge): yours to write */
void *fl_alloc(struct freelist *fl, uint64_t size);
void fl_free(struct freelist *fl, void *p);

/* kheap.c (given) */
void fl_init(struct freelist *fl, void *start, void *end);
void freelist_selftest(uint64_t seed); /* heap_selftest.c */
#endif                                 /* __ASSEMBLER__ */
#endif
