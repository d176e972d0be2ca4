/* Unit tests for hypervisor/kvm/vsock_packet.c and virtio_vsock.c (the
 * virtio-vsock device, Firecracker's hybrid AF_VSOCK <-> AF_UNIX scheme).
 * No /dev/kvm: the tests play the guest driver, negotiating through
 * virtio_mmio_rw() (what a vCPU's MMIO exit would call) with hand-built
 * rings in malloc'd "guest RAM", kicking with QueueNotify writes and
 * running the device's evloop one round at a time on this thread.  The
 * host side is real Unix sockets under /tmp.  Every test checks that no
 * fd leaked and that the socket file is gone after destroy. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "../lib/vq_driver.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtio_mmio.h"
#include "virtio_vsock.h"
#include "virtqueue.h"
#include "vsock_packet.h"
#include "../lib/fd_count.h"

#define RAM_SIZE (16u << 20)
#define BASE 0xd0000000ull
#define GSI 5u
#define CID 3u
#define QSZ 64u
#define RING(q) (0x1000ull * (q + 1))	/* desc; avail +0x400; used +0x800 */
#define RXBUF(i) (0x100000ull + 0x11000ull * (i))
#define TXBUF(i) (0x600000ull + 0x11000ull * (i))
#define TXBUF_SIZE 0x11000u
#define RX_DEFAULT (4096u + VSOCK_HDR_SIZE)	/* what Linux posts */
#define F_V1 (1ull << VIRTIO_F_VERSION_1)
#define F_IN_ORDER (1ull << VIRTIO_F_IN_ORDER)
#define GUEST_BUF (256u << 10)	/* the test guest's default buf_alloc */
#define LP0 VSOCK_LOCAL_PORT_FIRST

static uint8_t *ram;
static struct guest_mem gm;
static struct evloop *ev;
static struct virtio_dev dev;
static int irq_fd = -1;
static struct kr_err err;
static char path[108];
static int fds_before;

/* ---- little helpers ---- */


/* Run the device until nothing is left to do (bounded). */
static int pump(void)
{
	int total = 0;

	for (int i = 0; i < 10000; i++) {
		int n = ev_run_once(ev, 0);

		if (n <= 0)
			break;
		total += n;
	}
	return total;
}

/* Run the loop for about ms milliseconds (timers). */
static void run_for(unsigned ms)
{
	uint64_t end = kr_now_ms() + ms;

	while (kr_now_ms() < end)
		ev_run_once(ev, 5);
	pump();
}

/* ---- the guest driver's queues (tests/lib/vq_driver.h) ---- */

static struct gq rxq, txq, evq;
static unsigned rx_len = RX_DEFAULT;	/* size of reposted rx buffers */
static bool rx_repost = true;

/* The rings of queue q: desc at RING(q), avail +0x400, used +0x800. */
static void ring_init(struct gq *g, unsigned q)
{
	gq_init(g, q, QSZ, RING(q), RING(q) + 0x400, RING(q) + 0x800);
}

static void kick(struct gq *g)
{
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, g->q);
	pump();
}

/* Linux-style rx buffers: descriptor i is one writable buffer at
 * RXBUF(i). */
static void rx_post(unsigned i, uint32_t len)
{
	gq_desc(&rxq, i, RXBUF(i), len, VQ_DESC_F_WRITE, 0);
	gq_avail_add(&rxq, (uint16_t)i);
}

static void rx_fill(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		rx_post(i, rx_len);
}

/* Copy len bytes of the chain at head, following the guest's own
 * descriptors. */
static void gather(struct gq *g, uint16_t head, uint32_t len, uint8_t *out)
{
	uint16_t i = head;

	for (unsigned n = 0; len && n < QSZ; n++) {
		uint64_t d = g->desc + 16ull * i;
		uint32_t l = get32(d + 8), take = l < len ? l : len;
		uint64_t a;

		memcpy(&a, host(d), 8);
		memcpy(out, host(le64toh(a)), take);
		out += take;
		len -= take;
		if (!(get16(d + 12) & VQ_DESC_F_NEXT))
			break;
		i = get16(d + 14);
	}
}

struct pkt {
	struct vsock_hdr h;
	uint32_t used_len;
	uint32_t id;
	uint8_t data[VSOCK_MAX_PAYLOAD];
};

static struct pkt pk;

/* The next packet the device put on rx, into p; the buffer goes back to
 * the device (same shape) unless rx_repost is off. */
static bool rx_pop(struct pkt *p)
{
	static uint8_t tmp[VSOCK_HDR_SIZE + VSOCK_MAX_PAYLOAD];
	uint32_t n;

	if (!gq_used_pop(&rxq, &p->id, &p->used_len))
		return false;
	memset(&p->h, 0, sizeof(p->h));
	n = p->used_len < sizeof(tmp) ? p->used_len : sizeof(tmp);
	gather(&rxq, p->id, n, tmp);
	if (n >= VSOCK_HDR_SIZE) {
		vsock_hdr_decode(tmp, &p->h);
		memcpy(p->data, tmp + VSOCK_HDR_SIZE, n - VSOCK_HDR_SIZE);
	}
	if (rx_repost) {
		gq_avail_add(&rxq, p->id);
		wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	}
	return true;
}

static unsigned rx_pending(void)
{
	return (uint16_t)(get16(rxq.used + 2) - rxq.used_seen);
}

/* tx: queue a packet (bytes) split into descriptors of the given sizes
 * (the last one takes the rest); no kick. */
static void tx_queue_split(const void *bytes, size_t len, const uint32_t *split,
			   unsigned nsplit)
{
	const uint8_t *b = bytes;
	unsigned head = txq.next_desc % QSZ, i = head;
	size_t off = 0;

	for (unsigned k = 0; k <= nsplit; k++) {
		size_t l = k < nsplit ? split[k] : len - off;
		unsigned next = (i + 1) % QSZ;
		bool last = k == nsplit;

		if (l > TXBUF_SIZE)
			abort();
		memcpy(host(TXBUF(i)), b + off, l);
		gq_desc(&txq, i, TXBUF(i), (uint32_t)l,
			 last ? 0 : VQ_DESC_F_NEXT, (uint16_t)next);
		off += l;
		i = next;
	}
	txq.next_desc += nsplit + 1;
	gq_avail_add(&txq, (uint16_t)head);
}

static void tx_queue(const void *bytes, size_t len)
{
	tx_queue_split(bytes, len, NULL, 0);
}

static void tx_kick(void)
{
	kick(&txq);
	/* Reclaim: every tx chain comes back with used.len 0. */
	for (uint32_t id; gq_used_pop(&txq, &id, &(uint32_t){ 0 });)
		;
}

/* A guest packet: header h plus len bytes of payload. */
static size_t build(uint8_t *out, uint16_t op, uint32_t src_port,
		    uint32_t dst_port, const void *payload, uint32_t len)
{
	struct vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID,
		.src_port = src_port, .dst_port = dst_port, .len = len,
		.type = VSOCK_TYPE_STREAM, .op = op, .buf_alloc = GUEST_BUF,
	};

	vsock_hdr_encode(&h, out);
	if (len)
		memcpy(out + VSOCK_HDR_SIZE, payload, len);
	return VSOCK_HDR_SIZE + len;
}

static uint8_t txbuf[VSOCK_HDR_SIZE + VSOCK_MAX_PAYLOAD + 16];

/* Send one packet built from h (and payload) and run the device. */
static void tx_hdr(const struct vsock_hdr *h, const void *payload,
		   uint32_t plen)
{
	vsock_hdr_encode(h, txbuf);
	if (plen)
		memcpy(txbuf + VSOCK_HDR_SIZE, payload, plen);
	tx_queue(txbuf, VSOCK_HDR_SIZE + plen);
	tx_kick();
}

static void tx_op(uint16_t op, uint32_t src_port, uint32_t dst_port,
		  uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID,
		.src_port = src_port, .dst_port = dst_port,
		.type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt,
	};

	tx_hdr(&h, NULL, 0);
}

static void tx_rw(uint32_t src_port, uint32_t dst_port, const void *data,
		  uint32_t len)
{
	size_t n = build(txbuf, VSOCK_OP_RW, src_port, dst_port, data, len);

	tx_queue(txbuf, n);
	tx_kick();
}

/* ---- the device's life ---- */

/* The Linux driver's sequence: reset, features, queues, DRIVER_OK, then
 * rx and event buffers. */
static void driver_up(unsigned rx_buffers)
{
	memset(ram, 0, RAM_SIZE);
	ring_init(&rxq, VSOCK_QUEUE_RX);
	ring_init(&txq, VSOCK_QUEUE_TX);
	ring_init(&evq, VSOCK_QUEUE_EVENT);
	negotiate(F_V1 | F_IN_ORDER);
	gq_enable(&rxq);
	gq_enable(&txq);
	gq_enable(&evq);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
		       VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		       VIRTIO_CONFIG_S_DRIVER_OK);
	rx_fill(rx_buffers);
	kick(&rxq);
}

static const struct virtio_vsock_limits fast = {
	.line_ms = 100, .request_ms = 100, .shutdown_ms = 100,
};

/* A fresh device at a fresh path; the driver is up with 64 rx buffers. */
static int setup(void)
{
	static int n;

	fds_before = count_fds();
	memset(&err, 0, sizeof(err));
	rx_len = RX_DEFAULT;
	rx_repost = true;
	snprintf(path, sizeof(path), "/tmp/kr-vsock-%d-%d.sock", getpid(), n++);
	ev = ev_new(&err);
	irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!ev || irq_fd < 0)
		return -1;
	if (virtio_vsock_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, CID, path,
				&err) < 0) {
		printf("# create: %s\n", err.msg);
		return -1;
	}
	virtio_vsock_set_limits(&dev, &fast);
	driver_up(QSZ);
	return 0;
}

static void teardown(void)
{
	struct stat st;

	virtio_vsock_destroy(&dev);
	CHECK(dev.ops == NULL);
	CHECKF(lstat(path, &st) < 0 && errno == ENOENT, "%s still exists", path);
	ev_free(ev);
	close(irq_fd);
	ev = NULL;
	irq_fd = -1;
	CHECKF(count_fds() == fds_before, "%d fds before, %d after", fds_before,
	       count_fds());
}

static struct virtio_vsock_stats stats(void)
{
	struct virtio_vsock_stats s;

	virtio_vsock_get_stats(&dev, &s);
	return s;
}

/* ---- host side ---- */

static int host_listen(uint32_t port, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", path, port) >=
	    (int)sizeof(sa.sun_path))
		abort();
	unlink(sa.sun_path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, backlog) < 0)
		abort();
	return fd;
}

static void host_unlisten(int fd, uint32_t port)
{
	char p[128];

	snprintf(p, sizeof(p), "%s_%u", path, port);
	unlink(p);
	close(fd);
}

static int host_accept(int lfd)
{
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

static int host_client(void)
{
	int fd = kr_unix_connect(path, &err);

	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void host_send(int fd, const void *p, size_t n)
{
	if (send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n)
		abort();
}

/* Non-blocking read of what is there: bytes, 0 at EOF, -1 if nothing. */
static ssize_t host_recv(int fd, void *buf, size_t n)
{
	ssize_t r = recv(fd, buf, n, MSG_DONTWAIT);

	return r < 0 && errno == EAGAIN ? -1 : r;
}

/* The device closed its end: EOF, or ECONNRESET when it closed with
 * bytes of ours unread. */
static bool host_eof(int fd)
{
	char c;
	ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);

	return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* ---- checks on packets the guest receives ---- */

#define CHECK_PKT(p, op_, sport, dport)                                      \
	do {                                                                 \
		CHECK((p)->h.src_cid == VSOCK_HOST_CID);                     \
		CHECK((p)->h.dst_cid == CID);                                \
		CHECKF((p)->h.op == (op_), "op %u (%s), want %s",            \
		       (p)->h.op, vsock_op_name((p)->h.op),                  \
		       vsock_op_name(op_));                                  \
		CHECK((p)->h.type == VSOCK_TYPE_STREAM);                     \
		CHECKF((p)->h.src_port == (sport), "src_port %u",            \
		       (p)->h.src_port);                                     \
		CHECKF((p)->h.dst_port == (dport), "dst_port %u",            \
		       (p)->h.dst_port);                                     \
		CHECK((p)->used_len == VSOCK_HDR_SIZE + (p)->h.len);         \
	} while (0)

/* Guest-initiated connection gport -> hport, accepted on lfd: returns the
 * host's fd. */
static int open_guest_conn(int lfd, uint32_t gport, uint32_t hport,
			   uint32_t buf_alloc)
{
	int hfd;

	tx_op(VSOCK_OP_REQUEST, gport, hport, 0, buf_alloc, 0);
	if (!rx_pop(&pk))
		return -1;
	CHECK_PKT(&pk, VSOCK_OP_RESPONSE, hport, gport);
	hfd = host_accept(lfd);
	CHECK(hfd >= 0);
	return hfd;
}

/* ==== vsock_packet.c: pure functions ==================================== */

/* Field by field: the struct has tail padding. */
static bool hdr_eq(const struct vsock_hdr *a, const struct vsock_hdr *b)
{
	return a->src_cid == b->src_cid && a->dst_cid == b->dst_cid &&
	       a->src_port == b->src_port && a->dst_port == b->dst_port &&
	       a->len == b->len && a->type == b->type && a->op == b->op &&
	       a->flags == b->flags && a->buf_alloc == b->buf_alloc &&
	       a->fwd_cnt == b->fwd_cnt;
}

static void test_hdr_codec(void)
{
	static const uint8_t want[VSOCK_HDR_SIZE] = {
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,	/* src_cid */
		0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,	/* dst_cid */
		0x24, 0x23, 0x22, 0x21,				/* src_port */
		0x34, 0x33, 0x32, 0x31,				/* dst_port */
		0x44, 0x43, 0x42, 0x41,				/* len */
		0x52, 0x51,					/* type */
		0x62, 0x61,					/* op */
		0x74, 0x73, 0x72, 0x71,				/* flags */
		0x84, 0x83, 0x82, 0x81,				/* buf_alloc */
		0x94, 0x93, 0x92, 0x91,				/* fwd_cnt */
	};
	const struct vsock_hdr h = {
		0x0102030405060708ull, 0x1112131415161718ull, 0x21222324,
		0x31323334, 0x41424344, 0x5152, 0x6162, 0x71727374, 0x81828384,
		0x91929394,
	};
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr back;

	vsock_hdr_encode(&h, raw);
	CHECK(memcmp(raw, want, sizeof(want)) == 0);
	vsock_hdr_decode(want, &back);
	CHECK(hdr_eq(&back, &h));
	CHECK_STREQ(vsock_op_name(VSOCK_OP_CREDIT_REQUEST), "CREDIT_REQUEST");
	CHECK_STREQ(vsock_op_name(99), "unknown op");
}

static struct vq_seg psegs[8];
static struct vq_chain pc;
static uint8_t pbuf[2 * VSOCK_MAX_PAYLOAD];

/* A chain over pbuf cut into segments of the given lengths; the last
 * nwrite of them writable. */
static void pchain(const uint32_t *lens, unsigned n, unsigned nwrite)
{
	size_t off = 0;

	vq_chain_init(&pc, psegs, KR_ARRAY_SIZE(psegs));
	for (unsigned i = 0; i < n; i++) {
		bool w = i >= n - nwrite;

		psegs[i] = (struct vq_seg){ pbuf + off, lens[i], w };
		off += lens[i];
		if (w)
			pc.write_len += lens[i];
		else
			pc.read_len += lens[i];
	}
	pc.nseg = n;
	pc.nread = n - nwrite;
}

static enum vsock_verdict parse_hdr(const struct vsock_hdr *in,
				    uint32_t bytes, struct vsock_hdr *out)
{
	uint32_t l = bytes;

	memset(pbuf, 0xee, VSOCK_HDR_SIZE + VSOCK_MAX_PAYLOAD + 1);
	vsock_hdr_encode(in, pbuf);
	pchain(&l, 1, 0);
	memset(&err, 0, sizeof(err));
	return vsock_tx_parse(&pc, CID, out, &err);
}

static void test_tx_parse(void)
{
	const struct vsock_hdr good = {
		.src_cid = CID, .dst_cid = 2, .src_port = 1025, .dst_port = 52,
		.type = 1, .op = VSOCK_OP_REQUEST, .buf_alloc = 262144,
	};
	struct vsock_hdr h = good, out, rst;

	CHECK(parse_hdr(&h, 44, &out) == VSOCK_ACCEPT);
	CHECK(hdr_eq(&out, &good));
	CHECK(parse_hdr(&h, 43, &out) == VSOCK_DROP);
	CHECK_STREQ(err.msg, "tx chain of 43 readable bytes is shorter than"
		    " the 44-byte header");

	h.src_cid = 4;		/* spoofed */
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_DROP);
	CHECK_STREQ(err.msg, "REQUEST from cid 4, but the guest is cid 3");
	h = good;
	h.dst_cid = 5;
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_REPLY_RST);
	CHECK_CONTAINS(err.msg, "to cid 5");
	vsock_rst_for(&out, &rst);
	CHECK(rst.src_cid == 5 && rst.dst_cid == CID && rst.src_port == 52 &&
	      rst.dst_port == 1025 && rst.op == VSOCK_OP_RST &&
	      rst.type == 1 && rst.len == 0 && rst.buf_alloc == 0);
	h.op = VSOCK_OP_RST;	/* an RST is never answered */
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_DROP);
	h = good;
	h.type = VSOCK_TYPE_SEQPACKET;
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_REPLY_RST);
	CHECK(err.code == KR_UNIMPLEMENTED);
	CHECK_CONTAINS(err.msg, "type 2");
	h = good;
	h.op = 0;
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_REPLY_RST);
	CHECK_STREQ(err.msg, "op 0 is not a vsock operation (1..7)");
	h.op = 8;
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_REPLY_RST);
	h.op = 99;
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_REPLY_RST);
	CHECK_CONTAINS(err.msg, "op 99");

	/* len against the chain and against the maximum */
	h = good;
	h.op = VSOCK_OP_RW;
	h.len = 100;
	CHECK(parse_hdr(&h, 44 + 99, &out) == VSOCK_REPLY_RST);
	CHECK_STREQ(err.msg, "RW with len 100, but the chain holds 99 bytes"
		    " after the header");
	CHECK(parse_hdr(&h, 44 + 100, &out) == VSOCK_ACCEPT);
	CHECK(parse_hdr(&h, 44 + 5000, &out) == VSOCK_ACCEPT);
	h.len = VSOCK_MAX_PAYLOAD;
	CHECK(parse_hdr(&h, 44 + VSOCK_MAX_PAYLOAD, &out) == VSOCK_ACCEPT);
	h.len = VSOCK_MAX_PAYLOAD + 1;
	CHECK(parse_hdr(&h, 44 + VSOCK_MAX_PAYLOAD + 1, &out) ==
	      VSOCK_REPLY_RST);
	CHECK_CONTAINS(err.msg, "len 65537: the limit is 65536");
	h.len = UINT32_MAX;
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_REPLY_RST);
	h.op = VSOCK_OP_RST;
	CHECK(parse_hdr(&h, 44, &out) == VSOCK_DROP);
}

static void test_tx_parse_shapes(void)
{
	const struct vsock_hdr good = {
		.src_cid = CID, .dst_cid = 2, .src_port = 0xdeadbeef,
		.dst_port = 0x12345678, .len = 10, .type = 1,
		.op = VSOCK_OP_RW, .flags = 0, .buf_alloc = 4096,
		.fwd_cnt = 0xfffffff0,
	};
	struct vsock_hdr out;
	uint8_t pay[10];

	vsock_hdr_encode(&good, pbuf);
	memcpy(pbuf + 44, "0123456789", 10);
	/* header over three descriptors, payload in a fourth */
	pchain((const uint32_t[]){ 10, 20, 14, 10 }, 4, 0);
	CHECK(vsock_tx_parse(&pc, CID, &out, &err) == VSOCK_ACCEPT);
	CHECK(hdr_eq(&out, &good));
	CHECK(vq_chain_read(&pc, 44, pay, 10) == 10);
	CHECK(memcmp(pay, "0123456789", 10) == 0);
	/* header and payload sharing descriptors */
	pchain((const uint32_t[]){ 1, 50, 3 }, 3, 0);
	CHECK(vsock_tx_parse(&pc, CID, &out, &err) == VSOCK_ACCEPT);
	CHECK(out.fwd_cnt == 0xfffffff0 && out.src_port == 0xdeadbeef);
	/* one byte short of payload, spread out */
	pchain((const uint32_t[]){ 44, 4, 5 }, 3, 0);
	CHECK(vsock_tx_parse(&pc, CID, &out, &err) == VSOCK_REPLY_RST);
	/* writable segments are not part of the packet */
	pchain((const uint32_t[]){ 30, 24 }, 2, 1);
	CHECK(vsock_tx_parse(&pc, CID, &out, &err) == VSOCK_DROP);
	pchain((const uint32_t[]){ 44, 10 }, 2, 1);
	CHECK(vsock_tx_parse(&pc, CID, &out, &err) == VSOCK_REPLY_RST);
	/* no readable bytes at all */
	pchain((const uint32_t[]){ 64 }, 1, 1);
	CHECK(vsock_tx_parse(&pc, CID, &out, &err) == VSOCK_DROP);
}

static void test_credit_math(void)
{
	CHECK(vsock_credit_free(16384, 0, 0) == 16384);
	CHECK(vsock_credit_free(16384, 0, 100) == 16284);
	CHECK(vsock_credit_free(16384, 100, 16484) == 0);
	CHECK(vsock_credit_free(16384, 100, 16485) == 0);	/* over */
	/* counters wrapped around 2^32 */
	CHECK(vsock_credit_free(16384, 0xffffff00u, 0x100) == 16384 - 0x200);
	CHECK(vsock_credit_free(65536, 0xfffffffeu, 0xfffffffeu) == 65536);
	/* a peer claiming to have consumed more than we sent: no credit */
	CHECK(vsock_credit_free(16384, 200, 100) == 0);
	CHECK(vsock_credit_free(0, 0, 0) == 0);
	CHECK(vsock_credit_free(UINT32_MAX, 0, 1) == UINT32_MAX - 1);
}

static void test_connect_line(void)
{
	static const char *const bad[] = {
		"CONNECT 4294967296\n", "CONNECT 12345678901\n",
		"CONNECT\n", "CONNECT \n", "CONNECT -1\n", "CONNECT +1\n",
		"CONNECT 1 \n", "CONNECT 1\r\n", "CONNECT  1\n", "CONNECT 1",
		"HELLO 1\n", "CONNECTX1\n", "\n", "", "CONNECT 0x10\n",
		"CONNECT 1\n2\n", "CONNECT 00000000000000000001\n",
	};
	uint32_t port = 7;

	CHECK(vsock_connect_line_parse("CONNECT 52\n", 11, &port, &err) == 0);
	CHECK(port == 52);
	CHECK(vsock_connect_line_parse("connect 0\n", 10, &port, &err) == 0);
	CHECK(port == 0);
	CHECK(vsock_connect_line_parse("CoNnEcT 4294967295\n", 19, &port,
				       &err) == 0);
	CHECK(port == UINT32_MAX);
	CHECK(vsock_connect_line_parse("CONNECT 0000000001\n", 19, &port,
				       &err) == 0);
	CHECK(port == 1);
	for (unsigned i = 0; i < KR_ARRAY_SIZE(bad); i++) {
		port = 7;
		CHECKF(vsock_connect_line_parse(bad[i], strlen(bad[i]), &port,
						&err) == -1, "\"%s\"", bad[i]);
		CHECK(port == 7);
	}
	CHECK(vsock_connect_line_parse("CONNECT 4294967296\n", 19, &port,
				       &err) == -1);
	CHECK_STREQ(err.msg, "CONNECT port 4294967296 is above 4294967295");
	CHECK(vsock_connect_line_parse("CONNECT 1\r\n", 11, &port, &err) == -1);
	CHECK_STREQ(err.msg, "CONNECT line: byte 0x0d at 9 is not a digit");
	/* 33 bytes: one too many, even though well-formed otherwise */
	CHECK(vsock_connect_line_parse("CONNECT 000000000000000000000001\n",
				       33, &port, &err) == -1);
	CHECK_CONTAINS(err.msg, "33 bytes");
	/* NUL inside: length counts, not C strings */
	CHECK(vsock_connect_line_parse("CONNECT 1\0\n", 11, &port, &err) == -1);
}

/* ==== the device ======================================================== */

static void test_create_refused(void)
{
	static const uint64_t bad_cid[] = {
		0, 1, 2, 0xffffffffull, 0x100000000ull, UINT64_MAX,
	};
	char longp[128];
	int before = count_fds(), live;
	struct stat st;
	struct evloop *e = ev_new(&err);

	REQUIRE(e);
	snprintf(path, sizeof(path), "/tmp/kr-vsock-%d-refused.sock", getpid());
	for (unsigned i = 0; i < KR_ARRAY_SIZE(bad_cid); i++) {
		CHECK(virtio_vsock_create(&dev, e, &gm, BASE, GSI, -1, NULL,
					  bad_cid[i], path, &err) == -1);
		CHECK(err.code == KR_INVALID_ARGUMENT);
		CHECK_CONTAINS(err.msg, "reserved or too large");
		CHECK(lstat(path, &st) < 0);
	}
	memset(longp, 'a', 97);
	longp[0] = '/';
	longp[97] = 0;
	CHECK(virtio_vsock_create(&dev, e, &gm, BASE, GSI, -1, NULL, CID, longp,
				  &err) == -1);
	CHECK_STREQ(err.msg, "virtio-vsock: uds path of 97 bytes (1..96, to"
		    " leave room for \"_<port>\")");
	CHECK(virtio_vsock_create(&dev, e, &gm, BASE, GSI, -1, NULL, CID, "",
				  &err) == -1);
	CHECK(virtio_vsock_create(&dev, NULL, &gm, BASE, GSI, -1, NULL, CID,
				  path, &err) == -1);
	/* Someone else serves the path: not ours to take. */
	live = kr_unix_listen(path, &err);
	REQUIRE(live >= 0);
	CHECK(virtio_vsock_create(&dev, e, &gm, BASE, GSI, -1, NULL, CID, path,
				  &err) == -1);
	CHECK(err.errnum == EADDRINUSE);
	CHECK_CONTAINS(err.msg, "virtio-vsock: listen on");
	CHECK(lstat(path, &st) == 0);	/* the other server's, still there */
	close(live);
	unlink(path);
	/* A stale socket file (nobody listening) is replaced. */
	live = kr_unix_listen(path, &err);
	close(live);
	CHECK(virtio_vsock_create(&dev, e, &gm, BASE, GSI, -1, NULL, CID, path,
				  &err) == 0);
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	/* Replaced behind our back: destroy leaves the newcomer alone. */
	unlink(path);
	close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	virtio_vsock_destroy(&dev);
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
	unlink(path);
	ev_free(e);
	CHECK(count_fds() == before);
}

static void test_registers_and_config(void)
{
	uint8_t b[4] = { 0 };

	REQUIRE(setup() == 0);
	CHECK(rd(VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976);
	CHECK(rd(VIRTIO_MMIO_VERSION) == 2);
	CHECK(rd(VIRTIO_MMIO_DEVICE_ID) == 19);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == 0);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	/* VERSION_1 (32) and IN_ORDER (35) */
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == 0x9);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == VSOCK_QUEUE_MAX);
	wr(VIRTIO_MMIO_QUEUE_SEL, 3);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);	/* no 4th queue */
	/* le64 guest_cid, as Linux reads it: two 32-bit halves */
	CHECK(rd(VIRTIO_MMIO_CONFIG) == CID);
	CHECK(rd(VIRTIO_MMIO_CONFIG + 4) == 0);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG, b, 1, false);
	CHECK(b[0] == CID);
	b[0] = 0xff;
	virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG + 1, b, 2, false);
	CHECK(b[0] == 0 && b[1] == 0);
	CHECK(rd(VIRTIO_MMIO_CONFIG + 8) == 0);	/* past the end */
	wr(VIRTIO_MMIO_CONFIG, 77);			/* read-only */
	CHECK(rd(VIRTIO_MMIO_CONFIG) == CID);
	CHECK(rd(VIRTIO_MMIO_STATUS) == 15);
	CHECK(dev.active);
	teardown();
}

static void test_activate_needs_queues(void)
{
	REQUIRE(setup() == 0);
	/* Reset, then DRIVER_OK with only the tx queue ready. */
	memset(ram, 0, RAM_SIZE);
	negotiate(F_V1);
	gq_enable(&txq);
	wr(VIRTIO_MMIO_STATUS, 15);
	CHECK(!dev.active);
	CHECK(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* Features outside what we offer are refused at FEATURES_OK. */
	negotiate(F_V1 | (1ull << VIRTIO_F_EVENT_IDX));
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK));
	driver_up(QSZ);
	CHECK(dev.active);
	teardown();
}

static void test_guest_connect(void)
{
	static const uint8_t response[VSOCK_HDR_SIZE] = {
		2, 0, 0, 0, 0, 0, 0, 0,		/* src_cid 2 */
		3, 0, 0, 0, 0, 0, 0, 0,		/* dst_cid 3 */
		0xd2, 0x04, 0, 0,		/* src_port 1234 */
		0x01, 0x04, 0, 0,		/* dst_port 1025 */
		0, 0, 0, 0,			/* len */
		1, 0, 2, 0,			/* STREAM, RESPONSE */
		0, 0, 0, 0,			/* flags */
		0, 0, 1, 0,			/* buf_alloc 65536 */
		0, 0, 0, 0,			/* fwd_cnt */
	};
	uint64_t irqs = 0;
	char buf[64];
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(1234, 16);
	if (read(irq_fd, &irqs, 8) < 0)
		irqs = 0;	/* drain */
	atomic_store(&dev.isr, 0);
	tx_op(VSOCK_OP_REQUEST, 1025, 1234, 0, GUEST_BUF, 0);
	REQUIRE(rx_pending() == 1);
	/* the exact bytes the guest finds in its rx buffer */
	CHECK(get32(rxq.used + 4) == 0 && get32(rxq.used + 8) == 44);
	CHECK(memcmp(host(RXBUF(0)), response, 44) == 0);
	CHECK(read(irq_fd, &irqs, 8) == 8 && irqs >= 1);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	REQUIRE(rx_pop(&pk));
	hfd = host_accept(lfd);
	REQUIRE(hfd >= 0);
	CHECK(stats().conns == 1);

	/* guest -> host */
	tx_rw(1025, 1234, "hello", 5);
	CHECK(host_recv(hfd, buf, sizeof(buf)) == 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	/* host -> guest */
	host_send(hfd, "world!", 6);
	pump();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RW, 1234, 1025);
	CHECK(pk.h.len == 6 && pk.used_len == 50);
	CHECK(memcmp(pk.data, "world!", 6) == 0);
	CHECK(pk.h.buf_alloc == 65536 && pk.h.fwd_cnt == 5);
	CHECK(!rx_pop(&pk));
	/* the guest resets: the host sees EOF */
	tx_op(VSOCK_OP_RST, 1025, 1234, 0, 0, 0);
	CHECK(host_eof(hfd));
	CHECK(stats().conns == 0);
	CHECK(!rx_pop(&pk));	/* an RST gets no answer */
	close(hfd);
	host_unlisten(lfd, 1234);
	teardown();
}

static void test_guest_connect_refused(void)
{
	char p[128];
	int fd;

	REQUIRE(setup() == 0);
	tx_op(VSOCK_OP_REQUEST, 1026, 4321, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 4321, 1026);
	CHECK(pk.h.len == 0 && pk.used_len == 44);
	/* a socket file nobody listens on, and a file that is no socket */
	fd = host_listen(4322, 1);
	close(fd);
	tx_op(VSOCK_OP_REQUEST, 1027, 4322, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 4322, 1027);
	snprintf(p, sizeof(p), "%s_4323", path);
	close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	tx_op(VSOCK_OP_REQUEST, 1028, 4323, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 4323, 1028);
	unlink(p);
	snprintf(p, sizeof(p), "%s_4322", path);
	unlink(p);
	CHECK(stats().conns == 0);
	teardown();
}

/* Host client: connect, send the line, get the guest's REQUEST. */
static int host_connect(const char *line, uint32_t gport, uint32_t lport)
{
	int cfd = host_client();

	if (cfd < 0)
		return -1;
	host_send(cfd, line, strlen(line));
	pump();
	if (!rx_pop(&pk)) {
		close(cfd);
		return -1;
	}
	CHECK_PKT(&pk, VSOCK_OP_REQUEST, lport, gport);
	CHECK(pk.h.buf_alloc == 65536 && pk.h.fwd_cnt == 0);
	return cfd;
}

static void test_host_connect(void)
{
	char buf[64];
	int c1, c2;

	REQUIRE(setup() == 0);
	c1 = host_connect("CONNECT 5000\n", 5000, LP0);
	REQUIRE(c1 >= 0);
	CHECK(host_recv(c1, buf, sizeof(buf)) == -1);	/* no OK yet */
	tx_op(VSOCK_OP_RESPONSE, 5000, LP0, 0, GUEST_BUF, 0);
	CHECK(host_recv(c1, buf, sizeof(buf)) == 14);
	CHECK(memcmp(buf, "OK 1073741824\n", 14) == 0);
	/* data both ways */
	host_send(c1, "ping", 4);
	pump();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RW, LP0, 5000);
	CHECK(pk.h.len == 4 && memcmp(pk.data, "ping", 4) == 0);
	tx_rw(5000, LP0, "pong", 4);
	CHECK(host_recv(c1, buf, sizeof(buf)) == 4);
	CHECK(memcmp(buf, "pong", 4) == 0);

	/* The next client gets the next port, and data sent right behind
	 * the line is not eaten by the line reader. */
	c2 = host_client();
	REQUIRE(c2 >= 0);
	host_send(c2, "connect 5001\nearly", 18);
	pump();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_REQUEST, LP0 + 1, 5001);
	CHECK(!rx_pop(&pk));		/* no data before the RESPONSE */
	tx_op(VSOCK_OP_RESPONSE, 5001, LP0 + 1, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RW, LP0 + 1, 5001);
	CHECK(pk.h.len == 5 && memcmp(pk.data, "early", 5) == 0);
	CHECK(host_recv(c2, buf, sizeof(buf)) == 14);
	CHECK(memcmp(buf, "OK 1073741825\n", 14) == 0);
	CHECK(stats().conns == 2);

	/* The guest's RST closes the client. */
	tx_op(VSOCK_OP_RST, 5001, LP0 + 1, 0, 0, 0);
	CHECK(host_eof(c2));
	close(c1);
	close(c2);
	pump();
	teardown();
}

static void test_host_connect_refused_by_guest(void)
{
	int c;

	REQUIRE(setup() == 0);
	c = host_connect("CONNECT 6000\n", 6000, LP0);
	REQUIRE(c >= 0);
	tx_op(VSOCK_OP_RST, 6000, LP0, 0, 0, 0);	/* nobody listens */
	CHECK(host_eof(c));
	CHECK(stats().conns == 0);
	CHECK(!rx_pop(&pk));
	close(c);

	/* No answer at all: after request_ms, RST to the guest, EOF to
	 * the client. */
	c = host_connect("CONNECT 6001\n", 6001, LP0 + 1);
	REQUIRE(c >= 0);
	run_for(50);
	CHECK(!host_eof(c));
	run_for(200);
	CHECK(host_eof(c));
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, LP0 + 1, 6001);
	CHECK(stats().conns == 0);
	/* A late RESPONSE finds no connection: RST. */
	tx_op(VSOCK_OP_RESPONSE, 6001, LP0 + 1, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, LP0 + 1, 6001);
	close(c);
	teardown();
}

static void test_connect_line_hostile(void)
{
	char junk[VSOCK_CONNECT_LINE_MAX];
	int c[6];
	uint64_t t0;

	REQUIRE(setup() == 0);
	memset(junk, 'A', sizeof(junk));
	for (unsigned i = 0; i < 6; i++) {
		c[i] = host_client();
		REQUIRE(c[i] >= 0);
	}
	host_send(c[0], "HELLO\n", 6);			/* garbage */
	host_send(c[1], junk, sizeof(junk));	/* 32 bytes, no newline */
	host_send(c[2], "CONN", 4);			/* never finished */
	host_send(c[3], "CONNECT 99999999999\n", 20);	/* port too big */
	host_send(c[4], "CONNECT 7\r\n", 11);		/* not our format */
	/* c[5] sends nothing at all */
	pump();
	CHECK(host_eof(c[0]));
	CHECK(host_eof(c[1]));
	CHECK(host_eof(c[3]));
	CHECK(host_eof(c[4]));
	CHECK(!host_eof(c[2]) && !host_eof(c[5]));
	CHECK(stats().conns == 2);
	/* The stalled clients block nothing: a guest connection goes on. */
	t0 = kr_now_ms();
	tx_op(VSOCK_OP_REQUEST, 1100, 9999, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 9999, 1100);
	CHECK(kr_now_ms() - t0 < 50);
	/* A client hanging up mid-line is dropped at once. */
	{
		int q = host_client();

		REQUIRE(q >= 0);
		host_send(q, "CONNECT 4", 9);
		pump();
		CHECK(stats().conns == 3);
		close(q);
		pump();
		CHECK(stats().conns == 2);
	}
	/* ... and they are dropped after line_ms. */
	run_for(250);
	CHECK(host_eof(c[2]));
	CHECK(host_eof(c[5]));
	CHECK(stats().conns == 0);
	CHECK(!rx_pop(&pk));	/* the guest never heard of any of them */
	for (unsigned i = 0; i < 6; i++)
		close(c[i]);

	/* Before the driver is up, a complete line is refused. */
	wr(VIRTIO_MMIO_STATUS, 0);
	c[0] = host_client();
	REQUIRE(c[0] >= 0);
	host_send(c[0], "CONNECT 1\n", 10);
	pump();
	CHECK(host_eof(c[0]));
	close(c[0]);
	teardown();
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 8) * 13);
}

/* The host sends 200 KiB to a guest advertising 10000 bytes (not a
 * multiple of its 4 KiB rx buffers: the last packet before each stall is
 * cut to the credit): never more than the credit in flight, a
 * CREDIT_REQUEST when it runs out, and each CREDIT_UPDATE lets the next
 * 10000 bytes through; the bytes arrive intact. */
static void test_h2g_credit(void)
{
	static uint8_t data[200 << 10];
	const uint32_t credit = 10000;
	size_t sent = 0, got = 0, consumed = 0;
	unsigned requests = 0, stalls = 0, rounds = 0;
	int lfd, hfd;
	bool ok = true;

	REQUIRE(setup() == 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = pattern(i);
	lfd = host_listen(80, 4);
	hfd = open_guest_conn(lfd, 2000, 80, credit);
	REQUIRE(hfd >= 0);
	while (got < sizeof(data) && rounds++ < 10000) {
		ssize_t w = send(hfd, data + sent, sizeof(data) - sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w > 0)
			sent += (size_t)w;
		pump();
		while (rx_pop(&pk)) {
			if (pk.h.op == VSOCK_OP_CREDIT_REQUEST) {
				requests++;
				continue;
			}
			CHECK_PKT(&pk, VSOCK_OP_RW, 80, 2000);
			if (pk.h.len > 4096 ||
			    memcmp(pk.data, data + got, pk.h.len) != 0)
				ok = false;
			got += pk.h.len;
			/* never more in flight than the guest allowed */
			CHECKF(got - consumed <= credit, "%zu in flight",
			       got - consumed);
		}
		if (got - consumed == credit) {
			/* Stalled: nothing more comes without credit. */
			pump();
			CHECK(rx_pending() == 0);
			stalls++;
			consumed = got;
			tx_op(VSOCK_OP_CREDIT_UPDATE, 2000, 80, 0, credit,
			      (uint32_t)consumed);
		}
	}
	CHECK(ok);
	CHECKF(got == sizeof(data), "got %zu of %zu", got, sizeof(data));
	CHECK(stalls == sizeof(data) / credit);		/* 20 */
	CHECK(requests == stalls);	/* one per exhaustion */
	close(hfd);
	pump();
	host_unlisten(lfd, 80);
	teardown();
}

/* Guest -> host within credit: the device announces freed space when the
 * guest's view of it drops below 4 KiB, and on CREDIT_REQUEST. */
static void test_g2h_credit_update(void)
{
	static uint8_t chunk[4096], back[70000];
	unsigned updates = 0;
	uint32_t last_fwd = 0;
	size_t got = 0;
	int lfd, hfd;
	ssize_t r;

	REQUIRE(setup() == 0);
	lfd = host_listen(81, 4);
	hfd = open_guest_conn(lfd, 2001, 81, GUEST_BUF);
	REQUIRE(hfd >= 0);
	for (unsigned i = 0; i < 16; i++) {
		memset(chunk, 'a' + (int)i, sizeof(chunk));
		tx_rw(2001, 81, chunk, sizeof(chunk));
		r = host_recv(hfd, back + got, sizeof(back) - got);
		CHECK(r == 4096);
		if (r > 0)
			got += (size_t)r;
		while (rx_pop(&pk)) {
			CHECK_PKT(&pk, VSOCK_OP_CREDIT_UPDATE, 81, 2001);
			CHECK(pk.h.buf_alloc == 65536);
			updates++;
			last_fwd = pk.h.fwd_cnt;
		}
		/* Only once the guest's view of our free space is below
		 * 4 KiB: 65536 - 16 * 4096 = 0 after the 16th packet. */
		CHECKF(updates == (i >= 15), "after packet %u: %u updates", i,
		       updates);
	}
	CHECK(last_fwd == 65536);
	CHECK(got == 65536 && back[0] == 'a' && back[65535] == 'p');
	/* CREDIT_REQUEST: the answer carries the same fwd_cnt */
	tx_op(VSOCK_OP_CREDIT_REQUEST, 2001, 81, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_CREDIT_UPDATE, 81, 2001);
	CHECK(pk.h.fwd_cnt == 65536 && pk.h.buf_alloc == 65536);
	close(hfd);
	pump();
	host_unlisten(lfd, 81);
	teardown();
}

/* The host does not read; the guest ignores our credit and keeps
 * sending 64 KiB packets.  Once the socket is full and 64 KiB are
 * buffered, the next packet is a credit violation: RST.  We never buffer
 * more than our buf_alloc. */
static void test_g2h_credit_violation(void)
{
	static uint8_t big[VSOCK_MAX_PAYLOAD], back[VSOCK_MAX_PAYLOAD];
	size_t sent = 0, got = 0;
	unsigned n;
	bool rst = false, same = true;
	int lfd, hfd;
	ssize_t r;

	REQUIRE(setup() == 0);
	lfd = host_listen(82, 4);
	hfd = open_guest_conn(lfd, 2002, 82, GUEST_BUF);
	REQUIRE(hfd >= 0);
	for (n = 0; n < 64 && !rst; n++) {
		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = pattern(sent + i);
		tx_rw(2002, 82, big, sizeof(big));
		sent += sizeof(big);
		CHECK(stats().buffered <= VSOCK_BUF_ALLOC);
		while (rx_pop(&pk)) {
			if (pk.h.op == VSOCK_OP_RST) {
				CHECK_PKT(&pk, VSOCK_OP_RST, 82, 2002);
				rst = true;
			}
		}
	}
	CHECK(rst);
	CHECKF(n > 2 && n < 40, "RST after %u packets", n);
	CHECK(stats().conns == 0 && stats().buffered == 0);
	/* What reached the host is a prefix of what was sent. */
	while ((r = host_recv(hfd, back, sizeof(back))) > 0) {
		for (ssize_t i = 0; i < r; i++)
			if (back[i] != pattern(got + (size_t)i))
				same = false;
		got += (size_t)r;
	}
	CHECK(r == 0);		/* then EOF */
	CHECK(same);
	CHECKF(got < sent && got > 0, "got %zu of %zu", got, sent);
	close(hfd);
	host_unlisten(lfd, 82);
	teardown();
}

/* A slow host and a guest that respects our credit: the device buffers
 * what the socket does not take, flushes it when the socket drains
 * (EPOLLOUT), and announces the space; no RST, every byte in order.
 * SHUTDOWN(send) with data still buffered reaches the host only after the
 * data; SHUTDOWN(both) then is answered by an RST after the flush. */
static void g2h_slow_host(uint32_t gport, uint32_t last_flags)
{
	static uint8_t chunk[16384], back[1 << 16];
	const size_t total = 512u << 10;
	size_t sent = 0, got = 0;
	uint32_t fwd = 0;		/* our fwd_cnt as the guest knows it */
	size_t max_buffered = 0;
	unsigned rounds = 0;
	bool in_order = true, rst = false;
	int lfd, hfd;
	ssize_t r;

	lfd = host_listen(92, 4);
	hfd = open_guest_conn(lfd, gport, 92, GUEST_BUF);
	REQUIRE(hfd >= 0);
	while ((sent < total || got < total) && rounds++ < 2000) {
		/* the guest sends as much as its credit allows */
		while (sent < total) {
			uint32_t room = vsock_credit_free(VSOCK_BUF_ALLOC, fwd,
							  (uint32_t)sent);
			uint32_t n = room < sizeof(chunk) ? room : sizeof(chunk);

			if (n == 0)
				break;
			for (uint32_t i = 0; i < n; i++)
				chunk[i] = pattern(sent + i);
			tx_rw(gport, 92, chunk, n);
			sent += n;
		}
		if (stats().buffered > max_buffered)
			max_buffered = stats().buffered;
		CHECK(stats().buffered <= VSOCK_BUF_ALLOC);
		while (rx_pop(&pk)) {
			if (pk.h.op == VSOCK_OP_RST)
				rst = true;
			else
				CHECK_PKT(&pk, VSOCK_OP_CREDIT_UPDATE, 92, gport);
			fwd = pk.h.fwd_cnt;
		}
		/* the host reads only every other round, a bit at a time */
		if (rounds % 2)
			continue;
		r = host_recv(hfd, back, 1 + rounds % sizeof(back));
		for (ssize_t i = 0; i < r; i++)
			if (back[i] != pattern(got + (size_t)i))
				in_order = false;
		if (r > 0)
			got += (size_t)r;
		pump();
	}
	CHECK(!rst);
	CHECK(in_order);
	CHECKF(got == total, "got %zu of %zu", got, total);
	CHECKF(max_buffered > 0, "the socket never filled");

	/* Data buffered again, then the guest shuts down. */
	while (stats().buffered == 0) {
		uint32_t room = vsock_credit_free(VSOCK_BUF_ALLOC, fwd,
						  (uint32_t)sent);

		REQUIRE(room > 0);
		room = room < sizeof(chunk) ? room : sizeof(chunk);
		memset(chunk, 'q', room);
		tx_rw(gport, 92, chunk, room);
		sent += room;
		while (rx_pop(&pk))
			fwd = pk.h.fwd_cnt;
	}
	tx_op(VSOCK_OP_SHUTDOWN, gport, 92, last_flags, GUEST_BUF, 0);
	CHECK(!rx_pop(&pk));		/* nothing yet: still flushing */
	got = 0;
	for (unsigned i = 0; i < 1000; i++) {
		r = host_recv(hfd, back, sizeof(back));
		if (r == 0)
			break;
		if (r > 0)
			got += (size_t)r;
		pump();
	}
	CHECK(r == 0);			/* EOF after all the data */
	CHECKF(got == sent - total, "got %zu of %zu", got, sent - total);
	if (last_flags == VSOCK_SHUTDOWN_BOTH) {
		REQUIRE(rx_pop(&pk));
		CHECK_PKT(&pk, VSOCK_OP_RST, 92, gport);
		CHECK(stats().conns == 0);
		close(hfd);
	} else {
		while (rx_pop(&pk))
			CHECK(pk.h.op == VSOCK_OP_CREDIT_UPDATE);
		CHECK(stats().conns == 1);
		/* The host hangs up: done both ways, the guest answers
		 * the full SHUTDOWN with RST. */
		close(hfd);
		pump();
		REQUIRE(rx_pop(&pk));
		CHECK_PKT(&pk, VSOCK_OP_SHUTDOWN, 92, gport);
		CHECK(pk.h.flags == VSOCK_SHUTDOWN_BOTH);
		tx_op(VSOCK_OP_RST, gport, 92, 0, 0, 0);
		CHECK(stats().conns == 0);
	}
	CHECK(!rx_pop(&pk));
	host_unlisten(lfd, 92);
}

static void test_g2h_slow_host(void)
{
	REQUIRE(setup() == 0);
	g2h_slow_host(2010, VSOCK_SHUTDOWN_SEND);
	g2h_slow_host(2011, VSOCK_SHUTDOWN_BOTH);
	teardown();
}

/* No packet carries more than 64 KiB, however large the rx buffer and
 * the guest's credit. */
static void test_h2g_max_packet(void)
{
	static uint8_t data[100000];
	size_t got = 0;
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(93, 4);
	hfd = open_guest_conn(lfd, 2012, 93, GUEST_BUF);
	REQUIRE(hfd >= 0);
	/* use up the 64 small buffers, then post big ones */
	rx_repost = false;
	while (rx_pending() < QSZ) {
		host_send(hfd, "s", 1);
		pump();
	}
	while (rx_pop(&pk))
		;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = pattern(i);
	host_send(hfd, data, sizeof(data));
	for (unsigned i = 0; i < 4; i++)
		rx_post(40 + i, TXBUF_SIZE);	/* 69632 bytes each */
	kick(&rxq);
	REQUIRE(rx_pop(&pk));
	CHECK(pk.id == 40);
	CHECK_PKT(&pk, VSOCK_OP_RW, 93, 2012);
	CHECK(pk.h.len == VSOCK_MAX_PAYLOAD);
	CHECK(memcmp(pk.data, data, VSOCK_MAX_PAYLOAD) == 0);
	got += pk.h.len;
	REQUIRE(rx_pop(&pk));
	CHECK(pk.h.len == sizeof(data) - VSOCK_MAX_PAYLOAD);
	CHECK(memcmp(pk.data, data + got, pk.h.len) == 0);
	close(hfd);
	pump();
	host_unlisten(lfd, 93);
	teardown();
}

/* Control packets owed while the guest has no rx buffers go out in
 * protocol order once it posts some: RESPONSE before anything else on the
 * connection, SHUTDOWN last. */
static void test_control_order(void)
{
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(94, 4);
	driver_up(0);
	tx_op(VSOCK_OP_REQUEST, 2020, 94, 0, GUEST_BUF, 0);
	tx_op(VSOCK_OP_CREDIT_REQUEST, 2020, 94, 0, GUEST_BUF, 0);
	hfd = host_accept(lfd);
	REQUIRE(hfd >= 0);
	host_send(hfd, "hi", 2);
	close(hfd);
	pump();
	CHECK(rx_pending() == 0);
	rx_fill(QSZ);
	kick(&rxq);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RESPONSE, 94, 2020);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_CREDIT_UPDATE, 94, 2020);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RW, 94, 2020);
	CHECK(pk.h.len == 2);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_SHUTDOWN, 94, 2020);
	CHECK(!rx_pop(&pk));
	host_unlisten(lfd, 94);
	teardown();
}

/* Without rx buffers the device neither sends nor reads its sockets (no
 * spinning on a readable socket); the guest's rx kick resumes both. */
static void test_rx_starvation(void)
{
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(83, 4);
	hfd = open_guest_conn(lfd, 2003, 83, GUEST_BUF);
	REQUIRE(hfd >= 0);
	/* The guest stops reposting: use up its 64 buffers. */
	rx_repost = false;
	for (unsigned i = 0; i < QSZ; i++) {
		host_send(hfd, "x", 1);
		pump();
	}
	host_send(hfd, "0123456789", 10);
	pump();
	CHECK(rx_pending() == QSZ);
	while (rx_pop(&pk))
		CHECK(pk.h.op == VSOCK_OP_RW && pk.h.len == 1);
	/* Idle although the socket is readable (a level-triggered EPOLLIN
	 * left on would run the handler every round: 10000).  At most the
	 * tick timer runs. */
	CHECK(pump() <= 2);
	tx_op(VSOCK_OP_CREDIT_REQUEST, 2003, 83, 0, GUEST_BUF, 0);
	CHECK(pump() <= 2);
	CHECK(rx_pending() == 0);
	/* One small buffer: the owed CREDIT_UPDATE, then 20-byte payloads */
	rx_post(5, 44 + 4);
	rx_post(6, 44 + 4);
	rx_post(7, 44 + 4);
	kick(&rxq);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_CREDIT_UPDATE, 83, 2003);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RW, 83, 2003);
	CHECK(pk.h.len == 4 && memcmp(pk.data, "0123", 4) == 0);
	REQUIRE(rx_pop(&pk));
	CHECK(pk.h.len == 4 && memcmp(pk.data, "4567", 4) == 0);
	CHECK(!rx_pop(&pk));
	rx_post(8, RX_DEFAULT);
	kick(&rxq);
	REQUIRE(rx_pop(&pk));
	CHECK(pk.h.len == 2 && memcmp(pk.data, "89", 2) == 0);
	close(hfd);
	host_unlisten(lfd, 83);
	teardown();
}

/* Guest-initiated clean close: SHUTDOWN(send) is EOF for the host, which
 * may still send; SHUTDOWN(rcv) completes it: RST, socket closed. */
static void test_shutdown_by_guest(void)
{
	char buf[16];
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(84, 4);
	hfd = open_guest_conn(lfd, 2004, 84, GUEST_BUF);
	REQUIRE(hfd >= 0);
	tx_rw(2004, 84, "last", 4);
	tx_op(VSOCK_OP_SHUTDOWN, 2004, 84, VSOCK_SHUTDOWN_SEND, GUEST_BUF, 0);
	CHECK(host_recv(hfd, buf, sizeof(buf)) == 4);
	CHECK(host_eof(hfd));
	CHECK(!rx_pop(&pk));
	host_send(hfd, "reply", 5);		/* the other way still works */
	pump();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RW, 84, 2004);
	CHECK(pk.h.len == 5 && memcmp(pk.data, "reply", 5) == 0);
	/* RW after its own SHUTDOWN(send) is a protocol error... but first
	 * the clean way: SHUTDOWN(rcv) completes the close. */
	tx_op(VSOCK_OP_SHUTDOWN, 2004, 84, VSOCK_SHUTDOWN_RCV, GUEST_BUF, 5);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 84, 2004);
	CHECK(stats().conns == 0);
	CHECK(send(hfd, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE);
	close(hfd);

	/* SHUTDOWN with both flags at once; then the RW-after-SHUTDOWN
	 * violation on a second connection. */
	hfd = open_guest_conn(lfd, 2005, 84, GUEST_BUF);
	REQUIRE(hfd >= 0);
	tx_op(VSOCK_OP_SHUTDOWN, 2005, 84, VSOCK_SHUTDOWN_BOTH | 0xf0,
	      GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 84, 2005);
	CHECK(host_eof(hfd));
	close(hfd);
	hfd = open_guest_conn(lfd, 2006, 84, GUEST_BUF);
	REQUIRE(hfd >= 0);
	tx_op(VSOCK_OP_SHUTDOWN, 2006, 84, VSOCK_SHUTDOWN_SEND, GUEST_BUF, 0);
	tx_rw(2006, 84, "late", 4);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 84, 2006);
	CHECK(host_eof(hfd));
	CHECK(stats().conns == 0);
	close(hfd);
	host_unlisten(lfd, 84);
	teardown();
}

/* Host-side close: the last data, then SHUTDOWN(rcv|send); the guest's
 * RST ends it, or the device sends RST itself after shutdown_ms.  A
 * half-close (shutdown(SHUT_WR)) is SHUTDOWN(send) only. */
static void test_shutdown_by_host(void)
{
	char buf[16];
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(85, 4);
	hfd = open_guest_conn(lfd, 2007, 85, GUEST_BUF);
	REQUIRE(hfd >= 0);
	host_send(hfd, "bye", 3);
	close(hfd);
	pump();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RW, 85, 2007);
	CHECK(pk.h.len == 3 && memcmp(pk.data, "bye", 3) == 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_SHUTDOWN, 85, 2007);
	CHECK(pk.h.flags == VSOCK_SHUTDOWN_BOTH);
	CHECK(!rx_pop(&pk));
	tx_op(VSOCK_OP_RST, 2007, 85, 0, 0, 0);
	CHECK(stats().conns == 0);
	CHECK(!rx_pop(&pk));

	/* The guest never answers: RST after shutdown_ms. */
	hfd = open_guest_conn(lfd, 2008, 85, GUEST_BUF);
	REQUIRE(hfd >= 0);
	close(hfd);
	pump();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_SHUTDOWN, 85, 2008);
	run_for(30);
	CHECK(stats().conns == 1);
	run_for(200);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 85, 2008);
	CHECK(stats().conns == 0);

	/* Half-close: the guest may go on sending. */
	hfd = open_guest_conn(lfd, 2009, 85, GUEST_BUF);
	REQUIRE(hfd >= 0);
	shutdown(hfd, SHUT_WR);
	pump();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_SHUTDOWN, 85, 2009);
	CHECK(pk.h.flags == VSOCK_SHUTDOWN_SEND);
	run_for(250);				/* no time limit on this */
	CHECK(stats().conns == 1);
	CHECK(!rx_pop(&pk));
	tx_rw(2009, 85, "more", 4);
	CHECK(host_recv(hfd, buf, sizeof(buf)) == 4);
	CHECK(memcmp(buf, "more", 4) == 0);
	/* The guest closes: SHUTDOWN(both) -> RST, EOF for the host. */
	tx_op(VSOCK_OP_SHUTDOWN, 2009, 85, VSOCK_SHUTDOWN_BOTH, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 85, 2009);
	CHECK(host_eof(hfd));
	close(hfd);
	CHECK(stats().conns == 0);
	host_unlisten(lfd, 85);
	teardown();
}

/* Malformed packets from the guest: each gets an RST or nothing, never
 * more, and the device goes on working. */
static void test_hostile_headers(void)
{
	static uint8_t big[VSOCK_HDR_SIZE + VSOCK_MAX_PAYLOAD + 1];
	struct vsock_hdr h = {
		.src_cid = CID, .dst_cid = 2, .src_port = 3000,
		.dst_port = 86, .type = 1, .op = VSOCK_OP_REQUEST,
		.buf_alloc = GUEST_BUF,
	};
	struct vsock_hdr x;
	char buf[8];
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(86, 4);

	x = h;
	x.src_cid = 7;			/* spoofed: dropped, no connect */
	tx_hdr(&x, NULL, 0);
	CHECK(!rx_pop(&pk));
	CHECK(host_accept(lfd) < 0);
	x = h;
	x.dst_cid = 5;			/* not the host: RST from cid 5 */
	tx_hdr(&x, NULL, 0);
	REQUIRE(rx_pop(&pk));
	CHECK(pk.h.src_cid == 5 && pk.h.op == VSOCK_OP_RST &&
	      pk.h.src_port == 86 && pk.h.dst_port == 3000);
	x = h;
	x.type = VSOCK_TYPE_SEQPACKET;
	tx_hdr(&x, NULL, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 86, 3000);
	for (unsigned i = 0; i < 2; i++) {
		x = h;
		x.op = i ? 99 : 0;
		tx_hdr(&x, NULL, 0);
		REQUIRE(rx_pop(&pk));
		CHECK_PKT(&pk, VSOCK_OP_RST, 86, 3000);
	}
	x = h;
	x.op = VSOCK_OP_RST;
	x.type = 9;			/* a bad RST: dropped */
	tx_hdr(&x, NULL, 0);
	CHECK(!rx_pop(&pk));
	/* RW and other ops for a connection that does not exist */
	x = h;
	x.op = VSOCK_OP_RW;
	x.len = 2;
	tx_hdr(&x, "hi", 2);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 86, 3000);
	x.op = VSOCK_OP_CREDIT_UPDATE;
	x.len = 0;
	tx_hdr(&x, NULL, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 86, 3000);
	x.op = VSOCK_OP_RST;		/* RST for nothing: nothing */
	tx_hdr(&x, NULL, 0);
	CHECK(!rx_pop(&pk));
	/* len larger than the chain; len above the maximum (the chain
	 * really holds that much) */
	x = h;
	x.op = VSOCK_OP_RW;
	x.len = 100;
	tx_hdr(&x, "short", 5);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 86, 3000);
	x.len = VSOCK_MAX_PAYLOAD + 1;
	vsock_hdr_encode(&x, big);
	tx_queue(big, sizeof(big));
	tx_kick();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 86, 3000);
	/* a chain too short for a header: dropped */
	tx_queue(big, 43);
	tx_kick();
	CHECK(!rx_pop(&pk));
	CHECK(stats().conns == 0);
	CHECK(host_accept(lfd) < 0);
	CHECK(stats().bad_packets == 9);

	/* The device still works, and a malformed packet on a live
	 * connection ends that connection. */
	hfd = open_guest_conn(lfd, 3001, 86, GUEST_BUF);
	REQUIRE(hfd >= 0);
	x = h;
	x.src_port = 3001;
	x.op = VSOCK_OP_RW;
	x.len = 1000;
	tx_hdr(&x, "abc", 3);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 86, 3001);
	CHECK(host_eof(hfd));
	close(hfd);
	/* RESPONSE or REQUEST for an established connection: RST too */
	hfd = open_guest_conn(lfd, 3002, 86, GUEST_BUF);
	REQUIRE(hfd >= 0);
	tx_op(VSOCK_OP_RESPONSE, 3002, 86, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 86, 3002);
	CHECK(host_recv(hfd, buf, sizeof(buf)) == 0);
	close(hfd);
	CHECK(stats().conns == 0);
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
	host_unlisten(lfd, 86);
	teardown();
}

/* Chains of any shape (spec 5.6): header split over three descriptors,
 * header and payload in one, payload over several; rx buffers split
 * too. */
static void test_chain_shapes(void)
{
	uint8_t pkt[VSOCK_HDR_SIZE + 100], buf[128];
	size_t n;
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(87, 4);
	n = build(pkt, VSOCK_OP_REQUEST, 3100, 87, NULL, 0);
	tx_queue_split(pkt, n, (const uint32_t[]){ 10, 20 }, 2);	/* +14 */
	tx_kick();
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RESPONSE, 87, 3100);
	hfd = host_accept(lfd);
	REQUIRE(hfd >= 0);
	/* header + payload in one descriptor (Linux >= 6.3) */
	n = build(pkt, VSOCK_OP_RW, 3100, 87, "single-desc", 11);
	tx_queue(pkt, n);
	tx_kick();
	CHECK(host_recv(hfd, buf, sizeof(buf)) == 11);
	CHECK(memcmp(buf, "single-desc", 11) == 0);
	/* header over three, payload over three (one of them zero-length),
	 * the header's last bytes sharing with the payload */
	n = build(pkt, VSOCK_OP_RW, 3100, 87, "0123456789abcdefghij", 20);
	tx_queue_split(pkt, n, (const uint32_t[]){ 7, 30, 0, 10, 5 }, 5);
	tx_kick();
	CHECK(host_recv(hfd, buf, sizeof(buf)) == 20);
	CHECK(memcmp(buf, "0123456789abcdefghij", 20) == 0);
	/* the Linux < 6.3 shape: header alone, then payload */
	n = build(pkt, VSOCK_OP_RW, 3100, 87, "two", 3);
	tx_queue_split(pkt, n, (const uint32_t[]){ 44 }, 1);
	tx_kick();
	CHECK(host_recv(hfd, buf, sizeof(buf)) == 3);

	/* rx: one buffer made of 20 + 30 + 100 writable bytes */
	rx_repost = false;
	while (rx_pending() < QSZ) {	/* use up the simple buffers */
		host_send(hfd, "z", 1);
		pump();
	}
	while (rx_pop(&pk))
		;
	gq_desc(&rxq, 10, RXBUF(10), 20, VQ_DESC_F_WRITE | VQ_DESC_F_NEXT, 11);
	gq_desc(&rxq, 11, RXBUF(11), 30, VQ_DESC_F_WRITE | VQ_DESC_F_NEXT, 12);
	gq_desc(&rxq, 12, RXBUF(12), 100, VQ_DESC_F_WRITE, 0);
	gq_avail_add(&rxq, 10);
	host_send(hfd, "split-rx-buffer", 15);
	kick(&rxq);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RW, 87, 3100);
	CHECK(pk.h.len == 15 && memcmp(pk.data, "split-rx-buffer", 15) == 0);
	/* the header really is cut at 20 bytes */
	CHECK(get32(RXBUF(11) + 4) == 15);	/* len at offset 24 */
	CHECK(memcmp(host(RXBUF(11) + 30 - 6), "split-", 6) == 0);
	close(hfd);
	pump();
	host_unlisten(lfd, 87);
	teardown();
}

/* 1024 connections, then 1000 more attempts: each gets an RST, no fd,
 * no memory; the RST queue stays bounded when the guest posts no rx
 * buffers.  A device reset closes them all. */
static void test_connection_limit(void)
{
	const unsigned total = VSOCK_MAX_CONNS + 1000;
	unsigned responses = 0, rsts = 0, sent = 0, accepted = 0;
	static int hfds[VSOCK_MAX_CONNS + 1000];
	int lfd, fds0;

	REQUIRE(setup() == 0);
	lfd = host_listen(88, 4096);
	fds0 = count_fds();
	while (sent < total) {
		/* a batch the rx ring can answer */
		for (unsigned i = 0; i < QSZ / 2 && sent < total; i++, sent++) {
			uint8_t p[VSOCK_HDR_SIZE];

			build(p, VSOCK_OP_REQUEST, 10000 + sent, 88, NULL, 0);
			tx_queue(p, sizeof(p));
		}
		tx_kick();
		while (rx_pop(&pk)) {
			if (pk.h.op == VSOCK_OP_RESPONSE)
				responses++;
			else if (pk.h.op == VSOCK_OP_RST)
				rsts++;
		}
		for (int fd; (fd = host_accept(lfd)) >= 0;)
			hfds[accepted++] = fd;
	}
	CHECK(responses == VSOCK_MAX_CONNS);
	CHECK(rsts == 1000);
	CHECK(accepted == VSOCK_MAX_CONNS);
	CHECK(stats().conns == VSOCK_MAX_CONNS);
	CHECK(stats().refused == 1000);
	/* one fd per connection on each side, nothing more */
	CHECKF(count_fds() == fds0 + 2 * (int)VSOCK_MAX_CONNS, "%d fds, %d + 2048",
	       count_fds(), fds0);

	/* Full: a host client is refused too. */
	{
		int c = host_client();

		REQUIRE(c >= 0);
		pump();
		CHECK(host_eof(c));
		close(c);
	}

	/* Reset: every connection closes; the host sides see EOF. */
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(stats().conns == 0);
	for (unsigned i = 0; i < accepted; i++) {
		CHECK(host_eof(hfds[i]));
		close(hfds[i]);
	}
	CHECK(count_fds() == fds0);

	/* No rx buffers, 300 refused REQUESTs: 256 RSTs kept, 44 dropped;
	 * the tx queue is processed all the same. */
	driver_up(0);
	for (unsigned i = 0; i < 300; i++) {
		uint8_t p[VSOCK_HDR_SIZE];

		build(p, VSOCK_OP_REQUEST, 20000 + i, 89, NULL, 0);
		tx_queue(p, sizeof(p));
		if (i % 32 == 31)
			tx_kick();
	}
	tx_kick();
	CHECK(stats().rst_queued == VSOCK_RST_QUEUE);
	CHECK(stats().rst_dropped == 44);
	CHECK(stats().tx_packets >= 300);
	rx_fill(QSZ);
	kick(&rxq);
	rsts = 0;
	for (unsigned round = 0; round < 10; round++) {
		while (rx_pop(&pk)) {
			CHECK(pk.h.op == VSOCK_OP_RST && pk.h.src_port == 89);
			CHECK(pk.h.dst_port == 20000 + rsts);	/* in order */
			rsts++;
		}
		pump();
	}
	CHECK(rsts == VSOCK_RST_QUEUE);
	CHECK(stats().rst_queued == 0);
	host_unlisten(lfd, 88);
	teardown();
}

/* Reset closes connections (and host clients mid-line) but not the
 * listener: the next driver gets new connections. */
static void test_reset(void)
{
	char buf[32];
	int lfd, hfd, c, mid;

	REQUIRE(setup() == 0);
	lfd = host_listen(90, 4);
	hfd = open_guest_conn(lfd, 4000, 90, GUEST_BUF);
	REQUIRE(hfd >= 0);
	c = host_connect("CONNECT 4001\n", 4001, LP0);
	REQUIRE(c >= 0);
	mid = host_client();
	REQUIRE(mid >= 0);
	host_send(mid, "CONN", 4);
	pump();
	CHECK(stats().conns == 3);
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(stats().conns == 0);
	CHECK(host_eof(hfd));
	CHECK(host_eof(c));
	CHECK(host_eof(mid));
	close(hfd);
	close(c);
	close(mid);
	driver_up(QSZ);
	c = host_connect("CONNECT 4001\n", 4001, LP0 + 1);
	REQUIRE(c >= 0);
	tx_op(VSOCK_OP_RESPONSE, 4001, LP0 + 1, 0, GUEST_BUF, 0);
	CHECK(host_recv(c, buf, sizeof(buf)) == 14);
	CHECK(memcmp(buf, "OK 1073741825\n", 14) == 0);
	close(c);
	pump();
	host_unlisten(lfd, 90);
	teardown();
}

/* An rx buffer too small for a header is handed back unused; one with
 * room for part of the payload gets that part. */
static void test_small_rx_buffers(void)
{
	int lfd, hfd;

	REQUIRE(setup() == 0);
	lfd = host_listen(91, 4);
	hfd = open_guest_conn(lfd, 4100, 91, GUEST_BUF);
	REQUIRE(hfd >= 0);
	rx_repost = false;
	while (rx_pending() < QSZ) {
		host_send(hfd, "z", 1);
		pump();
	}
	while (rx_pop(&pk))
		;
	rx_post(20, 43);		/* one byte short of a header */
	rx_post(21, 44);		/* a header, no room for payload */
	rx_post(22, 44 + 3);
	host_send(hfd, "abcdef", 6);
	kick(&rxq);
	/* Data needs payload room: 20 and 21 come back unused (in order,
	 * IN_ORDER), 22 takes what fits. */
	REQUIRE(rx_pop(&pk));
	CHECK(pk.id == 20 && pk.used_len == 0);
	REQUIRE(rx_pop(&pk));
	CHECK(pk.id == 21 && pk.used_len == 0);
	REQUIRE(rx_pop(&pk));
	CHECK(pk.id == 22);
	CHECK_PKT(&pk, VSOCK_OP_RW, 91, 4100);
	CHECK(pk.h.len == 3 && memcmp(pk.data, "abc", 3) == 0);
	CHECK(!rx_pop(&pk));
	/* A header-only buffer does carry a control packet. */
	tx_op(VSOCK_OP_CREDIT_REQUEST, 4100, 91, 0, GUEST_BUF, 0);
	CHECK(!rx_pop(&pk));
	rx_post(23, 44);
	kick(&rxq);
	REQUIRE(rx_pop(&pk));
	CHECK(pk.id == 23);
	CHECK_PKT(&pk, VSOCK_OP_CREDIT_UPDATE, 91, 4100);
	CHECK(!rx_pop(&pk));
	rx_post(24, RX_DEFAULT);
	kick(&rxq);
	REQUIRE(rx_pop(&pk));
	CHECK(pk.id == 24 && pk.h.len == 3 && memcmp(pk.data, "def", 3) == 0);
	CHECK(stats().bad_packets == 1);	/* the 43-byte buffer */
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
	close(hfd);
	pump();
	host_unlisten(lfd, 91);
	teardown();
}

/* A chain the virtqueue refuses breaks the device (DEVICE_NEEDS_RESET,
 * config interrupt), not the process; a reset recovers. */
static void test_broken_tx_queue(void)
{
	REQUIRE(setup() == 0);
	atomic_store(&dev.isr, 0);
	gq_desc(&txq, 0, 0x7fff0000ull, 44, 0, 0);	/* outside RAM */
	gq_avail_add(&txq, 0);
	kick(&txq);
	CHECK(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CHECK(dev.vq[VSOCK_QUEUE_TX].broken);
	driver_up(QSZ);
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
	tx_op(VSOCK_OP_REQUEST, 4200, 4201, 0, GUEST_BUF, 0);
	REQUIRE(rx_pop(&pk));
	CHECK_PKT(&pk, VSOCK_OP_RST, 4201, 4200);
	teardown();
}

int main(void)
{
	struct kr_err e;

	/* Malformed packets are logged; keep the TAP output readable. */
	kr_log_init("test_vmm_vsock", KR_LOG_ERROR, -1);
	signal(SIGPIPE, SIG_IGN);
	ram = aligned_alloc(4096, RAM_SIZE);
	if (!ram)
		abort();
	gm_init(&gm);
	vqd_gm = &gm;
	vqd_dev = &dev;
	if (gm_add_region(&gm, 0, RAM_SIZE, ram, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		return 1;
	}

	KR_TEST(test_hdr_codec);
	KR_TEST(test_tx_parse);
	KR_TEST(test_tx_parse_shapes);
	KR_TEST(test_credit_math);
	KR_TEST(test_connect_line);
	KR_TEST(test_create_refused);
	KR_TEST(test_registers_and_config);
	KR_TEST(test_activate_needs_queues);
	KR_TEST(test_guest_connect);
	KR_TEST(test_guest_connect_refused);
	KR_TEST(test_host_connect);
	KR_TEST(test_host_connect_refused_by_guest);
	KR_TEST(test_connect_line_hostile);
	KR_TEST(test_h2g_credit);
	KR_TEST(test_g2h_credit_update);
	KR_TEST(test_g2h_credit_violation);
	KR_TEST(test_g2h_slow_host);
	KR_TEST(test_h2g_max_packet);
	KR_TEST(test_rx_starvation);
	KR_TEST(test_control_order);
	KR_TEST(test_shutdown_by_guest);
	KR_TEST(test_shutdown_by_host);
	KR_TEST(test_hostile_headers);
	KR_TEST(test_chain_shapes);
	KR_TEST(test_connection_limit);
	KR_TEST(test_reset);
	KR_TEST(test_small_rx_buffers);
	KR_TEST(test_broken_tx_queue);
	free(ram);
	return kr_test_done();
}
