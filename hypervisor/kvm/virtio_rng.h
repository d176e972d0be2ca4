/* virtio-rng / entropy device (id 4): one queue of device-writable buffers
 * that the device fills from getrandom().  No config space, no device
 * feature bits.  ../shared/specs/microvm.md section 6.3.
 *
 * The guest is hostile: each chain gets at most VIRTIO_RNG_MAX_REQUEST
 * bytes (the rest of a bigger buffer is left untouched and the used length
 * says how much was filled, as the spec allows), and one kick serves at
 * most VIRTIO_RNG_BATCH chains before the device yields the I/O thread to
 * the other devices (it re-kicks itself to come back for the rest).  A
 * malformed chain marks the device DEVICE_NEEDS_RESET.
 *
 * Threads: as every device, kicks run on the evloop thread under d->lock;
 * stop the evloop (or call from its thread) before virtio_rng_destroy(). */
#ifndef KR_VMM_VIRTIO_RNG_H
#define KR_VMM_VIRTIO_RNG_H

#include <stdint.h>

#include "kr/error.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtio_mmio.h"

#define VIRTIO_RNG_QUEUE_MAX	256		/* QueueNumMax */
#define VIRTIO_RNG_MAX_REQUEST	(64u << 10)	/* bytes filled per chain */
#define VIRTIO_RNG_BATCH	64		/* chains per turn of the I/O thread */

/* Set up d as an entropy device (state in d->priv) with its register
 * window at base, interrupt irq_fd.  The other arguments are
 * virtio_dev_init()'s. */
int virtio_rng_create(struct virtio_dev *d, struct evloop *ev,
		      const struct guest_mem *gm, uint64_t base, unsigned gsi,
		      int irq_fd, const struct virtio_mmio_hooks *hooks,
		      struct kr_err *err);
/* Reset and free the device.  Safe after a failed create and twice. */
void virtio_rng_destroy(struct virtio_dev *d);

#endif
