/* The Multiboot2 boot information, as GRUB leaves it in memory, and the
 * summary the kernel keeps of it. Multiboot2 specification, section 3.6.
 */
#ifndef MB2_H
#define MB2_H
#include <stdint.h>

#define MB2_TAG_END     0 /* last tag: type 0, size 8 */
#define MB2_TAG_CMDLINE 1 /* the command line, a NUL-terminated string */
#define MB2_TAG_LOADER  2 /* the boot loader's name, a string */
#define MB2_TAG_MODULE  3 /* a module: start, end, then its command line */
#define MB2_TAG_MMAP    6 /* the memory map */
#define MB2_TAG_ALIGN   8 /* every tag starts on an 8-byte boundary */

#define MB2_MEM_USABLE 1 /* memory map entry types */
#define MB2_MEM_ACPI   3 /* ACPI tables, reclaimable */
#define MB2_MEM_NVS    4 /* must be preserved across hibernation */
#define MB2_MEM_BAD    5 /* defective RAM */

/* The fixed 8-byte part in front of the tags. */
struct mb2_info {
    uint32_t total_size; /* bytes, this header and all tags included */
    uint32_t reserved;
};

/* Every tag starts with these two fields. */
struct mb2_tag {
    uint32_t type;
    uint32_t size; /* bytes, this header included, padding excluded */
};

struct mb2_tag_string { /* MB2_TAG_CMDLINE and MB2_TAG_LOADER */
    uint32_t type, size;
    char string[];
};

struct mb2_tag_module { /* MB2_TAG_MODULE */
    uint32_t type, size;
    uint32_t mod_start, mod_end; /* physical addresses, end exclusive */
    char cmdline[];
};

struct mb2_mmap_entry {
    uint64_t base;
    uint64_t length;
    uint32_t type; /* MB2_MEM_* ; anything else is reserved */
    uint32_t reserved;
};

struct mb2_tag_mmap { /* MB2_TAG_MMAP */
    uint32_t type, size;
    uint32_t entry_size; /* stride between entries: may exceed sizeof */
    uint32_t entry_version;
    /* entries follow, entry_size bytes apart */
};

#define BOOT_MAX_REGIONS 32
#define BOOT_MAX_MODULES 4

struct mem_region {
    uint64_t base;
    uint64_t length;
    uint32_t type;
};

struct boot_module {
    uint64_t start, end; /* physical, end exclusive */
    const char *cmdline;
};

/* What the kernel keeps of the boot information. */
struct boot_info {
    const char *cmdline; /* NULL when there is no command-line tag */
    const char *loader;  /* NULL when there is no loader-name tag */
    int nregions;
    struct mem_region regions[BOOT_MAX_REGIONS];
    int nmodules;
    struct boot_module modules[BOOT_MAX_MODULES];
};

/* mb2.c (LAB 1): fill *bi from the information at mbi. Returns the number
 * of tags before the end tag, or -1 if the information is malformed. */
int mb2_parse(uint64_t mbi, struct boot_info *bi);

/* mb2.c (LAB 1): append the entries of a memory-map tag to bi->regions. */
void mb2_read_mmap(const struct mb2_tag_mmap *t, struct boot_info *bi);

/* bootinfo.c: parse (through mb2_parse), check and print the boot information. */
struct boot_info *bootinfo_init(uint32_t magic, uint64_t mbi);
uint64_t bootinfo_usable_bytes(const struct boot_info *bi);

/* mb2_selftest.c: mb2_parse and mb2_read_mmap on made-up blocks, one line each. */
void mb2_selftest(void);
#endif
