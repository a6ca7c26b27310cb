/* Bringing up the serial console: run serial_init (LAB 2), read back what it
 * programmed, move the console to serial_putc, and the seeded self-test of
 * kprintf that the grader checks against its own computation.
 */
#include "serial.h"
#include "x86.h"
#include "memlayout.h"

int
kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kvprintf(fmt, ap);
    va_end(ap);
    return n;
}

/* Read the divisor, line control and FIFO state back from the UART. */
static void
serial_report(void)
{
    uint8_t lcr = inb(COM1_PORT + UART_LCR);
    outb(COM1_PORT + UART_LCR, lcr | LCR_DLAB);
    unsigned divisor = inb(COM1_PORT + UART_DLL) | (inb(COM1_PORT + UART_DLM) << 8);
    outb(COM1_PORT + UART_LCR, lcr);
    int fifo = (inb(COM1_PORT + UART_IIR) & IIR_FIFO_ON) == IIR_FIFO_ON;
    /* printed with the given console routines: this line tests uart.c only */
    con_puts("[serial] COM1: divisor ");
    con_putdec(divisor);
    con_puts(" (");
    con_putdec(divisor ? UART_CLOCK_DIV / divisor : 0);
    con_puts(" baud), LCR ");
    con_puthex(lcr, 2);
    con_puts(fifo ? ", FIFO on\n" : ", FIFO off\n");
}

/* The start of the line is still leaving the UART: serial_flush must wait
 * until it is all gone. Only an emulator that models the baud rate (Bochs)
 * can tell; QEMU sends every byte at once. */
static void
serial_check_flush(void)
{
    con_puts("[serial] serial_flush: "); /* bytes in flight, whatever ran before */
    serial_flush();
    uint8_t lsr = inb(COM1_PORT + UART_LSR);
    if (lsr & LSR_TEMT)
        con_puts("the transmitter is empty\n");
    else
        kprintf("FAIL: returned with LSR 0x%x, still sending: wait for LSR.TEMT, not THRE (LAB 2, uart.c)\n", lsr);
}

/* Initialise COM1; on success every later character goes through serial_putc. */
void
serial_setup(void)
{
    if (serial_init() != 0) {
        con_puts("[serial] FAIL: serial_init returned an error (LAB 2, uart.c); "
                 "staying on the early console\n");
        serial_report();
        return;
    }
    con_puts("[serial] serial_init ok, loopback byte came back\n");
    serial_report();
    con_sink = serial_putc;
    con_puts("[serial] console moved to serial_putc\n");
}

/* A format that ends in '%', followed by bytes that show up only when
 * kvprintf reads past its end. */
static const char kprintf_tail[] = "[kprintf] tail: %s %q 100%\0"
                                   "[kprintf] FAIL: kvprintf read past the end of its format";

/* The seeded values keep their top bits set, so that every run prints a
 * negative %d and %ld, and a %u and %lu that no signed type holds, whose
 * first hex digit is a letter (a, b, e or f).
 * Twin: labs/02-serial/checks.py kprintf_values computes what this prints.
 */
static void
kprintf_selftest(uint64_t seed)
{
    uint64_t st = seed;
    int32_t d = (int32_t)(uint32_t)(seed_next(&st) | 0x80000000u);
    uint32_t u = (uint32_t)seed_next(&st) | 0xa0000000u;
    int64_t ld = (int64_t)(seed_next(&st) | 1ull << 63);
    uint64_t lu = seed_next(&st) | 0xaull << 60;
    int small = (int)(seed_next(&st) % 1000);
    int neg = -(int)(seed_next(&st) % 1000) - 1;
    char word[8];
    for (int i = 0; i < 7; i++)
        word[i] = (char)('a' + seed_next(&st) % 26);
    word[7] = 0;
    char c = (char)('A' + seed_next(&st) % 26);
    void *p = (void *)(seed_next(&st) >> 16);

    kprintf("[kprintf] d=%d u=%u x=%x\n", d, u, u);
    kprintf("[kprintf] ld=%ld lu=%lu lx=%lx\n", ld, lu, lu);
    int n1 = kprintf("[kprintf] width=[%6d] zero=[%06d] neg=[%06d] nwidth=[%6d] hex=[%08x]\n", small, small, neg, neg,
                     small);
    int n2 = kprintf("[kprintf] s=%s ws=[%10s] c=%c pct=%% p=%p\n", word, word, c, p);
    kprintf("[kprintf] edges: %d %u %x %ld [%s]\n", (int32_t)0x80000000, 0u, 0u, (int64_t)0x8000000000000000ull, "");
    int n3 = kprintf(kprintf_tail, (const char *)NULL);
    kprintf(" returned %d; the width and s= lines returned %d and %d\n", n3, n1, n2);
}

/* With tests=panic, a panic whose message holds a seeded negative number:
 * printing it right takes kpanic's formatting, not only the command line.
 * Twin: labs/02-serial/checks.py panic_number draws the same number. */
void
serial_selftest(uint64_t seed)
{
    uint64_t st = seed ^ SERIAL_PANIC_FAMILY;
    int32_t check = (int32_t)(uint32_t)(seed_next(&st) | 0x80000000u);
    if (con_sink == serial_putc)
        serial_check_flush();
    if (test_selected("kprintf"))
        kprintf_selftest(seed);
    if (test_named("panic"))
        panic("deliberate panic, seed 0x%x, check %d", (uint32_t)seed, check); /* panic-test */
}
