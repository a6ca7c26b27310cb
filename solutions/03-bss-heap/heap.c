/* The bump allocator: the simplest allocator that is correct. Its region is
 * a static array in .bss (this lab's bss.ld: __heap_start, __heap_end), never a
 * made-up address: see book chapter 3, "Pitfalls".
 */
#include "heap.h"

/* void heap_init(struct heap *h, void *start, void *end)
 *
 * Contract: make h hand out the bytes of [start, end), from start upwards.
 * Nothing has been handed out yet.
 */
void
heap_init(struct heap *h, void *start, void *end)
{
    // LAB 3: your code here.
    h->start = (uint64_t)start;
    h->end = (uint64_t)end;
    h->next = (uint64_t)start;
    // LAB 3: end of your code.
}

/* void *heap_alloc(struct heap *h, uint64_t size, uint64_t align)
 *
 * Contract: return a block of `size` bytes whose address is a multiple of
 * `align`, taken at the first such address at or above h->next, and move
 * h->next to the end of the block. Return NULL, changing nothing, when size
 * is 0, when align is not a power of two, or when the block does not fit
 * below h->end.
 * Pitfall: `next + align - 1` and `addr + size` can wrap around 2^64 for huge
 * values and then look small: compare against the room that is left instead.
 */
void *
heap_alloc(struct heap *h, uint64_t size, uint64_t align)
{
    // LAB 3: your code here.
    if (size == 0 || align == 0 || (align & (align - 1)) != 0)
        return NULL;
    uint64_t pad = (0 - h->next) & (align - 1); /* bytes up to the next multiple */
    if (pad > h->end - h->next)
        return NULL;
    uint64_t addr = h->next + pad;
    if (size > h->end - addr)
        return NULL;
    h->next = addr + size;
    return (void *)addr;
    // LAB 3: end of your code.
}

/* uint64_t heap_used(const struct heap *h)
 *
 * Contract: the bytes handed out so far, alignment gaps included.
 */
uint64_t
heap_used(const struct heap *h)
{
    // LAB 3: your code here.
    return h->next - h->start;
    // LAB 3: end of your code.
}
