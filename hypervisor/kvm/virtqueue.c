/* Split virtqueue, device side.  Layout and rules: ../shared/specs/microvm.md
 * section 4.6-4.8 and the virtio 1.x spec (split-ring.tex).
 *
 * The guest writes the rings and descriptors concurrently with us.  Each
 * field is read once into a local copy and only the copy is validated and
 * used, so a guest changing memory under us can only make its own request
 * wrong, never make us use an unchecked value. */
#include <endian.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "virtqueue.h"

/* Offsets inside the areas (spec 2.7). */
#define AVAIL_FLAGS 0
#define AVAIL_IDX 2
#define AVAIL_RING 4
#define USED_FLAGS 0
#define USED_IDX 2
#define USED_RING 4
#define DESC_SIZE 16
#define USED_ELEM_SIZE 8

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Ring fields are naturally aligned (checked at setup), so they can be
 * accessed atomically: no torn 16-bit index. */
static uint16_t ld16(const uint8_t *p, int order)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p, order));
}

static void st16(uint8_t *p, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), order);
}

static void st32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)p, htole32(v), __ATOMIC_RELAXED);
}

/* Indirect tables need not be aligned: copy bytes, then decode. */
static void desc_read(const uint8_t *table, unsigned i, struct desc *d)
{
	uint8_t raw[DESC_SIZE];

	memcpy(raw, table + (size_t)i * DESC_SIZE, DESC_SIZE);
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

static uint8_t *used_event(const struct vq *vq)
{
	return vq->avail + AVAIL_RING + 2 * (size_t)vq->size;
}

static uint8_t *avail_event(const struct vq *vq)
{
	return vq->used + USED_RING + USED_ELEM_SIZE * (size_t)vq->size;
}

void vq_chain_init(struct vq_chain *c, struct vq_seg *segs, unsigned cap)
{
	memset(c, 0, sizeof(*c));
	c->seg = segs;
	c->cap = cap;
}

void vq_reset(struct vq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

void vq_set_base(struct vq *vq, uint16_t last_avail_idx, uint16_t used_idx)
{
	vq->last_avail_idx = last_avail_idx;
	vq->shadow_avail_idx = last_avail_idx;
	vq->used_idx = used_idx;
	vq->signalled_used = used_idx;
	vq->inflight = 0;
}

/* Translate one ring area; align is a power of two. */
static uint8_t *area(const struct guest_mem *gm, const char *name,
		     uint64_t gpa, uint64_t len, unsigned align,
		     struct kr_err *err)
{
	uint8_t *p;

	if (gpa & (align - 1)) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "%s at 0x%" PRIx64
			   " is not %u-byte aligned", name, gpa, align);
		return NULL;
	}
	p = gm_ptr(gm, gpa, len);
	if (!p)
		kr_err_set(err, KR_INVALID_ARGUMENT, "%s 0x%" PRIx64 "+0x%"
			   PRIx64 " is outside guest memory", name, gpa, len);
	else if ((uintptr_t)p & (align - 1)) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "%s at 0x%" PRIx64
			   ": host mapping %p is misaligned", name, gpa,
			   (void *)p);
		p = NULL;
	}
	return p;
}

int vq_setup(struct vq *vq, const struct guest_mem *gm, unsigned size,
	     uint64_t desc, uint64_t avail, uint64_t used, uint64_t features,
	     struct kr_err *err)
{
	bool event_idx = features & (1ull << VIRTIO_F_EVENT_IDX);
	uint64_t extra = event_idx ? 2 : 0;

	vq_reset(vq);
	if (size == 0 || size > VQ_MAX_SIZE || (size & (size - 1)))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "queue size %u is"
				  " not a power of two in 1..%u", size,
				  VQ_MAX_SIZE);
	vq->desc = area(gm, "descriptor table", desc,
			(uint64_t)DESC_SIZE * size, 16, err);
	if (!vq->desc)
		return -1;
	vq->avail = area(gm, "available ring", avail,
			 AVAIL_RING + 2ull * size + extra, 2, err);
	if (!vq->avail)
		return -1;
	vq->used = area(gm, "used ring", used,
			USED_RING + (uint64_t)USED_ELEM_SIZE * size + extra, 4,
			err);
	if (!vq->used)
		return -1;
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	vq->indirect = features & (1ull << VIRTIO_F_INDIRECT_DESC);
	vq->event_idx = event_idx;
	vq->ready = true;
	return 0;
}

/* State of one chain walk. */
struct walk {
	struct vq *vq;
	const struct guest_mem *gm;
	struct vq_chain *c;
	int parent;		/* descriptor holding the indirect table, or -1 */
	bool seen_write;
	struct kr_err *err;
};

/* Error naming the descriptor: "desc 5: ..." or "indirect desc 2 (table
 * of desc 5): ...". */
static int bad(const struct walk *w, unsigned i, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(const struct walk *w, unsigned i, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->parent < 0)
		return kr_err_set(w->err, KR_INVALID_ARGUMENT, "desc %u: %s",
				  i, msg);
	return kr_err_set(w->err, KR_INVALID_ARGUMENT,
			  "indirect desc %u (table of desc %d): %s", i,
			  w->parent, msg);
}

static int add_seg(struct walk *w, const struct desc *d, unsigned i)
{
	struct vq_chain *c = w->c;
	bool writable = d->flags & VQ_DESC_F_WRITE;
	void *p;

	/* A zero-length buffer carries nothing; its address is never used,
	 * so it is neither checked nor counted for the ordering rule. */
	if (d->len == 0)
		return 0;
	if (!writable && w->seen_write)
		return bad(w, i, "readable descriptor after a writable one");
	if (d->len > VQ_MAX_CHAIN_BYTES - c->read_len - c->write_len)
		return bad(w, i, "length 0x%x takes the chain past %u bytes",
			   d->len, VQ_MAX_CHAIN_BYTES);
	p = gm_ptr(w->gm, d->addr, d->len);
	if (!p)
		return bad(w, i, "buffer 0x%" PRIx64 "+0x%x is outside guest"
			   " memory", d->addr, d->len);
	if (c->nseg == c->cap)
		return bad(w, i, "chain needs more than %u segments", c->cap);
	c->seg[c->nseg++] = (struct vq_seg){ p, d->len, writable };
	if (writable) {
		w->seen_write = true;
		c->write_len += d->len;
	} else {
		c->nread++;
		c->read_len += d->len;
	}
	return 0;
}

static int walk_table(struct walk *w, const uint8_t *table, unsigned n,
		      unsigned i);

static int walk_indirect(struct walk *w, const struct desc *d, unsigned i)
{
	const uint8_t *table;

	if (w->parent >= 0)
		return bad(w, i, "nested indirect descriptor");
	if (!w->vq->indirect)
		return bad(w, i, "indirect descriptor, but"
			   " VIRTIO_F_INDIRECT_DESC was not negotiated");
	if (d->flags & VQ_DESC_F_NEXT)
		return bad(w, i, "INDIRECT together with NEXT");
	if (d->len == 0 || d->len % DESC_SIZE)
		return bad(w, i, "indirect table length %u is not a non-zero"
			   " multiple of %d", d->len, DESC_SIZE);
	if (d->len / DESC_SIZE > VQ_MAX_INDIRECT)
		return bad(w, i, "indirect table of %u entries (at most %u)",
			   d->len / DESC_SIZE, VQ_MAX_INDIRECT);
	table = gm_ptr(w->gm, d->addr, d->len);
	if (!table)
		return bad(w, i, "indirect table 0x%" PRIx64 "+0x%x is outside"
			   " guest memory", d->addr, d->len);
	w->parent = (int)i;
	return walk_table(w, table, d->len / DESC_SIZE, 0);
}

/* Follow a chain from entry i of an n-entry table.  A chain can visit at
 * most n distinct entries; one more step means a loop. */
static int walk_table(struct walk *w, const uint8_t *table, unsigned n,
		      unsigned i)
{
	struct desc d;
	unsigned count;

	for (count = 1;; count++) {
		desc_read(table, i, &d);
		/* The spec forbids NEXT here, so the indirect table ends
		 * the chain. */
		if (d.flags & VQ_DESC_F_INDIRECT)
			return walk_indirect(w, &d, i);
		if (add_seg(w, &d, i) < 0)
			return -1;
		if (!(d.flags & VQ_DESC_F_NEXT))
			return 0;
		if (d.next >= n)
			return bad(w, i, "next %u is out of range (%u entries)",
				   d.next, n);
		if (count == n)
			return bad(w, i, "chain longer than %u descriptors"
				   " (loop)", n);
		i = d.next;
	}
}

static int broken(struct vq *vq)
{
	vq->broken = true;
	return -1;
}

/* Read avail.idx; acquire orders it before the ring entries and
 * descriptors the guest wrote before publishing it. */
static int refresh_avail(struct vq *vq, struct kr_err *err)
{
	uint16_t idx = ld16(vq->avail + AVAIL_IDX, __ATOMIC_ACQUIRE);
	uint16_t ahead = idx - vq->last_avail_idx;

	if (ahead > vq->size)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "avail idx %u is %u"
				  " entries ahead of %u (queue size %u)", idx,
				  ahead, vq->last_avail_idx, vq->size);
	vq->shadow_avail_idx = idx;
	return 0;
}

static int pop_chain(struct vq *vq, const struct guest_mem *gm,
		     struct vq_chain *c, struct kr_err *err)
{
	struct walk w = { vq, gm, c, -1, false, err };
	unsigned slot = vq->last_avail_idx & (vq->size - 1);
	uint16_t head;

	if (vq->inflight == vq->size)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "more than %u"
				  " chains in flight (a head made available"
				  " twice?)", vq->size);
	head = ld16(vq->avail + AVAIL_RING + 2 * slot, __ATOMIC_RELAXED);
	if (head >= vq->size)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "avail ring slot"
				  " %u: head %u is out of range (queue size"
				  " %u)", slot, head, vq->size);
	c->head = head;
	return walk_table(&w, vq->desc, vq->size, head);
}

int vq_pop(struct vq *vq, const struct guest_mem *gm, struct vq_chain *c,
	   struct kr_err *err)
{
	if (!vq->ready)
		return kr_err_set(err, KR_FAILED_PRECONDITION,
				  "queue is not set up");
	if (vq->broken)
		return kr_err_set(err, KR_FAILED_PRECONDITION, "queue is broken"
				  " (the device needs a reset)");
	c->nseg = c->nread = 0;
	c->read_len = c->write_len = 0;
	if (vq->last_avail_idx == vq->shadow_avail_idx) {
		if (refresh_avail(vq, err) < 0)
			return broken(vq);
		if (vq->last_avail_idx == vq->shadow_avail_idx)
			return 0;
	}
	if (pop_chain(vq, gm, c, err) < 0)
		return broken(vq);
	vq->last_avail_idx++;
	vq->inflight++;
	return 1;
}

int vq_push(struct vq *vq, uint16_t head, uint32_t written_len,
	    struct kr_err *err)
{
	uint8_t *elem;

	if (!vq->ready || vq->broken)
		return kr_err_set(err, KR_FAILED_PRECONDITION, "queue is %s",
				  vq->ready ? "broken" : "not set up");
	if (head >= vq->size)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "push of head %u"
				  " (queue size %u)", head, vq->size);
	if (vq->inflight == 0)
		return kr_err_set(err, KR_FAILED_PRECONDITION, "push of head"
				  " %u with no chain in flight", head);
	elem = vq->used + USED_RING +
	       USED_ELEM_SIZE * (size_t)(vq->used_idx & (vq->size - 1));
	st32(elem, head);
	st32(elem + 4, written_len);
	vq->used_idx++;
	vq->inflight--;
	/* Release: the element is visible before the index that covers it. */
	st16(vq->used + USED_IDX, vq->used_idx, __ATOMIC_RELEASE);
	return 0;
}

/* Linux's vring_need_event(): did [old, new) pass event? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_need_notify(struct vq *vq)
{
	uint16_t old = vq->signalled_used;
	uint16_t new_idx = vq->used_idx;

	if (!vq->ready || new_idx == old)
		return false;
	vq->signalled_used = new_idx;
	/* Full barrier between the used.idx store and reading the guest's
	 * wish: otherwise both sides may miss the other's update and the
	 * interrupt is lost (spec 4.8 step 3). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx)
		return need_event(ld16(used_event(vq), __ATOMIC_RELAXED),
				  new_idx, old);
	return !(ld16(vq->avail + AVAIL_FLAGS, __ATOMIC_RELAXED) &
		 VQ_AVAIL_F_NO_INTERRUPT);
}

/* With EVENT_IDX the guest kicks only when avail.idx passes avail_event,
 * which we do not advance while busy: nothing to do. */
void vq_disable_notify(struct vq *vq)
{
	if (vq->ready && !vq->event_idx)
		st16(vq->used + USED_FLAGS, VQ_USED_F_NO_NOTIFY,
		     __ATOMIC_RELAXED);
}

bool vq_enable_notify(struct vq *vq)
{
	uint16_t idx;

	if (!vq->ready || vq->broken)
		return false;
	if (vq->event_idx)
		st16(avail_event(vq), vq->last_avail_idx, __ATOMIC_RELAXED);
	else
		st16(vq->used + USED_FLAGS, 0, __ATOMIC_RELAXED);
	/* Full barrier before re-reading avail.idx: a buffer added before
	 * the guest saw our store would get no kick (spec 4.8 step 3). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	idx = ld16(vq->avail + AVAIL_IDX, __ATOMIC_RELAXED);
	return idx != vq->last_avail_idx;
}

/* Copy across segments [first, last) as one byte stream from off. */
static size_t stream_copy(const struct vq_chain *c, unsigned first,
			  unsigned last, size_t off, uint8_t *buf,
			  const uint8_t *src, size_t len)
{
	size_t done = 0;
	unsigned i;

	for (i = first; i < last && done < len; i++) {
		const struct vq_seg *s = &c->seg[i];
		size_t n;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off;
		if (n > len - done)
			n = len - done;
		if (buf)
			memcpy(buf + done, (uint8_t *)s->ptr + off, n);
		else
			memcpy((uint8_t *)s->ptr + off, src + done, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t vq_chain_read(const struct vq_chain *c, size_t off, void *buf,
		     size_t len)
{
	return stream_copy(c, 0, c->nread, off, buf, NULL, len);
}

size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *buf,
		      size_t len)
{
	return stream_copy(c, c->nread, c->nseg, off, NULL, buf, len);
}
