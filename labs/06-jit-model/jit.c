/* The emitter's byte and instruction helpers (built on jit_rex and
 * jit_modrm_mem, which you write), and the layer compiler: one function per
 * layer, its weights' address, shape and requantization constant folded in.
 * Compiled for the kernel and, unchanged, for Linux user space.
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
        jit_emit8(j, 0x66);             /* the legacy prefix goes before REX */
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

static void
jit_mov_imm64(struct jit *j, int reg, uint64_t v)     /* mov reg, imm64 */
{
    jit_rex(j, 1, JIT_NOREG, JIT_NOREG, reg);
    jit_emit8(j, (uint8_t)(0xb8 + (reg & 7)));
    jit_emit64(j, v);
}

static void
jit_add_imm32(struct jit *j, int reg, int32_t v)      /* add reg64, imm32 */
{
    jit_op_rr(j, 0, 1, JIT_OP(0x81), 0, reg);
    jit_emit32(j, (uint32_t)v);
}

/* One row's dot product into eax, the SSE2 way: 8 int16 products per pmaddwd,
 * summed into four int32 lanes of xmm0, then across the lanes. Exact: every
 * product and every sum fits in 32 bits. */
static void
jit_dot_sse2(struct jit *j, int cols)
{
    jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xef), XMM(0), XMM(0));                     /* pxor xmm0, xmm0 */
    for (int c = 0; c < cols / 8; c++) {
        jit_op_mem(j, 1, 0, JIT_OP(0x0f, 0x6f), XMM(1), RDX, JIT_NOREG, 1, 16 * c); /* movdqa xmm1, [rdx+16c] */
        jit_op_mem(j, 1, 0, JIT_OP(0x0f, 0xf5), XMM(1), RDI, JIT_NOREG, 1, 16 * c); /* pmaddwd xmm1, [rdi+16c] */
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xfe), XMM(0), XMM(1));                 /* paddd xmm0, xmm1 */
    }
    for (int shuffle = 0x4e; shuffle; shuffle = shuffle == 0x4e ? 0xb1 : 0) {
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0x70), XMM(1), XMM(0));                 /* pshufd xmm1, xmm0, imm */
        jit_emit8(j, (uint8_t)shuffle);
        jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0xfe), XMM(0), XMM(1));                 /* paddd xmm0, xmm1 */
    }
    jit_op_rr(j, 1, 0, JIT_OP(0x0f, 0x7e), XMM(0), RAX);                        /* movd eax, xmm0 */
}

/* The same dot product one multiply-add at a time, in r11d, then eax. */
static void
jit_dot_scalar(struct jit *j, int cols)
{
    jit_op_rr(j, 0, 1, JIT_OP(0x31), R11, R11);                                 /* xor r11, r11 */
    for (int c = 0; c < cols; c++) {
        jit_op_mem(j, 0, 0, JIT_OP(0x0f, 0xbf), RAX, RDX, JIT_NOREG, 1, 2 * c);   /* movsx eax, word [rdx+2c] */
        jit_op_mem(j, 0, 0, JIT_OP(0x0f, 0xbf), RCX, RDI, JIT_NOREG, 1, 2 * c);   /* movsx ecx, word [rdi+2c] */
        jit_op_rr(j, 0, 0, JIT_OP(0x0f, 0xaf), RAX, RCX);                       /* imul eax, ecx */
        jit_op_rr(j, 0, 0, JIT_OP(0x01), RAX, R11);                             /* add r11d, eax */
    }
    jit_op_rr(j, 0, 0, JIT_OP(0x89), R11, RAX);                                 /* mov eax, r11d */
}

/* acc (eax) + bias -> rax; requantized to 0..127 when mult != 0. */
static void
jit_finish_row(struct jit *j, int64_t mult)
{
    jit_op_rr(j, 0, 1, JIT_OP(0x63), RAX, RAX);                                 /* movsxd rax, eax */
    jit_op_mem(j, 0, 1, JIT_OP(0x63), R9, R8, JIT_NOREG, 1, 0);                 /* movsxd r9, [r8] */
    jit_op_rr(j, 0, 1, JIT_OP(0x01), R9, RAX);                                  /* add rax, r9 */
    if (mult == 0)
        return;
    jit_mov_imm64(j, R9, (uint64_t)mult);
    jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0xaf), RAX, R9);                            /* imul rax, r9 */
    jit_mov_imm64(j, R9, 1ull << 23);
    jit_op_rr(j, 0, 1, JIT_OP(0x01), R9, RAX);                                  /* add rax, r9 */
    jit_op_rr(j, 0, 1, JIT_OP(0xc1), 7, RAX);                                   /* sar rax, 24 */
    jit_emit8(j, 24);
    jit_op_rr(j, 0, 1, JIT_OP(0x31), R9, R9);                                   /* xor r9, r9 */
    jit_op_rr(j, 0, 1, JIT_OP(0x85), RAX, RAX);                                 /* test rax, rax */
    jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0x4c), RAX, R9);                            /* cmovl rax, r9 */
    jit_mov_imm64(j, R9, 127);
    jit_op_rr(j, 0, 1, JIT_OP(0x39), R9, RAX);                                  /* cmp rax, r9 */
    jit_op_rr(j, 0, 1, JIT_OP(0x0f, 0x4f), RAX, R9);                            /* cmovg rax, r9 */
}

/* Compile one layer at j's current position: void f(const int16_t *in, void *out).
 * out is int16 (requantized layers) or int32 (logits). Returns the code's
 * offset in j's buffer. */
size_t
jit_compile_layer(struct jit *j, enum jit_kind kind, const struct jit_layer_spec *s)
{
    size_t start = j->len;
    jit_mov_imm64(j, RDX, (uint64_t)s->weights);
    jit_mov_imm64(j, R8, (uint64_t)s->bias);
    jit_mov_imm64(j, R10, (uint64_t)s->rows);
    size_t loop = j->len;
    if (kind == JIT_SSE2)
        jit_dot_sse2(j, s->cols);
    else
        jit_dot_scalar(j, s->cols);
    jit_finish_row(j, s->mult);
    if (s->mult) {
        jit_op_mem(j, 1, 0, JIT_OP(0x89), RAX, RSI, JIT_NOREG, 1, 0);          /* mov [rsi], ax */
        jit_add_imm32(j, RSI, 2);
    } else {
        jit_op_mem(j, 0, 0, JIT_OP(0x89), RAX, RSI, JIT_NOREG, 1, 0);          /* mov [rsi], eax */
        jit_add_imm32(j, RSI, 4);
    }
    jit_add_imm32(j, RDX, 2 * s->cols);
    jit_add_imm32(j, R8, 4);
    jit_op_rr(j, 0, 1, JIT_OP(0xff), 1, R10);                                   /* dec r10 */
    jit_emit8(j, 0x0f);                                                         /* jnz loop */
    jit_emit8(j, 0x85);
    jit_emit32(j, (uint32_t)(int32_t)(loop - (j->len + 4)));
    jit_emit8(j, 0xc3);                                                         /* ret */
    return start;
}
