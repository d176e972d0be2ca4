/* Host-side check of the test guest's vsock driver (../vsock.c), which QEMU
 * cannot exercise here (no vhost-vsock).  The driver file is compiled
 * unchanged for the host; this file stands in for the rest of the guest
 * (report/fail, arena, time) and for the virtio transport, with a scripted
 * device + host peer behind it:
 *
 *   connect  the guest connects to port 52; the peer answers RESPONSE with
 *            a tiny buf_alloc (8) so the guest must honour credit and send
 *            CREDIT_REQUEST; the peer sends "hello from the host\n" in two
 *            RW packets; SHUTDOWN from the guest gets RST.
 *   refused  the peer answers the REQUEST with RST: the guest must FAIL.
 *   listen   a stray RW for no connection (the guest must answer RST),
 *            then REQUEST to port 1024, "ping\n", then 100 KiB within the
 *            guest's credit; everything must come back uppercased; then
 *            SHUTDOWN(3) from the peer, which the guest answers with RST.
 *
 * The device writes rx packets into the guest's chains as a byte stream
 * and reads tx chains as one, so the 2-descriptor chains are covered.
 *
 * Build and run (tests/integration/test_testguest_qemu.sh does this):
 *   gcc -std=gnu11 -Wall -Wextra -Werror -Itests/guest -Ihypervisor/kvm \
 *       tests/guest/hostsim/vsock_sim.c tests/guest/vsock.c -o vsock_sim
 *   ./vsock_sim connect|refused|listen      (exit 0: as expected)
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../virtio.h"

/* ---- the rest of the guest ---------------------------------------------------- */
struct guest_params params = { .timeout_ms = 2000 };
static unsigned nfail;
static char first_fail[256];

void gprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

void report(const char *fmt, ...)
{
	va_list ap;

	fputs("TESTGUEST: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("TESTGUEST: check failed: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!nfail++) {
		va_start(ap, fmt);
		vsnprintf(first_fail, sizeof(first_fail), fmt, ap);
		va_end(ap);
	}
}

bool failed(void) { return nfail; }
unsigned fail_count(void) { return nfail; }
void serial_putc(char c) { putchar(c); }
void serial_write(const char *s, size_t n) { fwrite(s, 1, n, stdout); }

void print_quoted(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			fputs("\\n", stdout);
		else
			putchar(s[i]);
	}
	putchar('"');
}

void finish(void)
{
	printf("SIM: guest called finish()\n");
	exit(2);
}

void *arena_alloc(size_t size, size_t align)
{
	void *p = aligned_alloc(align < 16 ? 16 : align, (size + align - 1) / align * align);

	if (!p)
		abort();
	return memset(p, 0, size);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
uint64_t deadline_after_ms(uint64_t ms) { return now_ms() + ms; }
bool deadline_passed(uint64_t d) { return now_ms() > d; }

/* ---- the simulated transport ---------------------------------------------------- */
struct chain {
	struct vbuf b[4];
	unsigned n;
	void *token;
	uint32_t used_len;
};

#define SIMQ 64
static struct simq {
	struct chain avail[SIMQ], used[SIMQ];
	unsigned navail, nused;
} simq[3];

static const char *scenario;
static bool driver_ok;

bool virtio_begin(struct virtio_dev *d, uint64_t wanted)
{
	d->features = (1ull << VIRTIO_F_VERSION_1) | (wanted & 1);
	return true;
}

bool virtq_setup(struct virtio_dev *d, unsigned index)
{
	d->vq[index] = (struct virtq){ .dev = d, .index = (uint16_t)index, .num = 16 };
	return true;
}

void virtio_reset(struct virtio_dev *d)
{
	(void)d;
	driver_ok = false;
}

uint8_t vcfg8(struct virtio_dev *d, uint32_t off) { (void)d; (void)off; return 0; }
uint16_t vcfg16(struct virtio_dev *d, uint32_t off) { (void)d; (void)off; return 0; }
uint32_t vcfg32(struct virtio_dev *d, uint32_t off) { (void)d; (void)off; return 0; }
uint64_t vcfg64(struct virtio_dev *d, uint32_t off)
{
	(void)d;
	return off == 0 ? 3 : 0;	/* guest_cid */
}

uint32_t virtio_isr_check(struct virtio_dev *d, const char *what)
{
	(void)d;
	report("sim: %s: InterruptStatus=0x1 (used-buffer bit set)", what);
	return 1;
}

bool virtq_add(struct virtq *q, const struct vbuf *b, unsigned n, void *token)
{
	struct simq *s = &simq[q->index];

	if (n > 4 || s->navail == SIMQ)
		return false;
	struct chain *c = &s->avail[s->navail++];
	memcpy(c->b, b, n * sizeof(*b));
	c->n = n;
	c->token = token;
	/* Device-readable buffers before writable ones. */
	for (unsigned i = 1; i < n; i++)
		if (!b[i].write && b[i - 1].write) {
			printf("SIM: chain with a readable buffer after a writable one\n");
			exit(1);
		}
	return true;
}

/* ---- the device and the host peer ------------------------------------------------ */
struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

enum { REQUEST = 1, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST };

#define MAXPKT 256
static struct pkt {
	struct hdr h;
	uint8_t data[2048];
} pending[MAXPKT];
static unsigned npending;

static struct {
	uint32_t guest_port, host_port;
	uint32_t buf_alloc, fwd_cnt;		/* the peer's own */
	uint32_t guest_buf_alloc, guest_fwd_cnt;	/* last seen from the guest */
	uint32_t sent;				/* RW bytes sent to the guest */
	uint8_t got[256 * 1024];		/* RW bytes from the guest */
	uint32_t ngot;
	uint8_t to_send[128 * 1024];		/* listen: what the peer sends */
	uint32_t nto_send;
	bool shutdown_sent, rst_got, stray_rst_got, response_got, done;
	unsigned credit_requests, credit_updates, split_tx;
	uint32_t last_guest_fwd_cnt;
} peer;

static void fatal(const char *msg)
{
	printf("SIM: FAIL %s\n", msg);
	exit(1);
}

static void to_guest(uint16_t op, uint32_t src_port, uint32_t dst_port, uint32_t flags,
		     const void *data, uint32_t len)
{
	if (npending == MAXPKT)
		fatal("pending queue full");
	struct pkt *p = &pending[npending++];
	p->h = (struct hdr){ .src_cid = 2, .dst_cid = 3, .src_port = src_port,
			     .dst_port = dst_port, .len = len, .type = 1, .op = op,
			     .flags = flags, .buf_alloc = peer.buf_alloc,
			     .fwd_cnt = peer.fwd_cnt };
	if (len)
		memcpy(p->data, data, len);
}

static void conn_to_guest(uint16_t op, uint32_t flags, const void *data, uint32_t len)
{
	to_guest(op, peer.host_port, peer.guest_port, flags, data, len);
}

/* listen: send what fits in the guest's advertised credit. */
static void peer_pump(void)
{
	while (peer.sent < peer.nto_send) {
		uint32_t credit = peer.guest_buf_alloc - (peer.sent - peer.guest_fwd_cnt);
		uint32_t k = peer.nto_send - peer.sent;
		if (k > 1500)
			k = 1500;
		if (k > credit || npending == MAXPKT)
			return;
		conn_to_guest(RW, 0, peer.to_send + peer.sent, k);
		peer.sent += k;
	}
}

/* One packet from the guest (the tx chain read as a byte stream). */
static void from_guest(const struct hdr *h, const uint8_t *data)
{
	if (h->src_cid != 3 || h->dst_cid != 2 || h->type != 1)
		fatal("tx header: bad cid or type");
	if (h->op == RST && h->dst_port == 7777) {	/* answer to the stray RW */
		peer.stray_rst_got = true;
		return;
	}
	if (!strcmp(scenario, "connect") || !strcmp(scenario, "refused")) {
		if (h->op == REQUEST) {
			if (h->dst_port != 52 || h->buf_alloc != 65536)
				fatal("REQUEST: wrong port or buf_alloc");
			peer.guest_port = h->src_port;
			peer.host_port = 52;
			if (!strcmp(scenario, "refused")) {
				conn_to_guest(RST, 0, NULL, 0);
				return;
			}
			peer.buf_alloc = 8;	/* force the guest to wait for credit */
			conn_to_guest(RESPONSE, 0, NULL, 0);
			return;
		}
	}
	if (h->src_port != peer.guest_port || h->dst_port != peer.host_port) {
		printf("SIM: packet op %u ports %u -> %u\n", h->op, h->src_port, h->dst_port);
		fatal("tx packet for an unknown connection");
	}
	if (h->buf_alloc != 65536)
		fatal("guest buf_alloc is not 65536");
	if ((int32_t)(h->fwd_cnt - peer.last_guest_fwd_cnt) < 0)
		fatal("guest fwd_cnt went backwards");
	peer.last_guest_fwd_cnt = h->fwd_cnt;
	peer.guest_buf_alloc = h->buf_alloc;
	peer.guest_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case RESPONSE:
		peer.response_got = true;
		conn_to_guest(RW, 0, "ping\n", 5);
		peer.sent += 5;
		break;
	case RW:
		if (peer.buf_alloc - (peer.ngot - peer.fwd_cnt) < h->len)
			fatal("guest exceeded the peer's credit");
		memcpy(peer.got + peer.ngot, data, h->len);
		peer.ngot += h->len;
		if (!strcmp(scenario, "connect") && peer.ngot == 21) {
			if (memcmp(peer.got, "hello from the guest\n", 21))
				fatal("wrong hello from the guest");
			peer.fwd_cnt = peer.ngot;	/* consumed */
			conn_to_guest(RW, 0, "hello fr", 8);
			conn_to_guest(RW, 0, "om the host\n", 12);
		}
		if (!strcmp(scenario, "listen")) {
			peer.fwd_cnt = peer.ngot;
			if (peer.ngot == peer.nto_send && !peer.shutdown_sent) {
				conn_to_guest(SHUTDOWN, 3, NULL, 0);
				peer.shutdown_sent = true;
			}
		}
		break;
	case CREDIT_REQUEST:
		peer.credit_requests++;
		peer.fwd_cnt = peer.ngot;	/* the host app read everything */
		conn_to_guest(CREDIT_UPDATE, 0, NULL, 0);
		break;
	case CREDIT_UPDATE:
		peer.credit_updates++;
		break;
	case SHUTDOWN:
		if (h->flags != 3)
			fatal("guest SHUTDOWN flags not 3");
		conn_to_guest(RST, 0, NULL, 0);
		peer.done = true;
		break;
	case RST:
		peer.rst_got = true;
		peer.done = true;
		break;
	default:
		fatal("unexpected op from the guest");
	}
}

static void gather(const struct chain *c, uint8_t *out, uint32_t *n)
{
	*n = 0;
	for (unsigned i = 0; i < c->n; i++) {
		memcpy(out + *n, c->b[i].addr, c->b[i].len);
		*n += c->b[i].len;
	}
}

void virtq_kick(struct virtq *q)
{
	struct simq *s = &simq[q->index];

	if (!driver_ok)
		fatal("kick before DRIVER_OK");
	if (q->index != 1)
		return;
	/* tx: consume every chain now. */
	for (unsigned i = 0; i < s->navail; i++) {
		static uint8_t buf[8192];
		uint32_t n;
		struct chain *c = &s->avail[i];
		for (unsigned k = 0; k < c->n; k++)
			if (c->b[k].write)
				fatal("writable buffer in a tx chain");
		gather(c, buf, &n);
		if (c->n > 1)
			peer.split_tx++;
		struct hdr h;
		if (n < sizeof(h))
			fatal("tx chain shorter than a header");
		memcpy(&h, buf, sizeof(h));
		if (n != sizeof(h) + h.len)
			fatal("tx chain length does not match hdr.len");
		from_guest(&h, buf + sizeof(h));
		c->used_len = 0;
		s->used[s->nused++] = *c;
	}
	s->navail = 0;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	(void)d;
	driver_ok = true;
	if (!strcmp(scenario, "listen")) {
		peer.guest_port = 1024;
		peer.host_port = 1u << 30;
		peer.buf_alloc = 65536;
		to_guest(RW, 7777, 1024, 0, "stray", 5);	/* no connection: RST */
		conn_to_guest(REQUEST, 0, NULL, 0);
		/* "ping\n" goes after the RESPONSE; then 100 KiB more. */
		memcpy(peer.to_send, "ping\n", 5);
		for (uint32_t i = 5; i < 5 + 100 * 1024; i++)
			peer.to_send[i] = (uint8_t)('a' + i % 26);
		peer.nto_send = 5 + 100 * 1024;
	}
}

/* rx: put the next pending packet into the next posted chain. */
static void deliver(void)
{
	struct simq *s = &simq[0];

	if (!strcmp(scenario, "listen") && peer.response_got)
		peer_pump();
	while (npending && s->navail) {
		struct pkt *p = &pending[0];
		struct chain *c = &s->avail[0];
		uint32_t cap = 0, len = sizeof(p->h) + p->h.len, off = 0;
		for (unsigned k = 0; k < c->n; k++) {
			if (!c->b[k].write)
				fatal("readable buffer in an rx chain");
			cap += c->b[k].len;
		}
		if (cap < len)
			fatal("rx chain too small for the packet");
		const uint8_t *src = (const uint8_t *)p;
		for (unsigned k = 0; k < c->n && off < len; k++) {
			uint32_t m = len - off < c->b[k].len ? len - off : c->b[k].len;
			memcpy(c->b[k].addr, src + off, m);
			off += m;
		}
		c->used_len = len;
		s->used[s->nused++] = *c;
		memmove(&s->avail[0], &s->avail[1], --s->navail * sizeof(*c));
		memmove(&pending[0], &pending[1], --npending * sizeof(*p));
	}
}

int virtq_get(struct virtq *q, void **token, uint32_t *len)
{
	struct simq *s = &simq[q->index];

	if (q->index == 0)
		deliver();
	if (!s->nused)
		return 0;
	*token = s->used[0].token;
	*len = s->used[0].used_len;
	memmove(&s->used[0], &s->used[1], --s->nused * sizeof(s->used[0]));
	return 1;
}

/* ---- the scenarios ------------------------------------------------------------- */
int main(int argc, char **argv)
{
	struct virtio_dev d = { .name = "vsock", .id = VIRTIO_ID_VSOCK };

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2)
		return 2;
	scenario = argv[1];
	if (!strcmp(scenario, "connect") || !strcmp(scenario, "refused"))
		params.vsock_port = 52;
	else if (!strcmp(scenario, "listen"))
		params.vsock_listen = 1024;
	else
		return 2;

	vsock_test(&d);

	bool ok;
	if (!strcmp(scenario, "refused")) {
		ok = nfail == 1 && strstr(first_fail, "refused");
	} else if (!strcmp(scenario, "connect")) {
		ok = !nfail && peer.done && peer.ngot == 21 && peer.credit_requests >= 1 &&
		     peer.split_tx >= 1;
	} else {
		ok = !nfail && peer.stray_rst_got && peer.rst_got &&
		     peer.ngot == peer.nto_send;
		for (uint32_t i = 0; ok && i < peer.ngot; i++)
			ok = peer.got[i] == (peer.to_send[i] >= 'a' && peer.to_send[i] <= 'z'
					     ? peer.to_send[i] - 'a' + 'A' : peer.to_send[i]);
	}
	printf("SIM: %s: guest failures %u (%s); peer got %u bytes, credit requests %u, "
	       "credit updates %u, split tx chains %u\n", scenario, nfail, first_fail,
	       peer.ngot, peer.credit_requests, peer.credit_updates, peer.split_tx);
	printf("SIM: %s\n", ok ? "PASS" : "FAIL");
	return ok ? 0 : 1;
}
