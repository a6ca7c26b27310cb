/* The kernel heap over the .bss region kernel.ld reserves, the wrappers the
 * rest of the kernel allocates with, and the seeded self-tests the grader
 * checks against its own model of each allocator.
 */
#include "heap.h"
#include "memlayout.h"
#include "serial.h"

#define TEST_REGION   (64 * 1024)   /* bytes of the test heaps */
#define TEST_BLOCKS   10
#define TEST_MAX_SIZE 3000
#define FL_OPS        40
#define FL_SLOTS      12

struct heap kernel_heap;
static const uint64_t test_aligns[5] = {16, 16, 16, 64, 4096};

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
        kprintf("[heap] FAIL: the heap %p-%p is not inside .bss (%p-%p)\n", (void *)h->start,
                (void *)h->end, __bss_start, __bss_end);
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
    if (npages > HEAP_SIZE / PAGE_SIZE)         /* npages * PAGE_SIZE could wrap */
        return NULL;
    void *p = heap_alloc(&kernel_heap, npages * PAGE_SIZE, PAGE_SIZE);
    if (p)
        memset(p, 0, npages * PAGE_SIZE);
    return p;
}

static uint8_t
selftest_pattern(uint64_t seed, int block, uint64_t i)
{
    return (uint8_t)((seed >> ((i % 8) * 8)) ^ (uint64_t)(block * 37) ^ (i * 7));
}

/* Write every block, then read every block back: overlapping blocks, or
 * memory that is not really there, return other bytes. Returns bytes checked. */
static uint64_t
selftest_patterns(uint64_t seed, uint8_t **blocks, const uint64_t *sizes, int n)
{
    uint64_t total = 0;
    for (int b = 0; b < n; b++)
        for (uint64_t i = 0; blocks[b] && i < sizes[b]; i++)
            blocks[b][i] = selftest_pattern(seed, b, i);
    for (int b = 0; b < n; b++)
        for (uint64_t i = 0; blocks[b] && i < sizes[b]; i++, total++)
            if (blocks[b][i] != selftest_pattern(seed, b, i)) {
                kprintf("[heap] READ_MISMATCH in block %d at byte %lu: wrote 0x%x, read 0x%x\n", b, i,
                        selftest_pattern(seed, b, i), blocks[b][i]);
                return 0;
            }
    return total;
}

static const char *
selftest_null(void *p)
{
    return p ? "gave a block" : "NULL";
}

void
heap_selftest(uint64_t seed)
{
    uint8_t *region = kmalloc_pages(TEST_REGION / PAGE_SIZE);
    if (region == NULL) {
        kprintf("[heap] FAIL: kmalloc_pages(%d) returned NULL: no test region\n", TEST_REGION / PAGE_SIZE);
        return;
    }
    struct heap t;
    heap_init(&t, region, region + TEST_REGION);
    uint8_t *blocks[TEST_BLOCKS];
    uint64_t sizes[TEST_BLOCKS], st = seed;
    for (int b = 0; b < TEST_BLOCKS; b++) {
        sizes[b] = 1 + seed_next(&st) % TEST_MAX_SIZE;
        uint64_t align = test_aligns[seed_next(&st) % 5];
        blocks[b] = heap_alloc(&t, sizes[b], align);
        if (blocks[b])
            kprintf("[heap] alloc %lu align %lu -> +0x%lx\n", sizes[b], align, blocks[b] - region);
        else
            kprintf("[heap] alloc %lu align %lu -> NULL\n", sizes[b], align);
        if ((uint64_t)blocks[b] % align)
            kprintf("[heap] FAIL: block %d at %p is not aligned to %lu\n", b, blocks[b], align);
    }
    uint64_t checked = selftest_patterns(seed, blocks, sizes, TEST_BLOCKS);
    if (checked)
        kprintf("[heap] write/read pattern over %d blocks, %lu bytes: ok\n", TEST_BLOCKS, checked);
    kprintf("[heap] used after %d blocks: %lu bytes\n", TEST_BLOCKS, heap_used(&t));
    kprintf("[heap] edges: size 0 %s, ", selftest_null(heap_alloc(&t, 0, 16)));
    kprintf("size 2^64-9 %s, ", selftest_null(heap_alloc(&t, ~0ull - 8, 16)));
    kprintf("align 0 %s, ", selftest_null(heap_alloc(&t, 16, 0)));
    kprintf("align 24 %s, ", selftest_null(heap_alloc(&t, 16, 24)));
    kprintf("align 2^63 %s\n", selftest_null(heap_alloc(&t, 16, 1ull << 63)));
    int count = 0;
    while (count <= TEST_REGION / PAGE_SIZE && heap_alloc(&t, PAGE_SIZE, HEAP_ALIGN))
        count++;
    if (count > TEST_REGION / PAGE_SIZE)
        kprintf("[heap] FAIL: more blocks of 4096 bytes than fit in %d bytes\n", TEST_REGION);
    else
        kprintf("[heap] exhausted after %d blocks of 4096 bytes, used %lu of %d\n", count, heap_used(&t),
                TEST_REGION);
    kprintf("[heap] kernel heap used: %lu bytes\n", heap_used(&kernel_heap));
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

/* Alloc and free in a seeded order, each block filled with its own byte;
 * returns the first slot whose bytes changed, or -1. */
static int
freelist_churn(struct freelist *fl, uint64_t seed)
{
    uint8_t *slot[FL_SLOTS] = {0};
    uint64_t size[FL_SLOTS], st = seed ^ 0xf1;
    for (int op = 0; op < FL_OPS; op++) {
        int s = (int)(seed_next(&st) % FL_SLOTS);
        if (slot[s] == NULL) {
            size[s] = 1 + seed_next(&st) % 2000;
            slot[s] = fl_alloc(fl, size[s]);
            if (slot[s] == NULL)
                return s;
            memset(slot[s], 0x40 + s, size[s]);
            continue;
        }
        for (uint64_t i = 0; i < size[s]; i++)
            if (slot[s][i] != 0x40 + s)
                return s;
        fl_free(fl, slot[s]);
        slot[s] = NULL;
    }
    for (int s = 0; s < FL_SLOTS; s++)
        fl_free(fl, slot[s]);
    return -1;
}

void
freelist_selftest(uint64_t seed)
{
    uint8_t *region = kmalloc_pages(TEST_REGION / PAGE_SIZE);
    if (region == NULL)
        return;
    struct freelist fl;
    fl_init(&fl, region, region + PAGE_SIZE);
    void *a = fl_alloc(&fl, PAGE_SIZE - FL_HEADER - 48);     /* leaves 48 bytes */
    void *b = fl_alloc(&fl, 16);
    kprintf("[freelist] small remainder kept: %s\n", a && b && b > a ? "ok" : a == NULL
            ? "FAIL (fl_alloc gave no block from a free region of 4096 bytes)"
            : "FAIL (the 48 bytes left after the first block were not kept free)");
    fl_init(&fl, region, region + TEST_REGION);
    int bad = freelist_churn(&fl, seed);
    if (bad < 0)
        kprintf("[freelist] %d seeded operations, patterns intact: ok\n", FL_OPS);
    else
        kprintf("[freelist] FAIL: slot %d lost its bytes or got no block\n", bad);
    void *all = fl_alloc(&fl, TEST_REGION - FL_HEADER);
    kprintf("[freelist] after freeing everything, one block of %d bytes: %s\n", TEST_REGION - (int)FL_HEADER,
            all ? "ok" : "FAIL");
}
