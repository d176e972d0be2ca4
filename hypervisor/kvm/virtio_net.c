/* virtio-net over a tap device (virtio_net.h). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kr/log.h"
#include "virtio_net.h"

#define BIT(n) (1ull << (n))

#define ETH_HDR_LEN 14u
#define NUM_BUFFERS_OFF 10u	/* le16 num_buffers in virtio_net_hdr_v1 */
#define CONFIG_SIZE 8u		/* mac[6], le16 status */
/* Frames per handler run: a busy guest or tap does not hold the device
 * lock (and the I/O thread) for ever. */
#define BUDGET 256u

struct net {
	struct virtio_dev *d;
	int tap_fd;
	char tap_name[IFNAMSIZ];
	uint8_t config[CONFIG_SIZE];
	bool tap_watched;	/* tap_fd registered in the evloop */
	bool tap_failed;	/* read error: receive stops for good */
	bool tx_failed_logged;
	bool rx_held;		/* rx_chain is popped, waiting for a frame */
	struct virtio_net_stats st;
	struct vq_chain rx_chain, tx_chain;
	struct vq_seg rx_segs[VIRTIO_NET_QUEUE_SIZE];
	struct vq_seg tx_segs[VIRTIO_NET_QUEUE_SIZE];
	uint8_t rx_buf[VIRTIO_NET_MAX_BUF];
	uint8_t tx_buf[VIRTIO_NET_MAX_BUF];
};

static void tap_ready(void *opaque, int fd, uint32_t events);

/* ---- tap ----------------------------------------------------------------- */

static int tap_open(const char *name, struct kr_err *err)
{
	struct ifreq ifr;
	int fd, hdr_len = VIRTIO_NET_HDR_LEN;

	if (!name || !name[0] || strlen(name) >= IFNAMSIZ)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "tap name \"%s\": empty or longer than %d bytes",
				  name ? name : "", IFNAMSIZ - 1);
	/* TUNSETIFF would create it: we only attach to the runtime's tap. */
	if (if_nametoindex(name) == 0) {
		if (errno == ENODEV)
			return kr_err_errno(err, ENOENT, "tap %s: no such device"
					    " (the runtime creates it)", name);
		return kr_err_sys(err, "tap %s: look up the device", name);
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return kr_err_sys(err, "tap %s: open /dev/net/tun", name);
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		kr_err_sys(err, "tap %s: TUNSETIFF (not a single-queue tap, or in use)",
			   name);
		goto fail;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
		kr_err_sys(err, "tap %s: TUNSETVNETHDRSZ %d", name, hdr_len);
		goto fail;
	}
	/* No offloads negotiated: the kernel must hand us finished frames. */
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0) {
		kr_err_sys(err, "tap %s: TUNSETOFFLOAD 0", name);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Poll the tap only while frames can go somewhere. */
static void tap_watch(struct net *np, bool on)
{
	struct kr_err err = { 0 };

	if (on && np->tap_failed)
		return;
	if (on == np->tap_watched)
		return;
	if (!on) {
		ev_del(np->d->ev, np->tap_fd);
		np->tap_watched = false;
		return;
	}
	if (ev_add(np->d->ev, np->tap_fd, EPOLLIN, tap_ready, np, &err) < 0) {
		kr_warn("virtio-net: tap %s: receive stops: %s", np->tap_name,
			err.msg);
		np->tap_failed = true;
		return;
	}
	np->tap_watched = true;
}

static void tap_fail(struct net *np, int errnum)
{
	kr_warn("virtio-net: read tap %s: %s; receive stops", np->tap_name,
		strerror(errnum));
	np->tap_failed = true;
	tap_watch(np, false);
}

/* ---- transmit ------------------------------------------------------------ */

/* One chain's frame to the tap, or dropped.  The chain goes back either
 * way (the caller pushes it with length 0). */
static void tx_one(struct net *np)
{
	const struct vq_chain *c = &np->tx_chain;
	uint32_t len = c->read_len;
	ssize_t n;

	if (len < VIRTIO_NET_HDR_LEN + ETH_HDR_LEN || len > VIRTIO_NET_MAX_BUF) {
		kr_debug("virtio-net: tx chain of %u bytes dropped (%u..%u)", len,
			 VIRTIO_NET_HDR_LEN + ETH_HDR_LEN, VIRTIO_NET_MAX_BUF);
		np->st.tx_dropped++;
		return;
	}
	/* One copy: the guest may rewrite its buffers while we look. */
	len = (uint32_t)vq_chain_read(c, 0, np->tx_buf, len);
	/* No offload was negotiated, so the header means nothing; zero it
	 * rather than hand the host kernel GSO/checksum requests. */
	memset(np->tx_buf, 0, VIRTIO_NET_HDR_LEN);
	do
		n = write(np->tap_fd, np->tx_buf, len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len) {
		np->st.tx_frames++;
		np->st.tx_bytes += len - VIRTIO_NET_HDR_LEN;
		return;
	}
	np->st.tx_dropped++;
	if (!np->tx_failed_logged) {
		/* Once: a guest must not be able to flood the log. */
		kr_warn("virtio-net: write tap %s (%u bytes): %s", np->tap_name,
			len, n < 0 ? strerror(errno) : "short write");
		np->tx_failed_logged = true;
	}
}

/* Ask the transport to call us again: the budget ran out while the guest
 * had more, and with kicks disabled it would not tell us. */
static void tx_reschedule(struct net *np)
{
	uint64_t one = 1;

	if (write(np->d->kick_fd[VIRTIO_NET_TXQ], &one, sizeof(one)) < 0) {
		/* Saturated counter: a kick is pending anyway. */
	}
}

static void tx_process(struct net *np)
{
	struct virtio_dev *d = np->d;
	struct vq *vq = &d->vq[VIRTIO_NET_TXQ];
	struct kr_err err = { 0 };
	unsigned budget = BUDGET;
	int r;

	do {
		vq_disable_notify(vq);
		while ((r = vq_pop(vq, d->gm, &np->tx_chain, &err)) == 1) {
			tx_one(np);
			if (vq_push(vq, np->tx_chain.head, 0, &err) < 0) {
				r = -1;
				break;
			}
			if (!--budget) {
				tx_reschedule(np);
				goto out;
			}
		}
		if (r < 0) {
			kr_err_wrap(&err, "tx queue");
			virtio_dev_fail(d, &err);
			break;
		}
	} while (vq_enable_notify(vq));
out:
	virtio_dev_signal_used(d, VIRTIO_NET_TXQ);
}

/* ---- receive ------------------------------------------------------------- */

/* 1: np->rx_chain holds a chain; 0: none (the tap is no longer polled);
 * -1: the queue broke. */
static int rx_take_chain(struct net *np)
{
	struct virtio_dev *d = np->d;
	struct vq *vq = &d->vq[VIRTIO_NET_RXQ];
	struct kr_err err = { 0 };
	int r;

	/* Only we pop rx chains: a held chain with nothing in flight means
	 * the driver reset the queue and set it up again meanwhile. */
	if (np->rx_held && vq->inflight == 0)
		np->rx_held = false;
	if (np->rx_held)
		return 1;
	if (!vq->ready || vq->broken) {
		tap_watch(np, false);
		return 0;
	}
	for (;;) {
		r = vq_pop(vq, d->gm, &np->rx_chain, &err);
		if (r == 1) {
			np->rx_held = true;
			return 1;
		}
		if (r < 0) {
			kr_err_wrap(&err, "rx queue");
			virtio_dev_fail(d, &err);
			tap_watch(np, false);
			return -1;
		}
		/* Empty: wait for the guest's kick, unless it added buffers
		 * since we looked. */
		if (!vq_enable_notify(vq)) {
			tap_watch(np, false);
			return 0;
		}
	}
}

/* Hand the held chain back with len bytes written. */
static int rx_push(struct net *np, uint32_t len)
{
	struct kr_err err = { 0 };

	np->rx_held = false;
	if (vq_push(&np->d->vq[VIRTIO_NET_RXQ], np->rx_chain.head, len, &err) < 0) {
		kr_err_wrap(&err, "rx queue");
		virtio_dev_fail(np->d, &err);
		tap_watch(np, false);
		return -1;
	}
	return 0;
}

/* Move one frame from the tap into the held chain.  1: a frame was
 * consumed (delivered or dropped); 0: the tap is empty; -1: stop. */
static int rx_one(struct net *np, uint32_t events)
{
	const struct vq_chain *c = &np->rx_chain;
	uint8_t *hdr = np->rx_buf;
	uint16_t one = htole16(1);
	ssize_t n;

	n = read(np->tap_fd, np->rx_buf, sizeof(np->rx_buf));
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			tap_fail(np, errno);
			return -1;
		}
		/* Hung up yet nothing to read: stop rather than spin. */
		if (events & (EPOLLERR | EPOLLHUP)) {
			tap_fail(np, EIO);
			return -1;
		}
		return 0;
	}
	/* The tap reports the whole frame's length even when it had to cut
	 * it to our buffer; not the guest's fault: keep its chain. */
	if (n > (ssize_t)sizeof(np->rx_buf) || n < VIRTIO_NET_HDR_LEN + ETH_HDR_LEN) {
		np->st.rx_dropped++;
		return 1;
	}
	if ((uint32_t)n > c->write_len) {
		np->st.rx_dropped++;
		return rx_push(np, 0) < 0 ? -1 : 1;
	}
	memset(hdr, 0, VIRTIO_NET_HDR_LEN);
	memcpy(hdr + NUM_BUFFERS_OFF, &one, sizeof(one));
	vq_chain_write(c, 0, np->rx_buf, (size_t)n);
	np->st.rx_frames++;
	np->st.rx_bytes += (uint64_t)n - VIRTIO_NET_HDR_LEN;
	return rx_push(np, (uint32_t)n) < 0 ? -1 : 1;
}

static void rx_process(struct net *np, uint32_t events)
{
	unsigned budget = BUDGET;
	uint16_t before = np->d->vq[VIRTIO_NET_RXQ].used_idx;

	while (budget-- && rx_take_chain(np) == 1 && rx_one(np, events) == 1)
		;
	if (np->d->vq[VIRTIO_NET_RXQ].used_idx != before)
		virtio_dev_signal_used(np->d, VIRTIO_NET_RXQ);
}

/* I/O thread: the tap has frames for the guest. */
static void tap_ready(void *opaque, int fd, uint32_t events)
{
	struct net *np = opaque;
	struct virtio_dev *d = np->d;

	virtio_dev_lock(d);
	/* A reset may have run between the event and the lock. */
	if (d->active && np->tap_watched && fd == np->tap_fd)
		rx_process(np, events);
	virtio_dev_unlock(d);
}

/* ---- virtio_dev_ops ------------------------------------------------------ */

static void net_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    unsigned len)
{
	struct net *np = d->priv;

	/* The transport checked off + len <= CONFIG_SIZE. */
	memcpy(data, np->config + off, len);
}

static int net_activate(struct virtio_dev *d, struct kr_err *err)
{
	struct net *np = d->priv;

	np->rx_held = false;
	if (d->vq[VIRTIO_NET_RXQ].ready)
		tap_watch(np, true);
	return 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct net *np = d->priv;

	/* Frames queued in the tap stay there for the next driver. */
	tap_watch(np, false);
	np->rx_held = false;
}

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct net *np = d->priv;

	if (q == VIRTIO_NET_TXQ)
		tx_process(np);
	else if (q == VIRTIO_NET_RXQ)
		tap_watch(np, true);	/* new buffers: read the tap again */
}

static const struct virtio_dev_ops net_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.num_queues = 2,
	.queue_max = VIRTIO_NET_QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.config_read = net_config_read,
	.config_write = NULL,	/* mac is read-only for a VERSION_1 driver */
	.activate = net_activate,
	.reset = net_reset,
	.queue_notify = net_queue_notify,
};

/* ---- life cycle ---------------------------------------------------------- */

int virtio_net_create(struct virtio_dev *d, struct evloop *ev,
		      const struct guest_mem *gm, uint64_t base, unsigned gsi,
		      int irq_fd, const struct virtio_mmio_hooks *hooks,
		      const char *tap_name, const uint8_t mac[6],
		      struct kr_err *err)
{
	uint64_t features = BIT(VIRTIO_NET_F_STATUS);
	struct net *np;
	int fd;

	memset(d, 0, sizeof(*d));
	if (!ev)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "virtio-net: an event loop is required");
	fd = tap_open(tap_name, err);
	if (fd < 0)
		return kr_err_wrap(err, "virtio-net");
	np = calloc(1, sizeof(*np));
	if (!np) {
		close(fd);
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
				  "virtio-net: tap %s: out of memory", tap_name);
	}
	np->d = d;
	np->tap_fd = fd;
	memcpy(np->tap_name, tap_name, strlen(tap_name) + 1);
	vq_chain_init(&np->rx_chain, np->rx_segs, VIRTIO_NET_QUEUE_SIZE);
	vq_chain_init(&np->tx_chain, np->tx_segs, VIRTIO_NET_QUEUE_SIZE);
	if (mac) {
		memcpy(np->config, mac, 6);
		features |= BIT(VIRTIO_NET_F_MAC);
	}
	np->config[6] = VIRTIO_NET_S_LINK_UP;	/* le16 status */
	if (virtio_dev_init(d, &net_ops, np, features, gm, ev, base, gsi, irq_fd,
			    hooks, err) < 0) {
		close(fd);
		free(np);
		return kr_err_wrap(err, "virtio-net: tap %s", tap_name);
	}
	return 0;
}

void virtio_net_destroy(struct virtio_dev *d)
{
	struct net *np = d->priv;

	if (d->ops != &net_ops)
		return;
	virtio_dev_destroy(d);	/* resets: the tap is no longer polled */
	ev_del(d->ev, np->tap_fd);
	close(np->tap_fd);
	free(np);
	d->priv = NULL;
}

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *st)
{
	struct net *np = d->priv;

	virtio_dev_lock(d);
	*st = np->st;
	virtio_dev_unlock(d);
}
