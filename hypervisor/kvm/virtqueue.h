/* The device side of a virtio 1.x split virtqueue (little-endian), as the
 * virtio-mmio devices use it.  Everything in the rings is written by the
 * guest and treated as hostile: a malformed chain or ring marks the queue
 * broken (every later pop fails) so that a misbehaving guest only breaks its
 * own device; the device should then set DEVICE_NEEDS_RESET.  A fresh
 * vq_setup() (after the driver resets the device) clears it.
 *
 * Typical device loop (one thread per queue or device):
 *
 *	struct vq_seg segs[64];
 *	struct vq_chain c;
 *
 *	vq_chain_init(&c, segs, 64);
 *	do {
 *		vq_disable_notify(vq);
 *		while ((r = vq_pop(vq, gm, &c, err)) == 1) {
 *			... use c.seg[0 .. c.nread) then the writable rest ...
 *			vq_push(vq, c.head, written, err);
 *		}
 *		if (r < 0)
 *			-> DEVICE_NEEDS_RESET
 *		if (vq_need_notify(vq))
 *			-> interrupt the guest
 *	} while (vq_enable_notify(vq));
 */
#ifndef KR_VIRTQUEUE_H
#define KR_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kr/error.h"
#include "guest_mem.h"

#define VQ_MAX_SIZE 32768	/* spec limit for a split ring */

#define VQ_DESC_F_NEXT 1
#define VQ_DESC_F_WRITE 2
#define VQ_DESC_F_INDIRECT 4
#define VQ_AVAIL_F_NO_INTERRUPT 1
#define VQ_USED_F_NO_NOTIFY 1

/* Feature bits (bit numbers) that change the ring's behaviour. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29

/* Bounds on what one chain may describe.  Total bytes: far above any real
 * request (virtio-blk/fs requests stay in the low MiB), low enough that
 * 32-bit lengths cannot overflow a sum.  Indirect table: the largest ring
 * size; the caller's segment array bounds the segment count further. */
#define VQ_MAX_CHAIN_BYTES (64u << 20)
#define VQ_MAX_INDIRECT VQ_MAX_SIZE

/* One guest buffer of a chain, already translated. */
struct vq_seg {
	void *ptr;		/* host address, len bytes valid */
	uint32_t len;		/* > 0: zero-length descriptors are skipped */
	bool writable;		/* device-writable (VQ_DESC_F_WRITE) */
};

/* A popped chain.  The caller provides the segment array; the readable
 * segments come first: seg[0 .. nread) readable, seg[nread .. nseg)
 * writable. */
struct vq_chain {
	struct vq_seg *seg;
	unsigned cap;		/* entries in seg */
	unsigned nseg;
	unsigned nread;
	uint16_t head;		/* descriptor index to hand back to vq_push */
	uint32_t read_len;	/* bytes in the readable segments */
	uint32_t write_len;	/* bytes in the writable segments */
};

struct vq {
	/* Set by vq_setup. */
	unsigned size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool indirect;		/* VIRTIO_F_INDIRECT_DESC negotiated */
	bool event_idx;		/* VIRTIO_F_EVENT_IDX negotiated */
	bool ready;
	/* Host views of the three areas, checked once at setup. */
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
	/* Device state. */
	uint16_t last_avail_idx;	/* next avail entry to take */
	uint16_t shadow_avail_idx;	/* last avail.idx read from the guest */
	uint16_t used_idx;		/* next used entry to write */
	uint16_t signalled_used;	/* used_idx at the last vq_need_notify */
	unsigned inflight;		/* popped, not yet pushed */
	bool broken;
};

void vq_chain_init(struct vq_chain *c, struct vq_seg *segs, unsigned cap);

/* Validate and take over a queue the driver has set up: size a power of two
 * in [1, VQ_MAX_SIZE]; the descriptor table (16-aligned, 16*size bytes), the
 * available ring (2-aligned, 4 + 2*size, +2 for used_event with EVENT_IDX)
 * and the used ring (4-aligned, 4 + 8*size, +2 for avail_event with
 * EVENT_IDX) each inside one guest memory region.  features: the negotiated
 * feature bits.  Indices start at 0. */
int vq_setup(struct vq *vq, const struct guest_mem *gm, unsigned size,
	     uint64_t desc, uint64_t avail, uint64_t used, uint64_t features,
	     struct kr_err *err);
/* Back to the state before setup (driver reset). */
void vq_reset(struct vq *vq);
/* Restore indices (vhost-user SET_VRING_BASE style, and tests). */
void vq_set_base(struct vq *vq, uint16_t last_avail_idx, uint16_t used_idx);

/* Take the next available chain into c: 1 = got one, 0 = queue empty,
 * -1 = error (the queue is now broken; err says what the guest did wrong:
 * descriptor index, address, length).  Also -1 if the chain needs more
 * than c->cap segments. */
int vq_pop(struct vq *vq, const struct guest_mem *gm, struct vq_chain *c,
	   struct kr_err *err);

/* Return chain head to the guest with written_len bytes written into its
 * writable part, and publish it (used.idx store with release ordering).
 * Refused on a broken queue, for head >= size, and with nothing in flight. */
int vq_push(struct vq *vq, uint16_t head, uint32_t written_len,
	    struct kr_err *err);

/* Whether the guest wants an interrupt for what was pushed since the last
 * call (EVENT_IDX used_event, else avail.flags NO_INTERRUPT).  False when
 * nothing was pushed since. */
bool vq_need_notify(struct vq *vq);

/* Kick suppression while the device is busy polling the ring. */
void vq_disable_notify(struct vq *vq);
/* Ask for kicks again; true when the guest added buffers in the meantime
 * (the caller must poll again, else that kick is lost). */
bool vq_enable_notify(struct vq *vq);

/* Copy bytes of a popped chain as one stream, whatever the descriptor
 * split (spec section 5.6): from the readable part starting at byte off,
 * or into the writable part.  Return the number of bytes copied (< len at
 * the end of that part).  The guest may change the buffers meanwhile: copy
 * a header once, then validate the copy. */
size_t vq_chain_read(const struct vq_chain *c, size_t off, void *buf,
		     size_t len);
size_t vq_chain_write(const struct vq_chain *c, size_t off, const void *buf,
		      size_t len);

#endif
