/* The entry point: from GRUB's 32-bit protected mode to 64-bit kmain.
 * Machine state at entry: Multiboot2 specification, section 3.3.
 * Entering long mode: Intel SDM volume 3A, section 10.8.5.
 * The steps that switch long mode on are yours: lm_enable in longmode.S.
 */
#include "memlayout.h"
#include "uart.h"
#include "x86.h"
#include "kernel.h"

#define MB2_HEADER_MAGIC 0xe85250d6   /* in our header */
#define MB2_BOOT_MAGIC   0x36d76289   /* in %eax when GRUB jumps to us */
#define MB2_ARCH_I386    0            /* 32-bit protected mode entry */
#define EARLY_DIVISOR    3            /* 38400 baud until lab 02 programs its own */

    .section .multiboot, "a"
    .balign 8
mb2_header:
    .long MB2_HEADER_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header
    .long -(MB2_HEADER_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
    .balign 8                         /* the end tag: type 0, size 8 */
    .short 0, 0
    .long 8
mb2_header_end:

    .section .text.code32, "ax"       /* kernel.ld puts 32-bit code first in .text */
    .code32
    .globl _start
    .type _start, @function
_start:
    cli
    cld
    mov %eax, %esi                    /* keep the magic and the info address */
    mov %ebx, %ebp                    /* out of the way of rep stosb */

    /* Zero .bss ourselves: it holds our page tables, stack and heap. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    mov $__stack_top, %esp
    mov %esi, boot_magic
    mov %ebp, boot_mbi
    call early_uart_init

    /* Check 1: were we loaded by a Multiboot2 boot loader? */
    cmp $MB2_BOOT_MAGIC, %esi
    jne .Lno_multiboot

    /* Check 2: does this CPU have long mode and no-execute? */
    mov $0x80000000, %eax
    cpuid
    cmp $CPUID_EXT_FEATURES, %eax
    jb .Lno_long_mode
    mov $CPUID_EXT_FEATURES, %eax
    cpuid
    test $CPUID_EDX_LM, %edx
    jz .Lno_long_mode
    test $CPUID_EDX_NX, %edx
    jz .Lno_nx

    call boot_build_tables
    lgdt gdt_ptr
    mov $SEG_KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss

    /* LAB 1: lm_enable(pml4), in longmode.S. A 32-bit cdecl call: the PML4's
     * address is at 4(%esp). On return the CPU must be in IA-32e mode
     * (EFER.LMA = 1), still running this 32-bit code segment until the far
     * jump below. lm_enable may clobber %eax, %ecx and %edx, nothing else.
     * The steps, in this order (boot_check_long_mode checks each):
     *   1. set CR4.PAE: long mode uses 64-bit page-table entries;
     *   2. load CR3 with the PML4 address;
     *   3. set EFER.LME and EFER.NXE: rdmsr reads MSR_EFER (index in %ecx,
     *      value in %edx:%eax), set the bits, wrmsr writes it back;
     *   4. set CR0.PG and CR0.WP in one write: with LME set, turning paging
     *      on is what activates long mode (the CPU then sets EFER.LMA).
     * Control registers move through a general register (mov %cr4, %eax).
     * With EFER.LME set, CR0.PG before CR4.PAE is a #GP on a real CPU and in
     * Bochs (QEMU ignores the write); with no IDT yet, any fault is a triple
     * fault, and the grader's diagnosis points at the faulting line. */
    push $boot_pml4
    call lm_enable
    add $4, %esp
    call boot_check_long_mode         /* returns only if every step was done */

    ljmp $SEG_KCODE, $start64

.Lno_multiboot:
    mov $msg_no_multiboot, %esi
    jmp boot_fail
.Lno_long_mode:
    mov $msg_no_long_mode, %esi
    jmp boot_fail
.Lno_nx:
    mov $msg_no_nx, %esi
    jmp boot_fail

/* Identity-map [0, BOOT_IDMAP_SIZE) with 2 MiB pages: PML4[0] -> PDPT[0] -> PD. */
boot_build_tables:
    mov $boot_pdpt, %eax
    or $(PTE_P | PTE_W), %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $(PTE_P | PTE_W), %eax
    mov %eax, boot_pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax                     /* entry i maps i * 2 MiB */
    or $(PTE_P | PTE_W | PTE_PS), %eax
    mov %eax, boot_pd(, %ecx, 8)
    inc %ecx
    cmp $(BOOT_IDMAP_SIZE / LARGE_PAGE_SIZE), %ecx
    jb 1b
    ret

/* After lm_enable, check each step it had to do, in order, and name the
 * first one missing. A readable line here beats a silent triple fault. */
boot_check_long_mode:
    mov %cr4, %eax
    mov $msg_no_pae, %esi
    test $CR4_PAE, %eax
    jz boot_fail
    mov %cr3, %eax
    mov $msg_bad_cr3, %esi
    cmp $boot_pml4, %eax
    jne boot_fail
    mov $MSR_EFER, %ecx
    rdmsr
    mov $msg_no_lme, %esi
    test $EFER_LME, %eax
    jz boot_fail
    mov $msg_no_nxe, %esi
    test $EFER_NXE, %eax
    jz boot_fail
    mov %cr0, %edx
    mov $msg_no_pg, %esi
    test $CR0_PG, %edx
    jz boot_fail
    mov $msg_no_wp, %esi
    test $CR0_WP, %edx
    jz boot_fail
    mov $msg_no_lma, %esi
    test $EFER_LMA, %eax
    jz boot_fail
    ret

/* The minimum that makes COM1 send 8-bit characters: a divisor and 8N1
 * (PC16550D: LCR.DLAB selects the divisor latch at offsets 0 and 1). Without
 * it a strict emulator (Bochs) sends 5-bit words: garbage. Lab 02 replaces
 * this with a full driver. */
early_uart_init:
    mov $(COM1_PORT + UART_LCR), %dx  /* divisor latch access */
    mov $LCR_DLAB, %al
    outb %al, %dx
    mov $(COM1_PORT + UART_DLL), %dx  /* divisor, low and high byte */
    mov $EARLY_DIVISOR, %al
    outb %al, %dx
    mov $(COM1_PORT + UART_DLM), %dx
    xor %al, %al
    outb %al, %dx
    mov $(COM1_PORT + UART_LCR), %dx  /* 8 bits, no parity, 1 stop bit */
    mov $LCR_8N1, %al
    outb %al, %dx
    ret

/* Print the string at %esi on COM1, polling the line status register. */
puts32:
1:  movzbl (%esi), %ebx
    test %ebx, %ebx
    jz 3f
    mov $(COM1_PORT + UART_LSR), %dx
2:  inb %dx, %al
    test $LSR_THRE, %al
    jz 2b
    mov $(COM1_PORT + UART_THR), %dx
    mov %bl, %al
    outb %al, %dx
    inc %esi
    jmp 1b
3:  ret

/* Report the failed check at %esi, then power off with EXIT_BOOT_FAILURE. */
boot_fail:
    call puts32
    mov $msg_power_fail, %esi
    call puts32
    mov $(COM1_PORT + UART_LSR), %dx
1:  inb %dx, %al                      /* wait until the last bit is sent */
    test $LSR_TEMT, %al
    jz 1b
    mov $QEMU_EXIT_PORT, %dx          /* QEMU */
    mov $EXIT_BOOT_FAILURE, %eax
    outl %eax, %dx
    mov $msg_shutdown, %esi           /* Bochs */
    mov $BOCHS_SHUTDOWN_PORT, %dx
2:  lodsb
    test %al, %al
    jz 3f
    outb %al, %dx
    jmp 2b
3:  mov $0x2000, %ax                  /* ACPI: SLP_EN, sleep type 0 */
    mov $ACPI_PM1A_QEMU, %dx
    outw %ax, %dx
    mov $ACPI_PM1A_BOCHS, %dx
    outw %ax, %dx
4:  cli
    hlt
    jmp 4b

    .text
    .code64
    .cfi_sections .debug_frame
start64:
    .cfi_startproc
    .cfi_undefined rip                /* the outermost frame: debuggers stop here */
    mov $SEG_KDATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $__stack_top, %rsp            /* 16-byte aligned: kmain's frame is ABI-correct */
    xor %ebp, %ebp
    mov boot_magic(%rip), %edi
    mov boot_mbi(%rip), %esi          /* zero-extended to 64 bits */
    call kmain
    mov $EXIT_PANIC, %edi             /* kmain must not return */
    call poweroff
    .cfi_endproc

    .section .rodata
msg_no_multiboot: .asciz "[boot] FAIL: not started by a Multiboot2 boot loader (bad magic in eax)\n"
msg_no_long_mode: .asciz "[boot] FAIL: this CPU has no long mode (CPUID 0x80000001 EDX.LM clear)\n"
msg_no_nx:        .asciz "[boot] FAIL: this CPU has no no-execute bit (CPUID 0x80000001 EDX.NX clear)\n"
msg_no_pae:       .asciz "[boot] FAIL: lm_enable: CR4.PAE is clear (LAB 1, longmode.S step 1)\n"
msg_bad_cr3:      .asciz "[boot] FAIL: lm_enable: CR3 does not hold the PML4 address passed in (LAB 1, longmode.S step 2)\n"
msg_no_lme:       .asciz "[boot] FAIL: lm_enable: EFER.LME is clear (LAB 1, longmode.S step 3)\n"
msg_no_nxe:       .asciz "[boot] FAIL: lm_enable: EFER.NXE is clear (LAB 1, longmode.S step 3)\n"
msg_no_pg:        .asciz "[boot] FAIL: lm_enable: CR0.PG is clear (LAB 1, longmode.S step 4)\n"
msg_no_wp:        .asciz "[boot] FAIL: lm_enable: CR0.WP is clear (LAB 1, longmode.S step 4)\n"
msg_no_lma:       .asciz "[boot] FAIL: lm_enable: EFER.LMA is clear: set EFER.LME before CR0.PG (LAB 1, longmode.S)\n"
msg_power_fail:   .asciz "[power] off: boot failure\n"
msg_shutdown:     .asciz "Shutdown"

    .section .data
    .balign 8
/* The boot GDT. Accessed bits are preset so that loading a selector never
 * writes to the table. */
    .globl gdt
gdt:
    .quad 0                           /* 0x00: null */
    .quad 0x00af9b000000ffff          /* 0x08: code, 64-bit: L=1, D=0, P, DPL 0 */
    .quad 0x00cf93000000ffff          /* 0x10: data, flat, writable */
gdt_end:
    .globl gdt_ptr
gdt_ptr:
    .short gdt_end - gdt - 1
    .quad gdt

    .globl boot_magic, boot_mbi
boot_magic: .long 0
boot_mbi:   .long 0

    .section .bss.pagetables, "aw", @nobits
    .balign PAGE_SIZE
    .globl boot_pml4
boot_pml4:  .skip PAGE_SIZE
boot_pdpt:  .skip PAGE_SIZE
boot_pd:    .skip PAGE_SIZE
