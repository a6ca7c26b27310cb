/* Every VEX and EVEX instruction form the JIT emits, with registers that
 * set each inverted bit (R, X, B, R', V', vvvv) and displacements on both
 * sides of each disp8 and disp8*N limit, and the text llvm-objdump -M intel
 * must print for it (the encoder test).
 */
#include "native.h"

enum { RVM, RM, MR, VMI, MRI }; /* operand orders: reg vvvv rm | reg rm | rm reg | vvvv rm imm | rm reg imm */

struct vform {
    const char *name;
    const struct jit_vop *op;
    int vl, shape;
    int rm_vl;         /* register size of rm (a register rm), or -1: as vl */
    const char *msize; /* memory operand size, or NULL: as vl */
};

static const char *const VNAME[3] = {"xmm", "ymm", "zmm"};
static const char *const MNAME[3] = {"xmmword", "ymmword", "zmmword"};

static const struct vform FORMS[] = {{"vpxor", &JIT_VPXOR, JIT_Y, RVM, -1, NULL},
                                     {"vpbroadcastd", &JIT_VPBROADCASTD, JIT_Y, RM, JIT_X, "dword"},
                                     {"vpmaddubsw", &JIT_VPMADDUBSW, JIT_Y, RVM, -1, NULL},
                                     {"vpmaddwd", &JIT_VPMADDWD, JIT_Y, RVM, -1, NULL},
                                     {"vpaddd", &JIT_VPADDD, JIT_Y, RVM, -1, NULL},
                                     {"{vex} vpdpbusd", &JIT_VPDPBUSD, JIT_Y, RVM, -1, NULL},
                                     {"vpmaxsd", &JIT_VPMAXSD, JIT_Y, RVM, -1, NULL},
                                     {"vpminsd", &JIT_VPMINSD, JIT_Y, RVM, -1, NULL},
                                     {"vpmulld", &JIT_VPMULLD, JIT_Y, RVM, -1, NULL},
                                     {"vpsrld", &JIT_VPSRLD_IMM, JIT_Y, VMI, -1, NULL},
                                     {"vextracti128", &JIT_VEXTRACTI128, JIT_Y, MRI, JIT_X, "xmmword"},
                                     {"vpackusdw", &JIT_VPACKUSDW, JIT_X, RVM, -1, NULL},
                                     {"vpackuswb", &JIT_VPACKUSWB, JIT_X, RVM, -1, NULL},
                                     {"vmovq", &JIT_VMOVQ_STORE, JIT_X, MR, -1, "qword"},
                                     {"vmovdqu", &JIT_VMOVDQU_LOAD, JIT_Y, RM, -1, NULL},
                                     {"vmovdqu", &JIT_VMOVDQU_STORE, JIT_Y, MR, -1, NULL},
                                     {"vpxord", &JIT_EVPXORD, JIT_Z, RVM, -1, NULL},
                                     {"vpbroadcastd", &JIT_EVPBROADCASTD, JIT_Z, RM, JIT_X, "dword"},
                                     {"vpaddd", &JIT_EVPADDD, JIT_Z, RVM, -1, NULL},
                                     {"vpaddd", &JIT_EVPADDD, JIT_X, RVM, -1, NULL},
                                     {"vpdpbusd", &JIT_EVPDPBUSD, JIT_Z, RVM, -1, NULL},
                                     {"vpdpbusd", &JIT_EVPDPBUSD, JIT_Y, RVM, -1, NULL},
                                     {"vpmaxsd", &JIT_EVPMAXSD, JIT_Z, RVM, -1, NULL},
                                     {"vpminsd", &JIT_EVPMINSD, JIT_Z, RVM, -1, NULL},
                                     {"vpmulld", &JIT_EVPMULLD, JIT_Z, RVM, -1, NULL},
                                     {"vpsrld", &JIT_EVPSRLD_IMM, JIT_Z, VMI, -1, NULL},
                                     {"vpmovdb", &JIT_EVPMOVDB_STORE, JIT_Z, MR, JIT_X, "xmmword"},
                                     {"vmovdqu32", &JIT_EVMOVDQU32_LOAD, JIT_Z, RM, -1, NULL},
                                     {"vmovdqu32", &JIT_EVMOVDQU32_STORE, JIT_Z, MR, -1, NULL}};

/* One form, with the register rm (rm >= 0) or the memory operand base,
 * index, scale, disp (rm < 0); rm_text is that operand as printed. */
static void
emit_form(struct jit *j, FILE *txt, const struct vform *f, int reg, int vvvv, const char *rm_text, int rm, int base,
          int index, int scale, int32_t disp)
{
    char r[16], v[16];
    int ext = f->shape == VMI ? 2 : reg; /* vpsrld: /2 in ModRM.reg */
    if (f->shape == RM || f->shape == MR || f->shape == MRI)
        vvvv = JIT_NOREG;
    if (rm < 0)
        jit_v_mem(j, f->op, f->vl, ext, vvvv, base, index, scale, disp);
    else
        jit_v_rr(j, f->op, f->vl, ext, vvvv, rm);
    snprintf(r, sizeof r, "%s%d", VNAME[f->vl], reg);
    snprintf(v, sizeof v, "%s%d", VNAME[f->vl], vvvv);
    switch (f->shape) {
    case RVM: fprintf(txt, "%s %s, %s, %s\n", f->name, r, v, rm_text); break;
    case RM: fprintf(txt, "%s %s, %s\n", f->name, r, rm_text); break;
    case MR: fprintf(txt, "%s %s, %s\n", f->name, rm_text, r); break;
    case VMI:
        jit_emit8(j, 24);
        fprintf(txt, "%s %s, %s, 24\n", f->name, v, rm_text);
        break;
    default:
        jit_emit8(j, 1);
        fprintf(txt, "%s %s, %s, 1\n", f->name, rm_text, r);
        break;
    }
}

/* Register forms: triples that set and clear every register bit. */
static void
encode_registers(struct jit *j, FILE *txt, const struct vform *f)
{
    static const int regs[][3] = {{0, 1, 2},    {8, 15, 7},  {15, 0, 9},  {3, 12, 14},
                                  {16, 17, 31}, {31, 24, 8}, {7, 30, 16}, {23, 5, 19}};
    int top = f->op->evex ? 8 : 4;
    if (f->op == &JIT_VMOVQ_STORE || f->shape == RM)
        return; /* used with memory only */
    for (int i = 0; i < top; i++) {
        char rm[16];
        snprintf(rm, sizeof rm, "%s%d", VNAME[f->rm_vl >= 0 ? f->rm_vl : f->vl], regs[i][2]);
        emit_form(j, txt, f, regs[i][0], regs[i][1], rm, regs[i][2], JIT_NOREG, JIT_NOREG, 1, 0);
    }
}

/* Memory forms: bases that need a SIB or a displacement, indexes with X set,
 * and displacements around disp8 and disp8*N (N = 4, 16, 32 or 64 here). */
static void
encode_memory(struct jit *j, FILE *txt, const struct vform *f)
{
    static const int bases[] = {JIT_NOREG, RAX, RSP, RBP, RDI, R9, R12, R13, R15};
    static const int indexes[] = {JIT_NOREG, RCX, R13};
    static const int32_t disps[] = {0,   1,    -4,   4,    16,   60,   64,    -64,   127,
                                    128, -128, -129, 4096, 8128, 8192, -8192, -8256, 0x12345678};
    int n = 0, top = f->op->evex ? 32 : 16;
    if (f->shape == VMI || f->shape == MRI)
        return; /* used with registers only */
    for (unsigned b = 0; b < sizeof bases / sizeof *bases; b++)
        for (unsigned i = 0; i < sizeof indexes / sizeof *indexes; i++)
            for (int s = 1; s <= 8; s *= 8)
                for (unsigned d = 0; d < sizeof disps / sizeof *disps; d++) {
                    char m[96], rm[128];
                    if (indexes[i] == JIT_NOREG && s > 1)
                        continue;
                    int reg = (n * 7) % top, vvvv = (n * 5 + 3) % top;
                    n++;
                    mem_text(m, sizeof m, bases[b], indexes[i], s, disps[d]);
                    snprintf(rm, sizeof rm, "%s ptr %s", f->msize ? f->msize : MNAME[f->vl], m);
                    emit_form(j, txt, f, reg, vvvv, rm, -1, bases[b], indexes[i], s, disps[d]);
                }
}

/* Emit every vector form into j and its intended text into txt. */
void
encode_vector(struct jit *j, FILE *txt)
{
    for (unsigned k = 0; k < sizeof FORMS / sizeof *FORMS; k++) {
        encode_registers(j, txt, &FORMS[k]);
        encode_memory(j, txt, &FORMS[k]);
    }
    jit_vzeroupper(j);
    fprintf(txt, "vzeroupper\n");
}
