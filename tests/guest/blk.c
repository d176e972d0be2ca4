/* virtio-blk (device ID 2): capacity, sector 0 (printed for the host to
 * compare), sector 1 written with a pattern and read back, FLUSH when
 * offered, GET_ID.  Requests are one chain each: 16-byte header
 * (readable), data, status byte (writable). */
#include "virtio.h"

#include <linux/virtio_blk.h>	/* request types, status, feature bits */

#define SECTOR 512
#define PATTERN "KATA-VMM-BLK-WRITE"

struct blk_req_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

static struct {
	struct virtio_dev *d;
	struct blk_req_hdr *hdr;
	uint8_t *status;
	bool isr_checked;
} blk;

/* One request; returns the status byte, or -1 (after fail()). */
static int blk_request(uint32_t type, uint64_t sector, void *data, uint32_t len,
		       bool device_writes, const char *what)
{
	struct virtq *q = &blk.d->vq[0];
	struct vbuf b[3];
	unsigned n = 0;

	*blk.hdr = (struct blk_req_hdr){ .type = type, .sector = sector };
	*blk.status = 0xff;
	b[n++] = (struct vbuf){ blk.hdr, sizeof(*blk.hdr), false };
	if (len)
		b[n++] = (struct vbuf){ data, len, device_writes };
	b[n++] = (struct vbuf){ blk.status, 1, true };
	virtq_add(q, b, n, blk.hdr);
	virtq_kick(q);

	void *tok;
	uint32_t used;
	if (!virtq_wait(q, &tok, &used, what))
		return -1;
	if (!blk.isr_checked) {
		virtio_isr_check(blk.d, what);
		blk.isr_checked = true;
	}
	uint32_t want = (device_writes ? len : 0) + 1;
	if (*blk.status == VIRTIO_BLK_S_OK && used != want &&
	    !(type == VIRTIO_BLK_T_GET_ID && used >= 1 && used <= want)) {
		fail("blk: %s: used len %u, expected %u", what, used, want);
		return -1;
	}
	return *blk.status;
}

static void hex(const uint8_t *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		gprintf("%02x", p[i]);
}

void blk_test(struct virtio_dev *d)
{
	blk.d = d;
	blk.isr_checked = false;
	if (!virtio_begin(d, (1ull << VIRTIO_BLK_F_RO) | (1ull << VIRTIO_BLK_F_FLUSH)) || !virtq_setup(d, 0))
		return;
	virtio_driver_ok(d);
	blk.hdr = arena_alloc(sizeof(*blk.hdr), 16);
	blk.status = arena_alloc(1, 1);
	uint8_t *buf = arena_alloc(SECTOR, SECTOR);
	uint8_t *pat = arena_alloc(SECTOR, SECTOR);

	uint64_t cap = vcfg64(d, 0);
	report("blk: capacity=%lu sectors", cap);
	if (cap < 2) {
		fail("blk: capacity %lu < 2 sectors", cap);
		return;
	}

	int st = blk_request(VIRTIO_BLK_T_IN, 0, buf, SECTOR, true, "read sector 0");
	if (st < 0)
		return;
	if (st != VIRTIO_BLK_S_OK) {
		fail("blk: read sector 0: status %d", st);
		return;
	}
	serial_write("TESTGUEST: blk: sector 0 bytes 0-15: ", 37);
	hex(buf, 16);
	serial_putc('\n');

	if (d->features & (1ull << VIRTIO_BLK_F_RO)) {
		report("blk: read-only device, write test skipped");
	} else {
		/* PATTERN, le64 sector number, then byte i = i & 0xff. */
		for (unsigned i = 0; i < SECTOR; i++)
			pat[i] = (uint8_t)i;
		memcpy(pat, PATTERN, sizeof(PATTERN) - 1);
		uint64_t one = 1;
		memcpy(pat + sizeof(PATTERN) - 1, &one, 8);
		st = blk_request(VIRTIO_BLK_T_OUT, 1, pat, SECTOR, false, "write sector 1");
		if (st != VIRTIO_BLK_S_OK) {
			if (st > 0)
				fail("blk: write sector 1: status %d", st);
			return;
		}
		memset(buf, 0, SECTOR);
		st = blk_request(VIRTIO_BLK_T_IN, 1, buf, SECTOR, true, "read sector 1");
		if (st != VIRTIO_BLK_S_OK) {
			if (st > 0)
				fail("blk: read sector 1: status %d", st);
			return;
		}
		if (memcmp(buf, pat, SECTOR)) {
			fail("blk: sector 1 read back differs from what was written");
			return;
		}
		report("blk: sector 1 written and read back");
		if (d->features & (1ull << VIRTIO_BLK_F_FLUSH)) {
			st = blk_request(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, false, "flush");
			if (st != VIRTIO_BLK_S_OK) {
				if (st > 0)
					fail("blk: flush: status %d", st);
				return;
			}
			report("blk: flush ok");
		}
	}
	/* An out-of-range read must fail with IOERR, not succeed. */
	st = blk_request(VIRTIO_BLK_T_IN, cap, buf, SECTOR, true, "read past the end");
	if (st < 0)
		return;
	if (st == VIRTIO_BLK_S_OK) {
		fail("blk: read of sector %lu (= capacity) succeeded", cap);
		return;
	}
	report("blk: read past the end: status %d", st);

	char id[21] = { 0 };
	st = blk_request(VIRTIO_BLK_T_GET_ID, 0, id, 20, true, "get id");
	if (st < 0)
		return;
	if (st == VIRTIO_BLK_S_OK) {
		serial_write("TESTGUEST: blk: id ", 19);
		print_quoted(id, strnlen(id, 20));
		serial_putc('\n');
	} else {
		report("blk: get id: status %d", st);
	}
	report("blk ok");
}
