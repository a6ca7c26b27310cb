/* The COM1 driver and the kernel's printf. The 16550's registers and bits
 * are in uart.h (PC16550D datasheet, "Register Summary").
 */
#ifndef SERIAL_H
#define SERIAL_H
#include "kernel.h"
#include "uart.h"

#define SERIAL_BAUD          115200          /* what serial_init programs */
#define SERIAL_LOOPBACK_BYTE 0xae            /* the byte serial_init sends to itself */
#define SERIAL_PANIC_FAMILY  0x70616e6963ull /* the deliberate panic's numbers: seed ^ this */

/* uart.c (LAB 2) */
int serial_init(void);
void serial_putc(char c);
void serial_flush(void);

/* kprintf.c (LAB 2) */
int kprintf_number(uint64_t v, int base, int neg, int width, int zero);
int kvprintf(const char *fmt, va_list ap);
__attribute__((noreturn)) void kpanic(const char *file, int line, const char *fmt, ...);

/* serial.c */
int kprintf(const char *fmt, ...);
void serial_setup(void);
void serial_selftest(uint64_t seed);

/* Stop the kernel with a message naming this file and line. */
#define panic(...) kpanic(__FILE__, __LINE__, __VA_ARGS__)
#endif
