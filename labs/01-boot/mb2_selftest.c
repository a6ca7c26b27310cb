/* mb2_parse and mb2_read_mmap on made-up boot information, built here, with
 * the edges GRUB's real block never shows: sizes that are not multiples of 8,
 * tag types the parser does not know, more modules and memory-map entries
 * than struct boot_info holds, entries further apart than their struct, and
 * two malformed blocks. Multiboot2 specification, section 3.6.
 */
#include "kernel.h"
#include "mb2.h"

#define ST_MODULES (BOOT_MAX_MODULES + 1) /* one more than fits */
#define ST_ENTRIES (BOOT_MAX_REGIONS + 1) /* one more than fits */
#define ST_STRIDE  32                     /* entry_size: 8 bytes more than the struct */
#define ST_TAGS    (ST_MODULES + 4)       /* block 1: cmdline, two unknown types, loader */
#define ST_FILL    0xee                   /* padding and unknown fields: never zero */

/* Each made-up block's verdict (memory map, tags, bad blocks): 0 not run,
 * 1 ok, 2 failed. The grader reads them from memory: a console that prints
 * something else does not change them. */
int mb2_selftest_seen[3];

static uint64_t st_block[(8 + 16 + 16 + ST_ENTRIES * ST_STRIDE + 8) / 8];
static struct {
    struct boot_info bi;
    uint64_t spill[8]; /* room for a write past the end of bi */
} st;

/* The made-up memory map's entry i. */
static struct mb2_mmap_entry
st_entry(int i)
{
    struct mb2_mmap_entry e = {((uint64_t)(i + 1) << 32) | ((uint64_t)i << 12), 0x1000ull * (uint64_t)(i + 1),
                               1 + (uint32_t)i % 5, 0};
    return e;
}

/* Write a tag of `size` bytes (its 8-byte header, then the payload at data)
 * at p, fill the padding up to 8 bytes, and return where the next tag goes. */
static uint8_t *
st_tag(uint8_t *p, uint32_t type, uint32_t size, const void *data)
{
    struct mb2_tag *t = (struct mb2_tag *)p;
    uint32_t padded = (size + MB2_TAG_ALIGN - 1) & ~(uint32_t)(MB2_TAG_ALIGN - 1);
    uint32_t used = size > sizeof *t ? size : sizeof *t;
    t->type = type;
    t->size = size;
    memcpy(p + sizeof *t, data, used - sizeof *t);
    memset(p + used, ST_FILL, padded - used);
    return p + padded;
}

/* A memory-map tag of n entries, ST_STRIDE bytes apart. */
static uint8_t *
st_mmap(uint8_t *p, int n)
{
    struct mb2_tag_mmap *t = (struct mb2_tag_mmap *)p;
    t->type = MB2_TAG_MMAP;
    t->size = sizeof *t + (uint32_t)n * ST_STRIDE;
    t->entry_size = ST_STRIDE;
    t->entry_version = 0;
    p += sizeof *t;
    for (int i = 0; i < n; i++, p += ST_STRIDE) {
        struct mb2_mmap_entry e = st_entry(i);
        memset(p, ST_FILL, ST_STRIDE);
        memcpy(p, &e, sizeof e);
    }
    return p;
}

/* Module i: [0x200000 + 0x1000 i, + 0x800), command line "mod<i>". */
static uint8_t *
st_module(uint8_t *p, int i)
{
    struct {
        uint32_t start, end;
        char cmdline[5];
    } m = {0x200000u + 0x1000u * (uint32_t)i, 0x200800u + 0x1000u * (uint32_t)i, "mod0"};
    m.cmdline[3] = (char)('0' + i);
    return st_tag(p, MB2_TAG_MODULE, 8 + 8 + 5, &m);
}

/* Run mb2_parse on the block that ends at end, from a zeroed boot_info. */
static int
st_parse(uint8_t *end)
{
    ((struct mb2_info *)st_block)->total_size = (uint32_t)(end - (uint8_t *)st_block);
    memset(&st, 0, sizeof st);
    return mb2_parse((uint64_t)st_block, &st.bi);
}

static int
st_is(const char *s, const char *want)
{
    return s && strncmp(s, want, strlen(want) + 1) == 0;
}

/* Block 1: strings, unknown types, modules. What is wrong, or NULL. */
static const char *
st_tags(int *ntags)
{
    uint32_t load_base = 0x1234, meminfo[2] = {640, 65536};
    uint8_t *p = (uint8_t *)st_block + sizeof(struct mb2_info);
    p = st_tag(p, MB2_TAG_CMDLINE, 8 + 9, "mb2 test");
    p = st_tag(p, 21, 8 + 4, &load_base); /* load base address: unknown here */
    for (int i = 0; i < ST_MODULES; i++)
        p = st_module(p, i);
    p = st_tag(p, MB2_TAG_LOADER, 8 + 15, "made-up loader");
    p = st_tag(p, 4, 8 + 8, meminfo); /* basic memory information: unknown */
    p = st_tag(p, MB2_TAG_END, 8, NULL);
    *ntags = st_parse(p);
    if (*ntags != ST_TAGS)
        return *ntags < 0 ? "it says the block is malformed (the next tag starts at the size rounded up to 8)"
                          : "every tag before the end tag counts, known or not, and the end tag does not";
    if (!st_is(st.bi.cmdline, "mb2 test") || !st_is(st.bi.loader, "made-up loader"))
        return "bi->cmdline or bi->loader is not the string of tag 1 or 2";
    if (st.bi.nmodules != BOOT_MAX_MODULES)
        return "5 module tags must record BOOT_MAX_MODULES (4) modules, no more";
    for (int i = 0; i < BOOT_MAX_MODULES; i++) {
        const struct boot_module *m = &st.bi.modules[i];
        char name[5] = "mod0";
        name[3] = (char)('0' + i);
        if (m->start != 0x200000u + 0x1000u * (uint64_t)i || m->end != m->start + 0x800 || !st_is(m->cmdline, name))
            return "a module's start, end or command line is wrong";
    }
    return NULL;
}

/* Parse a block of an unknown tag and a memory map of n entries, ST_STRIDE
 * bytes apart; check the first `want` regions. What is wrong, or NULL. */
static const char *
st_map_of(int n, int want)
{
    uint32_t load_base = 0x1234;
    uint8_t *p = (uint8_t *)st_block + sizeof(struct mb2_info);
    p = st_tag(p, 21, 8 + 4, &load_base);
    p = st_mmap(p, n);
    p = st_tag(p, MB2_TAG_END, 8, NULL);
    if (st_parse(p) < 0)
        return "mb2_parse says a good block is malformed: fix mb2_parse first";
    if (st.bi.nregions > want)
        return n > want ? "more than BOOT_MAX_REGIONS regions recorded: a write past the end of bi->regions"
                        : "more regions than entries: an entry read past the end of the tag";
    if (st.bi.nregions < want)
        return "entries lost: they fill the tag up to its size, entry_size bytes apart";
    for (int i = 0; i < want; i++) {
        const struct mem_region *r = &st.bi.regions[i];
        struct mb2_mmap_entry e = st_entry(i);
        if (r->base != e.base || r->length != e.length || r->type != e.type)
            return "an entry misread: entries are entry_size bytes apart (here 32), not sizeof";
    }
    return NULL;
}

/* Block 2: a map of 3 entries; block 3: a map of more entries than fit. */
static const char *
st_memory_map(void)
{
    const char *bad = st_map_of(3, 3);
    return bad ? bad : st_map_of(ST_ENTRIES, BOOT_MAX_REGIONS);
}

/* Two malformed blocks: mb2_parse must return -1 for each. What is wrong, or NULL. */
static const char *
st_bad_blocks(void)
{
    uint8_t *p = (uint8_t *)st_block + sizeof(struct mb2_info);
    p = st_tag(p, MB2_TAG_CMDLINE, 8 + 9, "mb2 test");
    p = st_tag(p, 21, 4, NULL); /* a size below 8 */
    p = st_tag(p, MB2_TAG_END, 8, NULL);
    if (st_parse(p) != -1)
        return "a tag of size 4 was accepted (a size below 8 is malformed: return -1)";
    p = (uint8_t *)st_block + sizeof(struct mb2_info);
    p = st_tag(p, MB2_TAG_CMDLINE, 8 + 9, "mb2 test");
    uint8_t *cut = p + sizeof(struct mb2_tag_mmap); /* total_size ends inside the next tag */
    p = st_mmap(p, 1);
    st_tag(p, MB2_TAG_END, 8, NULL);
    if (st_parse(cut) != -1 || st.bi.nregions != 0)
        return "a tag reaching past total_size was accepted or read (return -1 before reading it)";
    return NULL;
}

static void
st_report(const char *what, const char *bad, const char *ok)
{
    con_puts("[mb2] made-up ");
    con_puts(what);
    con_puts(bad ? ": FAIL: " : ": ");
    con_puts(bad ? bad : ok);
    con_puts("\n");
}

/* Parse the made-up blocks and print one line for each: the memory map
 * first, so that its line follows the real map's. */
void
mb2_selftest(void)
{
    const char *map = st_memory_map();
    mb2_selftest_seen[0] = map ? 2 : 1;
    st_report("memory map", map, "3 of 3 and 32 of 33 entries, 32 bytes apart: ok");
    int ntags;
    const char *bad = st_tags(&ntags);
    mb2_selftest_seen[1] = bad ? 2 : 1;
    if (bad) {
        con_puts("[mb2] made-up tags: FAIL: mb2_parse returned ");
        con_puts(ntags < 0 ? "-1" : "");
        if (ntags >= 0)
            con_putdec((uint64_t)ntags);
        con_puts(" for 9 tags: ");
        con_puts(bad);
        con_puts("\n");
    } else {
        con_puts("[mb2] made-up tags: 9 tags, cmdline, loader, 4 of 5 modules: ok\n");
    }
    bad = st_bad_blocks();
    mb2_selftest_seen[2] = bad ? 2 : 1;
    st_report("bad blocks", bad, "a tag of size 4 and a tag past total_size refused: ok");
}
