/* The kernel heap over the .bss region this lab's bss.ld reserves, the
 * wrappers the rest of the kernel allocates with, and the given setup of the
 * challenge's free list. The allocators themselves are the student's:
 * heap.c and freelist.c.
 */
#include "heap.h"
#include "memlayout.h"
#include "serial.h"

struct heap kernel_heap;

/* The kernel heap: [__heap_start, __heap_end), checked to lie inside .bss
 * and inside the boot identity map before anything uses it. */
void
heap_setup(void)
{
    heap_init(&kernel_heap, __heap_start, __heap_end);
    struct heap *h = &kernel_heap;
    kprintf("[heap] kernel heap %p-%p (%u KiB)\n", (void *)h->start, (void *)h->end,
            (unsigned)((h->end - h->start) / 1024));
    if (h->start < (uint64_t)__bss_start || h->end > (uint64_t)__bss_end || h->start >= h->end)
        kprintf("[heap] FAIL: the heap %p-%p is not inside .bss (%p-%p)\n", (void *)h->start, (void *)h->end,
                __bss_start, __bss_end);
    else if (h->end > BOOT_IDMAP_SIZE)
        kprintf("[heap] FAIL: the heap ends beyond the identity map (%p)\n", (void *)BOOT_IDMAP_SIZE);
    else
        kprintf("[heap] bounds: inside .bss and the identity map\n");
}

void *
kmalloc(uint64_t size)
{
    return heap_alloc(&kernel_heap, size, HEAP_ALIGN);
}

/* npages zeroed pages, page-aligned: page tables, JIT code. */
void *
kmalloc_pages(uint64_t npages)
{
    if (npages > HEAP_SIZE / PAGE_SIZE) /* npages * PAGE_SIZE could wrap */
        return NULL;
    void *p = heap_alloc(&kernel_heap, npages * PAGE_SIZE, PAGE_SIZE);
    if (p)
        memset(p, 0, npages * PAGE_SIZE);
    return p;
}

/* The free list starts as one block covering the region, 16-byte aligned. */
void
fl_init(struct freelist *fl, void *start, void *end)
{
    uint64_t s = ((uint64_t)start + 15) & ~15ull, e = (uint64_t)end & ~15ull;
    fl->head = (struct fl_block *)s;
    fl->head->size = e - s;
    fl->head->next = NULL;
}
