/* Intel MP table for the guest (specs/microvm.md 2.6).  The table is built
 * in a host buffer and copied into guest memory with one checked write, so
 * the checksums are computed over exactly the bytes the guest sees. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "mptable.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the MP table is written in host byte order: little-endian hosts only"
#endif

/* Field layouts: Linux arch/x86/include/asm/mpspec_def.h. */
struct mpf_intel {			/* floating pointer, 16 bytes */
	char signature[4];		/* "_MP_" */
	uint32_t physptr;		/* configuration table */
	uint8_t length;			/* in 16-byte units: 1 */
	uint8_t specification;		/* 4 = version 1.4 */
	uint8_t checksum;
	uint8_t feature1;		/* 0: a configuration table exists */
	uint8_t feature2;
	uint8_t feature3;
	uint8_t feature4;
	uint8_t feature5;
} __attribute__((packed));

struct mpc_table {			/* configuration table, 44 bytes */
	char signature[4];		/* "PCMP" */
	uint16_t length;		/* header + entries */
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;		/* number of entries */
	uint32_t lapic;
	uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {			/* 20 bytes */
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;		/* signature: family/model/stepping */
	uint32_t featureflag;		/* CPUID.1:EDX subset */
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {			/* 8 bytes */
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {			/* 8 bytes */
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {			/* I/O and local interrupt, 8 bytes */
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;		/* 0: as the bus (ISA: edge, high) */
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

_Static_assert(sizeof(struct mpf_intel) == 16, "mpf_intel");
_Static_assert(sizeof(struct mpc_table) == 44, "mpc_table");
_Static_assert(sizeof(struct mpc_cpu) == 20, "mpc_cpu");
_Static_assert(sizeof(struct mpc_bus) == 8, "mpc_bus");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "mpc_ioapic");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "mpc_intsrc");

#define MP_PROCESSOR		0
#define MP_BUS			1
#define MP_IOAPIC		2
#define MP_INTSRC		3
#define MP_LINTSRC		4

#define CPU_ENABLED		1
#define CPU_BOOTPROCESSOR	2
#define MPC_APIC_USABLE		1

#define MP_INT			0
#define MP_NMI			1
#define MP_EXTINT		3

#define ISA_BUS			0
#define ALL_LAPICS		0xff

/* Values Firecracker and kvmtool use: a family-6 CPU with FPU and APIC,
 * LAPIC version 0x14.  0x11 is what KVM's in-kernel IOAPIC reports in its
 * version register. */
#define LAPIC_VERSION		0x14
#define IOAPIC_VERSION		0x11
#define CPU_SIGNATURE		0x600
#define CPU_FEATURES		0x201

/* Entries after the processors: bus, IOAPIC, I/O interrupts, 2 local. */
#define FIXED_ENTRIES		(1u + 1u + MPTABLE_IRQS + 2u)

size_t mptable_size(unsigned vcpus)
{
	return sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
	       (size_t)vcpus * sizeof(struct mpc_cpu) +
	       sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +
	       (MPTABLE_IRQS + 2) * sizeof(struct mpc_intsrc);
}

/* The byte that makes len bytes sum to 0 modulo 256. */
static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

static uint8_t *put_cpus(uint8_t *p, unsigned vcpus)
{
	unsigned i;

	for (i = 0; i < vcpus; i++) {
		struct mpc_cpu c = {
			.type = MP_PROCESSOR,
			.apicid = (uint8_t)i,	/* = KVM vCPU id */
			.apicver = LAPIC_VERSION,
			.cpuflag = CPU_ENABLED,
			.cpufeature = CPU_SIGNATURE,
			.featureflag = CPU_FEATURES,
		};

		if (i == 0)
			c.cpuflag |= CPU_BOOTPROCESSOR;
		memcpy(p, &c, sizeof(c));
		p += sizeof(c);
	}
	return p;
}

static uint8_t *put_intsrc(uint8_t *p, uint8_t type, uint8_t irqtype,
			   uint8_t srcbusirq, uint8_t dstapic, uint8_t dstirq)
{
	struct mpc_intsrc s = {
		.type = type,
		.irqtype = irqtype,
		.irqflag = 0,
		.srcbus = ISA_BUS,
		.srcbusirq = srcbusirq,
		.dstapic = dstapic,
		.dstirq = dstirq,
	};

	memcpy(p, &s, sizeof(s));
	return p + sizeof(s);
}

/* Bus, IOAPIC and interrupt routing: everything after the processors. */
static uint8_t *put_io(uint8_t *p, uint8_t ioapic_id)
{
	struct mpc_bus bus = { .type = MP_BUS, .busid = ISA_BUS };
	struct mpc_ioapic ioapic = {
		.type = MP_IOAPIC,
		.apicid = ioapic_id,
		.apicver = IOAPIC_VERSION,
		.flags = MPC_APIC_USABLE,
		.apicaddr = (uint32_t)LAYOUT_IOAPIC,
	};
	unsigned i;

	memcpy(bus.bustype, "ISA   ", 6);
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	memcpy(p, &ioapic, sizeof(ioapic));
	p += sizeof(ioapic);
	/* The identity routing KVM's in-kernel IOAPIC uses by default. */
	for (i = 0; i < MPTABLE_IRQS; i++)
		p = put_intsrc(p, MP_INTSRC, MP_INT, (uint8_t)i, ioapic_id,
			       (uint8_t)i);
	p = put_intsrc(p, MP_LINTSRC, MP_EXTINT, 0, 0, 0);
	return put_intsrc(p, MP_LINTSRC, MP_NMI, 0, ALL_LAPICS, 1);
}

int mptable_write(const struct guest_mem *gm, unsigned vcpus,
		  struct kr_err *err)
{
	struct mpf_intel mpf = { 0 };
	struct mpc_table mpc = { 0 };
	uint8_t *buf, *p;
	size_t size;
	int ret;

	if (vcpus == 0 || vcpus > MPTABLE_MAX_VCPUS)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "MP table: %u vCPUs, must be 1..%u", vcpus,
				  MPTABLE_MAX_VCPUS);
	size = mptable_size(vcpus);
	/* Linux only looks for the table below 1 MiB. */
	if (size > LAYOUT_HIMEM_START - LAYOUT_MPTABLE)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "MP table: %zu bytes at 0x%llx would cross"
				  " 1 MiB", size, LAYOUT_MPTABLE);
	buf = calloc(1, size);
	if (!buf)
		return kr_err_errno(err, ENOMEM, "MP table");

	memcpy(mpc.signature, "PCMP", 4);
	mpc.length = (uint16_t)(size - sizeof(mpf));
	mpc.spec = 4;
	memcpy(mpc.oem, "KATARUN ", 8);
	memcpy(mpc.productid, "KATA-VMM    ", 12);
	mpc.oemcount = (uint16_t)(vcpus + FIXED_ENTRIES);
	mpc.lapic = (uint32_t)LAYOUT_LAPIC;
	p = buf + sizeof(mpf) + sizeof(mpc);
	p = put_cpus(p, vcpus);
	put_io(p, (uint8_t)(vcpus + 1));
	memcpy(buf + sizeof(mpf), &mpc, sizeof(mpc));
	buf[sizeof(mpf) + offsetof(struct mpc_table, checksum)] =
		checksum(buf + sizeof(mpf), mpc.length);

	memcpy(mpf.signature, "_MP_", 4);
	mpf.physptr = (uint32_t)(LAYOUT_MPTABLE + sizeof(mpf));
	mpf.length = 1;
	mpf.specification = 4;
	mpf.checksum = checksum((const uint8_t *)&mpf, sizeof(mpf));
	memcpy(buf, &mpf, sizeof(mpf));

	ret = gm_write(gm, LAYOUT_MPTABLE, buf, size, err);
	free(buf);
	if (ret < 0)
		return kr_err_wrap(err, "MP table");
	return 0;
}
