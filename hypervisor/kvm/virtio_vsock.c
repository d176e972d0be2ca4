/* virtio-vsock device, Firecracker's hybrid scheme (virtio_vsock.h).
 *
 * One struct conn per connection, keyed by (local port, peer port): local
 * is the host side (2, local_port), peer the guest side (guest_cid,
 * peer_port).  A connection owes the guest control packets (REQUEST,
 * RESPONSE, CREDIT_UPDATE, CREDIT_REQUEST, SHUTDOWN) as bits in
 * c->pending, and sits in the control queue while it has any: at most one
 * entry per connection, so the queue is bounded by the connection limit.
 * RSTs outlive their connection and go to a separate ring of
 * VSOCK_RST_QUEUE entries.  Control packets always go out before data, so
 * a RESPONSE precedes the first RW and a SHUTDOWN follows the last.
 *
 * Data host -> guest is read from the socket only when the guest has both
 * credit and an rx buffer: the buffer is popped first (and held if the
 * socket turns out to be empty), then read() fills at most what fits.
 * Without rx buffers every connection stops polling EPOLLIN until the
 * guest kicks the rx queue; without credit that connection stops until a
 * packet from the guest grants more.  A connection with nothing to poll is
 * removed from the evloop, so a hung-up peer (EPOLLHUP is reported
 * whatever the mask) cannot make the loop spin.
 *
 * Data guest -> host is written straight to the socket; what the socket
 * does not take is buffered up to VSOCK_BUF_ALLOC, our advertised
 * buf_alloc.  A guest that stays within its credit can never overflow
 * that, so overflowing it is a credit violation: RST. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/ttrpc.h"		/* kr_unix_listen */
#include "kr/util.h"
#include "virtio_vsock.h"
#include "vsock_packet.h"

#define CONN_HASH 1024u		/* buckets, a power of two */
#define ACCEPT_BATCH 16		/* accepts per listener event */
#define TX_BUDGET 256		/* tx chains per kick before yielding */
#define UDS_PATH_MAX 96		/* leaves room for "_4294967295" in sun_path */

#define DEFAULT_LINE_MS 5000
#define DEFAULT_REQUEST_MS 2000
#define DEFAULT_SHUTDOWN_MS 2000
#define TICK_MS 250		/* deadline resolution */
#define TICK_MIN_MS 5

/* Control packets a connection owes the guest, sent in this order. */
#define PEND_REQUEST 1u
#define PEND_RESPONSE 2u
#define PEND_CREDIT_UPDATE 4u
#define PEND_CREDIT_REQUEST 8u
#define PEND_SHUTDOWN 16u

enum conn_state {
	CONN_LINE,		/* host client: reading "CONNECT <port>\n" */
	CONN_REQUESTED,		/* host-initiated: waiting for the RESPONSE */
	CONN_ESTABLISHED,
};

struct vsock;

struct conn {
	struct vsock *vs;
	int fd;
	enum conn_state state;
	uint32_t local_port;	/* host side */
	uint32_t peer_port;	/* guest side */
	bool hashed;		/* in the port hash (not in CONN_LINE) */
	uint32_t events;	/* registered epoll mask, 0 = not registered */
	uint64_t deadline;	/* kr_now_ms() time limit, 0 = none */
	bool failed;		/* evloop registration failed: reset soon */

	struct conn *prev, *next;		/* all connections */
	struct conn *port_next, *fd_next;	/* hash chains */
	struct conn *ctl_prev, *ctl_next;	/* control queue */
	bool ctl_queued;
	unsigned pending;	/* PEND_* */

	char line[VSOCK_CONNECT_LINE_MAX];
	unsigned line_len;

	/* The guest's receive side, as it last told us. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;	/* payload bytes we sent the guest */
	bool credit_requested;	/* CREDIT_REQUEST sent, no credit since */

	/* Our receive side. */
	uint32_t rx_cnt;	/* payload bytes the guest sent us */
	uint32_t fwd_cnt;	/* of those, written to the host socket */
	uint32_t last_fwd_sent;	/* fwd_cnt in our last packet to the guest */
	uint8_t *buf;		/* ring of VSOCK_BUF_ALLOC bytes, lazily */
	uint32_t buf_head, buf_len;

	uint32_t guest_shut;	/* SHUTDOWN flags the guest sent */
	uint32_t host_shut;	/* SHUTDOWN flags we sent (or queued) */
	bool shut_wr_pending;	/* shutdown(SHUT_WR) once buf is flushed */
	bool rst_after_flush;	/* the guest shut both ways: RST once flushed */
};

struct rst_entry {
	uint64_t src_cid;	/* normally 2; the cid the guest addressed */
	uint32_t src_port, dst_port;
};

struct vsock {
	struct virtio_dev *d;
	uint64_t guest_cid;
	char path[UDS_PATH_MAX + 1];
	int listen_fd, timer_fd;
	bool listen_watched, timer_watched, listen_paused;
	dev_t sock_dev;		/* the socket file we created, so that */
	ino_t sock_ino;		/* destroy removes only that one */
	struct virtio_vsock_limits lim;

	struct conn *conns;
	unsigned nconns;
	struct conn *port_hash[CONN_HASH];
	struct conn *fd_hash[CONN_HASH];
	struct conn *ctl_head, *ctl_tail;
	struct rst_entry rst[VSOCK_RST_QUEUE];
	unsigned rst_head, rst_len;
	uint32_t next_port;

	struct vq_seg rx_segs[VSOCK_QUEUE_MAX], tx_segs[VSOCK_QUEUE_MAX];
	struct vq_chain rx_chain, tx_chain;
	bool rx_held;		/* rx_chain popped, not yet used */
	bool rx_starved;	/* no rx buffers: sockets are not read */
	bool rx_pushed;		/* used rx buffers to signal */
	bool warned;		/* the first malformed packet is a warning */

	struct virtio_vsock_stats st;
	uint8_t rx_bounce[VSOCK_MAX_PAYLOAD];
	uint8_t tx_bounce[VSOCK_MAX_PAYLOAD];
};

static void conn_update_events(struct conn *c);
static void conn_handler(void *opaque, int fd, uint32_t events);
static bool rx_flush(struct vsock *vs);

/* ---- connection table --------------------------------------------------- */

static unsigned port_bucket(uint32_t local, uint32_t peer)
{
	return ((local * 2654435761u) ^ peer) & (CONN_HASH - 1);
}

static struct conn *conn_find(struct vsock *vs, uint32_t local, uint32_t peer)
{
	struct conn *c = vs->port_hash[port_bucket(local, peer)];

	while (c && !(c->local_port == local && c->peer_port == peer))
		c = c->port_next;
	return c;
}

static struct conn *conn_by_fd(struct vsock *vs, int fd)
{
	struct conn *c = vs->fd_hash[(unsigned)fd & (CONN_HASH - 1)];

	while (c && c->fd != fd)
		c = c->fd_next;
	return c;
}

static void port_hash_add(struct conn *c, uint32_t local, uint32_t peer)
{
	struct conn **b = &c->vs->port_hash[port_bucket(local, peer)];

	c->local_port = local;
	c->peer_port = peer;
	c->port_next = *b;
	*b = c;
	c->hashed = true;
}

static void unlink_from(struct conn **head, struct conn *c, bool by_port)
{
	struct conn **pp = head;

	while (*pp && *pp != c)
		pp = by_port ? &(*pp)->port_next : &(*pp)->fd_next;
	if (*pp)
		*pp = by_port ? c->port_next : c->fd_next;
}

static struct conn *conn_new(struct vsock *vs, int fd, enum conn_state state)
{
	struct conn *c = kr_xcalloc(1, sizeof(*c));
	struct conn **b = &vs->fd_hash[(unsigned)fd & (CONN_HASH - 1)];

	c->vs = vs;
	c->fd = fd;
	c->state = state;
	c->fd_next = *b;
	*b = c;
	c->next = vs->conns;
	if (vs->conns)
		vs->conns->prev = c;
	vs->conns = c;
	vs->nconns++;
	return c;
}

static void ctl_dequeue(struct conn *c)
{
	struct vsock *vs = c->vs;

	if (!c->ctl_queued)
		return;
	if (c->ctl_prev)
		c->ctl_prev->ctl_next = c->ctl_next;
	else
		vs->ctl_head = c->ctl_next;
	if (c->ctl_next)
		c->ctl_next->ctl_prev = c->ctl_prev;
	else
		vs->ctl_tail = c->ctl_prev;
	c->ctl_prev = c->ctl_next = NULL;
	c->ctl_queued = false;
}

/* Close the host socket and forget the connection; nothing is sent to
 * the guest. */
static void conn_close(struct conn *c)
{
	struct vsock *vs = c->vs;

	if (c->events)
		ev_del(vs->d->ev, c->fd);
	close(c->fd);
	unlink_from(&vs->fd_hash[(unsigned)c->fd & (CONN_HASH - 1)], c, false);
	if (c->hashed)
		unlink_from(&vs->port_hash[port_bucket(c->local_port,
						       c->peer_port)], c, true);
	ctl_dequeue(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		vs->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	vs->nconns--;
	free(c->buf);
	free(c);
}

static void close_all(struct vsock *vs)
{
	while (vs->conns)
		conn_close(vs->conns);
	vs->rst_head = vs->rst_len = 0;
}

/* ---- timer -------------------------------------------------------------- */

/* Deadlines are checked by a periodic tick armed once at create (and by
 * virtio_vsock_set_limits): the VMM's seccomp filter allows no
 * timerfd_settime once the guest runs, so the timer cannot be re-armed per
 * deadline.  A time limit is thus met within one tick. */
static int timer_set_tick(struct vsock *vs, struct kr_err *err)
{
	unsigned ms = TICK_MS;
	struct itimerspec its;

	/* Tests shorten the limits: tick at least four times per limit. */
	if (vs->lim.line_ms / 4 < ms)
		ms = vs->lim.line_ms / 4;
	if (vs->lim.request_ms / 4 < ms)
		ms = vs->lim.request_ms / 4;
	if (vs->lim.shutdown_ms / 4 < ms)
		ms = vs->lim.shutdown_ms / 4;
	if (ms < TICK_MIN_MS)
		ms = TICK_MIN_MS;
	its.it_value.tv_sec = its.it_interval.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = its.it_interval.tv_nsec =
		(long)(ms % 1000) * 1000000L;
	if (timerfd_settime(vs->timer_fd, 0, &its, NULL) < 0)
		return kr_err_sys(err, "virtio-vsock: timerfd_settime");
	return 0;
}

static void conn_set_deadline(struct conn *c, unsigned ms)
{
	c->deadline = kr_now_ms() + ms;
}

/* ---- control packets to the guest --------------------------------------- */

static void hdr_for(const struct conn *c, uint16_t op, struct vsock_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = VSOCK_HOST_CID;
	h->dst_cid = c->vs->guest_cid;
	h->src_port = c->local_port;
	h->dst_port = c->peer_port;
	h->type = VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = VSOCK_BUF_ALLOC;
	h->fwd_cnt = c->fwd_cnt;
}

static void conn_pend(struct conn *c, unsigned bits)
{
	struct vsock *vs = c->vs;

	c->pending |= bits;
	if (c->ctl_queued)
		return;
	c->ctl_prev = vs->ctl_tail;
	c->ctl_next = NULL;
	if (vs->ctl_tail)
		vs->ctl_tail->ctl_next = c;
	else
		vs->ctl_head = c;
	vs->ctl_tail = c;
	c->ctl_queued = true;
}

/* Queue an RST for the guest.  The ring is bounded: a guest that posts no
 * rx buffers while provoking RSTs loses some, and only its own
 * connections notice. */
static void rst_queue(struct vsock *vs, uint64_t src_cid, uint32_t src_port,
		      uint32_t dst_port)
{
	struct rst_entry *e;

	if (vs->rst_len == VSOCK_RST_QUEUE) {
		vs->st.rst_dropped++;
		return;
	}
	e = &vs->rst[(vs->rst_head + vs->rst_len) % VSOCK_RST_QUEUE];
	*e = (struct rst_entry){ src_cid, src_port, dst_port };
	vs->rst_len++;
}

static void rst_reply(struct vsock *vs, const struct vsock_hdr *h)
{
	struct vsock_hdr r;

	vsock_rst_for(h, &r);
	rst_queue(vs, r.src_cid, r.src_port, r.dst_port);
}

/* Abort a connection: RST to the guest, close the host socket. */
static void conn_reset(struct conn *c)
{
	if (c->hashed)
		rst_queue(c->vs, VSOCK_HOST_CID, c->local_port, c->peer_port);
	conn_close(c);
}

/* ---- rx queue ----------------------------------------------------------- */

static void rx_starve(struct vsock *vs)
{
	if (vs->rx_starved)
		return;
	vs->rx_starved = true;
	for (struct conn *c = vs->conns; c; c = c->next)
		conn_update_events(c);
}

/* Hand the rx buffer we hold back unused (used.len 0). */
static bool rx_return(struct vsock *vs)
{
	struct kr_err err = { 0 };

	vs->rx_held = false;
	if (vq_push(&vs->d->vq[VSOCK_QUEUE_RX], vs->rx_chain.head, 0,
		    &err) < 0) {
		kr_err_wrap(&err, "virtio-vsock: rx queue");
		virtio_dev_fail(vs->d, &err);
		return false;
	}
	vs->rx_pushed = true;
	return true;
}

/* The next rx buffer, popped if need be, with room for a header (and for
 * payload too if data): NULL when the guest has none (or the queue is
 * unusable), and the sockets stop being read until its next rx kick.
 * Buffers used in order (IN_ORDER): one too small for its purpose goes
 * back unused rather than being skipped. */
static struct vq_chain *rx_get(struct vsock *vs, bool data)
{
	struct virtio_dev *d = vs->d;
	struct vq *vq = &d->vq[VSOCK_QUEUE_RX];
	uint32_t need = VSOCK_HDR_SIZE + (data ? 1 : 0);
	struct kr_err err = { 0 };

	if (vs->rx_held && !(vq->ready && vq->inflight))
		vs->rx_held = false;	/* gone with a per-queue reset */
	if (!d->active || !vq->ready || vq->broken) {
		rx_starve(vs);
		return NULL;
	}
	for (unsigned tries = 0; tries <= vq->size; tries++) {
		if (!vs->rx_held) {
			int r = vq_pop(vq, d->gm, &vs->rx_chain, &err);

			if (r < 0) {
				kr_err_wrap(&err, "virtio-vsock: rx queue");
				virtio_dev_fail(d, &err);
				break;
			}
			if (r == 0)
				break;
			vs->rx_held = true;
		}
		if (vs->rx_chain.write_len >= need)
			return &vs->rx_chain;
		/* The guest only wastes its own buffer. */
		if (vs->rx_chain.write_len < VSOCK_HDR_SIZE) {
			vs->st.bad_packets++;
			kr_debug("virtio-vsock %s: rx buffer of %u writable"
				 " bytes is smaller than a header", vs->path,
				 vs->rx_chain.write_len);
		}
		if (!rx_return(vs))
			break;
	}
	rx_starve(vs);
	return NULL;
}

/* Put header h and h->len bytes of payload into the held rx buffer (which
 * the caller made sure is large enough) and hand it to the guest. */
static void rx_send(struct vsock *vs, const struct vsock_hdr *h,
		    const void *payload)
{
	struct vq_chain *ch = &vs->rx_chain;
	uint8_t raw[VSOCK_HDR_SIZE];
	struct kr_err err = { 0 };

	vsock_hdr_encode(h, raw);
	vq_chain_write(ch, 0, raw, sizeof(raw));
	if (h->len)
		vq_chain_write(ch, VSOCK_HDR_SIZE, payload, h->len);
	vs->rx_held = false;
	if (vq_push(&vs->d->vq[VSOCK_QUEUE_RX], ch->head,
		    VSOCK_HDR_SIZE + h->len, &err) < 0) {
		kr_err_wrap(&err, "virtio-vsock: rx queue");
		virtio_dev_fail(vs->d, &err);
		return;
	}
	vs->rx_pushed = true;
	vs->st.rx_packets++;
}

static void rx_signal(struct vsock *vs)
{
	if (!vs->rx_pushed)
		return;
	vs->rx_pushed = false;
	virtio_dev_signal_used(vs->d, VSOCK_QUEUE_RX);
}

static bool rst_flush(struct vsock *vs)
{
	while (vs->rst_len) {
		const struct rst_entry *e = &vs->rst[vs->rst_head];
		struct vsock_hdr h = {
			.src_cid = e->src_cid, .dst_cid = vs->guest_cid,
			.src_port = e->src_port, .dst_port = e->dst_port,
			.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
		};

		if (!rx_get(vs, false))
			return false;
		rx_send(vs, &h, NULL);
		vs->rst_head = (vs->rst_head + 1) % VSOCK_RST_QUEUE;
		vs->rst_len--;
	}
	return true;
}

static uint16_t next_pending_op(struct conn *c, uint32_t *flags)
{
	static const struct { unsigned bit; uint16_t op; } order[] = {
		{ PEND_REQUEST, VSOCK_OP_REQUEST },
		{ PEND_RESPONSE, VSOCK_OP_RESPONSE },
		{ PEND_CREDIT_UPDATE, VSOCK_OP_CREDIT_UPDATE },
		{ PEND_CREDIT_REQUEST, VSOCK_OP_CREDIT_REQUEST },
		{ PEND_SHUTDOWN, VSOCK_OP_SHUTDOWN },
	};

	for (unsigned i = 0; i < KR_ARRAY_SIZE(order); i++) {
		if (c->pending & order[i].bit) {
			c->pending &= ~order[i].bit;
			*flags = order[i].op == VSOCK_OP_SHUTDOWN ? c->host_shut : 0;
			return order[i].op;
		}
	}
	return VSOCK_OP_INVALID;
}

static bool ctl_flush(struct vsock *vs)
{
	struct conn *c;

	while ((c = vs->ctl_head)) {
		while (c->pending) {
			struct vsock_hdr h;
			uint32_t flags = 0;

			if (!rx_get(vs, false))
				return false;
			hdr_for(c, next_pending_op(c, &flags), &h);
			h.flags = flags;
			/* Every packet tells the guest our fwd_cnt. */
			c->last_fwd_sent = c->fwd_cnt;
			rx_send(vs, &h, NULL);
		}
		ctl_dequeue(c);
	}
	return true;
}

/* Send what the guest is owed, RSTs first; false if rx buffers ran out. */
static bool rx_flush(struct vsock *vs)
{
	return rst_flush(vs) && ctl_flush(vs);
}

/* ---- host sockets ------------------------------------------------------- */

static uint32_t peer_credit(const struct conn *c)
{
	return vsock_credit_free(c->peer_buf_alloc, c->peer_fwd_cnt, c->tx_cnt);
}

static bool conn_wants_read(const struct conn *c)
{
	if (c->state == CONN_LINE)
		return true;
	return c->state == CONN_ESTABLISHED && !c->vs->rx_starved &&
	       !(c->host_shut & VSOCK_SHUTDOWN_SEND) &&
	       !(c->guest_shut & VSOCK_SHUTDOWN_RCV) && !c->rst_after_flush &&
	       peer_credit(c) > 0;
}

/* Poll exactly what the connection can act on; nothing at all means it
 * leaves the evloop (see the top of the file). */
static void conn_update_events(struct conn *c)
{
	struct vsock *vs = c->vs;
	struct kr_err err = { 0 };
	uint32_t want = 0;
	int r = 0;

	if (c->failed)
		return;
	if (conn_wants_read(c))
		want |= EPOLLIN;
	if (c->buf_len)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	if (!want)
		ev_del(vs->d->ev, c->fd);
	else if (!c->events)
		r = ev_add(vs->d->ev, c->fd, want, conn_handler, vs, &err);
	else
		r = ev_mod(vs->d->ev, c->fd, want, &err);
	if (r < 0) {
		/* Cannot be closed from here (callers still use c): the
		 * timer resets it at once. */
		kr_warn("virtio-vsock %s: port %u: %s", vs->path, c->local_port,
			err.msg);
		ev_del(vs->d->ev, c->fd);
		c->events = 0;
		c->failed = true;
		c->deadline = kr_now_ms();	/* expired: the next tick */
		return;
	}
	c->events = want;
}

static void buf_append(struct conn *c, const uint8_t *p, uint32_t n)
{
	uint32_t tail, first;

	if (!c->buf)
		c->buf = kr_xcalloc(1, VSOCK_BUF_ALLOC);
	tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
	first = n < VSOCK_BUF_ALLOC - tail ? n : VSOCK_BUF_ALLOC - tail;
	memcpy(c->buf + tail, p, first);
	memcpy(c->buf, p + first, n - first);
	c->buf_len += n;
}

/* Tell the guest about freed space once its view of our free space gets
 * small, and only if an update would actually give it more. */
static void maybe_credit_update(struct conn *c)
{
	uint32_t seen = vsock_credit_free(VSOCK_BUF_ALLOC, c->last_fwd_sent,
					  c->rx_cnt);

	if (seen < VSOCK_CREDIT_THRESHOLD && c->fwd_cnt != c->last_fwd_sent)
		conn_pend(c, PEND_CREDIT_UPDATE);
}

/* Write buffered guest data to the host socket.  -1: c was closed. */
static int conn_flush(struct conn *c)
{
	while (c->buf_len) {
		uint32_t first = VSOCK_BUF_ALLOC - c->buf_head;
		struct iovec iov[2] = {
			{ c->buf + c->buf_head,
			  c->buf_len < first ? c->buf_len : first },
			{ c->buf, c->buf_len < first ? 0 : c->buf_len - first },
		};
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0) {
			kr_debug("virtio-vsock %s: port %u: write: %s", c->vs->path,
				 c->local_port, strerror(errno));
			conn_reset(c);
			return -1;
		}
		c->buf_head = (c->buf_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	if (!c->buf_len) {
		if (c->rst_after_flush) {
			conn_reset(c);
			return -1;
		}
		if (c->shut_wr_pending)
			shutdown(c->fd, SHUT_WR);
		c->shut_wr_pending = false;
	}
	maybe_credit_update(c);
	conn_update_events(c);
	return 0;
}

/* The host peer will send no more (read() returned 0).  We tell the guest
 * we will send no more; and, if the peer is gone altogether (hang-up) or
 * the guest had finished sending anyway, that we will receive no more
 * either: a full shutdown, which the guest answers with an RST. */
static void host_eof(struct conn *c, bool hup)
{
	struct vsock *vs = c->vs;

	c->host_shut |= VSOCK_SHUTDOWN_SEND;
	if (hup || (c->guest_shut & VSOCK_SHUTDOWN_SEND))
		c->host_shut |= VSOCK_SHUTDOWN_RCV;
	if (hup) {
		/* Nobody will read what is still buffered. */
		c->buf_len = 0;
		c->shut_wr_pending = false;
	}
	conn_pend(c, PEND_SHUTDOWN);
	if (c->host_shut == VSOCK_SHUTDOWN_BOTH)
		conn_set_deadline(c, vs->lim.shutdown_ms);
	conn_update_events(c);
}

/* Move one packet of host data to the guest, within its credit and the
 * size of its next rx buffer.  -1: c was closed. */
static int conn_read_host(struct conn *c, bool hup)
{
	struct vsock *vs = c->vs;
	struct vq_chain *ch;
	struct vsock_hdr h;
	uint32_t n;
	ssize_t r;

	if (!rx_flush(vs))
		return 0;
	n = peer_credit(c);
	if (n == 0) {
		conn_update_events(c);
		return 0;
	}
	ch = rx_get(vs, true);
	if (!ch)
		return 0;
	if (n > ch->write_len - VSOCK_HDR_SIZE)
		n = ch->write_len - VSOCK_HDR_SIZE;
	if (n > VSOCK_MAX_PAYLOAD)
		n = VSOCK_MAX_PAYLOAD;
	do {
		r = read(c->fd, vs->rx_bounce, n);
	} while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN)
		return 0;	/* the buffer stays held for the next one */
	if (r < 0) {
		kr_debug("virtio-vsock %s: port %u: read: %s", vs->path,
			 c->local_port, strerror(errno));
		conn_reset(c);
		return -1;
	}
	if (r == 0) {
		host_eof(c, hup);
		rx_flush(vs);	/* the SHUTDOWN, into the buffer we hold */
		return 0;
	}
	hdr_for(c, VSOCK_OP_RW, &h);
	h.len = (uint32_t)r;
	c->last_fwd_sent = c->fwd_cnt;
	rx_send(vs, &h, vs->rx_bounce);
	c->tx_cnt += (uint32_t)r;
	if (peer_credit(c) == 0 && !c->credit_requested) {
		/* Out of credit: ask, once, instead of waiting for the
		 * guest to volunteer an update. */
		c->credit_requested = true;
		conn_pend(c, PEND_CREDIT_REQUEST);
		rx_flush(vs);
	}
	conn_update_events(c);
	return 0;
}

/* ---- host-initiated connections: the CONNECT line ----------------------- */

static uint32_t alloc_port(struct vsock *vs, uint32_t peer)
{
	/* At most max_conns keys are taken, so this many tries find one. */
	for (unsigned i = 0; i <= VSOCK_MAX_CONNS; i++) {
		uint32_t p = vs->next_port;

		vs->next_port = p + 1 == VSOCK_LOCAL_PORT_END ?
				VSOCK_LOCAL_PORT_FIRST : p + 1;
		if (!conn_find(vs, p, peer))
			return p;
	}
	return 0;
}

static int line_done(struct conn *c)
{
	struct vsock *vs = c->vs;
	struct kr_err why = { 0 };
	uint32_t port, local;

	if (vsock_connect_line_parse(c->line, c->line_len, &port, &why) < 0) {
		kr_debug("virtio-vsock %s: host client: %s", vs->path, why.msg);
		conn_close(c);
		return -1;
	}
	if (!vs->d->active) {
		kr_debug("virtio-vsock %s: host client for port %u: the guest"
			 " driver is not ready", vs->path, port);
		conn_close(c);
		return -1;
	}
	local = alloc_port(vs, port);
	if (!local) {
		conn_close(c);
		return -1;
	}
	port_hash_add(c, local, port);
	c->state = CONN_REQUESTED;
	conn_pend(c, PEND_REQUEST);
	conn_set_deadline(c, vs->lim.request_ms);
	conn_update_events(c);
	rx_flush(vs);
	return 0;
}

/* Read the CONNECT line up to its newline and not one byte further: what
 * follows is data for the guest.  Peek, then take exactly that much. */
static int line_read(struct conn *c)
{
	char peek[VSOCK_CONNECT_LINE_MAX];
	size_t room = VSOCK_CONNECT_LINE_MAX - c->line_len, take;
	const char *nl;
	ssize_t n;

	n = recv(c->fd, peek, room, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		conn_close(c);	/* gone before finishing its line */
		return -1;
	}
	nl = memchr(peek, '\n', (size_t)n);
	take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) !=
	    (ssize_t)take) {
		conn_close(c);
		return -1;
	}
	c->line_len += (unsigned)take;
	if (nl)
		return line_done(c);
	if (c->line_len == VSOCK_CONNECT_LINE_MAX) {
		kr_debug("virtio-vsock %s: host client: no newline in %u"
			 " bytes", c->vs->path, VSOCK_CONNECT_LINE_MAX);
		conn_close(c);
		return -1;
	}
	return 0;
}

static void conn_event(struct conn *c, uint32_t events)
{
	if (c->state == CONN_LINE) {
		line_read(c);
		return;
	}
	if (c->state != CONN_ESTABLISHED)
		return;
	if (c->buf_len && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) &&
	    conn_flush(c) < 0)
		return;
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_wants_read(c))
		conn_read_host(c, events & EPOLLHUP);
}

static void conn_handler(void *opaque, int fd, uint32_t events)
{
	struct vsock *vs = opaque;
	struct conn *c;

	virtio_dev_lock(vs->d);
	/* Looked up by fd under the lock: a reset on a vCPU thread may
	 * have closed the connection since epoll reported the event. */
	c = conn_by_fd(vs, fd);
	if (c && c->events)
		conn_event(c, events);
	/* A flush may have freed space the guest must hear about, a
	 * failed write left an RST. */
	rx_flush(vs);
	rx_signal(vs);
	virtio_dev_unlock(vs->d);
}

/* ---- listener ----------------------------------------------------------- */

static void listen_pause(struct vsock *vs)
{
	if (!vs->listen_watched)
		return;
	ev_del(vs->d->ev, vs->listen_fd);
	vs->listen_watched = false;
	vs->listen_paused = true;	/* the next tick retries */
}

static void accept_one(struct vsock *vs, int fd)
{
	struct conn *c;

	if (vs->nconns >= vs->lim.max_conns) {
		vs->st.refused++;
		kr_debug("virtio-vsock %s: host client refused: %u connections",
			 vs->path, vs->nconns);
		close(fd);
		return;
	}
	c = conn_new(vs, fd, CONN_LINE);
	conn_set_deadline(c, vs->lim.line_ms);
	conn_update_events(c);
}

static void listen_handler(void *opaque, int fd, uint32_t events)
{
	struct vsock *vs = opaque;

	virtio_dev_lock(vs->d);
	for (int i = 0; i < ACCEPT_BATCH && vs->listen_watched; i++) {
		int cfd = accept4(vs->listen_fd, NULL, NULL,
				  SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			accept_one(vs, cfd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN) {
			/* EMFILE and the like: the client stays in the
			 * backlog and the listener stays readable; retry
			 * later instead of spinning. */
			kr_warn("virtio-vsock %s: accept: %s", vs->path,
				strerror(errno));
			listen_pause(vs);
		}
		break;
	}
	virtio_dev_unlock(vs->d);
}

/* ---- deadlines ---------------------------------------------------------- */

static void conn_expire(struct conn *c)
{
	struct vsock *vs = c->vs;

	if (c->state == CONN_LINE) {
		kr_debug("virtio-vsock %s: host client sent no CONNECT line in"
			 " %u ms", vs->path, vs->lim.line_ms);
		conn_close(c);
		return;
	}
	/* No RESPONSE to our REQUEST, no RST after our full SHUTDOWN, a
	 * flush that did not finish, or a registration that failed. */
	kr_debug("virtio-vsock %s: port %u -> guest port %u timed out",
		 vs->path, c->local_port, c->peer_port);
	conn_reset(c);
}

static void timer_handler(void *opaque, int fd, uint32_t events)
{
	struct vsock *vs = opaque;
	struct kr_err err = { 0 };
	uint64_t ticks, now;
	struct conn *c, *n;

	if (read(fd, &ticks, sizeof(ticks)) < 0) {
		/* Spurious wake-up: nothing to do yet. */
	}
	virtio_dev_lock(vs->d);
	now = kr_now_ms();
	for (c = vs->conns; c; c = n) {
		n = c->next;	/* conn_expire frees c, nothing else */
		if (c->deadline && c->deadline <= now)
			conn_expire(c);
	}
	if (vs->listen_paused &&
	    ev_add(vs->d->ev, vs->listen_fd, EPOLLIN, listen_handler, vs,
		   &err) == 0) {
		vs->listen_watched = true;
		vs->listen_paused = false;
	}
	rx_flush(vs);
	rx_signal(vs);
	virtio_dev_unlock(vs->d);
}

/* ---- packets from the guest --------------------------------------------- */

/* REQUEST to (2, P): connect to "<uds_path>_<P>".  A Unix connect does not
 * block: it succeeds, or fails at once (ENOENT, ECONNREFUSED, EAGAIN for a
 * full backlog). */
static void guest_connect(struct vsock *vs, const struct vsock_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct conn *c;
	int fd;

	if (vs->nconns >= vs->lim.max_conns) {
		vs->st.refused++;
		rst_reply(vs, h);
		return;
	}
	/* Fits: the path is at most UDS_PATH_MAX bytes. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%" PRIu32, vs->path,
		 h->dst_port);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		kr_debug("virtio-vsock: guest port %u -> %s: %s", h->src_port,
			 sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		rst_reply(vs, h);
		return;
	}
	c = conn_new(vs, fd, CONN_ESTABLISHED);
	port_hash_add(c, h->dst_port, h->src_port);
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	conn_pend(c, PEND_RESPONSE);
	conn_update_events(c);
}

/* The guest accepted our REQUEST: tell the host client, then relay. */
static void guest_accepted(struct conn *c)
{
	char ok[24];
	int n = snprintf(ok, sizeof(ok), "OK %" PRIu32 "\n", c->local_port);

	c->state = CONN_ESTABLISHED;
	c->deadline = 0;
	/* A fresh socket has room for a dozen bytes: a short write means
	 * the client is gone. */
	if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		kr_debug("virtio-vsock %s: host client for guest port %u is"
			 " gone", c->vs->path, c->peer_port);
		conn_reset(c);
		return;
	}
	conn_update_events(c);
}

static void guest_shutdown(struct conn *c, uint32_t flags)
{
	uint32_t added = flags & VSOCK_SHUTDOWN_BOTH & ~c->guest_shut;

	c->guest_shut |= added;
	if (c->guest_shut == VSOCK_SHUTDOWN_BOTH) {
		/* Done both ways: close and answer RST, after delivering
		 * what the host socket has not taken yet. */
		if (!c->buf_len) {
			conn_reset(c);
			return;
		}
		c->rst_after_flush = true;
		conn_set_deadline(c, c->vs->lim.shutdown_ms);
	} else if (added & VSOCK_SHUTDOWN_RCV) {
		shutdown(c->fd, SHUT_RD);
	} else if (added & VSOCK_SHUTDOWN_SEND) {
		if (c->buf_len)
			c->shut_wr_pending = true;
		else
			shutdown(c->fd, SHUT_WR);
	}
	conn_update_events(c);
}

/* RW: write straight to the host socket, buffer what it does not take.
 * -1: c was closed. */
static int guest_data(struct conn *c, const struct vq_chain *ch, uint32_t len)
{
	struct vsock *vs = c->vs;
	uint8_t *p = vs->tx_bounce;
	ssize_t w = 0;

	if (c->guest_shut & VSOCK_SHUTDOWN_SEND) {
		kr_debug("virtio-vsock %s: port %u: RW after SHUTDOWN(send)",
			 vs->path, c->local_port);
		conn_reset(c);
		return -1;
	}
	if (c->host_shut & VSOCK_SHUTDOWN_RCV)
		return 0;	/* we said we would not receive: in flight */
	if (len == 0)
		return 0;
	/* vsock_tx_parse checked that the chain holds len more bytes. */
	vq_chain_read(ch, VSOCK_HDR_SIZE, p, len);
	c->rx_cnt += len;
	if (!c->buf_len) {
		do {
			w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		} while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN) {
			kr_debug("virtio-vsock %s: port %u: write: %s", vs->path,
				 c->local_port, strerror(errno));
			conn_reset(c);
			return -1;
		}
		if (w < 0)
			w = 0;
		c->fwd_cnt += (uint32_t)w;
	}
	if (c->buf_len + (len - (uint32_t)w) > VSOCK_BUF_ALLOC) {
		kr_debug("virtio-vsock %s: port %u: guest sent beyond its"
			 " credit (%u bytes buffered, %u more)", vs->path,
			 c->local_port, c->buf_len, len - (uint32_t)w);
		vs->st.bad_packets++;
		conn_reset(c);
		return -1;
	}
	buf_append(c, p + w, len - (uint32_t)w);
	maybe_credit_update(c);
	conn_update_events(c);
	return 0;
}

static void packet_for_conn(struct conn *c, const struct vsock_hdr *h,
			    const struct vq_chain *ch)
{
	/* Every packet carries the guest's current credit. */
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (peer_credit(c) > 0)
		c->credit_requested = false;

	switch (h->op) {
	case VSOCK_OP_RST:
		conn_close(c);
		return;
	case VSOCK_OP_RESPONSE:
		if (c->state != CONN_REQUESTED)
			break;
		guest_accepted(c);
		return;
	case VSOCK_OP_CREDIT_UPDATE:
		conn_update_events(c);
		return;
	case VSOCK_OP_CREDIT_REQUEST:
		conn_pend(c, PEND_CREDIT_UPDATE);
		conn_update_events(c);
		return;
	case VSOCK_OP_SHUTDOWN:
		if (c->state != CONN_ESTABLISHED)
			break;
		guest_shutdown(c, h->flags);
		return;
	case VSOCK_OP_RW:
		if (c->state != CONN_ESTABLISHED)
			break;
		guest_data(c, ch, h->len);
		return;
	default:
		break;	/* REQUEST for an existing connection */
	}
	kr_debug("virtio-vsock %s: %s for port %u in the wrong state",
		 c->vs->path, vsock_op_name(h->op), c->local_port);
	c->vs->st.bad_packets++;
	conn_reset(c);
}

static void bad_packet(struct vsock *vs, enum vsock_verdict v,
		       const struct vsock_hdr *h, const struct kr_err *why)
{
	struct conn *c;

	vs->st.bad_packets++;
	if (!vs->warned)
		kr_warn("virtio-vsock %s: malformed packet from the guest"
			" (further ones are logged at debug level): %s",
			vs->path, why->msg);
	else
		kr_debug("virtio-vsock %s: %s", vs->path, why->msg);
	vs->warned = true;
	if (v != VSOCK_REPLY_RST)
		return;
	/* A malformed packet on a connection ends it. */
	c = h->dst_cid == VSOCK_HOST_CID ?
	    conn_find(vs, h->dst_port, h->src_port) : NULL;
	if (c)
		conn_reset(c);
	else
		rst_reply(vs, h);
}

static void tx_packet(struct vsock *vs, const struct vq_chain *ch)
{
	struct kr_err why = { 0 };
	enum vsock_verdict v;
	struct vsock_hdr h;
	struct conn *c;

	vs->st.tx_packets++;
	v = vsock_tx_parse(ch, vs->guest_cid, &h, &why);
	if (v != VSOCK_ACCEPT) {
		bad_packet(vs, v, &h, &why);
		return;
	}
	c = conn_find(vs, h.dst_port, h.src_port);
	if (c)
		packet_for_conn(c, &h, ch);
	else if (h.op == VSOCK_OP_REQUEST)
		guest_connect(vs, &h);
	else if (h.op != VSOCK_OP_RST)
		rst_reply(vs, &h);	/* unknown connection */
}

/* Take up to budget chains off the tx queue: 1 = budget used up, 0 =
 * queue empty, -1 = broken queue. */
static int tx_drain(struct vsock *vs, unsigned *budget)
{
	struct virtio_dev *d = vs->d;
	struct vq *vq = &d->vq[VSOCK_QUEUE_TX];
	struct kr_err err = { 0 };
	int r;

	while (*budget) {
		r = vq_pop(vq, d->gm, &vs->tx_chain, &err);
		if (r == 0)
			return 0;
		if (r > 0) {
			tx_packet(vs, &vs->tx_chain);
			/* tx buffers are only read: used.len 0 */
			r = vq_push(vq, vs->tx_chain.head, 0, &err);
		}
		if (r < 0) {
			kr_err_wrap(&err, "virtio-vsock: tx queue");
			virtio_dev_fail(d, &err);
			return -1;
		}
		(*budget)--;
	}
	return 1;
}

static void tx_process(struct vsock *vs)
{
	struct virtio_dev *d = vs->d;
	struct vq *vq = &d->vq[VSOCK_QUEUE_TX];
	unsigned budget = TX_BUDGET;
	int r;

	for (;;) {
		vq_disable_notify(vq);
		r = tx_drain(vs, &budget);
		if (r < 0)
			break;
		if (r > 0) {
			/* Let the other fds of the loop in, then go on: a
			 * guest refilling the queue as fast as we empty it
			 * must not keep the I/O thread to itself. */
			virtio_dev_kick_self(d, VSOCK_QUEUE_TX);
			break;
		}
		if (!vq_enable_notify(vq))
			break;
	}
	virtio_dev_signal_used(d, VSOCK_QUEUE_TX);
	rx_flush(vs);
}

/* ---- virtio_dev_ops ----------------------------------------------------- */

static void vsock_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			      unsigned len)
{
	const struct vsock *vs = d->priv;
	uint64_t cid = htole64(vs->guest_cid);

	/* The transport checked off + len <= config_size (8). */
	memcpy(data, (const uint8_t *)&cid + off, len);
}

static int vsock_activate(struct virtio_dev *d, struct kr_err *err)
{
	struct vsock *vs = d->priv;

	if (!d->vq[VSOCK_QUEUE_RX].ready || !d->vq[VSOCK_QUEUE_TX].ready)
		return kr_err_set(err, KR_FAILED_PRECONDITION,
				  "the rx and tx queues must be ready at"
				  " DRIVER_OK (rx %d, tx %d)",
				  d->vq[VSOCK_QUEUE_RX].ready,
				  d->vq[VSOCK_QUEUE_TX].ready);
	vs->rx_held = false;
	vs->rx_starved = false;
	return 0;
}

static void vsock_reset(struct virtio_dev *d)
{
	struct vsock *vs = d->priv;

	close_all(vs);
	vs->rx_held = false;
	vs->rx_starved = false;
	vs->rx_pushed = false;
}

static void vsock_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct vsock *vs = d->priv;

	switch (q) {
	case VSOCK_QUEUE_RX:
		/* New rx buffers: send what is owed, read the sockets
		 * again. */
		if (vs->rx_starved) {
			vs->rx_starved = false;
			for (struct conn *c = vs->conns; c; c = c->next)
				conn_update_events(c);
		}
		rx_flush(vs);
		break;
	case VSOCK_QUEUE_TX:
		tx_process(vs);
		break;
	default:
		break;	/* event queue: only TRANSPORT_RESET, never sent */
	}
	rx_signal(vs);
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = 3,
	.queue_max = VSOCK_QUEUE_MAX,
	.config_size = 8,
	.config_read = vsock_config_read,
	.activate = vsock_activate,
	.reset = vsock_reset,
	.queue_notify = vsock_queue_notify,
};

/* ---- create / destroy --------------------------------------------------- */

static int check_args(struct evloop *ev, uint64_t guest_cid, const char *path,
		      struct kr_err *err)
{
	size_t n = path ? strlen(path) : 0;

	if (!ev)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "virtio-vsock: no event loop");
	/* 0, 1, 2 and 0xffffffff are reserved; Linux keeps CIDs in 32
	 * bits. */
	if (guest_cid < 3 || guest_cid >= 0xffffffffull)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "virtio-vsock:"
				  " guest cid %" PRIu64 " is reserved or too"
				  " large (use 3..4294967294)", guest_cid);
	if (n == 0 || n > UDS_PATH_MAX)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "virtio-vsock:"
				  " uds path of %zu bytes (1..%d, to leave"
				  " room for \"_<port>\")", n, UDS_PATH_MAX);
	return 0;
}

static int start_listener(struct vsock *vs, struct kr_err *err)
{
	struct stat st;
	int fl;

	vs->listen_fd = kr_unix_listen(vs->path, err);
	if (vs->listen_fd < 0)
		return kr_err_wrap(err, "virtio-vsock");
	if (lstat(vs->path, &st) == 0) {
		vs->sock_dev = st.st_dev;
		vs->sock_ino = st.st_ino;
	}
	fl = fcntl(vs->listen_fd, F_GETFL);
	if (fl < 0 || fcntl(vs->listen_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return kr_err_sys(err, "virtio-vsock: %s: O_NONBLOCK", vs->path);
	if (ev_add(vs->d->ev, vs->listen_fd, EPOLLIN, listen_handler, vs,
		   err) < 0)
		return kr_err_wrap(err, "virtio-vsock: %s", vs->path);
	vs->listen_watched = true;
	vs->timer_fd = timerfd_create(CLOCK_MONOTONIC,
				      TFD_NONBLOCK | TFD_CLOEXEC);
	if (vs->timer_fd < 0)
		return kr_err_sys(err, "virtio-vsock: timerfd_create");
	if (timer_set_tick(vs, err) < 0)
		return -1;
	if (ev_add(vs->d->ev, vs->timer_fd, EPOLLIN, timer_handler, vs,
		   err) < 0)
		return kr_err_wrap(err, "virtio-vsock: timer");
	vs->timer_watched = true;
	return 0;
}

/* Remove the socket file if it is still the one we created. */
static void remove_socket_file(struct vsock *vs)
{
	struct stat st;

	if (vs->sock_ino && lstat(vs->path, &st) == 0 &&
	    st.st_dev == vs->sock_dev && st.st_ino == vs->sock_ino)
		unlink(vs->path);
}

static void stop_listener(struct vsock *vs)
{
	if (vs->listen_watched)
		ev_del(vs->d->ev, vs->listen_fd);
	if (vs->timer_watched)
		ev_del(vs->d->ev, vs->timer_fd);
	vs->listen_watched = vs->timer_watched = false;
	if (vs->listen_fd >= 0) {
		close(vs->listen_fd);
		remove_socket_file(vs);
	}
	if (vs->timer_fd >= 0)
		close(vs->timer_fd);
	vs->listen_fd = vs->timer_fd = -1;
}

int virtio_vsock_create(struct virtio_dev *d, struct evloop *ev,
			const struct guest_mem *gm, uint64_t base, unsigned gsi,
			int irq_fd, const struct virtio_mmio_hooks *hooks,
			uint64_t guest_cid, const char *uds_path,
			struct kr_err *err)
{
	struct vsock *vs;

	if (check_args(ev, guest_cid, uds_path, err) < 0)
		return -1;
	vs = kr_xcalloc(1, sizeof(*vs));
	vs->d = d;
	vs->guest_cid = guest_cid;
	memcpy(vs->path, uds_path, strlen(uds_path) + 1);
	vs->listen_fd = vs->timer_fd = -1;
	vs->next_port = VSOCK_LOCAL_PORT_FIRST;
	vs->lim = (struct virtio_vsock_limits){
		VSOCK_MAX_CONNS, DEFAULT_LINE_MS, DEFAULT_REQUEST_MS,
		DEFAULT_SHUTDOWN_MS,
	};
	vq_chain_init(&vs->rx_chain, vs->rx_segs, VSOCK_QUEUE_MAX);
	vq_chain_init(&vs->tx_chain, vs->tx_segs, VSOCK_QUEUE_MAX);
	if (virtio_dev_init(d, &vsock_ops, vs, 1ull << VIRTIO_F_IN_ORDER, gm,
			    ev, base, gsi, irq_fd, hooks, err) < 0) {
		free(vs);
		return -1;
	}
	if (start_listener(vs, err) < 0) {
		stop_listener(vs);
		virtio_dev_destroy(d);
		d->priv = NULL;
		free(vs);
		return -1;
	}
	return 0;
}

void virtio_vsock_destroy(struct virtio_dev *d)
{
	struct vsock *vs = d->priv;

	if (!d->ops || !vs)
		return;
	virtio_dev_lock(d);
	close_all(vs);
	stop_listener(vs);
	virtio_dev_unlock(d);
	virtio_dev_destroy(d);	/* its reset finds nothing left to close */
	d->priv = NULL;
	free(vs);
}

void virtio_vsock_set_limits(struct virtio_dev *d,
			     const struct virtio_vsock_limits *l)
{
	struct vsock *vs = d->priv;
	struct kr_err err = { 0 };

	virtio_dev_lock(d);
	if (l->max_conns)
		vs->lim.max_conns = l->max_conns < VSOCK_MAX_CONNS ?
				    l->max_conns : VSOCK_MAX_CONNS;
	if (l->line_ms)
		vs->lim.line_ms = l->line_ms;
	if (l->request_ms)
		vs->lim.request_ms = l->request_ms;
	if (l->shutdown_ms)
		vs->lim.shutdown_ms = l->shutdown_ms;
	if (timer_set_tick(vs, &err) < 0)
		kr_warn("%s", err.msg);
	virtio_dev_unlock(d);
}

void virtio_vsock_get_stats(struct virtio_dev *d, struct virtio_vsock_stats *s)
{
	struct vsock *vs = d->priv;

	virtio_dev_lock(d);
	*s = vs->st;
	s->conns = vs->nconns;
	s->rst_queued = vs->rst_len;
	s->buffered = 0;
	for (const struct conn *c = vs->conns; c; c = c->next)
		s->buffered += c->buf_len;
	virtio_dev_unlock(d);
}
