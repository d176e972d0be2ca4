/* Unit tests for hypervisor/kvm/serial.c (16550A UART) and i8042.c.  The
 * tests play the guest through the bus_rw_fns, the host through pipes, and
 * KVM's irqfd through an eventfd they read: each 8-byte write the device
 * makes is one interrupt edge, so the eventfd's counter is the number of
 * edges since the last read. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "../lib/kr_test.h"
#include "bus.h"
#include "evloop.h"
#include "i8042.h"
#include "layout.h"
#include "serial.h"

static struct kr_err err;

/* Edges since the last call. */
static uint64_t edges(int efd)
{
	uint64_t v;

	return read(efd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? v : 0;
}

static int new_efd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static uint8_t rd(struct serial *s, unsigned off)
{
	uint8_t v = 0x5a;

	serial_rw(s, off, &v, 1, false);
	return v;
}

static void wr(struct serial *s, unsigned off, uint8_t v)
{
	serial_rw(s, off, &v, 1, true);
}

/* Bytes waiting in a non-blocking pipe's read end. */
static ssize_t drain(int fd, char *buf, size_t size)
{
	ssize_t n = read(fd, buf, size);

	return n < 0 && errno == EAGAIN ? 0 : n;
}

static int nb_pipe(int p[2])
{
	return pipe2(p, O_CLOEXEC | O_NONBLOCK);
}

/* A UART with a pipe for output and an eventfd for the line. */
struct rig {
	struct serial *s;
	int out[2];
	int irq;
};

static int rig_up(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	r->irq = new_efd();
	if (r->irq < 0 || nb_pipe(r->out) < 0)
		return -1;
	r->s = serial_new(r->out[1], -1, r->irq, NULL, &err);
	return r->s ? 0 : -1;
}

static void rig_down(struct rig *r)
{
	serial_free(r->s);
	close(r->out[0]);
	close(r->out[1]);
	close(r->irq);
}

/* ---- UART registers ---- */

static void test_reset_values(void)
{
	struct rig r;

	REQUIRE(rig_up(&r) == 0);
	CHECK(rd(r.s, SERIAL_IER) == 0x00);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	CHECK(rd(r.s, SERIAL_LCR) == 0x03);
	CHECK(rd(r.s, SERIAL_MCR) == 0x08);
	CHECK(rd(r.s, SERIAL_LSR) == 0x60);
	CHECK(rd(r.s, SERIAL_MSR) == 0xb0);
	CHECK(rd(r.s, SERIAL_SCR) == 0x00);
	CHECK(rd(r.s, SERIAL_RBR_THR) == 0x00);	/* empty FIFO */
	wr(r.s, SERIAL_LCR, 0x83);
	CHECK(rd(r.s, SERIAL_RBR_THR) == 0x0c);	/* DLL: 9600 baud */
	CHECK(rd(r.s, SERIAL_IER) == 0x00);	/* DLM */
	CHECK(edges(r.irq) == 0);
	rig_down(&r);
}

static void test_dlab(void)
{
	struct rig r;
	char buf[16];

	REQUIRE(rig_up(&r) == 0);
	wr(r.s, SERIAL_LCR, 0x80 | 0x03);
	CHECK(rd(r.s, SERIAL_LCR) == 0x83);
	wr(r.s, SERIAL_RBR_THR, 0x01);		/* DLL, not a byte out */
	wr(r.s, SERIAL_IER, 0x02);		/* DLM, not IER */
	CHECK(rd(r.s, SERIAL_RBR_THR) == 0x01);
	CHECK(rd(r.s, SERIAL_IER) == 0x02);
	CHECK(drain(r.out[0], buf, sizeof(buf)) == 0);
	CHECK(edges(r.irq) == 0);
	wr(r.s, SERIAL_LCR, 0x03);
	CHECK(rd(r.s, SERIAL_IER) == 0x00);	/* IER untouched */
	wr(r.s, SERIAL_IER, 0xff);
	CHECK(rd(r.s, SERIAL_IER) == 0x0f);	/* bits 0-3 only */
	wr(r.s, SERIAL_LCR, 0x83);
	CHECK(rd(r.s, SERIAL_RBR_THR) == 0x01);	/* divisor kept */
	CHECK(rd(r.s, SERIAL_IER) == 0x02);
	/* IIR is not behind DLAB. */
	CHECK((rd(r.s, SERIAL_IIR_FCR) & 0xc0) == 0xc0);
	rig_down(&r);
}

static void test_scratch_and_read_only(void)
{
	struct rig r;

	REQUIRE(rig_up(&r) == 0);
	wr(r.s, SERIAL_SCR, 0xa5);
	CHECK(rd(r.s, SERIAL_SCR) == 0xa5);
	wr(r.s, SERIAL_SCR, 0x5a);
	CHECK(rd(r.s, SERIAL_SCR) == 0x5a);
	wr(r.s, SERIAL_LSR, 0x00);		/* ignored */
	wr(r.s, SERIAL_MSR, 0x00);		/* ignored */
	CHECK(rd(r.s, SERIAL_LSR) == 0x60);
	CHECK(rd(r.s, SERIAL_MSR) == 0xb0);
	wr(r.s, SERIAL_MCR, 0xff);
	CHECK(rd(r.s, SERIAL_MCR) == 0x1f);
	rig_down(&r);
}

static int first_tx_calls;

static void on_first_tx(void *ctx)
{
	first_tx_calls++;
	*(int *)ctx = 42;
}

static void test_tx_output(void)
{
	struct rig r;
	struct serial_stats st;
	char buf[16] = { 0 };
	int ctx = 0;

	REQUIRE(rig_up(&r) == 0);
	first_tx_calls = 0;
	serial_set_first_tx_cb(r.s, on_first_tx, &ctx);
	serial_get_stats(r.s, &st);
	CHECK(!st.tx_started);
	wr(r.s, SERIAL_RBR_THR, 'h');
	wr(r.s, SERIAL_RBR_THR, 'i');
	wr(r.s, SERIAL_RBR_THR, '\n');
	CHECK(drain(r.out[0], buf, sizeof(buf)) == 3);
	CHECK(memcmp(buf, "hi\n", 3) == 0);
	CHECK(first_tx_calls == 1);
	CHECK(ctx == 42);
	serial_get_stats(r.s, &st);
	CHECK(st.tx_bytes == 3);
	CHECK(st.tx_dropped == 0);
	CHECK(st.tx_started);
	CHECK(st.first_tx.tv_sec != 0 || st.first_tx.tv_nsec != 0);
	/* THRE/TEMT stay set: the console path never waits. */
	CHECK(rd(r.s, SERIAL_LSR) == 0x60);
	/* No interrupt without IER. */
	CHECK(edges(r.irq) == 0);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	rig_down(&r);
}

static void test_tx_full_pipe_drops(void)
{
	struct rig r;
	struct serial_stats st;
	char junk[4096];
	int filled = 0;

	REQUIRE(rig_up(&r) == 0);
	REQUIRE(fcntl(r.out[1], F_SETPIPE_SZ, 4096) >= 0);
	memset(junk, 'j', sizeof(junk));
	while (write(r.out[1], junk, sizeof(junk)) > 0)
		filled++;
	REQUIRE(errno == EAGAIN);
	REQUIRE(filled >= 1);
	for (int i = 0; i < 10; i++)
		wr(r.s, SERIAL_RBR_THR, 'x');	/* must not block */
	serial_get_stats(r.s, &st);
	CHECK(st.tx_bytes == 10);
	CHECK(st.tx_dropped == 10);
	/* Room again: bytes flow again. */
	while (drain(r.out[0], junk, sizeof(junk)) > 0)
		;
	wr(r.s, SERIAL_RBR_THR, 'y');
	CHECK(drain(r.out[0], junk, sizeof(junk)) == 1);
	CHECK(junk[0] == 'y');
	serial_get_stats(r.s, &st);
	CHECK(st.tx_bytes == 11);
	CHECK(st.tx_dropped == 10);
	rig_down(&r);
}

static void test_tx_reader_gone(void)
{
	struct rig r;
	struct serial_stats st;

	REQUIRE(rig_up(&r) == 0);
	close(r.out[0]);
	r.out[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);	/* for rig_down */
	wr(r.s, SERIAL_RBR_THR, 'a');			/* EPIPE, SIGPIPE ignored */
	wr(r.s, SERIAL_RBR_THR, 'b');
	serial_get_stats(r.s, &st);
	CHECK(st.tx_bytes == 2);
	CHECK(st.tx_dropped == 2);
	rig_down(&r);
}

static void test_thre_interrupt(void)
{
	struct rig r;
	char buf[16];

	REQUIRE(rig_up(&r) == 0);
	/* THR writes with THRI off: no edge, nothing latched. */
	wr(r.s, SERIAL_RBR_THR, 'a');
	CHECK(edges(r.irq) == 0);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	/* IER bit 1 0 -> 1 while THR is empty: one edge, IIR reports THRE;
	 * reading IIR acknowledges it. */
	wr(r.s, SERIAL_IER, SERIAL_IER_THRI);
	CHECK(edges(r.irq) == 1);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc2);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	/* Rewriting the same IER is no 0 -> 1 transition. */
	wr(r.s, SERIAL_IER, SERIAL_IER_THRI);
	CHECK(edges(r.irq) == 0);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	/* Each THR write: one edge, THRE latched until IIR reports it. */
	wr(r.s, SERIAL_RBR_THR, 'b');
	wr(r.s, SERIAL_RBR_THR, 'c');
	CHECK(edges(r.irq) == 2);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc2);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	/* Masking hides the latch; unmasking raises it again. */
	wr(r.s, SERIAL_RBR_THR, 'd');
	CHECK(edges(r.irq) == 1);
	wr(r.s, SERIAL_IER, 0);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	CHECK(edges(r.irq) == 0);
	wr(r.s, SERIAL_IER, SERIAL_IER_THRI);
	CHECK(edges(r.irq) == 1);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc2);
	CHECK(drain(r.out[0], buf, sizeof(buf)) == 4);
	CHECK(memcmp(buf, "abcd", 4) == 0);
	rig_down(&r);
}

static void test_loopback(void)
{
	struct rig r;
	struct serial_stats st;
	char buf[16];

	REQUIRE(rig_up(&r) == 0);
	/* Linux's probe: MCR = LOOP | RTS | OUT2 -> MSR high nibble 0x90. */
	wr(r.s, SERIAL_MCR, SERIAL_MCR_LOOP | 0x0a);
	CHECK((rd(r.s, SERIAL_MSR) & 0xf0) == 0x90);
	wr(r.s, SERIAL_MCR, SERIAL_MCR_LOOP | SERIAL_MCR_DTR | SERIAL_MCR_OUT1);
	CHECK((rd(r.s, SERIAL_MSR) & 0xf0) == (SERIAL_MSR_DSR | SERIAL_MSR_RI));
	/* THR comes back at RBR, not at the host. */
	wr(r.s, SERIAL_RBR_THR, 'L');
	CHECK(rd(r.s, SERIAL_LSR) == 0x61);
	CHECK(rd(r.s, SERIAL_RBR_THR) == 'L');
	CHECK(rd(r.s, SERIAL_LSR) == 0x60);
	CHECK(drain(r.out[0], buf, sizeof(buf)) == 0);
	serial_get_stats(r.s, &st);
	CHECK(st.tx_bytes == 0);
	CHECK(st.rx_bytes == 1);
	/* Out of loopback: MSR back to DCD|DSR|CTS, output to the host. */
	wr(r.s, SERIAL_MCR, SERIAL_MCR_OUT2);
	CHECK((rd(r.s, SERIAL_MSR) & 0xf0) == 0xb0);
	wr(r.s, SERIAL_RBR_THR, 'H');
	CHECK(drain(r.out[0], buf, sizeof(buf)) == 1);
	CHECK(buf[0] == 'H');
	CHECK(rd(r.s, SERIAL_LSR) == 0x60);
	rig_down(&r);
}

static void test_fifo_overrun(void)
{
	struct rig r;
	struct serial_stats st;
	int ok = 1;

	REQUIRE(rig_up(&r) == 0);
	wr(r.s, SERIAL_MCR, SERIAL_MCR_LOOP);
	for (unsigned i = 0; i < SERIAL_FIFO_SIZE + 1; i++)
		wr(r.s, SERIAL_RBR_THR, (uint8_t)i);
	serial_get_stats(r.s, &st);
	CHECK(st.rx_bytes == SERIAL_FIFO_SIZE);
	CHECK(st.rx_overruns == 1);
	/* DR and OE; OE clears on the LSR read. */
	CHECK(rd(r.s, SERIAL_LSR) == (0x60 | SERIAL_LSR_DR | SERIAL_LSR_OE));
	CHECK(rd(r.s, SERIAL_LSR) == (0x60 | SERIAL_LSR_DR));
	/* The first 64 bytes, in order; the 65th is lost. */
	for (unsigned i = 0; i < SERIAL_FIFO_SIZE; i++)
		if (rd(r.s, SERIAL_RBR_THR) != (uint8_t)i)
			ok = 0;
	CHECK(ok);
	CHECK(rd(r.s, SERIAL_LSR) == 0x60);
	CHECK(rd(r.s, SERIAL_RBR_THR) == 0);
	rig_down(&r);
}

static void test_fcr_clears_rx(void)
{
	struct rig r;
	const uint8_t in[] = "abc";

	REQUIRE(rig_up(&r) == 0);
	CHECK(serial_input(r.s, in, 3) == 3);
	CHECK(rd(r.s, SERIAL_LSR) & SERIAL_LSR_DR);
	wr(r.s, SERIAL_IIR_FCR, 0x01);		/* FIFO enable only */
	CHECK(rd(r.s, SERIAL_LSR) & SERIAL_LSR_DR);
	wr(r.s, SERIAL_IIR_FCR, 0x07);		/* + clear RX and TX */
	CHECK(rd(r.s, SERIAL_LSR) == 0x60);
	CHECK(rd(r.s, SERIAL_RBR_THR) == 0);
	rig_down(&r);
}

static void test_rx_interrupt(void)
{
	struct rig r;
	const uint8_t in[] = "xyz";

	REQUIRE(rig_up(&r) == 0);
	/* Data while RDI is off: no edge; enabling RDI raises one. */
	CHECK(serial_input(r.s, in, 1) == 1);
	CHECK(edges(r.irq) == 0);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	wr(r.s, SERIAL_IER, SERIAL_IER_RDI);
	CHECK(edges(r.irq) == 1);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc4);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc4);	/* level: until drained */
	CHECK(rd(r.s, SERIAL_RBR_THR) == 'x');
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	/* New data: one edge per arrival. */
	CHECK(serial_input(r.s, in + 1, 2) == 2);
	CHECK(edges(r.irq) == 1);
	CHECK(rd(r.s, SERIAL_RBR_THR) == 'y');
	CHECK(rd(r.s, SERIAL_RBR_THR) == 'z');
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	CHECK(edges(r.irq) == 0);
	rig_down(&r);
}

static void test_serial_input_limit(void)
{
	struct rig r;
	uint8_t in[100];

	REQUIRE(rig_up(&r) == 0);
	memset(in, 'q', sizeof(in));
	CHECK(serial_input(r.s, in, sizeof(in)) == SERIAL_FIFO_SIZE);
	CHECK(serial_input(r.s, in, sizeof(in)) == 0);
	CHECK(rd(r.s, SERIAL_RBR_THR) == 'q');
	CHECK(serial_input(r.s, in, sizeof(in)) == 1);
	/* Flow control, not overrun: OE stays clear. */
	CHECK(rd(r.s, SERIAL_LSR) == 0x61);
	rig_down(&r);
}

/* Line status, then received data, then THR empty, then modem status. */
static void test_iir_priorities(void)
{
	struct rig r;

	REQUIRE(rig_up(&r) == 0);
	wr(r.s, SERIAL_MCR, SERIAL_MCR_LOOP);	/* MSR deltas: DCD, DSR, CTS fell */
	for (unsigned i = 0; i < SERIAL_FIFO_SIZE + 1; i++)
		wr(r.s, SERIAL_RBR_THR, 'p');	/* overrun */
	CHECK(edges(r.irq) == 0);		/* nothing enabled yet */
	wr(r.s, SERIAL_IER, 0x0f);
	CHECK(edges(r.irq) == 1);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc6);
	CHECK((rd(r.s, SERIAL_LSR) & SERIAL_LSR_OE) != 0);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc4);
	for (unsigned i = 0; i < SERIAL_FIFO_SIZE; i++)
		rd(r.s, SERIAL_RBR_THR);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc2);	/* reported: acknowledged */
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc0);
	CHECK(rd(r.s, SERIAL_MSR) == (SERIAL_MSR_DCTS | SERIAL_MSR_DDSR |
				      SERIAL_MSR_DDCD));
	CHECK(rd(r.s, SERIAL_MSR) == 0x00);	/* deltas clear on read */
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc1);
	/* A modem-status change with MSI on: one edge. */
	wr(r.s, SERIAL_MCR, SERIAL_MCR_LOOP | SERIAL_MCR_RTS);
	CHECK(edges(r.irq) == 1);
	CHECK(rd(r.s, SERIAL_IIR_FCR) == 0xc0);
	CHECK(rd(r.s, SERIAL_MSR) == (SERIAL_MSR_CTS | SERIAL_MSR_DCTS));
	/* RI falling is the only RI delta (TERI). */
	wr(r.s, SERIAL_MCR, SERIAL_MCR_LOOP | SERIAL_MCR_OUT1);
	CHECK(rd(r.s, SERIAL_MSR) == (SERIAL_MSR_RI | SERIAL_MSR_DCTS));
	wr(r.s, SERIAL_MCR, SERIAL_MCR_LOOP);
	CHECK(rd(r.s, SERIAL_MSR) == SERIAL_MSR_TERI);
	rig_down(&r);
}

static void test_wide_access(void)
{
	struct rig r;
	uint8_t d[4];

	REQUIRE(rig_up(&r) == 0);
	wr(r.s, SERIAL_SCR, 0x77);
	memset(d, 0, sizeof(d));
	serial_rw(r.s, SERIAL_MSR, d, 2, false);	/* MSR, SCR */
	CHECK(d[0] == 0xb0 && d[1] == 0x77);
	memset(d, 0, sizeof(d));
	serial_rw(r.s, SERIAL_MSR, d, 4, false);	/* past the 8 ports */
	CHECK(d[0] == 0xb0 && d[1] == 0x77 && d[2] == 0xff && d[3] == 0xff);
	d[0] = 0x13;
	d[1] = 0x99;
	serial_rw(r.s, SERIAL_SCR, d, 2, true);		/* second byte dropped */
	CHECK(rd(r.s, SERIAL_SCR) == 0x13);
	rig_down(&r);
}

static void test_on_the_bus(void)
{
	struct rig r;
	struct bus pio = { 0 };
	uint8_t v = 0;

	REQUIRE(rig_up(&r) == 0);
	REQUIRE(bus_register(&pio, LAYOUT_COM1, SERIAL_NR_PORTS, serial_rw, r.s,
			     "com1", &err) == 0);
	CHECK(bus_dispatch(&pio, LAYOUT_COM1 + SERIAL_LSR, &v, 1, false));
	CHECK(v == 0x60);
	/* COM2 is absent: all-ones, the 8250 probe moves on. */
	CHECK(!bus_dispatch(&pio, 0x2f8 + SERIAL_LSR, &v, 1, false));
	CHECK(v == 0xff);
	rig_down(&r);
}

/* ---- host input through the event loop ---- */

struct in_rig {
	struct rig r;
	struct evloop *ev;
	int in[2];
};

static int in_rig_up(struct in_rig *ir)
{
	memset(ir, 0, sizeof(*ir));
	ir->r.irq = new_efd();
	ir->ev = ev_new(&err);
	if (ir->r.irq < 0 || !ir->ev || nb_pipe(ir->r.out) < 0 ||
	    nb_pipe(ir->in) < 0)
		return -1;
	ir->r.s = serial_new(ir->r.out[1], ir->in[0], ir->r.irq, ir->ev, &err);
	return ir->r.s ? 0 : -1;
}

static void in_rig_down(struct in_rig *ir)
{
	rig_down(&ir->r);
	ev_free(ir->ev);
	close(ir->in[0]);
	if (ir->in[1] >= 0)
		close(ir->in[1]);
}

static void test_input_pipe(void)
{
	struct in_rig ir;
	struct serial_stats st;

	REQUIRE(in_rig_up(&ir) == 0);
	wr(ir.r.s, SERIAL_IER, SERIAL_IER_RDI);
	CHECK(edges(ir.r.irq) == 0);
	CHECK(ev_run_once(ir.ev, 0) == 0);	/* nothing to read yet */
	REQUIRE(write(ir.in[1], "xyz", 3) == 3);
	CHECK(ev_run_once(ir.ev, 1000) == 1);
	CHECK(edges(ir.r.irq) == 1);
	CHECK(rd(ir.r.s, SERIAL_IIR_FCR) == 0xc4);
	CHECK(rd(ir.r.s, SERIAL_LSR) == 0x61);
	CHECK(rd(ir.r.s, SERIAL_RBR_THR) == 'x');
	CHECK(rd(ir.r.s, SERIAL_RBR_THR) == 'y');
	CHECK(rd(ir.r.s, SERIAL_RBR_THR) == 'z');
	CHECK(rd(ir.r.s, SERIAL_LSR) == 0x60);
	CHECK(rd(ir.r.s, SERIAL_IIR_FCR) == 0xc1);
	serial_get_stats(ir.r.s, &st);
	CHECK(st.rx_bytes == 3);
	CHECK(st.rx_overruns == 0);
	in_rig_down(&ir);
}

static void test_input_flow_control(void)
{
	struct in_rig ir;
	uint8_t in[100];
	int ok = 1;

	REQUIRE(in_rig_up(&ir) == 0);
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i + 1);
	REQUIRE(write(ir.in[1], in, sizeof(in)) == (ssize_t)sizeof(in));
	CHECK(ev_run_once(ir.ev, 1000) == 1);
	/* FIFO full: the pipe is no longer watched although it has data. */
	CHECK(ev_run_once(ir.ev, 50) == 0);
	for (unsigned i = 0; i < SERIAL_FIFO_SIZE; i++)
		if (rd(ir.r.s, SERIAL_RBR_THR) != in[i])
			ok = 0;
	CHECK(ok);
	CHECK(rd(ir.r.s, SERIAL_LSR) == 0x60);
	/* The reads made room: the rest comes, nothing lost. */
	CHECK(ev_run_once(ir.ev, 1000) == 1);
	for (unsigned i = SERIAL_FIFO_SIZE; i < sizeof(in); i++)
		if (rd(ir.r.s, SERIAL_RBR_THR) != in[i])
			ok = 0;
	CHECK(ok);
	CHECK(rd(ir.r.s, SERIAL_LSR) == 0x60);
	/* EOF: handled once, then the fd is dropped (no busy loop). */
	close(ir.in[1]);
	ir.in[1] = -1;
	CHECK(ev_run_once(ir.ev, 1000) == 1);
	CHECK(ev_run_once(ir.ev, 50) == 0);
	CHECK(rd(ir.r.s, SERIAL_LSR) == 0x60);
	in_rig_down(&ir);
}

static void *io_thread(void *ev)
{
	ev_run(ev);
	return NULL;
}

/* With a real I/O thread and the "vCPU" polling LSR as Linux's driver
 * does: every byte arrives, in order, none lost to the 64-byte FIFO. */
static void test_input_threaded(void)
{
	struct in_rig ir;
	struct serial_stats st;
	struct timespec t0, now;
	uint8_t in[5000];
	unsigned got = 0;
	int ok = 1;
	pthread_t t;

	REQUIRE(in_rig_up(&ir) == 0);
	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + i / 256);
	REQUIRE(write(ir.in[1], in, sizeof(in)) == (ssize_t)sizeof(in));
	REQUIRE(pthread_create(&t, NULL, io_thread, ir.ev) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < sizeof(in)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 10)
			break;
		if (rd(ir.r.s, SERIAL_LSR) & SERIAL_LSR_DR) {
			if (rd(ir.r.s, SERIAL_RBR_THR) != in[got])
				ok = 0;
			got++;
		}
	}
	ev_stop(ir.ev);
	pthread_join(t, NULL);
	CHECK(got == sizeof(in));
	CHECK(ok);
	serial_get_stats(ir.r.s, &st);
	CHECK(st.rx_bytes == sizeof(in));
	CHECK(st.rx_overruns == 0);
	in_rig_down(&ir);
}

static void test_input_errors(void)
{
	struct evloop *ev = ev_new(&err);
	char path[] = "/tmp/kr-serial-XXXXXX";
	int fd = mkstemp(path);

	REQUIRE(ev);
	REQUIRE(fd >= 0);
	unlink(path);
	/* epoll refuses regular files. */
	CHECK(serial_new(-1, fd, -1, ev, &err) == NULL);
	CHECK_CONTAINS(err.msg, "serial: watch input fd");
	CHECK(serial_new(-1, 0, -1, NULL, &err) == NULL);
	CHECK_CONTAINS(err.msg, "needs an event loop");
	close(fd);
	ev_free(ev);
}

/* vCPU threads writing concurrently: every byte counted, in one piece. */
static void *tx_thread(void *arg)
{
	for (int i = 0; i < 20000; i++)
		wr(arg, SERIAL_RBR_THR, 'T');
	return NULL;
}

static void test_concurrent_tx(void)
{
	struct serial *s = serial_new(-1, -1, -1, NULL, &err);
	struct serial_stats st;
	pthread_t t[2];

	REQUIRE(s);
	wr(s, SERIAL_IER, SERIAL_IER_THRI);
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&t[i], NULL, tx_thread, s) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	serial_get_stats(s, &st);
	CHECK(st.tx_bytes == 40000);
	CHECK(st.tx_dropped == 0);		/* out_fd -1: a sink */
	serial_free(s);
}

/* ---- i8042 ---- */

static int resets;

static void on_reset(void *ctx)
{
	resets++;
	*(int *)ctx = 7;
}

static uint8_t kin(struct i8042 *k, bool cmd_port)
{
	uint8_t v = 0x5a;

	if (cmd_port)
		i8042_cmd_rw(k, 0, &v, 1, false);
	else
		i8042_data_rw(k, 0, &v, 1, false);
	return v;
}

static void kout(struct i8042 *k, bool cmd_port, uint8_t v)
{
	if (cmd_port)
		i8042_cmd_rw(k, 0, &v, 1, true);
	else
		i8042_data_rw(k, 0, &v, 1, true);
}

#define CMD true
#define DATA false

static void test_i8042_status_and_reset(void)
{
	int ctx = 0;
	struct i8042 *k = i8042_new(on_reset, &ctx, -1, &err);

	REQUIRE(k);
	resets = 0;
	CHECK(kin(k, CMD) == 0x10);
	CHECK((kin(k, CMD) & I8042_STATUS_IBF) == 0);
	kout(k, CMD, 0xfd);			/* not a reset */
	kout(k, DATA, 0xfe);			/* at 0x60: a keyboard command */
	CHECK(resets == 0);
	kout(k, CMD, I8042_CMD_RESET_CPU);
	CHECK(resets == 1);
	CHECK(ctx == 7);
	/* Still bit 1 clear afterwards (a second try must get through). */
	CHECK((kin(k, CMD) & I8042_STATUS_IBF) == 0);
	i8042_free(k);
}

static void test_i8042_control_byte(void)
{
	struct i8042 *k = i8042_new(NULL, NULL, -1, &err);

	REQUIRE(k);
	kout(k, CMD, I8042_CMD_READ_CTR);
	CHECK(kin(k, CMD) == (0x10 | I8042_STATUS_OBF));
	CHECK(kin(k, DATA) == 0x05);		/* POST ok | kbd interrupt */
	CHECK(kin(k, CMD) == 0x10);
	kout(k, CMD, I8042_CMD_WRITE_CTR);
	CHECK(kin(k, CMD) == (0x10 | I8042_STATUS_CMD_DATA));
	kout(k, DATA, 0x47);
	CHECK(kin(k, CMD) == 0x10);
	kout(k, CMD, I8042_CMD_READ_CTR);
	CHECK(kin(k, DATA) == 0x47);
	CHECK(kin(k, DATA) == 0x00);		/* nothing pending */
	/* Output port likewise. */
	kout(k, CMD, I8042_CMD_WRITE_OUTP);
	kout(k, DATA, 0xdf);
	kout(k, CMD, I8042_CMD_READ_OUTP);
	CHECK(kin(k, DATA) == 0xdf);
	kout(k, CMD, I8042_CMD_SELF_TEST);
	CHECK(kin(k, DATA) == 0x55);
	i8042_free(k);
}

static void test_i8042_keyboard(void)
{
	int irq = new_efd();
	struct i8042 *k = i8042_new(NULL, NULL, irq, &err);

	REQUIRE(irq >= 0);
	REQUIRE(k);
	kout(k, DATA, 0xf4);			/* keyboard: enable */
	CHECK(edges(irq) == 1);
	CHECK(kin(k, CMD) == (0x10 | I8042_STATUS_OBF));
	CHECK(kin(k, DATA) == I8042_KBD_ACK);
	CHECK(kin(k, CMD) == 0x10);
	/* Ctrl-Alt-Del: four scan code bytes, an edge while more wait. */
	CHECK(i8042_ctrl_alt_del(k) == 0);
	CHECK(edges(irq) == 1);
	CHECK(kin(k, DATA) == 0x14);
	CHECK(edges(irq) == 1);
	CHECK(kin(k, DATA) == 0x11);
	CHECK(kin(k, DATA) == 0xe0);
	CHECK(kin(k, DATA) == 0x71);
	CHECK(edges(irq) == 2);
	CHECK(kin(k, CMD) == 0x10);
	/* 16-byte buffer: four sequences fit, the fifth does not. */
	for (int i = 0; i < 4; i++)
		CHECK(i8042_ctrl_alt_del(k) == 0);
	CHECK(i8042_ctrl_alt_del(k) == -1);
	edges(irq);
	/* Keyboard interrupt disabled in the control byte: no edges. */
	kout(k, CMD, I8042_CMD_WRITE_CTR);
	kout(k, DATA, I8042_CTR_POST_OK);
	kout(k, DATA, 0xf4);
	CHECK(kin(k, DATA) == I8042_KBD_ACK);
	CHECK(edges(irq) == 0);
	i8042_free(k);
	close(irq);
}

static void test_i8042_bus(void)
{
	int ctx = 0;
	struct i8042 *k = i8042_new(on_reset, &ctx, -1, &err);
	struct bus pio = { 0 };
	uint8_t d[2] = { 0, 0 };

	REQUIRE(k);
	resets = 0;
	REQUIRE(i8042_register(k, &pio, &err) == 0);
	CHECK(bus_dispatch(&pio, 0x64, d, 1, false));
	CHECK(d[0] == 0x10);
	/* 0x61-0x63 are not ours. */
	for (unsigned port = 0x61; port <= 0x63; port++) {
		CHECK(!bus_dispatch(&pio, port, d, 1, false));
		CHECK(d[0] == 0xff);
	}
	/* Wider accesses: all-ones, no effect. */
	d[0] = I8042_CMD_RESET_CPU;
	d[1] = I8042_CMD_RESET_CPU;
	i8042_cmd_rw(k, 0, d, 2, true);
	CHECK(resets == 0);
	i8042_cmd_rw(k, 0, d, 2, false);
	CHECK(d[0] == 0xff && d[1] == 0xff);
	d[0] = I8042_CMD_RESET_CPU;
	CHECK(bus_dispatch(&pio, 0x64, d, 1, true));
	CHECK(resets == 1);
	i8042_free(k);
}

int main(void)
{
	/* As the VMM: a vanished pipe reader must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	/* The write errors provoked on purpose are logged as warnings. */
	kr_log_set_level(KR_LOG_ERROR);

	KR_TEST(test_reset_values);
	KR_TEST(test_dlab);
	KR_TEST(test_scratch_and_read_only);
	KR_TEST(test_tx_output);
	KR_TEST(test_tx_full_pipe_drops);
	KR_TEST(test_tx_reader_gone);
	KR_TEST(test_thre_interrupt);
	KR_TEST(test_loopback);
	KR_TEST(test_fifo_overrun);
	KR_TEST(test_fcr_clears_rx);
	KR_TEST(test_rx_interrupt);
	KR_TEST(test_serial_input_limit);
	KR_TEST(test_iir_priorities);
	KR_TEST(test_wide_access);
	KR_TEST(test_on_the_bus);
	KR_TEST(test_input_pipe);
	KR_TEST(test_input_flow_control);
	KR_TEST(test_input_threaded);
	KR_TEST(test_input_errors);
	KR_TEST(test_concurrent_tx);
	KR_TEST(test_i8042_status_and_reset);
	KR_TEST(test_i8042_control_byte);
	KR_TEST(test_i8042_keyboard);
	KR_TEST(test_i8042_bus);
	return kr_test_done();
}
