/* The 16550 UART on COM1 (base port COM1_PORT, memlayout.h): its registers
 * and bits, as the PC16550D datasheet's "Register Summary" (table 2) names
 * them. Offsets are from the base port; which register an offset reaches
 * depends on LCR.DLAB. Usable from C and from .S files.
 */
#ifndef UART_H
#define UART_H

#define UART_RBR     0    /* receive buffer (read, DLAB=0) */
#define UART_THR     0    /* transmit holding (write, DLAB=0) */
#define UART_DLL     0    /* divisor latch, low byte (DLAB=1) */
#define UART_IER     1    /* interrupt enable (DLAB=0) */
#define UART_DLM     1    /* divisor latch, high byte (DLAB=1) */
#define UART_IIR     2    /* interrupt identification (read) */
#define IIR_FIFO_ON  0xc0 /*   both bits set: FIFOs enabled */
#define UART_FCR     2    /* FIFO control (write) */
#define FCR_ENABLE   0x01 /*   enable both FIFOs */
#define FCR_CLEAR_RX 0x02 /*   empty the receive FIFO */
#define FCR_CLEAR_TX 0x04 /*   empty the transmit FIFO */
#define FCR_TRIG_14  0xc0 /*   receive interrupt at 14 bytes */
#define UART_LCR     3    /* line control */
#define LCR_8N1      0x03 /*   8 data bits, no parity, 1 stop bit */
#define LCR_DLAB     0x80 /*   divisor latch access */
#define UART_MCR     4    /* modem control */
#define MCR_DTR      0x01 /*   data terminal ready */
#define MCR_RTS      0x02 /*   request to send */
#define MCR_OUT2     0x08 /*   auxiliary output 2 (gates the IRQ line) */
#define MCR_LOOP     0x10 /*   loopback: transmitter feeds the receiver */
#define UART_LSR     5    /* line status */
#define LSR_DR       0x01 /*   data ready: a byte can be read */
#define LSR_THRE     0x20 /*   transmit holding register empty */
#define LSR_TEMT     0x40 /*   transmitter empty: holding and shift register */

#define UART_CLOCK_DIV 115200 /* baud = UART_CLOCK_DIV / divisor */
#endif
