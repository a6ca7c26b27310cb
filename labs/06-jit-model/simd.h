/* The vector units and what the OS must do before using them: the control
 * register bits for SSE and AVX, the XCR0 state components, and the CPUID
 * bits that say which instructions exist. Intel SDM vol. 3A, 2.5-2.6
 * (CR0, CR4, XCR0) and 13.1-13.3 (XSAVE); vol. 2A, CPUID. Compiled for the
 * kernel and for Linux user space (the native harness), so it needs nothing
 * from the kernel.
 */
#ifndef SIMD_H
#define SIMD_H
#include <stdint.h>

#define CR0_MP         (1 << 1)  /* monitor coprocessor: wait/fwait honour TS */
#define CR0_EM         (1 << 2)  /* x87 emulation: set, every SSE/AVX instruction is #UD */
#define CR4_OSFXSR     (1 << 9)  /* OS saves SSE state with fxsave: legacy SSE allowed */
#define CR4_OSXMMEXCPT (1 << 10) /* OS handles SIMD floating-point exceptions (#XM) */
#define CR4_OSXSAVE    (1 << 18) /* OS uses xsave: xgetbv/xsetbv and VEX/EVEX allowed */

#define XCR0              0        /* the extended control register xsetbv 0 writes */
#define XCR0_X87          (1 << 0) /* x87 state: must always be set */
#define XCR0_SSE          (1 << 1) /* xmm0-15 and MXCSR */
#define XCR0_AVX          (1 << 2) /* upper halves of ymm0-15 (needs SSE) */
#define XCR0_OPMASK       (1 << 5) /* AVX-512 mask registers k0-k7 */
#define XCR0_ZMM_HI256    (1 << 6) /* upper halves of zmm0-15 */
#define XCR0_HI16_ZMM     (1 << 7) /* zmm16-31 */
#define XCR0_AVX_STATE    (XCR0_X87 | XCR0_SSE | XCR0_AVX)
#define XCR0_AVX512_STATE (XCR0_AVX_STATE | XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM)

#define CPUID_FEATURES          1 /* leaf 1 */
#define CPUID_1_EDX_SSE2        (1u << 26)
#define CPUID_1_ECX_XSAVE       (1u << 26) /* xsave, xsetbv, XCR0 exist */
#define CPUID_1_ECX_OSXSAVE     (1u << 27) /* CR4.OSXSAVE is set (by the OS) */
#define CPUID_1_ECX_AVX         (1u << 28)
#define CPUID_EXTENDED          7 /* leaf 7: subleaf 0 in EBX/ECX, subleaf 1 in EAX */
#define CPUID_7_EBX_AVX2        (1u << 5)
#define CPUID_7_EBX_AVX512F     (1u << 16)
#define CPUID_7_EBX_AVX512BW    (1u << 30)
#define CPUID_7_ECX_AVX512_VNNI (1u << 11)
#define CPUID_7_1_EAX_AVX_VNNI  (1u << 4) /* subleaf 1 */
#define CPUID_XSAVE_STATE       0xd       /* leaf 0xd subleaf 0: EAX = XCR0 bits the CPU supports */

/* What the CPU offers, read from CPUID (simd_probe in simd.c). */
struct simd_cpu {
    int sse2, xsave, osxsave, avx, avx2, avx_vnni, avx512f, avx512bw, avx512_vnni;
    uint32_t xcr0_supported; /* CPUID 0xd: the state components XCR0 may hold */
};

static inline void
cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(subleaf));
}

/* Read an extended control register (needs CR4.OSXSAVE, else #UD). */
static inline uint64_t
xgetbv(uint32_t xcr)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(xcr));
    return ((uint64_t)hi << 32) | lo;
}

/* Write one (ring 0 only; #GP for a bit the CPU does not support). */
static inline void
xsetbv(uint32_t xcr, uint64_t v)
{
    __asm__ volatile("xsetbv" : : "c"(xcr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* simd.c */
void simd_probe(struct simd_cpu *c);
uint32_t simd_state_for(int kind);
int simd_allows(const struct simd_cpu *c, int kind, uint64_t allowed);
int simd_best(const struct simd_cpu *c, uint64_t allowed);
#endif
