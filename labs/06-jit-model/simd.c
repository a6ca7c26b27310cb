/* Which vector instructions the CPU has (CPUID, SDM vol. 2A) and which JIT
 * kind they allow. Reads only; the kernel enables the state it chooses in
 * model_selftest.c (simd_enable), and Linux has enabled it for the native
 * harness. Compiled for both.
 */
#include "simd.h"
#include "jit.h"

/* Read CPUID leaves 1, 7 (subleaves 0 and 1) and 0xd into c, each only if
 * the CPU has it (leaf 0 and leaf 7 subleaf 0 give the highest ones). */
void
simd_probe(struct simd_cpu *c)
{
    uint32_t r[4], max, max7 = 0;
    *c = (struct simd_cpu){0};
    cpuid(0, 0, r);
    max = r[0];
    cpuid(CPUID_FEATURES, 0, r);
    c->sse2 = (r[3] & CPUID_1_EDX_SSE2) != 0;
    c->xsave = (r[2] & CPUID_1_ECX_XSAVE) != 0;
    c->osxsave = (r[2] & CPUID_1_ECX_OSXSAVE) != 0;
    c->avx = (r[2] & CPUID_1_ECX_AVX) != 0;
    if (max >= CPUID_EXTENDED) {
        cpuid(CPUID_EXTENDED, 0, r);
        max7 = r[0];
        c->avx2 = (r[1] & CPUID_7_EBX_AVX2) != 0;
        c->avx512f = (r[1] & CPUID_7_EBX_AVX512F) != 0;
        c->avx512bw = (r[1] & CPUID_7_EBX_AVX512BW) != 0;
        c->avx512_vnni = (r[2] & CPUID_7_ECX_AVX512_VNNI) != 0;
    }
    if (max >= CPUID_EXTENDED && max7 >= 1) {
        cpuid(CPUID_EXTENDED, 1, r);
        c->avx_vnni = (r[0] & CPUID_7_1_EAX_AVX_VNNI) != 0;
    }
    if (max >= CPUID_XSAVE_STATE && c->xsave) {
        cpuid(CPUID_XSAVE_STATE, 0, r);
        c->xcr0_supported = r[0];
    }
}

/* The XCR0 value a kind's code needs: x87, SSE and AVX for ymm, plus the
 * three AVX-512 components for zmm and zmm16-31; 0 for the narrow kinds,
 * which need CR4.OSFXSR but not XCR0 (it is left alone for them). */
uint32_t
simd_state_for(int kind)
{
    if (kind == JIT_AVX512_VNNI)
        return XCR0_AVX512_STATE;
    return kind >= JIT_AVX2 ? XCR0_AVX_STATE : 0;
}

/* Can a kind run? The CPU must have its instructions (AVX2 also needs AVX
 * and XSAVE; AVX-512 VNNI also F and BW), and `allowed` (the XCR0 bits the
 * OS may enable: CPUID 0xd in a kernel, XCR0 itself in user space) must
 * include every state component its code touches. */
int
simd_allows(const struct simd_cpu *c, int kind, uint64_t allowed)
{
    int avx = c->xsave && c->avx && c->avx2, has;
    if (kind == JIT_AVX512_VNNI)
        has = avx && c->avx512f && c->avx512bw && c->avx512_vnni;
    else if (kind == JIT_AVX_VNNI)
        has = avx && c->avx_vnni;
    else
        has = kind == JIT_AVX2 ? avx : kind == JIT_SSE2 ? c->sse2 : 1;
    return has && (simd_state_for(kind) & ~allowed) == 0;
}

/* The widest kind simd_allows. */
int
simd_best(const struct simd_cpu *c, uint64_t allowed)
{
    int kind = JIT_AVX512_VNNI;
    while (kind > JIT_SCALAR && !simd_allows(c, kind, allowed))
        kind--;
    return kind;
}
