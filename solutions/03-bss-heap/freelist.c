/* The challenge of lab 03: an allocator that can free. A first-fit free list
 * kept in address order, splitting blocks that are too large and merging
 * neighbours when a block comes back.
 */
#include "heap.h"

/* void *fl_alloc(struct freelist *fl, uint64_t size)
 *
 * Contract: find the first free block with room for a header and `size`
 * bytes rounded up to 16 (call that need). If the block is larger than need by
 * at least FL_MIN_BLOCK, split it: the first `need` bytes are handed out and
 * the rest stays in the free list at the same place in address order;
 * otherwise hand out the whole block. Return the address just after the
 * header, or NULL when size is 0 or no free block is large enough.
 * Pitfall (a real allocator bug): keeping only "large" remainders leaves the
 * free list empty while memory remains; any remainder of FL_MIN_BLOCK or more
 * must stay free. And `size + 15` wraps around 2^64 for a huge size: refuse
 * sizes that no region can hold before rounding up.
 */
void *
fl_alloc(struct freelist *fl, uint64_t size)
{
    // LAB 3: your code here.
    if (size == 0 || size > (1ull << 40))
        return NULL;
    uint64_t need = FL_HEADER + ((size + 15) & ~15ull);
    for (struct fl_block **link = &fl->head; *link; link = &(*link)->next) {
        struct fl_block *b = *link;
        if (b->size < need)
            continue;
        if (b->size - need >= FL_MIN_BLOCK) {
            struct fl_block *rest = (struct fl_block *)((uint64_t)b + need);
            rest->size = b->size - need;
            rest->next = b->next;
            b->size = need;
            *link = rest;
        } else {
            *link = b->next;
        }
        return b + 1;
    }
    return NULL;
    // LAB 3: end of your code.
}

/* void fl_free(struct freelist *fl, void *p)
 *
 * Contract: give back the block whose data starts at p (NULL: do nothing).
 * Insert it in address order, then merge it with the next free block and with
 * the previous one when they touch, so that freeing everything leaves one
 * block as large as the region.
 */
void
fl_free(struct freelist *fl, void *p)
{
    // LAB 3: your code here.
    if (p == NULL)
        return;
    struct fl_block *b = (struct fl_block *)p - 1, *prev = NULL, **link = &fl->head;
    while (*link && *link < b) {
        prev = *link;
        link = &(*link)->next;
    }
    b->next = *link;
    *link = b;
    if (b->next && (uint64_t)b + b->size == (uint64_t)b->next) {
        b->size += b->next->size;
        b->next = b->next->next;
    }
    if (prev && (uint64_t)prev + prev->size == (uint64_t)b) {
        prev->size += b->size;
        prev->next = b->next;
    }
    // LAB 3: end of your code.
}
