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
    (void)t;
    (void)bi;
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
    (void)mbi;
    (void)bi;
    return 0;
    // LAB 1: end of your code.
}
