/* The memory layout of the kernel: one map, every address constant.
 * Nothing else in the kernel spells a raw address; it names one from here.
 *
 * Physical memory, identity-mapped (virtual == physical) by the boot code:
 *
 *   0x00000000 +-------------------------------+
 *              | real-mode IVT, BIOS data, EBDA|  firmware: never write here
 *   0x0009fc00 +-------------------------------+
 *              | VGA memory, option ROMs, BIOS |  not RAM
 *   0x00100000 +-------------------------------+  KERNEL_PHYS_BASE (1 MiB)
 *              | .multiboot  Multiboot2 header |
 *              | .text       code (R-X)        |
 *              | .rodata     constants (R)     |
 *              | .data       variables (RW),   |
 *              |             the boot GDT      |
 *              | .bss        zeroed at boot:   |
 *              |   boot page tables            |
 *              |   variables                   |
 *              |   what later labs add (their  |  the heap, a stack guard
 *              |   bss.ld, joined in order)    |  page: book chapters 3, 4
 *              |   kernel stack (STACK_SIZE)   |
 *   __kernel_end +-----------------------------+
 *              | free RAM, boot information,   |  the Multiboot2 memory map
 *              | modules loaded by GRUB        |  says which parts are usable
 *   BOOT_IDMAP_SIZE (1 GiB) ----------------------  end of the boot identity map
 *
 * Virtual addresses that the self-tests of later labs use on purpose, far
 * from anything mapped (each lab's checks.py reads them from this file, so
 * the kernel and the grader cannot disagree):
 *
 *   0x00007d0000000000  SELFTEST_EMPTY_VA        lab 04: no page table on the way to it
 *   0x00007e0000000000  FAULT_UNMAPPED_BASE      lab 05: unmapped reads, one seeded page of 4096
 *   0x00007e8000000000  JIT_SEAL_NO_TABLE_VA     lab 06: jit_seal must refuse it
 *   0x00007f0000000000  SELFTEST_MAP_VA          lab 04: map, unmap, remap; one seeded page of 4096
 *   0x0000800000000000  FAULT_NONCANONICAL_BASE  lab 05: the first non-canonical address
 *   0xffff8000bee00000  SELFTEST_LARGE_VA        lab 04: a made-up 2 MiB mapping, translated only
 *   0xffff8000deadb000  SELFTEST_HIGH_VA         lab 04: a made-up 4 KiB mapping, translated only
 *   0xffff8000deadbeef  FAULT_MADE_UP_ADDRESS    lab 05: a gate and a TSS encoded, never loaded
 */
#ifndef MEMLAYOUT_H
#define MEMLAYOUT_H

#define KERNEL_PHYS_BASE 0x100000 /* where GRUB loads us: 1 MiB */
#define PAGE_SIZE        4096
#define LARGE_PAGE_SIZE  0x200000              /* a 2 MiB page, as mapped by a PD entry */
#define BOOT_IDMAP_SIZE  0x40000000            /* the boot tables map [0, 1 GiB) */
#define STACK_SIZE       0x8000                /* 32 KiB kernel stack, in .bss */
#define CANONICAL_HIGH   0xffff000000000000ull /* bits 63..48: the sign extension of bit 47 */

/* The self-tests' addresses (the map above). The physical addresses of the
 * made-up mappings lie above 4 GiB and are never touched, only translated;
 * the 2 MiB page has its PAT bit (bit 12) set. */
#define SELFTEST_EMPTY_VA       0x00007d0000000000ull
#define SELFTEST_MAP_VA         0x00007f0000000000ull
#define SELFTEST_HIGH_VA        0xffff8000deadb000ull
#define SELFTEST_HIGH_PA        0x000000fedcba9000ull
#define SELFTEST_LARGE_VA       0xffff8000bee00000ull
#define SELFTEST_LARGE_PA       0x000000fedca00000ull
#define SELFTEST_LARGE_OFFSET   0x1fedc8 /* inside the 2 MiB page */
#define FAULT_UNMAPPED_BASE     0x00007e0000000000ull
#define FAULT_NONCANONICAL_BASE 0x0000800000000000ull
#define FAULT_MADE_UP_ADDRESS   0xffff8000deadbeefull /* upper half: every address bit counts */
#define JIT_SEAL_NO_TABLE_VA    0x00007e8000000000ull

/* Legacy PC I/O ports. */
#define COM1_PORT           0x3f8  /* first serial port (16550 UART) */
#define QEMU_EXIT_PORT      0xf4   /* QEMU isa-debug-exit device */
#define BOCHS_SHUTDOWN_PORT 0x8900 /* Bochs: write "Shutdown" to power off */
#define ACPI_PM1A_QEMU      0x604  /* QEMU PIIX4 PM1a control (SeaBIOS) */
#define ACPI_PM1A_BOCHS     0xb004 /* Bochs PIIX4 PM1a control */
#define RTC_INDEX_PORT      0x70   /* CMOS real-time clock: register index */
#define RTC_DATA_PORT       0x71   /*   and its value (register 0: seconds) */

#endif
