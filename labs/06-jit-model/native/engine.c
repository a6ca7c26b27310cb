/* The model and its JIT engines in Linux user space: weights packed for a
 * kind, code written into mmap pages and sealed r-x with mprotect, inputs
 * and activations in the kind's formats (jit_in_bytes, jit_out_bytes).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "native.h"

#define CODE_BYTES (64 * 4096)

/* The XCR0 bits Linux has enabled: what user-space code may touch. */
uint64_t
native_xcr0(const struct simd_cpu *c)
{
    return c->osxsave ? xgetbv(XCR0) : 0;
}

/* The model file's arrays (format: labs/06-jit-model/model_ref.py). */
int
native_load(const char *path, struct native_model *m)
{
    static uint8_t data[1 << 18];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(data, 1, sizeof data, f) : 0;
    if (!f || n < 2048 || memcmp(data, "CHARMLP1", 8)) {
        fprintf(stderr, "cannot read the model %s\n", path);
        return -1;
    }
    fclose(f);
    int32_t mult[3] = {0, 0, 0};
    memcpy(&mult[0], data + 32, 4);
    memcpy(&mult[1], data + 36, 4);
    size_t p = 64 + 1024;
    m->embedding = (const int8_t *)(data + p);
    p += MODEL_V * 16;
    int rows[3] = {MODEL_H, MODEL_H, MODEL_V}, cols[3] = {MODEL_IN, MODEL_H, MODEL_H};
    for (int l = 0; l < 3; l++) {
        p = (p + 15) & ~(size_t)15;
        const int8_t *w = (const int8_t *)(data + p);
        p += (size_t)rows[l] * cols[l];
        p = (p + 15) & ~(size_t)15;
        m->layer[l] = (struct jit_layer){w, (const int32_t *)(data + p), rows[l], cols[l], mult[l], l == 0};
        p += 4 * (size_t)rows[l];
    }
    return 0;
}

/* Fresh pages for generated code: read-write, not executable. */
void *
native_code(size_t cap)
{
    void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Seal them read-only and executable (W^X), as jit_seal does in the kernel. */
int
native_seal(void *code, size_t cap)
{
    return mprotect(code, cap, PROT_READ | PROT_EXEC);
}

/* Pack l for kind and compile it alone into sealed pages, one context at a
 * time or (batch) its batched code; NULL if the kind cannot run it.
 * *packed receives the packed copy (to time its streaming). */
static jit_layer_fn
compile(int kind, const struct jit_layer *l, void **packed, int batch)
{
    size_t size = ((batch ? jit_batch_pack_size(kind, l) : jit_pack_size(kind, l)) + 63) & ~(size_t)63;
    void *p = size ? aligned_alloc(64, size) : NULL;
    uint8_t *code = native_code(CODE_BYTES);
    struct jit j;
    if (!p || !code || (batch ? jit_batch_pack(kind, l, p) : jit_pack(kind, l, p)) != 0)
        return NULL;
    jit_init(&j, code, CODE_BYTES);
    size_t at = batch ? jit_compile_batch(&j, kind, l, p) : jit_compile_layer(&j, kind, l, p);
    if (j.overflow || native_seal(code, CODE_BYTES) != 0)
        return NULL;
    if (packed)
        *packed = p;
    return (jit_layer_fn)(uintptr_t)(code + at);
}

jit_layer_fn
native_compile(int kind, const struct jit_layer *l, void **packed)
{
    return compile(kind, l, packed, 0);
}

/* The batched code of l (jit_batch(kind) contexts a call), or NULL. */
jit_layer_fn
native_compile_batch(int kind, const struct jit_layer *l, void **packed)
{
    return compile(kind, l, packed, 1);
}

/* A buffer of n inputs in the kind's format (int16, int8 or uint8). */
void *
native_input(int kind, int signed_in, const int *x, int n)
{
    int size = jit_in_bytes(kind, signed_in);
    uint8_t *in = aligned_alloc(64, ((size_t)n * size + 63) & ~(size_t)63);
    for (int i = 0; in && i < n; i++) {
        if (size == 2)
            ((int16_t *)in)[i] = (int16_t)x[i];
        else
            in[i] = (uint8_t)x[i];
    }
    return in;
}

/* Run one layer compiled for kind on inputs x; the outputs widened to int32
 * (a static buffer), or NULL if the kind cannot run it. */
int32_t *
native_layer(int kind, const struct jit_layer *l, const int *x)
{
    static int32_t out[1 << 16];
    int padded = jit_out_rows(kind, l->rows);
    jit_layer_fn f = native_compile(kind, l, NULL);
    void *in = native_input(kind, l->signed_in, x, l->cols);
    uint8_t *raw = aligned_alloc(64, 4 * (size_t)padded + 64);
    if (!f || !in || !raw || padded > (int)(sizeof out / sizeof *out)) {
        fprintf(stderr, "%s cannot run this layer exactly\n", jit_kind_name[kind]);
        return NULL;
    }
    f(in, raw);
    int size = l->mult ? jit_out_bytes(kind) : 4;
    for (int i = 0; i < l->rows; i++)
        out[i] = size == 4 ? ((int32_t *)raw)[i] : size == 2 ? ((int16_t *)raw)[i] : raw[i];
    return out;
}

/* Run one layer's batched code for kind on n input vectors x (n * cols,
 * one full batch a call); the outputs widened to int32, n * rows of them in
 * a static buffer, or NULL if the kind cannot run it batched. */
int32_t *
native_layer_batch(int kind, const struct jit_layer *l, const int *x, int n)
{
    static int32_t out[1 << 16];
    int batch = jit_batch(kind), in_stride = jit_batch_in_stride(kind, l), out_stride = jit_batch_out_stride(kind, l);
    int isize = jit_in_bytes(kind, l->signed_in), osize = l->mult ? jit_out_bytes(kind) : 4;
    jit_layer_fn f = batch ? native_compile_batch(kind, l, NULL) : NULL;
    uint8_t *in = aligned_alloc(64, (size_t)(batch ? batch : 1) * in_stride);
    uint8_t *raw = aligned_alloc(64, (size_t)(batch ? batch : 1) * out_stride);
    if (!f || !in || !raw || (size_t)n * l->rows > sizeof out / sizeof *out) {
        fprintf(stderr, "%s cannot run this layer exactly in batches\n", jit_kind_name[kind]);
        return NULL;
    }
    for (int v0 = 0; v0 < n; v0 += batch) {
        for (int c = 0; c < batch; c++)
            for (int i = 0; i < l->cols; i++) {
                int v = v0 + c < n ? x[(v0 + c) * l->cols + i] : 0;
                if (isize == 2)
                    ((int16_t *)(in + (size_t)c * in_stride))[i] = (int16_t)v;
                else
                    in[(size_t)c * in_stride + i] = (uint8_t)v;
            }
        f(in, raw);
        for (int c = 0; c < batch && v0 + c < n; c++)
            for (int i = 0; i < l->rows; i++) {
                uint8_t *o = raw + (size_t)c * out_stride;
                out[(v0 + c) * l->rows + i] = osize == 4 ? ((int32_t *)o)[i] : o[i];
            }
    }
    return out;
}

/* Compile the three layers of m for kind. Returns 0, or -1. */
int
engine_build(const struct native_model *m, int kind, struct engine *e)
{
    e->kind = kind;
    e->batch = 1;
    for (int l = 0; l < 3; l++)
        if (!(e->layer[l] = native_compile(kind, &m->layer[l], NULL))) {
            fprintf(stderr, "%s cannot compile layer %d\n", jit_kind_name[kind], l + 1);
            return -1;
        }
    e->in = aligned_alloc(64, 2 * MODEL_IN);
    e->h1 = aligned_alloc(64, 2 * MODEL_H);
    e->h2 = aligned_alloc(64, 2 * MODEL_H);
    e->z = aligned_alloc(64, 4 * 64);
    return e->in && e->h1 && e->h2 && e->z ? 0 : -1;
}

/* The logits of one context (6 character indexes, oldest first). */
void
engine_forward(const struct native_model *m, const struct engine *e, const int *ctx, int32_t *z)
{
    int wide = jit_in_bytes(e->kind, 1) == 2;
    for (int p = 0; p < 6; p++)
        for (int d = 0; d < 16; d++) {
            int8_t v = m->embedding[ctx[p] * 16 + d];
            if (wide)
                ((int16_t *)e->in)[p * 16 + d] = v;
            else
                ((int8_t *)e->in)[p * 16 + d] = v;
        }
    e->layer[0](e->in, e->h1);
    e->layer[1](e->h1, e->h2);
    e->layer[2](e->h2, e->z);
    memcpy(z, e->z, 4 * MODEL_V);
}

/* Compile the batched code of the three layers of m for kind, and room for
 * the activations of jit_batch(kind) contexts. Returns 0, or -1. */
int
engine_build_batch(const struct native_model *m, int kind, struct engine *e)
{
    e->kind = kind;
    e->batch = jit_batch(kind);
    if (e->batch == 0) {
        fprintf(stderr, "%s has no batched form\n", jit_kind_name[kind]);
        return -1;
    }
    for (int l = 0; l < 3; l++)
        if (!(e->layer[l] = native_compile_batch(kind, &m->layer[l], NULL))) {
            fprintf(stderr, "%s cannot compile layer %d batched\n", jit_kind_name[kind], l + 1);
            return -1;
        }
    e->in = aligned_alloc(64, (size_t)e->batch * jit_batch_in_stride(kind, &m->layer[0]));
    e->h1 = aligned_alloc(64, (size_t)e->batch * jit_batch_in_stride(kind, &m->layer[1]));
    e->h2 = aligned_alloc(64, (size_t)e->batch * jit_batch_in_stride(kind, &m->layer[2]));
    e->z = aligned_alloc(64, (size_t)e->batch * jit_batch_out_stride(kind, &m->layer[2]));
    if (e->in)
        memset(e->in, 0, (size_t)e->batch * jit_batch_in_stride(kind, &m->layer[0]));
    return e->in && e->h1 && e->h2 && e->z ? 0 : -1;
}

/* The logits of n contexts (n <= e->batch; 6 character indexes each, oldest
 * first) in one batched call; the slots past n keep older inputs. */
void
engine_forward_batch(const struct native_model *m, const struct engine *e, const int *ctx, int n, int32_t *z)
{
    int wide = jit_in_bytes(e->kind, 1) == 2, in = jit_batch_in_stride(e->kind, &m->layer[0]);
    int out = jit_batch_out_stride(e->kind, &m->layer[2]);
    for (int c = 0; c < n; c++)
        for (int p = 0; p < 6; p++)
            for (int d = 0; d < 16; d++) {
                int8_t v = m->embedding[ctx[6 * c + p] * 16 + d];
                uint8_t *row = (uint8_t *)e->in + (size_t)c * in;
                if (wide)
                    ((int16_t *)row)[p * 16 + d] = v;
                else
                    ((int8_t *)row)[p * 16 + d] = v;
            }
    e->layer[0](e->in, e->h1);
    e->layer[1](e->h1, e->h2);
    e->layer[2](e->h2, e->z);
    for (int c = 0; c < n; c++)
        memcpy(z + MODEL_V * c, (uint8_t *)e->z + (size_t)c * out, 4 * MODEL_V);
}
