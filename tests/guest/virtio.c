/* virtio-mmio transport and split virtqueues, driver side, polled. */
#include "virtio.h"

static void status_set(struct virtio_dev *d, uint32_t status)
{
	vreg_write(d, VIRTIO_MMIO_STATUS, status);
}

void virtio_reset(struct virtio_dev *d)
{
	vreg_write(d, VIRTIO_MMIO_STATUS, 0);
	uint64_t end = deadline_after_ms(params.timeout_ms);
	while (vreg_read(d, VIRTIO_MMIO_STATUS) != 0) {
		if (deadline_passed(end)) {
			fail("%s: status not 0 after reset", d->name);
			return;
		}
		cpu_relax();
	}
}

bool virtio_begin(struct virtio_dev *d, uint64_t wanted)
{
	virtio_reset(d);
	status_set(d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	status_set(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);

	vreg_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t offered = vreg_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	vreg_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)vreg_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	d->features = offered & (wanted | (1ull << VIRTIO_F_VERSION_1));
	report("%s: features offered=0x%lx accepted=0x%lx", d->name, offered, d->features);
	if (!(offered & (1ull << VIRTIO_F_VERSION_1))) {
		fail("%s: VERSION_1 not offered", d->name);
		status_set(d, VIRTIO_CONFIG_S_FAILED);
		return false;
	}
	vreg_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vreg_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)d->features);
	vreg_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vreg_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));

	uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		     VIRTIO_CONFIG_S_FEATURES_OK;
	status_set(d, s);
	uint32_t got = vreg_read(d, VIRTIO_MMIO_STATUS);
	if (got != s) {
		fail("%s: status 0x%x after FEATURES_OK, expected 0x%x", d->name, got, s);
		status_set(d, got | VIRTIO_CONFIG_S_FAILED);
		return false;
	}
	return true;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	status_set(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			      VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Ring areas in one page: descriptors (16-aligned), available ring
 * (2-aligned), used ring (4-aligned), packed one after another. */
bool virtq_setup(struct virtio_dev *d, unsigned index)
{
	struct virtq *q = &d->vq[index];

	vreg_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (vreg_read(d, VIRTIO_MMIO_QUEUE_READY)) {
		fail("%s: queue %u ready before set-up", d->name, index);
		return false;
	}
	uint32_t max = vreg_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (!max) {
		fail("%s: queue %u absent (QueueNumMax 0)", d->name, index);
		return false;
	}
	uint16_t num = VQ_MAX_SIZE;
	while (num > max)
		num >>= 1;

	size_t desc_sz = 16u * num, avail_sz = 6u + 2u * num;
	size_t used_off = (desc_sz + avail_sz + 3) & ~(size_t)3;
	char *mem = arena_alloc(4096, 4096);
	*q = (struct virtq){
		.dev = d, .index = (uint16_t)index, .num = num,
		.desc = (void *)mem, .avail = (void *)(mem + desc_sz),
		.used = (void *)(mem + used_off), .num_free = num,
	};
	for (uint16_t i = 0; i < num; i++)
		q->next[i] = (uint16_t)(i + 1);

	vreg_write(d, VIRTIO_MMIO_QUEUE_NUM, num);
	uint64_t a[3] = { (uintptr_t)q->desc, (uintptr_t)q->avail, (uintptr_t)q->used };
	static const uint32_t reg[3] = { VIRTIO_MMIO_QUEUE_DESC_LOW,
					 VIRTIO_MMIO_QUEUE_AVAIL_LOW,
					 VIRTIO_MMIO_QUEUE_USED_LOW };
	for (int i = 0; i < 3; i++) {
		vreg_write(d, reg[i], (uint32_t)a[i]);
		vreg_write(d, reg[i] + 4, (uint32_t)(a[i] >> 32));
	}
	vreg_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (vreg_read(d, VIRTIO_MMIO_QUEUE_READY) != 1) {
		fail("%s: queue %u QueueReady does not read back 1", d->name, index);
		return false;
	}
	report("%s: queue %u size %u (max %u) desc=0x%lx avail=0x%lx used=0x%lx",
	       d->name, index, num, max, a[0], a[1], a[2]);
	return true;
}

/* ---- config space -------------------------------------------------------------- */
uint8_t vcfg8(struct virtio_dev *d, uint32_t off)
{
	return mmio_read8(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint16_t vcfg16(struct virtio_dev *d, uint32_t off)
{
	return mmio_read16(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint32_t vcfg32(struct virtio_dev *d, uint32_t off)
{
	return mmio_read32(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint64_t vcfg64(struct virtio_dev *d, uint32_t off)
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t gen = vreg_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
		uint64_t v = vcfg32(d, off) | (uint64_t)vcfg32(d, off + 4) << 32;
		if (vreg_read(d, VIRTIO_MMIO_CONFIG_GENERATION) == gen)
			return v;
	}
	fail("%s: config generation keeps changing", d->name);
	return 0;
}

/* ---- the ring ---------------------------------------------------------------- */
bool virtq_add(struct virtq *q, const struct vbuf *b, unsigned n, void *token)
{
	if (!n || n > q->num_free)
		return false;
	uint16_t head = q->free_head, i = head;
	for (unsigned k = 0; k < n; k++) {
		volatile struct vring_desc *dsc = &q->desc[i];
		dsc->addr = (uintptr_t)b[k].addr;
		dsc->len = b[k].len;
		dsc->flags = (uint16_t)((b[k].write ? VRING_DESC_F_WRITE : 0) |
					(k + 1 < n ? VRING_DESC_F_NEXT : 0));
		dsc->next = k + 1 < n ? q->next[i] : 0;
		if (k + 1 < n)
			i = q->next[i];
	}
	q->free_head = q->next[i];
	q->num_free = (uint16_t)(q->num_free - n);
	q->chain_len[head] = (uint16_t)n;
	q->token[head] = token;

	q->avail->ring[q->avail_idx & (q->num - 1)] = head;
	barrier();		/* x86: stores stay in order; the compiler must too */
	q->avail_idx++;
	q->avail->idx = q->avail_idx;
	return true;
}

void virtq_kick(struct virtq *q)
{
	/* Our avail.idx store before the read of used.flags (spec 2.7.10). */
	__asm__ __volatile__("mfence" ::: "memory");
	if (!(q->used->flags & VRING_USED_F_NO_NOTIFY))
		vreg_write(q->dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

int virtq_get(struct virtq *q, void **token, uint32_t *len)
{
	if (q->used->idx == q->last_used)
		return 0;
	barrier();		/* read the element after the index */
	volatile struct vring_used_elem *e = &q->used->ring[q->last_used & (q->num - 1)];
	uint32_t id = e->id;
	*len = e->len;
	q->last_used++;
	if (id >= q->num || !q->chain_len[id]) {
		fail("%s: queue %u: used id %u not in flight", q->dev->name, q->index, id);
		return -1;
	}
	/* Back on the free list, in chain order. */
	uint16_t last = (uint16_t)id;
	for (unsigned k = 1; k < q->chain_len[id]; k++)
		last = q->next[last];
	q->next[last] = q->free_head;
	q->free_head = (uint16_t)id;
	q->num_free = (uint16_t)(q->num_free + q->chain_len[id]);
	q->chain_len[id] = 0;
	*token = q->token[id];
	return 1;
}

bool virtq_wait(struct virtq *q, void **token, uint32_t *len, const char *what)
{
	uint64_t end = deadline_after_ms(params.timeout_ms);

	int r;

	while (!(r = virtq_get(q, token, len))) {
		if (deadline_passed(end)) {
			fail("%s: %s: no used buffer within %u ms", q->dev->name,
			     what, params.timeout_ms);
			return false;
		}
		cpu_relax();
	}
	return r > 0;
}

uint32_t virtio_isr_check(struct virtio_dev *d, const char *what)
{
	uint64_t end = deadline_after_ms(100);
	uint32_t isr;

	while (!((isr = vreg_read(d, VIRTIO_MMIO_INTERRUPT_STATUS)) & VIRTIO_MMIO_INT_VRING) &&
	       !deadline_passed(end))
		cpu_relax();
	if (isr)
		vreg_write(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	report("%s: %s: InterruptStatus=0x%x (used-buffer bit %s)", d->name, what,
	       isr, isr & VIRTIO_MMIO_INT_VRING ? "set" : "NOT set");
	if (!(isr & VIRTIO_MMIO_INT_VRING))
		fail("%s: InterruptStatus bit 0 not set after %s", d->name, what);
	return isr;
}
