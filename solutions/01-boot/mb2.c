/* Walking the Multiboot2 boot information (specification, section 3.6). */
#include "kernel.h"
#include "mb2.h"

/* void mb2_read_mmap(const struct mb2_tag_mmap *t, struct boot_info *bi)
 *
 * Contract: append each entry of the memory-map tag t to bi->regions
 * (base, length, type), in the order given, after the bi->nregions entries
 * already there (none on a boot: *bi starts zeroed, and GRUB gives one
 * memory-map tag), at most BOOT_MAX_REGIONS in all, and update bi->nregions.
 * Fact: entries are t->entry_size bytes apart, which may be larger than
 * sizeof(struct mb2_mmap_entry); they fill the tag up to t->size.
 */
void
mb2_read_mmap(const struct mb2_tag_mmap *t, struct boot_info *bi)
{
    // LAB 1: your code here.
    uint64_t p = (uint64_t)(t + 1);
    uint64_t end = (uint64_t)t + t->size;

    for (; p + t->entry_size <= end && bi->nregions < BOOT_MAX_REGIONS; p += t->entry_size) {
        const struct mb2_mmap_entry *e = (const struct mb2_mmap_entry *)p;
        struct mem_region *r = &bi->regions[bi->nregions++];
        r->base = e->base;
        r->length = e->length;
        r->type = e->type;
    }
    // LAB 1: end of your code.
}

/* int mb2_parse(uint64_t mbi, struct boot_info *bi)
 *
 * Contract: mbi is the address GRUB passed in %ebx; *bi is zeroed. Walk the
 * tags that follow the 8-byte struct mb2_info, up to the end tag (type 0), and
 * record: the command line (bi->cmdline), the boot loader name (bi->loader),
 * the memory map (through mb2_read_mmap) and each module (bi->modules,
 * bi->nmodules, at most BOOT_MAX_MODULES). Ignore tag types you do not know,
 * but count them: the return value is the number of all tags before the end
 * tag, known or not (the end tag itself not counted), or -1 if a tag's size is
 * below 8 or a tag reaches past total_size (then stop walking).
 * Fact: the next tag starts at the current one plus its size rounded up to
 * a multiple of MB2_TAG_ALIGN.
 */
int
mb2_parse(uint64_t mbi, struct boot_info *bi)
{
    // LAB 1: your code here.
    const struct mb2_info *info = (const struct mb2_info *)mbi;
    uint64_t end = mbi + info->total_size;
    uint64_t p = mbi + sizeof *info;
    int ntags = 0;

    for (;;) {
        const struct mb2_tag *tag = (const struct mb2_tag *)p;
        if (p + sizeof *tag > end || tag->size < sizeof *tag || p + tag->size > end)
            return -1;
        if (tag->type == MB2_TAG_END)
            return ntags;
        if (tag->type == MB2_TAG_CMDLINE)
            bi->cmdline = ((const struct mb2_tag_string *)tag)->string;
        else if (tag->type == MB2_TAG_LOADER)
            bi->loader = ((const struct mb2_tag_string *)tag)->string;
        else if (tag->type == MB2_TAG_MMAP)
            mb2_read_mmap((const struct mb2_tag_mmap *)tag, bi);
        else if (tag->type == MB2_TAG_MODULE && bi->nmodules < BOOT_MAX_MODULES) {
            const struct mb2_tag_module *m = (const struct mb2_tag_module *)tag;
            struct boot_module *bm = &bi->modules[bi->nmodules++];
            bm->start = m->mod_start;
            bm->end = m->mod_end;
            bm->cmdline = m->cmdline;
        }
        ntags++;
        p += (tag->size + MB2_TAG_ALIGN - 1) & ~(uint64_t)(MB2_TAG_ALIGN - 1);
    }
    // LAB 1: end of your code.
}
