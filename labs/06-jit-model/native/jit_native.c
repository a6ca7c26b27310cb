/* The JIT outside the kernel, on Linux. Generated code lives in mmap pages
 * sealed with mprotect (W^X, as in the kernel); the kind is chosen by CPUID
 * and XCR0 as the kernel chooses it.
 *   encode OUT.bin OUT.txt   every instruction form the emitter supports, and
 *                            the text llvm-objdump should print for it (the encoder test)
 *   paths                    each JIT kind: usable here or not, and why
 *   logits MODEL KIND [batch]  for each context on stdin (6 numbers a line), the 27 logits;
 *                            KIND may be `best`: the widest CPUID allows, as in the kernel;
 *                            with `batch`, the kind's batched code, jit_batch(kind) contexts a call
 *   layer KIND [batch]       one layer from stdin (see layer_main), its outputs; with `batch`,
 *                            every input vector that follows, run by the batched code
 *   dump MODEL KIND N OUT    the code of layer N (1-3) for KIND, as raw bytes, for llvm-objdump
 *   bench MODEL [KIND...]    cycles per multiply-add of every way to run a
 *                            256x256 matvec and the forward pass, against the
 *                            ceiling this machine's own figures give (bench.c)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "native.h"

const char *const R64[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                             "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
static const char *const R32[16] = {"eax", "ecx", "edx",  "ebx",  "esp",  "ebp",  "esi",  "edi",
                                    "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"};
static const char *const R16[16] = {"ax",  "cx",  "dx",   "bx",   "sp",   "bp",   "si",   "di",
                                    "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"};

/* "[base + s*index + disp]" as llvm-objdump -M intel prints it. */
void
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
        p += snprintf(p, n - (size_t)(p - out),
                      (base == JIT_NOREG && index == JIT_NOREG) ? "%lld"
                      : disp < 0                                ? " - %lld"
                                                                : " + %lld",
                      disp < 0 && (base != JIT_NOREG || index != JIT_NOREG) ? -(long long)disp : (long long)disp);
    snprintf(p, n - (size_t)(p - out), "]");
}

/* Every memory operand the encoder can form, as a mov and as a movdqa. */
static void
encode_operands(struct jit *j, FILE *txt)
{
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
                    jit_op_mem(j, 0, 1, JIT_OP(0x8b), reg, bases[b], indexes[i], s, disps[d]);
                    fprintf(txt, "mov %s, qword ptr %s\n", R64[reg], m);
                    jit_op_mem(j, 1, 0, JIT_OP(0x0f, 0x6f), reg, bases[b], indexes[i], s, disps[d]);
                    fprintf(txt, "movdqa xmm%d, xmmword ptr %s\n", reg, m);
                }
}

/* Every other legacy form the layer compiler uses, with high and low registers. */
static void
encode_legacy(struct jit *j, FILE *txt)
{
    char m[96];
    for (int r = 0; r < 16; r += 9) {
        int q = 15 - r;
        mem_text(m, sizeof m, q, JIT_NOREG, 1, 2 * r);
        jit_op_mem(j, 1, 0, JIT_OP(0x0f, 0xf5), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "pmaddwd xmm%d, xmmword ptr %s\n", r, m);
        jit_op_mem(j, 0, 0, JIT_OP(0x0f, 0xbf), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "movsx %s, word ptr %s\n", R32[r], m);
        jit_op_mem(j, 0, 1, JIT_OP(0x63), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "movsxd %s, dword ptr %s\n", R64[r], m);
        jit_op_mem(j, 1, 0, JIT_OP(0x89), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "mov word ptr %s, %s\n", m, R16[r]);
        jit_op_mem(j, 0, 0, JIT_OP(0x89), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "mov dword ptr %s, %s\n", m, R32[r]);
        jit_op_mem(j, 1, 0, JIT_OP(0x0f, 0xfe), r, q, JIT_NOREG, 1, 2 * r);
        fprintf(txt, "paddd xmm%d, xmmword ptr %s\n", r, m);
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xef), r, q);
        fprintf(txt, "pxor xmm%d, xmm%d\n", r, q);
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xfe), r, q);
        fprintf(txt, "paddd xmm%d, xmm%d\n", r, q);
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xf5), r, q);
        fprintf(txt, "pmaddwd xmm%d, xmm%d\n", r, q);
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0x70), r, q);
        jit_emit8(j, 0x4e);
        fprintf(txt, "pshufd xmm%d, xmm%d, 78\n", r, q);
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0x7e), r, q);
        fprintf(txt, "movd %s, xmm%d\n", R32[q], r);
        jit_op_rr(j, 0, 1, JIT_OP(0x63), r, q);
        fprintf(txt, "movsxd %s, %s\n", R64[r], R32[q]);
        jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0xaf), r, q);
        fprintf(txt, "imul %s, %s\n", R64[r], R64[q]);
        jit_op_rr(j, 0, 0, JIT_OP(0x0f, 0xaf), r, q);
        fprintf(txt, "imul %s, %s\n", R32[r], R32[q]);
        jit_op_rr(j, 0, 1, JIT_OP(0x01), r, q);
        fprintf(txt, "add %s, %s\n", R64[q], R64[r]);
        jit_op_rr(j, 0, 0, JIT_OP(0x01), r, q);
        fprintf(txt, "add %s, %s\n", R32[q], R32[r]);
        jit_op_rr(j, 0, 0, JIT_OP(0x89), r, q);
        fprintf(txt, "mov %s, %s\n", R32[q], R32[r]);
        jit_op_rr(j, 0, 1, JIT_OP(0x31), r, q);
        fprintf(txt, "xor %s, %s\n", R64[q], R64[r]);
        jit_op_rr(j, 0, 1, JIT_OP(0x85), r, q);
        fprintf(txt, "test %s, %s\n", R64[q], R64[r]);
        jit_op_rr(j, 0, 1, JIT_OP(0x39), r, q);
        fprintf(txt, "cmp %s, %s\n", R64[q], R64[r]);
        jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0x4c), r, q);
        fprintf(txt, "cmovl %s, %s\n", R64[r], R64[q]);
        jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0x4f), r, q);
        fprintf(txt, "cmovg %s, %s\n", R64[r], R64[q]);
        jit_op_rr(j, 0, 1, JIT_OP(0xc1), 7, q);
        jit_emit8(j, 24);
        fprintf(txt, "sar %s, 24\n", R64[q]);
        jit_op_rr(j, 0, 1, JIT_OP(0xff), 1, q);
        fprintf(txt, "dec %s\n", R64[q]);
        jit_add_imm32(j, q, 512);
        fprintf(txt, "add %s, 512\n", R64[q]);
        jit_mov_imm64(j, q, 0x123456789abcdefull);
        fprintf(txt, "movabs %s, 81985529216486895\n", R64[q]);
    }
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
    encode_operands(&j, txt);
    encode_legacy(&j, txt);
    encode_vector(&j, txt);
    fclose(txt);
    FILE *bin = fopen(bin_path, "wb");
    if (!bin || fwrite(buf, 1, j.len, bin) != j.len || j.overflow)
        return 1;
    fclose(bin);
    return 0;
}

/* Generated code from a broken encoder would crash: check one instruction first. */
static int
encoder_sane(void)
{
    uint8_t buf[16];
    struct jit j;
    jit_init(&j, buf, sizeof buf);
    jit_op_mem(&j, 0, 1, JIT_OP(0x8b), RAX, RDX, JIT_NOREG, 1, 16);
    if (j.len == 4 && memcmp(buf, "\x48\x8b\x42\x10", 4) == 0)
        return 1;
    fprintf(stderr, "the encoder (jit_encode.c) does not encode mov rax, [rdx+16] as 48 8b 42 10: "
                    "finish it first (make jit-check)\n");
    return 0;
}

/* The kind called `name`, or for "best" the widest CPUID and XCR0 allow
 * here, as the kernel chooses; -1 for an unknown name. */
static int
kind_named(const char *name)
{
    struct simd_cpu c;
    if (strcmp(name, "best") == 0) {
        simd_probe(&c);
        return simd_best(&c, native_xcr0(&c));
    }
    for (int k = 0; k < JIT_KINDS; k++)
        if (strcmp(name, jit_kind_name[k]) == 0)
            return k;
    fprintf(stderr, "no JIT kind `%s`\n", name);
    return -1;
}

/* Each kind: usable or not here, and why not. */
static int
paths_main(void)
{
    struct simd_cpu c;
    simd_probe(&c);
    uint64_t allowed = native_xcr0(&c);
    printf("CPUID: SSE2 %s, XSAVE %s, OSXSAVE %s, AVX %s, AVX2 %s, AVX-VNNI %s, AVX512F %s, AVX512BW %s, "
           "AVX512_VNNI %s; XCR0 0x%llx\n",
           YN(c.sse2), YN(c.xsave), YN(c.osxsave), YN(c.avx), YN(c.avx2), YN(c.avx_vnni), YN(c.avx512f), YN(c.avx512bw),
           YN(c.avx512_vnni), (unsigned long long)allowed);
    for (int k = 0; k < JIT_KINDS; k++)
        printf("%s %s\n", jit_kind_name[k], simd_allows(&c, k, allowed) ? "yes" : "no");
    printf("best %s\n", jit_kind_name[simd_best(&c, allowed)]);
    for (int k = 0; k < JIT_KINDS; k++)
        if (jit_batch(k))
            printf("batch %s %d\n", jit_kind_name[k], jit_batch(k));
    return 0;
}

/* The logits of every context read from stdin, one line of 27 numbers each:
 * one context a call, or (batch) jit_batch(kind) contexts a call, the last
 * call with the contexts that remain. */
static int
logits_main(const char *model_path, const char *kind_name, int batch)
{
    struct native_model m;
    struct engine e;
    int kind = kind_named(kind_name), ctx[6 * 16], n = 0, more = 1;
    if (kind < 0 || !encoder_sane() || native_load(model_path, &m) != 0 ||
        (batch ? engine_build_batch(&m, kind, &e) : engine_build(&m, kind, &e)) != 0)
        return 1;
    while (more) {
        int *c = &ctx[6 * n];
        more = scanf("%d %d %d %d %d %d", &c[0], &c[1], &c[2], &c[3], &c[4], &c[5]) == 6;
        n += more;
        if (n == 0 || (more && n < e.batch))
            continue;
        int32_t z[27 * 16];
        if (batch)
            engine_forward_batch(&m, &e, ctx, n, z);
        else
            engine_forward(&m, &e, ctx, z);
        for (int i = 0; i < n * 27; i++)
            printf(i % 27 == 26 ? " %d\n" : i % 27 ? " %d" : "%d", z[i]);
        n = 0;
    }
    return 0;
}

/* One layer from stdin: `rows cols mult signed_in`, then rows*cols weights,
 * rows biases and cols inputs; prints the outputs (int32, or requantized).
 * With `batch`, every further vector of cols inputs too, all run through
 * the batched code (a full batch a call), one line of outputs each. */
static int
layer_main(const char *kind_name, int batch)
{
    int kind = kind_named(kind_name), rows, cols, signed_in;
    long long mult;
    if (kind < 0 || !encoder_sane() || scanf("%d %d %lld %d", &rows, &cols, &mult, &signed_in) != 4)
        return 1;
    int8_t *w = malloc((size_t)rows * cols);
    int32_t *b = malloc(4 * (size_t)rows);
    int *x = malloc(sizeof(int) * (size_t)cols * 64);
    for (int i = 0; i < rows * cols; i++) {
        int v;
        if (scanf("%d", &v) != 1)
            return 1;
        w[i] = (int8_t)v;
    }
    for (int i = 0; i < rows; i++)
        if (scanf("%d", &b[i]) != 1)
            return 1;
    int n = 0;
    while (n < 64 && scanf("%d", &x[n * cols]) == 1) {
        for (int i = 1; i < cols; i++)
            if (scanf("%d", &x[n * cols + i]) != 1)
                return 1;
        n++;
    }
    struct jit_layer l = {w, b, rows, cols, mult, signed_in};
    int32_t *out = batch ? native_layer_batch(kind, &l, x, n) : native_layer(kind, &l, x);
    if (!out || n == 0)
        return 1;
    for (int v = 0; v < (batch ? n : 1); v++) {
        for (int i = 0; i < rows; i++)
            printf(i ? " %d" : "%d", out[v * rows + i]);
        printf("\n");
    }
    return 0;
}

/* Write the code of one layer (compiled at the packed copy's real address). */
static int
dump_main(const char *model_path, const char *kind_name, int layer, const char *out_path)
{
    static uint8_t buf[1 << 16];
    struct native_model m;
    struct jit j;
    int kind = kind_named(kind_name);
    if (kind < 0 || layer < 1 || layer > 3 || !encoder_sane() || native_load(model_path, &m) != 0)
        return 1;
    const struct jit_layer *l = &m.layer[layer - 1];
    void *packed = aligned_alloc(64, (jit_pack_size(kind, l) + 63) & ~(size_t)63);
    FILE *out = fopen(out_path, "wb");
    if (!packed || !out || jit_pack(kind, l, packed) != 0)
        return 1;
    jit_init(&j, buf, sizeof buf);
    jit_compile_layer(&j, kind, l, packed);
    printf("%s layer %d: %zu bytes of code, %zu bytes of packed weights at %p\n", kind_name, layer, j.len,
           jit_pack_size(kind, l), packed);
    return j.overflow || fwrite(buf, 1, j.len, out) != j.len || fclose(out) != 0;
}

int
main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "encode") == 0)
        return encode(argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "paths") == 0)
        return paths_main();
    int batch = argc >= 4 && strcmp(argv[argc - 1], "batch") == 0;
    if (argc - batch == 4 && strcmp(argv[1], "logits") == 0)
        return logits_main(argv[2], argv[3], batch);
    if (argc - batch == 3 && strcmp(argv[1], "layer") == 0)
        return layer_main(argv[2], batch);
    if (argc == 6 && strcmp(argv[1], "dump") == 0)
        return dump_main(argv[2], argv[3], atoi(argv[4]), argv[5]);
    if (argc >= 3 && strcmp(argv[1], "bench") == 0)
        return encoder_sane() ? bench_main(argv[2], argc - 3, argv + 3) : 1;
    fprintf(stderr,
            "usage: %s encode OUT.bin OUT.txt | paths | logits MODEL KIND [batch] | layer KIND [batch] | "
            "dump MODEL KIND LAYER OUT | bench MODEL [KIND...]\n",
            argv[0]);
    return 2;
}
