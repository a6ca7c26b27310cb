/* The console: every line the kernel prints goes through con_putc.
 * Until lab 02 installs its driver, characters go to COM1 by polling the
 * 16550's line status register; boot.S (early_uart_init) has set 8N1 at
 * 38400 baud, the least a strict emulator needs to send whole bytes.
 */
#include "kernel.h"
#include "memlayout.h"
#include "uart.h"
#include "x86.h"

/* Where con_putc sends characters; lab 02 points it at serial_putc. */
void (*con_sink)(char c) = early_putc;

void
early_putc(char c)
{
    while ((inb(COM1_PORT + UART_LSR) & LSR_THRE) == 0)
        ;
    outb(COM1_PORT + UART_THR, (uint8_t)c);
}

void
con_putc(char c)
{
    con_sink(c);
}

void
con_puts(const char *s)
{
    while (*s)
        con_putc(*s++);
}

void
con_putdec(uint64_t v)
{
    char buf[21];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i > 0)
        con_putc(buf[--i]);
}

/* Print v in lowercase hexadecimal with "0x" and exactly `digits` digits. */
void
con_puthex(uint64_t v, int digits)
{
    con_puts("0x");
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
        con_putc("0123456789abcdef"[(v >> shift) & 0xf]);
}
