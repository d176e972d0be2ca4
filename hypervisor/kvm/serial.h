/* A 16550A UART (COM1: 8 ports at LAYOUT_COM1, GSI 4) as the guest's
 * console.  ../shared/specs/microvm.md section 3; register model and reset
 * values as rust-vmm's vm-superio (Firecracker, cloud-hypervisor).
 *
 * A "virtual wire": a THR write goes straight to out_fd, so LSR always
 * reports THRE|TEMT and Linux's polling console path never waits.  Bytes
 * from in_fd (optional) go into a 64-byte receive FIFO; in_fd is only read
 * while the FIFO has room (the I/O thread stops watching it when the FIFO is
 * full and the guest's RBR reads turn it back on), so host input is never
 * lost to an overrun.
 *
 * Interrupts are edges on irq_fd (an eventfd the VMM binds to GSI 4 with
 * KVM_IRQFD): one 8-byte write per new event of an enabled source (spec
 * section 3, "a new rising edge for each new event").  THR-empty follows
 * vm-superio: raised after each THR write and when IER bit 1 goes 0 -> 1
 * while IER bit 1 is set, cleared by the IIR read that reports it or by the
 * next THR write.  MCR OUT2 does not gate the line (vm-superio does not
 * either).
 *
 * Threads: serial_rw() runs on vCPU threads, the input handler on the I/O
 * thread; one mutex covers the state.  The fds stay the caller's: serial_free
 * closes none of them.  Call serial_free only when the I/O thread no longer
 * runs (it may be inside the input handler otherwise). */
#ifndef KR_VMM_SERIAL_H
#define KR_VMM_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kr/error.h"
#include "evloop.h"

#define SERIAL_NR_PORTS 8u
#define SERIAL_FIFO_SIZE 64u	/* what Linux's 16550A autodetection expects */

/* Register offsets (Linux include/uapi/linux/serial_reg.h). */
#define SERIAL_RBR_THR	0	/* DLAB 0: receive / transmit; DLAB 1: DLL */
#define SERIAL_IER	1	/* DLAB 0; DLAB 1: DLM */
#define SERIAL_IIR_FCR	2	/* read IIR, write FCR */
#define SERIAL_LCR	3
#define SERIAL_MCR	4
#define SERIAL_LSR	5
#define SERIAL_MSR	6
#define SERIAL_SCR	7

#define SERIAL_IER_RDI	0x01	/* received data available */
#define SERIAL_IER_THRI	0x02	/* transmit holding register empty */
#define SERIAL_IER_RLSI	0x04	/* receiver line status */
#define SERIAL_IER_MSI	0x08	/* modem status */

#define SERIAL_IIR_NONE	0x01
#define SERIAL_IIR_MSI	0x00
#define SERIAL_IIR_THRI	0x02
#define SERIAL_IIR_RDI	0x04
#define SERIAL_IIR_RLSI	0x06
#define SERIAL_IIR_FIFO	0xc0	/* "FIFOs enabled": identifies a 16550A */

#define SERIAL_FCR_CLEAR_RX 0x02
#define SERIAL_LCR_DLAB	0x80
#define SERIAL_MCR_DTR	0x01
#define SERIAL_MCR_RTS	0x02
#define SERIAL_MCR_OUT1	0x04
#define SERIAL_MCR_OUT2	0x08
#define SERIAL_MCR_LOOP	0x10

#define SERIAL_LSR_DR	0x01	/* data ready */
#define SERIAL_LSR_OE	0x02	/* overrun */
#define SERIAL_LSR_THRE	0x20
#define SERIAL_LSR_TEMT	0x40

#define SERIAL_MSR_DCTS	0x01
#define SERIAL_MSR_DDSR	0x02
#define SERIAL_MSR_TERI	0x04
#define SERIAL_MSR_DDCD	0x08
#define SERIAL_MSR_CTS	0x10
#define SERIAL_MSR_DSR	0x20
#define SERIAL_MSR_RI	0x40
#define SERIAL_MSR_DCD	0x80

struct serial;

struct serial_stats {
	uint64_t tx_bytes;	/* bytes the guest transmitted (not loopback) */
	uint64_t tx_dropped;	/* of those, not written: out_fd full or gone */
	uint64_t rx_bytes;	/* bytes put into the receive FIFO */
	uint64_t rx_overruns;	/* bytes lost to a full FIFO (loopback only) */
	bool tx_started;	/* first_tx is valid */
	struct timespec first_tx;	/* CLOCK_MONOTONIC at the first THR byte */
};

/* out_fd: where transmitted bytes go, -1 to discard them.  Written from the
 * vCPU thread: a regular file, or a non-blocking pipe/socket/tty (when it
 * is full the byte is dropped and counted; a blocking fd whose reader
 * stalls would stall the vCPU).  A pipe whose reader is gone raises SIGPIPE
 * unless the process ignores it, as the VMM does.
 * in_fd: host input (-1: none), watched in ev while the FIFO has room; ev
 * may be NULL when in_fd is -1.  An in_fd epoll refuses (a regular file) is
 * an error.
 * irq_fd: eventfd for the interrupt line (-1: no interrupts; the polling
 * console still works). */
struct serial *serial_new(int out_fd, int in_fd, int irq_fd, struct evloop *ev,
			  struct kr_err *err);
void serial_free(struct serial *s);

/* bus_rw_fn for the port range (opaque = the struct serial, offset 0..7).
 * Registers are one byte wide; a wider access is handled as consecutive
 * one-byte accesses (QEMU does the same), bytes past offset 7 read 0xff. */
void serial_rw(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
	       bool is_write);

/* Called once, on the vCPU thread and without the serial's lock, after the
 * guest's first transmitted byte was written (boot-time benchmarks: "first
 * byte out").  Set it before the vCPUs run. */
void serial_set_first_tx_cb(struct serial *s, void (*fn)(void *ctx),
			    void *ctx);

/* Feed host input directly (instead of or besides in_fd): as many bytes as
 * the FIFO has room for; returns that count.  Raises the RX interrupt. */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t len);

void serial_get_stats(struct serial *s, struct serial_stats *st);

#endif
