/* virtio-vsock device (id 19) with Firecracker's hybrid scheme: AF_VSOCK in
 * the guest, AF_UNIX on the host.  ../shared/specs/microvm.md sections 5.1
 * to 5.7.
 *
 *  - Host -> guest: the device listens on uds_path.  A host client connects
 *    and sends "CONNECT <port>\n"; the device allocates a host port L in
 *    [2^30, 2^31) (round robin), sends REQUEST (2, L) -> (guest_cid, port),
 *    and on the guest's RESPONSE writes "OK <L>\n" to the client; from then
 *    on the socket carries raw data.  The guest's RST closes the client.
 *  - Guest -> host: a REQUEST to (2, P) connects to "<uds_path>_<P>":
 *    RESPONSE if that works, RST if not.
 *  - Closing: the guest's SHUTDOWN shuts down the matching direction of
 *    the host socket (after flushing what is buffered); once it has shut
 *    both, the device closes the socket and answers RST.  The host peer's
 *    EOF becomes SHUTDOWN(send) (a half-close: the guest may still send);
 *    a hang-up, or EOF after the guest's own SHUTDOWN(send), becomes
 *    SHUTDOWN(rcv|send), and if the guest's RST does not follow within
 *    shutdown_ms the device sends one.  The guest's RST closes the socket.
 *
 * Queues: rx 0, tx 1, event 2 (never used: TRANSPORT_RESET is for
 * snapshot restore).  Config: le64 guest_cid.  Features: VERSION_1 and
 * IN_ORDER (buffers are used in the order they were made available).
 *
 * The guest is hostile: a malformed packet gets an RST (or is dropped),
 * never more.  Bounds: VSOCK_MAX_CONNS connections (host clients still
 * sending their CONNECT line included), VSOCK_RST_QUEUE RSTs waiting for
 * rx buffers (more are dropped), and per connection VSOCK_BUF_ALLOC bytes
 * buffered for a host socket that does not keep up: the credit we
 * advertise, so a guest that overflows it ignored our credit and gets an
 * RST.
 *
 * Threads: everything runs on the evloop thread (socket handlers, kicks,
 * the tick timer) under d->lock; MMIO from vCPU threads takes the same
 * lock.  The caller stops the evloop (or calls from its thread) before
 * virtio_vsock_destroy().
 *
 * Syscalls after create (for the seccomp allow-list): accept4, recvfrom,
 * sendto, sendmsg, read, shutdown, socket(AF_UNIX), connect, close,
 * epoll_ctl, clock_gettime; newfstatat and unlink at destroy.  No
 * timerfd_settime: the tick timer is armed once, in create. */
#ifndef KR_VMM_VIRTIO_VSOCK_H
#define KR_VMM_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "kr/error.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtio_mmio.h"

#define VSOCK_QUEUE_RX 0
#define VSOCK_QUEUE_TX 1
#define VSOCK_QUEUE_EVENT 2
#define VSOCK_QUEUE_MAX 256u		/* QueueNumMax of each queue */

#define VSOCK_MAX_CONNS 1024u
#define VSOCK_RST_QUEUE 256u
#define VSOCK_BUF_ALLOC (64u << 10)	/* our buf_alloc per connection */
/* Send CREDIT_UPDATE once the guest's view of our free space is below
 * this (and we have freed something since we last told it). */
#define VSOCK_CREDIT_THRESHOLD (4u << 10)
#define VSOCK_LOCAL_PORT_FIRST (1u << 30)	/* host ports for host-initiated */
#define VSOCK_LOCAL_PORT_END (1u << 31)		/* connections: [first, end) */

/* Limits; 0 keeps the default.  The time limits are checked by a
 * periodic tick (250 ms, shorter for shorter limits), so each is met
 * within one tick. */
struct virtio_vsock_limits {
	unsigned max_conns;	/* default VSOCK_MAX_CONNS, at most that */
	unsigned line_ms;	/* a host client's CONNECT line: 5000 */
	unsigned request_ms;	/* the guest answering our REQUEST: 2000 */
	unsigned shutdown_ms;	/* the guest's RST after our full SHUTDOWN,
				 * or a flush before an RST: 2000 */
};

/* Counters for tests and debugging. */
struct virtio_vsock_stats {
	unsigned conns;		/* open connections, in any state */
	unsigned rst_queued;	/* RSTs waiting for rx buffers */
	size_t buffered;	/* guest bytes waiting for host sockets */
	uint64_t rx_packets;	/* packets put on the rx queue */
	uint64_t tx_packets;	/* chains taken from the tx queue */
	uint64_t bad_packets;	/* malformed tx packets (RST or dropped) */
	uint64_t rst_dropped;	/* RSTs lost to a full RST queue */
	uint64_t refused;	/* connections refused for the limit */
};

/* Set up d as a vsock device (state in d->priv) with its register window
 * at base, interrupt irq_fd, and start listening on uds_path (which must
 * leave room for "_<port>": at most 96 bytes).  guest_cid: 3 ..
 * 0xfffffffe.  The socket file is removed by virtio_vsock_destroy(). */
int virtio_vsock_create(struct virtio_dev *d, struct evloop *ev,
			const struct guest_mem *gm, uint64_t base, unsigned gsi,
			int irq_fd, const struct virtio_mmio_hooks *hooks,
			uint64_t guest_cid, const char *uds_path,
			struct kr_err *err);
void virtio_vsock_destroy(struct virtio_dev *d);

/* Tests: tighter limits and time limits.  Re-arms the tick timer: call it
 * before the VMM's seccomp filter is applied. */
void virtio_vsock_set_limits(struct virtio_dev *d,
			     const struct virtio_vsock_limits *l);
void virtio_vsock_get_stats(struct virtio_dev *d, struct virtio_vsock_stats *s);

#endif
