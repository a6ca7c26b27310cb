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
    (void)fl, (void)size;
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
    (void)fl, (void)p;
    // LAB 3: end of your code.
}
