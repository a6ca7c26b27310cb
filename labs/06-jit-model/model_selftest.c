/* The workload of the whole kernel: load the model, run the interpreter and
 * two JITs (scalar, SSE2) on seeded contexts, check W^X with the probes of
 * lab 05, then score held-out words and generate words with the SSE2 JIT.
 * Every printed value is recomputed by the grader (labs/06-jit-model/model_ref.py).
 */
#include "model.h"
#include "jit.h"
#include "heap.h"
#include "paging.h"
#include "serial.h"
#include "trap.h"
#include "x86.h"

#define JIT_CODE_PAGES 4
#define SELFTEST_CONTEXTS 16
#define SELFTEST_WORDS 8

int jit_seal(void *code, uint64_t len);

struct jit_model {
    jit_layer_fn layer[3];
    int16_t *in, *h1, *h2;           /* 16-byte aligned activations */
};

static int16_t *wide_w1, *wide_w2, *wide_w3;   /* the weights widened to int16, shared by both JITs */

static inline uint64_t
rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* SSE needs the OS to say it saves the state (SDM vol. 3A, 13.1). */
static void
sse_enable(void)
{
    uint64_t cr0 = read_cr0(), cr4 = read_cr4();
    cr0 = (cr0 & ~(uint64_t)CR0_EM) | CR0_MP;
    cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT;
    __asm__ volatile("mov %0, %%cr0; mov %1, %%cr4" : : "r"(cr0), "r"(cr4));
}

static int16_t *
jit_widen(const int8_t *w, int n)
{
    int16_t *out = kmalloc_pages((uint64_t)(2 * n + PAGE_SIZE - 1) / PAGE_SIZE);
    for (int i = 0; out && i < n; i++)
        out[i] = w[i];
    return out;
}

/* Before trusting the encoder with real code, compare it with bytes the
 * SDM gives for a few operands that exercise every rule. */
static int
jit_encoder_ok(void)
{
    static const struct { int p66, w, reg, base, index, scale, disp, n; uint8_t bytes[10]; const char *text; } k[] = {
        {0, 1, RAX, RDX, JIT_NOREG, 1, 16, 4, {0x48, 0x8b, 0x42, 0x10}, "mov rax, [rdx+0x10]"},
        {0, 1, R9, R12, JIT_NOREG, 1, 0, 4, {0x4d, 0x8b, 0x0c, 0x24}, "mov r9, [r12]"},
        {0, 0, RCX, R13, JIT_NOREG, 1, 0, 4, {0x41, 0x8b, 0x4d, 0x00}, "mov ecx, [r13]"},
        {0, 1, RAX, RBX, R14, 8, -8, 5, {0x4a, 0x8b, 0x44, 0xf3, 0xf8}, "mov rax, [rbx+r14*8-8]"},
        {1, 0, XMM(1), RDX, JIT_NOREG, 1, 0x200, 8, {0x66, 0x0f, 0x6f, 0x8a, 0x00, 0x02, 0x00, 0x00}, "movdqa xmm1, [rdx+0x200]"},
        {0, 0, RAX, JIT_NOREG, RCX, 4, 0x1000, 7, {0x8b, 0x04, 0x8d, 0x00, 0x10, 0x00, 0x00}, "mov eax, [rcx*4+0x1000]"},
    };
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

static void
jit_engine_logits(const struct engine *e, const uint8_t *ctx, int32_t *out)
{
    struct jit_model *jm = e->jit;
    for (int p = 0; p < MODEL_CTX; p++)
        for (int d = 0; d < MODEL_EMBED; d++)
            jm->in[p * MODEL_EMBED + d] = e->m->embedding[ctx[p] * MODEL_EMBED + d];
    jm->layer[0](jm->in, jm->h1);
    jm->layer[1](jm->h1, jm->h2);
    jm->layer[2](jm->h2, out);
}

/* Compile the three layers into fresh pages (RW, NX), then seal them R-X. */
static int
jit_build(const struct model *m, enum jit_kind kind, struct jit_model *jm, uint8_t **code_out)
{
    uint8_t *code = kmalloc_pages(JIT_CODE_PAGES);
    jm->in = kmalloc(2 * MODEL_IN);
    jm->h1 = kmalloc(2 * MODEL_H1);
    jm->h2 = kmalloc(2 * MODEL_H2);
    if (!code || !jm->in || !jm->h1 || !jm->h2)
        panic("jit: out of heap");
    const struct jit_layer_spec spec[3] = {
        {wide_w1, m->b1, MODEL_H1, MODEL_IN, m->h->m1},
        {wide_w2, m->b2, MODEL_H2, MODEL_H1, m->h->m2},
        {wide_w3, m->b3, MODEL_VOCAB, MODEL_H2, 0},
    };
    struct jit j;
    size_t at[3];
    jit_init(&j, code, JIT_CODE_PAGES * PAGE_SIZE);
    for (int l = 0; l < 3; l++)
        at[l] = jit_compile_layer(&j, kind, &spec[l]);
    const char *name = kind == JIT_SSE2 ? "sse2" : "scalar";
    if (j.overflow)
        panic("jit: the %s code does not fit in %d pages", name, JIT_CODE_PAGES);
    if (jit_seal(code, j.len) != 0) {
        kprintf("[jit] FAIL: jit_seal(%p, %lu) failed (LAB 6): not run\n", code, j.len);
        return 0;
    }
    for (uint64_t va = (uint64_t)code; va < (uint64_t)code + j.len; va += PAGE_SIZE) {
        uint64_t pa, flags;
        if (pt_translate(va, &pa, &flags) != 0 || (flags & (PTE_W | PTE_NX))) {
            kprintf("[jit] FAIL: %s code page %p is not r-x after jit_seal (LAB 6): not run\n", name, (void *)va);
            return 0;
        }
    }
    /* The tables say r-x; the CPU must agree before anything runs. The zero
     * byte after the code was written while emitting, so a TLB that still
     * holds the writable translation (no invlpg) lets this write through. */
    if (j.len % PAGE_SIZE && !(probe_write((uint64_t)code + j.len) & PROBE_FAULTED)) {
        kprintf("[jit] FAIL: %s code at %p is still writable through the TLB after jit_seal: invlpg "
                "missing? (LAB 6): not run\n", name, code);
        return 0;
    }
    for (int l = 0; l < 3; l++)
        jm->layer[l] = (jit_layer_fn)(uintptr_t)(code + at[l]);
    *code_out = code;
    kprintf("[jit] %s: %lu bytes of code, sealed r-x\n", name, j.len);
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

void
model_selftest(uint64_t seed, const struct boot_info *bi)
{
    static struct model m;
    static struct jit_model jm[2];
    struct engine interp = {"interpreter", model_logits_c, &m, NULL};
    struct engine jits[2] = {{"jit scalar", jit_engine_logits, &m, &jm[0]}, {"jit sse2", jit_engine_logits, &m, &jm[1]}};
    uint8_t *code[2] = {0, 0};
    model_load(bi, &m);
    sse_enable();
    selftest_hash(&interp, seed);
    wide_w1 = jit_widen(m.w1, MODEL_H1 * MODEL_IN);
    wide_w2 = jit_widen(m.w2, MODEL_H2 * MODEL_H1);
    wide_w3 = jit_widen(m.w3, MODEL_VOCAB * MODEL_H2);
    if (!wide_w1 || !wide_w2 || !wide_w3)
        panic("jit: out of heap for the widened weights");
    if (!jit_encoder_ok())
        return;
    int ready = jit_build(&m, JIT_SCALAR, &jm[0], &code[0]) && jit_build(&m, JIT_SSE2, &jm[1], &code[1]);
    if (!ready)
        return;
    for (int k = 0; k < 2; k++)
        selftest_hash(&jits[k], seed);
    uint64_t w = probe_write((uint64_t)code[1]), x = probe_exec((uint64_t)wide_w2);
    kprintf("[jit] W^X: writing sealed code -> vector %lu error 0x%lx; executing the weights -> vector %lu "
            "error 0x%lx\n", (w >> 32) & 0xff, w & 0xffffffff, (x >> 32) & 0xff, x & 0xffffffff);
    selftest_heldout(&jits[1]);
    selftest_words(&jits[1], seed);
    kprintf("[model] cycles per character, not graded: interpreter %lu, jit scalar %lu, jit sse2 %lu\n",
            selftest_cycles(&interp), selftest_cycles(&jits[0]), selftest_cycles(&jits[1]));
}
