/* Encoding instructions by hand: the REX prefix and the memory operand
 * (ModRM, SIB, displacement). Intel SDM vol. 2A, 2.1-2.2 and tables 2-2, 2-3.
 */
#include "jit.h"

/* void jit_rex(struct jit *j, int w, int reg, int index, int base)
 *
 * Contract: emit a REX prefix 0100WRXB when one is needed, nothing
 * otherwise: W for a 64-bit operand size (w != 0), R = bit 3 of reg, X = bit
 * 3 of index, B = bit 3 of base (or of the rm register). A register argument
 * of JIT_NOREG counts as 0. Needed means: any of W, R, X, B is 1.
 */
void
jit_rex(struct jit *j, int w, int reg, int index, int base)
{
    // LAB 6: your code here.
    int r = reg > 0 && (reg & 8), x = index > 0 && (index & 8), b = base > 0 && (base & 8);
    if (w || r || x || b)
        jit_emit8(j, (uint8_t)(0x40 | (w ? 8 : 0) | (r ? 4 : 0) | (x ? 2 : 0) | (b ? 1 : 0)));
    // LAB 6: end of your code.
}

/* void jit_modrm_mem(struct jit *j, int reg, int base, int index, int scale, int32_t disp)
 *
 * Contract: emit the ModRM byte, and SIB and displacement if needed, for the
 * memory operand [base + index * scale + disp], with `reg` (its low 3 bits)
 * in ModRM.reg. scale is 1, 2, 4 or 8; index is JIT_NOREG or any register
 * but RSP; base is JIT_NOREG (then the address is index*scale + disp32) or
 * any register. The rules, in the order they apply:
 *   - no base: mod 00, rm 100, SIB base 101, then disp32 (always 4 bytes);
 *   - mod: 00 if disp is 0 and base's low bits are not 101 (RBP, R13 need a
 *     displacement), 01 if disp fits in a signed byte (disp8), else 10 (disp32);
 *   - a SIB byte (rm 100) when there is an index, or base's low bits are 100
 *     (RSP, R12); SIB = scale bits (1:00 2:01 4:10 8:11) | index (100: none) | base;
 *   - otherwise rm = base's low 3 bits.
 */
void
jit_modrm_mem(struct jit *j, int reg, int base, int index, int scale, int32_t disp)
{
    // LAB 6: your code here.
    int ss = scale == 8 ? 3 : scale == 4 ? 2 : scale == 2 ? 1 : 0;
    int idx = index == JIT_NOREG ? 4 : index & 7;
    if (base == JIT_NOREG) {
        jit_emit8(j, (uint8_t)(((reg & 7) << 3) | 4));
        jit_emit8(j, (uint8_t)((ss << 6) | (idx << 3) | 5));
        jit_emit32(j, (uint32_t)disp);
        return;
    }
    int mod = (disp == 0 && (base & 7) != 5) ? 0 : (disp >= -128 && disp <= 127) ? 1 : 2;
    if (index != JIT_NOREG || (base & 7) == 4) {
        jit_emit8(j, (uint8_t)((mod << 6) | ((reg & 7) << 3) | 4));
        jit_emit8(j, (uint8_t)((ss << 6) | (idx << 3) | (base & 7)));
    } else {
        jit_emit8(j, (uint8_t)((mod << 6) | ((reg & 7) << 3) | (base & 7)));
    }
    if (mod == 1)
        jit_emit8(j, (uint8_t)disp);
    else if (mod == 2)
        jit_emit32(j, (uint32_t)disp);
    // LAB 6: end of your code.
}
