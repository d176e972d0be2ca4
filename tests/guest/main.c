/* The test guest's main: boot checks, command line, initrd, devices,
 * verdict.  README.md describes the output lines. */
#include "virtio.h"

static const char *dev_name(uint32_t id)
{
	switch (id) {
	case VIRTIO_ID_BLOCK: return "blk";
	case VIRTIO_ID_RNG: return "rng";
	case VIRTIO_ID_VSOCK: return "vsock";
	default: return "unknown";
	}
}

static void initrd_check(const struct boot_info *bi)
{
	if (!bi->initrd_size) {
		report("initrd none");
		if (params.have_initrd_sum)
			fail("testguest.initrd_sum given but there is no initrd");
		return;
	}
	uint32_t sum = fnv1a32((const void *)(uintptr_t)bi->initrd_addr, bi->initrd_size);
	report("initrd addr=0x%lx size=%lu fnv1a32=%08x", bi->initrd_addr,
	       bi->initrd_size, sum);
	if (!params.have_initrd_sum)
		return;
	if (sum == params.initrd_sum)
		report("initrd checksum ok");
	else
		fail("initrd checksum %08x, expected %08x", sum, params.initrd_sum);
}

/* Probe one announced window; run the test for its device type. */
static unsigned probe(unsigned i, struct virtio_dev *d)
{
	const struct mmio_dev_spec *s = &params.dev[i];

	*d = (struct virtio_dev){ .base = s->base, .irq = s->irq };
	uint32_t magic = vreg_read(d, VIRTIO_MMIO_MAGIC_VALUE);
	uint32_t version = vreg_read(d, VIRTIO_MMIO_VERSION);
	d->id = vreg_read(d, VIRTIO_MMIO_DEVICE_ID);
	d->name = dev_name(d->id);
	report("virtio %u at 0x%lx: magic=0x%x version=%u device_id=%u (%s) vendor=0x%x",
	       i, s->base, magic, version, d->id, d->name,
	       vreg_read(d, VIRTIO_MMIO_VENDOR_ID));
	if (magic != VIRTIO_MMIO_MAGIC_VIRT) {
		fail("virtio %u at 0x%lx: bad magic 0x%x", i, s->base, magic);
		return 0;
	}
	if (version != 2) {
		fail("virtio %u at 0x%lx: version %u, expected 2", i, s->base, version);
		return 0;
	}
	unsigned before = fail_count(), bit;
	switch (d->id) {
	case 0:
		report("virtio %u: no device (placeholder)", i);
		return 0;
	case VIRTIO_ID_RNG:
		rng_test(d);
		bit = NEED_RNG;
		break;
	case VIRTIO_ID_BLOCK:
		blk_test(d);
		bit = NEED_BLK;
		break;
	case VIRTIO_ID_VSOCK:
		vsock_test(d);
		bit = NEED_VSOCK;
		break;
	default:
		report("virtio %u: device id %u not tested", i, d->id);
		return 0;
	}
	/* Always, also after a failure: the device must stop using the
	 * guest's buffers before the next one is probed. */
	virtio_reset(d);
	return fail_count() == before ? bit : 0;
}

void guest_main(void);
void guest_main(void)
{
	/* entry.S already sent "T": this completes "TESTGUEST: boot ...". */
	gprintf("ESTGUEST: boot protocol=%s\n",
		boot_regs.proto == BOOT_PVH ? "pvh" : "linux64");
	idt_setup();

	struct boot_info bi;
	boot_check(&bi);
	cmdline_parse(bi.cmdline);
	initrd_check(&bi);

	static struct virtio_dev dev;	/* one at a time: each is reset after */
	unsigned passed = 0;
	for (unsigned i = 0; i < params.ndev; i++)
		passed |= probe(i, &dev);
	static const struct { unsigned bit; const char *name; } need[] = {
		{ NEED_RNG, "rng" }, { NEED_BLK, "blk" }, { NEED_VSOCK, "vsock" },
	};
	for (unsigned i = 0; i < ARRAY_SIZE(need); i++)
		if ((params.need & need[i].bit) && !(passed & need[i].bit))
			fail("testguest.need: no working %s device", need[i].name);

	if (params.linux64_selftest && boot_regs.proto == BOOT_PVH && !failed())
		linux64_reenter(&bi);
	if (params.fault) {
		report("executing ud2 (testguest.fault=1)");
		__asm__ __volatile__("ud2");
	}
	finish();
}
