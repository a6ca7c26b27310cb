/* A small printf for the kernel, and panic. Every character goes out through
 * con_putc, which lab 02 points at serial_putc.
 */
#include "serial.h"

/* int kprintf_number(uint64_t v, int base, int neg, int width, int zero)
 *
 * Contract: print v in base 10 or 16 (lowercase digits), preceded by '-' if
 * neg, padded on the left to at least `width` characters: with '0' after the
 * sign if zero, else with spaces before it. Return the characters printed.
 * Examples: (42, 10, 0, 5, 0) "   42"; (42, 10, 1, 5, 1) "-0042"; (0, 16, 0, 0, 0) "0".
 */
int
kprintf_number(uint64_t v, int base, int neg, int width, int zero)
{
    // LAB 2: your code here.
    char digits[24];
    int n = 0, out = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % (uint64_t)base];
        v /= (uint64_t)base;
    } while (v);
    for (int len = n + neg; !zero && len < width; len++, out++)
        con_putc(' ');
    if (neg) {
        con_putc('-');
        out++;
    }
    for (int len = n + neg; zero && len < width; len++, out++)
        con_putc('0');
    for (out += n; n > 0;)
        con_putc(digits[--n]);
    return out;
    // LAB 2: end of your code.
}

/* int kvprintf(const char *fmt, va_list ap)
 *
 * Contract: print fmt, replacing each conversion by the next argument:
 *   %d  int, signed decimal        %u  unsigned int, decimal
 *   %x  unsigned int, hexadecimal  %c  char (passed as int)
 *   %s  string; NULL prints "(null)"
 *   %p  pointer: "0x" and exactly 16 hex digits
 *   %%  a percent sign
 * A conversion may have a width ("%6d") and a '0' flag ("%08x"); %s pads
 * with spaces only. An 'l' before d, u or x ("%ld") takes a 64-bit argument.
 * Anything else after '%' is printed as it is; a '%' that ends the format is
 * printed as it is too (never read past the terminating NUL). Return the
 * characters printed.
 * Pitfall: the most negative int has no positive int: negate in 64 bits.
 */
int
kvprintf(const char *fmt, va_list ap)
{
    // LAB 2: your code here.
    int out = 0;
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            con_putc(*fmt);
            out++;
            continue;
        }
        int zero = 0, width = 0, is_long = 0;
        if (*++fmt == '0')
            zero = 1, fmt++;
        for (; *fmt >= '0' && *fmt <= '9'; fmt++)
            width = width * 10 + (*fmt - '0');
        for (; *fmt == 'l'; fmt++)
            is_long = 1;
        if (*fmt == 0)
            break;
        if (*fmt == 'd') {
            int64_t v = is_long ? va_arg(ap, int64_t) : va_arg(ap, int);
            out += kprintf_number(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, zero);
        } else if (*fmt == 'u' || *fmt == 'x') {
            uint64_t v = is_long ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            out += kprintf_number(v, *fmt == 'u' ? 10 : 16, 0, width, zero);
        } else if (*fmt == 'p') {
            con_puts("0x");
            out += 2 + kprintf_number((uint64_t)va_arg(ap, void *), 16, 0, 16, 1);
        } else if (*fmt == 's') {
            const char *s = va_arg(ap, const char *);
            s = s ? s : "(null)";
            for (int len = (int)strlen(s); len < width; len++, out++)
                con_putc(' ');
            for (; *s; s++, out++)
                con_putc(*s);
        } else if (*fmt == 'c') {
            con_putc((char)va_arg(ap, int));
            out++;
        } else {
            if (*fmt != '%')
                con_putc('%'), out++;
            con_putc(*fmt);
            out++;
        }
    }
    return out;
    // LAB 2: end of your code.
}

/* void kpanic(const char *file, int line, const char *fmt, ...)
 *
 * Contract: print one line "[panic] FILE:LINE: MESSAGE" (the message formatted
 * like kprintf), wait until the UART has sent it all, and power off with
 * EXIT_PANIC. Never returns. Called through the panic() macro of serial.h.
 */
void
kpanic(const char *file, int line, const char *fmt, ...)
{
    // LAB 2: your code here.
    va_list ap;
    kprintf("[panic] %s:%d: ", file, line);
    va_start(ap, fmt);
    kvprintf(fmt, ap);
    va_end(ap);
    kprintf("\n");
    serial_flush();
    // LAB 2: end of your code.
    poweroff(EXIT_PANIC);
}
