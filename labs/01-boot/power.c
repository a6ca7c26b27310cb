/* Powering off: print the final line, let the UART drain, then try each
 * emulator's exit in turn. QEMU: isa-debug-exit. Bochs: port 0x8900.
 * Then ACPI (PM1a control, SLP_EN), and if all else fails, halt.
 */
#include "kernel.h"
#include "memlayout.h"
#include "uart.h"
#include "x86.h"

#define ACPI_SLP_EN        0x2000 /* PM1a control: sleep enable, type 0 (S5) */
#define POWER_WAIT_SECONDS 5      /* the grader answers at once; a console that sends nothing gets no answer */

static void
power_puts(const char *s)
{
    while (*s)
        early_putc(*s++);
}

static const char *
power_reason(int exit_value)
{
    switch (exit_value) {
    case EXIT_OK: return "ok";
    case EXIT_PANIC: return "panic";
    case EXIT_BOOT_FAILURE: return "boot failure";
    case EXIT_DOUBLE_FAULT: return "double fault";
    default: return "unknown";
    }
}

__attribute__((always_inline)) static inline uint8_t
power_rtc_seconds(void)
{
    outb(RTC_INDEX_PORT, 0);
    return inb(RTC_DATA_PORT);
}

/* With `monitor=power` on the command line, wait for one byte on COM1: the
 * grader pauses the machine and reads its registers and memory through
 * QEMU's monitor meanwhile (what the kernel's lines say is checked against
 * what is there). A grader that never saw the line (the UART sends nothing)
 * never answers: after POWER_WAIT_SECONDS of the real-time clock, go on.
 * Not inlined, so that the grader finds the CPU inside it. */
__attribute__((noinline)) static void
power_wait_for_grader(void)
{
    power_puts("[power] waiting for the grader\n");
    uint8_t last = power_rtc_seconds();
    int ticks = 0;
    while ((inb(COM1_PORT + UART_LSR) & LSR_DR) == 0 && ticks < POWER_WAIT_SECONDS) {
        uint8_t now = power_rtc_seconds();
        ticks += now != last;
        last = now;
    }
    (void)inb(COM1_PORT + UART_RBR);
}

/* Print "[power] off: <reason>" and switch off. The lines are written with
 * early_putc so that they appear even when a later console is broken. */
void
poweroff(int exit_value)
{
    if (monitor_wanted("power"))
        power_wait_for_grader();
    power_puts("[power] off: ");
    power_puts(power_reason(exit_value));
    power_puts("\n");
    /* Bochs models the baud rate: powering off now would lose the tail. */
    while ((inb(COM1_PORT + UART_LSR) & LSR_TEMT) == 0)
        ;
    outl(QEMU_EXIT_PORT, (uint32_t)exit_value);
    for (const char *p = "Shutdown"; *p; p++)
        outb(BOCHS_SHUTDOWN_PORT, (uint8_t)*p);
    outw(ACPI_PM1A_QEMU, ACPI_SLP_EN);
    outw(ACPI_PM1A_BOCHS, ACPI_SLP_EN);
    halt_forever();
}
