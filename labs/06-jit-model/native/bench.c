/* The native benchmark: every way to run the model's 256x256 matvec and its
 * forward pass, timed with rdtsc (medians), checked against the C loop, and
 * compared with a ceiling computed from this machine's own figures: the
 * widest kind's multiply-add in registers, and the streaming of its packed
 * weights from L1/L2, both measured by code the JIT emits.
 */
#include <stdlib.h>
#include <string.h>
#include "native.h"

#define RUNS         101
#define MACS         (256.0 * 256)                           /* the matvec's multiply-adds */
#define FORWARD_MACS (96.0 * 256 + 256.0 * 256 + 256.0 * 27) /* the forward pass's: 97,024 */

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

struct row {
    const char *name;
    double matvec, forward;
};

static const char *const KIND_TEXT[JIT_KINDS] = {"JIT, scalar", "JIT, SSE2 pmaddwd", "JIT, AVX2 vpmaddwd/vpmaddubsw",
                                                 "JIT, AVX-VNNI vpdpbusd ymm", "JIT, AVX-512 VNNI vpdpbusd zmm"};

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
        rows[k].name = names[k];
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
    row->name = KIND_TEXT[kind];
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

/* Reference cycles to stream the kind's packed weights: the faster of a
 * loop and a straight run (for ymm and zmm). */
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
        TIME(cycles, 20, stream());
        best = best == 0 || cycles < best ? cycles : best;
    }
    return best;
}

/* The ceiling for the 256x256 matvec with `kind`, in reference cycles: the
 * larger of its multiply-adds at the measured register throughput and its
 * packed weights at the measured streaming rate. */
static double
bench_ceiling(const struct native_model *m, int kind)
{
    struct jit j;
    struct jit_layer sq = m->layer[1];
    void *packed;
    uint8_t *code = native_code(1 << 16);
    sq.mult = 0;
    if (!code || !native_compile(kind, &sq, &packed))
        return 0;
    int bytes = 256 * 256 * (kind <= JIT_SSE2 ? 2 : 1);
    jit_init(&j, code, 1 << 16);
    double macs = emit_dot_loop(&j, kind, 256), dot_cycles;
    bench_fn dot = bench_code(&j, code, 0, kind);
    double memory = bench_stream(kind, packed, bytes);
    if (!dot || memory <= 0)
        return 0;
    TIME(dot_cycles, 1, dot());
    double compute = MACS / (macs / dot_cycles), ceiling = compute > memory ? compute : memory;
    printf("ceiling (%s): multiply-adds in registers %.1f MACs/cycle -> %.0f cycles for 65,536; streaming its "
           "%d weight bytes from L1/L2 %.1f bytes/cycle -> %.0f cycles; ceiling %.0f cycles (%.4f cycles/MAC)\n",
           jit_kind_name[kind], macs / dot_cycles, compute, bytes, bytes / memory, memory, ceiling, ceiling / MACS);
    return ceiling;
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
bench_report(const struct row *rows, int n, double ceiling, int best, const struct row *sse2, const struct row *avx2)
{
    printf("cycles: per 256x256 matvec (65,536 multiply-adds) and per multiply-add, the ceiling as a share of "
           "the matvec's, per forward pass (97,024) and per multiply-add\n");
    printf("%-31s %8s %8s %9s %9s %8s\n", "path", "matvec", "per MAC", "%ceiling", "forward", "per MAC");
    for (int k = 0; k < n; k++)
        printf("%-31s %8.0f %8.4f %8.1f%% %9.0f %8.4f\n", rows[k].name, rows[k].matvec, rows[k].matvec / MACS,
               100 * ceiling / rows[k].matvec, rows[k].forward, rows[k].forward / FORWARD_MACS);
    const struct row *top = &rows[best];
    printf("fastest JIT path on the matvec: %s, %.2fx clang -O3 -march=native, %.1fx kernel-flag C, %.0f%% of the "
           "ceiling",
           top->name + strlen("JIT, "), rows[1].matvec / top->matvec, rows[0].matvec / top->matvec,
           100 * ceiling / top->matvec);
    if (sse2 && avx2)
        printf("; AVX2 %.2fx SSE2", sse2->matvec / avx2->matvec);
    printf("\n");
}

/* Time every way to run the matvec and the forward pass (all the kinds this
 * machine allows, or those named), check each against the C loop, and print
 * them against the ceiling. Returns the exit status. */
int
bench_main(const char *model_path, int nkinds, char **kinds)
{
    struct native_model m;
    struct simd_cpu c;
    struct row rows[2 + JIT_KINDS];
    int want[JIT_KINDS], n = 2, best = 0, x[256], at[JIT_KINDS] = {0};
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
        if (best < 2 || rows[n].matvec < rows[best].matvec)
            best = n;
        at[k] = n++;
    }
    double ceiling = bench_ceiling(&m, simd_best(&c, native_xcr0(&c)));
    if (ceiling <= 0)
        return 1;
    bench_report(rows, n, ceiling, best < 2 ? 1 : best, want[JIT_SSE2] ? &rows[at[JIT_SSE2]] : NULL,
                 want[JIT_AVX2] ? &rows[at[JIT_AVX2]] : NULL);
    return 0;
}
