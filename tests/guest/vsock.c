/* virtio-vsock (device ID 19), stream sockets, one connection at a time.
 * ../../../shared/specs/microvm.md section 5.
 *
 *  testguest.vsock_port=P    connect to (CID 2, P) from port 1234, send
 *                            "hello from the guest\n", read one line from
 *                            the host, print it, SHUTDOWN, wait for RST.
 *  testguest.vsock_listen=L  wait for the host to connect to port L, echo
 *                            what it sends uppercased until it shuts down.
 *
 * Queues: 0 rx (device -> guest), 1 tx, 2 event.  rx buffers are mostly
 * one descriptor holding header + payload (Linux >= 6.3), one is a
 * 2-descriptor chain (header, then payload: older Linux); the tx packet
 * carrying "hello from the guest" is a 2-descriptor chain too.
 *
 * Structure: vs_poll() reaps all three queues and runs the receive side of
 * the protocol; it never sends: replies it owes (RST to strangers, RESPONSE
 * to an accepted REQUEST, CREDIT_UPDATE) are queued and sent by
 * vs_flush().  vs_step() = poll + flush; every wait loop calls it. */
#include "virtio.h"

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} PACKED;
_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes");

enum {
	OP_REQUEST = 1, OP_RESPONSE, OP_RST, OP_SHUTDOWN, OP_RW,
	OP_CREDIT_UPDATE, OP_CREDIT_REQUEST,
};
#define VIRTIO_VSOCK_F_STREAM (1ull << 0)	/* accepted if offered */
#define TYPE_STREAM 1
#define SHUT_RCV 1u
#define SHUT_SEND 2u
#define HOST_CID 2
#define GUEST_PORT 1234
#define EVENT_TRANSPORT_RESET 0

#define HDR sizeof(struct vsock_hdr)
#define BUF_ALLOC 65536u	/* our receive buffer (the conn ring) */
#define PAYLOAD 2048u		/* per rx buffer and per tx packet */
#define RX_BUFS 8
#define TX_SLOTS 4
#define EVENT_BUFS 4
#define MAX_CTRL 8

struct rx_buf {
	struct vsock_hdr *hdr;
	uint8_t *payload;	/* hdr + HDR, or a separate buffer */
	bool split;
};

struct tx_slot {
	uint8_t *mem;		/* header at 0; payload at HDR, or at 64 if split */
	bool busy;
};

enum cstate { C_CLOSED, C_CONNECTING, C_ESTABLISHED, C_CLOSING };

struct conn {
	enum cstate state;
	uint32_t local_port, peer_port;
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	uint32_t rx_cnt, fwd_cnt, fwd_cnt_sent;
	uint32_t peer_shutdown;
	bool got_rst;
	uint8_t *ring;		/* BUF_ALLOC bytes: received, not yet read */
	uint32_t ring_pos, ring_len;
};

struct ctrl {
	uint16_t op;
	uint32_t src_port, dst_port;
	bool conn;		/* carries the connection's credit */
};

static struct {
	struct virtio_dev *d;
	uint64_t cid;
	struct conn c;
	uint32_t listen_port;	/* 0: not listening */
	struct rx_buf rx[RX_BUFS];
	struct tx_slot tx[TX_SLOTS];
	uint32_t *events;
	struct ctrl ctrl[MAX_CTRL];
	unsigned nctrl;
	bool credit_request_due;
	bool split_rx_seen;	/* a payload arrived in the 2-descriptor chain */
	unsigned fail_base;	/* fail_count() when the test started */
} vs;

/* This device's test failed (earlier failures elsewhere do not count). */
static bool vs_failed(void)
{
	return fail_count() != vs.fail_base;
}

static struct virtq *rxq(void) { return &vs.d->vq[0]; }
static struct virtq *txq(void) { return &vs.d->vq[1]; }
static struct virtq *evq(void) { return &vs.d->vq[2]; }

static const char *op_name(unsigned op)
{
	static const char *const n[] = { "INVALID", "REQUEST", "RESPONSE", "RST",
					 "SHUTDOWN", "RW", "CREDIT_UPDATE",
					 "CREDIT_REQUEST" };
	return op < ARRAY_SIZE(n) ? n[op] : "?";
}

/* ---- buffers ------------------------------------------------------------------ */
static bool rx_post(struct rx_buf *b)
{
	struct vbuf v[2] = {
		{ b->hdr, b->split ? HDR : HDR + PAYLOAD, true },
		{ b->payload, PAYLOAD, true },
	};
	return virtq_add(rxq(), v, b->split ? 2 : 1, b);
}

static void ctrl_queue(uint16_t op, uint32_t src_port, uint32_t dst_port, bool conn)
{
	if (vs.nctrl == MAX_CTRL) {	/* like FC's bounded queue: drop */
		report("vsock: control queue full, %s dropped", op_name(op));
		return;
	}
	vs.ctrl[vs.nctrl++] = (struct ctrl){ op, src_port, dst_port, conn };
}

/* ---- receive side ------------------------------------------------------------- */
static bool conn_match(const struct vsock_hdr *h)
{
	return vs.c.state != C_CLOSED && h->dst_port == vs.c.local_port &&
	       h->src_port == vs.c.peer_port;
}

static void conn_data(const uint8_t *p, uint32_t n)
{
	struct conn *c = &vs.c;

	if (c->state == C_CLOSING) {	/* we said we receive no more */
		c->rx_cnt += n;
		c->fwd_cnt += n;
		return;
	}
	if (n > BUF_ALLOC - c->ring_len) {
		fail("vsock: peer sent %u bytes with %u of our %u-byte buffer free",
		     n, BUF_ALLOC - c->ring_len, BUF_ALLOC);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		c->ring[(c->ring_pos + c->ring_len + i) % BUF_ALLOC] = p[i];
	c->ring_len += n;
	c->rx_cnt += n;
}

static void rx_packet(const struct vsock_hdr *h, const uint8_t *payload)
{
	struct conn *c = &vs.c;

	if (h->src_cid != HOST_CID || h->dst_cid != vs.cid) {
		fail("vsock: rx %s from cid %lu to cid %lu (we are %lu)",
		     op_name(h->op), h->src_cid, h->dst_cid, vs.cid);
		return;
	}
	if (h->type != TYPE_STREAM) {
		report("vsock: rx type %u: answering RST", h->type);
		if (h->op != OP_RST)
			ctrl_queue(OP_RST, h->dst_port, h->src_port, false);
		return;
	}
	if (!conn_match(h)) {
		if (h->op == OP_REQUEST && vs.listen_port && h->dst_port == vs.listen_port &&
		    c->state == C_CLOSED) {
			*c = (struct conn){
				.state = C_ESTABLISHED, .local_port = h->dst_port,
				.peer_port = h->src_port, .peer_buf_alloc = h->buf_alloc,
				.peer_fwd_cnt = h->fwd_cnt, .ring = c->ring,
			};
			ctrl_queue(OP_RESPONSE, c->local_port, c->peer_port, true);
			report("vsock: REQUEST from cid 2 port %u to port %u: accepted "
			       "(peer buf_alloc %u)", h->src_port, h->dst_port, h->buf_alloc);
		} else if (h->op != OP_RST) {
			report("vsock: rx %s for no connection (port %u -> %u): answering RST",
			       op_name(h->op), h->src_port, h->dst_port);
			ctrl_queue(OP_RST, h->dst_port, h->src_port, false);
		}
		return;
	}
	/* Every packet of the flow carries the peer's credit. */
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case OP_RESPONSE:
		if (c->state != C_CONNECTING) {
			fail("vsock: RESPONSE on an established connection");
			ctrl_queue(OP_RST, c->local_port, c->peer_port, false);
			c->state = C_CLOSED;
			break;
		}
		c->state = C_ESTABLISHED;
		break;
	case OP_RST:
		c->got_rst = true;
		c->state = C_CLOSED;
		break;
	case OP_SHUTDOWN:
		c->peer_shutdown |= h->flags & (SHUT_RCV | SHUT_SEND);
		report("vsock: peer SHUTDOWN flags=%u", h->flags);
		break;
	case OP_RW:
		if (c->state == C_CONNECTING) {
			fail("vsock: RW before RESPONSE");
			break;
		}
		conn_data(payload, h->len);
		break;
	case OP_CREDIT_UPDATE:
		break;
	case OP_CREDIT_REQUEST:
		vs.credit_request_due = true;
		break;
	default:
		fail("vsock: rx op %u (%s) on a connection", h->op, op_name(h->op));
		ctrl_queue(OP_RST, c->local_port, c->peer_port, false);
		c->state = C_CLOSED;
	}
}

/* Reap tx, rx and event queues; re-post rx and event buffers. */
static void vs_poll(void)
{
	void *tok;
	uint32_t len;
	bool reposted = false;

	while (virtq_get(txq(), &tok, &len) > 0)
		((struct tx_slot *)tok)->busy = false;
	while (virtq_get(rxq(), &tok, &len) > 0) {
		struct rx_buf *b = tok;
		const struct vsock_hdr *h = b->hdr;
		if (len < HDR || h->len > PAYLOAD || len != HDR + h->len)
			fail("vsock: rx used len %u for a packet with len %u", len, h->len);
		else
			rx_packet(h, b->payload);
		if (b->split && h->len && len == HDR + h->len && !vs.split_rx_seen) {
			vs.split_rx_seen = true;
			report("vsock: rx 2-descriptor chain: header + %u payload bytes", h->len);
		}
		rx_post(b);
		reposted = true;
	}
	if (reposted)
		virtq_kick(rxq());
	reposted = false;
	while (virtq_get(evq(), &tok, &len) > 0) {
		uint32_t *ev = tok;
		if (len >= 4 && *ev == EVENT_TRANSPORT_RESET) {
			vs.cid = vcfg64(vs.d, 0);
			report("vsock: TRANSPORT_RESET event, guest_cid now %lu", vs.cid);
			if (vs.c.state != C_CLOSED) {
				fail("vsock: transport reset during a connection");
				vs.c.state = C_CLOSED;
			}
		} else {
			report("vsock: event id %u (len %u) ignored", *ev, len);
		}
		struct vbuf v = { ev, 4, true };
		virtq_add(evq(), &v, 1, ev);
		reposted = true;
	}
	if (reposted)
		virtq_kick(evq());
}

/* ---- send side ----------------------------------------------------------------- */
static bool vs_wait_slot(struct tx_slot **out)
{
	uint64_t end = deadline_after_ms(params.timeout_ms);

	for (;;) {
		for (unsigned i = 0; i < TX_SLOTS; i++)
			if (!vs.tx[i].busy) {
				*out = &vs.tx[i];
				return true;
			}
		vs_poll();
		if (vs_failed())
			return false;
		if (deadline_passed(end)) {
			fail("vsock: no tx buffer back from the device");
			return false;
		}
		cpu_relax();
	}
}

/* One packet from (cid, src_port) to (2, dst_port); payload n <= PAYLOAD
 * bytes; split: header and payload in two descriptors. */
static bool vs_send(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags,
		    bool conn, const void *payload, uint32_t n, bool split)
{
	struct tx_slot *t;

	if (!vs_wait_slot(&t))
		return false;
	struct vsock_hdr *h = (struct vsock_hdr *)t->mem;
	*h = (struct vsock_hdr){
		.src_cid = vs.cid, .dst_cid = HOST_CID, .src_port = src_port,
		.dst_port = dst_port, .len = n, .type = TYPE_STREAM, .op = op,
		.flags = flags,
	};
	if (conn) {
		h->buf_alloc = BUF_ALLOC;
		h->fwd_cnt = vs.c.fwd_cnt;
		vs.c.fwd_cnt_sent = vs.c.fwd_cnt;
	}
	uint8_t *p = t->mem + (split ? 64 : HDR);
	if (n)
		memcpy(p, payload, n);
	struct vbuf v[2] = { { h, split ? HDR : HDR + n, false }, { p, n, false } };
	if (!virtq_add(txq(), v, split && n ? 2 : 1, t)) {
		fail("vsock: tx ring full");
		return false;
	}
	t->busy = true;
	virtq_kick(txq());
	return true;
}

static bool conn_send(uint16_t op, uint32_t flags, const void *p, uint32_t n, bool split)
{
	return vs_send(op, vs.c.local_port, vs.c.peer_port, flags, true, p, n, split);
}

/* Send what we owe: queued replies, then a CREDIT_UPDATE if the peer asked
 * or if its view of our free space is half a buffer behind. */
static void vs_flush(void)
{
	for (unsigned i = 0; i < vs.nctrl && !vs_failed(); i++) {
		struct ctrl k = vs.ctrl[i];
		vs_send(k.op, k.src_port, k.dst_port, 0, k.conn, NULL, 0, false);
	}
	vs.nctrl = 0;
	struct conn *c = &vs.c;
	if (c->state == C_ESTABLISHED &&
	    (vs.credit_request_due || c->fwd_cnt - c->fwd_cnt_sent >= BUF_ALLOC / 2))
		conn_send(OP_CREDIT_UPDATE, 0, NULL, 0, false);
	vs.credit_request_due = false;
}

static void vs_step(void)
{
	vs_poll();
	if (!vs_failed())
		vs_flush();
}

/* Consume up to n received bytes (the app read them: fwd_cnt moves). */
static uint32_t conn_read(uint8_t *buf, uint32_t n)
{
	struct conn *c = &vs.c;

	if (n > c->ring_len)
		n = c->ring_len;
	for (uint32_t i = 0; i < n; i++)
		buf[i] = c->ring[(c->ring_pos + i) % BUF_ALLOC];
	c->ring_pos = (c->ring_pos + n) % BUF_ALLOC;
	c->ring_len -= n;
	c->fwd_cnt += n;
	return n;
}

/* Send n bytes as RW packets within the peer's credit. */
static bool conn_write(const uint8_t *p, uint32_t n, bool split)
{
	struct conn *c = &vs.c;
	uint64_t end = deadline_after_ms(params.timeout_ms);
	bool asked = false;

	while (n) {
		if (c->state != C_ESTABLISHED || (c->peer_shutdown & SHUT_RCV)) {
			fail("vsock: connection closed by the peer while sending");
			return false;
		}
		uint32_t credit = c->peer_buf_alloc - (c->tx_cnt - c->peer_fwd_cnt);
		if (credit > c->peer_buf_alloc)	/* peer's fwd_cnt ahead of tx_cnt */
			credit = 0;
		if (!credit) {
			if (!asked) {
				conn_send(OP_CREDIT_REQUEST, 0, NULL, 0, false);
				asked = true;
			}
			if (deadline_passed(end)) {
				fail("vsock: no credit from the peer within %u ms",
				     params.timeout_ms);
				return false;
			}
			vs_step();
			cpu_relax();
			continue;
		}
		uint32_t k = n < credit ? n : credit;
		if (k > PAYLOAD)
			k = PAYLOAD;
		if (!conn_send(OP_RW, 0, p, k, split))
			return false;
		c->tx_cnt += k;
		p += k;
		n -= k;
		asked = false;
	}
	return true;
}

/* Wait until cond() holds, stepping the protocol; false on timeout/failure. */
static bool vs_wait(bool (*cond)(void), const char *what)
{
	uint64_t end = deadline_after_ms(params.timeout_ms);

	for (;;) {
		vs_step();
		if (vs_failed())
			return false;
		if (cond())
			return true;
		if (deadline_passed(end)) {
			fail("vsock: %s: timeout after %u ms", what, params.timeout_ms);
			return false;
		}
		cpu_relax();
	}
}

static bool not_connecting(void) { return vs.c.state != C_CONNECTING; }
static bool established(void) { return vs.c.state == C_ESTABLISHED; }

/* Clean close: if the peer already shut down both ways, answer RST (as
 * Linux does); otherwise SHUTDOWN(RCV|SEND) and wait for the RST. */
static void conn_close(void)
{
	struct conn *c = &vs.c;

	if (c->state == C_CLOSED) {
		report("vsock: connection reset by the peer");
		return;
	}
	if (c->peer_shutdown == (SHUT_RCV | SHUT_SEND)) {
		conn_send(OP_RST, 0, NULL, 0, false);
		c->state = C_CLOSED;
		report("vsock: peer shut down, sent RST: closed");
		return;
	}
	c->state = C_CLOSING;
	if (!conn_send(OP_SHUTDOWN, SHUT_RCV | SHUT_SEND, NULL, 0, false))
		return;
	uint64_t end = deadline_after_ms(params.timeout_ms);
	while (!c->got_rst) {
		vs_step();
		if (vs_failed())
			return;
		if (c->peer_shutdown == (SHUT_RCV | SHUT_SEND)) {
			conn_send(OP_RST, 0, NULL, 0, false);
			c->state = C_CLOSED;
			report("vsock: SHUTDOWN answered by SHUTDOWN, sent RST: closed");
			return;
		}
		if (deadline_passed(end)) {
			fail("vsock: no RST within %u ms after SHUTDOWN", params.timeout_ms);
			conn_send(OP_RST, 0, NULL, 0, false);
			c->state = C_CLOSED;
			return;
		}
		cpu_relax();
	}
	report("vsock: SHUTDOWN sent, RST received: closed");
}

static void print_data(const char *what, const uint8_t *p, uint32_t n)
{
	gprintf("TESTGUEST: vsock: %s ", what);
	print_quoted((const char *)p, n);
	serial_putc('\n');
}

/* ---- the two scenarios ---------------------------------------------------------- */
static void vs_connect(uint32_t port)
{
	static const char hello[] = "hello from the guest\n";
	struct conn *c = &vs.c;

	*c = (struct conn){ .state = C_CONNECTING, .local_port = GUEST_PORT,
			    .peer_port = port, .ring = c->ring };
	report("vsock: REQUEST to cid 2 port %u from port %u", port, GUEST_PORT);
	if (!conn_send(OP_REQUEST, 0, NULL, 0, false) ||
	    !vs_wait(not_connecting, "waiting for RESPONSE"))
		return;
	if (c->state != C_ESTABLISHED) {
		fail("vsock: connection to port %u refused (RST)", port);
		return;
	}
	report("vsock: connected (peer buf_alloc %u fwd_cnt %u)", c->peer_buf_alloc,
	       c->peer_fwd_cnt);
	virtio_isr_check(vs.d, "RESPONSE");
	if (!conn_write((const uint8_t *)hello, sizeof(hello) - 1, true))
		return;
	report("vsock: sent \"hello from the guest\\n\" (2-descriptor chain)");

	/* Read one line (up to 255 bytes). */
	uint8_t line[256];
	uint32_t n = 0;
	uint64_t end = deadline_after_ms(params.timeout_ms);
	while (!(n && line[n - 1] == '\n') && n < sizeof(line) - 1) {
		vs_step();
		if (vs_failed())
			return;
		/* One byte at a time: stop right after the newline. */
		if (conn_read(line + n, 1)) {
			n++;
			continue;
		}
		if (c->state == C_CLOSED || (c->peer_shutdown & SHUT_SEND))
			break;
		if (deadline_passed(end)) {
			fail("vsock: no line from the host within %u ms", params.timeout_ms);
			return;
		}
		cpu_relax();
	}
	print_data("received", line, n);
	if (!n || line[n - 1] != '\n') {
		fail("vsock: connection ended before a full line");
		return;
	}
	conn_close();
}

static void vs_accept(uint32_t port)
{
	struct conn *c = &vs.c;
	uint8_t buf[256];
	uint32_t echoed = 0;

	*c = (struct conn){ .ring = c->ring };
	vs.listen_port = port;
	report("vsock: listening on port %u", port);
	if (!vs_wait(established, "waiting for a connection"))
		return;
	vs.listen_port = 0;	/* one connection */
	virtio_isr_check(vs.d, "REQUEST");

	uint64_t end = deadline_after_ms(params.timeout_ms);
	for (;;) {
		vs_step();
		if (vs_failed())
			return;
		uint32_t n = conn_read(buf, sizeof(buf));
		if (n) {
			if (echoed < 1024)	/* the serial port is slow */
				print_data("echo", buf, n);
			for (uint32_t i = 0; i < n; i++)
				if (buf[i] >= 'a' && buf[i] <= 'z')
					buf[i] = (uint8_t)(buf[i] - 'a' + 'A');
			if (!conn_write(buf, n, false))
				return;
			echoed += n;
			end = deadline_after_ms(params.timeout_ms);
			continue;
		}
		if (c->state == C_CLOSED || (c->peer_shutdown & SHUT_SEND))
			break;
		if (deadline_passed(end)) {
			fail("vsock: idle for %u ms on the accepted connection",
			     params.timeout_ms);
			return;
		}
		cpu_relax();
	}
	report("vsock: echoed %u bytes uppercased", echoed);
	conn_close();
}

void vsock_test(struct virtio_dev *d)
{
	vs = (typeof(vs)){ .d = d, .fail_base = fail_count() };
	if (!virtio_begin(d, VIRTIO_VSOCK_F_STREAM))
		return;
	vs.cid = vcfg64(d, 0);
	report("vsock: guest_cid=%lu", vs.cid);
	if (vs.cid < 3 || vs.cid >= 0xffffffffu) {
		fail("vsock: guest_cid %lu is reserved or too large", vs.cid);
		return;
	}
	for (unsigned q = 0; q < 3; q++)
		if (!virtq_setup(d, q))
			return;

	/* rx: one single-descriptor buffer, the 2-descriptor chain, then
	 * single ones: the second packet (the first with data, usually)
	 * lands in the chain. */
	for (unsigned i = 0; i < RX_BUFS; i++) {
		struct rx_buf *b = &vs.rx[i];
		b->split = i == 1;
		b->hdr = arena_alloc(b->split ? HDR : HDR + PAYLOAD, 64);
		b->payload = b->split ? arena_alloc(PAYLOAD, 64) : (uint8_t *)b->hdr + HDR;
		if (!rx_post(b)) {
			fail("vsock: rx queue too small");
			return;
		}
	}
	vs.events = arena_alloc(4 * EVENT_BUFS, 16);
	for (unsigned i = 0; i < EVENT_BUFS; i++) {
		struct vbuf v = { &vs.events[i], 4, true };
		virtq_add(evq(), &v, 1, &vs.events[i]);
	}
	for (unsigned i = 0; i < TX_SLOTS; i++)
		vs.tx[i].mem = arena_alloc(64 + PAYLOAD, 64);
	vs.c.ring = arena_alloc(BUF_ALLOC, 64);
	virtio_driver_ok(d);
	virtq_kick(rxq());
	virtq_kick(evq());

	if (params.vsock_port && !vs_failed())
		vs_connect(params.vsock_port);
	if (params.vsock_listen && !vs_failed())
		vs_accept(params.vsock_listen);
	if (!params.vsock_port && !params.vsock_listen)
		report("vsock: no connection requested (testguest.vsock_port/vsock_listen)");
	if (!vs_failed())
		report("vsock ok");
}
