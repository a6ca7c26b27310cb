/* The COM1 driver: programming the 16550 and sending bytes by polling.
 * PC16550D datasheet: divisor latch, line control, FIFO control, line status.
 */
#include "serial.h"
#include "x86.h"
#include "memlayout.h"

/* int serial_init(void)
 *
 * Contract: program COM1 for SERIAL_BAUD, 8N1, FIFOs on, no interrupts, then
 * prove the UART works: in loopback mode, send SERIAL_LOOPBACK_BYTE and read
 * it back. Leave loopback off and DTR, RTS and OUT2 on. Return 0, or -1 if
 * the byte did not come back (no UART there).
 * Facts: with LCR.DLAB set, offsets 0 and 1 reach the divisor latch
 * (divisor = UART_CLOCK_DIV / baud); clear DLAB by writing the final LCR.
 * In loopback, a sent byte shows up in RBR once LSR.DR is set.
 */
int
serial_init(void)
{
    // LAB 2: your code here.
    unsigned divisor = UART_CLOCK_DIV / SERIAL_BAUD;
    outb(COM1_PORT + UART_IER, 0);
    outb(COM1_PORT + UART_LCR, LCR_DLAB);
    outb(COM1_PORT + UART_DLL, divisor & 0xff);
    outb(COM1_PORT + UART_DLM, divisor >> 8);
    outb(COM1_PORT + UART_LCR, LCR_8N1);
    outb(COM1_PORT + UART_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX | FCR_TRIG_14);
    outb(COM1_PORT + UART_MCR, MCR_LOOP | MCR_RTS | MCR_OUT2);
    outb(COM1_PORT + UART_THR, SERIAL_LOOPBACK_BYTE);
    for (int spin = 0; spin < 100000 && !(inb(COM1_PORT + UART_LSR) & LSR_DR); spin++)
        ;
    if (inb(COM1_PORT + UART_RBR) != SERIAL_LOOPBACK_BYTE)
        return -1;
    outb(COM1_PORT + UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
    return 0;
    // LAB 2: end of your code.
}

/* void serial_putc(char c)
 *
 * Contract: send c on COM1, waiting first until the transmit holding
 * register is empty (LSR.THRE). Send '\n' as it is.
 */
void
serial_putc(char c)
{
    // LAB 2: your code here.
    while (!(inb(COM1_PORT + UART_LSR) & LSR_THRE))
        ;
    outb(COM1_PORT + UART_THR, (uint8_t)c);
    // LAB 2: end of your code.
}

/* void serial_flush(void)
 *
 * Contract: return once every byte sent has left the UART (LSR.TEMT):
 * the holding register and the shift register are both empty.
 */
void
serial_flush(void)
{
    // LAB 2: your code here.
    while (!(inb(COM1_PORT + UART_LSR) & LSR_TEMT))
        ;
    // LAB 2: end of your code.
}
