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
    (void)v, (void)base, (void)neg, (void)width, (void)zero;
    return 0;
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
    con_puts(fmt); /* prints the conversions unreplaced */
    (void)ap;
    return 0;
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
    (void)file, (void)line, (void)fmt;
    // LAB 2: end of your code.
    poweroff(EXIT_PANIC);
}
