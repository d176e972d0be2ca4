/* Unit tests for hypervisor/kvm/virtio_rng.c and virtio_blk.c driven
 * through the virtio-mmio transport, as the guest's drivers would: register
 * writes with virtio_mmio_rw(), hand-built descriptor tables and rings in
 * malloc'd guest RAM, kicks run one evloop round at a time, an eventfd as
 * the interrupt line, and a temporary raw image for the disk.  Well-formed
 * and hostile requests alike. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "../lib/vq_driver.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtio_blk.h"
#include "virtio_mmio.h"
#include "virtio_rng.h"
#include "virtqueue.h"

#define BIT(n) (1ull << (n))

#define RAM_SIZE (8u << 20)
#define BASE 0xd0001000ull
#define GSI 6u
#define DESC 0x1000ull		/* up to 256 entries */
#define AVAIL 0x2000ull
#define USED 0x3000ull
#define ITABLE 0x4000ull	/* indirect tables */
#define HDR 0x10000ull
#define STATUS 0x11000ull
#define DATA 0x20000ull		/* small data buffers */
#define BIG 0x100000ull		/* up to 7 MiB */
#define OUTSIDE 0x7fff0000ull	/* not guest RAM */

#define NEXT VQ_DESC_F_NEXT
#define W VQ_DESC_F_WRITE
#define INDIRECT VQ_DESC_F_INDIRECT

#define S_DRV (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER)
#define S_FOK (S_DRV | VIRTIO_CONFIG_S_FEATURES_OK)
#define S_OK (S_FOK | VIRTIO_CONFIG_S_DRIVER_OK)
#define S_NR VIRTIO_CONFIG_S_NEEDS_RESET

#define IMG_SECTORS 128u
#define IMG_SIZE (IMG_SECTORS * 512u)
#define SERIAL "kata-serial-0001"

static uint8_t *ram;
static struct guest_mem gm;
static struct evloop *ev;
static struct virtio_dev dev;
static int irq_fd = -1;
static struct kr_err err;
static struct gq q0;		/* queue 0 as the guest sees it */
static char img_path[PATH_MAX];
static void (*destroy_fn)(struct virtio_dev *d);

/* ---- guest memory and queue 0: tests/lib/vq_driver.h ---- */

#define D(i, a, l, f, n) desc_at(DESC, (i), (a), (l), (f), (n))
#define avail_add(head) gq_avail_add(&q0, (head))
#define used_idx() gq_used_idx(&q0)
#define used_id(n) gq_used_id(&q0, (n))
#define used_len(n) gq_used_len(&q0, (n))

/* Bytes in [gpa, gpa + len) that still hold fill. */
static size_t count_byte(uint64_t gpa, size_t len, uint8_t fill)
{
	const uint8_t *p = host(gpa);
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += p[i] == fill;
	return n;
}

/* ---- the driver ---- */

/* Reset, accept what the device offers among want, set queue 0 up with n
 * entries at DESC/AVAIL/USED, DRIVER_OK.  Returns the status read back. */
static uint32_t driver_up(uint64_t want, unsigned n)
{
	uint64_t f;

	memset(ram, 0, 0x10000);	/* rings and tables */
	gq_init(&q0, 0, n, DESC, AVAIL, USED);
	driver_hello();
	f = device_features() & want;
	driver_features(f);
	if (rd(VIRTIO_MMIO_STATUS) != S_FOK)
		return rd(VIRTIO_MMIO_STATUS);
	gq_enable(&q0);
	wr(VIRTIO_MMIO_STATUS, S_OK);
	return rd(VIRTIO_MMIO_STATUS);
}

#define F_ALL (~0ull)
#define F_RING (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_INDIRECT_DESC))

static uint64_t irqs(void)
{
	return irq_count(irq_fd);
}

/* Kick queue 0 and run one evloop round: handlers run. */
static int kick(void)
{
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	return ev_run_once(ev, 0);
}

/* Make head available and kick. */
static void submit(uint16_t head)
{
	avail_add(head);
	kick();
}

static void stop(void)
{
	if (destroy_fn)
		destroy_fn(&dev);
	destroy_fn = NULL;
}

static void fresh(void)
{
	stop();		/* a test that bailed out early left it running */
	memset(ram, 0, RAM_SIZE);
	memset(&err, 0, sizeof(err));
	irqs();
	while (ev_run_once(ev, 0) > 0)
		;
}

/* ==== virtio-rng ==== */

static int rng_start(void)
{
	fresh();
	if (virtio_rng_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &err) < 0)
		return -1;
	destroy_fn = virtio_rng_destroy;
	return 0;
}

static void test_rng_ids(void)
{
	uint8_t b[4] = { 0xee, 0xee, 0xee, 0xee };

	REQUIRE(rng_start() == 0);
	CHECK(rd(VIRTIO_MMIO_MAGIC_VALUE) == VIRTIO_MMIO_MAGIC_VIRT);
	CHECK(rd(VIRTIO_MMIO_DEVICE_ID) == 4);
	CHECK(device_features() == BIT(VIRTIO_F_VERSION_1));
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == VIRTIO_RNG_QUEUE_MAX);
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG, b, 4, false);
	CHECK(b[0] == 0 && b[3] == 0);
	CHECK(driver_up(F_ALL, 16) == S_OK);
	stop();
}

static void test_rng_fill(void)
{
	REQUIRE(rng_start() == 0);
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	memset(host(DATA), 0xaa, 4096);
	D(3, DATA, 100, W, 0);
	submit(3);
	CHECK(used_idx() == 1);
	CHECK(used_id(0) == 3);
	CHECK(used_len(0) == 100);
	/* 100 random bytes: a handful may happen to be 0xaa. */
	CHECK(count_byte(DATA, 100, 0xaa) < 10);
	CHECK(count_byte(DATA + 100, 4096 - 100, 0xaa) == 4096 - 100);
	CHECK(irqs() == 1);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);

	/* Nothing new: a kick does nothing, no interrupt. */
	CHECK(kick() == 1);
	CHECK(used_idx() == 1);
	CHECK(irqs() == 0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* Readable segments are left alone; zero-length descriptors (even with a
 * bogus address) are skipped; every writable segment is filled. */
static void test_rng_segments(void)
{
	REQUIRE(rng_start() == 0);
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	memset(host(DATA), 0xaa, 4096);
	D(0, DATA, 16, NEXT, 1);
	D(1, DATA + 100, 10, W | NEXT, 2);
	D(2, OUTSIDE, 0, W | NEXT, 3);
	D(3, DATA + 200, 30, W, 0);
	submit(0);
	CHECK(used_idx() == 1);
	CHECK(used_len(0) == 40);
	CHECK(count_byte(DATA, 16, 0xaa) == 16);
	CHECK(count_byte(DATA + 100, 10, 0xaa) < 5);
	CHECK(count_byte(DATA + 110, 90, 0xaa) == 90);
	CHECK(count_byte(DATA + 200, 30, 0xaa) < 5);
	CHECK(count_byte(DATA + 230, 100, 0xaa) == 100);

	/* Only readable buffers: nothing to fill, used length 0. */
	D(4, DATA + 1000, 64, 0, 0);
	submit(4);
	CHECK(used_idx() == 2);
	CHECK(used_id(1) == 4 && used_len(1) == 0);
	CHECK(count_byte(DATA + 1000, 64, 0xaa) == 64);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* At most VIRTIO_RNG_MAX_REQUEST bytes per chain, the rest untouched. */
static void test_rng_cap(void)
{
	const uint32_t max = VIRTIO_RNG_MAX_REQUEST;

	REQUIRE(rng_start() == 0);
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	memset(host(BIG), 0xaa, 1u << 20);
	D(0, BIG, 1u << 20, W, 0);
	submit(0);
	CHECK(used_len(0) == max);
	CHECK(count_byte(BIG, max, 0xaa) < max / 64);
	CHECK(count_byte(BIG + max, (1u << 20) - max, 0xaa) == (1u << 20) - max);

	/* Across segments: 40 KiB + the first 24 KiB of the second, the third
	 * untouched. */
	memset(host(BIG), 0xaa, 1u << 20);
	D(1, BIG, 40 << 10, W | NEXT, 2);
	D(2, BIG + (100 << 10), 40 << 10, W | NEXT, 3);
	D(3, BIG + (200 << 10), 40 << 10, W, 0);
	submit(1);
	CHECK(used_idx() == 2);
	CHECK(used_len(1) == max);
	CHECK(count_byte(BIG, 40 << 10, 0xaa) < 1000);
	CHECK(count_byte(BIG + (100 << 10), 24 << 10, 0xaa) < 1000);
	CHECK(count_byte(BIG + (124 << 10), 16 << 10, 0xaa) == 16 << 10);
	CHECK(count_byte(BIG + (200 << 10), 40 << 10, 0xaa) == 40 << 10);
	stop();
}

static void test_rng_no_interrupt(void)
{
	REQUIRE(rng_start() == 0);
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	put16(AVAIL, VQ_AVAIL_F_NO_INTERRUPT);
	D(0, DATA, 32, W, 0);
	submit(0);
	CHECK(used_idx() == 1 && used_len(0) == 32);
	CHECK(irqs() == 0);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	put16(AVAIL, 0);
	submit(0);
	CHECK(used_idx() == 2);
	CHECK(irqs() == 1);
	stop();
}

/* One kick serves VIRTIO_RNG_BATCH chains, then yields; the next round
 * serves the rest without a new kick from the guest. */
static void test_rng_batch(void)
{
	REQUIRE(rng_start() == 0);
	REQUIRE(driver_up(F_ALL, 128) == S_OK);
	D(0, DATA, 8, W, 0);
	for (int i = 0; i < 100; i++)
		avail_add(0);
	CHECK(kick() == 1);
	CHECK(used_idx() == VIRTIO_RNG_BATCH);
	CHECK(irqs() == 1);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(used_idx() == 100);
	CHECK(irqs() == 1);
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(used_len(99) == 8);
	stop();
}

/* A malformed chain: NEEDS_RESET and a config interrupt; a reset and a
 * new set-up work again. */
static void test_rng_broken(void)
{
	REQUIRE(rng_start() == 0);
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	D(0, DATA, 8, W | NEXT, 1);
	D(1, DATA, 8, W | NEXT, 0);	/* loop */
	submit(0);
	CHECK(used_idx() == 0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
	CHECK(irqs() == 1);
	/* A buffer outside guest RAM, after a reset. */
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	D(0, OUTSIDE, 8, W, 0);
	submit(0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	D(0, DATA, 8, W, 0);
	submit(0);
	CHECK(used_idx() == 1 && used_len(0) == 8);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

static int refuse_ioeventfd(void *ctx, uint64_t addr, uint32_t datamatch,
			    int fd, bool assign, struct kr_err *e)
{
	return kr_err_set(e, KR_UNAVAILABLE, "no ioeventfd here");
}

static void test_rng_create_fails(void)
{
	struct virtio_mmio_hooks h = { .ioeventfd = refuse_ioeventfd };

	fresh();
	CHECK(virtio_rng_create(&dev, ev, &gm, BASE, GSI, irq_fd, &h, &err) == -1);
	CHECK_CONTAINS(err.msg, "virtio-rng: queue 0 notify: no ioeventfd here");
	virtio_rng_destroy(&dev);	/* harmless */
	REQUIRE(virtio_rng_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &err) == 0);
	virtio_rng_destroy(&dev);
	virtio_rng_destroy(&dev);	/* twice: harmless */
}

/* ==== virtio-blk ==== */

static uint8_t img_byte(uint64_t off)
{
	return (uint8_t)(off * 13 + (off >> 9));
}

static int write_image(size_t size)
{
	uint8_t *buf = malloc(size);
	int fd, rc = -1;

	if (!buf)
		return -1;
	for (size_t i = 0; i < size; i++)
		buf[i] = img_byte(i);
	fd = open(img_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0 && write(fd, buf, size) == (ssize_t)size)
		rc = 0;
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* The image bytes [off, off + len) still hold the pattern. */
static bool image_intact(uint64_t off, size_t len)
{
	uint8_t b[4096];
	int fd = open(img_path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && len <= sizeof(b) &&
		  pread(fd, b, len, (off_t)off) == (ssize_t)len;

	for (size_t i = 0; ok && i < len; i++)
		ok = b[i] == img_byte(off + i);
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool image_whole_intact(void)
{
	for (uint64_t off = 0; off < IMG_SIZE; off += 4096)
		if (!image_intact(off, 4096))
			return false;
	return true;
}

static bool image_read(uint64_t off, void *buf, size_t len)
{
	int fd = open(img_path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && pread(fd, buf, len, (off_t)off) == (ssize_t)len;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Guest buffer [gpa, gpa + len) equals the image at off. */
static bool guest_matches_image(uint64_t gpa, uint64_t off, size_t len)
{
	const uint8_t *p = host(gpa);

	for (size_t i = 0; i < len; i++)
		if (p[i] != img_byte(off + i))
			return false;
	return true;
}

static int blk_start_size(bool ro, size_t size)
{
	struct virtio_blk_cfg cfg = {
		.path = img_path, .read_only = ro, .serial = SERIAL,
	};

	fresh();
	if (write_image(size) < 0)
		return -1;
	if (virtio_blk_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &cfg,
			      &err) < 0)
		return -1;
	destroy_fn = virtio_blk_destroy;
	return 0;
}

static int blk_start(bool ro)
{
	if (blk_start_size(ro, IMG_SIZE) < 0 || driver_up(F_ALL, 16) != S_OK)
		return -1;
	return 0;
}

static void hdr(uint64_t gpa, uint32_t type, uint64_t sector)
{
	put32(gpa, type);
	put32(gpa + 4, 0);
	put64(gpa + 8, sector);
}

static uint8_t status_at(uint64_t gpa)
{
	return *host(gpa);
}

/* The common three-descriptor request: header, data (writable for IN),
 * status.  Returns the used length; *st the status. */
static uint32_t rw_req(uint32_t type, uint64_t sector, uint64_t data,
		       uint32_t len, uint8_t *st)
{
	uint16_t n = used_idx();

	hdr(HDR, type, sector);
	*host(STATUS) = 0xee;
	D(0, HDR, 16, NEXT, 1);
	D(1, data, len, (type == VIRTIO_BLK_T_OUT ? 0 : W) | NEXT, 2);
	D(2, STATUS, 1, W, 0);
	submit(0);
	*st = status_at(STATUS);
	if (used_idx() != (uint16_t)(n + 1))
		return UINT32_MAX;
	return used_len(n);
}

static uint32_t cfg32(uint32_t off)
{
	return rd(VIRTIO_MMIO_CONFIG + off);
}

static void test_blk_config(void)
{
	uint64_t f;
	uint8_t b[2] = { 0xee, 0xee };

	REQUIRE(blk_start_size(false, IMG_SIZE) == 0);
	CHECK(rd(VIRTIO_MMIO_DEVICE_ID) == 2);
	f = device_features();
	CHECK(f == (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_BLK_F_SIZE_MAX) |
		    BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_BLK_SIZE) |
		    BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_F_INDIRECT_DESC) |
		    BIT(VIRTIO_F_EVENT_IDX)));
	CHECK(!(f & BIT(VIRTIO_BLK_F_RO)));
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == VIRTIO_BLK_QUEUE_MAX);
	/* capacity as Linux reads a le64: two 32-bit halves */
	CHECK(cfg32(0) == IMG_SECTORS);
	CHECK(cfg32(4) == 0);
	CHECK(cfg32(8) == VIRTIO_BLK_SIZE_MAX);
	CHECK(cfg32(12) == VIRTIO_BLK_SEG_MAX);
	CHECK(cfg32(16) == 0);		/* geometry: not offered */
	CHECK(cfg32(20) == 512);
	CHECK(cfg32(24) == 0);		/* past our config space */
	virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG + 0, b, 2, false);
	CHECK(b[0] == IMG_SECTORS && b[1] == 0);
	/* Config is read-only. */
	wr(VIRTIO_MMIO_CONFIG, 0xffffffff);
	CHECK(cfg32(0) == IMG_SECTORS);
	/* SEG_MAX x SIZE_MAX keeps requests within what vq_pop accepts. */
	CHECK((uint64_t)VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX + 17 <
	      VQ_MAX_CHAIN_BYTES);
	stop();

	/* Read-only: RO offered.  A partial last sector is not exposed. */
	REQUIRE(blk_start_size(true, IMG_SIZE + 100) == 0);
	CHECK(device_features() & BIT(VIRTIO_BLK_F_RO));
	CHECK(cfg32(0) == IMG_SECTORS);
	stop();

	/* A big sparse image: the high half of the capacity. */
	{
		int fd;

		REQUIRE(blk_start_size(false, 512) == 0);
		stop();
		fd = open(img_path, O_WRONLY | O_CLOEXEC);
		REQUIRE(fd >= 0);
		REQUIRE(ftruncate(fd, (off_t)(5ull << 40)) == 0);	/* 5 TiB */
		close(fd);
		REQUIRE(virtio_blk_create(&dev, ev, &gm, BASE, GSI, irq_fd,
					  NULL, &(struct virtio_blk_cfg){
						  .path = img_path },
					  &err) == 0);
		destroy_fn = virtio_blk_destroy;
		CHECK(cfg32(0) == (uint32_t)((5ull << 40) / 512));
		CHECK(cfg32(4) == (uint32_t)(((5ull << 40) / 512) >> 32));
		stop();
	}
}

static void test_blk_read(void)
{
	uint8_t st;

	REQUIRE(blk_start(false) == 0);
	memset(host(DATA), 0xaa, 4096);
	CHECK(rw_req(VIRTIO_BLK_T_IN, 3, DATA, 1024, &st) == 1025);
	CHECK(st == VIRTIO_BLK_S_OK);
	CHECK(guest_matches_image(DATA, 3 * 512, 1024));
	CHECK(count_byte(DATA + 1024, 1024, 0xaa) == 1024);
	CHECK(used_id(0) == 0);
	CHECK(irqs() == 1);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);

	/* The last sector. */
	CHECK(rw_req(VIRTIO_BLK_T_IN, IMG_SECTORS - 1, DATA, 512, &st) == 513);
	CHECK(st == VIRTIO_BLK_S_OK);
	CHECK(guest_matches_image(DATA, IMG_SIZE - 512, 512));
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* The split into descriptors is the driver's business: header in two
 * pieces with a zero-length descriptor between, data over three
 * descriptors of odd sizes, the status sharing the last one. */
static void test_blk_read_split(void)
{
	REQUIRE(blk_start(false) == 0);
	memset(host(DATA), 0xaa, 4096);
	hdr(HDR, VIRTIO_BLK_T_IN, 7);
	D(0, HDR, 5, NEXT, 1);
	D(1, OUTSIDE, 0, NEXT, 2);
	D(2, HDR + 5, 11, NEXT, 3);
	D(3, DATA, 100, W | NEXT, 4);
	D(4, DATA + 1000, 300, W | NEXT, 5);
	D(5, OUTSIDE, 0, W | NEXT, 6);
	D(6, DATA + 2000, 113, W, 0);	/* 112 data + status */
	submit(0);
	CHECK(used_idx() == 1);
	CHECK(used_len(0) == 513);
	CHECK(guest_matches_image(DATA, 7 * 512, 100));
	CHECK(guest_matches_image(DATA + 1000, 7 * 512 + 100, 300));
	CHECK(guest_matches_image(DATA + 2000, 7 * 512 + 400, 112));
	CHECK(status_at(DATA + 2112) == VIRTIO_BLK_S_OK);
	CHECK(count_byte(DATA + 100, 900, 0xaa) == 900);
	CHECK(count_byte(DATA + 2113, 100, 0xaa) == 100);

	/* Data and status in one descriptor, header in one. */
	memset(host(DATA), 0xaa, 4096);
	hdr(HDR, VIRTIO_BLK_T_IN, 1);
	D(0, HDR, 16, NEXT, 1);
	D(1, DATA, 1025, W, 0);
	submit(0);
	CHECK(used_idx() == 2 && used_len(1) == 1025);
	CHECK(guest_matches_image(DATA, 512, 1024));
	CHECK(status_at(DATA + 1024) == VIRTIO_BLK_S_OK);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* Many segments through an indirect table: the whole disk in 128 pieces. */
static void test_blk_read_indirect(void)
{
	REQUIRE(blk_start(false) == 0);
	memset(host(BIG), 0xaa, 2 * IMG_SIZE);
	hdr(HDR, VIRTIO_BLK_T_IN, 0);
	desc_at(ITABLE, 0, HDR, 16, NEXT, 1);
	for (unsigned i = 0; i < IMG_SECTORS; i++)	/* every other 512 */
		desc_at(ITABLE, 1 + i, BIG + 1024ull * i, 512, W | NEXT, 2 + i);
	desc_at(ITABLE, 1 + IMG_SECTORS, STATUS, 1, W, 0);
	D(0, ITABLE, 16 * (IMG_SECTORS + 2), INDIRECT, 0);
	*host(STATUS) = 0xee;
	submit(0);
	CHECK(used_idx() == 1 && used_len(0) == IMG_SIZE + 1);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < IMG_SECTORS; i++) {
		CHECKF(guest_matches_image(BIG + 1024ull * i, 512ull * i, 512),
		       "sector %u", i);
		CHECK(count_byte(BIG + 1024ull * i + 512, 512, 0xaa) == 512);
	}
	stop();
}

static void test_blk_read_past_end(void)
{
	uint8_t st;

	REQUIRE(blk_start(false) == 0);
	memset(host(DATA), 0xaa, 4096);
	CHECK(rw_req(VIRTIO_BLK_T_IN, IMG_SECTORS, DATA, 512, &st) == 1);
	CHECK(st == VIRTIO_BLK_S_IOERR);
	CHECK(rw_req(VIRTIO_BLK_T_IN, IMG_SECTORS - 1, DATA, 1024, &st) == 1);
	CHECK(st == VIRTIO_BLK_S_IOERR);
	CHECK(rw_req(VIRTIO_BLK_T_IN, IMG_SECTORS + 1000, DATA, 512, &st) == 1);
	CHECK(st == VIRTIO_BLK_S_IOERR);
	CHECK(count_byte(DATA, 4096, 0xaa) == 4096);
	/* Bigger than the disk, from sector 0. */
	memset(host(BIG), 0xaa, 4u << 20);
	CHECK(rw_req(VIRTIO_BLK_T_IN, 0, BIG, 4u << 20, &st) == 1);
	CHECK(st == VIRTIO_BLK_S_IOERR);
	CHECK(count_byte(BIG, 4u << 20, 0xaa) == 4u << 20);
	/* Status only (no data) at the end: an empty read is fine; past
	 * the end it is not. */
	hdr(HDR, VIRTIO_BLK_T_IN, IMG_SECTORS);
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 1, W, 0);
	submit(0);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_OK);
	CHECK(used_len((uint16_t)(used_idx() - 1)) == 1);
	hdr(HDR, VIRTIO_BLK_T_IN, IMG_SECTORS + 1);
	submit(0);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_IOERR);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* sector * 512 overflows 64 bits: refused, not wrapped to a small
 * offset. */
static void test_blk_sector_overflow(void)
{
	static const uint64_t bad[] = {
		1ull << 55,			/* * 512 == 2^64 -> 0 */
		(1ull << 55) + 3,		/* -> 1536 */
		UINT64_MAX,
		UINT64_MAX / 512,
		UINT64_MAX - IMG_SECTORS,
	};
	uint8_t st;

	REQUIRE(blk_start(false) == 0);
	for (size_t i = 0; i < KR_ARRAY_SIZE(bad); i++) {
		memset(host(DATA), 0xaa, 1024);
		CHECKF(rw_req(VIRTIO_BLK_T_IN, bad[i], DATA, 512, &st) == 1,
		       "sector 0x%llx", (unsigned long long)bad[i]);
		CHECK(st == VIRTIO_BLK_S_IOERR);
		CHECK(count_byte(DATA, 1024, 0xaa) == 1024);
		memset(host(DATA), 0x5a, 1024);
		CHECK(rw_req(VIRTIO_BLK_T_OUT, bad[i], DATA, 512, &st) == 1);
		CHECK(st == VIRTIO_BLK_S_IOERR);
	}
	CHECK(image_whole_intact());
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

static void test_blk_bad_length(void)
{
	static const uint32_t lens[] = { 1, 100, 511, 513, 1000 };
	uint8_t st;

	REQUIRE(blk_start(false) == 0);
	for (size_t i = 0; i < KR_ARRAY_SIZE(lens); i++) {
		memset(host(DATA), 0xaa, 2048);
		CHECKF(rw_req(VIRTIO_BLK_T_IN, 0, DATA, lens[i], &st) == 1,
		       "len %u", lens[i]);
		CHECK(st == VIRTIO_BLK_S_IOERR);
		CHECK(count_byte(DATA, 2048, 0xaa) == 2048);
		memset(host(DATA), 0x5a, 2048);
		CHECK(rw_req(VIRTIO_BLK_T_OUT, 0, DATA, lens[i], &st) == 1);
		CHECK(st == VIRTIO_BLK_S_IOERR);
	}
	CHECK(image_whole_intact());
	stop();
}

static void test_blk_write(void)
{
	uint8_t st, back[1024];

	REQUIRE(blk_start(false) == 0);
	for (unsigned i = 0; i < 1024; i++)
		host(DATA)[i] = (uint8_t)(0x5a ^ i);
	CHECK(rw_req(VIRTIO_BLK_T_OUT, 5, DATA, 1024, &st) == 1);
	CHECK(st == VIRTIO_BLK_S_OK);
	CHECK(image_read(5 * 512, back, 1024));
	CHECK(memcmp(back, host(DATA), 1024) == 0);
	/* The neighbours are untouched. */
	CHECK(image_intact(0, 5 * 512));
	CHECK(image_intact(7 * 512, 4096));
	CHECK(irqs() == 1);

	/* Header and data in one readable descriptor; the last sector. */
	hdr(HDR, VIRTIO_BLK_T_OUT, IMG_SECTORS - 1);
	memset(host(HDR + 16), 0x77, 512);
	D(0, HDR, 16 + 512, NEXT, 1);
	D(1, STATUS, 1, W, 0);
	*host(STATUS) = 0xee;
	submit(0);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_OK);
	CHECK(used_len(1) == 1);
	CHECK(image_read(IMG_SIZE - 512, back, 512));
	CHECK(back[0] == 0x77 && back[511] == 0x77);
	CHECK(image_intact(IMG_SIZE - 1024, 512));

	/* Data split oddly over descriptors, the status at the end of a
	 * 4-byte writable buffer (the last writable byte). */
	hdr(HDR, VIRTIO_BLK_T_OUT, 10);
	for (unsigned i = 0; i < 512; i++)
		host(DATA + 3000)[i] = (uint8_t)i;
	D(0, HDR, 10, NEXT, 1);
	D(1, HDR + 10, 6, NEXT, 2);
	D(2, DATA + 3000, 7, NEXT, 3);
	D(3, DATA + 3007, 505, NEXT, 4);
	D(4, STATUS, 4, W, 0);
	memset(host(STATUS), 0xee, 4);
	submit(0);
	CHECK(status_at(STATUS + 3) == VIRTIO_BLK_S_OK);
	CHECK(host(STATUS)[0] == 0xee && host(STATUS)[2] == 0xee);
	CHECK(image_read(10 * 512, back, 512));
	CHECK(memcmp(back, host(DATA + 3000), 512) == 0);
	CHECK(image_intact(11 * 512, 512));
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* The access mode of our open fd on the image: O_RDONLY, O_RDWR, or -1
 * if there is none (or several with different modes). */
static int image_fd_mode(void)
{
	char link[300], target[PATH_MAX], want[PATH_MAX];
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int mode = -1, found = 0;

	if (!dir || !realpath(img_path, want)) {
		if (dir)
			closedir(dir);
		return -1;
	}
	while ((de = readdir(dir))) {
		ssize_t n;
		int m;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = 0;
		if (strcmp(target, want) != 0)
			continue;
		m = fcntl(atoi(de->d_name), F_GETFL) & O_ACCMODE;
		if (found++ && m != mode)
			mode = -2;
		else
			mode = m;
	}
	closedir(dir);
	return mode < 0 ? -1 : mode;
}

static void test_blk_read_only(void)
{
	uint8_t st;

	REQUIRE(blk_start(true) == 0);
	CHECK(image_fd_mode() == O_RDONLY);
	memset(host(DATA), 0x5a, 1024);
	CHECK(rw_req(VIRTIO_BLK_T_OUT, 0, DATA, 512, &st) == 1);
	CHECK(st == VIRTIO_BLK_S_IOERR);
	CHECK(image_whole_intact());
	/* Reads and flushes still work. */
	CHECK(rw_req(VIRTIO_BLK_T_IN, 2, DATA, 512, &st) == 513);
	CHECK(st == VIRTIO_BLK_S_OK);
	CHECK(guest_matches_image(DATA, 1024, 512));
	hdr(HDR, VIRTIO_BLK_T_FLUSH, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 1, W, 0);
	submit(0);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_OK);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();

	/* And the read-write device really opens it read-write. */
	REQUIRE(blk_start(false) == 0);
	CHECK(image_fd_mode() == O_RDWR);
	stop();
	CHECK(image_fd_mode() == -1);	/* destroy closed it */
	stop();
}

static void test_blk_flush_get_id_unsupp(void)
{
	REQUIRE(blk_start(false) == 0);
	hdr(HDR, VIRTIO_BLK_T_FLUSH, 12345);	/* sector ignored */
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 1, W, 0);
	*host(STATUS) = 0xee;
	submit(0);
	CHECK(used_idx() == 1 && used_len(0) == 1);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_OK);

	/* GET_ID: 20 bytes, NUL-padded. */
	memset(host(DATA), 0xaa, 64);
	hdr(HDR, VIRTIO_BLK_T_GET_ID, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, DATA, 20, W | NEXT, 2);
	D(2, STATUS, 1, W, 0);
	submit(0);
	CHECK(used_idx() == 2 && used_len(1) == 21);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_OK);
	CHECK(memcmp(host(DATA), SERIAL "\0\0\0\0", 20) == 0);
	CHECK(count_byte(DATA + 20, 44, 0xaa) == 44);
	/* A smaller buffer gets what fits; id and status in one. */
	memset(host(DATA), 0xaa, 64);
	D(1, DATA, 9, W, 0);
	submit(0);
	CHECK(used_len(2) == 9);
	CHECK(memcmp(host(DATA), "kata-ser", 8) == 0);
	CHECK(status_at(DATA + 8) == VIRTIO_BLK_S_OK);
	CHECK(count_byte(DATA + 9, 55, 0xaa) == 55);
	/* A bigger one: 20 bytes, the rest untouched, status last. */
	memset(host(DATA), 0xaa, 64);
	D(1, DATA, 40, W, 0);
	submit(0);
	CHECK(used_len(3) == 21);
	CHECK(memcmp(host(DATA), SERIAL, 16) == 0);
	CHECK(count_byte(DATA + 20, 19, 0xaa) == 19);
	CHECK(status_at(DATA + 39) == VIRTIO_BLK_S_OK);

	/* Unknown types: DISCARD, WRITE_ZEROES (not offered), garbage. */
	static const uint32_t types[] = { 11, 13, 2, 99, 0xffffffff };
	for (size_t i = 0; i < KR_ARRAY_SIZE(types); i++) {
		hdr(HDR, types[i], 0);
		D(0, HDR, 16, NEXT, 1);
		D(1, DATA, 512, W | NEXT, 2);
		D(2, STATUS, 1, W, 0);
		*host(STATUS) = 0xee;
		submit(0);
		CHECKF(status_at(STATUS) == VIRTIO_BLK_S_UNSUPP, "type %u",
		       types[i]);
		CHECK(used_len((uint16_t)(used_idx() - 1)) == 1);
	}
	CHECK(used_idx() == 4 + KR_ARRAY_SIZE(types));
	CHECK(image_whole_intact());
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* No writable byte: nowhere to put a status; the chain comes back with
 * used length 0 and nothing is done (in particular no write). */
static void test_blk_no_status(void)
{
	uint8_t st;

	REQUIRE(blk_start(false) == 0);
	hdr(HDR, VIRTIO_BLK_T_OUT, 0);
	memset(host(DATA), 0x5a, 512);
	D(0, HDR, 16, NEXT, 1);
	D(1, DATA, 512, 0, 0);
	submit(0);
	CHECK(used_idx() == 1 && used_id(0) == 0 && used_len(0) == 0);
	CHECK(image_whole_intact());
	/* Only a zero-length writable descriptor: the same. */
	hdr(HDR, VIRTIO_BLK_T_IN, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 0, W, 0);
	*host(STATUS) = 0xee;
	submit(0);
	CHECK(used_idx() == 2 && used_len(1) == 0);
	CHECK(status_at(STATUS) == 0xee);
	/* Header only. */
	D(0, HDR, 16, 0, 0);
	submit(0);
	CHECK(used_idx() == 3 && used_len(2) == 0);
	/* The device goes on. */
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	CHECK(rw_req(VIRTIO_BLK_T_IN, 0, DATA, 512, &st) == 513);
	CHECK(st == VIRTIO_BLK_S_OK);
	stop();
}

/* Fewer than 16 readable bytes: IOERR, whatever the rest says. */
static void test_blk_short_header(void)
{
	REQUIRE(blk_start(false) == 0);
	hdr(HDR, VIRTIO_BLK_T_OUT, 0);
	memset(host(DATA), 0x5a, 512);
	D(0, HDR, 8, NEXT, 1);
	D(1, STATUS, 1, W, 0);
	*host(STATUS) = 0xee;
	submit(0);
	CHECK(used_len(0) == 1);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_IOERR);
	/* No readable part at all: the header sits in writable memory. */
	D(0, HDR, 16, W | NEXT, 1);
	D(1, STATUS, 1, W, 0);
	*host(STATUS) = 0xee;
	submit(0);
	CHECK(used_len(1) == 1);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_IOERR);
	/* 15 bytes, then 512 of data: still a short header? No: the header
	 * is the first 16 bytes of the stream, wherever they are, so this
	 * is an OUT at sector 0 with 511 bytes of data: IOERR. */
	D(0, HDR, 15, NEXT, 1);
	D(1, HDR + 15, 1 + 511, NEXT, 2);
	D(2, STATUS, 1, W, 0);
	submit(0);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_IOERR);
	CHECK(image_whole_intact());
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* Chains that vq_pop refuses (more segments than the device takes, a
 * loop, a buffer outside RAM) break the queue: NEEDS_RESET, config
 * interrupt, nothing done. */
static void test_blk_broken_chains(void)
{
	REQUIRE(blk_start(false) == 0);
	irqs();
	/* An indirect table of 300 data segments. */
	hdr(HDR, VIRTIO_BLK_T_OUT, 0);
	desc_at(ITABLE, 0, HDR, 16, NEXT, 1);
	for (unsigned i = 0; i < 300; i++)
		desc_at(ITABLE, 1 + i, DATA, 1, NEXT, 2 + i);
	desc_at(ITABLE, 301, STATUS, 1, W, 0);
	D(0, ITABLE, 16 * 302, INDIRECT, 0);
	*host(STATUS) = 0xee;
	submit(0);
	CHECK(used_idx() == 0);
	CHECK(status_at(STATUS) == 0xee);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
	CHECK(irqs() == 1);
	/* Later kicks do nothing. */
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 1, W, 0);
	submit(0);
	CHECK(used_idx() == 0);
	CHECK(irqs() == 0);

	/* Status descriptor outside guest RAM. */
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	hdr(HDR, VIRTIO_BLK_T_IN, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, OUTSIDE, 1, W, 0);
	submit(0);
	CHECK(used_idx() == 0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));

	/* A descriptor loop. */
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 1, W | NEXT, 0);
	submit(0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));

	/* The data segment readable after the writable status. */
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	hdr(HDR, VIRTIO_BLK_T_OUT, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 1, W | NEXT, 2);
	D(2, DATA, 512, 0, 0);
	submit(0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));

	/* Indirect without having negotiated it. */
	REQUIRE(driver_up(BIT(VIRTIO_F_VERSION_1), 16) == S_OK);
	desc_at(ITABLE, 0, HDR, 16, NEXT, 1);
	desc_at(ITABLE, 1, STATUS, 1, W, 0);
	D(0, ITABLE, 32, INDIRECT, 0);
	submit(0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));

	/* After all that a reset brings it back. */
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	hdr(HDR, VIRTIO_BLK_T_FLUSH, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 1, W, 0);
	submit(0);
	CHECK(used_idx() == 1);
	CHECK(status_at(STATUS) == VIRTIO_BLK_S_OK);
	CHECK(image_whole_intact());
	stop();
}

static void flush_req(void)
{
	hdr(HDR, VIRTIO_BLK_T_FLUSH, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, STATUS, 1, W, 0);
	submit(0);
}

static void test_blk_interrupts(void)
{
	/* Without EVENT_IDX: the NO_INTERRUPT flag. */
	REQUIRE(blk_start_size(false, IMG_SIZE) == 0);
	REQUIRE(driver_up(F_RING, 16) == S_OK);
	CHECK(!dev.vq[0].event_idx);
	irqs();
	put16(AVAIL, VQ_AVAIL_F_NO_INTERRUPT);
	flush_req();
	CHECK(used_idx() == 1);
	CHECK(irqs() == 0);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	put16(AVAIL, 0);
	flush_req();
	CHECK(used_idx() == 2);
	CHECK(irqs() == 1);
	stop();

	/* EVENT_IDX: interrupt only when used.idx passes used_event. */
	REQUIRE(blk_start_size(false, IMG_SIZE) == 0);
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	CHECK(dev.vq[0].event_idx);
	irqs();
	put16(AVAIL + 4 + 2 * 16, 1);	/* used_event: after the 2nd */
	flush_req();
	CHECK(used_idx() == 1);
	CHECK(irqs() == 0);
	flush_req();
	CHECK(used_idx() == 2);
	CHECK(irqs() == 1);
	flush_req();
	CHECK(irqs() == 0);
	/* The device asks for a kick at the next avail index. */
	CHECK(get16(USED + 4 + 8 * 16) == 3);
	stop();
}

static void test_blk_batch(void)
{
	REQUIRE(blk_start_size(false, IMG_SIZE) == 0);
	REQUIRE(driver_up(F_RING, 128) == S_OK);
	irqs();
	hdr(HDR, VIRTIO_BLK_T_GET_ID, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, DATA, 21, W, 0);
	for (int i = 0; i < 100; i++)
		avail_add(0);
	CHECK(kick() == 1);
	CHECK(used_idx() == VIRTIO_BLK_BATCH);
	CHECK(irqs() == 1);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(used_idx() == 100);
	CHECK(used_len(99) == 21);
	CHECK(irqs() == 1);
	CHECK(ev_run_once(ev, 0) == 0);
	stop();
}

static void test_blk_reset(void)
{
	uint8_t st;

	REQUIRE(blk_start(false) == 0);
	CHECK(rw_req(VIRTIO_BLK_T_IN, 1, DATA, 512, &st) == 513);
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == 0);
	/* Not active: a kick does nothing. */
	CHECK(kick() == 0);
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	memset(host(DATA), 0xaa, 512);
	CHECK(rw_req(VIRTIO_BLK_T_IN, 2, DATA, 512, &st) == 513);
	CHECK(st == VIRTIO_BLK_S_OK);
	CHECK(used_idx() == 1);
	CHECK(guest_matches_image(DATA, 1024, 512));
	stop();
}

static void test_blk_create_errors(void)
{
	struct virtio_blk_cfg cfg = { .path = "/nonexistent/disk.img" };

	fresh();
	CHECK(virtio_blk_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &cfg,
				&err) == -1);
	CHECK_CONTAINS(err.msg, "virtio-blk: open /nonexistent/disk.img: No such file");
	virtio_blk_destroy(&dev);	/* harmless */

	cfg.path = "/dev/null";
	CHECK(virtio_blk_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &cfg,
				&err) == -1);
	CHECK_CONTAINS(err.msg, "/dev/null is neither a regular file nor a block device");

	cfg.path = "/tmp";
	cfg.read_only = true;
	CHECK(virtio_blk_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &cfg,
				&err) == -1);
	CHECK_CONTAINS(err.msg, "neither a regular file");
	cfg.read_only = false;
	CHECK(virtio_blk_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &cfg,
				&err) == -1);
	CHECK_CONTAINS(err.msg, "open /tmp:");

	REQUIRE(write_image(512) == 0);
	cfg.path = img_path;
	cfg.serial = "123456789012345678901";	/* 21 */
	CHECK(virtio_blk_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &cfg,
				&err) == -1);
	CHECK_CONTAINS(err.msg, "longer than 20 bytes");
	cfg.serial = "12345678901234567890";	/* 20: fits exactly */
	REQUIRE(virtio_blk_create(&dev, ev, &gm, BASE, GSI, irq_fd, NULL, &cfg,
				  &err) == 0);
	destroy_fn = virtio_blk_destroy;
	REQUIRE(driver_up(F_ALL, 16) == S_OK);
	memset(host(DATA), 0xaa, 64);
	hdr(HDR, VIRTIO_BLK_T_GET_ID, 0);
	D(0, HDR, 16, NEXT, 1);
	D(1, DATA, 21, W, 0);
	submit(0);
	CHECK(memcmp(host(DATA), "12345678901234567890", 20) == 0);
	CHECK(status_at(DATA + 20) == VIRTIO_BLK_S_OK);
	stop();
	virtio_blk_destroy(&dev);	/* twice: harmless */
}

int main(void)
{
	struct kr_err e = { 0 };
	const char *tmp = getenv("TMPDIR");
	int fd;

	alarm(120);
	kr_log_set_level(KR_LOG_ERROR);	/* expected NEEDS_RESET warnings */
	snprintf(img_path, sizeof(img_path), "%s/test_vmm_devices.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(img_path);
	ram = aligned_alloc(4096, RAM_SIZE);
	irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev = ev_new(&e);
	gm_init(&gm);
	vqd_gm = &gm;
	vqd_dev = &dev;
	if (fd < 0 || !ram || irq_fd < 0 || !ev ||
	    gm_add_region(&gm, 0, RAM_SIZE, ram, &e) < 0) {
		printf("Bail out! setup: %s %s\n", e.msg, strerror(errno));
		return 1;
	}
	close(fd);

	KR_TEST(test_rng_ids);
	KR_TEST(test_rng_fill);
	KR_TEST(test_rng_segments);
	KR_TEST(test_rng_cap);
	KR_TEST(test_rng_no_interrupt);
	KR_TEST(test_rng_batch);
	KR_TEST(test_rng_broken);
	KR_TEST(test_rng_create_fails);
	KR_TEST(test_blk_config);
	KR_TEST(test_blk_read);
	KR_TEST(test_blk_read_split);
	KR_TEST(test_blk_read_indirect);
	KR_TEST(test_blk_read_past_end);
	KR_TEST(test_blk_sector_overflow);
	KR_TEST(test_blk_bad_length);
	KR_TEST(test_blk_write);
	KR_TEST(test_blk_read_only);
	KR_TEST(test_blk_flush_get_id_unsupp);
	KR_TEST(test_blk_no_status);
	KR_TEST(test_blk_short_header);
	KR_TEST(test_blk_broken_chains);
	KR_TEST(test_blk_interrupts);
	KR_TEST(test_blk_batch);
	KR_TEST(test_blk_reset);
	KR_TEST(test_blk_create_errors);
	stop();
	unlink(img_path);
	ev_free(ev);
	close(irq_fd);
	free(ram);
	return kr_test_done();
}
