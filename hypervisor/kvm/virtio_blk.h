/* virtio-blk device (id 2) backed by a raw image: a regular file or a
 * block device, read-only or read-write.  ../shared/specs/microvm.md
 * section 6.1.
 *
 * One request queue.  Features offered: VERSION_1, SIZE_MAX, SEG_MAX,
 * BLK_SIZE (512), FLUSH (fdatasync), RO for a read-only image, and the
 * ring features INDIRECT_DESC and EVENT_IDX.  Config: capacity (512-byte
 * sectors; a partial last sector of the image is not exposed), size_max,
 * seg_max, blk_size.  SIZE_MAX x SEG_MAX keeps a request below
 * VQ_MAX_CHAIN_BYTES whatever max_sectors_kb the guest sets.
 *
 * Requests: IN, OUT, FLUSH, GET_ID; anything else gets UNSUPP.  Chains are
 * parsed as byte streams (the split into descriptors is the driver's
 * business): 16-byte header in the readable part, then the data, and the
 * status in the LAST writable byte.  The guest is hostile: a request with
 * a short header, a length that is not a multiple of 512, a range past the
 * capacity (overflow-safe), or a write to a read-only image gets IOERR and
 * never touches the image outside [0, capacity * 512).  A chain with no
 * writable byte (nowhere to put the status) is handed back with used
 * length 0 and nothing done.  A malformed chain (vq_pop fails) marks the
 * device DEVICE_NEEDS_RESET.
 *
 * I/O is synchronous (preadv/pwritev straight into the guest buffers) on
 * the evloop thread under d->lock; one kick serves at most
 * VIRTIO_BLK_BATCH requests before yielding to the other devices.  Stop
 * the evloop (or call from its thread) before virtio_blk_destroy(). */
#ifndef KR_VMM_VIRTIO_BLK_H
#define KR_VMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_blk.h>	/* feature bits, request types, status, ID_BYTES */

#include "kr/error.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtio_mmio.h"

#define VIRTIO_BLK_QUEUE_MAX	256	/* QueueNumMax */
#define VIRTIO_BLK_SEG_MAX	126	/* data segments (+ header, status) */
#define VIRTIO_BLK_SIZE_MAX	(256u << 10)	/* bytes per data segment */
#define VIRTIO_BLK_BATCH	64	/* requests per turn of the I/O thread */
#define VIRTIO_BLK_SECTOR	512u
#define VIRTIO_BLK_CONFIG_SIZE	24	/* up to and including blk_size */


/* Config space offsets. */
#define VIRTIO_BLK_CFG_CAPACITY	0	/* le64 */
#define VIRTIO_BLK_CFG_SIZE_MAX	8	/* le32 */
#define VIRTIO_BLK_CFG_SEG_MAX	12	/* le32 */
#define VIRTIO_BLK_CFG_BLK_SIZE	20	/* le32 */

/* Request header {le32 type; le32 reserved; le64 sector}. */
#define VIRTIO_BLK_HDR_SIZE	16

struct virtio_blk_cfg {
	const char *path;	/* the raw image */
	bool read_only;		/* opened O_RDONLY, RO offered, OUT refused */
	const char *serial;	/* GET_ID answer, <= 20 bytes; NULL: empty */
};

/* Open cfg->path and set up d as a block device (state in d->priv) with
 * its register window at base, interrupt irq_fd.  The other arguments are
 * virtio_dev_init()'s. */
int virtio_blk_create(struct virtio_dev *d, struct evloop *ev,
		      const struct guest_mem *gm, uint64_t base, unsigned gsi,
		      int irq_fd, const struct virtio_mmio_hooks *hooks,
		      const struct virtio_blk_cfg *cfg, struct kr_err *err);
/* Reset the device, close the image, free the state.  Safe after a failed
 * create and twice. */
void virtio_blk_destroy(struct virtio_dev *d);

#endif
