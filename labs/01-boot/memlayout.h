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
 */
#ifndef MEMLAYOUT_H
#define MEMLAYOUT_H

#define KERNEL_PHYS_BASE 0x100000 /* where GRUB loads us: 1 MiB */
#define PAGE_SIZE        4096
#define LARGE_PAGE_SIZE  0x200000   /* a 2 MiB page, as mapped by a PD entry */
#define BOOT_IDMAP_SIZE  0x40000000 /* the boot tables map [0, 1 GiB) */
#define STACK_SIZE       0x8000     /* 32 KiB kernel stack, in .bss */

/* Legacy PC I/O ports. */
#define COM1_PORT           0x3f8  /* first serial port (16550 UART) */
#define QEMU_EXIT_PORT      0xf4   /* QEMU isa-debug-exit device */
#define BOCHS_SHUTDOWN_PORT 0x8900 /* Bochs: write "Shutdown" to power off */
#define ACPI_PM1A_QEMU      0x604  /* QEMU PIIX4 PM1a control (SeaBIOS) */
#define ACPI_PM1A_BOCHS     0xb004 /* Bochs PIIX4 PM1a control */

#endif
