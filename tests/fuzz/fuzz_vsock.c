/* libFuzzer target for the virtio-vsock device (hypervisor/kvm): the input
 * is a hostile guest (and a busy host).
 *
 * Input byte 0 chooses the mode:
 *  - even: the pure parser.  The rest is one tx packet, cut into up to 8
 *    descriptors at input-chosen points; vsock_tx_parse() must agree with
 *    a reference check on the flattened bytes, whatever the cut.  Then
 *    the same bytes go through vsock_connect_line_parse(), checked against
 *    a reference too.
 *  - odd: the whole device.  A real evloop and Unix sockets under /tmp, a
 *    listener at "<path>_1" (port 2 has none), the driver brought up
 *    through virtio_mmio_rw().  The rest is a list of records
 *    [ctl][len lo][len hi][len bytes]: each record's bytes become one tx
 *    packet (optionally fixed up to pass the address checks), cut into
 *    descriptors as ctl says, then the device runs; ctl bits also make the
 *    host side act (accept and write, close, connect with a CONNECT line),
 *    post odd-sized rx buffers, or reset the device.  Every packet the
 *    device puts on rx is checked (well-formed, addressed to the guest,
 *    used.len = 44 + len), as are the device's bounds; after destroy no fd
 *    may be left open.
 *
 *   make fuzz && build/fuzz/fuzz_vsock -max_total_time=60 \
 *       tests/fuzz/corpus/vsock
 * or on its own:
 *   clang -D_GNU_SOURCE -std=gnu11 -Iinclude -Ihypervisor/kvm -g -O1 \
 *     -fsanitize=fuzzer,address,undefined -o build/fuzz/fuzz_vsock \
 *     tests/fuzz/fuzz_vsock.c hypervisor/kvm/{virtio_vsock,vsock_packet,\
 *     virtio_mmio,virtqueue,guest_mem,evloop}.c lib/error.c lib/log.c \
 *     lib/util.c lib/unix_socket.c -pthread
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/ttrpc.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtio_mmio.h"
#include "virtio_vsock.h"
#include "virtqueue.h"
#include "vsock_packet.h"
#include "../lib/vq_driver.h"
#include "../lib/fd_count.h"

#define ASSERT(c)                         \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

#define CID 3u

/* ==== mode 0: the parsers =============================================== */

static uint8_t flat[1 << 17];

static enum vsock_verdict reference(const uint8_t *b, size_t n,
				    struct vsock_hdr *h)
{
	if (n < VSOCK_HDR_SIZE)
		return VSOCK_DROP;
	vsock_hdr_decode(b, h);
	if (h->src_cid != CID)
		return VSOCK_DROP;
	if (h->dst_cid == 2 && h->type == 1 && h->op >= 1 && h->op <= 7 &&
	    h->len <= VSOCK_MAX_PAYLOAD && h->len <= n - VSOCK_HDR_SIZE)
		return VSOCK_ACCEPT;
	return h->op == VSOCK_OP_RST ? VSOCK_DROP : VSOCK_REPLY_RST;
}

static void check_connect_line(const uint8_t *d, size_t n)
{
	struct kr_err why;
	uint32_t port = 0;
	uint64_t v = 0;

	if (vsock_connect_line_parse((const char *)d, n, &port, &why) < 0)
		return;
	/* Accepted: "connect " any case, 1..10 digits, "\n", <= 32. */
	ASSERT(n >= 10 && n <= VSOCK_CONNECT_LINE_MAX && d[n - 1] == '\n');
	ASSERT(strncasecmp((const char *)d, "connect ", 8) == 0);
	ASSERT(n - 9 >= 1 && n - 9 <= 10);
	for (size_t i = 8; i < n - 1; i++) {
		ASSERT(d[i] >= '0' && d[i] <= '9');
		v = v * 10 + (d[i] - '0');
	}
	ASSERT(v == port);
}

static void fuzz_parser(const uint8_t *d, size_t n)
{
	static struct vq_seg segs[8];
	struct vsock_hdr h, ref;
	struct vq_chain c;
	struct kr_err why;
	enum vsock_verdict v, rv;
	unsigned cuts;
	size_t off = 0;

	if (n < 1)
		return;
	cuts = d[0] & 7;
	d++;
	n--;
	if (n < cuts || n - cuts > sizeof(flat))
		return;
	/* The cut points are the next bytes; the packet follows. */
	vq_chain_init(&c, segs, 8);
	memcpy(flat, d + cuts, n - cuts);
	for (unsigned i = 0; i <= cuts; i++) {
		size_t rest = n - cuts - off;
		size_t l = i < cuts ? (d[i] % (rest + 1)) : rest;

		if (l == 0)
			continue;	/* vq_pop never yields empty segments */
		segs[c.nseg++] = (struct vq_seg){ flat + off, (uint32_t)l, false };
		c.read_len += (uint32_t)l;
		off += l;
	}
	c.nread = c.nseg;
	v = vsock_tx_parse(&c, CID, &h, &why);
	rv = reference(flat, n - cuts, &ref);
	ASSERT(v == rv);
	if (n - cuts >= VSOCK_HDR_SIZE)
		ASSERT(memcmp(&h, &ref, offsetof(struct vsock_hdr, fwd_cnt) + 4) == 0);
	if (v != VSOCK_ACCEPT)
		ASSERT(why.msg[0]);
	check_connect_line(d, n);
}

/* ==== mode 1: the device ================================================ */

#define RAM_SIZE (1u << 20)
#define QSZ 16u
#define RING(q) (0x1000ull * ((q) + 1))
#define RXBUF(i) (0x10000ull + 0x2000ull * (i))
#define TXBUF(i) (0x40000ull + 0x2000ull * (i))
#define BUFSZ 0x2000u
#define MAX_HOST_FDS 64

static uint8_t *ram;
static struct guest_mem gm;
static char path[64];

/* Small, so that inputs reach them. */
#define LIMIT_MS 10
static const struct virtio_vsock_limits limits = {
	.max_conns = 8, .line_ms = LIMIT_MS, .request_ms = LIMIT_MS,
	.shutdown_ms = LIMIT_MS,
};
#define BIG_RW 8000

struct world {
	struct evloop *ev;
	struct virtio_dev dev;
	int irq;
	int lfd;		/* the host service at <path>_1 */
	int hfd[MAX_HOST_FDS];
	unsigned nh;
	struct gq rx, tx, evq;
	uint32_t rx_len[QSZ];		/* size of the next posting */
	uint32_t posted[QSZ];		/* size as posted */
	unsigned tx_next;
	struct { uint32_t local, peer; } req[8];	/* REQUESTs seen */
	unsigned nreq;
	bool hold_rx;			/* used rx buffers are not reposted */
	uint16_t held[QSZ];
	unsigned nheld;
};

static void pump(struct world *w)
{
	for (int i = 0; i < 200 && ev_run_once(w->ev, 0) > 0; i++)
		;
}

static void queue_setup(struct gq *g, unsigned q)
{
	gq_init(g, q, QSZ, RING(q), RING(q) + 0x400, RING(q) + 0x800);
	gq_enable(g);
}

static void driver_up(struct world *w)
{
	memset(ram, 0, 0x80000);
	negotiate(1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_IN_ORDER);
	queue_setup(&w->rx, VSOCK_QUEUE_RX);
	queue_setup(&w->tx, VSOCK_QUEUE_TX);
	queue_setup(&w->evq, VSOCK_QUEUE_EVENT);
	wr(VIRTIO_MMIO_STATUS, 15);
	/* Linux reads guest_cid as two halves. */
	ASSERT(rd(VIRTIO_MMIO_CONFIG) == CID);
	ASSERT(rd(VIRTIO_MMIO_CONFIG + 4) == 0);
	w->tx_next = 0;
	w->nreq = 0;
	w->hold_rx = false;
	w->nheld = 0;
	for (unsigned i = 0; i < QSZ; i++) {
		w->rx_len[i] = w->posted[i] = 4096 + VSOCK_HDR_SIZE;
		gq_desc(&w->rx, i, RXBUF(i), w->posted[i], VQ_DESC_F_WRITE, 0);
		gq_avail_add(&w->rx, (uint16_t)i);
	}
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, VSOCK_QUEUE_RX);
	pump(w);
}

/* What the device put on rx must be a well-formed packet for the guest. */
static void check_rx(struct world *w)
{
	static uint8_t hdr[VSOCK_HDR_SIZE];
	struct gq *g = &w->rx;
	uint32_t id, len;

	while (gq_used_pop(g, &id, &len)) {
		struct vsock_hdr h;

		ASSERT(id < QSZ);
		ASSERT(len <= w->posted[id]);
		if (len) {
			ASSERT(len >= VSOCK_HDR_SIZE);
			memcpy(hdr, host(RXBUF(id)), VSOCK_HDR_SIZE);
			vsock_hdr_decode(hdr, &h);
			ASSERT(h.dst_cid == CID && h.type == 1);
			ASSERT(h.op >= 1 && h.op <= 7);
			ASSERT(len == VSOCK_HDR_SIZE + h.len);
			ASSERT(h.op == VSOCK_OP_RW || h.len == 0);
			/* only RSTs answer for another cid */
			ASSERT(h.src_cid == 2 || h.op == VSOCK_OP_RST);
			ASSERT(h.op != VSOCK_OP_RW || h.len > 0);
			ASSERT(h.len <= VSOCK_MAX_PAYLOAD);
			if (h.op == VSOCK_OP_REQUEST && w->nreq < 8) {
				ASSERT(h.src_port >= VSOCK_LOCAL_PORT_FIRST &&
				       h.src_port < VSOCK_LOCAL_PORT_END);
				w->req[w->nreq].local = h.src_port;
				w->req[w->nreq++].peer = h.dst_port;
			}
		} else {
			/* handed back unused: too small for its purpose */
			ASSERT(w->posted[id] <= VSOCK_HDR_SIZE);
		}
		if (w->hold_rx && w->nheld < QSZ) {
			w->held[w->nheld++] = (uint16_t)id;
			continue;
		}
		/* repost the same buffer */
		w->posted[id] = w->rx_len[id];
		gq_desc(g, id, RXBUF(id), w->posted[id], VQ_DESC_F_WRITE, 0);
		gq_avail_add(g, (uint16_t)id);
	}
}

/* Stop reposting rx buffers (the device starves), or give them all back
 * and kick. */
static void toggle_rx_hold(struct world *w)
{
	w->hold_rx = !w->hold_rx;
	if (w->hold_rx)
		return;
	for (unsigned i = 0; i < w->nheld; i++) {
		uint16_t id = w->held[i];

		w->posted[id] = w->rx_len[id];
		gq_desc(&w->rx, id, RXBUF(id), w->posted[id], VQ_DESC_F_WRITE, 0);
		gq_avail_add(&w->rx, id);
	}
	w->nheld = 0;
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, VSOCK_QUEUE_RX);
	pump(w);
}

static void check_bounds(struct world *w)
{
	struct virtio_vsock_stats s;

	virtio_vsock_get_stats(&w->dev, &s);
	ASSERT(s.conns <= limits.max_conns);
	ASSERT(s.rst_queued <= VSOCK_RST_QUEUE);
	ASSERT(s.buffered <= (size_t)s.conns * VSOCK_BUF_ALLOC);
}

/* The packet: fixed up to pass the address checks if ctl says so. */
static void fixup(uint8_t *p, size_t n, uint8_t ctl)
{
	struct vsock_hdr h;

	if (n < VSOCK_HDR_SIZE)
		return;
	vsock_hdr_decode(p, &h);
	if (ctl & 1) {
		h.src_cid = CID;
		h.dst_cid = 2;
		h.type = 1;
		h.op = 1 + h.op % 7;
		if (h.op == VSOCK_OP_RW || h.len > n - VSOCK_HDR_SIZE)
			h.len = (uint32_t)(n - VSOCK_HDR_SIZE);
	}
	if (ctl & 2) {
		h.dst_port = h.dst_port & 1 ? 1 : 2;	/* 1 listens, 2 not */
		h.src_port &= 3;			/* few connections */
	}
	vsock_hdr_encode(&h, p);
}

/* Size of piece k of a packet cut in the given mode: one descriptor,
 * header split 13 + 19 + rest, header alone, or 7-byte pieces. */
static size_t piece(unsigned mode, unsigned k, size_t rest)
{
	size_t cap = BUFSZ;

	if (mode == 1 && k < 2)
		cap = k ? 19 : 13;
	else if (mode == 2 && k == 0)
		cap = VSOCK_HDR_SIZE;
	else if (mode == 3)
		cap = 7;
	return rest < cap ? rest : cap;
}

/* Queue packet p as one chain of at most QSZ descriptors (what does not
 * fit is cut off), kick, run the device. */
static void tx_packet(struct world *w, const uint8_t *p, size_t n, uint8_t ctl)
{
	unsigned mode = (ctl >> 2) & 3, k = 0, head = w->tx_next % QSZ;
	size_t off = 0;
	bool more;

	do {
		unsigned i = (head + k) % QSZ;
		size_t l = piece(mode, k, n - off);

		memcpy(host(TXBUF(i)), p + off, l);
		off += l;
		k++;
		more = off < n && k < QSZ;
		gq_desc(&w->tx, i, TXBUF(i), (uint32_t)l,
			 more ? VQ_DESC_F_NEXT : 0, (uint16_t)((i + 1) % QSZ));
	} while (more);
	w->tx_next += k;
	gq_avail_add(&w->tx, (uint16_t)head);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, VSOCK_QUEUE_TX);
	pump(w);
	/* tx chains come back with used.len 0 */
	for (uint32_t id, len; gq_used_pop(&w->tx, &id, &len);)
		ASSERT(len == 0);
}

static void host_keep(struct world *w, int fd)
{
	if (fd < 0)
		return;
	if (w->nh == MAX_HOST_FDS) {
		close(fd);
		return;
	}
	w->hfd[w->nh++] = fd;
}

/* The host side acts: accept what the guest opened, write to it and maybe
 * read it dry, hang up one, connect a client with a CONNECT line. */
static void host_act(struct world *w, uint8_t ctl, uint8_t arg)
{
	char line[40];
	int fd;

	if (ctl & 0x10) {
		while ((fd = accept4(w->lfd, NULL, NULL,
				     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			host_keep(w, fd);
		for (unsigned i = 0; i < w->nh; i++) {
			static char sink[1 << 16];

			if (send(w->hfd[i], "host data", 1 + arg % 9,
				 MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
				/* closed by the device: fine */
			}
			/* read what the guest sent: the device may flush */
			while ((arg & 0x20) &&
			       recv(w->hfd[i], sink, sizeof(sink), MSG_DONTWAIT) > 0)
				;
		}
		if (w->nh && (arg & 0x80)) {
			unsigned i = arg % w->nh;

			if (arg & 0x40)
				shutdown(w->hfd[i], SHUT_WR);
			else {
				close(w->hfd[i]);
				w->hfd[i] = w->hfd[--w->nh];
			}
		}
	}
	if (ctl & 0x20) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		memcpy(sa.sun_path, path, strlen(path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			int n = arg & 1 ? snprintf(line, sizeof(line),
						   "CONNECT %u\n", arg >> 1 & 3)
					: snprintf(line, sizeof(line), "%.*s",
						   arg % 12, "CONNECT 1x\n\n");

			if (send(fd, line, (size_t)n, MSG_NOSIGNAL) < 0) {
				/* the device refused it */
			}
			host_keep(w, fd);
		} else if (fd >= 0) {
			close(fd);
		}
	}
	pump(w);
}

/* Answer the device's REQUESTs as a guest would: RESPONSE (with a small
 * or a normal buffer) and some data, or RST. */
static void guest_answers(struct world *w, uint8_t arg)
{
	uint8_t p[VSOCK_HDR_SIZE + 16];

	for (unsigned i = 0; i < w->nreq; i++) {
		struct vsock_hdr h = {
			.src_cid = CID, .dst_cid = 2,
			.src_port = w->req[i].peer, .dst_port = w->req[i].local,
			.type = 1,
			.op = arg & 1 ? VSOCK_OP_RESPONSE : VSOCK_OP_RST,
			.buf_alloc = arg & 2 ? 64 : 65536,
		};

		vsock_hdr_encode(&h, p);
		tx_packet(w, p, VSOCK_HDR_SIZE, 0);
		if (!(arg & 1))
			continue;
		h.op = VSOCK_OP_RW;
		h.len = 16;
		vsock_hdr_encode(&h, p);
		memcpy(p + VSOCK_HDR_SIZE, "guest says hello", 16);
		tx_packet(w, p, sizeof(p), arg & 0x0c);
	}
	w->nreq = 0;
}


static void fuzz_device(const uint8_t *d, size_t n)
{
	static uint8_t pkt[2 * BUFSZ];
	static struct world w;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct kr_err err;
	int fds = count_fds();

	memset(&w, 0, sizeof(w));
	w.ev = ev_new(&err);
	w.irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT(w.ev && w.irq >= 0);
	if (virtio_vsock_create(&w.dev, w.ev, &gm, 0xd0000000ull, 5, w.irq, NULL,
				CID, path, &err) < 0)
		__builtin_trap();
	virtio_vsock_set_limits(&w.dev, &limits);
	vqd_dev = &w.dev;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_1", path);
	unlink(sa.sun_path);
	w.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ASSERT(w.lfd >= 0);
	ASSERT(bind(w.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	ASSERT(listen(w.lfd, 64) == 0);
	driver_up(&w);

	while (n >= 3) {
		uint8_t ctl = d[0];
		size_t len = (size_t)(d[1] | d[2] << 8), plen;
		uint8_t raw0, rawl;	/* before fixup() overwrites them */
		unsigned reps = 1;

		d += 3;
		n -= 3;
		if (len > n)
			len = n;
		plen = len < sizeof(pkt) ? len : sizeof(pkt);
		raw0 = len ? d[0] : 0;
		rawl = len ? d[len - 1] : 0;
		memcpy(pkt, d, plen);
		if ((ctl & 1) && (raw0 & 0x80) && plen >= VSOCK_HDR_SIZE) {
			/* A big RW, many times: fills the host socket, then
			 * our buffer, then overruns the credit. */
			for (size_t i = plen; i < BIG_RW; i++)
				pkt[i] = (uint8_t)i;
			plen = BIG_RW;
			reps = 1 + (raw0 & 31);
		}
		fixup(pkt, plen, ctl);
		if ((ctl & 0xc0) == 0xc0) {
			/* time passes: the time limits expire */
			usleep(LIMIT_MS * 1000 + 2000);
			pump(&w);
		} else if (ctl & 0x80) {
			driver_up(&w);		/* reset and start over */
		} else if (ctl & 0x40) {
			/* odd rx buffers: a size from the record */
			for (unsigned i = 0; i < QSZ; i++)
				w.rx_len[i] = raw0 % 64 + (i & 1 ? 4096 : 0);
			if (raw0 & 0x40)
				toggle_rx_hold(&w);
		}
		for (unsigned r = 0; r < reps; r++)
			tx_packet(&w, pkt, plen, ctl);
		host_act(&w, ctl, rawl);
		check_rx(&w);
		wr(VIRTIO_MMIO_QUEUE_NOTIFY, VSOCK_QUEUE_RX);
		pump(&w);
		check_rx(&w);
		check_bounds(&w);
		guest_answers(&w, raw0);
		check_rx(&w);
		d += len;
		n -= len;
	}

	virtio_vsock_destroy(&w.dev);
	ASSERT(access(path, F_OK) < 0);
	for (unsigned i = 0; i < w.nh; i++)
		close(w.hfd[i]);
	close(w.lfd);
	unlink(sa.sun_path);
	ev_free(w.ev);
	close(w.irq);
	ASSERT(count_fds() == fds);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kr_err err;

	kr_log_init("fuzz_vsock", KR_LOG_ERROR, -1);
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "/tmp/fuzz-vsock-%d.sock", getpid());
	ram = aligned_alloc(4096, RAM_SIZE);
	ASSERT(ram);
	gm_init(&gm);
	vqd_gm = &gm;
	ASSERT(gm_add_region(&gm, 0, RAM_SIZE, ram, &err) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_device(data + 1, size - 1);
	else
		fuzz_parser(data + 1, size - 1);
	return 0;
}
