/* The guest's side of a virtqueue and of the virtio-mmio register window,
 * for tests that play the guest driver on synthetic guest memory: they
 * write descriptor tables and rings by hand into malloc'd "guest RAM" and
 * check what the device side makes of them.
 *
 * The helpers work on one guest memory and one device, which the test
 * names once before using them:
 *
 *   vqd_gm = &gm;		(put16(), get32(), host(), rings)
 *   vqd_dev = &dev;		(wr(), rd(), negotiate(), queue_enable())
 *
 * A queue as the guest sees it is a struct gq: where its rings are, its
 * size, the next avail.idx it will publish and the used entries it has
 * consumed.  All little-endian, as virtio 1.x is.  Everything is static
 * inline, so a test uses whichever subset it needs.
 *
 *   struct gq q;
 *   gq_init(&q, 0, 16, 0x1000, 0x2000, 0x3000);
 *   negotiate(1ull << VIRTIO_F_VERSION_1);
 *   gq_enable(&q);
 *   wr(VIRTIO_MMIO_STATUS, S_OK);
 *   gq_desc(&q, 0, buf, 64, VQ_DESC_F_WRITE, 0);
 *   gq_avail_add(&q, 0);
 *   wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
 *   while (gq_used_pop(&q, &id, &len)) ...
 */
#ifndef VQ_DRIVER_H
#define VQ_DRIVER_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest_mem.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

static struct guest_mem *vqd_gm __attribute__((unused));
static struct virtio_dev *vqd_dev __attribute__((unused));

/* ---- guest memory ---- */

/* The host address of gpa; aborts if it is not guest RAM. */
static inline uint8_t *host(uint64_t gpa)
{
	uint8_t *p = gm_ptr(vqd_gm, gpa, 1);

	if (!p)
		abort();
	return p;
}

static inline void put16(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(host(gpa), &v, 2);
}

static inline void put32(uint64_t gpa, uint32_t v)
{
	v = htole32(v);
	memcpy(host(gpa), &v, 4);
}

static inline void put64(uint64_t gpa, uint64_t v)
{
	v = htole64(v);
	memcpy(host(gpa), &v, 8);
}

static inline uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, host(gpa), 2);
	return le16toh(v);
}

static inline uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, host(gpa), 4);
	return le32toh(v);
}

/* Descriptor i of the table at gpa table (a ring's or an indirect one). */
static inline void desc_at(uint64_t table, unsigned i, uint64_t addr,
			   uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t d = table + 16ull * i;

	put64(d, addr);
	put32(d + 8, len);
	put16(d + 12, flags);
	put16(d + 14, next);
}

/* ---- a split virtqueue, the driver's view ---- */

struct gq {
	unsigned q;		/* queue index */
	unsigned size;		/* entries */
	uint64_t desc, avail, used;	/* the rings' gpas */
	uint16_t avail_idx;	/* the next avail.idx to publish */
	uint16_t used_seen;	/* used entries consumed */
	unsigned next_desc;	/* for tests that allocate descriptors */
};

static inline void gq_init(struct gq *g, unsigned q, unsigned size,
			   uint64_t desc, uint64_t avail, uint64_t used)
{
	memset(g, 0, sizeof(*g));
	g->q = q;
	g->size = size;
	g->desc = desc;
	g->avail = avail;
	g->used = used;
}

static inline void gq_desc(struct gq *g, unsigned i, uint64_t addr,
			   uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(g->desc, i, addr, len, flags, next);
}

/* Publish avail.idx = idx (the entries before it are the test's). */
static inline void gq_set_avail_idx(struct gq *g, uint16_t idx)
{
	g->avail_idx = idx;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(g->avail + 2, idx);
}

/* Make the chain at head available. */
static inline void gq_avail_add(struct gq *g, uint16_t head)
{
	put16(g->avail + 4 + 2ull * (g->avail_idx % g->size), head);
	gq_set_avail_idx(g, (uint16_t)(g->avail_idx + 1));
}

/* used.idx, and the id and len of the used entry for the n-th chain. */
static inline uint16_t gq_used_idx(const struct gq *g)
{
	return get16(g->used + 2);
}

static inline uint32_t gq_used_id(const struct gq *g, unsigned n)
{
	return get32(g->used + 4 + 8ull * (n % g->size));
}

static inline uint32_t gq_used_len(const struct gq *g, unsigned n)
{
	return get32(g->used + 4 + 8ull * (n % g->size) + 4);
}

/* The next used entry, if the device published one. */
static inline bool gq_used_pop(struct gq *g, uint32_t *id, uint32_t *len)
{
	if (gq_used_idx(g) == g->used_seen)
		return false;
	*id = gq_used_id(g, g->used_seen);
	*len = gq_used_len(g, g->used_seen);
	g->used_seen++;
	return true;
}

/* ---- the virtio-mmio register window, as the driver uses it ---- */

/* Interrupts raised since the last call: the irqfd (an eventfd opened
 * EFD_NONBLOCK) read and cleared; 0 if none. */
static inline uint64_t irq_count(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static inline void wr(uint64_t off, uint32_t v)
{
	uint8_t b[4];

	v = htole32(v);
	memcpy(b, &v, 4);
	virtio_mmio_rw(vqd_dev, off, b, 4, true);
}

/* A register read; 0xee in any byte the transport leaves alone. */
static inline uint32_t rd(uint64_t off)
{
	uint8_t b[4] = { 0xee, 0xee, 0xee, 0xee };
	uint32_t v;

	virtio_mmio_rw(vqd_dev, off, b, 4, false);
	memcpy(&v, b, 4);
	return le32toh(v);
}

/* A 64-bit value into a LOW/HIGH register pair. */
static inline void wr64(uint64_t lo_off, uint64_t v)
{
	wr(lo_off, (uint32_t)v);
	wr(lo_off + 4, (uint32_t)(v >> 32));
}

static inline uint64_t device_features(void)
{
	uint64_t f;

	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = rd(VIRTIO_MMIO_DEVICE_FEATURES);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)rd(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

/* Reset, ACKNOWLEDGE, DRIVER: the device's features may be read now. */
static inline void driver_hello(void)
{
	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
}

/* Write the driver's features, then FEATURES_OK (read the status back to
 * know whether the device took them). */
static inline void driver_features(uint64_t features)
{
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE |
	   VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
}

/* Reset and negotiate features, as Linux does, up to FEATURES_OK. */
static inline void negotiate(uint64_t features)
{
	driver_hello();
	driver_features(features);
}

/* Select queue q and write its size and ring addresses (not READY). */
static inline void queue_regs(unsigned q, uint32_t num, uint64_t desc,
			      uint64_t avail, uint64_t used)
{
	wr(VIRTIO_MMIO_QUEUE_SEL, q);
	wr(VIRTIO_MMIO_QUEUE_NUM, num);
	wr64(VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	wr64(VIRTIO_MMIO_QUEUE_AVAIL_LOW, avail);
	wr64(VIRTIO_MMIO_QUEUE_USED_LOW, used);
}

static inline void queue_enable(unsigned q, uint32_t num, uint64_t desc,
				uint64_t avail, uint64_t used)
{
	queue_regs(q, num, desc, avail, used);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
}

static inline void gq_enable(const struct gq *g)
{
	queue_enable(g->q, g->size, g->desc, g->avail, g->used);
}

#endif
