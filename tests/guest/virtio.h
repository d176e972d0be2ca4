/* Driver side of virtio-mmio version 2 and split virtqueues (polled).
 * ../../../shared/specs/microvm.md sections 4.1-4.6. */
#ifndef TESTGUEST_VIRTIO_H
#define TESTGUEST_VIRTIO_H

#include "guest.h"

/* Registers, status bits, interrupt bits, device ids and feature bit
 * numbers: the kernel's UAPI headers, as the VMM uses them. */
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>

#define VIRTIO_MMIO_MAGIC_VIRT		0x74726976u	/* "virt" */

/* Split ring layout (spec 2.7). */
#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_USED_F_NO_NOTIFY	1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
struct vring_avail {
	uint16_t flags, idx;
	uint16_t ring[];	/* then used_event (unused: no EVENT_IDX) */
};
struct vring_used_elem {
	uint32_t id, len;
};
struct vring_used {
	uint16_t flags, idx;
	struct vring_used_elem ring[];
};

#define VQ_MAX_SIZE 16		/* the guest never needs more in flight */

struct virtq {
	struct virtio_dev *dev;
	uint16_t index, num;
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint16_t num_free, free_head;
	uint16_t avail_idx, last_used;
	uint16_t next[VQ_MAX_SIZE];	/* free list and chains (our copy) */
	uint16_t chain_len[VQ_MAX_SIZE];	/* by head; 0 = not in flight */
	void *token[VQ_MAX_SIZE];	/* the caller's cookie, by head */
};

struct virtio_dev {
	uint64_t base;
	uint32_t irq, id;
	const char *name;
	uint64_t features;	/* negotiated */
	struct virtq vq[3];
};

/* One buffer of a chain: device-readable ones first, then writable ones. */
struct vbuf {
	void *addr;
	uint32_t len;
	bool write;
};

static inline uint32_t vreg_read(struct virtio_dev *d, uint32_t off)
{
	return mmio_read32(d->base + off);
}
static inline void vreg_write(struct virtio_dev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->base + off, v);
}

/* Reset, ACKNOWLEDGE, DRIVER, feature negotiation: accept VERSION_1 plus
 * (wanted & offered); FEATURES_OK and its read-back.  False (after fail())
 * if the device misbehaves. */
bool virtio_begin(struct virtio_dev *d, uint64_t wanted);
/* Set up queue index with up to VQ_MAX_SIZE entries; QueueReady = 1. */
bool virtq_setup(struct virtio_dev *d, unsigned index);
void virtio_driver_ok(struct virtio_dev *d);
/* Reset the device (status 0, read back until 0). */
void virtio_reset(struct virtio_dev *d);

/* Config space: field-width accesses; 64-bit as two halves under the
 * generation counter. */
uint8_t vcfg8(struct virtio_dev *d, uint32_t off);
uint16_t vcfg16(struct virtio_dev *d, uint32_t off);
uint32_t vcfg32(struct virtio_dev *d, uint32_t off);
uint64_t vcfg64(struct virtio_dev *d, uint32_t off);

/* Make a chain available (no kick).  False if the ring is full. */
bool virtq_add(struct virtq *q, const struct vbuf *b, unsigned n, void *token);
/* Notify the device (unless it set VRING_USED_F_NO_NOTIFY). */
void virtq_kick(struct virtq *q);
/* Take one used chain if there is one: its token and used length.  1: got
 * one; 0: none; -1: the device returned a bad id (after fail()). */
int virtq_get(struct virtq *q, void **token, uint32_t *len);
/* virtq_get, waiting up to params.timeout_ms; fail(what) on timeout. */
bool virtq_wait(struct virtq *q, void **token, uint32_t *len, const char *what);

/* After a completed request: read InterruptStatus (waiting briefly for
 * bit 0: the device may publish the used entry before setting it), ACK
 * the bits read, fail if bit 0 never showed; returns the bits. */
uint32_t virtio_isr_check(struct virtio_dev *d, const char *what);

#endif
