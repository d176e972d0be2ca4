/* 16550A UART (serial.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "kr/log.h"
#include "serial.h"

/* vm-superio's reset values (spec section 3). */
#define RESET_LCR	0x03	/* 8N1 */
#define RESET_MCR	SERIAL_MCR_OUT2
#define RESET_LSR	(SERIAL_LSR_THRE | SERIAL_LSR_TEMT)
#define RESET_MSR	(SERIAL_MSR_DCD | SERIAL_MSR_DSR | SERIAL_MSR_CTS)
#define RESET_DLL	0x0c	/* divisor 12: 9600 baud */

#define IER_MASK	0x0f
#define MCR_MASK	0x1f
#define MSR_DELTAS	0x0f
#define LSR_ERRORS	0x9e	/* OE, PE, FE, BI, RX FIFO error */

struct serial {
	pthread_mutex_t lock;
	int out_fd, in_fd, irq_fd;
	struct evloop *ev;
	bool in_watched;	/* in_fd is registered in ev */
	bool in_closed;		/* EOF or error on in_fd: never watched again */
	bool out_err_logged;

	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm;
	bool thr_pending;	/* THR-empty interrupt latched, not yet reported */
	uint8_t fifo[SERIAL_FIFO_SIZE];
	unsigned rx_head, rx_count;

	struct serial_stats st;
	void (*first_tx_fn)(void *ctx);
	void *first_tx_ctx;
};

static void input_ready(void *opaque, int fd, uint32_t events);

/* ---- interrupt line ------------------------------------------------------ */

/* One edge on the line: KVM's irqfd asserts and deasserts the GSI. */
static void raise_irq(struct serial *s)
{
	uint64_t one = 1;

	if (s->irq_fd >= 0 && write(s->irq_fd, &one, sizeof(one)) < 0) {
		/* Saturated counter: an interrupt is pending anyway. */
	}
}

/* Highest-priority enabled source, as IIR bits 3:1 (bit 0 set: none). */
static uint8_t iir_source(const struct serial *s)
{
	if ((s->ier & SERIAL_IER_RLSI) && (s->lsr & LSR_ERRORS))
		return SERIAL_IIR_RLSI;
	if ((s->ier & SERIAL_IER_RDI) && (s->lsr & SERIAL_LSR_DR))
		return SERIAL_IIR_RDI;
	if ((s->ier & SERIAL_IER_THRI) && s->thr_pending)
		return SERIAL_IIR_THRI;
	if ((s->ier & SERIAL_IER_MSI) && (s->msr & MSR_DELTAS))
		return SERIAL_IIR_MSI;
	return SERIAL_IIR_NONE;
}

/* ---- receive FIFO and host input ---------------------------------------- */

/* Watch in_fd exactly while the FIFO has room: a full FIFO leaves the bytes
 * in the host pipe instead of overrunning. */
static void input_flow(struct serial *s)
{
	bool want = s->in_fd >= 0 && !s->in_closed &&
		    s->rx_count < SERIAL_FIFO_SIZE;
	struct kr_err err = { 0 };

	if (want == s->in_watched)
		return;
	if (!want) {
		ev_del(s->ev, s->in_fd);
		s->in_watched = false;
		return;
	}
	if (ev_add(s->ev, s->in_fd, EPOLLIN, input_ready, s, &err) < 0) {
		kr_warn("serial: input stops: %s", err.msg);
		s->in_closed = true;
		return;
	}
	s->in_watched = true;
}

static void update_dr(struct serial *s)
{
	if (s->rx_count)
		s->lsr |= SERIAL_LSR_DR;
	else
		s->lsr &= ~SERIAL_LSR_DR;
}

/* Append bytes; those that do not fit are an overrun (only loopback can
 * get there: host input is read to fit).  Returns whether this is an
 * interrupt event for an enabled source. */
static bool rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t room = SERIAL_FIFO_SIZE - s->rx_count, n = len < room ? len : room;
	bool overrun = n < len;

	for (size_t i = 0; i < n; i++)
		s->fifo[(s->rx_head + s->rx_count + i) % SERIAL_FIFO_SIZE] = buf[i];
	s->rx_count += n;
	s->st.rx_bytes += n;
	if (overrun) {
		s->lsr |= SERIAL_LSR_OE;
		s->st.rx_overruns += len - n;
	}
	update_dr(s);
	input_flow(s);
	return (n && (s->ier & SERIAL_IER_RDI)) ||
	       (overrun && (s->ier & SERIAL_IER_RLSI));
}

static uint8_t rx_pop(struct serial *s)
{
	uint8_t b;

	if (!s->rx_count)
		return 0;
	b = s->fifo[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
	s->rx_count--;
	update_dr(s);
	input_flow(s);
	return b;
}

static void rx_clear(struct serial *s)
{
	s->rx_head = s->rx_count = 0;
	update_dr(s);
	input_flow(s);
}

/* I/O thread: in_fd is readable (or hung up). */
static void input_ready(void *opaque, int fd, uint32_t events)
{
	struct serial *s = opaque;
	uint8_t buf[SERIAL_FIFO_SIZE];
	size_t room;
	ssize_t n;

	pthread_mutex_lock(&s->lock);
	room = SERIAL_FIFO_SIZE - s->rx_count;
	/* Stopped meanwhile (FIFO filled by loopback, serial_free). */
	if (!s->in_watched || fd != s->in_fd || !room)
		goto out;
	/* One read per wake-up: epoll said readable, so it does not block
	 * even on a blocking fd we are the only reader of. */
	n = read(fd, buf, room);
	if (n > 0) {
		if (rx_push(s, buf, (size_t)n))
			raise_irq(s);
	} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		if (n < 0)
			kr_warn("serial: read input fd %d: %s; input stops", fd,
				strerror(errno));
		s->in_closed = true;	/* EOF: nothing more will come */
		input_flow(s);
	}
out:
	pthread_mutex_unlock(&s->lock);
}

size_t serial_input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = SERIAL_FIFO_SIZE - s->rx_count;
	if (n > len)
		n = len;
	if (n && rx_push(s, buf, n))
		raise_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- transmit ------------------------------------------------------------ */

static void note_first_tx(struct serial *s, bool *call_cb)
{
	if (s->st.tx_started)
		return;
	clock_gettime(CLOCK_MONOTONIC, &s->st.first_tx);
	s->st.tx_started = true;
	*call_cb = s->first_tx_fn != NULL;
}

/* One byte to out_fd.  EAGAIN (a non-blocking fd that is full) drops it: the
 * vCPU does not wait for the host reader. */
static void transmit(struct serial *s, uint8_t b, bool *call_cb)
{
	ssize_t n;

	s->st.tx_bytes++;
	note_first_tx(s, call_cb);
	if (s->out_fd < 0)
		return;
	do
		n = write(s->out_fd, &b, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return;
	s->st.tx_dropped++;
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    !s->out_err_logged) {
		/* Logged once: the guest would otherwise flood the log. */
		kr_warn("serial: write output fd %d: %s; output is dropped",
			s->out_fd, strerror(errno));
		s->out_err_logged = true;
	}
}

/* ---- registers ----------------------------------------------------------- */

static uint8_t modem_status(uint8_t mcr)
{
	uint8_t v = 0;

	if (!(mcr & SERIAL_MCR_LOOP))
		return RESET_MSR;
	/* Loopback wires the outputs back to the inputs. */
	if (mcr & SERIAL_MCR_DTR)
		v |= SERIAL_MSR_DSR;
	if (mcr & SERIAL_MCR_RTS)
		v |= SERIAL_MSR_CTS;
	if (mcr & SERIAL_MCR_OUT1)
		v |= SERIAL_MSR_RI;
	if (mcr & SERIAL_MCR_OUT2)
		v |= SERIAL_MSR_DCD;
	return v;
}

static bool write_thr(struct serial *s, uint8_t v, bool *call_cb)
{
	bool event = false;

	if (s->mcr & SERIAL_MCR_LOOP)
		event = rx_push(s, &v, 1);
	else
		transmit(s, v, call_cb);
	/* The byte left at once: THR is empty again (vm-superio). */
	s->thr_pending = s->ier & SERIAL_IER_THRI;
	return event || s->thr_pending;
}

static bool write_ier(struct serial *s, uint8_t v)
{
	uint8_t added = (v & IER_MASK) & ~s->ier;

	s->ier = v & IER_MASK;
	/* THR is always empty: enabling its interrupt raises it (16550). */
	if (added & SERIAL_IER_THRI)
		s->thr_pending = true;
	return (added & SERIAL_IER_THRI) ||
	       ((added & SERIAL_IER_RDI) && (s->lsr & SERIAL_LSR_DR)) ||
	       ((added & SERIAL_IER_RLSI) && (s->lsr & LSR_ERRORS)) ||
	       ((added & SERIAL_IER_MSI) && (s->msr & MSR_DELTAS));
}

static bool write_mcr(struct serial *s, uint8_t v)
{
	uint8_t old = s->msr & ~MSR_DELTAS, now, changed, delta = 0;

	s->mcr = v & MCR_MASK;
	now = modem_status(s->mcr);
	changed = old ^ now;
	if (changed & SERIAL_MSR_CTS)
		delta |= SERIAL_MSR_DCTS;
	if (changed & SERIAL_MSR_DSR)
		delta |= SERIAL_MSR_DDSR;
	if (changed & SERIAL_MSR_DCD)
		delta |= SERIAL_MSR_DDCD;
	if ((old & SERIAL_MSR_RI) && !(now & SERIAL_MSR_RI))
		delta |= SERIAL_MSR_TERI;	/* trailing edge only */
	s->msr = now | (s->msr & MSR_DELTAS) | delta;
	return delta && (s->ier & SERIAL_IER_MSI);
}

/* Returns whether the write is a new interrupt event. */
static bool write_reg(struct serial *s, unsigned off, uint8_t v, bool *call_cb)
{
	bool dlab = s->lcr & SERIAL_LCR_DLAB;

	switch (off) {
	case SERIAL_RBR_THR:
		if (dlab) {
			s->dll = v;
			return false;
		}
		return write_thr(s, v, call_cb);
	case SERIAL_IER:
		if (dlab) {
			s->dlm = v;
			return false;
		}
		return write_ier(s, v);
	case SERIAL_IIR_FCR:
		/* FIFO enable and trigger levels change nothing for a
		 * virtual wire; clearing the RX FIFO does. */
		if (v & SERIAL_FCR_CLEAR_RX)
			rx_clear(s);
		return false;
	case SERIAL_LCR:
		s->lcr = v;
		return false;
	case SERIAL_MCR:
		return write_mcr(s, v);
	case SERIAL_SCR:
		s->scr = v;
		return false;
	default:		/* LSR, MSR: read-only */
		return false;
	}
}

static uint8_t read_iir(struct serial *s)
{
	uint8_t src = iir_source(s);

	/* Reporting THR-empty acknowledges it (16550). */
	if (src == SERIAL_IIR_THRI)
		s->thr_pending = false;
	return src | SERIAL_IIR_FIFO;
}

static uint8_t read_reg(struct serial *s, unsigned off)
{
	bool dlab = s->lcr & SERIAL_LCR_DLAB;
	uint8_t v;

	switch (off) {
	case SERIAL_RBR_THR:
		return dlab ? s->dll : rx_pop(s);
	case SERIAL_IER:
		return dlab ? s->dlm : s->ier;
	case SERIAL_IIR_FCR:
		return read_iir(s);
	case SERIAL_LCR:
		return s->lcr;
	case SERIAL_MCR:
		return s->mcr;
	case SERIAL_LSR:
		v = s->lsr;
		s->lsr &= ~LSR_ERRORS;	/* error bits clear on read */
		return v;
	case SERIAL_MSR:
		v = s->msr;
		s->msr &= ~MSR_DELTAS;	/* delta bits clear on read */
		return v;
	default:
		return s->scr;
	}
}

void serial_rw(void *opaque, uint64_t offset, uint8_t *data, unsigned len,
	       bool is_write)
{
	struct serial *s = opaque;
	bool event = false, call_cb = false;
	void (*cb)(void *ctx);
	void *cb_ctx;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < len; i++) {
		uint64_t off = offset + i;

		if (off >= SERIAL_NR_PORTS) {
			if (!is_write)
				data[i] = 0xff;
		} else if (is_write) {
			event |= write_reg(s, (unsigned)off, data[i], &call_cb);
		} else {
			data[i] = read_reg(s, (unsigned)off);
		}
	}
	if (event)
		raise_irq(s);
	cb = call_cb ? s->first_tx_fn : NULL;
	cb_ctx = s->first_tx_ctx;
	pthread_mutex_unlock(&s->lock);
	/* Outside the lock: the callback may take its time or look at us. */
	if (cb)
		cb(cb_ctx);
}

/* ---- life cycle ---------------------------------------------------------- */

struct serial *serial_new(int out_fd, int in_fd, int irq_fd, struct evloop *ev,
			  struct kr_err *err)
{
	struct serial *s;
	int rc;

	if (in_fd >= 0 && !ev) {
		kr_err_set(err, KR_INVALID_ARGUMENT,
			   "serial: input fd %d needs an event loop", in_fd);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		kr_err_set(err, KR_RESOURCE_EXHAUSTED, "serial: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->in_fd = in_fd;
	s->irq_fd = irq_fd;
	s->ev = ev;
	s->lcr = RESET_LCR;
	s->mcr = RESET_MCR;
	s->lsr = RESET_LSR;
	s->msr = RESET_MSR;
	s->dll = RESET_DLL;
	if (in_fd < 0)
		return s;
	/* Under the lock: the I/O thread may run the handler at once. */
	pthread_mutex_lock(&s->lock);
	rc = ev_add(ev, in_fd, EPOLLIN, input_ready, s, err);
	s->in_watched = rc == 0;
	pthread_mutex_unlock(&s->lock);
	if (rc < 0) {
		kr_err_wrap(err, "serial: watch input fd %d", in_fd);
		serial_free(s);
		return NULL;
	}
	return s;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	if (s->in_watched)
		ev_del(s->ev, s->in_fd);
	s->in_watched = false;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void serial_set_first_tx_cb(struct serial *s, void (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&s->lock);
	s->first_tx_fn = fn;
	s->first_tx_ctx = ctx;
	pthread_mutex_unlock(&s->lock);
}

void serial_get_stats(struct serial *s, struct serial_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	pthread_mutex_unlock(&s->lock);
}
