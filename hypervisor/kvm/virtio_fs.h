/* virtio-fs (device id 26) whose queues are served by virtiofsd over
 * vhost-user (../shared/specs/microvm.md section 7).
 *
 * The VMM keeps the virtio-mmio side (status, features, config space: tag
 * and num_request_queues, since Debian's virtiofsd offers no CONFIG
 * protocol feature) and hands the rings to virtiofsd at DRIVER_OK.  From
 * then on virtiofsd reads the guest's requests from guest memory (a memfd
 * it maps), is kicked through the transport's kick eventfds and signals one
 * "call" eventfd per queue that belongs to this device.  The I/O thread
 * watches those: on a signal the device sets InterruptStatus bit 0 and
 * raises the interrupt.  virtiofsd must not get the irqfd itself, or Linux's
 * virtio-mmio handler would read InterruptStatus 0 and drop the interrupt
 * (section 7.5).
 *
 * Queues (Linux's layout, not the spec's): 0 = hiprio, 1 = the request
 * queue; num_request_queues = 1.  No notification queue.
 *
 * virtiofsd serves one connection and exits when it closes, so one
 * virtiofsd per device; if it dies (socket EOF or error, or it stops
 * answering) the device fails with DEVICE_NEEDS_RESET and the VM goes on.
 * Its rings are not re-handed to a new daemon (no reconnection).
 *
 * Not handled: a queue the driver enables after DRIVER_OK (Linux sets up
 * both before), the DAX window. */
#ifndef KR_VMM_VIRTIO_FS_H
#define KR_VMM_VIRTIO_FS_H

#include "kr/error.h"
#include "vhost_user.h"
#include "virtio_mmio.h"

#define VIRTIO_FS_TAG_MAX	36	/* bytes, NUL-padded in config space */
#define VIRTIO_FS_CONFIG_SIZE	40	/* tag[36] + le32 num_request_queues */
#define VIRTIO_FS_NUM_QUEUES	2	/* hiprio + 1 request queue */
/* The largest queue QEMU's vhost-user-fs accepts (VIRTQUEUE_MAX_SIZE, also
 * libvhost-user's bound on a chain). */
#define VIRTIO_FS_QUEUE_MAX	1024

struct virtio_fs_cfg {
	const char *socket_path;	/* virtiofsd --socket-path */
	const char *tag;		/* what the guest mounts: 1..36 bytes */
	/* Where guest memory lives in shared-memory files, per region of
	 * the gm given to virtio_fs_create (fds not owned, kept open by the
	 * caller while the device exists). */
	const struct vu_mem_backing *mem;
	int timeout_ms;			/* per vhost-user request; 0 = default */
};

/* Connect to virtiofsd and negotiate (GET_FEATURES, protocol features
 * REPLY_ACK and MQ if offered, SET_OWNER; at least 2 queues and
 * VERSION_1 required), then virtio_dev_init() d as a virtio-fs device
 * offering VERSION_1 plus the ring features virtiofsd supports
 * (INDIRECT_DESC, EVENT_IDX).  ev is required: it watches the socket and
 * the call eventfds.  The other arguments are virtio_dev_init()'s. */
int virtio_fs_create(struct virtio_dev *d, const struct virtio_fs_cfg *cfg,
		     const struct guest_mem *gm, struct evloop *ev,
		     uint64_t base, unsigned gsi, int irq_fd,
		     const struct virtio_mmio_hooks *hooks, struct kr_err *err);
/* Stop the rings (if active), virtio_dev_destroy(), close the connection
 * (virtiofsd then exits).  The I/O thread must not be running this
 * device's handlers any more (stop it first, as for every device). */
void virtio_fs_destroy(struct virtio_dev *d);

/* 1..36 bytes, no control characters (the tag becomes the guest's mount
 * source; Linux refuses a newline in it). */
int virtio_fs_check_tag(const char *tag, struct kr_err *err);

#endif
