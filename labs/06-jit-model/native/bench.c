/* The native benchmark: every way to run the model's 256x256 matvec and its
 * forward pass, one context at a time and in batches, timed with rdtsc
 * (medians), checked against the C loop, and placed under the ceilings
 * computed from this machine's own figures (a roofline): each kind's
 * multiply-adds in registers, and the streaming of packed weights from
 * L1/L2, both measured by code the JIT emits. A path's arithmetic intensity
 * is its multiply-adds per weight byte: 1 for int8 weights, 1/2 for the
 * int16 copies of scalar and SSE2, B for a batch of B contexts.
 */
#include <stdlib.h>
#include <string.h>
#include "native.h"

#define RUNS          101
#define CEILING_TRIES 3             /* a ceiling is the best of 3 medians: work beside it only lowers it */
#define MACS          (256.0 * 256) /* the matvec's multiply-adds */
#define FORWARD_MACS  (96.0 * 256 + 256.0 * 256 + 256.0 * 27) /* the forward pass's: 97,024 */

typedef void (*matvec_fn)(const int8_t *, const int16_t *, const int32_t *, int64_t, int, int, void *);
void matvec_kernel_flags(const int8_t *, const int16_t *, const int32_t *, int64_t, int, int, void *);
void matvec_native(const int8_t *, const int16_t *, const int32_t *, int64_t, int, int, void *);
typedef void (*bench_fn)(void);

static inline uint64_t
rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Reference cycles of one `call` (the median of RUNS timed runs of `reps` calls each). */
#define TIME(result, reps, call)                                                                                       \
    do {                                                                                                               \
        uint64_t t_[RUNS];                                                                                             \
        for (int r_ = 0; r_ < RUNS; r_++) {                                                                            \
            uint64_t s_ = rdtsc();                                                                                     \
            for (int k_ = 0; k_ < (reps); k_++) {                                                                      \
                call;                                                                                                  \
            }                                                                                                          \
            t_[r_] = rdtsc() - s_;                                                                                     \
        }                                                                                                              \
        qsort(t_, RUNS, sizeof t_[0], cmp_u64);                                                                        \
        (result) = (double)t_[RUNS / 2] / (reps);                                                                      \
    } while (0)

/* One way to run the matvec: its cycles per context (a batch's call divided
 * by B), the kind whose instructions it uses (-1: C) and its intensity. */
struct row {
    const char *name;
    double matvec, forward;
    int kind, batch;
    double intensity;
};

/* The ceilings: the streaming rate of weights, and each kind's multiply-adds
 * per cycle in registers (0 if not measured); `widest` is the machine's. */
struct roof {
    double bandwidth;
    double compute[JIT_KINDS];
    int widest;
};

static const char *const KIND_TEXT[JIT_KINDS] = {"JIT, scalar", "JIT, SSE2 pmaddwd", "JIT, AVX2 vpmaddwd/vpmaddubsw",
                                                 "JIT, AVX-VNNI vpdpbusd ymm", "JIT, AVX-512 VNNI vpdpbusd zmm"};
static const char *const BATCH_TEXT[JIT_KINDS] = {"", "", "AVX2 vpmaddubsw", "AVX-VNNI ymm", "AVX-512 VNNI zmm"};

/* The C loop, both ways, on the matvec and the forward pass. */
static int
bench_c(const struct native_model *m, const int16_t *x, int32_t *ref, int32_t *zref, struct row *rows)
{
    static const char *const names[2] = {"C, kernel flags (-O2 -mno-sse)", "C, clang -O3 -march=native"};
    matvec_fn fn[2] = {matvec_kernel_flags, matvec_native};
    const struct jit_layer *l = m->layer;
    int16_t in[MODEL_IN], h1[MODEL_H], h2[MODEL_H];
    int32_t out[MODEL_H];
    for (int i = 0; i < MODEL_IN; i++)
        in[i] = m->embedding[(i / 16 + 1) * 16 + i % 16];
    for (int k = 0; k < 2; k++) {
        rows[k] = (struct row){names[k], 0, 0, -1, 1, 1.0};
        TIME(rows[k].matvec, 20, fn[k](l[1].w, x, l[1].bias, 0, 256, 256, k ? out : ref));
        TIME(rows[k].forward, 10,
             (fn[k](l[0].w, in, l[0].bias, l[0].mult, 256, 96, h1),
              fn[k](l[1].w, h1, l[1].bias, l[1].mult, 256, 256, h2), fn[k](l[2].w, h2, l[2].bias, 0, 27, 256, zref)));
        if (k && memcmp(out, ref, sizeof out) != 0) {
            fprintf(stderr, "clang -O3 computes another product than the kernel-flag C\n");
            return -1;
        }
    }
    return 0;
}

/* One JIT kind on the matvec (layer 2's weights, int32 out) and the forward
 * pass (context 1..6), each checked against the C results. */
static int
bench_kind(const struct native_model *m, int kind, const int *x, const int32_t *ref, const int32_t *zref,
           struct row *row)
{
    struct jit_layer sq = m->layer[1];
    struct engine e;
    static const int ctx[6] = {1, 2, 3, 4, 5, 6};
    int32_t out[MODEL_H + 16], z[MODEL_V];
    sq.mult = 0;
    jit_layer_fn f = native_compile(kind, &sq, NULL);
    void *in = native_input(kind, 0, x, 256);
    if (!f || !in || engine_build(m, kind, &e) != 0)
        return -1;
    *row = (struct row){KIND_TEXT[kind], 0, 0, kind, 1, kind <= JIT_SSE2 ? 0.5 : 1.0};
    TIME(row->matvec, 20, f(in, out));
    engine_forward(m, &e, ctx, z);
    TIME(row->forward, 10, (e.layer[0](e.in, e.h1), e.layer[1](e.h1, e.h2), e.layer[2](e.h2, e.z)));
    if (memcmp(out, ref, 4 * MODEL_H) != 0 || memcmp(z, zref, sizeof z) != 0) {
        fprintf(stderr, "%s computes another %s than the C loop\n", jit_kind_name[kind],
                memcmp(out, ref, 4 * MODEL_H) ? "matvec" : "forward pass");
        return -1;
    }
    return 0;
}

/* The C loop's forward pass (kernel flags) for one context: the reference. */
static void
c_forward(const struct native_model *m, const int *ctx, int32_t *z)
{
    const struct jit_layer *l = m->layer;
    int16_t in[MODEL_IN], h1[MODEL_H], h2[MODEL_H];
    for (int i = 0; i < MODEL_IN; i++)
        in[i] = m->embedding[ctx[i / 16] * 16 + i % 16];
    matvec_kernel_flags(l[0].w, in, l[0].bias, l[0].mult, 256, 96, h1);
    matvec_kernel_flags(l[1].w, h1, l[1].bias, l[1].mult, 256, 256, h2);
    matvec_kernel_flags(l[2].w, h2, l[2].bias, 0, 27, 256, z);
}

/* One kind's batched code on the matvec (B input vectors) and the forward
 * pass (B contexts), each context checked against the C loop; the cycles
 * are per context, so that every row counts the same work. */
static int
bench_batch(const struct native_model *m, int kind, struct row *row)
{
    static char names[JIT_KINDS][48];
    char *name = names[kind];
    struct jit_layer sq = m->layer[1];
    struct engine e;
    int batch = jit_batch(kind), ctx[6 * 16];
    sq.mult = 0;
    int in_stride = jit_batch_in_stride(kind, &sq), out_stride = jit_batch_out_stride(kind, &sq);
    jit_layer_fn f = native_compile_batch(kind, &sq, NULL);
    uint8_t *in = aligned_alloc(64, (size_t)batch * in_stride), *out = aligned_alloc(64, (size_t)batch * out_stride);
    int32_t z[MODEL_V * 16];
    if (!f || !in || !out || engine_build_batch(m, kind, &e) != 0)
        return -1;
    snprintf(name, sizeof names[kind], "JIT, batch %d, %s", batch, BATCH_TEXT[kind]);
    *row = (struct row){name, 0, 0, kind, batch, batch};
    for (int c = 0; c < batch; c++)
        for (int i = 0; i < 256; i++)
            in[c * in_stride + i] = (uint8_t)((i * 37 + c * 11) % 128);
    for (int c = 0; c < batch * 6; c++)
        ctx[c] = (c / 6 + c % 6 + 1) % MODEL_V;
    TIME(row->matvec, 20, f(in, out));
    engine_forward_batch(m, &e, ctx, batch, z);
    TIME(row->forward, 10, (e.layer[0](e.in, e.h1), e.layer[1](e.h1, e.h2), e.layer[2](e.h2, e.z)));
    row->matvec /= batch;
    row->forward /= batch;
    for (int c = 0; c < batch; c++) {
        int16_t x[256];
        int32_t ref[MODEL_H], zref[MODEL_V];
        for (int i = 0; i < 256; i++)
            x[i] = in[c * in_stride + i];
        matvec_kernel_flags(sq.w, x, sq.bias, 0, 256, 256, ref);
        c_forward(m, &ctx[6 * c], zref);
        if (memcmp(out + (size_t)c * out_stride, ref, sizeof ref) != 0 || memcmp(&z[MODEL_V * c], zref, sizeof zref)) {
            fprintf(stderr, "%s batched computes another %s than the C loop for context %d\n", jit_kind_name[kind],
                    memcmp(out + (size_t)c * out_stride, ref, sizeof ref) ? "matvec" : "forward pass", c);
            return -1;
        }
    }
    return 0;
}

/* The kind's multiply-add on registers only: per call, iters x 4 rounds over
 * its accumulators, no memory. Returns the multiply-adds (MACs) per call. */
static double
emit_dot_loop(struct jit *j, int kind, int iters)
{
    int evex = kind == JIT_AVX512_VNNI, accs = evex ? 24 : kind == JIT_AVX_VNNI ? 12 : 8;
    int b = evex ? 30 : 12, w = evex ? 31 : 13, ones = 14;
    double per = kind == JIT_AVX512_VNNI ? 64 : kind == JIT_SSE2 ? 8 : 32;
    jit_mov_imm64(j, R10, (uint64_t)iters);
    size_t loop = j->len;
    for (int round = 0; round < 4; round++)
        for (int a = 0; a < accs; a++) {
            int t = 8 + (a & 3);
            if (kind >= JIT_AVX_VNNI) {
                jit_v_rr(j, evex ? &JIT_EVPDPBUSD : &JIT_VPDPBUSD, evex ? JIT_Z : JIT_Y, a, b, w);
            } else if (kind == JIT_AVX2) {
                jit_v_rr(j, &JIT_VPMADDUBSW, JIT_Y, t, b, w);
                jit_v_rr(j, &JIT_VPMADDWD, JIT_Y, t, t, ones);
                jit_v_rr(j, &JIT_VPADDD, JIT_Y, a, a, t);
            } else {
                jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0x6f), t, w); /* movdqa t, w */
                jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xf5), t, b); /* pmaddwd t, b */
                jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xfe), a, t); /* paddd a, t */
            }
        }
    jit_op_rr(j, 0, 1, JIT_OP(0xff), 1, R10); /* dec r10; jnz loop */
    jit_emit8(j, 0x0f);
    jit_emit8(j, 0x85);
    jit_emit32(j, (uint32_t)(int32_t)(loop - (j->len + 4)));
    return per * accs * 4 * iters;
}

/* Read `bytes` from `from` once, one vector add per load into 16
 * accumulators, as the kind's code reads its weights: in a loop of 16 loads,
 * or (`unrolled`, for ymm and zmm) as one straight run, RDX moved on every
 * 8 KiB so that EVEX disp8*64 reaches every load. */
static void
emit_stream(struct jit *j, int kind, const void *from, int bytes, int unrolled)
{
    int vl = kind == JIT_AVX512_VNNI ? JIT_Z : kind >= JIT_AVX2 ? JIT_Y : JIT_X, vb = 16 << vl;
    size_t loop = 0;
    jit_mov_imm64(j, RDX, (uint64_t)from);
    if (!unrolled) {
        jit_mov_imm64(j, R10, (uint64_t)(bytes / (16 * vb)));
        loop = j->len;
    }
    for (int off = 0; off < (unrolled ? bytes : 16 * vb); off += vb) {
        int u = off / vb % 16, disp = off % 8192;
        if (unrolled && off && disp == 0)
            jit_add_imm32(j, RDX, 8192);
        if (vl == JIT_Z)
            jit_v_mem(j, &JIT_EVPADDD, JIT_Z, u, u, RDX, JIT_NOREG, 1, disp);
        else if (vl == JIT_Y)
            jit_v_mem(j, &JIT_VPADDD, JIT_Y, u, u, RDX, JIT_NOREG, 1, disp);
        else
            jit_op_mem(j, 1, 0, JIT_OP(0x0f, 0xfe), u, RDX, JIT_NOREG, 1, disp); /* paddd */
    }
    if (unrolled)
        return;
    jit_add_imm32(j, RDX, 16 * vb);
    jit_op_rr(j, 0, 1, JIT_OP(0xff), 1, R10); /* dec r10; jnz loop */
    jit_emit8(j, 0x0f);
    jit_emit8(j, 0x85);
    jit_emit32(j, (uint32_t)(int32_t)(loop - (j->len + 4)));
}

static bench_fn
bench_code(struct jit *j, uint8_t *code, size_t at, int kind)
{
    if (kind >= JIT_AVX2)
        jit_vzeroupper(j);
    jit_emit8(j, 0xc3);
    if (j->overflow || native_seal(code, 1 << 16) != 0)
        return NULL;
    return (bench_fn)(uintptr_t)(code + at);
}

/* Reference cycles to stream the kind's packed weights: the fastest of a
 * loop and a straight run (for ymm and zmm), each timed CEILING_TRIES times. */
static double
bench_stream(int kind, const void *packed, int bytes)
{
    double best = 0;
    for (int unrolled = 0; unrolled <= (kind >= JIT_AVX2); unrolled++) {
        struct jit j;
        double cycles;
        uint8_t *code = native_code(1 << 16);
        if (!code)
            return 0;
        jit_init(&j, code, 1 << 16);
        emit_stream(&j, kind, packed, bytes, unrolled);
        bench_fn stream = bench_code(&j, code, 0, kind);
        if (!stream)
            return 0;
        for (int again = 0; again < CEILING_TRIES; again++) {
            TIME(cycles, 20, stream());
            best = best == 0 || cycles < best ? cycles : best;
        }
    }
    return best;
}

/* Multiply-adds per reference cycle of `kind` on registers only. */
static double
bench_compute(int kind)
{
    struct jit j;
    double cycles;
    uint8_t *code = native_code(1 << 16);
    if (!code)
        return 0;
    jit_init(&j, code, 1 << 16);
    double macs = emit_dot_loop(&j, kind, 1024);
    bench_fn dot = bench_code(&j, code, 0, kind);
    if (!dot)
        return 0;
    double best = 0;
    for (int again = 0; again < CEILING_TRIES; again++) {
        TIME(cycles, 1, dot());
        best = best == 0 || cycles < best ? cycles : best;
    }
    return macs / best;
}

/* The ceilings of this machine: the widest kind's multiply-adds in
 * registers and the rate of streaming its packed weights for the 256x256
 * matvec (the first ceiling line: one context, where the slower of the two
 * binds), then the compute ceiling of a batch next to the bandwidth one
 * (the second line), and the compute ceilings of the other kinds run.
 * Returns 0, or -1. */
static int
bench_roof(const struct native_model *m, int widest, const int *want, struct roof *roof)
{
    struct jit_layer sq = m->layer[1];
    void *packed;
    sq.mult = 0;
    *roof = (struct roof){0};
    roof->widest = widest;
    if (!native_compile(widest, &sq, &packed))
        return -1;
    int bytes = 256 * 256 * (widest <= JIT_SSE2 ? 2 : 1), batch = jit_batch(widest);
    double memory = bench_stream(widest, packed, bytes), peak = bench_compute(widest);
    if (memory <= 0 || peak <= 0)
        return -1;
    roof->bandwidth = bytes / memory;
    roof->compute[widest] = peak;
    double compute = MACS / peak, ceiling = compute > memory ? compute : memory;
    printf("ceiling (%s): multiply-adds in registers %.1f MACs/cycle -> %.0f cycles for 65,536; streaming its "
           "%d weight bytes from L1/L2 %.1f bytes/cycle -> %.0f cycles; ceiling %.0f cycles (%.4f cycles/MAC)\n",
           jit_kind_name[widest], peak, compute, bytes, bytes / memory, memory, ceiling, ceiling / MACS);
    if (batch) {
        double mem_b = memory / (MACS * batch), cpu = 1 / peak;
        int from = 1;
        while (memory / (MACS * from) > cpu)
            from++;
        printf("ceiling of a batch (%s, %d contexts): multiply-adds in registers %.4f cycles/MAC; streaming each "
               "weight byte once for the %d contexts %.4f cycles/MAC; the compute ceiling binds from %d contexts on: "
               "%.4f cycles/MAC\n",
               jit_kind_name[widest], batch, cpu, batch, mem_b, from, cpu >= mem_b ? cpu : mem_b);
    }
    int others = 0;
    for (int k = JIT_SSE2; k < widest; k++) {
        if (!want[k])
            continue;
        if ((roof->compute[k] = bench_compute(k)) <= 0)
            return -1;
        printf("%s%s %.1f",
               others++ ? ", " : "compute ceilings of the other paths, MACs/cycle in registers: ", jit_kind_name[k],
               roof->compute[k]);
    }
    if (others)
        printf("\n");
    return 0;
}

/* The ceiling that binds a row at its intensity, in MACs per cycle: its
 * kind's compute ceiling (the widest's for C and the scalar JIT), or the
 * bandwidth times its intensity; *what says which. */
static double
bench_binds(const struct roof *roof, const struct row *r, const char **what)
{
    double cpu =
        r->kind >= JIT_SSE2 && roof->compute[r->kind] > 0 ? roof->compute[r->kind] : roof->compute[roof->widest];
    double mem = roof->bandwidth * r->intensity;
    *what = cpu < mem ? "compute" : "memory";
    return cpu < mem ? cpu : mem;
}

/* The value of the first /proc/cpuinfo line that starts with `key`, or "?". */
static void
cpuinfo(const char *key, char *out, size_t n)
{
    char line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, n, "?");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0 && line[strcspn(line, ":")] == ':' &&
            strspn(line + strlen(key), " \t") == strcspn(line + strlen(key), ":")) {
            snprintf(out, n, "%s", line + strcspn(line, ":") + 2);
            out[strcspn(out, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
}

static void
bench_cpu_line(const struct simd_cpu *c)
{
    char name[128], family[16], model[16];
    cpuinfo("model name", name, sizeof name);
    cpuinfo("cpu family", family, sizeof family);
    cpuinfo("model", model, sizeof model);
    printf("CPU: %s (family %s, model %s); CPUID: AVX2 %s, AVX-VNNI %s, AVX-512 VNNI %s (F %s, BW %s)\n", name, family,
           model, YN(c->avx2), YN(c->avx_vnni), YN(c->avx512_vnni), YN(c->avx512f), YN(c->avx512bw));
    printf("rdtsc counts reference cycles (the TSC's fixed rate, not the core's clock); "
           "each figure is the median of %d timed runs\n",
           RUNS);
}

/* Which kinds to run: those named (each must be usable here), or all usable. */
static int
bench_kinds(const struct simd_cpu *c, int n, char **names, int *want)
{
    uint64_t allowed = native_xcr0(c);
    for (int k = 0; k < JIT_KINDS; k++)
        want[k] = n == 0 && simd_allows(c, k, allowed);
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < JIT_KINDS && strcmp(names[i], jit_kind_name[k]) != 0)
            k++;
        if (k == JIT_KINDS || !simd_allows(c, k, allowed)) {
            fprintf(stderr,
                    "no JIT kind `%s` on this machine (CPUID and XCR0 allow: `python3 labs/06-jit-model/native.py "
                    "paths`)\n",
                    names[i]);
            return -1;
        }
        want[k] = 1;
    }
    return 0;
}

static void
bench_report(const struct row *rows, int n, const struct roof *roof, const struct row *sse2, const struct row *avx2)
{
    const struct row *top = NULL, *batch = NULL;
    printf("cycles per context: per 256x256 matvec (65,536 multiply-adds) and per multiply-add, multiply-adds per "
           "weight byte, the ceiling that binds there and the share of it reached, per forward pass (97,024) and per "
           "multiply-add\n");
    printf("%-31s %8s %8s %6s %-8s %8s %9s %8s\n", "path", "matvec", "per MAC", "MAC/B", "bound", "%ceiling", "forward",
           "per MAC");
    for (int k = 0; k < n; k++) {
        const char *what;
        double binds = bench_binds(roof, &rows[k], &what);
        printf("%-31s %8.0f %8.4f %6.1f %-8s %7.1f%% %9.0f %8.4f\n", rows[k].name, rows[k].matvec,
               rows[k].matvec / MACS, rows[k].intensity, what, 100 * MACS / rows[k].matvec / binds, rows[k].forward,
               rows[k].forward / FORWARD_MACS);
        const struct row **best = rows[k].batch > 1 ? &batch : rows[k].kind >= 0 ? &top : NULL;
        if (best && (!*best || rows[k].matvec < (*best)->matvec))
            *best = &rows[k];
    }
    const char *what;
    double binds = bench_binds(roof, top, &what);
    printf("fastest JIT path on the matvec: %s, %.2fx clang -O3 -march=native, %.1fx kernel-flag C, %.0f%% of the "
           "ceiling that binds it (%s)",
           top->name + strlen("JIT, "), rows[1].matvec / top->matvec, rows[0].matvec / top->matvec,
           100 * MACS / top->matvec / binds, what);
    if (sse2 && avx2)
        printf("; AVX2 %.2fx SSE2", sse2->matvec / avx2->matvec);
    printf("\n");
    if (batch)
        printf("fastest batched path: %s, %.4f cycles/MAC, %.2fx the fastest one-context path, %.0f%% of the %s "
               "compute ceiling\n",
               batch->name + strlen("JIT, "), batch->matvec / MACS, top->matvec / batch->matvec,
               100 * MACS / batch->matvec / roof->compute[batch->kind], jit_kind_name[batch->kind]);
}

/* Time every way to run the matvec and the forward pass (all the kinds this
 * machine allows, or those named, one context at a time and batched), check
 * each against the C loop, and print them under the ceilings. Returns the
 * exit status. */
int
bench_main(const char *model_path, int nkinds, char **kinds)
{
    struct native_model m;
    struct simd_cpu c;
    struct roof roof;
    struct row rows[2 + 2 * JIT_KINDS];
    int want[JIT_KINDS], n = 2, x[256], at[JIT_KINDS] = {0};
    int16_t x16[256];
    int32_t ref[MODEL_H], zref[MODEL_V];
    simd_probe(&c);
    if (native_load(model_path, &m) != 0 || bench_kinds(&c, nkinds, kinds, want) != 0)
        return 1;
    for (int i = 0; i < 256; i++)
        x16[i] = (int16_t)(x[i] = (i * 37) % 128);
    bench_cpu_line(&c);
    if (bench_c(&m, x16, ref, zref, rows) != 0)
        return 1;
    for (int k = 0; k < JIT_KINDS; k++) {
        if (!want[k])
            continue;
        if (bench_kind(&m, k, x, ref, zref, &rows[n]) != 0)
            return 1;
        at[k] = n++;
    }
    for (int k = 0; k < JIT_KINDS; k++)
        if (want[k] && jit_batch(k) && bench_batch(&m, k, &rows[n++]) != 0)
            return 1;
    int widest = simd_best(&c, native_xcr0(&c));
    if (bench_roof(&m, widest, want, &roof) != 0)
        return 1;
    bench_report(rows, n, &roof, want[JIT_SSE2] ? &rows[at[JIT_SSE2]] : NULL,
                 want[JIT_AVX2] ? &rows[at[JIT_AVX2]] : NULL);
    return 0;
}
