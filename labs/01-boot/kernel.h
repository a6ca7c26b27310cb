/* Kernel-wide declarations: the boot order's functions, the console,
 * power-off codes and the few C library routines a freestanding kernel needs.
 */
#ifndef KERNEL_H
#define KERNEL_H

/* Values written to QEMU's isa-debug-exit port; QEMU exits with (v << 1) | 1.
 * A triple fault makes QEMU exit 0 under -no-reboot, so 0 never means success. */
#define EXIT_OK          0x10   /* exit status 33: the stage finished */
#define EXIT_PANIC       0x11   /* exit status 35: panic() */
#define EXIT_BOOTFAIL    0x12   /* exit status 37: a boot check failed */
#define EXIT_DOUBLEFAULT 0x13   /* exit status 39: double fault (lab 05) */

#ifndef __ASSEMBLER__
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifndef LAB
#define LAB 1                   /* the stage being built: -DLAB=N */
#endif

/* early.c: console output that works before the serial lab. */
void early_putc(char c);
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
extern char __heap_start[], __heap_end[];
extern char __stack_guard[], __stack_bottom[], __stack_top[];

void kmain(uint32_t magic, uint64_t mbi);
#endif /* __ASSEMBLER__ */
#endif
