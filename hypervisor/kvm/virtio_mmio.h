/* virtio-mmio (version 2) transport: the register window of one device, the
 * status and feature handshake, queue set-up, and the glue between a
 * device model and its virtqueues, kick eventfds and interrupt line.
 * ../shared/specs/microvm.md section 4.
 *
 * A device model (virtio_rng.c, virtio_blk.c, virtio_vsock.c, virtio_fs.c,
 * virtio_net.c) fills a struct virtio_dev_ops and calls virtio_dev_init();
 * the VMM maps the window with bus_register(..., virtio_mmio_rw, dev) and
 * announces it with virtio_mmio_cmdline().
 *
 * Threads and locking: MMIO accesses arrive on vCPU threads, kicks and the
 * device's own host fds on the I/O thread (evloop.h).  d->lock serialises
 * them: every ops callback is called with it held, and a device's own
 * evloop handlers take it with virtio_dev_lock() before touching the device
 * or its queues.
 *
 * Kicks: one eventfd per queue.  With hooks->ioeventfd (KVM_IOEVENTFD) the
 * guest's write of q to QueueNotify signals kick_fd[q] in the kernel without
 * a VM exit; without it (unit tests) the MMIO handler signals it.  Unless
 * the device set d->external_queues (vhost-user: the backend polls the kick
 * fds), the transport watches the kick fds of ready queues from DRIVER_OK
 * until reset and calls ops->queue_notify(d, q).
 *
 * Interrupts: irq_fd is an eventfd; a write raises the device's line (the
 * VMM binds it to the GSI with KVM_IRQFD; tests read it). */
#ifndef KR_VMM_VIRTIO_MMIO_H
#define KR_VMM_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>

#include "kr/error.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtqueue.h"

#define VIRTIO_MMIO_WINDOW 0x1000u
#define VIRTIO_MAX_QUEUES 8u

/* Register offsets (VIRTIO_MMIO_*), status bits (VIRTIO_CONFIG_S_*),
 * InterruptStatus bits (VIRTIO_MMIO_INT_*), device ids and the
 * device-independent feature bits (bit numbers) come from the kernel's
 * UAPI headers, the ones the guest's driver is built from. */
#define VIRTIO_MMIO_MAGIC_VIRT		0x74726976u	/* "virt" */
#define VIRTIO_MMIO_VENDOR		0x4b52564du	/* "MVRK": kata-run VMM */

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;		/* "blk", "vsock": logs and errors */
	uint32_t device_id;
	unsigned num_queues;		/* <= VIRTIO_MAX_QUEUES */
	uint16_t queue_max;		/* QueueNumMax of every queue (power of 2) */
	/* Device config space at window offset 0x100 + off.  The transport
	 * checks off + len <= config_size; a read the device leaves
	 * unfilled reads as 0.  config_write may be NULL (writes dropped). */
	uint32_t config_size;
	void (*config_read)(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    unsigned len);
	void (*config_write)(struct virtio_dev *d, uint32_t off,
			     const uint8_t *data, unsigned len);
	/* DRIVER_OK: d->driver_features is final and every queue the driver
	 * made ready is set up in d->vq[] (d->vq[q].ready).  -1 refuses:
	 * the transport sets DEVICE_NEEDS_RESET. */
	int (*activate)(struct virtio_dev *d, struct kr_err *err);
	/* The driver reset the device after activate (or the VM is being
	 * torn down): stop using the queues and drop in-flight work. */
	void (*reset)(struct virtio_dev *d);
	/* Queue q was kicked; I/O thread.  Only between activate and reset,
	 * only for ready queues. */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
};

struct virtio_mmio_hooks {
	/* Bind guest writes of datamatch to addr (4 bytes) to fd
	 * (KVM_IOEVENTFD); assign=false unbinds.  NULL hook: the MMIO
	 * handler signals the kick fd itself. */
	int (*ioeventfd)(void *ctx, uint64_t addr, uint32_t datamatch, int fd,
			 bool assign, struct kr_err *err);
	void *ctx;
};

struct virtio_queue_regs {
	uint32_t num;
	uint64_t desc, avail, used;
	bool ready;
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv;			/* the device model's state */
	const struct guest_mem *gm;
	struct evloop *ev;
	pthread_mutex_t lock;
	uint64_t base;			/* window GPA */
	unsigned gsi;

	uint64_t device_features;	/* offered (VERSION_1 always included) */
	uint64_t driver_features;	/* accepted, final from FEATURES_OK */
	uint32_t status;
	bool active;			/* activate() succeeded, no reset since */
	bool external_queues;		/* set by the device: kick fds are not ours to poll */

	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	struct virtio_queue_regs qregs[VIRTIO_MAX_QUEUES];
	struct vq vq[VIRTIO_MAX_QUEUES];
	int kick_fd[VIRTIO_MAX_QUEUES];
	bool kick_watched[VIRTIO_MAX_QUEUES];
	int irq_fd;			/* not owned */
	atomic_uint isr;
	uint32_t config_generation;
	struct virtio_mmio_hooks hooks;
	bool ioeventfd_bound[VIRTIO_MAX_QUEUES];
};

/* Set up d for ops at window base/gsi.  features: the device-specific
 * feature bits offered (VERSION_1 is added).  hooks may be NULL.  Creates
 * the kick eventfds and binds them with hooks->ioeventfd. */
int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops,
		    void *priv, uint64_t features, const struct guest_mem *gm,
		    struct evloop *ev, uint64_t base, unsigned gsi, int irq_fd,
		    const struct virtio_mmio_hooks *hooks, struct kr_err *err);
/* Reset the device (ops->reset if active), unbind and close the kick fds.
 * irq_fd stays open (the caller's). */
void virtio_dev_destroy(struct virtio_dev *d);

/* bus_rw_fn of the window (opaque = the struct virtio_dev).  Registers are
 * 32-bit and 32-bit aligned; other accesses below 0x100 are ignored (reads
 * give 0).  Config space takes 1/2/4-byte accesses. */
void virtio_mmio_rw(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		    bool is_write);

/* "virtio_mmio.device=4K@0x<base>:<gsi>" into buf. -1 if it does not fit. */
int virtio_mmio_cmdline(const struct virtio_dev *d, char *buf, size_t size);

/* For device models, with d->lock held: */
/* After vq_push()es on queue q: raise the used-buffer interrupt if the
 * guest wants one (vq_need_notify). */
void virtio_dev_signal_used(struct virtio_dev *d, unsigned q);
/* OR bits into InterruptStatus and raise the line, unconditionally. */
void virtio_dev_raise(struct virtio_dev *d, uint32_t isr_bits);
/* The device cannot go on (a broken queue, a backend failure): log why,
 * set DEVICE_NEEDS_RESET and, after DRIVER_OK, raise a config interrupt.
 * Only this device stops; the VM goes on. */
void virtio_dev_fail(struct virtio_dev *d, const struct kr_err *why);

/* Queue q again from the I/O loop's next round (after the other devices
 * had their turn): a device that stopped at its per-kick budget. */
void virtio_dev_kick_self(struct virtio_dev *d, unsigned q);

/* Pop and answer chains of vq until the ring is empty (return 0), the
 * budget is used up (1, *budget counts down) or the guest broke the queue
 * (-1 with err). */
typedef int (*virtio_serve_fn)(struct virtio_dev *d, struct vq *vq,
			       unsigned *budget, struct kr_err *err);
/* The queue_notify loop of a device that answers each chain at once (blk,
 * rng): with kicks off, serve; interrupt as the guest wants; on a used-up
 * budget kick itself and return; on a broken queue fail the device; else
 * re-enable kicks and serve again what raced in. */
void virtio_dev_run_queue(struct virtio_dev *d, unsigned q, unsigned budget,
			  virtio_serve_fn serve);

static inline void virtio_dev_lock(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
}
static inline void virtio_dev_unlock(struct virtio_dev *d)
{
	pthread_mutex_unlock(&d->lock);
}
static inline bool virtio_has_feature(const struct virtio_dev *d, unsigned bit)
{
	return (d->driver_features >> bit) & 1;
}

#endif
