/* The model's arithmetic in plain C, for the native benchmark: compiled once
 * with the kernel's flags and once with clang -O3 -march=native. */
#include <stdint.h>

#ifndef MATVEC_NAME
#define MATVEC_NAME matvec_kernel_flags
#endif

/* out[i] = b[i] + sum_j w[i][j] * x[j]; requantized to 0..127 if mult != 0 */
void
MATVEC_NAME(const int8_t *w, const int16_t *x, const int32_t *b, int64_t mult, int rows, int cols, void *out)
{
    for (int i = 0; i < rows; i++) {
        int32_t acc = 0;
        for (int j = 0; j < cols; j++)
            acc += w[i * cols + j] * x[j];
        int64_t v = (int64_t)acc + b[i];
        if (mult) {
            v = (v * mult + (1ll << 23)) >> 24;
            ((int16_t *)out)[i] = (int16_t)(v < 0 ? 0 : v > 127 ? 127 : v);
        } else {
            ((int32_t *)out)[i] = (int32_t)v;
        }
    }
}
