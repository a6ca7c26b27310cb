/* The character model of lab 06, as the kernel sees it: the file GRUB loads
 * as a Multiboot2 module (its format and every rounding rule are specified
 * in labs/06-jit-model/model_ref.py), the C interpreter, and the JIT's entry points.
 */
#ifndef MODEL_H
#define MODEL_H
#include "kernel.h"
#include "mb2.h"
#include "jit.h"

#define MODEL_MAGIC    "CHARMLP1"
#define MODEL_VERSION  1
#define MODEL_CTX      6  /* previous characters seen */
#define MODEL_VOCAB    27 /* 0 = end of word, 1..26 = a..z */
#define MODEL_EMBED    16
#define MODEL_IN       (MODEL_CTX * MODEL_EMBED) /* 96 */
#define MODEL_H1       256
#define MODEL_H2       256
#define MODEL_MAX_WORD 16
#define MODEL_EXP_LEN  256
#define MODEL_MODULE   "chars.model" /* the module's command line in grub.cfg */

struct model_header {
    char magic[8];
    uint32_t version, context, vocab, embed, hidden1, hidden2;
    int32_t m1, m2;     /* requantization multipliers, Q24 */
    uint32_t logit_mul; /* logit difference -> exp-table index, Q16 */
    uint32_t heldout_words, heldout_bytes, total_size;
    uint8_t reserved[8];
};

struct model {
    const struct model_header *h;
    const uint32_t *exp_table;
    const int8_t *embedding;    /* [vocab][embed] */
    const int8_t *w1, *w2, *w3; /* [out][in], row-major */
    const int32_t *b1, *b2, *b3;
    const char *heldout; /* heldout_words NUL-terminated words */
};

/* An engine computes the logits of one context: the interpreter or a JIT;
 * or, batched, of up to `batch` contexts a call (ctx holds n x MODEL_CTX
 * characters, out n x MODEL_VOCAB logits). */
struct engine {
    const char *name;
    void (*logits)(const struct engine *e, const uint8_t *ctx, int32_t *out);
    const struct model *m;
    void *jit; /* the JIT's compiled layers, or NULL */
    int batch; /* 0: one context a call, through logits; else through logits_batch */
    void (*logits_batch)(const struct engine *e, const uint8_t *ctx, int n, int32_t *out);
};

/* model.c */
void model_load(const struct boot_info *bi, struct model *m);
void model_logits_c(const struct engine *e, const uint8_t *ctx, int32_t *out);
int model_top1(const int32_t *z);
int model_sample(const struct model *m, const int32_t *z, uint32_t *state);
uint32_t model_fnv1a(uint32_t h, const void *data, uint64_t n);

/* model_jit.c: the kernel's JIT driver */
struct jit_model {
    enum jit_kind kind;
    int batch; /* 0, or the contexts of one call of the batched code (jit_batch) */
    jit_layer_fn layer[3];
    void *packed[3];         /* the weights in the kind's layout (jit_pack or jit_batch_pack) */
    void *in, *h1, *h2;      /* activations in the kind's formats, 64-byte aligned */
    int32_t *z;              /* logits, room for jit_out_rows */
    int in_stride, z_stride; /* batched: bytes from one context's inputs (logits) to the next's */
};
extern const char *const jit_engine_name[];
int simd_choose(void);
void simd_enable(int kind);
const char *jit_batch_name(enum jit_kind kind);
int jit_build(const struct model *m, enum jit_kind kind, int batch, struct jit_model *jm, void **shared,
              uint8_t **code_out);
void jit_engine_logits(const struct engine *e, const uint8_t *ctx, int32_t *out);
void jit_engine_logits_batch(const struct engine *e, const uint8_t *ctx, int n, int32_t *out);

/* model_selftest.c: the workload, every line the grader checks */
void model_selftest(uint64_t seed, const struct boot_info *bi);
#endif
