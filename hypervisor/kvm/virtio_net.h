/* virtio-net (device id 1) over a tap device.  ../shared/specs/microvm.md
 * section 6.2.
 *
 * Queues: 0 receive (tap -> guest), 1 transmit (guest -> tap); no control
 * queue, one queue pair.  Features: VERSION_1, MAC (when a MAC is given),
 * STATUS (link always up).  No offloads yet: no CSUM/GSO in either
 * direction (the tap gets TUNSETOFFLOAD 0, so the host kernel checksums and
 * segments before a frame reaches us), no MRG_RXBUF, no EVENT_IDX, no
 * indirect descriptors.  Every frame is [12-byte virtio_net_hdr_v1][Ethernet
 * frame] on both sides (TUNSETVNETHDRSZ 12).
 *
 * Transmit: a chain's readable part, any descriptor split, is copied into a
 * bounded buffer (VIRTIO_NET_MAX_BUF bytes, header included) and written to
 * the tap with a zeroed header (the guest may not request offloads we did
 * not offer; the host kernel never sees its header).  Dropped and counted:
 * chains shorter than header + Ethernet header, chains above the bound,
 * frames the tap refuses.
 *
 * Receive: the tap is read only while an rx chain is at hand (one chain is
 * popped and held until a frame comes).  Without one the tap is no longer
 * polled (its queue fills up and the host kernel drops, as a NIC without
 * buffers does) until the guest's next rx kick.  The frame goes into the
 * chain's writable part as one stream, behind a header that is zero except
 * num_buffers = 1 (the spec requires 1 without MRG_RXBUF; the tap leaves
 * those two bytes unwritten).  A frame larger than the chain is dropped and
 * counted, and the chain goes back to the guest with length 0 (Linux counts
 * it as a length error and refills).
 *
 * The tap: an EXISTING tap device named tap_name, opened with IFF_TAP |
 * IFF_NO_PI | IFF_VNET_HDR, single queue, non-blocking.  The runtime creates
 * it (persistent, in the pod's network namespace, where the VMM runs).
 * TUNSETIFF would create a missing device since we run as root; create
 * refuses a name that does not exist instead.  Should the device vanish
 * between that check and TUNSETIFF, the one TUNSETIFF creates is not
 * persistent and disappears with our fd at destroy: destroy leaves nothing
 * behind that create made.  A multi-queue tap (IFF_MULTI_QUEUE) is refused
 * by the kernel (EINVAL), as is a tap another process holds (EBUSY).
 *
 * Threads: as every virtio_mmio device; the tap's evloop handler takes
 * virtio_dev_lock().  Destroy only when the I/O thread no longer runs. */
#ifndef KR_VMM_VIRTIO_NET_H
#define KR_VMM_VIRTIO_NET_H

#include <stdint.h>

#include "kr/error.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtio_mmio.h"

#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_STATUS	16
#define VIRTIO_NET_S_LINK_UP	1

#define VIRTIO_NET_HDR_LEN	12u	/* struct virtio_net_hdr_v1 */
/* Largest header + frame either way; a bigger tx chain is dropped. */
#define VIRTIO_NET_MAX_BUF	65550u
#define VIRTIO_NET_QUEUE_SIZE	256u
#define VIRTIO_NET_RXQ		0u
#define VIRTIO_NET_TXQ		1u

/* Byte counts are of Ethernet frames, without the 12-byte header. */
struct virtio_net_stats {
	uint64_t tx_frames, tx_bytes;	/* written to the tap */
	uint64_t tx_dropped;		/* malformed chains, refused by the tap */
	uint64_t rx_frames, rx_bytes;	/* given to the guest */
	uint64_t rx_dropped;		/* too big for the guest's chain or us */
};

/* mac: the guest's address (config space, F_MAC); NULL lets the guest pick
 * one.  ev is required.  The error names the tap and what failed. */
int virtio_net_create(struct virtio_dev *d, struct evloop *ev,
		      const struct guest_mem *gm, uint64_t base, unsigned gsi,
		      int irq_fd, const struct virtio_mmio_hooks *hooks,
		      const char *tap_name, const uint8_t mac[6],
		      struct kr_err *err);
/* Resets the device, closes the tap fd and the kick fds. */
void virtio_net_destroy(struct virtio_dev *d);

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *st);

#endif
