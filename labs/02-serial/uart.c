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
    return -1;
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
    (void)c;
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
    // LAB 2: end of your code.
}
