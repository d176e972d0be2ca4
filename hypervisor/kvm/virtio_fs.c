/* virtio-fs device model over vhost-user (virtio_fs.h). */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/util.h"
#include "virtio_fs.h"

#define BIT(n) (1ull << (n))

/* Ring features virtiofsd implements and the guest may use.  Not
 * NOTIFY_ON_EMPTY (legacy only), not VHOST_F_LOG_ALL or the protocol bit
 * (vhost-user's own), not VIRTIO_FS_F_NOTIFICATION (Linux has no
 * notification queue). */
#define VFS_PASSTHROUGH (BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_F_EVENT_IDX))

struct virtio_fs;

struct vfs_queue {
	struct virtio_fs *fs;
	int call_fd;		/* ours: virtiofsd signals it, we interrupt */
	bool started;		/* handed to virtiofsd (SET_VRING_KICK sent) */
	bool watched;		/* call_fd in the event loop */
};

struct virtio_fs {
	struct virtio_dev *dev;
	struct vhost_user *vu;
	char *socket_path;
	uint64_t backend_features;
	struct vu_mem_region mem[VU_MAX_REGIONS];
	unsigned nmem;
	uint8_t config[VIRTIO_FS_CONFIG_SIZE];
	struct vfs_queue q[VIRTIO_FS_NUM_QUEUES];
	bool sock_watched;
};

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

int virtio_fs_check_tag(const char *tag, struct kr_err *err)
{
	size_t n = tag ? strlen(tag) : 0;

	if (n == 0 || n > VIRTIO_FS_TAG_MAX)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "virtio-fs: tag \"%s\" is %zu bytes, must be 1..%d",
				  tag ? tag : "", n, VIRTIO_FS_TAG_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)tag[i];

		if (c < 0x20 || c == 0x7f)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "virtio-fs: tag contains control character 0x%02x at byte %zu",
					  c, i);
	}
	return 0;
}

/* ---- event handlers (I/O thread) ----------------------------------------- */

/* virtiofsd used buffers of one queue: tell the guest, with InterruptStatus
 * bit 0 set so that its handler looks at the rings. */
static void on_call(void *opaque, int fd, uint32_t events)
{
	struct vfs_queue *fq = opaque;
	struct virtio_dev *d = fq->fs->dev;

	drain(fd);
	virtio_dev_lock(d);
	if (fq->watched)
		virtio_dev_raise(d, VIRTIO_MMIO_INT_VRING);
	virtio_dev_unlock(d);
}

/* The socket is only readable between requests if virtiofsd died, or
 * misbehaves: fail the device.  (A reply the vCPU thread is waiting for
 * wakes this too; the device lock makes us wait until it is consumed.) */
static void on_socket(void *opaque, int fd, uint32_t events)
{
	struct virtio_fs *fs = opaque;
	struct virtio_dev *d = fs->dev;
	struct kr_err err = { 0 };

	virtio_dev_lock(d);
	if (fs->sock_watched && vu_check_alive(fs->vu, &err) < 0) {
		ev_del(d->ev, fd);
		fs->sock_watched = false;
		kr_err_wrap(&err, "virtiofsd at %s", fs->socket_path);
		virtio_dev_fail(d, &err);
	}
	virtio_dev_unlock(d);
}

/* ---- rings --------------------------------------------------------------- */

/* Take back every ring virtiofsd has (GET_VRING_BASE stops it) and stop
 * listening to its call fds.  Best effort: a dead virtiofsd has nothing
 * left to stop. */
static void stop_queues(struct virtio_fs *fs)
{
	struct virtio_dev *d = fs->dev;
	bool logged = false;

	for (unsigned q = 0; q < VIRTIO_FS_NUM_QUEUES; q++) {
		struct vfs_queue *fq = &fs->q[q];
		struct kr_err err = { 0 };

		if (fq->started && vu_stop_vring(fs->vu, q, NULL, &err) < 0 &&
		    !logged) {
			kr_warn("virtio-fs: virtiofsd at %s: stop: %s", fs->socket_path,
				err.msg);
			logged = true;
		}
		fq->started = false;
		if (fq->watched)
			ev_del(d->ev, fq->call_fd);
		fq->watched = false;
		drain(fq->call_fd);
	}
}

static int start_queue(struct virtio_fs *fs, unsigned q, struct kr_err *err)
{
	struct virtio_dev *d = fs->dev;
	const struct vq *vq = &d->vq[q];
	struct vfs_queue *fq = &fs->q[q];
	/* The transport validated the rings (vq_setup): their host
	 * addresses are what vhost-user wants. */
	struct vu_vring r = {
		.index = q,
		.num = vq->size,
		.desc = vq->desc,
		.avail = vq->avail,
		.used = vq->used,
		.base = vq->last_avail_idx,
		.kick_fd = d->kick_fd[q],
		.call_fd = fq->call_fd,
	};

	drain(fq->call_fd);
	if (vu_setup_vring(fs->vu, &r, err) < 0)
		return -1;
	fq->started = true;
	/* Signals virtiofsd sent meanwhile stay in the eventfd. */
	if (ev_add(d->ev, fq->call_fd, EPOLLIN, on_call, fq, err) < 0)
		return kr_err_wrap(err, "watch queue %u", q);
	fq->watched = true;
	return 0;
}

/* ---- virtio_dev_ops ------------------------------------------------------ */

static void vfs_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    unsigned len)
{
	struct virtio_fs *fs = d->priv;

	if (off > sizeof(fs->config) || len > sizeof(fs->config) - off)
		return;
	memcpy(data, fs->config + off, len);
}

/* DRIVER_OK: hand the negotiated features, guest memory and the ready
 * rings to virtiofsd (section 7.4). */
static int vfs_activate(struct virtio_dev *d, struct kr_err *err)
{
	struct virtio_fs *fs = d->priv;
	uint64_t features = d->driver_features & fs->backend_features;

	features |= fs->backend_features & VHOST_USER_F_PROTOCOL_FEATURES_MASK;
	if (vu_set_features(fs->vu, features, err) < 0 ||
	    vu_set_mem_table(fs->vu, fs->mem, fs->nmem, err) < 0)
		goto fail;
	for (unsigned q = 0; q < VIRTIO_FS_NUM_QUEUES; q++) {
		if (d->vq[q].ready && start_queue(fs, q, err) < 0)
			goto fail;
	}
	return 0;
fail:
	/* Not active: the transport will not call reset for us. */
	stop_queues(fs);
	return kr_err_wrap(err, "virtiofsd at %s", fs->socket_path);
}

static void vfs_reset(struct virtio_dev *d)
{
	stop_queues(d->priv);
}

static const struct virtio_dev_ops virtio_fs_ops = {
	.name = "fs",
	.device_id = VIRTIO_ID_FS,
	.num_queues = VIRTIO_FS_NUM_QUEUES,
	.queue_max = VIRTIO_FS_QUEUE_MAX,
	.config_size = VIRTIO_FS_CONFIG_SIZE,
	.config_read = vfs_config_read,
	.activate = vfs_activate,
	.reset = vfs_reset,
	/* No queue_notify: virtiofsd polls the kick fds itself. */
};

/* ---- creation ------------------------------------------------------------ */

static void build_config(struct virtio_fs *fs, const char *tag)
{
	uint32_t nrq = htole32(VIRTIO_FS_NUM_QUEUES - 1);

	memset(fs->config, 0, sizeof(fs->config));
	memcpy(fs->config, tag, strlen(tag));
	memcpy(fs->config + VIRTIO_FS_TAG_MAX, &nrq, sizeof(nrq));
}

/* Features, protocol features and owner; then what we can offer. */
static int negotiate(struct virtio_fs *fs, int timeout_ms, struct kr_err *err)
{
	uint64_t nq = 0;

	fs->vu = vu_connect(fs->socket_path, timeout_ms, err);
	if (!fs->vu || vu_handshake(fs->vu, VU_PROTO_WANTED, err) < 0)
		return -1;
	fs->backend_features = vu_features(fs->vu);
	if (!(fs->backend_features & BIT(VIRTIO_F_VERSION_1)))
		return kr_err_set(err, KR_FAILED_PRECONDITION,
				  "back-end features 0x%llx lack VIRTIO_F_VERSION_1",
				  (unsigned long long)fs->backend_features);
	if (vu_protocol_features(fs->vu) & BIT(VU_PROTO_F_MQ)) {
		if (vu_get_queue_num(fs->vu, &nq, err) < 0)
			return -1;
		if (nq < VIRTIO_FS_NUM_QUEUES)
			return kr_err_set(err, KR_FAILED_PRECONDITION,
					  "back-end has %llu queues, virtio-fs needs %d",
					  (unsigned long long)nq, VIRTIO_FS_NUM_QUEUES);
	}
	return 0;
}

static void free_fs(struct virtio_fs *fs)
{
	for (unsigned q = 0; q < VIRTIO_FS_NUM_QUEUES; q++)
		if (fs->q[q].call_fd >= 0)
			close(fs->q[q].call_fd);
	vu_close(fs->vu);
	free(fs->socket_path);
	free(fs);
}

static struct virtio_fs *new_fs(const struct virtio_fs_cfg *cfg,
				const struct guest_mem *gm, struct kr_err *err)
{
	struct virtio_fs *fs = kr_xcalloc(1, sizeof(*fs));

	fs->socket_path = kr_xstrdup(cfg->socket_path);
	build_config(fs, cfg->tag);
	for (unsigned q = 0; q < VIRTIO_FS_NUM_QUEUES; q++) {
		fs->q[q].fs = fs;
		fs->q[q].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	for (unsigned q = 0; q < VIRTIO_FS_NUM_QUEUES; q++) {
		if (fs->q[q].call_fd < 0) {
			kr_err_sys(err, "virtio-fs: call eventfd");
			goto fail;
		}
	}
	if (vu_mem_regions(gm, cfg->mem, fs->mem, &fs->nmem, err) < 0) {
		kr_err_wrap(err, "virtio-fs");
		goto fail;
	}
	return fs;
fail:
	free_fs(fs);
	return NULL;
}

int virtio_fs_create(struct virtio_dev *d, const struct virtio_fs_cfg *cfg,
		     const struct guest_mem *gm, struct evloop *ev,
		     uint64_t base, unsigned gsi, int irq_fd,
		     const struct virtio_mmio_hooks *hooks, struct kr_err *err)
{
	struct virtio_fs *fs;

	if (virtio_fs_check_tag(cfg->tag, err) < 0)
		return -1;
	if (!ev || !cfg->mem || !cfg->socket_path)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "virtio-fs: needs an event loop, a socket path and shared guest memory");
	fs = new_fs(cfg, gm, err);
	if (!fs)
		return -1;
	if (negotiate(fs, cfg->timeout_ms, err) < 0) {
		kr_err_wrap(err, "virtio-fs: virtiofsd at %s", cfg->socket_path);
		goto fail;
	}
	if (virtio_dev_init(d, &virtio_fs_ops, fs,
			    fs->backend_features & VFS_PASSTHROUGH, gm, ev, base,
			    gsi, irq_fd, hooks, err) < 0)
		goto fail;
	d->external_queues = true;
	fs->dev = d;
	if (ev_add(ev, vu_fd(fs->vu), EPOLLIN, on_socket, fs, err) < 0) {
		kr_err_wrap(err, "virtio-fs: watch the virtiofsd socket");
		virtio_dev_destroy(d);
		goto fail;
	}
	fs->sock_watched = true;
	return 0;
fail:
	free_fs(fs);
	return -1;
}

void virtio_fs_destroy(struct virtio_dev *d)
{
	struct virtio_fs *fs;

	if (!d->ops || d->ops != &virtio_fs_ops)
		return;
	fs = d->priv;
	virtio_dev_lock(d);
	if (fs->sock_watched)
		ev_del(d->ev, vu_fd(fs->vu));
	fs->sock_watched = false;
	virtio_dev_unlock(d);
	/* Resets an active device: the rings come back from virtiofsd. */
	virtio_dev_destroy(d);
	free_fs(fs);
}
