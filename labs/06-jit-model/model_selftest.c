/* The workload of the whole kernel: load the model, run the interpreter and
 * the JITs (scalar, SSE2, and the widest kind CPUID allows) on seeded
 * contexts, check W^X with the probes of lab 05, then score held-out words
 * and generate words with the widest JIT. Every printed value is recomputed
 * by the grader (model_ref.py, beside this file).
 */
#include "model.h"
#include "jit.h"
#include "heap.h"
#include "paging.h"
#include "serial.h"
#include "simd.h"
#include "trap.h"
#include "x86.h"

#define JIT_CODE_PAGES    8
#define SELFTEST_CONTEXTS 16
#define SELFTEST_WORDS    8
#define YN(x)             ((x) ? "yes" : "no")

int jit_seal(void *code, uint64_t len);

struct jit_model {
    enum jit_kind kind;
    jit_layer_fn layer[3];
    void *packed[3];    /* the weights in the kind's layout (jit_pack) */
    void *in, *h1, *h2; /* activations in the kind's formats, 64-byte aligned */
    int32_t *z;         /* logits, room for jit_out_rows */
};

static const char *const engine_name[JIT_KINDS] = {"jit scalar", "jit sse2", "jit avx2", "jit avx-vnni",
                                                   "jit avx512-vnni"};

static inline uint64_t
rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Turn on what `kind`'s code uses (SDM vol. 3A, 13.1-13.3). SSE always:
 * CR0.EM clear, CR0.MP, CR4.OSFXSR and CR4.OSXMMEXCPT. For the AVX kinds,
 * also CR4.OSXSAVE, then XCR0 through xsetbv: until XCR0 holds the AVX
 * state (and, for zmm, the three AVX-512 components), every VEX and EVEX
 * instruction is #UD. */
static void
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
static int
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

/* Before trusting the encoder with real code, compare it with bytes the
 * SDM gives for a few operands that exercise every rule. */
static int
jit_encoder_ok(void)
{
    /* one encoding per row, as the SDM's tables give them */
    // clang-format off
    static const struct { int p66, w, reg, base, index, scale, disp, n; uint8_t bytes[10]; const char *text; } k[] = {
        {0, 1, RAX, RDX, JIT_NOREG, 1, 16, 4, {0x48, 0x8b, 0x42, 0x10}, "mov rax, [rdx+0x10]"},
        {0, 1, R9, R12, JIT_NOREG, 1, 0, 4, {0x4d, 0x8b, 0x0c, 0x24}, "mov r9, [r12]"},
        {0, 0, RCX, R13, JIT_NOREG, 1, 0, 4, {0x41, 0x8b, 0x4d, 0x00}, "mov ecx, [r13]"},
        {0, 1, RAX, RBX, R14, 8, -8, 5, {0x4a, 0x8b, 0x44, 0xf3, 0xf8}, "mov rax, [rbx+r14*8-8]"},
        {1, 0, XMM(1), RDX, JIT_NOREG, 1, 0x200, 8, {0x66, 0x0f, 0x6f, 0x8a, 0x00, 0x02, 0x00, 0x00}, "movdqa xmm1, [rdx+0x200]"},
        {0, 0, RAX, JIT_NOREG, RCX, 4, 0x1000, 7, {0x8b, 0x04, 0x8d, 0x00, 0x10, 0x00, 0x00}, "mov eax, [rcx*4+0x1000]"},
        {0, 1, R8, RAX, JIT_NOREG, 1, 0, 3, {0x4c, 0x8b, 0x00}, "mov r8, [rax]"},
        {0, 1, RAX, RDX, JIT_NOREG, 1, 0x7f, 4, {0x48, 0x8b, 0x42, 0x7f}, "mov rax, [rdx+0x7f]"},
        {0, 1, RAX, RDX, JIT_NOREG, 1, 0x80, 7, {0x48, 0x8b, 0x82, 0x80, 0x00, 0x00, 0x00}, "mov rax, [rdx+0x80]"},
        {0, 1, RAX, RDX, JIT_NOREG, 1, -0x80, 4, {0x48, 0x8b, 0x42, 0x80}, "mov rax, [rdx-0x80]"},
        {0, 1, RAX, RDX, JIT_NOREG, 1, -0x1000, 7, {0x48, 0x8b, 0x82, 0x00, 0xf0, 0xff, 0xff}, "mov rax, [rdx-0x1000]"}
    };
    // clang-format on
    for (unsigned i = 0; i < sizeof k / sizeof k[0]; i++) {
        uint8_t buf[16];
        struct jit j;
        jit_init(&j, buf, sizeof buf);
        const uint8_t *op = k[i].p66 ? (const uint8_t[]){0x0f, 0x6f} : (const uint8_t[]){0x8b};
        jit_op_mem(&j, k[i].p66, k[i].w, op, k[i].p66 ? 2 : 1, k[i].reg, k[i].base, k[i].index, k[i].scale, k[i].disp);
        if (j.len != (size_t)k[i].n || memcmp(buf, k[i].bytes, j.len) != 0) {
            kprintf("[jit] FAIL: for `%s` the encoder gives `", k[i].text);
            for (size_t b = 0; b < j.len; b++)
                kprintf(b ? " %02x" : "%02x", buf[b]);
            kprintf("`, the SDM `");
            for (int b = 0; b < k[i].n; b++)
                kprintf(b ? " %02x" : "%02x", k[i].bytes[b]);
            kprintf("`: jit_rex, jit_modrm_mem (LAB 6); the JIT will not run\n");
            return 0;
        }
    }
    return 1;
}

/* jit_seal of 32 bytes across two fresh pages must seal both (its start
 * rounded down to a page); of an address with no page table, it returns -1. */
static int
jit_seal_ok(void)
{
    uint8_t *two = kmalloc_pages(2);
    uint64_t pa, flags, none = 0x00007e8000000000ull;
    if (two == NULL)
        panic("jit: out of heap");
    if (jit_seal(two + PAGE_SIZE - 16, 32) != 0) {
        kprintf("[jit] FAIL: jit_seal(%p, 32) failed (LAB 6): not run\n", two + PAGE_SIZE - 16);
        return 0;
    }
    for (int i = 0; i < 2; i++)
        if (pt_translate((uint64_t)two + i * PAGE_SIZE, &pa, &flags) != 0 || (flags & (PTE_W | PTE_NX))) {
            kprintf("[jit] FAIL: jit_seal(%p, 32) left page %p writable or no-execute: seal every page the range "
                    "touches, from its start rounded down (LAB 6): not run\n",
                    two + PAGE_SIZE - 16, two + i * PAGE_SIZE);
            return 0;
        }
    if (jit_seal((void *)none, 1) != -1) {
        kprintf("[jit] FAIL: jit_seal(%p, 1), where no page table is, did not return -1 (LAB 6): not run\n",
                (void *)none);
        return 0;
    }
    return 1;
}

/* The forward pass through a JIT's three layers; the embeddings are copied
 * in as int16 or int8, as the kind's first layer reads them. */
static void
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

static void *
jit_alloc(uint64_t bytes)
{
    void *p = kmalloc_pages((bytes + PAGE_SIZE - 1) / PAGE_SIZE);
    if (p == NULL)
        panic("jit: out of heap (%lu bytes)", bytes);
    return p;
}

/* The model's layers, and each packed for `kind` (scalar shares SSE2's
 * int16 copy, in `shared`), and the activations in the kind's formats. */
static void
jit_prepare(const struct model *m, enum jit_kind kind, struct jit_model *jm, struct jit_layer *l, void **shared)
{
    l[0] = (struct jit_layer){m->w1, m->b1, MODEL_H1, MODEL_IN, m->h->m1, 1};
    l[1] = (struct jit_layer){m->w2, m->b2, MODEL_H2, MODEL_H1, m->h->m2, 0};
    l[2] = (struct jit_layer){m->w3, m->b3, MODEL_VOCAB, MODEL_H2, 0, 0};
    jm->kind = kind;
    for (int i = 0; i < 3; i++) {
        enum jit_kind as = kind == JIT_SCALAR ? JIT_SSE2 : kind;
        if (as == JIT_SSE2 && shared[i]) {
            jm->packed[i] = shared[i];
            continue;
        }
        jm->packed[i] = jit_alloc(jit_pack_size(as, &l[i]));
        if (jit_pack(as, &l[i], jm->packed[i]) != 0)
            panic("jit: %s cannot compute layer %d exactly", jit_kind_name[kind], i + 1);
        if (as == JIT_SSE2)
            shared[i] = jm->packed[i];
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

/* Compile the three layers into fresh pages (RW, NX), then seal them R-X. */
static int
jit_build(const struct model *m, enum jit_kind kind, struct jit_model *jm, void **shared, uint8_t **code_out)
{
    struct jit_layer l[3];
    uint8_t *code = jit_alloc(JIT_CODE_PAGES * PAGE_SIZE);
    const char *name = jit_kind_name[kind];
    struct jit j;
    size_t at[3];
    jit_prepare(m, kind, jm, l, shared);
    jit_init(&j, code, JIT_CODE_PAGES * PAGE_SIZE);
    for (int i = 0; i < 3; i++)
        at[i] = jit_compile_layer(&j, kind, &l[i], jm->packed[i]);
    if (j.overflow)
        panic("jit: the %s code does not fit in %d pages", name, JIT_CODE_PAGES);
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

static uint64_t
selftest_hash(const struct engine *e, uint64_t seed)
{
    uint64_t st = seed ^ 0x6d6f64656cull;
    uint32_t h = 0x811c9dc5u, each[SELFTEST_CONTEXTS];
    for (int c = 0; c < SELFTEST_CONTEXTS; c++) {
        uint8_t ctx[MODEL_CTX];
        int32_t z[MODEL_VOCAB];
        for (int p = 0; p < MODEL_CTX; p++)
            ctx[p] = (uint8_t)(seed_next(&st) % MODEL_VOCAB);
        e->logits(e, ctx, z);
        h = model_fnv1a(h, z, sizeof z);
        each[c] = model_fnv1a(0x811c9dc5u, z, sizeof z);
    }
    kprintf("[model] %s: %d seeded contexts, logits hash 0x%x\n", e->name, SELFTEST_CONTEXTS, h);
    kprintf("[model] %s: each context:", e->name);
    for (int c = 0; c < SELFTEST_CONTEXTS; c++)
        kprintf(" %x", each[c]);
    kprintf("\n");
    return h;
}

static void
selftest_heldout(const struct engine *e)
{
    const char *w = e->m->heldout;
    int good = 0, total = 0;
    for (uint32_t n = 0; n < e->m->h->heldout_words; n++, w += strlen(w) + 1) {
        uint8_t ctx[MODEL_CTX] = {0};
        for (const char *c = w;; c++) {
            int32_t z[MODEL_VOCAB];
            int y = *c ? *c - 'a' + 1 : 0;
            e->logits(e, ctx, z);
            good += model_top1(z) == y;
            total++;
            memmove(ctx, ctx + 1, MODEL_CTX - 1);
            ctx[MODEL_CTX - 1] = (uint8_t)y;
            if (*c == 0)
                break;
        }
    }
    kprintf("[model] held-out top-1 (%s): %d of %d\n", e->name, good, total);
}

static void
selftest_words(const struct engine *e, uint64_t seed)
{
    uint32_t state = (uint32_t)seed ? (uint32_t)seed : 0x2545f491u;
    kprintf("[model] words (%s):", e->name);
    for (int n = 0; n < SELFTEST_WORDS; n++) {
        uint8_t ctx[MODEL_CTX] = {0};
        int len = 0;
        kprintf(" ");
        while (len < MODEL_MAX_WORD) {
            int32_t z[MODEL_VOCAB];
            e->logits(e, ctx, z);
            int k = model_sample(e->m, z, &state);
            if (k == 0)
                break;
            kprintf("%c", 'a' + k - 1);
            len++;
            memmove(ctx, ctx + 1, MODEL_CTX - 1);
            ctx[MODEL_CTX - 1] = (uint8_t)k;
        }
        if (len == 0)
            kprintf("(empty)");
    }
    kprintf("\n");
}

static uint64_t
selftest_cycles(const struct engine *e)
{
    uint8_t ctx[MODEL_CTX] = {1, 2, 3, 4, 5, 6};
    int32_t z[MODEL_VOCAB];
    uint64_t t = rdtsc();
    for (int i = 0; i < 8; i++)
        e->logits(e, ctx, z);
    return (rdtsc() - t) / 8;
}

/* Load the model, choose and enable the vector path, and run every engine:
 * the lines the grader checks (labs/06-jit-model/expected.txt). */
void
model_selftest(uint64_t seed, const struct boot_info *bi)
{
    static struct model m;
    static struct jit_model jm[3];
    struct engine interp = {"interpreter", model_logits_c, &m, NULL}, jits[3];
    uint8_t *code[3] = {0, 0, 0};
    void *shared[3] = {0, 0, 0};
    model_load(bi, &m);
    selftest_hash(&interp, seed);
    int kind = simd_choose(), n = kind > JIT_SSE2 ? 3 : 2;
    simd_enable(kind);
    if (!jit_encoder_ok() || !jit_seal_ok())
        return;
    for (int k = 0; k < n; k++) {
        enum jit_kind as = k < 2 ? (enum jit_kind)k : (enum jit_kind)kind;
        jits[k] = (struct engine){engine_name[as], jit_engine_logits, &m, &jm[k]};
        if (!jit_build(&m, as, &jm[k], shared, &code[k]))
            return;
    }
    for (int k = 0; k < n; k++)
        selftest_hash(&jits[k], seed);
    uint64_t w = probe_write((uint64_t)code[1]), x = probe_exec((uint64_t)jm[1].packed[1]);
    kprintf("[jit] W^X: writing sealed code -> vector %lu error 0x%lx; executing the weights -> vector %lu "
            "error 0x%lx\n",
            (w >> 32) & 0xff, w & 0xffffffff, (x >> 32) & 0xff, x & 0xffffffff);
    selftest_heldout(&jits[n - 1]);
    selftest_words(&jits[n - 1], seed);
    kprintf("[model] cycles per character, not graded: interpreter %lu", selftest_cycles(&interp));
    for (int k = 0; k < n; k++)
        kprintf(", %s %lu", jits[k].name, selftest_cycles(&jits[k]));
    kprintf("\n");
}
