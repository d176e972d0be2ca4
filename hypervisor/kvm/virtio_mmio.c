/* virtio-mmio version 2 transport (virtio_mmio.h). */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kr/log.h"
#include "virtio_mmio.h"

#define BIT(n) (1ull << (n))

static void kick_handler(void *opaque, int fd, uint32_t events);

int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops,
		    void *priv, uint64_t features, const struct guest_mem *gm,
		    struct evloop *ev, uint64_t base, unsigned gsi, int irq_fd,
		    const struct virtio_mmio_hooks *hooks, struct kr_err *err)
{
	memset(d, 0, sizeof(*d));
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->kick_fd[q] = -1;
	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES ||
	    ops->queue_max == 0 || (ops->queue_max & (ops->queue_max - 1))) {
		kr_err_set(err, KR_INVALID_ARGUMENT,
			   "virtio-%s: bad queue shape (%u queues of %u)", ops->name,
			   ops->num_queues, ops->queue_max);
		return -1;
	}
	d->ops = ops;
	d->priv = priv;
	d->gm = gm;
	d->ev = ev;
	d->base = base;
	d->gsi = gsi;
	d->irq_fd = irq_fd;
	d->device_features = features | BIT(VIRTIO_F_VERSION_1);
	if (hooks)
		d->hooks = *hooks;
	pthread_mutex_init(&d->lock, NULL);
	for (unsigned q = 0; q < ops->num_queues; q++) {
		d->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->kick_fd[q] < 0) {
			kr_err_sys(err, "virtio-%s: eventfd for queue %u", ops->name, q);
			goto fail;
		}
		if (d->hooks.ioeventfd) {
			if (d->hooks.ioeventfd(d->hooks.ctx, base + VIRTIO_MMIO_QUEUE_NOTIFY,
					       q, d->kick_fd[q], true, err) < 0) {
				kr_err_wrap(err, "virtio-%s: queue %u notify", ops->name, q);
				goto fail;
			}
			d->ioeventfd_bound[q] = true;
		}
	}
	return 0;
fail:
	virtio_dev_destroy(d);
	return -1;
}

/* ---- kicks -------------------------------------------------------------- */

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

static void watch_kicks(struct virtio_dev *d)
{
	struct kr_err err = { 0 };

	if (d->external_queues || !d->ev)
		return;
	for (unsigned q = 0; q < d->ops->num_queues; q++) {
		if (!d->vq[q].ready || d->kick_watched[q])
			continue;
		if (ev_add(d->ev, d->kick_fd[q], EPOLLIN, kick_handler, d, &err) < 0) {
			virtio_dev_fail(d, &err);
			return;
		}
		d->kick_watched[q] = true;
	}
}

static void unwatch_kicks(struct virtio_dev *d)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (d->kick_watched[q])
			ev_del(d->ev, d->kick_fd[q]);
		d->kick_watched[q] = false;
		if (d->kick_fd[q] >= 0)
			drain(d->kick_fd[q]);
	}
}

static void kick_handler(void *opaque, int fd, uint32_t events)
{
	struct virtio_dev *d = opaque;

	drain(fd);
	virtio_dev_lock(d);
	for (unsigned q = 0; q < d->ops->num_queues; q++) {
		/* A reset may have run between the event and the lock. */
		if (d->kick_fd[q] == fd && d->active && d->vq[q].ready &&
		    !d->vq[q].broken)
			d->ops->queue_notify(d, q);
	}
	virtio_dev_unlock(d);
}

/* ---- status ------------------------------------------------------------- */

static void device_reset(struct virtio_dev *d)
{
	if (d->active && d->ops->reset)
		d->ops->reset(d);
	d->active = false;
	unwatch_kicks(d);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vq_reset(&d->vq[q]);
	memset(d->qregs, 0, sizeof(d->qregs));
	d->driver_features = 0;
	d->status = 0;
	d->dev_feat_sel = d->drv_feat_sel = d->queue_sel = 0;
	atomic_store(&d->isr, 0);
}

/* Take over queue q as the driver described it.  Both paths (DRIVER_OK and
 * a queue enabled after it) come through here, so both enforce queue_max:
 * device models may size per-queue state by it. */
static int setup_queue(struct virtio_dev *d, unsigned q, struct kr_err *err)
{
	const struct virtio_queue_regs *r = &d->qregs[q];

	if (r->num > d->ops->queue_max) {
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "virtio-%s: queue %u size %u above the maximum %u",
				  d->ops->name, q, r->num, d->ops->queue_max);
	}
	if (vq_setup(&d->vq[q], d->gm, r->num, r->desc, r->avail, r->used,
		     d->driver_features, err) < 0)
		return kr_err_wrap(err, "virtio-%s: queue %u", d->ops->name, q);
	return 0;
}

/* DRIVER_OK: take over the queues the driver made ready, then start the
 * device. */
static int device_activate(struct virtio_dev *d, struct kr_err *err)
{
	for (unsigned q = 0; q < d->ops->num_queues; q++) {
		if (d->qregs[q].ready && setup_queue(d, q, err) < 0)
			return -1;
	}
	if (d->ops->activate && d->ops->activate(d, err) < 0)
		return kr_err_wrap(err, "virtio-%s: activate", d->ops->name);
	d->active = true;
	watch_kicks(d);
	return 0;
}

static void write_status(struct virtio_dev *d, uint32_t v)
{
	uint32_t added = v & ~d->status;
	struct kr_err err = { 0 };

	if (v == 0) {
		device_reset(d);
		return;
	}
	if (added & VIRTIO_CONFIG_S_FEATURES_OK) {
		/* Accept only a subset of what we offered, with VERSION_1;
		 * otherwise leave FEATURES_OK unset: the driver reads the
		 * status back and gives up. */
		if ((d->driver_features & ~d->device_features) ||
		    !(d->driver_features & BIT(VIRTIO_F_VERSION_1))) {
			kr_debug("virtio-%s: refused driver features 0x%" PRIx64
				 " (offered 0x%" PRIx64 ")", d->ops->name,
				 d->driver_features, d->device_features);
			v &= ~VIRTIO_CONFIG_S_FEATURES_OK;
		}
	}
	/* Bits only go away through a reset. */
	d->status |= v & ~VIRTIO_CONFIG_S_NEEDS_RESET;
	if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && !d->active &&
	    !(d->status & VIRTIO_CONFIG_S_NEEDS_RESET)) {
		if (!(d->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
			kr_err_set(&err, KR_FAILED_PRECONDITION,
				   "virtio-%s: DRIVER_OK without FEATURES_OK", d->ops->name);
			virtio_dev_fail(d, &err);
		} else if (device_activate(d, &err) < 0) {
			virtio_dev_fail(d, &err);
		}
	}
}

/* ---- registers ---------------------------------------------------------- */

static void set_low(uint64_t *v, uint32_t lo)
{
	*v = (*v & 0xffffffff00000000ull) | lo;
}

static void set_high(uint64_t *v, uint32_t hi)
{
	*v = (*v & 0xffffffffull) | (uint64_t)hi << 32;
}

static struct virtio_queue_regs *sel_queue(struct virtio_dev *d)
{
	return d->queue_sel < d->ops->num_queues ? &d->qregs[d->queue_sel] : NULL;
}

static uint32_t reg_read(struct virtio_dev *d, uint64_t off)
{
	struct virtio_queue_regs *qr = sel_queue(d);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC_VIRT;
	case VIRTIO_MMIO_VERSION: return 2;
	case VIRTIO_MMIO_DEVICE_ID: return d->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (d->dev_feat_sel > 1)
			return 0;
		return (uint32_t)(d->device_features >> (32 * d->dev_feat_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX: return qr ? d->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY: return qr ? qr->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS: return atomic_load(&d->isr);
	case VIRTIO_MMIO_STATUS: return d->status;
	case VIRTIO_MMIO_CONFIG_GENERATION: return d->config_generation;
	/* No shared memory regions: length and base read as all-ones. */
	case VIRTIO_MMIO_SHM_LEN_LOW: case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW: case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffffu;
	default: return 0;
	}
}

/* A queue that is ready, or that the device already took over, cannot be
 * reconfigured (spec 4.2.3.2); such writes are dropped. */
static struct virtio_queue_regs *queue_writable(struct virtio_dev *d)
{
	struct virtio_queue_regs *qr = sel_queue(d);

	return qr && !qr->ready ? qr : NULL;
}

static void queue_ready(struct virtio_dev *d, uint32_t v)
{
	struct virtio_queue_regs *qr = sel_queue(d);
	unsigned q = d->queue_sel;
	struct kr_err err = { 0 };

	if (!qr)
		return;
	if (!v) {
		/* Stopping one queue: forget it; the device's own state for
		 * it is dropped by the next reset. */
		qr->ready = false;
		if (d->kick_watched[q]) {
			ev_del(d->ev, d->kick_fd[q]);
			d->kick_watched[q] = false;
		}
		vq_reset(&d->vq[q]);
		return;
	}
	/* Already ready: nothing to do.  Without this check a second write
	 * of 1 after DRIVER_OK ran vq_setup() again on the live queue,
	 * zeroing its indices and in-flight count under the device. */
	if (qr->ready)
		return;
	qr->ready = true;
	if (d->active) {
		/* Enabled after DRIVER_OK: take it over now. */
		if (setup_queue(d, q, &err) < 0) {
			virtio_dev_fail(d, &err);
			return;
		}
		watch_kicks(d);
	}
}

static void notify(struct virtio_dev *d, uint32_t q)
{
	uint64_t one = 1;

	if (q >= d->ops->num_queues)
		return;
	/* With an ioeventfd this exit only happens for writes the kernel
	 * did not match; signalling the fd is right in both cases. */
	if (write(d->kick_fd[q], &one, sizeof(one)) < 0) {
		/* Counter saturated: a kick is pending anyway. */
	}
}

static void reg_write(struct virtio_dev *d, uint64_t off, uint32_t v)
{
	struct virtio_queue_regs *qw = queue_writable(d);
	bool features_open = (d->status & VIRTIO_CONFIG_S_DRIVER) &&
			     !(d->status & VIRTIO_CONFIG_S_FEATURES_OK);

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL: d->dev_feat_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL: d->drv_feat_sel = v; break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (!features_open || d->drv_feat_sel > 1)
			break;
		if (d->drv_feat_sel == 0)
			set_low(&d->driver_features, v);
		else
			set_high(&d->driver_features, v);
		break;
	case VIRTIO_MMIO_QUEUE_SEL: d->queue_sel = v; break;
	case VIRTIO_MMIO_QUEUE_NUM: if (qw) qw->num = v; break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW: if (qw) set_low(&qw->desc, v); break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH: if (qw) set_high(&qw->desc, v); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW: if (qw) set_low(&qw->avail, v); break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: if (qw) set_high(&qw->avail, v); break;
	case VIRTIO_MMIO_QUEUE_USED_LOW: if (qw) set_low(&qw->used, v); break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH: if (qw) set_high(&qw->used, v); break;
	case VIRTIO_MMIO_QUEUE_READY: queue_ready(d, v); break;
	case VIRTIO_MMIO_QUEUE_NOTIFY: notify(d, v); break;
	case VIRTIO_MMIO_INTERRUPT_ACK: atomic_fetch_and(&d->isr, ~v); break;
	case VIRTIO_MMIO_STATUS: write_status(d, v); break;
	default: break;		/* read-only or unknown: dropped */
	}
}

/* off is 64-bit: truncating it first would let an offset 4 GiB up alias
 * offset 0 for a caller whose window is bigger than ours. */
static void config_access(struct virtio_dev *d, uint64_t off, uint8_t *data,
			  unsigned len, bool is_write)
{
	if (off > d->ops->config_size || len > d->ops->config_size - off) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write) {
		if (d->ops->config_write)
			d->ops->config_write(d, (uint32_t)off, data, len);
		return;
	}
	memset(data, 0, len);
	if (d->ops->config_read)
		d->ops->config_read(d, (uint32_t)off, data, len);
}

void virtio_mmio_rw(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		    bool is_write)
{
	struct virtio_dev *d = opaque;
	uint32_t v;

	virtio_dev_lock(d);
	if (off >= VIRTIO_MMIO_CONFIG) {
		if (len == 1 || len == 2 || len == 4)
			config_access(d, off - VIRTIO_MMIO_CONFIG, data, len, is_write);
		else if (!is_write)
			memset(data, 0, len);
	} else if (len != 4 || (off & 3)) {
		/* Registers are 32-bit, aligned (spec 4.2.2.2). */
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		memcpy(&v, data, 4);
		reg_write(d, off, le32toh(v));
	} else {
		v = htole32(reg_read(d, off));
		memcpy(data, &v, 4);
	}
	virtio_dev_unlock(d);
}

/* ---- helpers for device models ----------------------------------------- */

void virtio_dev_raise(struct virtio_dev *d, uint32_t isr_bits)
{
	uint64_t one = 1;

	atomic_fetch_or(&d->isr, isr_bits);
	if (d->irq_fd >= 0 && write(d->irq_fd, &one, sizeof(one)) < 0) {
		/* Saturated counter: an interrupt is pending anyway. */
	}
}

void virtio_dev_signal_used(struct virtio_dev *d, unsigned q)
{
	if (q < d->ops->num_queues && vq_need_notify(&d->vq[q]))
		virtio_dev_raise(d, VIRTIO_MMIO_INT_VRING);
}

void virtio_dev_fail(struct virtio_dev *d, const struct kr_err *why)
{
	kr_warn("virtio-%s at 0x%" PRIx64 " needs a reset: %s", d->ops->name,
		d->base, why && why->msg[0] ? why->msg : "device error");
	d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (d->status & VIRTIO_CONFIG_S_DRIVER_OK) {
		d->config_generation++;
		virtio_dev_raise(d, VIRTIO_MMIO_INT_CONFIG);
	}
}

void virtio_dev_kick_self(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;

	if (q < d->ops->num_queues && write(d->kick_fd[q], &one, sizeof(one)) < 0) {
		/* Saturated counter: a kick is pending anyway. */
	}
}

void virtio_dev_run_queue(struct virtio_dev *d, unsigned q, unsigned budget,
			  virtio_serve_fn serve)
{
	struct vq *vq = &d->vq[q];
	struct kr_err err = { 0 };
	int rc;

	do {
		vq_disable_notify(vq);
		rc = serve(d, vq, &budget, &err);
		if (rc < 0) {
			virtio_dev_fail(d, &err);
			return;
		}
		virtio_dev_signal_used(d, q);
		if (rc > 0) {
			virtio_dev_kick_self(d, q);
			return;
		}
	} while (vq_enable_notify(vq));
}

int virtio_mmio_cmdline(const struct virtio_dev *d, char *buf, size_t size)
{
	int n = snprintf(buf, size, "virtio_mmio.device=4K@0x%" PRIx64 ":%u",
			 d->base, d->gsi);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	struct kr_err err = { 0 };

	if (!d->ops)
		return;
	virtio_dev_lock(d);
	device_reset(d);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (d->ioeventfd_bound[q])
			d->hooks.ioeventfd(d->hooks.ctx, d->base + VIRTIO_MMIO_QUEUE_NOTIFY,
					   q, d->kick_fd[q], false, &err);
		d->ioeventfd_bound[q] = false;
		if (d->kick_fd[q] >= 0)
			close(d->kick_fd[q]);
		d->kick_fd[q] = -1;
	}
	virtio_dev_unlock(d);
	pthread_mutex_destroy(&d->lock);
	d->ops = NULL;
}
