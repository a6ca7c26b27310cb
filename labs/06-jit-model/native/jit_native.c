/* The JIT outside the kernel, on Linux: `encode` writes every instruction
 * form the emitter supports (bytes, and the text a disassembler should print
 * for them) for the encoder test; `bench MODEL` times a 256x256 int8
 * matrix-vector product and a whole forward pass for each way of running it.
 * Generated code lives in mmap pages sealed with mprotect (W^X, as in the kernel).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "jit.h"

typedef void (*matvec_fn)(const int8_t *, const int16_t *, const int32_t *, int64_t, int, int, void *);
void matvec_kernel_flags(const int8_t *, const int16_t *, const int32_t *, int64_t, int, int, void *);
void matvec_native(const int8_t *, const int16_t *, const int32_t *, int64_t, int, int, void *);

static const char *const R64[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"};
static const char *const R32[16] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
                                    "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"};
static const char *const R16[16] = {"ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
                                    "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"};

/* "[base + s*index + disp]" as llvm-objdump -M intel prints it. */
static void
mem_text(char *out, size_t n, int base, int index, int scale, int32_t disp)
{
    char *p = out;
    p += snprintf(p, n, "[");
    if (base != JIT_NOREG)
        p += snprintf(p, n - (size_t)(p - out), "%s", R64[base]);
    if (index != JIT_NOREG) {
        p += snprintf(p, n - (size_t)(p - out), "%s", base != JIT_NOREG ? " + " : "");
        if (scale > 1)
            p += snprintf(p, n - (size_t)(p - out), "%d*", scale);
        p += snprintf(p, n - (size_t)(p - out), "%s", R64[index]);
    }
    if (disp != 0 || (base == JIT_NOREG && index == JIT_NOREG))
        p += snprintf(p, n - (size_t)(p - out), (base == JIT_NOREG && index == JIT_NOREG) ? "%lld"
                      : disp < 0 ? " - %lld" : " + %lld", disp < 0 && (base != JIT_NOREG || index != JIT_NOREG)
                      ? -(long long)disp : (long long)disp);
    snprintf(p, n - (size_t)(p - out), "]");
}

static int
encode(const char *bin_path, const char *txt_path)
{
    static uint8_t buf[1 << 20];
    struct jit j;
    FILE *txt = fopen(txt_path, "w");
    if (!txt)
        return 1;
    jit_init(&j, buf, sizeof buf);
    static const int bases[] = {JIT_NOREG, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const int indexes[] = {JIT_NOREG, RAX, RCX, RBP, R12, R13, R15};
    static const int32_t disps[] = {0, 1, -1, 127, -128, 128, -129, 0x12345678};
    int n = 0;
    char m[96];
    for (unsigned b = 0; b < sizeof bases / sizeof *bases; b++)
        for (unsigned i = 0; i < sizeof indexes / sizeof *indexes; i++)
            for (int s = 1; s <= 8; s *= 2)
                for (unsigned d = 0; d < sizeof disps / sizeof *disps; d++) {
                    if (indexes[i] == JIT_NOREG && s > 1)
                        continue;
                    int reg = n++ % 16;
                    mem_text(m, sizeof m, bases[b], indexes[i], s, disps[d]);
                    jit_op_mem(&j, 0, 1, JIT_OP(0x8b), reg, bases[b], indexes[i], s, disps[d]);
                    fprintf(txt, "mov %s, qword ptr %s\n", R64[reg], m);
                    jit_op_mem(&j, 1, 0, JIT_OP(0x0f, 0x6f), reg, bases[b], indexes[i], s, disps[d]);
                    fprintf(txt, "movdqa xmm%d, xmmword ptr %s\n", reg, m);
                }
    /* every other form the layer compiler uses, with high and low registers */
    for (int r = 0; r < 16; r += 9) {
        int q = 15 - r;
        mem_text(m, sizeof m, q, JIT_NOREG, 1, 2 * r);
        jit_op_mem(&j, 1, 0, JIT_OP(0x0f, 0xf5), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "pmaddwd xmm%d, xmmword ptr %s\n", r, m);
        jit_op_mem(&j, 0, 0, JIT_OP(0x0f, 0xbf), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "movsx %s, word ptr %s\n", R32[r], m);
        jit_op_mem(&j, 0, 1, JIT_OP(0x63), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "movsxd %s, dword ptr %s\n", R64[r], m);
        jit_op_mem(&j, 1, 0, JIT_OP(0x89), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "mov word ptr %s, %s\n", m, R16[r]);
        jit_op_mem(&j, 0, 0, JIT_OP(0x89), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "mov dword ptr %s, %s\n", m, R32[r]);
        jit_op_rr(&j, 1, 0, JIT_OP(0x0f, 0xef), r, q);
        fprintf(txt, "pxor xmm%d, xmm%d\n", r, q);
        jit_op_rr(&j, 1, 0, JIT_OP(0x0f, 0xfe), r, q);
        fprintf(txt, "paddd xmm%d, xmm%d\n", r, q);
        jit_op_rr(&j, 1, 0, JIT_OP(0x0f, 0x70), r, q);
        jit_emit8(&j, 0x4e);
        fprintf(txt, "pshufd xmm%d, xmm%d, 78\n", r, q);
        jit_op_rr(&j, 1, 0, JIT_OP(0x0f, 0x7e), r, q);
        fprintf(txt, "movd %s, xmm%d\n", R32[q], r);
        jit_op_rr(&j, 0, 1, JIT_OP(0x63), r, q);
        fprintf(txt, "movsxd %s, %s\n", R64[r], R32[q]);
        jit_op_rr(&j, 0, 1, JIT_OP(0x0f, 0xaf), r, q);
        fprintf(txt, "imul %s, %s\n", R64[r], R64[q]);
        jit_op_rr(&j, 0, 0, JIT_OP(0x0f, 0xaf), r, q);
        fprintf(txt, "imul %s, %s\n", R32[r], R32[q]);
        jit_op_rr(&j, 0, 1, JIT_OP(0x01), r, q);
        fprintf(txt, "add %s, %s\n", R64[q], R64[r]);
        jit_op_rr(&j, 0, 0, JIT_OP(0x01), r, q);
        fprintf(txt, "add %s, %s\n", R32[q], R32[r]);
        jit_op_rr(&j, 0, 0, JIT_OP(0x89), r, q);
        fprintf(txt, "mov %s, %s\n", R32[q], R32[r]);
        jit_op_rr(&j, 0, 1, JIT_OP(0x31), r, q);
        fprintf(txt, "xor %s, %s\n", R64[q], R64[r]);
        jit_op_rr(&j, 0, 1, JIT_OP(0x85), r, q);
        fprintf(txt, "test %s, %s\n", R64[q], R64[r]);
        jit_op_rr(&j, 0, 1, JIT_OP(0x39), r, q);
        fprintf(txt, "cmp %s, %s\n", R64[q], R64[r]);
        jit_op_rr(&j, 0, 1, JIT_OP(0x0f, 0x4c), r, q);
        fprintf(txt, "cmovl %s, %s\n", R64[r], R64[q]);
        jit_op_rr(&j, 0, 1, JIT_OP(0x0f, 0x4f), r, q);
        fprintf(txt, "cmovg %s, %s\n", R64[r], R64[q]);
        jit_op_rr(&j, 0, 1, JIT_OP(0xc1), 7, q);
        jit_emit8(&j, 24);
        fprintf(txt, "sar %s, 24\n", R64[q]);
        jit_op_rr(&j, 0, 1, JIT_OP(0xff), 1, q);
        fprintf(txt, "dec %s\n", R64[q]);
        jit_op_rr(&j, 0, 1, JIT_OP(0x81), 0, q);
        jit_emit32(&j, 512);
        fprintf(txt, "add %s, 512\n", R64[q]);
        jit_rex(&j, 1, JIT_NOREG, JIT_NOREG, q);
        jit_emit8(&j, (uint8_t)(0xb8 + (q & 7)));
        jit_emit64(&j, 0x123456789abcdefull);
        fprintf(txt, "movabs %s, 81985529216486895\n", R64[q]);
    }
    fclose(txt);
    FILE *bin = fopen(bin_path, "wb");
    if (!bin || fwrite(buf, 1, j.len, bin) != j.len || j.overflow)
        return 1;
    fclose(bin);
    return 0;
}

static inline uint64_t
rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct bench_model {
    int8_t *w[3];
    int16_t *wide[3];
    int32_t *b[3];
    int64_t mult[3];
    int rows[3], cols[3];
};

static int
load_model(const char *path, struct bench_model *m)
{
    FILE *f = fopen(path, "rb");
    static uint8_t data[1 << 18];
    size_t n = f ? fread(data, 1, sizeof data, f) : 0;
    if (!f || n < 2048 || memcmp(data, "CHARMLP1", 8))
        return -1;
    fclose(f);
    int32_t m1, m2;
    memcpy(&m1, data + 32, 4);
    memcpy(&m2, data + 36, 4);
    size_t p = 64 + 1024;
    p += 27 * 16;                                    /* the embedding */
    int rows[3] = {256, 256, 27}, cols[3] = {96, 256, 256};
    int64_t mult[3] = {m1, m2, 0};
    for (int l = 0; l < 3; l++) {
        p = (p + 15) & ~(size_t)15;
        m->w[l] = (int8_t *)(data + p);
        p += (size_t)rows[l] * cols[l];
        p = (p + 15) & ~(size_t)15;
        m->b[l] = (int32_t *)(data + p);
        p += 4 * (size_t)rows[l];
        m->rows[l] = rows[l];
        m->cols[l] = cols[l];
        m->mult[l] = mult[l];
        m->wide[l] = aligned_alloc(64, 2 * (size_t)rows[l] * cols[l]);
        for (int i = 0; i < rows[l] * cols[l]; i++)
            m->wide[l][i] = m->w[l][i];
    }
    return 0;
}

/* Cycles of one call of fn (median of 101 timed runs of `reps` calls each). */
#define TIME(result, reps, call)                                         \
    do {                                                                 \
        uint64_t t_[101];                                                \
        for (int r_ = 0; r_ < 101; r_++) {                               \
            uint64_t s_ = rdtsc();                                       \
            for (int k_ = 0; k_ < (reps); k_++) { call; }                \
            t_[r_] = rdtsc() - s_;                                       \
        }                                                                \
        qsort(t_, 101, sizeof t_[0], cmp_u64);                           \
        (result) = (double)t_[50] / (reps);                              \
    } while (0)

/* Generated code from a broken encoder would crash the benchmark: check one
 * instruction first. */
static int
encoder_sane(void)
{
    uint8_t buf[16];
    struct jit j;
    jit_init(&j, buf, sizeof buf);
    jit_op_mem(&j, 0, 1, JIT_OP(0x8b), RAX, RDX, JIT_NOREG, 1, 16);
    return j.len == 4 && memcmp(buf, "\x48\x8b\x42\x10", 4) == 0;
}

static int
bench(const char *model_path)
{
    struct bench_model m;
    if (!encoder_sane()) {
        fprintf(stderr, "the encoder (jit_encode.c) does not encode mov rax, [rdx+16] as 48 8b 42 10: "
                "finish it first (python3 -m grader.native check --labs)\n");
        return 1;
    }
    if (load_model(model_path, &m) != 0) {
        fprintf(stderr, "cannot read the model %s\n", model_path);
        return 1;
    }
    size_t cap = 64 * 4096;
    uint8_t *code[2];
    jit_layer_fn layer[2][4];
    for (int k = 0; k < 2; k++) {
        code[k] = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        struct jit j;
        jit_init(&j, code[k], cap);
        size_t at[4];
        for (int l = 0; l < 3; l++) {
            struct jit_layer_spec s = {m.wide[l], m.b[l], m.rows[l], m.cols[l], m.mult[l]};
            at[l] = jit_compile_layer(&j, k ? JIT_SSE2 : JIT_SCALAR, &s);
        }
        struct jit_layer_spec sq = {m.wide[1], m.b[1], 256, 256, 0};       /* 256x256, int32 out */
        at[3] = jit_compile_layer(&j, k ? JIT_SSE2 : JIT_SCALAR, &sq);
        if (j.overflow || mprotect(code[k], cap, PROT_READ | PROT_EXEC) != 0)
            return 1;
        for (int l = 0; l < 4; l++)
            layer[k][l] = (jit_layer_fn)(uintptr_t)(code[k] + at[l]);
    }
    int16_t *x = aligned_alloc(64, 2 * 256), *h1 = aligned_alloc(64, 2 * 256), *h2 = aligned_alloc(64, 2 * 256);
    int32_t out[4][256], logits[27];
    for (int i = 0; i < 256; i++)
        x[i] = (int16_t)((i * 37) % 128);
    double c[4], f[4];
    matvec_fn cfn[2] = {matvec_kernel_flags, matvec_native};
    for (int k = 0; k < 2; k++) {
        TIME(c[k], 20, cfn[k](m.w[1], x, m.b[1], 0, 256, 256, out[k]));
        TIME(f[k], 10, (cfn[k](m.w[0], x, m.b[0], m.mult[0], 256, 96, h1),
                        cfn[k](m.w[1], h1, m.b[1], m.mult[1], 256, 256, h2),
                        cfn[k](m.w[2], h2, m.b[2], 0, 27, 256, logits)));
        TIME(c[2 + k], 20, layer[k][3](x, out[2 + k]));
        TIME(f[2 + k], 10, (layer[k][0](x, h1), layer[k][1](h1, h2), layer[k][2](h2, logits)));
    }
    for (int k = 1; k < 4; k++)
        if (memcmp(out[0], out[k], sizeof out[0]) != 0) {
            fprintf(stderr, "path %d computes another product than the C reference\n", k);
            return 1;
        }
    const char *names[4] = {"C, kernel flags (-O2 -mno-sse)", "C, clang -O3 -march=native", "JIT, scalar",
                            "JIT, SSE2 pmaddwd"};
    double macs = 256.0 * 256, fmacs = 256.0 * 96 + 256.0 * 256 + 27.0 * 256;
    printf("%-32s %14s %12s %16s\n", "path", "cycles/matvec", "cycles/MAC", "cycles/forward");
    for (int k = 0; k < 4; k++)
        printf("%-32s %14.0f %12.4f %16.0f\n", names[k], c[k], c[k] / macs, f[k]);
    printf("SSE2 JIT speed-up: %.1fx over kernel-flag C, %.2fx over clang -O3 -march=native "
           "(matvec); %.4f cycles/MAC against the ~0.035 of AVX-512 VNNI\n", c[0] / c[3], c[1] / c[3], c[3] / macs);
    (void)fmacs;
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "encode") == 0)
        return encode(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "bench") == 0)
        return bench(argv[2]);
    fprintf(stderr, "usage: %s encode OUT.bin OUT.txt | bench MODEL\n", argv[0]);
    return 2;
}
