/* The wide layer compilers: AVX2 (vpmaddwd, vpmaddubsw), AVX-VNNI (VEX
 * vpdpbusd on ymm) and AVX-512 VNNI (EVEX vpdpbusd on zmm), on weights
 * packed at build time so that one vector holds one step of a block of rows
 * (SDM vol. 2A for the instructions; vol. 1, 14.9 and 15.2 for the state).
 *
 *  packed weights, one row set (group x lanes rows) after the other; in a set:
 *    step 0: block 0 [row 0: g inputs' weights][row 1: ...]...[row lanes-1]  = one vector
 *            block 1 [...] ... block group-1
 *    step 1: block 0 ...                     (a step is g columns: 4 bytes, or 2 int16)
 *  then the bias (int32, corrected for an offset input), then the constants.
 *
 * Block b's accumulator, lane r, sums row (b * lanes + r): no horizontal sums.
 */
#include "jit.h"

enum { DOT_WD, DOT_UBSW, DOT_VNNI };                                  /* the multiply-add of one step */
enum { C_ZERO, C_CLAMP, C_MULT, C_HALF, C_ONES, C_X80, C_COUNT };     /* constant vectors */
enum { BCAST_VEX = 8, TMP_VEX = 10, ONES_VEX = 12, BCAST_EVEX = 16 }; /* accumulators: 0.. */

struct wide {
    int vl, vbytes; /* JIT_Y and 32, or JIT_Z and 64 */
    int lanes;      /* int32 lanes of a vector: the rows of one block */
    int group;      /* blocks per row set: one accumulator each */
    int g, esize;   /* inputs per lane per step, bytes per weight */
    int dot;
    int offset; /* signed inputs on an unsigned-by-signed instruction */
    int batch;  /* contexts per call: 1, or B for the batched code */
};

struct wide_layout {
    int rows, blocks, steps;   /* rows rounded up to whole blocks */
    size_t bias, consts, size; /* offsets in the packed copy, and its size */
};

static struct wide
wide_of(enum jit_kind kind, int signed_in)
{
    if (kind == JIT_AVX512_VNNI)
        return (struct wide){JIT_Z, 64, 16, 16, 4, 1, DOT_VNNI, signed_in, 1};
    if (kind == JIT_AVX_VNNI)
        return (struct wide){JIT_Y, 32, 8, 8, 4, 1, DOT_VNNI, signed_in, 1};
    if (signed_in)
        return (struct wide){JIT_Y, 32, 8, 8, 2, 2, DOT_WD, 0, 1};
    return (struct wide){JIT_Y, 32, 8, 8, 4, 1, DOT_UBSW, 0, 1};
}

static struct wide_layout
wide_layout(const struct wide *wd, const struct jit_layer *l)
{
    struct wide_layout y;
    y.blocks = (l->rows + wd->lanes - 1) / wd->lanes;
    y.rows = y.blocks * wd->lanes;
    y.steps = l->cols / wd->g;
    y.bias = ((size_t)y.rows * (size_t)l->cols * (size_t)wd->esize + 63) & ~(size_t)63;
    y.consts = y.bias + (((size_t)y.rows * 4 + 63) & ~(size_t)63);
    y.size = y.consts + C_COUNT * (size_t)wd->vbytes;
    return y;
}

/* The rows of one block: jit_out_rows rounds up to this. */
int
jit_wide_rows(enum jit_kind kind)
{
    return wide_of(kind, 0).lanes;
}

/* The bytes of a wide kind's packed copy: weights, bias, constants. */
size_t
jit_wide_pack_size(enum jit_kind kind, const struct jit_layer *l)
{
    struct wide wd = wide_of(kind, l->signed_in);
    return wide_layout(&wd, l).size;
}

/* Where weight (row, col) goes in the packed copy, in bytes. */
static size_t
wide_offset(const struct wide *wd, const struct wide_layout *y, int row, int col)
{
    int block = row / wd->lanes, set = block / wd->group, b = block % wd->group;
    int in_set = y->blocks - set * wd->group < wd->group ? y->blocks - set * wd->group : wd->group;
    size_t set_start = (size_t)set * wd->group * wd->lanes * y->steps * wd->g * wd->esize;
    size_t vec = (size_t)(col / wd->g) * in_set + b;
    return set_start + ((vec * wd->lanes + row % wd->lanes) * wd->g + col % wd->g) * wd->esize;
}

/* Exact in int32? |bias| + sum |w| * (largest input) for every row, and a
 * requantization the 32-bit clamp-then-multiply of wide_finish computes
 * exactly: 0 < mult <= 2^24. Returns 0 if so. */
static int
wide_exact(const struct wide *wd, const struct jit_layer *l, const int32_t *bias)
{
    if (l->rows <= 0 || l->cols <= 0 || l->cols % wd->g != 0 || l->mult < 0 || l->mult > (1 << 24))
        return -1;
    int64_t top = wd->offset ? 255 : 127;
    for (int i = 0; i < l->rows; i++) {
        int64_t bound = bias[i] < 0 ? -(int64_t)bias[i] : bias[i];
        for (int c = 0; c < l->cols; c++)
            bound += (l->w[i * l->cols + c] < 0 ? -l->w[i * l->cols + c] : l->w[i * l->cols + c]) * top;
        if (bound > INT32_MAX)
            return -1;
    }
    return 0;
}

/* The constant vectors: lanes of 0, the clamp bound, mult, 2^23, int16 ones, bytes 0x80. */
static void
wide_constants(const struct wide *wd, const struct jit_layer *l, int32_t *c)
{
    int64_t m = l->mult > 0 ? l->mult : 1;
    int32_t v[C_COUNT] = {
        0, (int32_t)(((127ll << 24) - (1 << 23) + m - 1) / m), (int32_t)m, 1 << 23, 0x00010001, (int32_t)0x80808080u};
    for (int k = 0; k < C_COUNT; k++)
        for (int i = 0; i < wd->vbytes / 4; i++)
            c[k * wd->vbytes / 4 + i] = v[k];
}

/* Pack layer l for wd (see the figure at the top); for an offset input the
 * bias absorbs the offset: sum w*(x+128) - 128*sum w = sum w*x. Returns 0,
 * or -1 if wd cannot compute this layer exactly. */
static int
wide_pack(const struct wide *wd, const struct jit_layer *l, void *packed)
{
    struct wide_layout y = wide_layout(wd, l);
    uint8_t *p = packed;
    int32_t *bias = (int32_t *)(p + y.bias);
    for (size_t i = 0; i < y.size; i++)
        p[i] = 0;
    for (int i = 0; i < l->rows; i++) {
        int64_t sum = 0;
        for (int c = 0; c < l->cols; c++) {
            int8_t w = l->w[i * l->cols + c];
            size_t at = wide_offset(wd, &y, i, c);
            if (wd->esize == 2)
                *(int16_t *)(p + at) = w;
            else
                p[at] = (uint8_t)w;
            sum += w;
        }
        int64_t b = (int64_t)l->bias[i] - (wd->offset ? 128 * sum : 0);
        if (b < INT32_MIN || b > INT32_MAX)
            return -1;
        bias[i] = (int32_t)b;
    }
    wide_constants(wd, l, (int32_t *)(p + y.consts));
    return wide_exact(wd, l, bias);
}

/* Pack layer l for a wide kind's one-context code. */
int
jit_wide_pack(enum jit_kind kind, const struct jit_layer *l, void *packed)
{
    struct wide wd = wide_of(kind, l->signed_in);
    return wide_pack(&wd, l, packed);
}

/* The instruction of each kind for each job. */
static const struct jit_vop *
wide_op(const struct wide *wd, const struct jit_vop *vex, const struct jit_vop *evex)
{
    return wd->vl == JIT_Z ? evex : vex;
}

/* Keep RDX within disp8 reach of `off` (bytes from the set's start): a VEX
 * disp8 reaches -128..127 bytes, an EVEX one -128..127 vectors. Moves RDX
 * forward when needed; returns RDX's new offset. */
static int32_t
wide_reach(struct jit *j, const struct wide *wd, int32_t rdx, int32_t off)
{
    int32_t n = wd->vl == JIT_Z ? wd->vbytes : 1;
    if (off - rdx <= 127 * n)
        return rdx;
    jit_add_imm32(j, RDX, off + 128 * n - rdx);
    return off + 128 * n;
}

/* One step of one block: acc += the block's rows times the broadcast inputs. */
static void
wide_dot(struct jit *j, const struct wide *wd, int acc, int bcast, int32_t disp)
{
    int t = TMP_VEX + (acc & 1);
    if (wd->dot == DOT_VNNI) {
        jit_v_mem(j, wide_op(wd, &JIT_VPDPBUSD, &JIT_EVPDPBUSD), wd->vl, acc, bcast, RDX, JIT_NOREG, 1, disp);
        return;
    }
    if (wd->dot == DOT_WD) {
        jit_v_mem(j, &JIT_VPMADDWD, wd->vl, t, bcast, RDX, JIT_NOREG, 1, disp); /* 8 x (2 int16 products) */
    } else {
        jit_v_mem(j, &JIT_VPMADDUBSW, wd->vl, t, bcast, RDX, JIT_NOREG, 1, disp); /* 16 x (2 byte products) */
        jit_v_rr(j, &JIT_VPMADDWD, wd->vl, t, t, ONES_VEX);                       /* pairs of those: 8 x 4 */
    }
    jit_v_rr(j, &JIT_VPADDD, wd->vl, acc, acc, t);
}

/* Store the requantized rows of accumulator `acc` as bytes at [RSI + out]:
 * vpmovdb with EVEX; with VEX, the two 128-bit halves packed to words (the
 * upper half through `tmp`), then to bytes, and 8 bytes stored. */
static void
wide_store_bytes(struct jit *j, const struct wide *wd, int acc, int32_t out, int tmp)
{
    if (wd->vl == JIT_Z) {
        jit_v_mem(j, &JIT_EVPMOVDB_STORE, JIT_Z, acc, JIT_NOREG, RSI, JIT_NOREG, 1, out);
        return;
    }
    jit_v_rr(j, &JIT_VEXTRACTI128, JIT_Y, acc, JIT_NOREG, tmp);
    jit_emit8(j, 1);
    jit_v_rr(j, &JIT_VPACKUSDW, JIT_X, acc, acc, tmp);
    jit_v_rr(j, &JIT_VPACKUSWB, JIT_X, acc, acc, acc);
    jit_v_mem(j, &JIT_VMOVQ_STORE, JIT_X, acc, JIT_NOREG, RSI, JIT_NOREG, 1, out);
}

/* One block's sums in accumulator `acc`, plus its bias at [R8 + bias],
 * requantized (clamp to 0..A first, where A is the smallest sum that gives
 * 127: then acc * mult + 2^23 < 2^31, and 32-bit lanes compute
 * (acc * mult + 2^23) >> 24 exactly), and stored at [RSI + out]. */
static void
wide_finish(struct jit *j, const struct wide *wd, const struct jit_layer *l, int acc, int32_t bias, int32_t out,
            int tmp)
{
    const struct jit_vop *add = wide_op(wd, &JIT_VPADDD, &JIT_EVPADDD);
    int vb = wd->vbytes;
    jit_v_mem(j, add, wd->vl, acc, acc, R8, JIT_NOREG, 1, bias);
    if (l->mult == 0) {
        jit_v_mem(j, wide_op(wd, &JIT_VMOVDQU_STORE, &JIT_EVMOVDQU32_STORE), wd->vl, acc, JIT_NOREG, RSI, JIT_NOREG, 1,
                  out);
        return;
    }
    jit_v_mem(j, wide_op(wd, &JIT_VPMAXSD, &JIT_EVPMAXSD), wd->vl, acc, acc, R9, JIT_NOREG, 1, C_ZERO * vb);
    jit_v_mem(j, wide_op(wd, &JIT_VPMINSD, &JIT_EVPMINSD), wd->vl, acc, acc, R9, JIT_NOREG, 1, C_CLAMP * vb);
    jit_v_mem(j, wide_op(wd, &JIT_VPMULLD, &JIT_EVPMULLD), wd->vl, acc, acc, R9, JIT_NOREG, 1, C_MULT * vb);
    jit_v_mem(j, add, wd->vl, acc, acc, R9, JIT_NOREG, 1, C_HALF * vb);
    jit_v_rr(j, wide_op(wd, &JIT_VPSRLD_IMM, &JIT_EVPSRLD_IMM), wd->vl, 2, acc, acc); /* vpsrld acc, acc, 24 */
    jit_emit8(j, 24);
    wide_store_bytes(j, wd, acc, out, tmp);
}

/* One row set of `blocks` blocks: zero the accumulators, one broadcast of g
 * inputs per step shared by every block, then finish each block and move
 * RDX, R8 and RSI on to the next set. */
static void
wide_set(struct jit *j, const struct wide *wd, const struct jit_layer *l, int blocks)
{
    const struct jit_vop *bcast_op = wide_op(wd, &JIT_VPBROADCASTD, &JIT_EVPBROADCASTD);
    int bcast0 = wd->vl == JIT_Z ? BCAST_EVEX : BCAST_VEX;
    int32_t rdx = 0, vb = wd->vbytes;
    for (int b = 0; b < blocks; b++)
        jit_v_rr(j, wide_op(wd, &JIT_VPXOR, &JIT_EVPXORD), wd->vl, b, b, b);
    for (int s = 0; s < l->cols / wd->g; s++) {
        int bc = bcast0 + (s & 1);
        jit_v_mem(j, bcast_op, wd->vl, bc, JIT_NOREG, RDI, JIT_NOREG, 1, 4 * s);
        if (wd->offset) /* x + 128 as a byte */
            jit_v_mem(j, wide_op(wd, &JIT_VPXOR, &JIT_EVPXORD), wd->vl, bc, bc, R9, JIT_NOREG, 1, C_X80 * vb);
        for (int b = 0; b < blocks; b++) {
            int32_t off = (s * blocks + b) * vb;
            rdx = wide_reach(j, wd, rdx, off);
            wide_dot(j, wd, b, bc, off - rdx);
        }
    }
    for (int b = 0; b < blocks; b++)
        wide_finish(j, wd, l, b, 4 * wd->lanes * b, (l->mult ? 1 : 4) * wd->lanes * b, TMP_VEX);
    if (blocks * (l->cols / wd->g) * vb != rdx)
        jit_add_imm32(j, RDX, blocks * (l->cols / wd->g) * vb - rdx);
    jit_add_imm32(j, R8, 4 * wd->lanes * blocks);
    jit_add_imm32(j, RSI, (l->mult ? 1 : 4) * wd->lanes * blocks);
}

/* Compile layer l for a wide kind from its packed copy: the full row sets
 * (in a loop counted by R10 when there are several), then the last, smaller
 * set, if any. RDX walks the weights, R8 the bias, RSI the outputs; R9
 * points at the constants. */
void
jit_wide_layer(struct jit *j, enum jit_kind kind, const struct jit_layer *l, const void *packed)
{
    struct wide wd = wide_of(kind, l->signed_in);
    struct wide_layout y = wide_layout(&wd, l);
    int full = y.blocks / wd.group, rest = y.blocks % wd.group;
    jit_mov_imm64(j, RDX, (uint64_t)packed);
    jit_mov_imm64(j, R8, (uint64_t)packed + y.bias);
    jit_mov_imm64(j, R9, (uint64_t)packed + y.consts);
    if (wd.dot == DOT_UBSW)
        jit_v_mem(j, &JIT_VMOVDQU_LOAD, JIT_Y, ONES_VEX, JIT_NOREG, R9, JIT_NOREG, 1, C_ONES * wd.vbytes);
    if (full == 1)
        wide_set(j, &wd, l, wd.group);
    if (full > 1) {
        jit_mov_imm64(j, R10, (uint64_t)full);
        size_t loop = j->len;
        wide_set(j, &wd, l, wd.group);
        jit_op_rr(j, 0, 1, JIT_OP(0xff), 1, R10); /* dec r10 */
        jit_emit8(j, 0x0f);                       /* jnz loop */
        jit_emit8(j, 0x85);
        jit_emit32(j, (uint32_t)(int32_t)(loop - (j->len + 4)));
    }
    if (rest)
        wide_set(j, &wd, l, rest);
    jit_vzeroupper(j);
    jit_emit8(j, 0xc3); /* ret */
}

/* The batched code: the same layer for B contexts in one call, so that each
 * weight vector, loaded once into a register, meets B inputs. A row set is
 * a tile of `group` blocks by B contexts, one accumulator each, and every
 * register of the tile stays a register for the whole set:
 *
 *              ymm (16 registers)                  zmm (32 registers)
 *   AVX2       2 blocks x 4 contexts: acc 0-7,     AVX-512 VNNI  4 blocks x 6 contexts:
 *              inputs 8-11, weights 12, ones 13,                 acc 0-23, inputs 24-29,
 *              products 14-15                                     weights 30
 *   AVX-VNNI   2 blocks x 5 contexts: acc 0-9, inputs 10-14, weights 15
 *
 * Context c's inputs are at RDI + c * (its input stride), its outputs at
 * RSI + c * (its output stride): jit_batch_in_stride, jit_batch_out_stride. */
static struct wide
wide_batch_of(enum jit_kind kind, int signed_in)
{
    struct wide wd = wide_of(kind, signed_in);
    wd.group = kind == JIT_AVX512_VNNI ? 4 : 2;
    wd.batch = kind == JIT_AVX512_VNNI ? 6 : kind == JIT_AVX_VNNI ? 5 : 4;
    return wd;
}

/* Contexts per call of a kind's batched code, or 0 if it has none. */
int
jit_wide_batch(enum jit_kind kind)
{
    return kind >= JIT_AVX2 ? wide_batch_of(kind, 0).batch : 0;
}

/* The bytes of a wide kind's packed copy for its batched code. */
size_t
jit_wide_batch_pack_size(enum jit_kind kind, const struct jit_layer *l)
{
    struct wide wd = wide_batch_of(kind, l->signed_in);
    return wide_layout(&wd, l).size;
}

/* Pack layer l for a wide kind's batched code: the layout of the figure at
 * the top, with row sets of `group` blocks, so that a set's weights are one
 * run of memory. */
int
jit_wide_batch_pack(enum jit_kind kind, const struct jit_layer *l, void *packed)
{
    struct wide wd = wide_batch_of(kind, l->signed_in);
    return wide_pack(&wd, l, packed);
}

/* The registers of the tile: block r's accumulator for context c, context
 * c's broadcast inputs, the weight vector; then the ones and two products. */
static int
batch_acc(const struct wide *wd, int r, int c)
{
    return r * wd->batch + c;
}

static int
batch_in(const struct wide *wd, int c)
{
    return wd->group * wd->batch + c;
}

static int
batch_w(const struct wide *wd)
{
    return wd->group * wd->batch + wd->batch;
}

/* acc += the weights in register w times the broadcast inputs `in`. */
static void
batch_dot(struct jit *j, const struct wide *wd, int acc, int in, int w)
{
    int t = batch_w(wd) + 2 + (acc & 1), ones = batch_w(wd) + 1;
    if (wd->dot == DOT_VNNI) {
        jit_v_rr(j, wide_op(wd, &JIT_VPDPBUSD, &JIT_EVPDPBUSD), wd->vl, acc, in, w);
        return;
    }
    jit_v_rr(j, wd->dot == DOT_WD ? &JIT_VPMADDWD : &JIT_VPMADDUBSW, wd->vl, t, in, w);
    if (wd->dot == DOT_UBSW)
        jit_v_rr(j, &JIT_VPMADDWD, wd->vl, t, t, ones);
    jit_v_rr(j, &JIT_VPADDD, wd->vl, acc, acc, t);
}

/* One row set of `blocks` blocks for B contexts: zero the tile; per step,
 * broadcast each context's g inputs, then load each block's weights once
 * and multiply them with every context's inputs; then finish each
 * accumulator into its context's outputs and move RDX, R8 and RSI on. */
static void
batch_set(struct jit *j, const struct wide *wd, const struct jit_layer *l, int blocks, int in_stride, int out_stride)
{
    const struct jit_vop *bcast_op = wide_op(wd, &JIT_VPBROADCASTD, &JIT_EVPBROADCASTD);
    int32_t rdx = 0, vb = wd->vbytes, steps = l->cols / wd->g;
    for (int r = 0; r < blocks; r++)
        for (int c = 0; c < wd->batch; c++)
            jit_v_rr(j, wide_op(wd, &JIT_VPXOR, &JIT_EVPXORD), wd->vl, batch_acc(wd, r, c), batch_acc(wd, r, c),
                     batch_acc(wd, r, c));
    for (int s = 0; s < steps; s++) {
        for (int c = 0; c < wd->batch; c++) {
            int in = batch_in(wd, c);
            jit_v_mem(j, bcast_op, wd->vl, in, JIT_NOREG, RDI, JIT_NOREG, 1, c * in_stride + 4 * s);
            if (wd->offset) /* x + 128 as a byte */
                jit_v_mem(j, wide_op(wd, &JIT_VPXOR, &JIT_EVPXORD), wd->vl, in, in, R9, JIT_NOREG, 1, C_X80 * vb);
        }
        for (int r = 0; r < blocks; r++) {
            int32_t off = (s * blocks + r) * vb;
            rdx = wide_reach(j, wd, rdx, off);
            jit_v_mem(j, wide_op(wd, &JIT_VMOVDQU_LOAD, &JIT_EVMOVDQU32_LOAD), wd->vl, batch_w(wd), JIT_NOREG, RDX,
                      JIT_NOREG, 1, off - rdx);
            for (int c = 0; c < wd->batch; c++)
                batch_dot(j, wd, batch_acc(wd, r, c), batch_in(wd, c), batch_w(wd));
        }
    }
    for (int r = 0; r < blocks; r++)
        for (int c = 0; c < wd->batch; c++)
            wide_finish(j, wd, l, batch_acc(wd, r, c), 4 * wd->lanes * r,
                        c * out_stride + (l->mult ? 1 : 4) * wd->lanes * r, batch_in(wd, 0));
    if (blocks * steps * vb != rdx)
        jit_add_imm32(j, RDX, blocks * steps * vb - rdx);
    jit_add_imm32(j, R8, 4 * wd->lanes * blocks);
    jit_add_imm32(j, RSI, (l->mult ? 1 : 4) * wd->lanes * blocks);
}

/* Compile layer l's batched code for a wide kind from its batched packed
 * copy (jit_wide_batch_pack): the full row sets in a loop counted by R10,
 * then the last, smaller set, if any; registers as in jit_wide_layer. */
void
jit_wide_batch_layer(struct jit *j, enum jit_kind kind, const struct jit_layer *l, const void *packed)
{
    struct wide wd = wide_batch_of(kind, l->signed_in);
    struct wide_layout y = wide_layout(&wd, l);
    int full = y.blocks / wd.group, rest = y.blocks % wd.group;
    int in_stride = jit_batch_in_stride(kind, l), out_stride = jit_batch_out_stride(kind, l);
    jit_mov_imm64(j, RDX, (uint64_t)packed);
    jit_mov_imm64(j, R8, (uint64_t)packed + y.bias);
    jit_mov_imm64(j, R9, (uint64_t)packed + y.consts);
    if (wd.dot == DOT_UBSW)
        jit_v_mem(j, &JIT_VMOVDQU_LOAD, JIT_Y, batch_w(&wd) + 1, JIT_NOREG, R9, JIT_NOREG, 1, C_ONES * wd.vbytes);
    if (full > 0) {
        jit_mov_imm64(j, R10, (uint64_t)full);
        size_t loop = j->len;
        batch_set(j, &wd, l, wd.group, in_stride, out_stride);
        jit_op_rr(j, 0, 1, JIT_OP(0xff), 1, R10); /* dec r10 */
        jit_emit8(j, 0x0f);                       /* jnz loop */
        jit_emit8(j, 0x85);
        jit_emit32(j, (uint32_t)(int32_t)(loop - (j->len + 4)));
    }
    if (rest)
        batch_set(j, &wd, l, rest, in_stride, out_stride);
    jit_vzeroupper(j);
    jit_emit8(j, 0xc3); /* ret */
}
