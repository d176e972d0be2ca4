/* libFuzzer target for the split virtqueue walker (hypervisor/kvm): the
 * input is a hostile guest.  Its first 8 bytes choose the queue (size,
 * features, ring misalignment, starting index, segment capacity, how many
 * chains to take, which to keep in flight, how far the guest moves
 * avail.idx while the device works); the rest is the start of 64 KiB of
 * guest RAM holding the rings at fixed addresses.  A second, empty region
 * sits above a hole.  The target pops, copies and pushes until the queue is
 * empty or broken.  Besides memory safety (ASan/UBSan; each region is its
 * own exact-size allocation) it checks that every segment lies inside guest
 * RAM, readable before writable, within the limits, that the used ring is
 * published, and that a broken queue stays broken.
 *
 *   clang -D_GNU_SOURCE -std=gnu11 -Iinclude -Ihypervisor/kvm -g -O1 \
 *     -fsanitize=fuzzer,address,undefined -o /tmp/fuzz_vq \
 *     tests/fuzz/fuzz_virtqueue.c hypervisor/kvm/guest_mem.c \
 *     hypervisor/kvm/virtqueue.c lib/error.c lib/log.c lib/util.c -pthread
 *   /tmp/fuzz_vq -max_total_time=60
 */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest_mem.h"
#include "virtqueue.h"

#define ASSERT(c)                         \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

#define RAM0_SIZE 0x10000u
#define RAM1_GPA 0x100000ull	/* after a hole */
#define RAM1_SIZE 0x1000u
/* The guest-written areas come first so that short inputs reach the chain
 * walker (avail.idx is input byte CTRL + 2); larger queues overlap each
 * other, which is allowed. */
#define AVAIL 0x000ull
#define DESC 0x040ull
#define USED 0x800ull
#define CTRL 8			/* control bytes before the RAM image */
#define MAX_SEGS 256

struct ctl {
	unsigned size;
	uint64_t features;
	unsigned misalign;	/* added to the three ring addresses */
	unsigned cap;		/* segment array entries */
	unsigned pops;
	unsigned hold;		/* 0 push all, 1 every other, 2+ none */
	unsigned bump;		/* the guest adds this to avail.idx per pop */
	uint16_t base;		/* starting avail/used index */
};

static void parse_ctl(const uint8_t *d, struct ctl *c)
{
	c->size = 1u << (d[0] & 15);
	c->features = 0;
	if (d[1] & 1)
		c->features |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (d[1] & 2)
		c->features |= 1ull << VIRTIO_F_EVENT_IDX;
	c->hold = (d[1] >> 2) & 3;
	/* Mostly aligned, so that most inputs get past setup. */
	c->misalign = (d[1] & 0x80) ? (d[1] >> 4) & 7 : 0;
	c->cap = 1 + d[2] % MAX_SEGS;
	c->pops = 1 + d[3] % 64;
	c->base = (uint16_t)(d[4] | d[5] << 8);
	c->bump = d[6] & 7;
}

/* The guest publishing more entries while the device works: what was
 * already in the ring (or what the device just wrote there) becomes
 * available, possibly more than the ring holds. */
static void guest_bump(const struct vq *vq, unsigned bump)
{
	uint16_t idx;

	memcpy(&idx, vq->avail + 2, 2);
	idx = htole16((uint16_t)(le16toh(idx) + bump));
	memcpy(vq->avail + 2, &idx, 2);
}

static bool inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *b = p;

	return b >= buf && n <= len && (size_t)(b - buf) <= len - n;
}

static void check_chain(const struct vq_chain *c, const struct vq *vq,
			const uint8_t *ram0, const uint8_t *ram1)
{
	uint64_t rd = 0, wr = 0;
	unsigned i;

	ASSERT(c->head < vq->size);
	ASSERT(c->nseg <= c->cap && c->nread <= c->nseg);
	for (i = 0; i < c->nseg; i++) {
		const struct vq_seg *s = &c->seg[i];

		ASSERT(s->len > 0);
		ASSERT(inside(s->ptr, s->len, ram0, RAM0_SIZE) ||
		       inside(s->ptr, s->len, ram1, RAM1_SIZE));
		ASSERT(s->writable == (i >= c->nread));
		*(s->writable ? &wr : &rd) += s->len;
	}
	ASSERT(rd == c->read_len && wr == c->write_len);
	ASSERT(rd + wr <= VQ_MAX_CHAIN_BYTES);
}

/* Use the chain as a device would: read the request, write a reply. */
static uint32_t serve(const struct vq_chain *c)
{
	static uint8_t tmp[4096];
	size_t want = c->read_len < sizeof(tmp) ? c->read_len : sizeof(tmp);
	size_t n;

	ASSERT(vq_chain_read(c, 0, tmp, sizeof(tmp)) == want);
	if (c->read_len > 3)
		ASSERT(vq_chain_read(c, c->read_len - 3, tmp, 8) == 3);
	want = c->write_len < sizeof(tmp) ? c->write_len : sizeof(tmp);
	memset(tmp, 0xa5, want);
	n = vq_chain_write(c, 0, tmp, sizeof(tmp));
	ASSERT(n == want);
	return (uint32_t)n;
}

static uint16_t used_idx_in_ram(const struct vq *vq)
{
	uint16_t v;

	memcpy(&v, vq->used + 2, 2);
	return le16toh(v);
}

static void run(struct vq *vq, const struct guest_mem *gm,
		const struct ctl *ctl, const uint8_t *ram0,
		const uint8_t *ram1)
{
	static struct vq_seg segs[MAX_SEGS];
	struct vq_chain c;
	struct kr_err err;
	uint32_t written;
	unsigned i;
	int r = 0;

	vq_chain_init(&c, segs, ctl->cap);
	vq_disable_notify(vq);
	for (i = 0; i < ctl->pops; i++) {
		r = vq_pop(vq, gm, &c, &err);
		if (r == 0 && vq_enable_notify(vq))
			continue;	/* the "guest" (our writes) added more */
		if (r <= 0)
			break;
		check_chain(&c, vq, ram0, ram1);
		written = serve(&c);
		guest_bump(vq, ctl->bump);
		if (ctl->hold > 1 || (ctl->hold == 1 && (i & 1)))
			continue;
		ASSERT(vq_push(vq, c.head, written, &err) == 0);
		ASSERT(used_idx_in_ram(vq) == vq->used_idx);
		vq_need_notify(vq);
	}
	if (r < 0) {
		ASSERT(vq->broken);
		ASSERT(err.code == KR_INVALID_ARGUMENT);
		ASSERT(vq_pop(vq, gm, &c, &err) == -1);
		ASSERT(err.code == KR_FAILED_PRECONDITION);
		ASSERT(vq_push(vq, 0, 0, &err) == -1);
		ASSERT(!vq_enable_notify(vq));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem gm;
	struct kr_err err;
	struct ctl ctl;
	struct vq vq;
	uint8_t *ram0, *ram1;
	size_t n;

	if (size < CTRL)
		return 0;
	parse_ctl(data, &ctl);
	ram0 = calloc(1, RAM0_SIZE);
	ram1 = calloc(1, RAM1_SIZE);
	ASSERT(ram0 && ram1);
	n = size - CTRL < RAM0_SIZE ? size - CTRL : RAM0_SIZE;
	memcpy(ram0, data + CTRL, n);
	gm_init(&gm);
	ASSERT(gm_add_region(&gm, 0, RAM0_SIZE, ram0, &err) == 0);
	ASSERT(gm_add_region(&gm, RAM1_GPA, RAM1_SIZE, ram1, &err) == 0);
	if (vq_setup(&vq, &gm, ctl.size, DESC + ctl.misalign,
		     AVAIL + ctl.misalign, USED + ctl.misalign, ctl.features,
		     &err) == 0) {
		vq_set_base(&vq, ctl.base, ctl.base);
		run(&vq, &gm, &ctl, ram0, ram1);
	} else {
		ASSERT(err.code == KR_INVALID_ARGUMENT && !vq.ready);
	}
	free(ram0);
	free(ram1);
	return 0;
}
