/* A small x86-64 code emitter and the JIT that compiles the model's layers,
 * with their shapes and constants folded into the code. Encodings: Intel SDM
 * vol. 2A, chapter 2 (prefixes, REX, ModRM, SIB, displacement; VEX in 2.3,
 * EVEX in 2.7 of recent editions, 2.6 of older ones).
 *
 *  legacy:  [66] [REX 0100WRXB] opcode [ModRM mod|reg|rm] [SIB scale|index|base] [disp8/32] [imm]
 *  VEX:     C5 RvvvvLpp | C4 RXBmmmmm WvvvvLpp     opcode ModRM [SIB] [disp8/32] [imm]
 *  EVEX:    62 RXBR'00mm Wvvvv1pp zL'Lb V'aaa        opcode ModRM [SIB] [disp8*N/32] [imm]
 *
 * This header is also compiled for Linux user space (the encoder test and
 * the native benchmark), so it needs nothing from the kernel.
 */
#ifndef JIT_H
#define JIT_H
#include <stddef.h>
#include <stdint.h>

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
#define XMM(n)    (n)  /* xmm/ymm/zmm registers use the same numbers (0..31) */
#define JIT_NOREG (-1) /* no base or no index in a memory operand */

struct jit {
    uint8_t *buf;
    size_t len, cap;
    int overflow; /* set when an emit did not fit */
};

/* jit_encode.c (LAB 6) */
void jit_rex(struct jit *j, int w, int reg, int index, int base);
void jit_modrm_mem(struct jit *j, int reg, int base, int index, int scale, int32_t disp);

/* jit_seal.c (LAB 6): the kernel's only, the native harness seals with mprotect */
int jit_seal(void *code, uint64_t len);

/* jit.c: bytes and legacy instructions */
void jit_init(struct jit *j, void *buf, size_t cap);
void jit_emit8(struct jit *j, uint8_t b);
void jit_emit32(struct jit *j, uint32_t v);
void jit_emit64(struct jit *j, uint64_t v);
void jit_op_mem(struct jit *j, int p66, int w, const uint8_t *op, int nop, int reg, int base, int index, int scale,
                int32_t disp);
void jit_op_rr(struct jit *j, int p66, int w, const uint8_t *op, int nop, int reg, int rm);
void jit_mov_imm64(struct jit *j, int reg, uint64_t v);
void jit_add_imm32(struct jit *j, int reg, int32_t v);
#define JIT_OP(...) (const uint8_t[]){__VA_ARGS__}, (int)sizeof((const uint8_t[]){__VA_ARGS__})

/* jit.c: VEX and EVEX instructions. A jit_vop names one opcode in one map
 * with its implied prefix; the vector length is chosen per use. */
enum { JIT_PP_NONE, JIT_PP_66, JIT_PP_F3, JIT_PP_F2 };       /* the implied legacy prefix */
enum { JIT_MAP_0F = 1, JIT_MAP_0F38 = 2, JIT_MAP_0F3A = 3 }; /* the implied escape bytes */
enum { JIT_X, JIT_Y, JIT_Z };                                /* 128, 256, 512 bits */
struct jit_vop {
    uint8_t evex, pp, map, w, op;
    int8_t n; /* EVEX disp8*N: N bytes if > 0, else (vector bytes) >> -n */
};
void jit_vex(struct jit *j, int vl, int pp, int map, int w, int reg, int vvvv, int index, int base);
void jit_evex(struct jit *j, int vl, int pp, int map, int w, int reg, int vvvv, int x, int b);
void jit_v_mem(struct jit *j, const struct jit_vop *op, int vl, int reg, int vvvv, int base, int index, int scale,
               int32_t disp);
void jit_v_rr(struct jit *j, const struct jit_vop *op, int vl, int reg, int vvvv, int rm);
void jit_vzeroupper(struct jit *j);
extern const struct jit_vop JIT_VPXOR, JIT_VPBROADCASTD, JIT_VPMADDUBSW, JIT_VPMADDWD, JIT_VPADDD, JIT_VPDPBUSD,
    JIT_VPMAXSD, JIT_VPMINSD, JIT_VPMULLD, JIT_VPSRLD_IMM, JIT_VEXTRACTI128, JIT_VPACKUSDW, JIT_VPACKUSWB,
    JIT_VMOVQ_STORE, JIT_VMOVDQU_LOAD, JIT_VMOVDQU_STORE;
extern const struct jit_vop JIT_EVPXORD, JIT_EVPBROADCASTD, JIT_EVPADDD, JIT_EVPDPBUSD, JIT_EVPMAXSD, JIT_EVPMINSD,
    JIT_EVPMULLD, JIT_EVPSRLD_IMM, JIT_EVPMOVDB_STORE, JIT_EVMOVDQU32_LOAD, JIT_EVMOVDQU32_STORE;

/* The ways to run a layer, narrowest first. The wide kinds need CPUID's
 * permission and the OS's (simd.h); every kind computes the same numbers. */
enum jit_kind { JIT_SCALAR, JIT_SSE2, JIT_AVX2, JIT_AVX_VNNI, JIT_AVX512_VNNI, JIT_KINDS };
extern const char *const jit_kind_name[JIT_KINDS];

/* One layer of the model: out[i] = bias[i] + sum_j w[i][j] * in[j], then
 * requantized to 0..127 when mult != 0 (else int32 out). Inputs are in
 * -127..127 when signed_in (layer 1, the embeddings), else in 0..127. */
struct jit_layer {
    const int8_t *w;     /* [rows][cols] */
    const int32_t *bias; /* [rows] */
    int rows, cols;
    int64_t mult;
    int signed_in;
};

/* Compiled layers: void layer(const void *in, void *out), in and out in the
 * kind's formats below. */
typedef void (*jit_layer_fn)(const void *in, void *out);
size_t jit_pack_size(enum jit_kind kind, const struct jit_layer *l);
int jit_pack(enum jit_kind kind, const struct jit_layer *l, void *packed);
size_t jit_compile_layer(struct jit *j, enum jit_kind kind, const struct jit_layer *l, const void *packed);
int jit_in_bytes(enum jit_kind kind, int signed_in);
int jit_out_bytes(enum jit_kind kind);
int jit_out_rows(enum jit_kind kind, int rows);

/* Batched layers: the same void layer(const void *in, void *out) for
 * jit_batch(kind) contexts in one call, each weight loaded once for all of
 * them. Context c's inputs start at in + c * jit_batch_in_stride, its
 * outputs at out + c * jit_batch_out_stride, in the kind's formats above.
 * Only the wide kinds have a batched form: jit_batch is 0 for the others. */
#define JIT_BATCH_MAX 8 /* no kind batches more contexts than this */
int jit_batch(enum jit_kind kind);
int jit_batch_in_stride(enum jit_kind kind, const struct jit_layer *l);
int jit_batch_out_stride(enum jit_kind kind, const struct jit_layer *l);
size_t jit_batch_pack_size(enum jit_kind kind, const struct jit_layer *l);
int jit_batch_pack(enum jit_kind kind, const struct jit_layer *l, void *packed);
size_t jit_compile_batch(struct jit *j, enum jit_kind kind, const struct jit_layer *l, const void *packed);

/* jit_wide.c: the AVX2, AVX-VNNI and AVX-512 VNNI kinds */
size_t jit_wide_pack_size(enum jit_kind kind, const struct jit_layer *l);
int jit_wide_pack(enum jit_kind kind, const struct jit_layer *l, void *packed);
void jit_wide_layer(struct jit *j, enum jit_kind kind, const struct jit_layer *l, const void *packed);
int jit_wide_rows(enum jit_kind kind);
int jit_wide_batch(enum jit_kind kind);
size_t jit_wide_batch_pack_size(enum jit_kind kind, const struct jit_layer *l);
int jit_wide_batch_pack(enum jit_kind kind, const struct jit_layer *l, void *packed);
void jit_wide_batch_layer(struct jit *j, enum jit_kind kind, const struct jit_layer *l, const void *packed);
#endif
