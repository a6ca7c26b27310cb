/* Kernel-wide declarations: the boot order's functions, the console,
 * power-off codes and the few C library routines a freestanding kernel needs.
 */
#ifndef KERNEL_H
#define KERNEL_H

/* How a run ends: poweroff(EXIT_...) prints `[power] off: WORD` and writes
 * the value to QEMU's isa-debug-exit port; QEMU then exits with (v << 1) | 1.
 * WORD is the name below in lower case, `_` read as a space. The grader reads
 * these values from here. A triple fault makes QEMU exit 0 under -no-reboot,
 * so 0 never means success. */
#define EXIT_OK           0x10 /* exit status 33: the stage finished */
#define EXIT_PANIC        0x11 /* exit status 35: panic() */
#define EXIT_BOOT_FAILURE 0x12 /* exit status 37: a boot check failed */
#define EXIT_DOUBLE_FAULT 0x13 /* exit status 39: a double fault */

#ifndef __ASSEMBLER__
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* early.c: console output that works before a console driver is installed. */
void early_putc(char c);
extern void (*con_sink)(char c); /* where con_putc sends characters: early_putc, then lab 02's serial_putc */
void con_putc(char c);
void con_puts(const char *s);
void con_putdec(uint64_t v);
void con_puthex(uint64_t v, int digits);

/* power.c: print the final line and switch the machine off. Never returns. */
__attribute__((noreturn)) void poweroff(int exit_value);

/* cmdline.c: the kernel command line, as `key=value` words. */
void cmdline_init(const char *cmdline);
const char *cmdline_get(const char *key);
uint64_t cmdline_seed(void);
uint64_t seed_next(uint64_t *state);
int test_selected(const char *name);
int test_named(const char *name);
int monitor_wanted(const char *point);

/* string.c */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* Linker-script symbols (kernel.ld): use their addresses, never their values. */
extern char __kernel_start[], __kernel_end[];
extern char __text_start[], __text_end[];
extern char __rodata_start[], __rodata_end[];
extern char __data_start[], __data_end[];
extern char __bss_start[], __bss_end[];
extern char __stack_bottom[], __stack_top[];

void kmain(uint32_t magic, uint64_t mbi);
#endif /* __ASSEMBLER__ */
#endif
