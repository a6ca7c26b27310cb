/* A small x86-64 code emitter and the JIT that compiles the model's layers,
 * with their shapes and constants folded into the code. Encodings: Intel SDM
 * vol. 2A, chapter 2 (prefixes, REX, ModRM, SIB, displacement).
 *
 *  [66] [REX 0100WRXB] opcode [ModRM mod|reg|rm] [SIB scale|index|base] [disp8/32] [imm]
 *
 * This header is also compiled for Linux user space (the encoder test and
 * the native benchmark), so it needs nothing from the kernel.
 */
#ifndef JIT_H
#define JIT_H
#include <stddef.h>
#include <stdint.h>

enum {
    RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15,
};
#define XMM(n)    (n)               /* xmm registers use the same 0..15 numbers */
#define JIT_NOREG (-1)              /* no base or no index in a memory operand */

struct jit {
    uint8_t *buf;
    size_t len, cap;
    int overflow;                   /* set when an emit did not fit */
};

/* jit_encode.c (LAB 6) */
void jit_rex(struct jit *j, int w, int reg, int index, int base);
void jit_modrm_mem(struct jit *j, int reg, int base, int index, int scale, int32_t disp);

/* jit.c: bytes and instructions */
void jit_init(struct jit *j, void *buf, size_t cap);
void jit_emit8(struct jit *j, uint8_t b);
void jit_emit32(struct jit *j, uint32_t v);
void jit_emit64(struct jit *j, uint64_t v);
void jit_op_mem(struct jit *j, int p66, int w, const uint8_t *op, int nop, int reg, int base, int index, int scale,
                int32_t disp);
void jit_op_rr(struct jit *j, int p66, int w, const uint8_t *op, int nop, int reg, int rm);
#define JIT_OP(...) (const uint8_t[]){__VA_ARGS__}, (int)sizeof((const uint8_t[]){__VA_ARGS__})

/* Compiled layers: void layer(const int16_t *in, void *out). */
typedef void (*jit_layer_fn)(const int16_t *in, void *out);
enum jit_kind { JIT_SCALAR, JIT_SSE2 };
struct jit_layer_spec {
    const int16_t *weights;         /* [rows][cols], cols a multiple of 8, 16-byte aligned */
    const int32_t *bias;            /* [rows] */
    int rows, cols;
    int64_t mult;                   /* requantize with this multiplier, or 0: int32 out */
};
size_t jit_compile_layer(struct jit *j, enum jit_kind kind, const struct jit_layer_spec *s);
#endif
