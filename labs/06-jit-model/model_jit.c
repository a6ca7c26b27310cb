/* The kernel's JIT driver for the model: choose the widest vector path the
 * CPU offers and enable its state, pack each layer's weights for it, compile
 * the three layers into fresh pages with the JIT (jit.c, jit_wide.c and the
 * student's encoder), seal them with the student's jit_seal and check what
 * the CPU sees of them. model_selftest.c runs the engines it builds.
 */
#include "model.h"
#include "jit.h"
#include "heap.h"
#include "paging.h"
#include "serial.h"
#include "simd.h"
#include "trap.h"
#include "x86.h"

#define JIT_CODE_PAGES       8
#define JIT_BATCH_CODE_PAGES 16 /* the batched code unrolls B contexts per step */
#define YN(x)                ((x) ? "yes" : "no")

const char *const jit_engine_name[JIT_KINDS] = {"jit scalar", "jit sse2", "jit avx2", "jit avx-vnni",
                                                "jit avx512-vnni"};

/* Turn on what `kind`'s code uses (SDM vol. 3A, 13.1-13.3). SSE always:
 * CR0.EM clear, CR0.MP, CR4.OSFXSR and CR4.OSXMMEXCPT. For the AVX kinds,
 * also CR4.OSXSAVE, then XCR0 through xsetbv: until XCR0 holds the AVX
 * state (and, for zmm, the three AVX-512 components), every VEX and EVEX
 * instruction is #UD. */
void
simd_enable(int kind)
{
    uint64_t cr0 = read_cr0(), cr4 = read_cr4(), xcr0 = simd_state_for(kind);
    cr0 = (cr0 & ~(uint64_t)CR0_EM) | CR0_MP;
    cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | (xcr0 ? CR4_OSXSAVE : 0);
    __asm__ volatile("mov %0, %%cr0; mov %1, %%cr4" : : "r"(cr0), "r"(cr4));
    if (xcr0)
        xsetbv(XCR0, xcr0);
    kprintf("[simd] enabled: SSE (CR0.MP, CR4.OSFXSR, CR4.OSXMMEXCPT)");
    if (xcr0)
        kprintf(", CR4.OSXSAVE, XCR0 = 0x%lx (x87 SSE AVX%s)\n", xcr0,
                xcr0 & XCR0_HI16_ZMM ? " opmask ZMM_Hi256 Hi16_ZMM" : "");
    else
        kprintf("; XCR0 not written (no AVX)\n");
}

/* Which kind to run: the widest the CPU has and XCR0 may enable (CPUID 0xd),
 * or SSE2 if the command line says tests=jit-sse2. */
int
simd_choose(void)
{
    struct simd_cpu c;
    simd_probe(&c);
    int kind = test_named("jit-sse2") ? JIT_SSE2 : simd_best(&c, c.xcr0_supported);
    kprintf("[simd] CPUID: SSE2 %s, XSAVE %s, AVX %s, AVX2 %s, AVX-VNNI %s, AVX512F %s, AVX512BW %s, "
            "AVX512_VNNI %s; XCR0 may hold 0x%x\n",
            YN(c.sse2), YN(c.xsave), YN(c.avx), YN(c.avx2), YN(c.avx_vnni), YN(c.avx512f), YN(c.avx512bw),
            YN(c.avx512_vnni), c.xcr0_supported);
    kprintf("[jit] path: %s (%sCPUID: AVX2 %s, AVX-VNNI %s, AVX-512 VNNI %s)\n", jit_kind_name[kind],
            test_named("jit-sse2") ? "forced by tests=jit-sse2; " : "", YN(simd_allows(&c, JIT_AVX2, c.xcr0_supported)),
            YN(simd_allows(&c, JIT_AVX_VNNI, c.xcr0_supported)),
            YN(simd_allows(&c, JIT_AVX512_VNNI, c.xcr0_supported)));
    return kind;
}

/* The forward pass through a JIT's three layers; the embeddings are copied
 * in as int16 or int8, as the kind's first layer reads them. */
void
jit_engine_logits(const struct engine *e, const uint8_t *ctx, int32_t *out)
{
    struct jit_model *jm = e->jit;
    int wide = jit_in_bytes(jm->kind, 1) == 2;
    for (int p = 0; p < MODEL_CTX; p++)
        for (int d = 0; d < MODEL_EMBED; d++) {
            int8_t v = e->m->embedding[ctx[p] * MODEL_EMBED + d];
            if (wide)
                ((int16_t *)jm->in)[p * MODEL_EMBED + d] = v;
            else
                ((int8_t *)jm->in)[p * MODEL_EMBED + d] = v;
        }
    jm->layer[0](jm->in, jm->h1);
    jm->layer[1](jm->h1, jm->h2);
    jm->layer[2](jm->h2, jm->z);
    memcpy(out, jm->z, sizeof(int32_t) * MODEL_VOCAB);
}

/* The batched forward pass for `n` contexts (n <= the JIT's batch): each
 * context's embeddings copied into its row of the input (in_stride bytes
 * apart), the three batched layers, then each context's logits copied out. */
void
jit_engine_logits_batch(const struct engine *e, const uint8_t *ctx, int n, int32_t *out)
{
    struct jit_model *jm = e->jit;
    int wide = jit_in_bytes(jm->kind, 1) == 2;
    for (int c = 0; c < n; c++) {
        uint8_t *row = (uint8_t *)jm->in + c * jm->in_stride;
        for (int p = 0; p < MODEL_CTX; p++)
            for (int d = 0; d < MODEL_EMBED; d++) {
                int8_t v = e->m->embedding[ctx[c * MODEL_CTX + p] * MODEL_EMBED + d];
                if (wide)
                    ((int16_t *)row)[p * MODEL_EMBED + d] = v;
                else
                    ((int8_t *)row)[p * MODEL_EMBED + d] = v;
            }
    }
    jm->layer[0](jm->in, jm->h1);
    jm->layer[1](jm->h1, jm->h2);
    jm->layer[2](jm->h2, jm->z);
    for (int c = 0; c < n; c++)
        memcpy(out + c * MODEL_VOCAB, (uint8_t *)jm->z + c * jm->z_stride, sizeof(int32_t) * MODEL_VOCAB);
}

/* "jit avx2-batch4": the engine name of a kind's batched code (the kind's
 * name and its batch), in a buffer of its own. */
const char *
jit_batch_name(enum jit_kind kind)
{
    static char names[JIT_KINDS][32];
    char *p = names[kind];
    const char *parts[3] = {"jit ", jit_kind_name[kind], "-batch"};
    for (int i = 0; i < 3; i++)
        for (const char *s = parts[i]; *s; s++)
            *p++ = *s;
    if (jit_batch(kind) >= 10)
        *p++ = (char)('0' + jit_batch(kind) / 10);
    *p++ = (char)('0' + jit_batch(kind) % 10);
    *p = 0;
    return names[kind];
}

static void *
jit_alloc(uint64_t bytes)
{
    void *p = kmalloc_pages((bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    if (p == NULL)
        panic("jit: out of heap (%lu bytes)", bytes);
    return p;
}

/* The model's layers, and each packed for `kind` (scalar shares SSE2's
 * int16 copy, in `shared`), and the activations in the kind's formats; for
 * the batched code (batch != 0), its own packed copies and room for the
 * activations of jit_batch(kind) contexts. */
static void
jit_prepare(const struct model *m, enum jit_kind kind, int batch, struct jit_model *jm, struct jit_layer *l,
            void **shared)
{
    l[0] = (struct jit_layer){m->w1, m->b1, MODEL_H1, MODEL_IN, m->h->m1, 1};
    l[1] = (struct jit_layer){m->w2, m->b2, MODEL_H2, MODEL_H1, m->h->m2, 0};
    l[2] = (struct jit_layer){m->w3, m->b3, MODEL_VOCAB, MODEL_H2, 0, 0};
    jm->kind = kind;
    jm->batch = batch ? jit_batch(kind) : 0;
    if (jm->batch > JIT_BATCH_MAX)
        panic("jit: a batch of %d is more than JIT_BATCH_MAX", jm->batch);
    for (int i = 0; i < 3; i++) {
        enum jit_kind as = kind == JIT_SCALAR ? JIT_SSE2 : kind;
        if (as == JIT_SSE2 && shared[i] && !batch) {
            jm->packed[i] = shared[i];
            continue;
        }
        jm->packed[i] = jit_alloc(batch ? jit_batch_pack_size(as, &l[i]) : jit_pack_size(as, &l[i]));
        if ((batch ? jit_batch_pack(as, &l[i], jm->packed[i]) : jit_pack(as, &l[i], jm->packed[i])) != 0)
            panic("jit: %s cannot compute layer %d exactly", jit_kind_name[kind], i + 1);
        if (as == JIT_SSE2)
            shared[i] = jm->packed[i];
    }
    if (batch) {
        jm->in_stride = jit_batch_in_stride(kind, &l[0]);
        jm->z_stride = jit_batch_out_stride(kind, &l[2]);
        jm->in = jit_alloc((uint64_t)jm->batch * jm->in_stride);
        jm->h1 = jit_alloc((uint64_t)jm->batch * jit_batch_in_stride(kind, &l[1]));
        jm->h2 = jit_alloc((uint64_t)jm->batch * jit_batch_in_stride(kind, &l[2]));
        jm->z = jit_alloc((uint64_t)jm->batch * jm->z_stride);
        return;
    }
    jm->in = jit_alloc(2 * MODEL_IN);
    jm->h1 = jit_alloc(2 * MODEL_H1);
    jm->h2 = jit_alloc(2 * MODEL_H2);
    jm->z = jit_alloc(sizeof(int32_t) * (uint64_t)jit_out_rows(kind, MODEL_VOCAB));
}

/* The CPU's view of sealed code: present, not writable, executable in the
 * tables, and not writable through a stale TLB entry either. */
static int
jit_check_sealed(const char *name, uint8_t *code, uint64_t len)
{
    for (uint64_t va = (uint64_t)code; va < (uint64_t)code + len; va += PAGE_SIZE) {
        uint64_t pa, flags;
        if (pt_translate(va, &pa, &flags) != 0 || (flags & (PTE_W | PTE_NX))) {
            kprintf("[jit] FAIL: %s code page %p is not r-x after jit_seal (LAB 6): not run\n", name, (void *)va);
            return 0;
        }
    }
    /* The zero byte after the code was written while emitting, so a TLB
     * that still holds the writable translation (no invlpg) lets this
     * write through. */
    if (len % PAGE_SIZE && !(probe_write((uint64_t)code + len) & PROBE_FAULTED)) {
        kprintf("[jit] FAIL: %s code at %p is still writable through the TLB after jit_seal: invlpg "
                "missing? (LAB 6): not run\n",
                name, code);
        return 0;
    }
    return 1;
}

/* Compile the three layers into fresh pages (RW, NX), then seal them R-X:
 * one context a call, or (batch != 0) the kind's batched code. */
int
jit_build(const struct model *m, enum jit_kind kind, int batch, struct jit_model *jm, void **shared, uint8_t **code_out)
{
    struct jit_layer l[3];
    int pages = batch ? JIT_BATCH_CODE_PAGES : JIT_CODE_PAGES;
    uint8_t *code = jit_alloc((uint64_t)pages * PAGE_SIZE);
    const char *name = batch ? jit_batch_name(kind) + 4 : jit_kind_name[kind];
    struct jit j;
    size_t at[3];
    jit_prepare(m, kind, batch, jm, l, shared);
    jit_init(&j, code, (size_t)pages * PAGE_SIZE);
    for (int i = 0; i < 3; i++)
        at[i] = batch ? jit_compile_batch(&j, kind, &l[i], jm->packed[i])
                      : jit_compile_layer(&j, kind, &l[i], jm->packed[i]);
    if (j.overflow)
        panic("jit: the %s code does not fit in %d pages", name, pages);
    if (jit_seal(code, j.len) != 0) {
        kprintf("[jit] FAIL: jit_seal(%p, %lu) failed (LAB 6): not run\n", code, j.len);
        return 0;
    }
    if (!jit_check_sealed(name, code, j.len))
        return 0;
    for (int i = 0; i < 3; i++)
        jm->layer[i] = (jit_layer_fn)(uintptr_t)(code + at[i]);
    *code_out = code;
    kprintf("[jit] %s: %lu bytes of code at %p, sealed r-x\n", name, j.len, code);
    return 1;
}
