/* virtio-rng (virtio_rng.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "kr/util.h"
#include "virtio_rng.h"

struct rng {
	/* A direct chain has at most QueueNumMax descriptors; a longer
	 * (indirect) one is refused by vq_pop and breaks the queue. */
	struct vq_seg seg[VIRTIO_RNG_QUEUE_MAX];
	struct vq_chain chain;
};

/* Fill [p, p + len) with random bytes.  getrandom() may return less than
 * asked (signals, requests above 32 MiB), hence the loop. */
static int random_bytes(uint8_t *p, size_t len, struct kr_err *err)
{
	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kr_err_sys(err, "virtio-rng: getrandom");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Fill the writable part of c, at most VIRTIO_RNG_MAX_REQUEST bytes;
 * *filled: how many. */
static int fill_chain(const struct vq_chain *c, uint32_t *filled,
		      struct kr_err *err)
{
	uint32_t done = 0;

	for (unsigned i = c->nread; i < c->nseg; i++) {
		const struct vq_seg *s = &c->seg[i];
		uint32_t n = s->len;

		if (n > VIRTIO_RNG_MAX_REQUEST - done)
			n = VIRTIO_RNG_MAX_REQUEST - done;
		if (n == 0)
			break;
		if (random_bytes(s->ptr, n, err) < 0)
			return -1;
		done += n;
	}
	*filled = done;
	return 0;
}

/* Serve chains until the ring is empty (0) or *budget runs out (1);
 * -1: the queue is broken or the host failed. */
static int serve(struct virtio_dev *d, struct vq *vq, unsigned *budget,
		 struct kr_err *err)
{
	struct rng *r = d->priv;
	uint32_t filled;
	int rc;

	while (*budget) {
		rc = vq_pop(vq, d->gm, &r->chain, err);
		if (rc <= 0)
			return rc;
		(*budget)--;
		if (fill_chain(&r->chain, &filled, err) < 0 ||
		    vq_push(vq, r->chain.head, filled, err) < 0)
			return -1;
	}
	return 1;
}

static void rng_queue_notify(struct virtio_dev *d, unsigned q)
{
	virtio_dev_run_queue(d, q, VIRTIO_RNG_BATCH, serve);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.num_queues = 1,
	.queue_max = VIRTIO_RNG_QUEUE_MAX,
	.queue_notify = rng_queue_notify,
};

int virtio_rng_create(struct virtio_dev *d, struct evloop *ev,
		      const struct guest_mem *gm, uint64_t base, unsigned gsi,
		      int irq_fd, const struct virtio_mmio_hooks *hooks,
		      struct kr_err *err)
{
	struct rng *r;

	memset(d, 0, sizeof(*d));	/* destroy is safe whatever fails */
	r = calloc(1, sizeof(*r));
	if (!r)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
				  "virtio-rng: out of memory");
	vq_chain_init(&r->chain, r->seg, KR_ARRAY_SIZE(r->seg));
	if (virtio_dev_init(d, &rng_ops, r, 0, gm, ev, base, gsi, irq_fd,
			    hooks, err) < 0) {
		free(r);
		return -1;
	}
	return 0;
}

void virtio_rng_destroy(struct virtio_dev *d)
{
	struct rng *r = d->priv;

	if (!d->ops)
		return;
	virtio_dev_destroy(d);
	free(r);
	d->priv = NULL;
}
