/* virtio-blk (virtio_blk.h). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/util.h"
#include "virtio_blk.h"

#define BIT(n) (1ull << (n))

struct blk {
	int fd;
	bool read_only;
	uint64_t capacity;		/* 512-byte sectors */
	uint8_t config[VIRTIO_BLK_CONFIG_SIZE];	/* little-endian image */
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	/* A direct chain has at most QueueNumMax descriptors; the driver
	 * keeps indirect ones within SEG_MAX + 2.  Longer chains are refused
	 * by vq_pop (the queue breaks). */
	struct vq_seg seg[VIRTIO_BLK_QUEUE_MAX];
	struct iovec iov[VIRTIO_BLK_QUEUE_MAX];
	struct vq_chain chain;
};

/* ---- the image ---------------------------------------------------------- */

/* Requests come from the guest: the range check is done here, once, on
 * sectors (no sector * 512 before it is known to be in range). */
static bool in_range(const struct blk *b, uint64_t sector, uint32_t len)
{
	return len % VIRTIO_BLK_SECTOR == 0 && sector <= b->capacity &&
	       len / VIRTIO_BLK_SECTOR <= b->capacity - sector;
}

/* Build iovecs for bytes [skip, skip + len) of segments [first, last) of
 * c; the caller checked that the segments hold that many bytes. */
static int chain_iov(struct blk *b, const struct vq_chain *c, unsigned first,
		     unsigned last, size_t skip, size_t len)
{
	int n = 0;

	for (unsigned i = first; i < last && len; i++) {
		const struct vq_seg *s = &c->seg[i];
		size_t take;

		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		take = s->len - skip;
		if (take > len)
			take = len;
		b->iov[n++] = (struct iovec){ (uint8_t *)s->ptr + skip, take };
		len -= take;
		skip = 0;
	}
	return n;
}

/* preadv/pwritev the whole of iov at off, resuming after short transfers.
 * End of file inside the range (the image shrank under us) is an error. */
static int image_io(int fd, struct iovec *iov, int cnt, uint64_t off,
		    bool write)
{
	while (cnt > 0) {
		ssize_t n = write ? pwritev(fd, iov, cnt, (off_t)off)
				  : preadv(fd, iov, cnt, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		off += (uint64_t)n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

struct req {
	uint32_t type;
	uint64_t sector;
	uint32_t written;	/* data bytes put in the writable part */
};

/* IN: the writable part before the status byte receives the data. */
static uint8_t do_in(struct blk *b, const struct vq_chain *c, struct req *r)
{
	uint32_t len = c->write_len - 1;
	int n;

	if (!in_range(b, r->sector, len))
		return VIRTIO_BLK_S_IOERR;
	n = chain_iov(b, c, c->nread, c->nseg, 0, len);
	if (image_io(b->fd, b->iov, n, r->sector * VIRTIO_BLK_SECTOR,
		     false) < 0) {
		kr_warn("virtio-blk: read of %u bytes at sector %" PRIu64
			": %s", len, r->sector, strerror(errno));
		return VIRTIO_BLK_S_IOERR;
	}
	r->written = len;
	return VIRTIO_BLK_S_OK;
}

/* OUT: the readable part after the header is the data. */
static uint8_t do_out(struct blk *b, const struct vq_chain *c, struct req *r)
{
	uint32_t len = c->read_len - VIRTIO_BLK_HDR_SIZE;
	int n;

	if (b->read_only || !in_range(b, r->sector, len))
		return VIRTIO_BLK_S_IOERR;
	n = chain_iov(b, c, 0, c->nread, VIRTIO_BLK_HDR_SIZE, len);
	if (image_io(b->fd, b->iov, n, r->sector * VIRTIO_BLK_SECTOR,
		     true) < 0) {
		kr_warn("virtio-blk: write of %u bytes at sector %" PRIu64
			": %s", len, r->sector, strerror(errno));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_flush(struct blk *b)
{
	if (fdatasync(b->fd) < 0) {
		kr_warn("virtio-blk: fdatasync: %s", strerror(errno));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* GET_ID: as much of the 20-byte id as the buffer holds. */
static uint8_t do_get_id(struct blk *b, const struct vq_chain *c,
			 struct req *r)
{
	uint32_t len = c->write_len - 1;

	if (len > VIRTIO_BLK_ID_BYTES)
		len = VIRTIO_BLK_ID_BYTES;
	r->written = (uint32_t)vq_chain_write(c, 0, b->id, len);
	return VIRTIO_BLK_S_OK;
}

static uint8_t dispatch(struct blk *b, const struct vq_chain *c,
			struct req *r)
{
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		return do_in(b, c, r);
	case VIRTIO_BLK_T_OUT:
		return do_out(b, c, r);
	case VIRTIO_BLK_T_FLUSH:
		return do_flush(b);
	case VIRTIO_BLK_T_GET_ID:
		return do_get_id(b, c, r);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* Serve one chain; returns the used length (bytes written into the
 * writable part, status included). */
static uint32_t handle(struct blk *b, const struct vq_chain *c)
{
	uint8_t hdr[VIRTIO_BLK_HDR_SIZE];
	struct req r = { 0 };
	uint32_t type32;
	uint8_t status;

	/* No writable byte: no status can be reported; give the buffers
	 * back without doing anything. */
	if (c->write_len == 0)
		return 0;
	/* Copy the header once; the guest may change its buffer meanwhile. */
	if (vq_chain_read(c, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
		status = VIRTIO_BLK_S_IOERR;
	} else {
		memcpy(&type32, hdr, 4);
		memcpy(&r.sector, hdr + 8, 8);
		r.type = le32toh(type32);
		r.sector = le64toh(r.sector);
		status = dispatch(b, c, &r);
	}
	vq_chain_write(c, c->write_len - 1, &status, 1);
	return r.written + 1;
}

/* ---- queue -------------------------------------------------------------- */

/* Serve chains until the ring is empty (0) or *budget runs out (1);
 * -1: the queue is broken. */
static int serve(struct virtio_dev *d, struct vq *vq, unsigned *budget,
		 struct kr_err *err)
{
	struct blk *b = d->priv;
	int rc;

	while (*budget) {
		rc = vq_pop(vq, d->gm, &b->chain, err);
		if (rc <= 0)
			return rc;
		(*budget)--;
		if (vq_push(vq, b->chain.head, handle(b, &b->chain), err) < 0)
			return -1;
	}
	return 1;
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	virtio_dev_run_queue(d, q, VIRTIO_BLK_BATCH, serve);
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, uint8_t *data,
			    unsigned len)
{
	const struct blk *b = d->priv;

	/* The transport checked off + len <= config_size. */
	memcpy(data, b->config + off, len);
}

static const struct virtio_dev_ops blk_ops = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = 1,
	.queue_max = VIRTIO_BLK_QUEUE_MAX,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.config_read = blk_config_read,
	.queue_notify = blk_queue_notify,
};

/* ---- set-up ------------------------------------------------------------- */

static int image_size(int fd, const char *path, uint64_t *size,
		      struct kr_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return kr_err_sys(err, "virtio-blk: stat %s", path);
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return kr_err_sys(err, "virtio-blk: BLKGETSIZE64 %s", path);
		return 0;
	}
	return kr_err_set(err, KR_INVALID_ARGUMENT, "virtio-blk: %s is neither"
			  " a regular file nor a block device", path);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void build_config(struct blk *b)
{
	uint64_t cap = htole64(b->capacity);

	memcpy(b->config + VIRTIO_BLK_CFG_CAPACITY, &cap, 8);
	put_le32(b->config + VIRTIO_BLK_CFG_SIZE_MAX, VIRTIO_BLK_SIZE_MAX);
	put_le32(b->config + VIRTIO_BLK_CFG_SEG_MAX, VIRTIO_BLK_SEG_MAX);
	put_le32(b->config + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR);
}

static int open_image(struct blk *b, const struct virtio_blk_cfg *cfg,
		      struct kr_err *err)
{
	uint64_t size;
	size_t idlen = cfg->serial ? strlen(cfg->serial) : 0;

	if (idlen > VIRTIO_BLK_ID_BYTES)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "virtio-blk: serial"
				  " \"%s\" is longer than %d bytes", cfg->serial,
				  VIRTIO_BLK_ID_BYTES);
	if (idlen)
		memcpy(b->id, cfg->serial, idlen);
	b->read_only = cfg->read_only;
	b->fd = open(cfg->path, (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0)
		return kr_err_sys(err, "virtio-blk: open %s%s", cfg->path,
				  cfg->read_only ? " read-only" : "");
	if (image_size(b->fd, cfg->path, &size, err) < 0)
		return -1;
	if (size % VIRTIO_BLK_SECTOR)
		kr_warn("virtio-blk: %s: size %" PRIu64 " is not a multiple of"
			" %u; the last %" PRIu64 " bytes are not visible to the"
			" guest", cfg->path, size, VIRTIO_BLK_SECTOR,
			size % VIRTIO_BLK_SECTOR);
	b->capacity = size / VIRTIO_BLK_SECTOR;
	build_config(b);
	return 0;
}

int virtio_blk_create(struct virtio_dev *d, struct evloop *ev,
		      const struct guest_mem *gm, uint64_t base, unsigned gsi,
		      int irq_fd, const struct virtio_mmio_hooks *hooks,
		      const struct virtio_blk_cfg *cfg, struct kr_err *err)
{
	uint64_t features = BIT(VIRTIO_BLK_F_SIZE_MAX) |
			    BIT(VIRTIO_BLK_F_SEG_MAX) |
			    BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_FLUSH) |
			    BIT(VIRTIO_F_INDIRECT_DESC) | BIT(VIRTIO_F_EVENT_IDX);
	struct blk *b;

	memset(d, 0, sizeof(*d));	/* destroy is safe whatever fails */
	b = calloc(1, sizeof(*b));
	if (!b)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
				  "virtio-blk: out of memory");
	b->fd = -1;
	vq_chain_init(&b->chain, b->seg, KR_ARRAY_SIZE(b->seg));
	if (open_image(b, cfg, err) < 0)
		goto fail;
	if (cfg->read_only)
		features |= BIT(VIRTIO_BLK_F_RO);
	if (virtio_dev_init(d, &blk_ops, b, features, gm, ev, base, gsi, irq_fd,
			    hooks, err) < 0)
		goto fail;
	return 0;
fail:
	if (b->fd >= 0)
		close(b->fd);
	free(b);
	return -1;
}

void virtio_blk_destroy(struct virtio_dev *d)
{
	struct blk *b = d->priv;

	if (!d->ops)
		return;
	virtio_dev_destroy(d);
	close(b->fd);
	free(b);
	d->priv = NULL;
}
