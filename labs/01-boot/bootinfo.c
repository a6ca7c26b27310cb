/* The boot information: parsed by mb2_parse (LAB 1), then checked and printed
 * as the first lines of the transcript.
 */
#include "kernel.h"
#include "mb2.h"
#include "memlayout.h"

static struct boot_info boot_info; /* in .bss: zero before mb2_parse */
int boot_ntags = -2;               /* what mb2_parse returned; the grader reads it from memory */

static const char *
bootinfo_type_name(uint32_t type)
{
    switch (type) {
    case MB2_MEM_USABLE: return "usable";
    case MB2_MEM_ACPI: return "acpi";
    case MB2_MEM_NVS: return "nvs";
    case MB2_MEM_BAD: return "bad";
    default: return "reserved";
    }
}

/* Total bytes of the regions the memory map calls usable. */
uint64_t
bootinfo_usable_bytes(const struct boot_info *bi)
{
    uint64_t total = 0;
    for (int i = 0; i < bi->nregions; i++)
        if (bi->regions[i].type == MB2_MEM_USABLE)
            total += bi->regions[i].length;
    return total;
}

static void
bootinfo_print_mmap(const struct boot_info *bi)
{
    int usable = 0;
    for (int i = 0; i < bi->nregions; i++) {
        const struct mem_region *r = &bi->regions[i];
        con_puts("[mmap] ");
        con_puthex(r->base, 16);
        con_puts("-");
        con_puthex(r->base + r->length - 1, 16);
        con_puts(" ");
        con_puts(bootinfo_type_name(r->type));
        con_puts("\n");
        usable += (r->type == MB2_MEM_USABLE);
    }
    con_puts("[mmap] usable: ");
    con_putdec(bootinfo_usable_bytes(bi) >> 20);
    con_puts(" MiB in ");
    con_putdec((uint64_t)usable);
    con_puts(" regions\n");
}

/* Parse the Multiboot2 information at mbi, print what it says, try the
 * parser on made-up blocks too, and hand the command line to cmdline_init.
 * Returns the kernel's copy of the summary. */
struct boot_info *
bootinfo_init(uint32_t magic, uint64_t mbi)
{
    con_puts("[boot] 64-bit kmain, magic ");
    con_puthex(magic, 8);
    con_puts(", stack top ");
    con_puthex((uint64_t)__stack_top, 8);
    con_puts("\n");
    if (mbi + sizeof(struct mb2_info) > BOOT_IDMAP_SIZE) {
        con_puts("[boot] FAIL: boot information beyond the identity map\n");
        poweroff(EXIT_BOOT_FAILURE);
    }
    int ntags = mb2_parse(mbi, &boot_info);
    boot_ntags = ntags;
    if (ntags < 0)
        con_puts("[boot] FAIL: mb2_parse says the boot information is malformed\n");
    con_puts("[boot] multiboot2 tags: ");
    con_putdec((uint64_t)(ntags < 0 ? 0 : ntags));
    con_puts("\n[boot] loader: ");
    con_puts(boot_info.loader ? boot_info.loader : "(none)");
    con_puts("\n[boot] cmdline: ");
    con_puts(boot_info.cmdline ? boot_info.cmdline : "(none)");
    con_puts("\n");
    bootinfo_print_mmap(&boot_info);
    mb2_selftest();
    cmdline_init(boot_info.cmdline);
    return &boot_info;
}
