/* Unit tests for hypervisor/kvm/virtio_net.c with a real tap device.
 *
 * Isolation: main() first moves the whole process into a private network
 * namespace (unshare(CLONE_NEWNET); needs root/CAP_SYS_ADMIN), creates a
 * persistent tap "krtap0" there and brings it up.  Nothing reaches the
 * host's network, and whatever happens to this process (even a crash), the
 * namespace dies with it and the kernel deletes the tap with it.  The clean
 * path deletes the tap itself (TUNSETPERSIST 0) and checks that it is gone.
 *
 * The other end of the tap: a single-queue tap has one fd (the device's), so
 * the test talks to the tap through the kernel instead, with an AF_PACKET
 * socket bound to it:
 *   - a frame the device writes into the tap is "received" by the kernel
 *     on krtap0, and the packet socket sees it (pkttype != OUTGOING);
 *   - a frame the socket sends out of krtap0 is "transmitted" by the kernel
 *     into the tap, where the device reads it.
 * Exact bytes both ways, no IP configuration, no routing.  Test frames use
 * the local experimental ethertype 0x88b5 and are recognised by it.  To keep
 * the kernel's own traffic (IPv6 DAD, MLD, router solicitations) off the
 * tap, IPv6 is disabled in the namespace and the MTU is below IPv6's 1280.
 *
 * The guest: the test plays the Linux driver through virtio_mmio_rw() with
 * rings and buffers it writes by hand into a malloc'd "guest RAM", and runs
 * the device's event loop itself (ev_run_once) in its one thread.
 *
 * If the namespace or the tap cannot be created (no root, no /dev/net/tun),
 * every test reports SKIP with the reason: skipped, never passed. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "../lib/kr_test.h"
#include "../lib/vq_driver.h"
#include "evloop.h"
#include "guest_mem.h"
#include "layout.h"
#include "virtio_mmio.h"
#include "virtio_net.h"
#include "../lib/fd_count.h"

#define TAP "krtap0"
#define TEST_ETHERTYPE 0x88b5
#define TAP_MTU 1000

#define RAM_SIZE (4u << 20)
#define BUF_BASE 0x100000ull
#define QSZ 16u
#define HDR VIRTIO_NET_HDR_LEN

#define F_MAC (1ull << VIRTIO_NET_F_MAC)
#define F_STATUS (1ull << VIRTIO_NET_F_STATUS)
#define F_V1 (1ull << VIRTIO_F_VERSION_1)

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static bool net_ready;
static char skip_why[200];
static int tap_ifindex = -1;
static int psock = -1;		/* AF_PACKET on krtap0: the host side */

static uint8_t *ram;
static struct guest_mem gm;
static struct evloop *ev;
static int irq_fd = -1;
static struct virtio_dev dev;
static bool dev_up;
static struct kr_err err;
static uint64_t buf_next;

/* ---- guest memory (tests/lib/vq_driver.h) ---- */

static uint64_t alloc_buf(uint32_t len)
{
	uint64_t gpa = buf_next;

	buf_next = (buf_next + len + 15) & ~15ull;
	if (buf_next > RAM_SIZE)
		abort();
	return gpa;
}

/* ---- the driver's view of a virtqueue ---- */

static struct gq rxq = { .q = VIRTIO_NET_RXQ, .size = QSZ, .desc = 0x10000,
			 .avail = 0x11000, .used = 0x12000 };
static struct gq txq = { .q = VIRTIO_NET_TXQ, .size = QSZ, .desc = 0x20000,
			 .avail = 0x21000, .used = 0x22000 };

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

/* Chain the segments in consecutive descriptors and make it available. */
static uint16_t gq_add(struct gq *q, const struct seg *s, unsigned n)
{
	uint16_t head = (uint16_t)q->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t d = (uint16_t)((head + i) % q->size);
		uint16_t flags = (s[i].writable ? VQ_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VQ_DESC_F_NEXT : 0);

		gq_desc(q, d, s[i].gpa, s[i].len, flags,
			(uint16_t)((d + 1) % q->size));
	}
	q->next_desc = (uint16_t)((head + n) % q->size);
	gq_avail_add(q, head);
	return head;
}

/* ---- the transport, as the driver uses it ---- */

static uint64_t edges(void)
{
	return irq_count(irq_fd);
}

/* Reset and bring the device up as Linux does, with fresh rings of qsize.
 * 0 on DRIVER_OK. */
static int driver_up(unsigned qsize)
{
	driver_hello();
	memset(ram + 0x10000, 0, 0x20000);
	rxq.size = txq.size = qsize;
	rxq.next_desc = rxq.avail_idx = rxq.used_seen = 0;
	txq.next_desc = txq.avail_idx = txq.used_seen = 0;
	buf_next = BUF_BASE;
	driver_features(F_MAC | F_STATUS | F_V1);
	if (!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -1;
	gq_enable(&rxq);
	gq_enable(&txq);
	wr(VIRTIO_MMIO_STATUS, 15);
	edges();
	return rd(VIRTIO_MMIO_STATUS) == 15 ? 0 : -1;
}

static void kick(struct gq *q)
{
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, q->q);
}

/* Run the I/O thread's loop until q has a used element (at most ~2 s). */
static bool wait_used(struct gq *q, uint32_t *id, uint32_t *len)
{
	for (int i = 0; i < 200; i++) {
		if (gq_used_pop(q, id, len))
			return true;
		ev_run_once(ev, 10);
	}
	return gq_used_pop(q, id, len);
}

/* ---- the host side of the tap ---- */

static void make_frame(uint8_t *f, size_t len, const uint8_t *dst,
		       const uint8_t *src, uint8_t seed)
{
	uint16_t type = htons(TEST_ETHERTYPE);

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	memcpy(f + 12, &type, 2);
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed + i);
}

static bool is_test_frame(const uint8_t *f, size_t len)
{
	uint16_t type;

	if (len < 14)
		return false;
	memcpy(&type, f + 12, 2);
	return ntohs(type) == TEST_ETHERTYPE;
}

/* A test frame that reached the kernel from the device, or -1 after
 * timeout_ms. */
static ssize_t host_recv(uint8_t *buf, size_t size, int timeout_ms)
{
	struct pollfd p = { .fd = psock, .events = POLLIN };

	while (poll(&p, 1, timeout_ms) == 1) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(psock, buf, size, MSG_TRUNC,
				     (struct sockaddr *)&from, &fl);

		if (n < 0)
			return -1;
		if (from.sll_pkttype != PACKET_OUTGOING &&
		    is_test_frame(buf, (size_t)n))
			return n;
	}
	return -1;
}

static void host_drain(void)
{
	uint8_t buf[2048];

	while (recv(psock, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

/* Send a frame out of krtap0: the device reads it from the tap. */
static int host_send(const uint8_t *f, size_t len)
{
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(TEST_ETHERTYPE),
		.sll_ifindex = tap_ifindex,
		.sll_halen = 6,
	};

	memcpy(to.sll_addr, f, 6);
	return sendto(psock, f, len, 0, (struct sockaddr *)&to, sizeof(to)) ==
	       (ssize_t)len ? 0 : -1;
}

static void stats(struct virtio_net_stats *st)
{
	virtio_net_get_stats(&dev, st);
}

#define NEED_NET()                                                           \
	do {                                                                 \
		if (!net_ready)                                              \
			SKIP("%s", skip_why);                                \
	} while (0)

/* ---- set-up and identity ---- */

static void test_create_errors(void)
{
	struct virtio_dev d;

	NEED_NET();
	CHECK(virtio_net_create(&d, ev, &gm, LAYOUT_VIRTIO_BASE + 0x1000, 6, -1,
				NULL, "krtap-missing", guest_mac, &err) == -1);
	CHECK(err.code == KR_NOT_FOUND);
	CHECK_CONTAINS(err.msg, "tap krtap-missing: no such device");
	/* Refused before TUNSETIFF: no tap was created on the way. */
	CHECK(if_nametoindex("krtap-missing") == 0);
	CHECK(virtio_net_create(&d, ev, &gm, LAYOUT_VIRTIO_BASE + 0x1000, 6, -1,
				NULL, "a-name-far-too-long", guest_mac, &err) == -1);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	/* Exists, but no tap: the kernel refuses. */
	CHECK(virtio_net_create(&d, ev, &gm, LAYOUT_VIRTIO_BASE + 0x1000, 6, -1,
				NULL, "lo", guest_mac, &err) == -1);
	CHECK_CONTAINS(err.msg, "tap lo: TUNSETIFF");
	/* The tap is ours already: a second device cannot take it. */
	CHECK(virtio_net_create(&d, ev, &gm, LAYOUT_VIRTIO_BASE + 0x1000, 6, -1,
				NULL, TAP, guest_mac, &err) == -1);
	CHECK_CONTAINS(err.msg, "tap " TAP ": TUNSETIFF");
	CHECK(virtio_net_create(&d, NULL, &gm, LAYOUT_VIRTIO_BASE + 0x1000, 6, -1,
				NULL, TAP, guest_mac, &err) == -1);
	CHECK_CONTAINS(err.msg, "event loop");
}

static void test_identity_and_config(void)
{
	uint8_t b = 0;
	uint16_t status = 0;

	NEED_NET();
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(rd(VIRTIO_MMIO_MAGIC_VALUE) == VIRTIO_MMIO_MAGIC_VIRT);
	CHECK(rd(VIRTIO_MMIO_VERSION) == 2);
	CHECK(rd(VIRTIO_MMIO_DEVICE_ID) == 1);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == (uint32_t)(F_MAC | F_STATUS));
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == 1);	/* VERSION_1 only */
	for (unsigned q = 0; q < 2; q++) {
		wr(VIRTIO_MMIO_QUEUE_SEL, q);
		CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == VIRTIO_NET_QUEUE_SIZE);
	}
	wr(VIRTIO_MMIO_QUEUE_SEL, 2);			/* no control queue */
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);
	/* Linux reads the MAC byte by byte, status as a le16. */
	for (unsigned i = 0; i < 6; i++) {
		virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG + i, &b, 1, false);
		CHECK(b == guest_mac[i]);
	}
	virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG + 6, (uint8_t *)&status, 2, false);
	CHECK(le16toh(status) == VIRTIO_NET_S_LINK_UP);
	/* The MAC is read-only. */
	b = 0xee;
	virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG, &b, 1, true);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG, &b, 1, false);
	CHECK(b == guest_mac[0]);
	/* Offloads we did not offer are refused. */
	wr(VIRTIO_MMIO_STATUS, 3);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(F_MAC | 1u /* CSUM */));
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, 11);
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK));
	CHECK(driver_up(QSZ) == 0);
}

/* ---- transmit ---- */

static void test_tx_frame(void)
{
	uint8_t frame[200], got[2048];
	uint64_t h, f;
	uint32_t id, len;
	uint16_t head;
	struct virtio_net_stats st0, st;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	host_drain();
	stats(&st0);
	/* Linux's shape: the header and the frame in one descriptor (here:
	 * two, header first). */
	make_frame(frame, sizeof(frame), bcast, guest_mac, 1);
	h = alloc_buf(HDR);
	f = alloc_buf(sizeof(frame));
	memset(host(h), 0, HDR);
	memcpy(host(f), frame, sizeof(frame));
	head = gq_add(&txq, (struct seg[]){ { h, HDR, false },
					    { f, sizeof(frame), false } }, 2);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	REQUIRE(gq_used_pop(&txq, &id, &len));
	CHECK(id == head);
	CHECK(len == 0);
	CHECK(edges() == 1);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	CHECK(host_recv(got, sizeof(got), 2000) == (ssize_t)sizeof(frame));
	CHECK(memcmp(got, frame, sizeof(frame)) == 0);
	stats(&st);
	CHECK(st.tx_frames == st0.tx_frames + 1);
	CHECK(st.tx_bytes == st0.tx_bytes + sizeof(frame));
	CHECK(st.tx_dropped == st0.tx_dropped);
}

/* Any descriptor split, and a header full of offload requests we never
 * offered: the frame still goes out, with a neutral header. */
static void test_tx_any_shape(void)
{
	uint8_t stream[HDR + 300], got[2048];
	uint64_t a, b, c;
	uint32_t id, len;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	host_drain();
	memset(stream, 0, HDR);
	stream[0] = 1;			/* NEEDS_CSUM */
	stream[1] = 1;			/* GSO TCPV4 */
	stream[4] = 0x40;		/* gso_size 64 */
	stream[6] = 0xff;		/* csum_start far beyond the frame */
	stream[7] = 0xff;
	make_frame(stream + HDR, 300, bcast, guest_mac, 2);
	a = alloc_buf(5);
	b = alloc_buf(20);
	c = alloc_buf(sizeof(stream) - 25);
	memcpy(host(a), stream, 5);
	memcpy(host(b), stream + 5, 20);
	memcpy(host(c), stream + 25, sizeof(stream) - 25);
	gq_add(&txq, (struct seg[]){ { a, 5, false }, { b, 20, false },
				     { c, sizeof(stream) - 25, false } }, 3);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	REQUIRE(gq_used_pop(&txq, &id, &len));
	CHECK(host_recv(got, sizeof(got), 2000) == 300);
	CHECK(memcmp(got, stream + HDR, 300) == 0);
}

static void test_tx_short_chain(void)
{
	uint8_t frame[100], got[2048];
	uint64_t s, h;
	uint32_t id, len;
	uint16_t head;
	struct virtio_net_stats st0, st;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	host_drain();
	stats(&st0);
	/* 8 bytes: not even a header.  Then a header and 13 bytes: no
	 * Ethernet header. */
	s = alloc_buf(HDR + 13);
	make_frame(frame, sizeof(frame), bcast, guest_mac, 3);
	memset(host(s), 0, HDR);
	memcpy(host(s) + HDR, frame, 13);
	head = gq_add(&txq, (struct seg[]){ { s, 8, false } }, 1);
	gq_add(&txq, (struct seg[]){ { s, HDR + 13, false } }, 1);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	REQUIRE(gq_used_pop(&txq, &id, &len));
	CHECK(id == head);
	CHECK(len == 0);
	REQUIRE(gq_used_pop(&txq, &id, &len));
	stats(&st);
	CHECK(st.tx_dropped == st0.tx_dropped + 2);
	CHECK(st.tx_frames == st0.tx_frames);
	CHECK(host_recv(got, sizeof(got), 200) == -1);
	/* Only those chains were dropped: the queue goes on. */
	h = alloc_buf(HDR + sizeof(frame));
	memset(host(h), 0, HDR);
	memcpy(host(h) + HDR, frame, sizeof(frame));
	gq_add(&txq, (struct seg[]){ { h, HDR + sizeof(frame), false } }, 1);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	REQUIRE(gq_used_pop(&txq, &id, &len));
	CHECK(host_recv(got, sizeof(got), 2000) == (ssize_t)sizeof(frame));
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
}

static void test_tx_oversize(void)
{
	const uint32_t rest = VIRTIO_NET_MAX_BUF + 1 - (HDR + 1000);
	uint8_t got[2048];
	uint64_t a, b;
	uint32_t id, len;
	struct virtio_net_stats st0, st;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	host_drain();
	stats(&st0);
	/* 65551 bytes in two descriptors, a valid-looking frame at the
	 * start: one byte over the bound. */
	a = alloc_buf(HDR + 1000);
	b = alloc_buf(rest);
	memset(host(a), 0, HDR);
	make_frame(host(a) + HDR, 1000, bcast, guest_mac, 4);
	memset(host(b), 0x11, rest);
	gq_add(&txq, (struct seg[]){ { a, HDR + 1000, false },
				     { b, rest, false } }, 2);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	REQUIRE(gq_used_pop(&txq, &id, &len));
	CHECK(len == 0);
	stats(&st);
	CHECK(st.tx_dropped == st0.tx_dropped + 1);
	CHECK(st.tx_frames == st0.tx_frames);
	CHECK(host_recv(got, sizeof(got), 200) == -1);
	/* The same frame, cut to the 1000 bytes: goes through. */
	gq_add(&txq, (struct seg[]){ { a, HDR + 1000, false } }, 1);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	REQUIRE(gq_used_pop(&txq, &id, &len));
	CHECK(host_recv(got, sizeof(got), 2000) == 1000);
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
}

/* A full 256-entry ring in one kick: the device stops after its budget
 * and kicks itself to come back, rather than hog the I/O thread. */
static void test_tx_budget(void)
{
	uint64_t s;
	uint32_t id, len;
	unsigned used = 0;
	struct virtio_net_stats st0, st;

	NEED_NET();
	REQUIRE(driver_up(VIRTIO_NET_QUEUE_SIZE) == 0);
	stats(&st0);
	s = alloc_buf(8);
	for (unsigned i = 0; i < VIRTIO_NET_QUEUE_SIZE; i++)
		gq_add(&txq, (struct seg[]){ { s, 8, false } }, 1);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	while (gq_used_pop(&txq, &id, &len))
		used++;
	CHECK(used == VIRTIO_NET_QUEUE_SIZE);
	stats(&st);
	CHECK(st.tx_dropped == st0.tx_dropped + VIRTIO_NET_QUEUE_SIZE);
	CHECK(ev_run_once(ev, 0) == 1);		/* the self-kick */
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(driver_up(QSZ) == 0);
}

/* ---- receive ---- */

static void test_rx_frame(void)
{
	uint8_t frame[300];
	uint8_t zero_hdr[HDR] = { 0 };
	uint64_t b;
	uint32_t id, len;
	uint16_t head;
	struct virtio_net_stats st0, st;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	stats(&st0);
	b = alloc_buf(1526);
	memset(host(b), 0xcc, 1526);		/* stale bytes must not leak */
	head = gq_add(&rxq, (struct seg[]){ { b, 1526, true } }, 1);
	gq_add(&rxq, (struct seg[]){ { alloc_buf(1526), 1526, true } }, 1);
	kick(&rxq);
	CHECK(ev_run_once(ev, 1000) == 1);
	make_frame(frame, sizeof(frame), guest_mac, bcast, 5);
	REQUIRE(host_send(frame, sizeof(frame)) == 0);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(id == head);
	CHECK(len == HDR + sizeof(frame));
	/* virtio_net_hdr_v1: all zero but num_buffers = 1. */
	zero_hdr[10] = 1;
	CHECK(memcmp(host(b), zero_hdr, HDR) == 0);
	CHECK(memcmp(host(b) + HDR, frame, sizeof(frame)) == 0);
	CHECK(host(b)[HDR + sizeof(frame)] == 0xcc);
	CHECK(edges() >= 1);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	stats(&st);
	CHECK(st.rx_frames == st0.rx_frames + 1);
	CHECK(st.rx_bytes == st0.rx_bytes + sizeof(frame));
	CHECK(st.rx_dropped == st0.rx_dropped);
}

/* The writable part as one stream, whatever its split; a readable
 * descriptor in front is skipped. */
static void test_rx_any_shape(void)
{
	uint8_t frame[500], stream[HDR + 500];
	uint64_t r, a, b, c;
	uint32_t id, len;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	r = alloc_buf(16);
	a = alloc_buf(7);
	b = alloc_buf(30);
	c = alloc_buf(2000);
	memset(host(r), 0x77, 16);
	gq_add(&rxq, (struct seg[]){ { r, 16, false }, { a, 7, true },
				     { b, 30, true }, { c, 2000, true } }, 4);
	kick(&rxq);
	ev_run_once(ev, 1000);
	make_frame(frame, sizeof(frame), guest_mac, bcast, 6);
	REQUIRE(host_send(frame, sizeof(frame)) == 0);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(len == HDR + sizeof(frame));
	memcpy(stream, host(a), 7);
	memcpy(stream + 7, host(b), 30);
	memcpy(stream + 37, host(c), sizeof(stream) - 37);
	CHECK(stream[10] == 1 && stream[11] == 0);
	CHECK(memcmp(stream + HDR, frame, sizeof(frame)) == 0);
	CHECK(host(r)[0] == 0x77);		/* device-readable: untouched */
}

/* No rx buffers: the device stops polling the tap (no busy loop), the
 * frame waits in the tap, and the guest's next rx kick brings it in. */
static void test_rx_waits_for_buffers(void)
{
	uint8_t frame[120];
	uint64_t b;
	uint32_t id, len;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	make_frame(frame, sizeof(frame), guest_mac, bcast, 7);
	REQUIRE(host_send(frame, sizeof(frame)) == 0);
	CHECK(ev_run_once(ev, 1000) == 1);	/* tap readable: no buffer */
	CHECK(ev_run_once(ev, 100) == 0);	/* no longer watched */
	CHECK(!gq_used_pop(&rxq, &id, &len));
	b = alloc_buf(1526);
	gq_add(&rxq, (struct seg[]){ { b, 1526, true } }, 1);
	kick(&rxq);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(len == HDR + sizeof(frame));
	CHECK(memcmp(host(b) + HDR, frame, sizeof(frame)) == 0);
}

/* A frame larger than the chain: dropped, counted, and the chain comes
 * back empty; the next chain takes the next frame. */
static void test_rx_buffer_too_small(void)
{
	uint8_t frame[400], frame2[60];
	uint64_t small, ro, big;
	uint32_t id, len;
	uint16_t h_small, h_ro, h_big;
	struct virtio_net_stats st0, st;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	stats(&st0);
	small = alloc_buf(HDR + 100);
	ro = alloc_buf(2000);
	big = alloc_buf(1526);
	h_small = gq_add(&rxq, (struct seg[]){ { small, HDR + 100, true } }, 1);
	/* Device-readable only: nothing fits. */
	h_ro = gq_add(&rxq, (struct seg[]){ { ro, 2000, false } }, 1);
	h_big = gq_add(&rxq, (struct seg[]){ { big, 1526, true } }, 1);
	kick(&rxq);
	ev_run_once(ev, 1000);
	make_frame(frame, sizeof(frame), guest_mac, bcast, 8);
	REQUIRE(host_send(frame, sizeof(frame)) == 0);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(id == h_small);
	CHECK(len == 0);
	REQUIRE(host_send(frame, sizeof(frame)) == 0);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(id == h_ro);
	CHECK(len == 0);
	make_frame(frame2, sizeof(frame2), guest_mac, bcast, 9);
	REQUIRE(host_send(frame2, sizeof(frame2)) == 0);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(id == h_big);
	CHECK(len == HDR + sizeof(frame2));
	CHECK(memcmp(host(big) + HDR, frame2, sizeof(frame2)) == 0);
	stats(&st);
	CHECK(st.rx_dropped == st0.rx_dropped + 2);
	CHECK(st.rx_frames == st0.rx_frames + 1);
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
}

/* A reset while the device polls the tap for posted buffers: the tap is no
 * longer polled, the old buffers are forgotten, and the next driver's
 * buffer gets the frame. */
static void test_rx_reset_while_polling(void)
{
	uint8_t frame[80];
	uint64_t b;
	uint32_t id, len;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	gq_add(&rxq, (struct seg[]){ { alloc_buf(1526), 1526, true } }, 1);
	kick(&rxq);
	CHECK(ev_run_once(ev, 1000) == 1);	/* kick: tap watched */
	wr(VIRTIO_MMIO_STATUS, 0);
	make_frame(frame, sizeof(frame), guest_mac, bcast, 10);
	REQUIRE(host_send(frame, sizeof(frame)) == 0);
	CHECK(ev_run_once(ev, 100) == 0);	/* reset: not polled */
	REQUIRE(driver_up(QSZ) == 0);
	b = alloc_buf(1526);
	gq_add(&rxq, (struct seg[]){ { b, 1526, true } }, 1);
	kick(&rxq);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(id == 0);
	CHECK(len == HDR + sizeof(frame));
	CHECK(memcmp(host(b) + HDR, frame, sizeof(frame)) == 0);
}

/* After a burst the device holds the next rx chain, waiting for a frame.
 * The driver then stops the rx queue alone (QueueReady = 0) and sets it up
 * afresh while DRIVER_OK stays: the held chain belongs to the old ring and
 * must be neither filled nor pushed into the new one. */
static void test_rx_queue_restart(void)
{
	uint8_t frame[90], frame2[110];
	uint64_t b0, b1, nb;
	uint32_t id, len;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	b0 = alloc_buf(1526);
	b1 = alloc_buf(1526);
	gq_add(&rxq, (struct seg[]){ { b0, 1526, true } }, 1);
	gq_add(&rxq, (struct seg[]){ { b1, 1526, true } }, 1);
	kick(&rxq);
	ev_run_once(ev, 1000);
	make_frame(frame, sizeof(frame), guest_mac, bcast, 12);
	REQUIRE(host_send(frame, sizeof(frame)) == 0);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(id == 0);
	memset(host(b1), 0xcc, 1526);
	wr(VIRTIO_MMIO_QUEUE_SEL, VIRTIO_NET_RXQ);
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 0);
	memset(host(rxq.desc), 0, 0x3000);
	rxq.next_desc = rxq.avail_idx = rxq.used_seen = 0;
	gq_enable(&rxq);
	nb = alloc_buf(1526);
	gq_add(&rxq, (struct seg[]){ { nb, 1526, true } }, 1);
	kick(&rxq);
	make_frame(frame2, sizeof(frame2), guest_mac, bcast, 13);
	REQUIRE(host_send(frame2, sizeof(frame2)) == 0);
	REQUIRE(wait_used(&rxq, &id, &len));
	CHECK(id == 0);
	CHECK(len == HDR + sizeof(frame2));
	CHECK(memcmp(host(nb) + HDR, frame2, sizeof(frame2)) == 0);
	CHECK(host(b1)[0] == 0xcc && host(b1)[HDR] == 0xcc);
	CHECK(!(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET));
}

/* A malformed chain breaks the queue: DEVICE_NEEDS_RESET and a config
 * interrupt; a reset brings the device back. */
static void test_broken_tx_queue(void)
{
	uint8_t frame[64], got[2048];
	uint64_t h;
	uint32_t id, len;

	NEED_NET();
	REQUIRE(driver_up(QSZ) == 0);
	host_drain();
	h = alloc_buf(HDR + sizeof(frame));
	put64(txq.desc, h);
	put32(txq.desc + 8, 32);
	put16(txq.desc + 12, VQ_DESC_F_NEXT);
	put16(txq.desc + 14, 99);		/* beyond the 16-entry table */
	put16(txq.avail + 4, 0);
	put16(txq.avail + 2, 1);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	CHECK(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CHECK(edges() >= 1);
	CHECK(!gq_used_pop(&txq, &id, &len));
	REQUIRE(driver_up(QSZ) == 0);
	make_frame(frame, sizeof(frame), bcast, guest_mac, 11);
	memset(host(h), 0, HDR);
	memcpy(host(h) + HDR, frame, sizeof(frame));
	gq_add(&txq, (struct seg[]){ { h, HDR + sizeof(frame), false } }, 1);
	kick(&txq);
	CHECK(ev_run_once(ev, 1000) == 1);
	CHECK(gq_used_pop(&txq, &id, &len));
	CHECK(host_recv(got, sizeof(got), 2000) == (ssize_t)sizeof(frame));
}

/* ---- the namespace and the tap ---- */

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static int tun_attach(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Create krtap0 as the runtime would: persistent, then no fd attached. */
static int tap_create(void)
{
	int fd = tun_attach(TAP);

	if (fd < 0)
		return -1;
	if (ioctl(fd, TUNSETPERSIST, 1) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int tap_delete(void)
{
	int fd = tun_attach(TAP);
	int rc;

	if (fd < 0)
		return -1;
	rc = ioctl(fd, TUNSETPERSIST, 0);
	close(fd);
	return rc;
}

static int link_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = -1;

	if (s < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP);
	ifr.ifr_mtu = TAP_MTU;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		goto out;
	ifr.ifr_flags |= IFF_UP;
	rc = ioctl(s, SIOCSIFFLAGS, &ifr);
out:
	close(s);
	return rc;
}

static int packet_socket(void)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = tap_ifindex,
	};

	psock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (psock < 0)
		return -1;
	return bind(psock, (struct sockaddr *)&sll, sizeof(sll));
}

#define FAIL_SETUP(...)                                                      \
	do {                                                                 \
		snprintf(skip_why, sizeof(skip_why), __VA_ARGS__);           \
		return -1;                                                   \
	} while (0)

/* The private namespace, krtap0 in it, the packet socket. */
static int net_setup(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		FAIL_SETUP("unshare(CLONE_NEWNET): %s (needs root)", strerror(errno));
	/* Best effort (the MTU below keeps IPv6 off anyway). */
	write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	if (tap_create() < 0)
		FAIL_SETUP("cannot create a tap (/dev/net/tun): %s", strerror(errno));
	tap_ifindex = (int)if_nametoindex(TAP);
	if (tap_ifindex <= 0 || link_up() < 0)
		FAIL_SETUP("cannot bring %s up: %s", TAP, strerror(errno));
	if (packet_socket() < 0)
		FAIL_SETUP("AF_PACKET socket on %s: %s", TAP, strerror(errno));
	return 0;
}


/* Destroy leaves the runtime's tap alone (and closes what create opened);
 * then the test deletes the tap and checks it is gone. */
static void test_destroy_and_cleanup(void)
{
	NEED_NET();
	virtio_net_destroy(&dev);
	dev_up = false;
	CHECK(if_nametoindex(TAP) == (unsigned)tap_ifindex);
	/* Free again: a new device can attach. */
	CHECK(virtio_net_create(&dev, ev, &gm, LAYOUT_VIRTIO_BASE, LAYOUT_VIRTIO_GSI,
				irq_fd, NULL, TAP, guest_mac, &err) == 0);
	virtio_net_destroy(&dev);
	close(psock);
	psock = -1;
	CHECK(tap_delete() == 0);
	CHECK(if_nametoindex(TAP) == 0);
}

int main(void)
{
	struct kr_err e;
	int fds0;

	kr_log_set_level(KR_LOG_ERROR);
	ram = aligned_alloc(4096, RAM_SIZE);
	if (!ram)
		abort();
	memset(ram, 0, RAM_SIZE);
	gm_init(&gm);
	vqd_gm = &gm;
	vqd_dev = &dev;
	ev = ev_new(&e);
	irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!ev || irq_fd < 0 || gm_add_region(&gm, 0, RAM_SIZE, ram, &e) < 0) {
		printf("Bail out! set-up: %s\n", e.msg);
		return 1;
	}
	fds0 = count_fds();
	if (net_setup() == 0) {
		if (virtio_net_create(&dev, ev, &gm, LAYOUT_VIRTIO_BASE,
				      LAYOUT_VIRTIO_GSI, irq_fd, NULL, TAP,
				      guest_mac, &e) == 0) {
			net_ready = dev_up = true;
		} else {
			snprintf(skip_why, sizeof(skip_why), "virtio_net_create: %.160s",
				 e.msg);
			printf("# %s\n", skip_why);
			kr_t_fail++;	/* the tap exists: this is a failure */
		}
	} else {
		printf("# SKIP all: %s\n", skip_why);
	}

	KR_TEST(test_create_errors);
	KR_TEST(test_identity_and_config);
	KR_TEST(test_tx_frame);
	KR_TEST(test_tx_any_shape);
	KR_TEST(test_tx_short_chain);
	KR_TEST(test_tx_oversize);
	KR_TEST(test_tx_budget);
	KR_TEST(test_rx_frame);
	KR_TEST(test_rx_any_shape);
	KR_TEST(test_rx_waits_for_buffers);
	KR_TEST(test_rx_buffer_too_small);
	KR_TEST(test_rx_reset_while_polling);
	KR_TEST(test_rx_queue_restart);
	KR_TEST(test_broken_tx_queue);
	KR_TEST(test_destroy_and_cleanup);

	if (dev_up)
		virtio_net_destroy(&dev);
	if (psock >= 0)
		close(psock);
	if (net_ready && if_nametoindex(TAP) != 0)
		tap_delete();
	if (fds0 >= 0 && count_fds() != fds0) {
		printf("# fd leak: %d open at start, %d at the end\n", fds0,
		       count_fds());
		kr_t_fail++;
	}
	close(irq_fd);
	ev_free(ev);
	free(ram);
	return kr_test_done();
}
