/* The character model: found among the Multiboot2 modules, checked (magic,
 * version, shapes, size, checksum) before anything trusts it, and run by a
 * plain C interpreter that the JIT must match bit for bit. The arithmetic
 * is specified in labs/06-jit-model/model_ref.py.
 */
#include "model.h"
#include "serial.h"

uint32_t
model_fnv1a(uint32_t h, const void *data, uint64_t n)
{
    const uint8_t *p = data;
    while (n--)
        h = (h ^ *p++) * 0x01000193u;
    return h;
}

static const uint8_t *
model_align16(const uint8_t *base, const uint8_t *p)
{
    return base + (((uint64_t)(p - base) + 15) & ~15ull);
}

/* Find the module, check it, and point m's arrays into it. Any mismatch is
 * a panic that says what is wrong: a model we cannot trust is no model. */
void
model_load(const struct boot_info *bi, struct model *m)
{
    const struct boot_module *mod = NULL;
    for (int i = 0; i < bi->nmodules; i++)
        if (bi->modules[i].cmdline && strncmp(bi->modules[i].cmdline, MODEL_MODULE, sizeof MODEL_MODULE) == 0)
            mod = &bi->modules[i];
    if (mod == NULL)
        panic("model: no Multiboot2 module `%s` (grub.cfg loads it with module2)", MODEL_MODULE);
    const uint8_t *base = (const uint8_t *)mod->start;
    uint64_t size = mod->end - mod->start;
    const struct model_header *h = (const struct model_header *)base;
    if (size < sizeof *h + 4 * MODEL_EXP_LEN + 4 || memcmp(h->magic, MODEL_MAGIC, 8) != 0)
        panic("model: module `%s` is not a character model (bad magic or %lu bytes)", MODEL_MODULE, size);
    if (h->version != MODEL_VERSION || h->total_size != size)
        panic("model: version %u, size %u in the header, but the module has %lu bytes", h->version, h->total_size,
              size);
    if (h->context != MODEL_CTX || h->vocab != MODEL_VOCAB || h->embed != MODEL_EMBED || h->hidden1 != MODEL_H1 ||
        h->hidden2 != MODEL_H2)
        panic("model: shapes %ux%u -> %u -> %u -> %u are not the ones this kernel is built for", h->context, h->embed,
              h->hidden1, h->hidden2, h->vocab);
    uint32_t sum = *(const uint32_t *)(base + size - 4);
    if (model_fnv1a(0x811c9dc5u, base, size - 4) != sum)
        panic("model: checksum mismatch: the module is corrupt");
    const uint8_t *p = base + sizeof *h;
    m->h = h;
    m->exp_table = (const uint32_t *)p;
    p += 4 * MODEL_EXP_LEN;
    m->embedding = (const int8_t *)(p = model_align16(base, p));
    m->w1 = (const int8_t *)(p = model_align16(base, p + MODEL_VOCAB * MODEL_EMBED));
    m->b1 = (const int32_t *)(p = model_align16(base, p + MODEL_H1 * MODEL_IN));
    m->w2 = (const int8_t *)(p = model_align16(base, p + 4 * MODEL_H1));
    m->b2 = (const int32_t *)(p = model_align16(base, p + MODEL_H2 * MODEL_H1));
    m->w3 = (const int8_t *)(p = model_align16(base, p + 4 * MODEL_H2));
    m->b3 = (const int32_t *)(p = model_align16(base, p + MODEL_VOCAB * MODEL_H2));
    m->heldout = (const char *)model_align16(base, p + 4 * MODEL_VOCAB);
    if ((const uint8_t *)m->heldout + h->heldout_bytes > base + size - 4)
        panic("model: the arrays and held-out words need more than the module's %lu bytes", size);
    kprintf("[model] module %s at %p: %lu bytes, checksum ok, %ux%u -> %u -> %u -> %u\n", MODEL_MODULE, base, size,
            h->context, h->embed, h->hidden1, h->hidden2, h->vocab);
}

/* Requantize a layer's sum: clamp((acc * mult + 2^23) >> 24, 0, 127). */
static int32_t
model_requant(int64_t acc, int32_t mult)
{
    int64_t v = (acc * mult + (1ll << 23)) >> 24;
    return v < 0 ? 0 : v > 127 ? 127 : (int32_t)v;
}

/* The forward pass, one multiply-add at a time: the reference the JIT meets.
 * Twin: labs/06-jit-model/model_ref.py logits (the specification).
 */
void
model_logits_c(const struct engine *e, const uint8_t *ctx, int32_t *out)
{
    const struct model *m = e->m;
    int8_t x[MODEL_IN];
    int32_t h1[MODEL_H1], h2[MODEL_H2];
    for (int p = 0; p < MODEL_CTX; p++)
        memcpy(&x[p * MODEL_EMBED], &m->embedding[ctx[p] * MODEL_EMBED], MODEL_EMBED);
    for (int i = 0; i < MODEL_H1; i++) {
        int64_t acc = m->b1[i];
        for (int j = 0; j < MODEL_IN; j++)
            acc += m->w1[i * MODEL_IN + j] * x[j];
        h1[i] = model_requant(acc, m->h->m1);
    }
    for (int i = 0; i < MODEL_H2; i++) {
        int64_t acc = m->b2[i];
        for (int j = 0; j < MODEL_H1; j++)
            acc += m->w2[i * MODEL_H1 + j] * h1[j];
        h2[i] = model_requant(acc, m->h->m2);
    }
    for (int k = 0; k < MODEL_VOCAB; k++) {
        int32_t acc = m->b3[k];
        for (int j = 0; j < MODEL_H2; j++)
            acc += m->w3[k * MODEL_H2 + j] * h2[j];
        out[k] = acc;
    }
}

/* The largest logit; the lowest index among equals. */
int
model_top1(const int32_t *z)
{
    int best = 0;
    for (int k = 1; k < MODEL_VOCAB; k++)
        if (z[k] > z[best])
            best = k;
    return best;
}

static uint32_t
model_xorshift32(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Draw a character with integers only: weights from the exp table by each
 * logit's distance to the largest, then one xorshift32 draw.
 * Twin: labs/06-jit-model/model_ref.py sample.
 */
int
model_sample(const struct model *m, const int32_t *z, uint32_t *state)
{
    uint32_t w[MODEL_VOCAB], total = 0;
    int32_t top = z[model_top1(z)];
    for (int k = 0; k < MODEL_VOCAB; k++) {
        uint64_t idx = ((uint64_t)(top - z[k]) * m->h->logit_mul) >> 16;
        w[k] = m->exp_table[idx > MODEL_EXP_LEN - 1 ? MODEL_EXP_LEN - 1 : idx];
        total += w[k];
    }
    uint32_t r = model_xorshift32(state) % total, run = 0;
    for (int k = 0; k < MODEL_VOCAB; k++)
        if ((run += w[k]) > r)
            return k;
    return 0;
}
