/* The emitter's byte and instruction helpers (built on jit_rex and
 * jit_modrm_mem, which you write): legacy, VEX and EVEX forms. And the layer
 * compiler: one function per layer, its weights' address, shape and
 * requantization constant folded in; scalar and SSE2 here, the wide kinds in
 * jit_wide.c. Compiled for the kernel and, unchanged, for Linux user space.
 */
#include "jit.h"

void
jit_init(struct jit *j, void *buf, size_t cap)
{
    j->buf = buf;
    j->len = 0;
    j->cap = cap;
    j->overflow = 0;
}

void
jit_emit8(struct jit *j, uint8_t b)
{
    if (j->len < j->cap)
        j->buf[j->len++] = b;
    else
        j->overflow = 1;
}

void
jit_emit32(struct jit *j, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        jit_emit8(j, (uint8_t)(v >> (8 * i)));
}

void
jit_emit64(struct jit *j, uint64_t v)
{
    jit_emit32(j, (uint32_t)v);
    jit_emit32(j, (uint32_t)(v >> 32));
}

/* [66] [REX] opcode ModRM/SIB/disp: an instruction with a memory operand. */
void
jit_op_mem(struct jit *j, int p66, int w, const uint8_t *op, int nop, int reg, int base, int index, int scale,
           int32_t disp)
{
    if (p66)
        jit_emit8(j, 0x66); /* the legacy prefix goes before REX */
    jit_rex(j, w, reg, index, base);
    for (int i = 0; i < nop; i++)
        jit_emit8(j, op[i]);
    jit_modrm_mem(j, reg, base, index, scale, disp);
}

/* [66] [REX] opcode ModRM(mod 11): register to register. */
void
jit_op_rr(struct jit *j, int p66, int w, const uint8_t *op, int nop, int reg, int rm)
{
    if (p66)
        jit_emit8(j, 0x66);
    jit_rex(j, w, reg, JIT_NOREG, rm);
    for (int i = 0; i < nop; i++)
        jit_emit8(j, op[i]);
    jit_emit8(j, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

/* mov reg, imm64 (b8+r io, with REX.W): a constant folded into the code. */
void
jit_mov_imm64(struct jit *j, int reg, uint64_t v)
{
    jit_rex(j, 1, JIT_NOREG, JIT_NOREG, reg);
    jit_emit8(j, (uint8_t)(0xb8 + (reg & 7)));
    jit_emit64(j, v);
}

/* add reg64, imm32 (81 /0 id). */
void
jit_add_imm32(struct jit *j, int reg, int32_t v)
{
    jit_op_rr(j, 0, 1, JIT_OP(0x81), 0, reg);
    jit_emit32(j, (uint32_t)v);
}

/* The VEX prefix (SDM vol. 2A, 2.3): it replaces REX, the 66/F3/F2 prefix
 * and the 0F/0F38/0F3A escape, and adds a third register, vvvv. R, X, B and
 * vvvv are stored inverted. Two bytes when they suffice (map 0F, W=0, no X,
 * no B), else three:
 *   C5 | R vvvv L pp                 C4 | R X B mmmmm | W vvvv L pp
 */
void
jit_vex(struct jit *j, int vl, int pp, int map, int w, int reg, int vvvv, int index, int base)
{
    int r = reg >= 0 && (reg & 8), x = index >= 0 && (index & 8), b = base >= 0 && (base & 8);
    int v = vvvv >= 0 ? vvvv & 15 : 0;
    uint8_t last = (uint8_t)((~v & 15) << 3 | (vl == JIT_Y ? 4 : 0) | pp);
    if (map == JIT_MAP_0F && !w && !x && !b) {
        jit_emit8(j, 0xc5);
        jit_emit8(j, (uint8_t)((r ? 0 : 0x80) | last));
        return;
    }
    jit_emit8(j, 0xc4);
    jit_emit8(j, (uint8_t)((r ? 0 : 0x80) | (x ? 0 : 0x40) | (b ? 0 : 0x20) | map));
    jit_emit8(j, (uint8_t)((w ? 0x80 : 0) | last));
}

/* The EVEX prefix (SDM vol. 2A, 2.7): four bytes, 62 then P0 P1 P2, with a
 * fifth register bit for reg (R') and vvvv (V'), all five inverted:
 *   P0  R X B R' 0 0 m m      X and B: bit 3 of index and base, or bits 4 and 3 of a register rm
 *   P1  W v v v v 1 p p
 *   P2  z L'L b V' a a a      L'L: 00 128, 01 256, 10 512 bits; z, b, aaa (masking, broadcast) 0 here
 * x and b are the X and B bits, not yet inverted. */
void
jit_evex(struct jit *j, int vl, int pp, int map, int w, int reg, int vvvv, int x, int b)
{
    int r = reg >= 0 ? reg : 0, v = vvvv >= 0 ? vvvv : 0;
    jit_emit8(j, 0x62);
    jit_emit8(j, (uint8_t)((r & 8 ? 0 : 0x80) | (x ? 0 : 0x40) | (b ? 0 : 0x20) | (r & 16 ? 0 : 0x10) | map));
    jit_emit8(j, (uint8_t)((w ? 0x80 : 0) | (~v & 15) << 3 | 4 | pp));
    jit_emit8(j, (uint8_t)(vl << 5 | (v & 16 ? 0 : 0x08)));
}

/* The memory operand of an EVEX instruction. Its disp8 counts in units of N
 * bytes (SDM 2.7, "compressed displacement"); your jit_modrm_mem chooses
 * disp8 by the displacement's value alone. So a small multiple of N is
 * passed divided by N, and a displacement that fits in a byte but is no
 * multiple of N gets a disp32 by force. A disp32 is never scaled. */
static void
jit_modrm_mem_n(struct jit *j, int reg, int base, int index, int scale, int32_t disp, int n)
{
    if (base != JIT_NOREG && disp % n == 0 && disp / n >= -128 && disp / n <= 127) {
        jit_modrm_mem(j, reg, base, index, scale, disp / n);
        return;
    }
    if (base == JIT_NOREG || disp < -128 || disp > 127) {
        jit_modrm_mem(j, reg, base, index, scale, disp);
        return;
    }
    jit_modrm_mem(j, reg, base, index, scale, INT32_MAX); /* a disp32, then its real value */
    for (int i = 0; i < 4 && !j->overflow; i++)
        j->buf[j->len - 4 + i] = (uint8_t)((uint32_t)disp >> (8 * i));
}

/* op reg, vvvv, [base + index*scale + disp] in VEX or EVEX form, vl bits wide. */
void
jit_v_mem(struct jit *j, const struct jit_vop *op, int vl, int reg, int vvvv, int base, int index, int scale,
          int32_t disp)
{
    int n = op->n > 0 ? op->n : (16 << vl) >> -op->n;
    if (op->evex)
        jit_evex(j, vl, op->pp, op->map, op->w, reg, vvvv, index >= 0 && (index & 8), base >= 0 && (base & 8));
    else
        jit_vex(j, vl, op->pp, op->map, op->w, reg, vvvv, index, base);
    jit_emit8(j, op->op);
    if (op->evex)
        jit_modrm_mem_n(j, reg, base, index, scale, disp, n);
    else
        jit_modrm_mem(j, reg, base, index, scale, disp);
}

/* op reg, vvvv, rm with three registers (ModRM mod 11). */
void
jit_v_rr(struct jit *j, const struct jit_vop *op, int vl, int reg, int vvvv, int rm)
{
    if (op->evex)
        jit_evex(j, vl, op->pp, op->map, op->w, reg, vvvv, (rm & 16) != 0, (rm & 8) != 0);
    else
        jit_vex(j, vl, op->pp, op->map, op->w, reg, vvvv, JIT_NOREG, rm);
    jit_emit8(j, op->op);
    jit_emit8(j, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
}

/* vzeroupper (VEX.128.0F 77): clear the upper halves before returning to
 * code that may use legacy SSE, which would otherwise pay to preserve them. */
void
jit_vzeroupper(struct jit *j)
{
    jit_vex(j, JIT_X, JIT_PP_NONE, JIT_MAP_0F, 0, JIT_NOREG, JIT_NOREG, JIT_NOREG, JIT_NOREG);
    jit_emit8(j, 0x77);
}

/* The vector instructions the JIT emits: {evex, pp, map, W, opcode, disp8*N}. */
#define VEX(pp, map, op)                                                                                               \
    {                                                                                                                  \
        0, JIT_PP_##pp, JIT_MAP_##map, 0, op, 1                                                                        \
    }
#define EVEX(pp, map, op, n)                                                                                           \
    {                                                                                                                  \
        1, JIT_PP_##pp, JIT_MAP_##map, 0, op, n                                                                        \
    }
const struct jit_vop JIT_VPXOR = VEX(66, 0F, 0xef), JIT_VPBROADCASTD = VEX(66, 0F38, 0x58),
                     JIT_VPMADDUBSW = VEX(66, 0F38, 0x04), JIT_VPMADDWD = VEX(66, 0F, 0xf5),
                     JIT_VPADDD = VEX(66, 0F, 0xfe), JIT_VPDPBUSD = VEX(66, 0F38, 0x50),
                     JIT_VPMAXSD = VEX(66, 0F38, 0x3d), JIT_VPMINSD = VEX(66, 0F38, 0x39),
                     JIT_VPMULLD = VEX(66, 0F38, 0x40), JIT_VPSRLD_IMM = VEX(66, 0F, 0x72),
                     JIT_VEXTRACTI128 = VEX(66, 0F3A, 0x39), JIT_VPACKUSDW = VEX(66, 0F38, 0x2b),
                     JIT_VPACKUSWB = VEX(66, 0F, 0x67), JIT_VMOVQ_STORE = VEX(66, 0F, 0xd6),
                     JIT_VMOVDQU_LOAD = VEX(F3, 0F, 0x6f), JIT_VMOVDQU_STORE = VEX(F3, 0F, 0x7f);
const struct jit_vop JIT_EVPXORD = EVEX(66, 0F, 0xef, 0), JIT_EVPBROADCASTD = EVEX(66, 0F38, 0x58, 4),
                     JIT_EVPADDD = EVEX(66, 0F, 0xfe, 0), JIT_EVPDPBUSD = EVEX(66, 0F38, 0x50, 0),
                     JIT_EVPMAXSD = EVEX(66, 0F38, 0x3d, 0), JIT_EVPMINSD = EVEX(66, 0F38, 0x39, 0),
                     JIT_EVPMULLD = EVEX(66, 0F38, 0x40, 0), JIT_EVPSRLD_IMM = EVEX(66, 0F, 0x72, 0),
                     JIT_EVPMOVDB_STORE = EVEX(F3, 0F38, 0x31, -2), JIT_EVMOVDQU32_LOAD = EVEX(F3, 0F, 0x6f, 0),
                     JIT_EVMOVDQU32_STORE = EVEX(F3, 0F, 0x7f, 0);

const char *const jit_kind_name[JIT_KINDS] = {"scalar", "sse2", "avx2", "avx-vnni", "avx512-vnni"};

/* One row's dot product into eax, the SSE2 way: 8 int16 products per pmaddwd,
 * summed into four int32 lanes of xmm0, then across the lanes. Exact: every
 * product and every sum fits in 32 bits. */
static void
jit_dot_sse2(struct jit *j, int cols)
{
    jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xef), XMM(0), XMM(0)); /* pxor xmm0, xmm0 */
    for (int c = 0; c < cols / 8; c++) {
        jit_op_mem(j, 1, 0, JIT_OP(0x0f, 0x6f), XMM(1), RDX, JIT_NOREG, 1, 16 * c); /* movdqa xmm1, [rdx+16c] */
        jit_op_mem(j, 1, 0, JIT_OP(0x0f, 0xf5), XMM(1), RDI, JIT_NOREG, 1, 16 * c); /* pmaddwd xmm1, [rdi+16c] */
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xfe), XMM(0), XMM(1));                     /* paddd xmm0, xmm1 */
    }
    for (int shuffle = 0x4e; shuffle; shuffle = shuffle == 0x4e ? 0xb1 : 0) {
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0x70), XMM(1), XMM(0)); /* pshufd xmm1, xmm0, imm */
        jit_emit8(j, (uint8_t)shuffle);
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xfe), XMM(0), XMM(1)); /* paddd xmm0, xmm1 */
    }
    jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0x7e), XMM(0), RAX); /* movd eax, xmm0 */
}

/* The same dot product one multiply-add at a time, in r11d, then eax. */
static void
jit_dot_scalar(struct jit *j, int cols)
{
    jit_op_rr(j, 0, 1, JIT_OP(0x31), R11, R11); /* xor r11, r11 */
    for (int c = 0; c < cols; c++) {
        jit_op_mem(j, 0, 0, JIT_OP(0x0f, 0xbf), RAX, RDX, JIT_NOREG, 1, 2 * c); /* movsx eax, word [rdx+2c] */
        jit_op_mem(j, 0, 0, JIT_OP(0x0f, 0xbf), RCX, RDI, JIT_NOREG, 1, 2 * c); /* movsx ecx, word [rdi+2c] */
        jit_op_rr(j, 0, 0, JIT_OP(0x0f, 0xaf), RAX, RCX);                       /* imul eax, ecx */
        jit_op_rr(j, 0, 0, JIT_OP(0x01), RAX, R11);                             /* add r11d, eax */
    }
    jit_op_rr(j, 0, 0, JIT_OP(0x89), R11, RAX); /* mov eax, r11d */
}

/* acc (eax) + bias -> rax; requantized to 0..127 when mult != 0. */
static void
jit_finish_row(struct jit *j, int64_t mult)
{
    jit_op_rr(j, 0, 1, JIT_OP(0x63), RAX, RAX);                 /* movsxd rax, eax */
    jit_op_mem(j, 0, 1, JIT_OP(0x63), R9, R8, JIT_NOREG, 1, 0); /* movsxd r9, [r8] */
    jit_op_rr(j, 0, 1, JIT_OP(0x01), R9, RAX);                  /* add rax, r9 */
    if (mult == 0)
        return;
    jit_mov_imm64(j, R9, (uint64_t)mult);
    jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0xaf), RAX, R9); /* imul rax, r9 */
    jit_mov_imm64(j, R9, 1ull << 23);
    jit_op_rr(j, 0, 1, JIT_OP(0x01), R9, RAX); /* add rax, r9 */
    jit_op_rr(j, 0, 1, JIT_OP(0xc1), 7, RAX);  /* sar rax, 24 */
    jit_emit8(j, 24);
    jit_op_rr(j, 0, 1, JIT_OP(0x31), R9, R9);        /* xor r9, r9 */
    jit_op_rr(j, 0, 1, JIT_OP(0x85), RAX, RAX);      /* test rax, rax */
    jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0x4c), RAX, R9); /* cmovl rax, r9 */
    jit_mov_imm64(j, R9, 127);
    jit_op_rr(j, 0, 1, JIT_OP(0x39), R9, RAX);       /* cmp rax, r9 */
    jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0x4f), RAX, R9); /* cmovg rax, r9 */
}

/* The bytes a kind's packed copy of layer l takes (jit_pack). */
size_t
jit_pack_size(enum jit_kind kind, const struct jit_layer *l)
{
    if (kind >= JIT_AVX2)
        return jit_wide_pack_size(kind, l);
    return 2 * (size_t)l->rows * (size_t)l->cols;
}

/* Copy layer l's weights into `packed` (jit_pack_size bytes, 64-byte
 * aligned) in the layout the kind's instructions want: for scalar and SSE2,
 * widened to int16, row after row. Returns 0, or -1 if the kind cannot run
 * this layer exactly (then do not compile it). */
int
jit_pack(enum jit_kind kind, const struct jit_layer *l, void *packed)
{
    if (kind >= JIT_AVX2)
        return jit_wide_pack(kind, l, packed);
    if (kind == JIT_SSE2 && l->cols % 8 != 0)
        return -1;
    int16_t *out = packed;
    for (int i = 0; i < l->rows * l->cols; i++)
        out[i] = l->w[i];
    return 0;
}

/* Bytes per input value of a compiled layer: 2 (int16) or 1 (int8 when
 * signed_in, else uint8). */
int
jit_in_bytes(enum jit_kind kind, int signed_in)
{
    return kind <= JIT_SSE2 || (kind == JIT_AVX2 && signed_in) ? 2 : 1;
}

/* Bytes per requantized output value: 2 (int16) or 1 (uint8); logits are int32. */
int
jit_out_bytes(enum jit_kind kind)
{
    return kind <= JIT_SSE2 ? 2 : 1;
}

/* How many outputs a compiled layer of `rows` rows writes: the wide kinds
 * write whole vectors, so `out` must have room for this many. */
int
jit_out_rows(enum jit_kind kind, int rows)
{
    int block = kind >= JIT_AVX2 ? jit_wide_rows(kind) : 1;
    return (rows + block - 1) / block * block;
}

/* Compile one layer at j's current position: void f(const void *in, void *out),
 * from the packed copy jit_pack made. out is requantized (int16 or uint8,
 * jit_out_bytes) or, when mult is 0, int32 logits. Returns the code's offset
 * in j's buffer. */
size_t
jit_compile_layer(struct jit *j, enum jit_kind kind, const struct jit_layer *l, const void *packed)
{
    size_t start = j->len;
    if (kind >= JIT_AVX2) {
        jit_wide_layer(j, kind, l, packed);
        return start;
    }
    jit_mov_imm64(j, RDX, (uint64_t)packed);
    jit_mov_imm64(j, R8, (uint64_t)l->bias);
    jit_mov_imm64(j, R10, (uint64_t)l->rows);
    size_t loop = j->len;
    if (kind == JIT_SSE2)
        jit_dot_sse2(j, l->cols);
    else
        jit_dot_scalar(j, l->cols);
    jit_finish_row(j, l->mult);
    if (l->mult) {
        jit_op_mem(j, 1, 0, JIT_OP(0x89), RAX, RSI, JIT_NOREG, 1, 0); /* mov [rsi], ax */
        jit_add_imm32(j, RSI, 2);
    } else {
        jit_op_mem(j, 0, 0, JIT_OP(0x89), RAX, RSI, JIT_NOREG, 1, 0); /* mov [rsi], eax */
        jit_add_imm32(j, RSI, 4);
    }
    jit_add_imm32(j, RDX, 2 * l->cols);
    jit_add_imm32(j, R8, 4);
    jit_op_rr(j, 0, 1, JIT_OP(0xff), 1, R10); /* dec r10 */
    jit_emit8(j, 0x0f);                       /* jnz loop */
    jit_emit8(j, 0x85);
    jit_emit32(j, (uint32_t)(int32_t)(loop - (j->len + 4)));
    jit_emit8(j, 0xc3); /* ret */
    return start;
}

/* Contexts per call of the kind's batched code; 0: it has none (scalar and
 * SSE2 run one context at a time). */
int
jit_batch(enum jit_kind kind)
{
    return kind >= JIT_AVX2 ? jit_wide_batch(kind) : 0;
}

/* Bytes from one context's inputs to the next's in a batched call: a row of
 * the kind's input format, rounded up to 64 bytes. */
int
jit_batch_in_stride(enum jit_kind kind, const struct jit_layer *l)
{
    return (l->cols * jit_in_bytes(kind, l->signed_in) + 63) & ~63;
}

/* Bytes from one context's outputs to the next's: jit_out_rows outputs
 * (requantized, or int32 logits), rounded up to 64 bytes. So a layer's
 * output stride is the next layer's input stride. */
int
jit_batch_out_stride(enum jit_kind kind, const struct jit_layer *l)
{
    return (jit_out_rows(kind, l->rows) * (l->mult ? jit_out_bytes(kind) : 4) + 63) & ~63;
}

/* The bytes of the batched code's packed copy of layer l (jit_batch_pack). */
size_t
jit_batch_pack_size(enum jit_kind kind, const struct jit_layer *l)
{
    return jit_batch(kind) ? jit_wide_batch_pack_size(kind, l) : 0;
}

/* Pack layer l for the kind's batched code (64-byte aligned, as jit_pack).
 * Returns 0, or -1 if the kind has no batched form or cannot run this layer
 * exactly. */
int
jit_batch_pack(enum jit_kind kind, const struct jit_layer *l, void *packed)
{
    return jit_batch(kind) ? jit_wide_batch_pack(kind, l, packed) : -1;
}

/* Compile the batched code of layer l at j's current position, from its
 * batched packed copy; the kind must have a batched form. Returns the
 * code's offset in j's buffer. */
size_t
jit_compile_batch(struct jit *j, enum jit_kind kind, const struct jit_layer *l, const void *packed)
{
    size_t start = j->len;
    jit_wide_batch_layer(j, kind, l, packed);
    return start;
}
