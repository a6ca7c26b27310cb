/* The workload of the whole kernel: load the model, run the interpreter and
 * the JITs (scalar, SSE2, and the widest kind CPUID allows; built by
 * model_jit.c) on seeded contexts, check W^X with the probes of lab 05, then
 * score held-out words and generate words with the widest JIT. Before that,
 * the student's encoder and jit_seal are checked on made-up cases. Every
 * printed value is recomputed by the grader (model_ref.py, beside this file).
 */
#include "model.h"
#include "jit.h"
#include "heap.h"
#include "paging.h"
#include "serial.h"
#include "simd.h"
#include "trap.h"
#include "x86.h"

#define SELFTEST_CONTEXTS 16
#define SELFTEST_WORDS    8
#define SELFTEST_ENGINES  5 /* the interpreter, the scalar, SSE2 and widest JITs, the widest's batched code */

/* What the engines computed, for the grader to read from memory (a console
 * that prints something else does not change it): each engine's logits for
 * the seeded contexts, and where each JIT's code lies (0: not built). */
struct model_seen {
    int32_t logits[SELFTEST_ENGINES][SELFTEST_CONTEXTS][MODEL_VOCAB];
    uint64_t code[SELFTEST_ENGINES - 1];
} model_seen;

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

/* The PTE_W and PTE_NX bits of the page at va (both set on a fresh page),
 * or ~0 when nothing maps it. */
static uint64_t
jit_seal_bits(uint64_t va)
{
    uint64_t pa, flags;
    return pt_translate(va, &pa, &flags) != 0 ? ~0ull : flags & (PTE_W | PTE_NX);
}

static const char *
jit_seal_state(uint64_t bits)
{
    if (bits == ~0ull)
        return "not mapped";
    if (bits == (PTE_W | PTE_NX))
        return "writable and no-execute, as before";
    return bits == PTE_W ? "writable" : bits == PTE_NX ? "no-execute" : "r-x";
}

/* Why jit_seal left a page of the two-page range unsealed, from what it did to each. */
static const char *
jit_seal_why(uint64_t first, uint64_t last)
{
    uint64_t fresh = PTE_W | PTE_NX;
    if (first == fresh && last == fresh)
        return "it changed no bit of either entry: clear PTE_W and PTE_NX in the 4 KiB entry of each page";
    if (first == 0 && last == fresh)
        return "the last page was left out: step a page at a time from the start rounded down, while below "
               "code + len";
    if (first == fresh && last == 0)
        return "the first page was left out: start from code rounded down to a page";
    return "clear both PTE_W and PTE_NX, and no other bit, in the entry of every page the range touches";
}

/* jit_seal of 32 bytes across two fresh pages must seal both (its start
 * rounded down to a page); of an address with no page table, it returns -1. */
static int
jit_seal_ok(void)
{
    uint8_t *two = kmalloc_pages(2);
    uint64_t none = JIT_SEAL_NO_TABLE_VA;
    if (two == NULL)
        panic("jit: out of heap");
    if (jit_seal(two + PAGE_SIZE - 16, 32) != 0) {
        kprintf("[jit] FAIL: jit_seal(%p, 32) failed (LAB 6): not run\n", two + PAGE_SIZE - 16);
        return 0;
    }
    uint64_t first = jit_seal_bits((uint64_t)two), last = jit_seal_bits((uint64_t)two + PAGE_SIZE);
    if (first != 0 || last != 0) {
        kprintf("[jit] FAIL: jit_seal(%p, 32) left page %p %s and page %p %s: %s (LAB 6): not run\n",
                two + PAGE_SIZE - 16, two, jit_seal_state(first), two + PAGE_SIZE, jit_seal_state(last),
                jit_seal_why(first, last));
        return 0;
    }
    if (jit_seal((void *)none, 1) != -1) {
        kprintf("[jit] FAIL: jit_seal(%p, 1), where no page table is, did not return -1 (LAB 6): not run\n",
                (void *)none);
        return 0;
    }
    return 1;
}

/* The logits of n contexts (ctx: n x MODEL_CTX characters, out: n x
 * MODEL_VOCAB): a batched engine takes up to its batch a call, any other one
 * context a call. */
static void
engine_logits(const struct engine *e, const uint8_t *ctx, int n, int32_t *out)
{
    for (int i = 0; i < n; i += e->batch ? e->batch : 1) {
        if (e->batch)
            e->logits_batch(e, ctx + i * MODEL_CTX, n - i < e->batch ? n - i : e->batch, out + i * MODEL_VOCAB);
        else
            e->logits(e, ctx + i * MODEL_CTX, out + i * MODEL_VOCAB);
    }
}

/* The contexts are drawn first, then computed together (each one's logits
 * depend on it alone), so a batched engine takes them a batch at a time.
 * Each context's logits are kept in keep[], for the grader to read.
 * Twin: labs/06-jit-model/model_ref.py seeded_contexts and logits_hash. */
static uint64_t
selftest_hash(const struct engine *e, uint64_t seed, int32_t (*keep)[MODEL_VOCAB])
{
    uint64_t st = seed ^ 0x6d6f64656cull;
    uint32_t h = 0x811c9dc5u, each[SELFTEST_CONTEXTS];
    uint8_t ctx[SELFTEST_CONTEXTS][MODEL_CTX];
    int32_t z[SELFTEST_CONTEXTS][MODEL_VOCAB];
    for (int c = 0; c < SELFTEST_CONTEXTS; c++)
        for (int p = 0; p < MODEL_CTX; p++)
            ctx[c][p] = (uint8_t)(seed_next(&st) % MODEL_VOCAB);
    engine_logits(e, ctx[0], SELFTEST_CONTEXTS, z[0]);
    memcpy(keep, z, sizeof z);
    for (int c = 0; c < SELFTEST_CONTEXTS; c++) {
        h = model_fnv1a(h, z[c], sizeof z[c]);
        each[c] = model_fnv1a(0x811c9dc5u, z[c], sizeof z[c]);
    }
    kprintf("[model] %s: %d seeded contexts, logits hash 0x%x\n", e->name, SELFTEST_CONTEXTS, h);
    kprintf("[model] %s: each context:", e->name);
    for (int c = 0; c < SELFTEST_CONTEXTS; c++)
        kprintf(" %x", each[c]);
    kprintf("\n");
    return h;
}

/* Score a batch of held-out positions: top-1 against the characters that
 * came next, and every logit into the hash; returns the correct ones. */
static int
heldout_score(const struct engine *e, const uint8_t *ctx, const int *next, int n, uint32_t *hash)
{
    int32_t z[JIT_BATCH_MAX][MODEL_VOCAB];
    int good = 0;
    engine_logits(e, ctx, n, z[0]);
    for (int i = 0; i < n; i++) {
        good += model_top1(z[i]) == next[i];
        *hash = model_fnv1a(*hash, z[i], sizeof z[i]);
    }
    return good;
}

/* Every position of the held-out words, in order, a batch of them a call
 * when the engine is batched (they are independent of each other): the
 * top-1 count of the path `path` names, and the hash of all their logits.
 * Twin: labs/06-jit-model/model_ref.py heldout_top1 and heldout_hash. */
static void
selftest_heldout(const struct engine *e, const char *path)
{
    const char *w = e->m->heldout;
    int good = 0, total = 0, calls = 0, k = 0, per = e->batch ? e->batch : 1, next[JIT_BATCH_MAX];
    uint8_t ctx[JIT_BATCH_MAX][MODEL_CTX];
    uint32_t hash = 0x811c9dc5u;
    for (uint32_t n = 0; n < e->m->h->heldout_words; n++, w += strlen(w) + 1) {
        uint8_t now[MODEL_CTX] = {0};
        for (const char *c = w;; c++) {
            memcpy(ctx[k], now, MODEL_CTX);
            next[k++] = *c ? *c - 'a' + 1 : 0;
            if (k == per) {
                good += heldout_score(e, ctx[0], next, k, &hash);
                calls++, total += k, k = 0;
            }
            memmove(now, now + 1, MODEL_CTX - 1);
            now[MODEL_CTX - 1] = (uint8_t)(*c ? *c - 'a' + 1 : 0);
            if (*c == 0)
                break;
        }
    }
    if (k) {
        good += heldout_score(e, ctx[0], next, k, &hash);
        calls++, total += k;
    }
    if (e->batch)
        kprintf("[model] held-out (%s): %d positions in %d calls of up to %d, logits hash 0x%x\n", e->name, total,
                calls, e->batch, hash);
    else
        kprintf("[model] held-out (%s): %d positions one at a time, logits hash 0x%x\n", e->name, total, hash);
    kprintf("[model] held-out top-1 (%s): %d of %d\n", path, good, total);
}

/* Twin: labs/06-jit-model/model_ref.py generate. */
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

/* Cycles per character: 8 calls (of a whole batch, for a batched engine). */
static uint64_t
selftest_cycles(const struct engine *e)
{
    uint8_t ctx[JIT_BATCH_MAX][MODEL_CTX];
    int32_t z[JIT_BATCH_MAX][MODEL_VOCAB];
    int n = e->batch ? e->batch : 1;
    for (int c = 0; c < n; c++)
        for (int p = 0; p < MODEL_CTX; p++)
            ctx[c][p] = (uint8_t)(1 + (c + p) % 26);
    uint64_t t = rdtsc();
    for (int i = 0; i < 8; i++)
        engine_logits(e, ctx[0], n, z[0]);
    return (rdtsc() - t) / 8 / (uint64_t)n;
}

/* Load the model, choose and enable the vector path, and run every engine:
 * the lines the grader checks (labs/06-jit-model/expected.txt). The widest
 * path also gets its batched code, if it has one, for the seeded contexts
 * and the held-out positions; without one (scalar, SSE2) the held-out
 * positions run one at a time, and the kernel says so. */
void
model_selftest(uint64_t seed, const struct boot_info *bi)
{
    static struct model m;
    static struct jit_model jm[4];
    struct engine interp = {"interpreter", model_logits_c, &m, NULL, 0, NULL}, jits[4];
    uint8_t *code[4] = {0, 0, 0, 0};
    void *shared[3] = {0, 0, 0};
    model_load(bi, &m);
    selftest_hash(&interp, seed, model_seen.logits[0]);
    int kind = simd_choose(), n = kind > JIT_SSE2 ? 3 : 2, batched = jit_batch(kind) != 0;
    simd_enable(kind);
    if (!jit_encoder_ok() || !jit_seal_ok())
        return;
    for (int k = 0; k < n; k++) {
        enum jit_kind as = k < 2 ? (enum jit_kind)k : (enum jit_kind)kind;
        jits[k] = (struct engine){jit_engine_name[as], jit_engine_logits, &m, &jm[k], 0, NULL};
        if (!jit_build(&m, as, 0, &jm[k], shared, &code[k]))
            return;
        model_seen.code[k] = (uint64_t)code[k];
    }
    if (batched) {
        jits[n] = (struct engine){jit_batch_name(kind), NULL, &m, &jm[n], jit_batch(kind), jit_engine_logits_batch};
        if (!jit_build(&m, kind, 1, &jm[n], shared, &code[n]))
            return;
        model_seen.code[n] = (uint64_t)code[n];
    } else {
        kprintf("[jit] %s has no batched form: the held-out positions run one context at a time\n",
                jit_kind_name[kind]);
    }
    for (int k = 0; k < n; k++)
        selftest_hash(&jits[k], seed, model_seen.logits[1 + k]);
    if (batched)
        selftest_hash(&jits[n], seed, model_seen.logits[SELFTEST_ENGINES - 1]);
    uint64_t w = probe_write((uint64_t)code[1]), x = probe_exec((uint64_t)jm[1].packed[1]);
    kprintf("[jit] W^X: writing sealed code -> vector %lu error 0x%lx; executing the weights -> vector %lu "
            "error 0x%lx\n",
            (w >> 32) & 0xff, w & 0xffffffff, (x >> 32) & 0xff, x & 0xffffffff);
    selftest_heldout(&jits[n - 1 + batched], jits[n - 1].name);
    selftest_words(&jits[n - 1], seed);
    kprintf("[model] cycles per character, not graded: interpreter %lu", selftest_cycles(&interp));
    for (int k = 0; k < n + batched; k++)
        kprintf(", %s %lu", jits[k].name, selftest_cycles(&jits[k]));
    kprintf("\n");
}
