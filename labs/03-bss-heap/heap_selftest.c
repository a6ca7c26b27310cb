/* The seeded self-tests of both allocators (heap.c and freelist.c), which
 * the grader checks against its own model of each (labs/03-bss-heap/checks.py).
 */
#include "heap.h"
#include "memlayout.h"
#include "serial.h"

#define TEST_REGION   (64 * 1024) /* bytes of the test heaps */
#define TEST_BLOCKS   10
#define TEST_MAX_SIZE 3000
#define FL_OPS        40
#define FL_SLOTS      12

static const uint64_t test_aligns[5] = {16, 16, 16, 64, 4096};

/* What the self-tests saw, for the grader to read from memory (a console
 * that prints something else does not change it): the test region and the
 * ten blocks heap_alloc gave; each free-list verdict, 0 not run, 1 ok, 2 failed, 3 skipped
 * (small remainder, churn, sizes that wrap, three blocks coalesced, all of it). */
uint64_t heap_selftest_seen[1 + TEST_BLOCKS];
int freelist_selftest_seen[5];

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

/* A refused request gives NULL and changes nothing. A block at address 0
 * reads as NULL too, so the heap's use must not have moved either; *used is
 * the use before the request, and becomes the use after it. */
static const char *
selftest_refused(const struct heap *h, void *p, uint64_t *used)
{
    uint64_t before = *used;
    *used = heap_used(h);
    if (p)
        return "gave a block";
    return *used == before ? "NULL" : "NULL but h->next moved";
}

/* A heap of 100 bytes that starts 8 bytes past a page: alignment is of the
 * address, not of the offset; a block that ends on the heap's last byte fits;
 * next moves to the end of a block, not further, and a request that fails
 * moves it not at all. Same on every run. */
static void
selftest_small(uint8_t *region)
{
    static const uint64_t size[4] = {3, 200, 5, 87}, align[4] = {1, 64, 16, 1};
    struct heap s;
    uint8_t *start = region + 8;
    heap_init(&s, start, start + 100);
    kprintf("[heap] 100 bytes at a page + 8:");
    for (int i = 0; i < 4; i++) {
        uint8_t *p = heap_alloc(&s, size[i], align[i]);
        if (p)
            kprintf(" %lu align %lu -> +0x%lx,", size[i], align[i], p - start);
        else
            kprintf(" %lu align %lu -> NULL,", size[i], align[i]);
    }
    kprintf(" 1 align 16 -> %s, used %lu\n", selftest_null(heap_alloc(&s, 1, 16)), heap_used(&s));
}

/* Twin: labs/03-bss-heap/checks.py heap_values computes what this prints. */
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
    heap_selftest_seen[0] = (uint64_t)region;
    uint8_t *blocks[TEST_BLOCKS];
    uint64_t sizes[TEST_BLOCKS], st = seed;
    for (int b = 0; b < TEST_BLOCKS; b++) {
        sizes[b] = 1 + seed_next(&st) % TEST_MAX_SIZE;
        uint64_t align = test_aligns[seed_next(&st) % 5];
        blocks[b] = heap_alloc(&t, sizes[b], align);
        heap_selftest_seen[1 + b] = (uint64_t)blocks[b];
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
    uint64_t used = heap_used(&t);
    kprintf("[heap] edges: size 0 %s, ", selftest_refused(&t, heap_alloc(&t, 0, 16), &used));
    kprintf("size 2^64-9 %s, ", selftest_refused(&t, heap_alloc(&t, ~0ull - 8, 16), &used));
    kprintf("align 0 %s, ", selftest_refused(&t, heap_alloc(&t, 16, 0), &used));
    kprintf("align 24 %s, ", selftest_refused(&t, heap_alloc(&t, 16, 24), &used));
    kprintf("align 2^63 %s\n", selftest_refused(&t, heap_alloc(&t, 16, 1ull << 63), &used));
    int count = 0;
    while (count <= TEST_REGION / PAGE_SIZE && heap_alloc(&t, PAGE_SIZE, HEAP_ALIGN))
        count++;
    if (count > TEST_REGION / PAGE_SIZE)
        kprintf("[heap] FAIL: more blocks of 4096 bytes than fit in %d bytes\n", TEST_REGION);
    else
        kprintf("[heap] exhausted after %d blocks of 4096 bytes, used %lu of %d\n", count, heap_used(&t), TEST_REGION);
    selftest_small(region);
    kprintf("[heap] kernel heap used: %lu bytes\n", heap_used(&kernel_heap));
}

/* Alloc and free in a seeded order, each block filled with its own byte.
 * Returns what went wrong first, with its slot in *bad, or NULL. */
static const char *
freelist_churn(struct freelist *fl, uint64_t seed, int *bad)
{
    uint8_t *slot[FL_SLOTS] = {0};
    uint64_t size[FL_SLOTS], st = seed ^ 0xf1;
    for (int op = 0; op < FL_OPS; op++) {
        int s = *bad = (int)(seed_next(&st) % FL_SLOTS);
        if (slot[s] == NULL) {
            size[s] = 1 + seed_next(&st) % 2000;
            slot[s] = fl_alloc(fl, size[s]);
            if (slot[s] == NULL)
                return "got no block";
            if ((uint64_t)slot[s] % 16)
                return "got a block that is not 16-byte aligned";
            memset(slot[s], 0x40 + s, size[s]);
            continue;
        }
        for (uint64_t i = 0; i < size[s]; i++)
            if (slot[s][i] != 0x40 + s)
                return "lost its bytes";
        fl_free(fl, slot[s]);
        slot[s] = NULL;
    }
    for (int s = 0; s < FL_SLOTS; s++)
        fl_free(fl, slot[s]);
    return NULL;
}

/* Three blocks on a page, freed middle, first, last: the first must merge
 * with the free block after it, the last with those before and after it.
 * Returns whether the page is one free block again. */
static int
freelist_coalesce(struct freelist *fl, uint8_t *page)
{
    fl_init(fl, page, page + PAGE_SIZE);
    void *x = fl_alloc(fl, 100), *y = fl_alloc(fl, 100), *z = fl_alloc(fl, 100);
    fl_free(fl, y);
    fl_free(fl, x);
    fl_free(fl, z);
    return x && y && z && fl_alloc(fl, PAGE_SIZE - FL_HEADER) != NULL;
}

void
freelist_selftest(uint64_t seed)
{
    uint8_t *region = kmalloc_pages(TEST_REGION / PAGE_SIZE + 1); /* the churn's, then one page */
    if (region == NULL)
        return;
    uint8_t *page = region + TEST_REGION;
    struct freelist fl, one;
    fl_init(&one, page, page + PAGE_SIZE);
    /* Nothing from a fresh block that memory holds as fl_init wrote it: the challenge not begun. */
    if (fl_alloc(&one, 16) == NULL && *(volatile uint64_t *)&one.head->size == PAGE_SIZE) {
        for (int i = 0; i < 5; i++)
            freelist_selftest_seen[i] = 3;
        kprintf("[freelist] FAIL: fl_alloc gave nothing from a fresh block of %d bytes: not begun? (the free "
                "list is the optional challenge); its tests are skipped\n",
                PAGE_SIZE);
        return;
    }
    fl_init(&one, page, page + PAGE_SIZE);
    void *a = fl_alloc(&one, PAGE_SIZE - FL_HEADER - FL_MIN_BLOCK); /* leaves FL_MIN_BLOCK bytes */
    void *b = fl_alloc(&one, 16), *c = fl_alloc(&one, 16);          /* b takes them all: c gets none */
    freelist_selftest_seen[0] = a && b && b > a && c == NULL ? 1 : 2;
    if (a && b && b > a && c == NULL)
        kprintf("[freelist] small remainder kept: ok\n");
    else if (a == NULL)
        kprintf("[freelist] small remainder kept: FAIL (fl_alloc gave no block from a free region of %d bytes)\n",
                PAGE_SIZE);
    else if (c != NULL)
        kprintf("[freelist] small remainder kept: FAIL (a block handed out twice: a block handed out whole "
                "must leave the free list)\n");
    else
        kprintf("[freelist] small remainder kept: FAIL (the %d bytes left after the first block were not kept "
                "free)\n",
                (int)FL_MIN_BLOCK);
    fl_init(&fl, region, region + TEST_REGION);
    int bad;
    const char *why = freelist_churn(&fl, seed, &bad);
    freelist_selftest_seen[1] = why == NULL ? 1 : 2;
    if (why == NULL)
        kprintf("[freelist] %d seeded operations, patterns intact: ok\n", FL_OPS);
    else
        kprintf("[freelist] %d seeded operations, patterns intact: FAIL (slot %d %s)\n", FL_OPS, bad, why);
    int wraps = fl_alloc(&fl, 0) || fl_alloc(&fl, ~0ull - 7) || fl_alloc(&fl, ~0ull - 15);
    freelist_selftest_seen[2] = wraps ? 2 : 1;
    kprintf("[freelist] size 0, 2^64-8 and 2^64-16: %s\n", wraps ? "FAIL (a block; rounding up must not wrap "
                                                                   "around 2^64)"
                                                                 : "NULL");
    int merged = freelist_coalesce(&one, page);
    freelist_selftest_seen[3] = merged ? 1 : 2;
    kprintf("[freelist] three blocks freed middle, first, last, one block again: %s\n",
            merged ? "ok"
                   : "FAIL (fl_free merges with the free block after it and "
                     "with the one before it)");
    void *all = fl_alloc(&fl, TEST_REGION - FL_HEADER);
    freelist_selftest_seen[4] = all ? 1 : 2;
    kprintf("[freelist] after freeing everything, one block of %d bytes: %s\n", TEST_REGION - (int)FL_HEADER,
            all ? "ok" : "FAIL");
}
