/* x86-64 registers, bits and the few instructions C cannot express.
 * Bits follow the Intel SDM, volume 3A, chapter 2 (control registers and
 * EFER) and chapter 4 (paging entries). Usable from C and from .S files.
 */
#ifndef X86_H
#define X86_H

#define CR0_PE (1 << 0)  /* protected mode enable */
#define CR0_WP (1 << 16) /* write protect: ring 0 honours read-only pages */
#define CR0_PG (1 << 31) /* paging enable */

#define CR4_PAE (1 << 5) /* physical address extension: 64-bit entries */

#define MSR_EFER 0xc0000080 /* extended feature enable register */
#define EFER_LME (1 << 8)   /* long mode enable */
#define EFER_LMA (1 << 10)  /* long mode active (read-only, set by the CPU) */
#define EFER_NXE (1 << 11)  /* no-execute bit allowed in page entries */

#define CPUID_EXT_FEATURES 0x80000001 /* extended leaf: EDX holds LM and NX */
#define CPUID_EDX_NX       (1 << 20)  /* no-execute supported */
#define CPUID_EDX_LM       (1 << 29)  /* long mode supported */

/* Page-table entry bits (all four levels). */
#define PTE_P   (1 << 0)     /* present */
#define PTE_W   (1 << 1)     /* writable */
#define PTE_U   (1 << 2)     /* user accessible */
#define PTE_PWT (1 << 3)     /* write-through */
#define PTE_PCD (1 << 4)     /* cache disable (MMIO) */
#define PTE_A   (1 << 5)     /* accessed */
#define PTE_D   (1 << 6)     /* dirty */
#define PTE_PS  (1 << 7)     /* large page (in a PD or PDPT entry) */
#define PTE_G   (1 << 8)     /* global */
#define PTE_NX  (1ull << 63) /* no execute (needs EFER.NXE) */

/* GDT selectors of the boot GDT (boot.S). */
#define SEG_KCODE 0x08 /* 64-bit code: L=1, D=0 */
#define SEG_KDATA 0x10 /* flat data */

#ifndef __ASSEMBLER__
#include <stdint.h>

static inline void
outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void
outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void
outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t
inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* The time-stamp counter (SDM vol. 2B, RDTSC): reference cycles, not graded. */
static inline uint64_t
rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t
rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t
read_cr0(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr0, %0" : "=r"(v));
    return v;
}

static inline uint64_t
read_cr2(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

static inline uint64_t
read_cr3(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}

static inline uint64_t
read_cr4(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}

__attribute__((noreturn)) static inline void
halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}
#endif /* __ASSEMBLER__ */
#endif
