/* The native harness's parts (Linux user space): the CLI and the legacy
 * encoder forms (jit_native.c), the vector forms (encode_vector.c), the
 * model and its engines (engine.c), and the benchmark (bench.c).
 */
#ifndef NATIVE_H
#define NATIVE_H
#include <stdint.h>
#include <stdio.h>
#include "jit.h"
#include "simd.h"

#define YN(x)    ((x) ? "yes" : "no")
#define MODEL_H  256 /* hidden width: the benchmark's matvec is 256 x 256 */
#define MODEL_V  27
#define MODEL_IN 96

extern const char *const R64[16];
void mem_text(char *out, size_t n, int base, int index, int scale, int32_t disp);
void encode_vector(struct jit *j, FILE *txt);

struct native_model {
    const int8_t *embedding;   /* [27][16] */
    struct jit_layer layer[3]; /* 96 -> 256 -> 256 -> 27 */
};

/* One kind's compiled forward pass, one context at a time (batch 1) or
 * batched, and its activations in the kind's formats, for `batch` contexts. */
struct engine {
    int kind, batch;
    jit_layer_fn layer[3];
    void *in, *h1, *h2;
    int32_t *z;
};

uint64_t native_xcr0(const struct simd_cpu *c);
int native_load(const char *path, struct native_model *m);
int engine_build(const struct native_model *m, int kind, struct engine *e);
void engine_forward(const struct native_model *m, const struct engine *e, const int *ctx, int32_t *z);
int engine_build_batch(const struct native_model *m, int kind, struct engine *e);
void engine_forward_batch(const struct native_model *m, const struct engine *e, const int *ctx, int n, int32_t *z);
jit_layer_fn native_compile(int kind, const struct jit_layer *l, void **packed);
jit_layer_fn native_compile_batch(int kind, const struct jit_layer *l, void **packed);
void *native_input(int kind, int signed_in, const int *x, int n);
int32_t *native_layer(int kind, const struct jit_layer *l, const int *x);
int32_t *native_layer_batch(int kind, const struct jit_layer *l, const int *x, int n);
void *native_code(size_t cap);
int native_seal(void *code, size_t cap);
int bench_main(const char *model_path, int nkinds, char **kinds);
#endif
