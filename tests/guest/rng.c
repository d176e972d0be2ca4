/* virtio-rng (device ID 4): 64 bytes from the one request queue, not all
 * zero.  The device may return fewer bytes than offered: ask again. */
#include "virtio.h"

#define RNG_BYTES 64

void rng_test(struct virtio_dev *d)
{
	struct virtq *q = &d->vq[0];

	if (!virtio_begin(d, 0) || !virtq_setup(d, 0))
		return;
	virtio_driver_ok(d);

	uint8_t *buf = arena_alloc(RNG_BYTES, 64);
	uint32_t got = 0, reqs = 0;
	while (got < RNG_BYTES && reqs < 16) {
		struct vbuf b = { buf + got, RNG_BYTES - got, true };
		void *tok;
		uint32_t len;
		virtq_add(q, &b, 1, buf);
		virtq_kick(q);
		if (!virtq_wait(q, &tok, &len, "entropy request"))
			return;
		if (len > RNG_BYTES - got) {
			fail("rng: used len %u > buffer %u", len, RNG_BYTES - got);
			return;
		}
		if (!reqs)
			virtio_isr_check(d, "entropy request");
		got += len;
		reqs++;
	}
	if (got < RNG_BYTES) {
		fail("rng: only %u bytes after %u requests", got, reqs);
		return;
	}
	bool zero = true;
	for (unsigned i = 0; i < RNG_BYTES; i++)
		zero &= !buf[i];
	serial_write("TESTGUEST: rng: 64 bytes in ", 28);
	gprintf("%u request(s): ", reqs);
	for (unsigned i = 0; i < 16; i++)
		gprintf("%02x", buf[i]);
	serial_write("...\n", 4);
	if (zero)
		fail("rng: 64 zero bytes");
	else
		report("rng ok");
}
