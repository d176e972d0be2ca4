/* Unit tests for hypervisor/kvm/boot.c and mptable.c, no /dev/kvm needed.
 * Guest RAM is an anonymous mapping, poisoned with 0xcc so that the tests
 * see exactly what the loader wrote (and zeroed).  The kernels are written
 * byte by byte into a temporary directory: bzImages with a realistic setup
 * header, ELF64 files with and without the Xen PVH note, then the same
 * with every kind of damage.  Expected values are literals from the specs
 * (../shared/specs/microvm.md 0, 1, 2.6), not the loader's own constants,
 * so a wrong constant in the loader fails here.  If a cached guest kernel
 * exists (/var/cache/kata-run/kernel/<key>/), the real bzImage and vmlinux
 * are loaded too; otherwise that test is a SKIP. */
#include <dirent.h>
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "boot.h"
#include "guest_mem.h"
#include "layout.h"
#include "mptable.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define POISON 0xcc
#define POISON_MAX (64 * MiB)	/* poison at most this much of big guests */

static struct guest_mem gm;
static uint8_t *ram_low, *ram_high;
static uint64_t ram_low_size, ram_high_size, ram_size;
static unsigned vcpus = 2;
static struct kr_err err;
static struct boot_cpu cpu;
static char tmpdir[] = "/tmp/test_vmm_boot.XXXXXX";

/* ---- guest RAM ---- */

static void ram_free(void)
{
	if (ram_low)
		munmap(ram_low, ram_low_size);
	if (ram_high)
		munmap(ram_high, ram_high_size);
	ram_low = ram_high = NULL;
	gm_init(&gm);
}

/* size bytes of guest RAM laid out as the VMM does: below the MMIO hole,
 * the rest from 4 GiB.  MAP_NORESERVE: multi-GiB guests only touch what
 * the loader writes.  Returns 0, or -1 if the host refuses the mapping. */
static int ram_init(uint64_t size)
{
	struct kr_err e;

	ram_free();
	ram_size = size;
	ram_low_size = size < LAYOUT_MMIO_START ? size : LAYOUT_MMIO_START;
	ram_high_size = size - ram_low_size;
	ram_low = mmap(NULL, ram_low_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram_low == MAP_FAILED) {
		ram_low = NULL;
		return -1;
	}
	memset(ram_low, POISON,
	       ram_low_size < POISON_MAX ? ram_low_size : POISON_MAX);
	if (gm_add_region(&gm, 0, ram_low_size, ram_low, &e) < 0)
		abort();
	if (!ram_high_size)
		return 0;
	ram_high = mmap(NULL, ram_high_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram_high == MAP_FAILED) {
		ram_high = NULL;
		return -1;
	}
	if (gm_add_region(&gm, LAYOUT_4G, ram_high_size, ram_high, &e) < 0)
		abort();
	return 0;
}

static uint8_t *host(uint64_t gpa)
{
	uint8_t *p = gm_ptr(&gm, gpa, 1);

	if (!p)
		abort();
	return p;
}

static uint8_t g8(uint64_t gpa)
{
	return *host(gpa);
}

static uint16_t g16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, host(gpa), 2);
	return le16toh(v);
}

static uint32_t g32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, host(gpa), 4);
	return le32toh(v);
}

static uint64_t g64(uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, host(gpa), 8);
	return le64toh(v);
}

/* All len bytes at gpa equal b. */
static int all_bytes(uint64_t gpa, uint64_t len, uint8_t b)
{
	const uint8_t *p = gm_ptr(&gm, gpa, len);
	uint64_t i;

	if (!p)
		return 0;
	for (i = 0; i < len; i++)
		if (p[i] != b)
			return 0;
	return 1;
}

/* ---- byte buffers ---- */

static void p8(uint8_t *b, size_t off, uint8_t v)
{
	b[off] = v;
}

static void p16(uint8_t *b, size_t off, uint16_t v)
{
	v = htole16(v);
	memcpy(b + off, &v, 2);
}

static void p32(uint8_t *b, size_t off, uint32_t v)
{
	v = htole32(v);
	memcpy(b + off, &v, 4);
}

static void p64(uint8_t *b, size_t off, uint64_t v)
{
	v = htole64(v);
	memcpy(b + off, &v, 8);
}

static uint32_t r32(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return le32toh(v);
}

static uint64_t r64(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return le64toh(v);
}

static void pattern(uint8_t *b, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

/* ---- files ---- */

static const char *tmp_path(const char *name)
{
	static char paths[16][PATH_MAX];
	static unsigned next;
	char *p = paths[next++ % 16];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

/* name in tmpdir holding buf, then extended (sparse, zeros) to total. */
static const char *write_sparse(const char *name, const void *buf,
				size_t len, uint64_t total)
{
	const char *p = tmp_path(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || kr_write_full(fd, buf, len) < 0 ||
	    (total > len && ftruncate(fd, (off_t)total) < 0))
		abort();
	close(fd);
	return p;
}

static const char *write_tmp(const char *name, const void *buf, size_t len)
{
	return write_sparse(name, buf, len, len);
}

/* ---- loading ---- */

static int boot(const char *kernel, const char *initrd, const char *cmdline,
		enum boot_proto proto)
{
	struct boot_args a = {
		.kernel = kernel,
		.initrd = initrd,
		.cmdline = cmdline,
		.ram_size = ram_size,
		.vcpus = vcpus,
		.proto = proto,
	};

	memset(&err, 0, sizeof(err));
	return boot_load(&gm, &a, &cpu, &err);
}

#define REQUIRE_BOOT(k, i, c, p)                                             \
	do {                                                                 \
		int r_ = boot((k), (i), (c), (p));                           \
		if (r_ != 0)                                                 \
			printf("#   boot_load: %s\n", err.msg);              \
		REQUIRE(r_ == 0);                                            \
	} while (0)

/* The load fails and the message says why. */
#define CHECK_BOOT_FAILS(k, i, c, p, want)                                   \
	do {                                                                 \
		CHECK(boot((k), (i), (c), (p)) == -1);                       \
		CHECK_CONTAINS(err.msg, (want));                             \
	} while (0)

/* ---- expected boot state (literal values from the spec) ---- */

struct e820 {
	uint64_t addr, size;
	uint32_t type;
};

static unsigned expected_e820(uint64_t ram, struct e820 e[4])
{
	uint64_t low = ram < 0xc0000000ull ? ram : 0xc0000000ull;
	unsigned n = 0;

	e[n++] = (struct e820){ 0, 0x9fc00, 1 };
	e[n++] = (struct e820){ 0x9fc00, 0x100000 - 0x9fc00, 2 };
	e[n++] = (struct e820){ 0x100000, low - 0x100000, 1 };
	if (ram > 0xc0000000ull)
		e[n++] = (struct e820){ 0x100000000ull, ram - 0xc0000000ull,
					1 };
	return n;
}

/* e820_entries and e820_table of an expected zero page. */
static void expect_zp_e820(uint8_t *zp, uint64_t ram)
{
	struct e820 e[4];
	unsigned n = expected_e820(ram, e), i;

	zp[0x1e8] = (uint8_t)n;
	for (i = 0; i < n; i++) {
		p64(zp, 0x2d0 + 20 * i, e[i].addr);
		p64(zp, 0x2d0 + 20 * i + 8, e[i].size);
		p32(zp, 0x2d0 + 20 * i + 16, e[i].type);
	}
}

/* The zero page in guest memory equals want; on a mismatch, say where. */
static void check_zero_page(const uint8_t *want)
{
	const uint8_t *zp = host(LAYOUT_ZERO_PAGE);
	unsigned i, bad = 0;

	for (i = 0; i < 4096; i++)
		if (zp[i] != want[i] && bad++ < 8)
			printf("#   zero page +0x%03x: 0x%02x, want"
			       " 0x%02x\n", i, zp[i], want[i]);
	CHECK(bad == 0);
}

static void check_seg(const struct kvm_segment *s, uint64_t base,
		      uint32_t limit, uint16_t sel, uint8_t type, uint8_t db,
		      uint8_t sflag, uint8_t l, uint8_t g)
{
	CHECK(s->base == base);
	CHECK(s->limit == limit);
	CHECK(s->selector == sel);
	CHECK(s->type == type);
	CHECK(s->present == 1);
	CHECK(s->dpl == 0);
	CHECK(s->db == db);
	CHECK(s->s == sflag);
	CHECK(s->l == l);
	CHECK(s->g == g);
	CHECK(s->avl == 0);
	CHECK(s->unusable == 0);
}

static void check_common_sregs(const struct kvm_sregs *sr)
{
	const struct kvm_segment *data[] = { &sr->ds, &sr->es, &sr->fs,
					     &sr->gs, &sr->ss };
	unsigned i;

	for (i = 0; i < KR_ARRAY_SIZE(data); i++)
		check_seg(data[i], 0, 0xffffffff, 0x10, 3, 1, 1, 0, 1);
	CHECK(sr->ldt.selector == 0 && sr->ldt.base == 0);
	CHECK(sr->ldt.limit == 0xffff && sr->ldt.type == 2);
	CHECK(sr->ldt.present == 1 && sr->ldt.s == 0);
	CHECK(sr->gdt.base == 0x500 && sr->gdt.limit == 31);
	CHECK(sr->idt.base == 0x520 && sr->idt.limit == 7);
	CHECK(sr->cr2 == 0 && sr->cr8 == 0);
	CHECK(sr->apic_base == 0xfee00900);
	for (i = 0; i < KR_ARRAY_SIZE(sr->interrupt_bitmap); i++)
		CHECK(sr->interrupt_bitmap[i] == 0);
	CHECK(g64(0x520) == 0);		/* the IDT's one entry */
}

/* 64-bit entry: paging on, identity map, Firecracker's GDT. */
static void check_linux64_cpu(uint64_t rip)
{
	const struct kvm_regs *r = &cpu.regs;
	const struct kvm_sregs *sr = &cpu.sregs;
	unsigned i;

	CHECK(cpu.proto == BOOT_LINUX64);
	CHECKF(r->rip == rip, "rip 0x%llx", (unsigned long long)r->rip);
	CHECK(r->rsi == 0x7000);
	CHECK(r->rsp == 0x8ff0 && r->rbp == 0x8ff0);
	CHECK(r->rflags == 2);
	CHECK(r->rax == 0 && r->rbx == 0 && r->rcx == 0 && r->rdx == 0);
	CHECK(r->rdi == 0 && r->r8 == 0 && r->r9 == 0 && r->r10 == 0);
	CHECK(r->r11 == 0 && r->r12 == 0 && r->r13 == 0 && r->r14 == 0);
	CHECK(r->r15 == 0);

	check_seg(&sr->cs, 0, 0xffffffff, 0x08, 11, 0, 1, 1, 1);
	check_seg(&sr->tr, 0, 0xffffffff, 0x18, 11, 0, 0, 0, 1);
	check_common_sregs(sr);
	CHECK(sr->cr0 == 0x80000011);
	CHECK(sr->cr3 == 0x9000);
	CHECK(sr->cr4 == 0x20);
	CHECK(sr->efer == 0x500);

	CHECK(g64(0x500) == 0);
	CHECK(g64(0x508) == 0x00af9b000000ffffull);
	CHECK(g64(0x510) == 0x00cf93000000ffffull);
	CHECK(g64(0x518) == 0x008f8b000000ffffull);

	CHECK(g64(0x9000) == 0xa003);
	CHECK(all_bytes(0x9008, 4096 - 8, 0));
	CHECK(g64(0xa000) == 0xb003);
	CHECK(all_bytes(0xa008, 4096 - 8, 0));
	for (i = 0; i < 512; i++)
		CHECKF(g64(0xb000 + 8ull * i) == (((uint64_t)i << 21) | 0x83),
		       "PD[%u]", i);
}

/* PVH entry: 32-bit protected mode, paging off, EBX = start info. */
static void check_pvh_cpu(uint64_t rip)
{
	const struct kvm_regs *r = &cpu.regs;
	const struct kvm_sregs *sr = &cpu.sregs;

	CHECK(cpu.proto == BOOT_PVH);
	CHECKF(r->rip == rip, "rip 0x%llx", (unsigned long long)r->rip);
	CHECK(r->rbx == 0x6000);
	CHECK(r->rflags == 2);
	CHECK(r->rax == 0 && r->rcx == 0 && r->rdx == 0 && r->rsi == 0);
	CHECK(r->rdi == 0 && r->rsp == 0 && r->rbp == 0);

	check_seg(&sr->cs, 0, 0xffffffff, 0x08, 11, 1, 1, 0, 1);
	check_seg(&sr->tr, 0, 0x67, 0x18, 11, 0, 0, 0, 0);
	check_common_sregs(sr);
	CHECK(sr->cr0 == 0x11);
	CHECK(sr->cr3 == 0 && sr->cr4 == 0 && sr->efer == 0);

	CHECK(g64(0x500) == 0);
	CHECK(g64(0x508) == 0x00cf9b000000ffffull);
	CHECK(g64(0x510) == 0x00cf93000000ffffull);
	CHECK(g64(0x518) == 0x00008b0000000067ull);
	/* No page tables in PVH mode: that memory is untouched. */
	CHECK(all_bytes(0x9000, 0x3000, POISON));
}

static void check_pvh_info(uint64_t initrd, uint64_t initrd_size)
{
	struct e820 e[4];
	unsigned n = expected_e820(ram_size, e), i;

	CHECK(g32(0x6000) == 0x336ec578);
	CHECK(g32(0x6004) == 1);
	CHECK(g32(0x6008) == 0);
	CHECK(g32(0x600c) == (initrd_size ? 1 : 0));
	CHECK(g64(0x6010) == (initrd_size ? 0x6040 : 0));
	CHECK(g64(0x6018) == 0x20000);
	CHECK(g64(0x6020) == 0);
	CHECK(g64(0x6028) == 0x7000);
	CHECK(g32(0x6030) == n);
	CHECK(g32(0x6034) == 0);
	if (initrd_size) {
		CHECK(g64(0x6040) == initrd);
		CHECK(g64(0x6048) == initrd_size);
		CHECK(g64(0x6050) == 0 && g64(0x6058) == 0);
	}
	for (i = 0; i < n; i++) {
		CHECK(g64(0x7000 + 24 * i) == e[i].addr);
		CHECK(g64(0x7000 + 24 * i + 8) == e[i].size);
		CHECK(g32(0x7000 + 24 * i + 16) == e[i].type);
		CHECK(g32(0x7000 + 24 * i + 20) == 0);
	}
}

/* The command line area: the string, then zeros to the end of 4 KiB. */
static void check_cmdline(const char *c)
{
	size_t n = strlen(c);

	CHECK(memcmp(host(0x20000), c, n) == 0);
	CHECK(all_bytes(0x20000 + n, 4096 - n, 0));
}

/* ---- MP table ---- */

static uint8_t sum(uint64_t gpa, uint64_t len)
{
	uint8_t s = 0;

	while (len--)
		s += g8(gpa++);
	return s;
}

static void check_mptable(unsigned n)
{
	const uint64_t mpf = 0x9fc00, mpc = 0x9fc10;
	unsigned len = 44 + 20 * n + 8 + 8 + 24 * 8 + 2 * 8, i;
	uint64_t e = mpc + 44;

	CHECK(memcmp(host(mpf), "_MP_", 4) == 0);
	CHECK(g32(mpf + 4) == mpc);
	CHECK(g8(mpf + 8) == 1 && g8(mpf + 9) == 4);
	CHECK(sum(mpf, 16) == 0);
	CHECK(all_bytes(mpf + 11, 5, 0));

	CHECK(memcmp(host(mpc), "PCMP", 4) == 0);
	CHECKF(g16(mpc + 4) == len, "length %u, want %u", g16(mpc + 4), len);
	CHECK(g8(mpc + 6) == 4);
	CHECK(sum(mpc, len) == 0);
	CHECK(g32(mpc + 28) == 0 && g16(mpc + 32) == 0);
	CHECK(g16(mpc + 34) == n + 1 + 1 + 24 + 2);
	CHECK(g32(mpc + 36) == 0xfee00000);
	CHECK(g32(mpc + 40) == 0);
	CHECK(mptable_size(n) == 16 + len);

	for (i = 0; i < n; i++, e += 20) {
		CHECK(g8(e) == 0);
		CHECK(g8(e + 1) == i);
		CHECK(g8(e + 2) == 0x14);
		CHECK(g8(e + 3) == (i == 0 ? 3 : 1));
		CHECK(g32(e + 4) == 0x600);
		CHECK(g32(e + 8) == 0x201);
		CHECK(g64(e + 12) == 0);
	}
	CHECK(g8(e) == 1 && g8(e + 1) == 0);
	CHECK(memcmp(host(e + 2), "ISA   ", 6) == 0);
	e += 8;
	CHECK(g8(e) == 2 && g8(e + 1) == n + 1 && g8(e + 3) == 1);
	CHECK(g32(e + 4) == 0xfec00000);
	e += 8;
	for (i = 0; i < 24; i++, e += 8) {
		CHECK(g8(e) == 3 && g8(e + 1) == 0 && g16(e + 2) == 0);
		CHECK(g8(e + 4) == 0 && g8(e + 5) == i);
		CHECK(g8(e + 6) == n + 1 && g8(e + 7) == i);
	}
	/* ExtINT -> LINT0 of the BSP, NMI -> LINT1 of all. */
	CHECK(g8(e) == 4 && g8(e + 1) == 3 && g8(e + 6) == 0 && g8(e + 7) == 0);
	e += 8;
	CHECK(g8(e) == 4 && g8(e + 1) == 1 && g8(e + 6) == 0xff &&
	      g8(e + 7) == 1);
	e += 8;
	CHECK(e == mpc + len);
}

static void test_mptable(void)
{
	static const unsigned counts[] = { 1, 2, 7, 254 };
	struct guest_mem small;
	uint8_t *b;
	unsigned i;

	REQUIRE(ram_init(2 * MiB) == 0);
	for (i = 0; i < KR_ARRAY_SIZE(counts); i++) {
		memset(host(0x9fc00), POISON, 0x60400);
		CHECK(mptable_write(&gm, counts[i], &err) == 0);
		check_mptable(counts[i]);
		/* nothing past the table */
		CHECK(all_bytes(0x9fc00 + mptable_size(counts[i]), 16, POISON));
	}
	CHECK(mptable_write(&gm, 0, &err) == -1);
	CHECK_CONTAINS(err.msg, "0 vCPUs");
	CHECK(mptable_write(&gm, 255, &err) == -1);
	CHECK_CONTAINS(err.msg, "255 vCPUs");
	CHECK(err.code == KR_INVALID_ARGUMENT);

	/* Guest memory ending inside the table. */
	b = aligned_alloc(4096, 0xa0000);
	REQUIRE(b);
	gm_init(&small);
	REQUIRE(gm_add_region(&small, 0, 0x9fc00 + 100, b, &err) == 0);
	CHECK(mptable_write(&small, 1, &err) == -1);
	CHECK_CONTAINS(err.msg, "MP table");
	CHECK_CONTAINS(err.msg, "outside guest memory");
	CHECK(mptable_write(&small, 0, &err) == -1);
	free(b);
}

/* ---- e820 ---- */

static void test_e820(void)
{
	static const uint64_t sizes[] = {
		MiB + 4096, 64 * MiB, 3 * GiB - 4096, 3 * GiB, 3 * GiB + 4096,
		4 * GiB, 64 * GiB,
	};
	struct boot_e820_entry e[BOOT_E820_MAX];
	struct e820 want[4];
	unsigned i, j, n;

	for (i = 0; i < KR_ARRAY_SIZE(sizes); i++) {
		memset(e, 0xee, sizeof(e));
		n = boot_e820(sizes[i], e);
		CHECKF(n == expected_e820(sizes[i], want), "size 0x%llx",
		       (unsigned long long)sizes[i]);
		for (j = 0; j < n && j < 4; j++) {
			CHECK(e[j].addr == want[j].addr);
			CHECK(e[j].size == want[j].size);
			CHECK(e[j].type == want[j].type);
		}
	}
	/* spot checks in plain numbers */
	n = boot_e820(4 * GiB, e);
	CHECK(n == 4);
	CHECK(e[2].addr == 0x100000 && e[2].size == 0xc0000000ull - 0x100000);
	CHECK(e[3].addr == 0x100000000ull && e[3].size == 0x40000000ull);
	n = boot_e820(64 * MiB, e);
	CHECK(n == 3 && e[1].addr == 0x9fc00 && e[1].size == 0x60400 &&
	      e[1].type == 2);
}

/* ---- synthetic bzImage ---- */

struct bz {
	uint8_t setup_sects;		/* as written; 0 means 4 */
	uint8_t jump_len;		/* byte at 0x201: header end - 0x202 */
	uint16_t boot_flag, version, xloadflags;
	uint32_t magic;
	uint8_t loadflags, relocatable;
	uint32_t initrd_addr_max, kernel_alignment, cmdline_size, init_size;
	uint64_t pref_address, setup_data;
	uint64_t pm_size;		/* bytes after the setup sectors */
};

/* A 6.1-like header (values of the cached kernel, relocatable). */
static struct bz bz_default(void)
{
	return (struct bz){
		.setup_sects = 0x1f,
		.jump_len = 0x6a,
		.boot_flag = 0xaa55,
		.version = 0x020f,
		.xloadflags = 0x23,	/* KERNEL_64 | ABOVE_4G | 5LEVEL */
		.magic = 0x53726448,
		.loadflags = 0x01,	/* LOADED_HIGH */
		.relocatable = 1,
		.initrd_addr_max = 0x7fffffff,
		.kernel_alignment = 0x200000,
		.cmdline_size = 0x7ff,
		.init_size = 0x800000,
		.pref_address = 0x1000000,
		.setup_data = 0x1234000,	/* must not reach the guest */
		.pm_size = 0x3000,
	};
}

static uint64_t bz_setup_size(const struct bz *o)
{
	return ((o->setup_sects ? o->setup_sects : 4) + 1ull) * 512;
}

/* The image bytes; *len gets the size. */
static uint8_t *bz_build(const struct bz *o, size_t *len)
{
	uint64_t setup = bz_setup_size(o);
	uint8_t *b = malloc(setup + o->pm_size);

	if (!b)
		abort();
	*len = setup + o->pm_size;
	memset(b, 0x5a, setup);		/* real-mode code stand-in */
	pattern(b + setup, o->pm_size, 3);
	b[0x1ef] = 0xff;		/* the sentinel, as header.S has it */
	p8(b, 0x1f1, o->setup_sects);
	p16(b, 0x1f2, 1);		/* root_flags */
	p32(b, 0x1f4, (uint32_t)(o->pm_size / 16));	/* syssize */
	p16(b, 0x1f8, 0);
	p16(b, 0x1fa, 0xffff);		/* vid_mode: normal */
	p16(b, 0x1fc, 0);
	p16(b, 0x1fe, o->boot_flag);
	p8(b, 0x200, 0xeb);		/* jmp short */
	p8(b, 0x201, o->jump_len);
	p32(b, 0x202, o->magic);
	p16(b, 0x206, o->version);
	p32(b, 0x208, 0);		/* realmode_swtch */
	p16(b, 0x20c, 0x1000);		/* start_sys_seg */
	p16(b, 0x20e, 0x3a0);		/* kernel_version string offset */
	p8(b, 0x210, 0);		/* type_of_loader */
	p8(b, 0x211, o->loadflags);
	p16(b, 0x212, 0x8000);		/* setup_move_size */
	p32(b, 0x214, 0x100000);	/* code32_start */
	p32(b, 0x218, 0);
	p32(b, 0x21c, 0);
	p32(b, 0x220, 0);
	p16(b, 0x224, 0x5340);		/* heap_end_ptr */
	p8(b, 0x226, 0);
	p8(b, 0x227, 0);
	p32(b, 0x228, 0);
	p32(b, 0x22c, o->initrd_addr_max);
	p32(b, 0x230, o->kernel_alignment);
	p8(b, 0x234, o->relocatable);
	p8(b, 0x235, 21);		/* min_alignment */
	p16(b, 0x236, o->xloadflags);
	p32(b, 0x238, o->cmdline_size);
	p32(b, 0x23c, 0);
	p64(b, 0x240, 0);
	p32(b, 0x248, 0x3b9);		/* payload_offset */
	p32(b, 0x24c, 0x2000);		/* payload_length */
	p64(b, 0x250, o->setup_data);
	p64(b, 0x258, o->pref_address);
	p32(b, 0x260, o->init_size);
	p32(b, 0x264, 0x190);		/* handover_offset */
	p32(b, 0x268, 0x1234);		/* kernel_info_offset */
	return b;
}

static const char *bz_write(const char *name, const struct bz *o)
{
	size_t len;
	uint8_t *b = bz_build(o, &len);
	const char *p = write_tmp(name, b, len);

	free(b);
	return p;
}

/* The zero page a correct loader builds from image b. */
static void bz_expected_zp(uint8_t *zp, const uint8_t *b, unsigned hdr_end,
			   uint64_t initrd, uint64_t initrd_size)
{
	memset(zp, 0, 4096);
	memcpy(zp + 0x1f1, b + 0x1f1, hdr_end - 0x1f1);
	zp[0x210] = 0xff;
	zp[0x211] |= 0x81;		/* LOADED_HIGH | CAN_USE_HEAP */
	p16(zp, 0x224, 0xfe00);
	p32(zp, 0x218, (uint32_t)initrd);
	p32(zp, 0x21c, (uint32_t)initrd_size);
	p32(zp, 0x228, 0x20000);
	p64(zp, 0x250, 0);
	expect_zp_e820(zp, ram_size);
}

static void test_bz_basic(void)
{
	static const char cmdline[] = "console=ttyS0 reboot=k panic=1 pci=off";
	struct bz o = bz_default();
	uint8_t initrd[10000], zp[4096];
	uint64_t setup = bz_setup_size(&o), rd;
	size_t len;
	uint8_t *b = bz_build(&o, &len);
	const char *k = write_tmp("bz", b, len);
	const char *i;

	pattern(initrd, sizeof(initrd), 11);
	i = write_tmp("initrd", initrd, sizeof(initrd));
	vcpus = 2;
	REQUIRE(ram_init(64 * MiB) == 0);
	REQUIRE_BOOT(k, i, cmdline, BOOT_AUTO);

	check_linux64_cpu(0x100200);
	CHECK(cpu.kernel_start == 0x100000);
	CHECK(cpu.kernel_end == 0x1000000 + 0x800000);
	/* top of 64 MiB, page aligned */
	rd = (64 * MiB - sizeof(initrd)) & ~0xfffull;
	CHECK(rd == 0x3ffd000);
	CHECK(cpu.initrd_start == rd);
	CHECK(cpu.initrd_size == sizeof(initrd));
	CHECK(memcmp(host(rd), initrd, sizeof(initrd)) == 0);
	CHECK(memcmp(host(0x100000), b + setup, o.pm_size) == 0);
	CHECK(g8(0x100000 + o.pm_size) == POISON);	/* nothing more */
	check_cmdline(cmdline);

	bz_expected_zp(zp, b, 0x26c, rd, sizeof(initrd));
	check_zero_page(zp);
	/* the same, field by field */
	CHECK(g8(0x7000 + 0x1ef) == 0);			/* sentinel */
	CHECK(g8(0x7000 + 0x1f1) == 0x1f);
	CHECK(g32(0x7000 + 0x202) == 0x53726448);
	CHECK(g16(0x7000 + 0x206) == 0x020f);
	CHECK(g8(0x7000 + 0x210) == 0xff);
	CHECK(g8(0x7000 + 0x211) == 0x81);
	CHECK(g32(0x7000 + 0x218) == 0x3ffd000);
	CHECK(g32(0x7000 + 0x21c) == 10000);
	CHECK(g32(0x7000 + 0x228) == 0x20000);
	CHECK(g32(0x7000 + 0x238) == 0x7ff);		/* the image's */
	CHECK(g64(0x7000 + 0x250) == 0);
	CHECK(g32(0x7000 + 0x0c0) == 0 && g32(0x7000 + 0x0c4) == 0 &&
	      g32(0x7000 + 0x0c8) == 0);
	CHECK(g8(0x7000 + 0x1e8) == 3);
	CHECK(g64(0x7000 + 0x2d0 + 40) == 0x100000);
	CHECK(g64(0x7000 + 0x2d0 + 48) == 63 * MiB);
	CHECK(g32(0x7000 + 0x2d0 + 56) == 1);
	check_mptable(2);
	free(b);
}

/* setup_sects 0 means 4; no initrd; empty command line; a shorter header
 * (2.12 ends after kernel_info... here at 0x268) copies only its bytes. */
static void test_bz_variants(void)
{
	struct bz o = bz_default();
	uint8_t zp[4096];
	size_t len;
	uint8_t *b;

	o.setup_sects = 0;
	o.jump_len = 0x66;		/* header ends at 0x268 */
	o.version = 0x020c;
	b = bz_build(&o, &len);
	REQUIRE(len == 5 * 512 + o.pm_size);
	REQUIRE(ram_init(32 * MiB) == 0);
	REQUIRE_BOOT(write_tmp("bz0", b, len), NULL, "", BOOT_AUTO);
	check_linux64_cpu(0x100200);
	CHECK(memcmp(host(0x100000), b + 5 * 512, o.pm_size) == 0);
	CHECK(cpu.initrd_start == 0 && cpu.initrd_size == 0);
	check_cmdline("");
	bz_expected_zp(zp, b, 0x268, 0, 0);
	check_zero_page(zp);
	CHECK(g32(0x7000 + 0x268) == 0);	/* past the header */
	CHECK(cpu.kernel_end == 0x1800000);
	free(b);

	/* NULL command line is the empty one */
	o = bz_default();
	REQUIRE_BOOT(bz_write("bz1", &o), NULL, NULL, BOOT_LINUX64);
	check_cmdline("");
}

/* Where the kernel runs decides kernel_end, hence the initrd's floor. */
static void test_bz_placement(void)
{
	struct bz o = bz_default();
	uint64_t rd;

	REQUIRE(ram_init(256 * MiB) == 0);
	/* relocatable: 1 MiB rounded up to 4 MiB beats pref_address 0 */
	o.pref_address = 0;
	o.kernel_alignment = 0x400000;
	REQUIRE_BOOT(bz_write("a", &o), NULL, "", BOOT_AUTO);
	CHECK(cpu.kernel_end == 0x400000 + 0x800000);
	/* pref_address above the aligned load address wins */
	o.pref_address = 0x3000000;
	REQUIRE_BOOT(bz_write("a", &o), NULL, "", BOOT_AUTO);
	CHECK(cpu.kernel_end == 0x3000000 + 0x800000);
	/* not relocatable: runs at pref_address, alignment unused */
	o.relocatable = 0;
	o.kernel_alignment = 0x1234;
	o.pref_address = 0x2000000;
	REQUIRE_BOOT(bz_write("a", &o), NULL, "", BOOT_AUTO);
	CHECK(cpu.kernel_end == 0x2000000 + 0x800000);
	/* relocatable with a bogus alignment */
	o.relocatable = 1;
	CHECK_BOOT_FAILS(bz_write("a", &o), NULL, "", BOOT_AUTO,
			 "kernel_alignment 0x1234 is not a power of two");
	o.kernel_alignment = 0;
	CHECK_BOOT_FAILS(bz_write("a", &o), NULL, "", BOOT_AUTO,
			 "kernel_alignment 0x0");

	/* initrd_addr_max (last byte) below the end of RAM */
	o = bz_default();
	o.initrd_addr_max = 0x3ffffff;
	{
		uint8_t rdb[5000];

		pattern(rdb, sizeof(rdb), 5);
		REQUIRE_BOOT(bz_write("b", &o),
			     write_tmp("rd", rdb, sizeof(rdb)), "x", BOOT_AUTO);
		rd = (0x4000000 - sizeof(rdb)) & ~0xfffull;
		CHECK(cpu.initrd_start == rd);
		CHECK(memcmp(host(rd), rdb, sizeof(rdb)) == 0);
		CHECK(g32(0x7000 + 0x218) == rd);
	}
}

/* Initrd fits exactly between the kernel's end and RAM's end, not a byte
 * more; empty and missing initrds. */
static void test_bz_initrd_limits(void)
{
	struct bz o = bz_default();
	const char *k = bz_write("bz", &o);
	uint8_t head[4096];
	uint64_t room;

	REQUIRE(ram_init(64 * MiB) == 0);
	room = 64 * MiB - 0x1800000;	/* above kernel_end 24 MiB */
	pattern(head, sizeof(head), 9);
	REQUIRE_BOOT(k, write_sparse("rd", head, sizeof(head), room), "",
		     BOOT_AUTO);
	CHECK(cpu.initrd_start == 0x1800000);
	CHECK(cpu.initrd_size == room);
	CHECK(memcmp(host(0x1800000), head, sizeof(head)) == 0);
	CHECK(all_bytes(0x1800000 + sizeof(head), 4096, 0));
	CHECK_BOOT_FAILS(k, write_sparse("rd", head, sizeof(head), room + 1),
			 "", BOOT_AUTO, "do not fit in guest RAM");
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	CHECK_CONTAINS(err.msg, tmp_path("rd"));
	CHECK_BOOT_FAILS(k, write_sparse("rd", head, sizeof(head), 200 * MiB),
			 "", BOOT_AUTO, "do not fit");
	CHECK_BOOT_FAILS(k, write_tmp("rd", head, 0), "", BOOT_AUTO,
			 "empty file");
	CHECK_BOOT_FAILS(k, tmp_path("no-such-initrd"), "", BOOT_AUTO,
			 "No such file");
	CHECK(err.code == KR_NOT_FOUND);
	CHECK_CONTAINS(err.msg, "initrd ");
	/* initrd_addr_max below the kernel's end */
	o.initrd_addr_max = 0xffffff;
	CHECK_BOOT_FAILS(bz_write("bz2", &o), write_tmp("rd", head, 10), "",
			 BOOT_AUTO, "initrd_addr_max");
}

static void test_bz_bad_header(void)
{
	struct bz o;
	size_t len;
	uint8_t *b;

	REQUIRE(ram_init(64 * MiB) == 0);
	o = bz_default();
	o.boot_flag = 0x1234;
	CHECK_BOOT_FAILS(bz_write("bad", &o), NULL, "", BOOT_AUTO,
			 "boot_flag 0x1234 at 0x1fe is not 0xaa55");
	CHECK_CONTAINS(err.msg, tmp_path("bad"));
	CHECK(err.code == KR_INVALID_ARGUMENT);
	o = bz_default();
	o.magic = 0x53726447;
	CHECK_BOOT_FAILS(bz_write("bad", &o), NULL, "", BOOT_AUTO,
			 "no \"HdrS\" magic");
	o = bz_default();
	o.version = 0x020b;
	CHECK_BOOT_FAILS(bz_write("bad", &o), NULL, "", BOOT_AUTO,
			 "boot protocol 2.11 is older than 2.12");
	o = bz_default();
	o.xloadflags = 0x02;
	CHECK_BOOT_FAILS(bz_write("bad", &o), NULL, "", BOOT_AUTO,
			 "lacks XLF_KERNEL_64");
	o = bz_default();
	o.jump_len = 0xff;
	CHECK_BOOT_FAILS(bz_write("bad", &o), NULL, "", BOOT_AUTO,
			 "past the header area");
	o.jump_len = 0x30;
	CHECK_BOOT_FAILS(bz_write("bad", &o), NULL, "", BOOT_AUTO,
			 "setup header ends at 0x232");

	/* setup_sects past the end: the exact message */
	o = bz_default();
	o.setup_sects = 4;
	o.pm_size = 4096 - 5 * 512;
	b = bz_build(&o, &len);
	REQUIRE(len == 4096);
	b[0x1f1] = 200;
	{
		char want[512];
		const char *k = write_tmp("bz200", b, len);

		snprintf(want, sizeof(want), "kernel %s: setup_sects 200 runs"
			 " past the end of the file (4096 bytes)", k);
		CHECK(boot(k, NULL, "", BOOT_AUTO) == -1);
		CHECK_STREQ(err.msg, want);
	}
	free(b);

	/* a bzImage cannot boot PVH */
	o = bz_default();
	CHECK_BOOT_FAILS(bz_write("bz", &o), NULL, "", BOOT_PVH,
			 "not ELF");
	/* bad enum */
	CHECK_BOOT_FAILS(bz_write("bz", &o), NULL, "", (enum boot_proto)7,
			 "bad protocol 7");
}

/* Every truncation of the image (each length) fails cleanly, up to the
 * point where the protected-mode part holds the 64-bit entry. */
static void test_bz_truncated(void)
{
	struct bz o = bz_default();
	uint64_t setup, n, fails = 0, tried = 0;
	const char *k;
	size_t len;
	uint8_t *b;

	o.setup_sects = 4;
	o.pm_size = 0x1000;
	setup = bz_setup_size(&o);
	b = bz_build(&o, &len);
	REQUIRE(ram_init(32 * MiB) == 0);
	/* Shrinking one file is much cheaper than writing thousands. */
	k = write_tmp("trunc", b, setup + 0x200);
	for (n = setup + 0x200 + 1; n-- > 0;) {
		REQUIRE(truncate(k, (off_t)n) == 0);
		tried++;
		if (boot(k, NULL, "", BOOT_AUTO) == -1 &&
		    strstr(err.msg, k) && err.code == KR_INVALID_ARGUMENT)
			fails++;
		else
			printf("#   length %" PRIu64 ": %s\n", n, err.msg);
	}
	CHECK(fails == tried);
	CHECK(boot(write_tmp("trunc", b, setup + 0x200), NULL, "",
		   BOOT_AUTO) == -1);
	CHECK_CONTAINS(err.msg, "too few to hold the 64-bit entry");
	CHECK(boot(write_tmp("trunc", b, setup + 0x201), NULL, "",
		   BOOT_AUTO) == 0);
	CHECK(boot(write_tmp("trunc", b, 0x206), NULL, "", BOOT_AUTO) == -1);
	CHECK_CONTAINS(err.msg, "too short");
	free(b);
}

static void test_bz_too_big(void)
{
	struct bz o = bz_default();
	size_t len;
	uint8_t *b;

	REQUIRE(ram_init(64 * MiB) == 0);
	/* decompressed kernel past the end of RAM */
	o.init_size = 60 * MiB;
	CHECK_BOOT_FAILS(bz_write("big", &o), NULL, "", BOOT_AUTO,
			 "needs init_size 0x3c00000");
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	o = bz_default();
	o.pref_address = 0xffffffffffff0000ull;
	CHECK_BOOT_FAILS(bz_write("big", &o), NULL, "", BOOT_AUTO,
			 "runs at 0xffffffffffff0000");
	/* the file itself bigger than RAM (sparse) */
	o = bz_default();
	b = bz_build(&o, &len);
	CHECK_BOOT_FAILS(write_sparse("big", b, len, 100 * MiB), NULL, "",
			 BOOT_AUTO, "do not fit in guest RAM");
	free(b);
	/* past the 1 GiB identity map */
	if (ram_init(2 * GiB) < 0)
		SKIP("cannot map 2 GiB of guest RAM");
	o = bz_default();
	o.relocatable = 0;
	o.pref_address = 0x3ff00000;
	o.init_size = 0x200000;
	CHECK_BOOT_FAILS(bz_write("big", &o), NULL, "", BOOT_AUTO,
			 "past the 1 GiB");
}

/* ---- synthetic ELF64 ---- */

#define SEG0_OFF	0x1000ull
#define SEG0_PADDR	0x100000ull
#define SEG0_SIZE	0x1800ull
#define SEG1_OFF	0x3000ull
#define SEG1_PADDR	0x180000ull
#define SEG1_FILESZ	0x800ull
#define SEG1_MEMSZ	0x3000ull
#define NOTE_OFF	0x200ull
#define SHDR_OFF	0x3800ull
#define HIGH_BASE	0xffffffff80000000ull

enum pvh_where { PVH_NONE, PVH_PHDR, PVH_SECTION };

struct elf {
	uint64_t entry;
	enum pvh_where pvh;
	unsigned pvh_descsz;		/* 4 or 8 */
	uint64_t pvh_entry;
	int high_vaddr;			/* p_vaddr = HIGH_BASE + p_paddr */
	int sections;			/* section header table at SHDR_OFF */
};

static struct elf elf_default(void)
{
	return (struct elf){
		.entry = SEG0_PADDR + 0x40,
		.pvh = PVH_NONE,
		.pvh_descsz = 4,
		.pvh_entry = SEG0_PADDR + 0x100,
		.sections = 1,
	};
}

#define PH(i) (64 + 56 * (i))		/* file offset of phdr i */

static void put_phdr(uint8_t *b, unsigned i, uint32_t type, uint64_t off,
		     uint64_t vaddr, uint64_t paddr, uint64_t filesz,
		     uint64_t memsz, uint64_t align)
{
	p32(b, PH(i), type);
	p32(b, PH(i) + 4, type == PT_LOAD ? 7 : 4);	/* p_flags */
	p64(b, PH(i) + 8, off);
	p64(b, PH(i) + 16, vaddr);
	p64(b, PH(i) + 24, paddr);
	p64(b, PH(i) + 32, filesz);
	p64(b, PH(i) + 40, memsz);
	p64(b, PH(i) + 48, align);
}

/* Notes as Linux emits them: a GNU build id, a Xen note of another type,
 * then (optionally) the PVH entry.  Returns the bytes written. */
static size_t put_notes(uint8_t *b, const struct elf *o)
{
	size_t off = NOTE_OFF;

	p32(b, off, 4);
	p32(b, off + 4, 20);
	p32(b, off + 8, 3);		/* NT_GNU_BUILD_ID */
	memcpy(b + off + 12, "GNU", 4);
	memset(b + off + 16, 0xab, 20);
	off += 36;
	p32(b, off, 4);
	p32(b, off + 4, 8);
	p32(b, off + 8, 6);		/* XEN_ELFNOTE_LOADER: not ours */
	memcpy(b + off + 12, "Xen", 4);
	memcpy(b + off + 16, "generic", 8);
	off += 24;
	if (o->pvh != PVH_NONE) {
		p32(b, off, 4);
		p32(b, off + 4, o->pvh_descsz);
		p32(b, off + 8, 18);
		memcpy(b + off + 12, "Xen", 4);
		if (o->pvh_descsz == 8)
			p64(b, off + 16, o->pvh_entry);
		else
			p32(b, off + 16, (uint32_t)o->pvh_entry);
		off += 16 + ((o->pvh_descsz + 3) & ~3u);
	}
	return off - NOTE_OFF;
}

/* Two PT_LOADs (text; data + bss), a PT_NOTE unless the PVH note is to
 * be found through the sections only, and a section header table. */
static uint8_t *elf_build(const struct elf *o, size_t *len)
{
	size_t size = o->sections ? SHDR_OFF + 3 * 64 : SEG1_OFF + SEG1_FILESZ;
	uint8_t *b = calloc(1, size);
	uint64_t vb = o->high_vaddr ? HIGH_BASE : 0;
	size_t notes;
	unsigned nph = 2;

	if (!b)
		abort();
	*len = size;
	memcpy(b, ELFMAG, 4);
	b[EI_CLASS] = ELFCLASS64;
	b[EI_DATA] = ELFDATA2LSB;
	b[EI_VERSION] = EV_CURRENT;
	p16(b, 16, ET_EXEC);
	p16(b, 18, EM_X86_64);
	p32(b, 20, EV_CURRENT);
	p64(b, 24, o->entry);
	p64(b, 32, 64);			/* e_phoff */
	p64(b, 40, o->sections ? SHDR_OFF : 0);
	p16(b, 52, 64);			/* e_ehsize */
	p16(b, 54, 56);			/* e_phentsize */
	p16(b, 58, o->sections ? 64 : 0);
	p16(b, 60, o->sections ? 3 : 0);

	pattern(b + SEG0_OFF, SEG0_SIZE, 1);
	pattern(b + SEG1_OFF, SEG1_FILESZ, 2);
	put_phdr(b, 0, PT_LOAD, SEG0_OFF, vb + SEG0_PADDR, SEG0_PADDR,
		 SEG0_SIZE, SEG0_SIZE, 0x1000);
	put_phdr(b, 1, PT_LOAD, SEG1_OFF, vb + SEG1_PADDR, SEG1_PADDR,
		 SEG1_FILESZ, SEG1_MEMSZ, 0x1000);
	notes = put_notes(b, o);
	if (o->pvh != PVH_SECTION)
		put_phdr(b, nph++, PT_NOTE, NOTE_OFF, vb + SEG0_PADDR + 0x1000,
			 SEG0_PADDR + 0x1000, notes, notes, 4);
	p16(b, 56, (uint16_t)nph);	/* e_phnum */
	if (o->sections) {
		/* [0] null, [1] .notes, [2] .text */
		uint8_t *s = b + SHDR_OFF + 64;

		p32(s, 4, SHT_NOTE);
		p64(s, 24, NOTE_OFF);
		p64(s, 32, notes);
		p64(s, 48, 4);
		s += 64;
		p32(s, 4, SHT_PROGBITS);
		p64(s, 24, SEG0_OFF);
		p64(s, 32, SEG0_SIZE);
		p64(s, 48, 16);
	}
	return b;
}

static const char *elf_write(const char *name, const struct elf *o)
{
	size_t len;
	uint8_t *b = elf_build(o, &len);
	const char *p = write_tmp(name, b, len);

	free(b);
	return p;
}

/* Segments in place, bss zeroed over the poison, nothing around them. */
static void check_elf_segments(const uint8_t *b)
{
	CHECK(memcmp(host(SEG0_PADDR), b + SEG0_OFF, SEG0_SIZE) == 0);
	CHECK(memcmp(host(SEG1_PADDR), b + SEG1_OFF, SEG1_FILESZ) == 0);
	CHECK(all_bytes(SEG1_PADDR + SEG1_FILESZ, SEG1_MEMSZ - SEG1_FILESZ, 0));
	CHECK(g8(SEG1_PADDR + SEG1_MEMSZ) == POISON);
	CHECK(g8(SEG0_PADDR + SEG0_SIZE) == POISON);
	CHECK(cpu.kernel_start == SEG0_PADDR);
	CHECK(cpu.kernel_end == SEG1_PADDR + SEG1_MEMSZ);
}

static void test_elf_linux64(void)
{
	static const char cmdline[] = "console=ttyS0 root=/dev/vda";
	struct elf o = elf_default();
	uint8_t rdb[7000], zp[4096];
	uint64_t rd;
	size_t len;
	uint8_t *b = elf_build(&o, &len);
	const char *k = write_tmp("vmlinux", b, len);

	pattern(rdb, sizeof(rdb), 4);
	vcpus = 3;
	REQUIRE(ram_init(64 * MiB) == 0);
	REQUIRE_BOOT(k, write_tmp("rd", rdb, sizeof(rdb)), cmdline, BOOT_AUTO);
	check_linux64_cpu(SEG0_PADDR + 0x40);
	check_elf_segments(b);
	rd = (64 * MiB - sizeof(rdb)) & ~0xfffull;
	CHECK(cpu.initrd_start == rd && cpu.initrd_size == sizeof(rdb));
	CHECK(memcmp(host(rd), rdb, sizeof(rdb)) == 0);
	check_cmdline(cmdline);

	/* a zero page built from scratch */
	memset(zp, 0, sizeof(zp));
	p16(zp, 0x1fe, 0xaa55);
	p32(zp, 0x202, 0x53726448);
	p16(zp, 0x206, 0x020f);
	zp[0x210] = 0xff;
	p32(zp, 0x218, (uint32_t)rd);
	p32(zp, 0x21c, sizeof(rdb));
	p32(zp, 0x228, 0x20000);
	p32(zp, 0x230, 0x01000000);
	p32(zp, 0x238, sizeof(cmdline) - 1);
	expect_zp_e820(zp, ram_size);
	check_zero_page(zp);
	check_mptable(3);
	vcpus = 2;

	/* forced LINUX64 is the same */
	REQUIRE_BOOT(k, NULL, "", BOOT_LINUX64);
	CHECK(cpu.proto == BOOT_LINUX64);
	/* PVH asked for, but there is no note */
	CHECK_BOOT_FAILS(k, NULL, "", BOOT_PVH, "no Xen PVH entry note");
	free(b);
}

/* e_entry as a kernel virtual address is translated to physical. */
static void test_elf_high_entry(void)
{
	struct elf o = elf_default();

	o.high_vaddr = 1;
	o.entry = HIGH_BASE + SEG0_PADDR + 0x123;
	REQUIRE(ram_init(32 * MiB) == 0);
	REQUIRE_BOOT(elf_write("hi", &o), NULL, "", BOOT_AUTO);
	check_linux64_cpu(SEG0_PADDR + 0x123);
	/* in the bss (virtual) */
	o.entry = HIGH_BASE + SEG1_PADDR + 0x2000;
	REQUIRE_BOOT(elf_write("hi", &o), NULL, "", BOOT_AUTO);
	CHECK(cpu.regs.rip == SEG1_PADDR + 0x2000);
	/* physical entry with high vaddrs: as is */
	o.entry = SEG0_PADDR + 8;
	REQUIRE_BOOT(elf_write("hi", &o), NULL, "", BOOT_AUTO);
	CHECK(cpu.regs.rip == SEG0_PADDR + 8);
	/* nowhere */
	o.entry = 0x5000000;
	CHECK_BOOT_FAILS(elf_write("hi", &o), NULL, "", BOOT_AUTO,
			 "e_entry 0x5000000 is in no PT_LOAD");
	o.entry = HIGH_BASE + 0x5000000;
	CHECK_BOOT_FAILS(elf_write("hi", &o), NULL, "", BOOT_AUTO,
			 "is in no PT_LOAD");
}

static void test_elf_pvh(void)
{
	static const unsigned descsz[] = { 4, 8 };
	static const enum pvh_where where[] = { PVH_PHDR, PVH_SECTION };
	static const char cmdline[] = "console=hvc0";
	uint8_t rdb[3000];
	unsigned i, j;

	pattern(rdb, sizeof(rdb), 8);
	for (i = 0; i < 2; i++) {
		for (j = 0; j < 2; j++) {
			struct elf o = elf_default();
			uint64_t rd = (48 * MiB - sizeof(rdb)) & ~0xfffull;
			size_t len;
			uint8_t *b;

			o.pvh = where[j];
			o.pvh_descsz = descsz[i];
			o.pvh_entry = SEG0_PADDR + 0x100 + i;
			b = elf_build(&o, &len);
			REQUIRE(ram_init(48 * MiB) == 0);
			REQUIRE_BOOT(write_tmp("pvh", b, len),
				     write_tmp("rd", rdb, sizeof(rdb)),
				     cmdline, BOOT_AUTO);
			check_pvh_cpu(SEG0_PADDR + 0x100 + i);
			check_elf_segments(b);
			check_pvh_info(rd, sizeof(rdb));
			CHECK(cpu.initrd_start == rd);
			CHECK(memcmp(host(rd), rdb, sizeof(rdb)) == 0);
			check_cmdline(cmdline);
			check_mptable(2);
			free(b);
		}
	}

	/* no initrd: no module */
	{
		struct elf o = elf_default();
		const char *k;

		o.pvh = PVH_PHDR;
		k = elf_write("pvh", &o);
		REQUIRE(ram_init(48 * MiB) == 0);
		REQUIRE_BOOT(k, NULL, "", BOOT_PVH);
		check_pvh_cpu(SEG0_PADDR + 0x100);
		check_pvh_info(0, 0);
		CHECK(all_bytes(0x6040, 32, POISON));
		/* the 64-bit protocol on request, entry e_entry */
		REQUIRE(ram_init(48 * MiB) == 0);
		REQUIRE_BOOT(k, NULL, "", BOOT_LINUX64);
		check_linux64_cpu(SEG0_PADDR + 0x40);
		CHECK(g16(0x7000 + 0x1fe) == 0xaa55);
	}
}

/* Patch a field of a good image, then expect the load to fail. */
#define ELF_BAD(setup, want)                                                 \
	do {                                                                 \
		uint8_t *b_ = elf_build(&o, &len);                           \
		setup;                                                       \
		CHECK_BOOT_FAILS(write_tmp("bad", b_, len), NULL, "",        \
				 BOOT_AUTO, (want));                         \
		free(b_);                                                    \
	} while (0)

static void test_elf_bad_headers(void)
{
	struct elf o = elf_default();
	size_t len;

	REQUIRE(ram_init(64 * MiB) == 0);
	ELF_BAD(b_[EI_CLASS] = ELFCLASS32, "not ELF64");
	ELF_BAD(b_[EI_DATA] = ELFDATA2MSB, "not little-endian");
	ELF_BAD(b_[EI_VERSION] = 0, "ELF version");
	ELF_BAD(p16(b_, 18, EM_386), "not an x86-64");
	ELF_BAD(p16(b_, 16, ET_DYN), "ET_EXEC");
	ELF_BAD(p16(b_, 54, 32), "e_phentsize");
	ELF_BAD(p16(b_, 56, 0), "e_phnum 0");
	ELF_BAD(p16(b_, 56, 0xffff), "extended program header numbering");
	ELF_BAD(p16(b_, 56, 0x1000), "program header table");
	ELF_BAD(p64(b_, 32, UINT64_MAX - 8), "program header table");
	ELF_BAD(p64(b_, 32, len - 100), "runs past the end of the file");
	/* all loads turned into something else */
	ELF_BAD((p32(b_, PH(0), PT_NULL), p32(b_, PH(1), 0x6474e551)),
		"no non-empty PT_LOAD");
	/* section table damage matters when it is read (no PT_NOTE PVH) */
	ELF_BAD(p64(b_, 40, UINT64_MAX - 100), "section header table");
	ELF_BAD(p16(b_, 60, 0x7fff), "section header table");
	ELF_BAD(p16(b_, 58, 40), "e_shentsize 40");
	ELF_BAD(p64(b_, SHDR_OFF + 64 + 24, UINT64_MAX - 3),
		"SHT_NOTE section 1");
	ELF_BAD(p64(b_, SHDR_OFF + 64 + 32, 1ull << 40), "SHT_NOTE section 1");
}

static void test_elf_bad_segments(void)
{
	struct elf o = elf_default();
	size_t len;

	REQUIRE(ram_init(64 * MiB) == 0);
	/* file offsets and sizes that overflow or overrun the file */
	ELF_BAD(p64(b_, PH(0) + 8, UINT64_MAX - 10), "segment 0 (p_offset");
	ELF_BAD(p64(b_, PH(0) + 8, UINT64_MAX), "runs past the end");
	ELF_BAD((p64(b_, PH(1) + 32, UINT64_MAX),
		 p64(b_, PH(1) + 40, UINT64_MAX)), "segment 1");
	ELF_BAD((p64(b_, PH(1) + 32, UINT64_MAX - SEG1_OFF + 1),
		 p64(b_, PH(1) + 40, UINT64_MAX)), "runs past the end");
	ELF_BAD(p64(b_, PH(1) + 32, len - SEG1_OFF + 1), "runs past the end");
	ELF_BAD(p64(b_, PH(1) + 32, SEG1_MEMSZ + 1),
		"p_filesz 0x3001 is larger than p_memsz 0x3000");
	/* guest addresses outside RAM, wrapping, or below 1 MiB */
	ELF_BAD(p64(b_, PH(0) + 24, 0x10000000), "outside guest RAM");
	ELF_BAD(p64(b_, PH(0) + 24, 64 * MiB - 0x1000), "outside guest RAM");
	ELF_BAD(p64(b_, PH(0) + 24, 0xfffffffffffff000ull),
		"outside guest RAM");
	ELF_BAD(p64(b_, PH(1) + 40, UINT64_MAX), "outside guest RAM");
	ELF_BAD(p64(b_, PH(1) + 40, 64 * MiB), "outside guest RAM");
	ELF_BAD(p64(b_, PH(0) + 24, 0x1000), "outside guest RAM");
	ELF_BAD(p64(b_, PH(0) + 24, 0xfffff), "outside guest RAM");
	/* 1 MiB exactly is fine, and a segment ending at the end of RAM */
	{
		uint8_t *b = elf_build(&o, &len);

		p64(b, PH(1) + 24, 64 * MiB - SEG1_MEMSZ);
		REQUIRE_BOOT(write_tmp("edge", b, len), NULL, "", BOOT_AUTO);
		CHECK(cpu.kernel_end == 64 * MiB);
		CHECK(all_bytes(64 * MiB - SEG1_MEMSZ + SEG1_FILESZ,
				SEG1_MEMSZ - SEG1_FILESZ, 0));
		/* then no room for an initrd above the kernel */
		CHECK_BOOT_FAILS(write_tmp("edge", b, len),
				 write_tmp("rd", b, 1), "", BOOT_AUTO,
				 "do not fit");
		free(b);
	}
}

static void test_elf_bad_notes(void)
{
	struct elf o = elf_default();
	const size_t pvh = NOTE_OFF + 36 + 24;	/* the PVH note */
	size_t len;

	REQUIRE(ram_init(64 * MiB) == 0);
	o.pvh = PVH_PHDR;
	ELF_BAD(p32(b_, NOTE_OFF, 0xffffffff), "note at +0x0");
	ELF_BAD(p32(b_, NOTE_OFF + 4, 0xfffffff0), "descsz 4294967280");
	ELF_BAD(p32(b_, pvh + 4, 0xffffffff), "PT_NOTE segment 2");
	ELF_BAD(p32(b_, pvh + 4, 2), "2-byte descriptor");
	ELF_BAD(p32(b_, pvh + 16, 0x5000000), "PVH entry 0x5000000");
	ELF_BAD(p64(b_, PH(2) + 8, UINT64_MAX - 4), "PT_NOTE segment 2");
	ELF_BAD(p64(b_, PH(2) + 32, 2u << 20), "PT_NOTE segment 2");
	/* name "Xen" without the NUL in namesz is not the note */
	{
		uint8_t *b = elf_build(&o, &len);

		p32(b, pvh, 3);
		REQUIRE_BOOT(write_tmp("x", b, len), NULL, "", BOOT_AUTO);
		CHECK(cpu.proto == BOOT_LINUX64);
		free(b);
	}
	/* an 8-byte descriptor above 4 GiB */
	o.pvh_descsz = 8;
	o.pvh_entry = 0x100100000ull;
	ELF_BAD((void)0, "PVH entry 0x100100000");
	/* with sections only, the section's offset is checked */
	o = elf_default();
	o.pvh = PVH_SECTION;
	ELF_BAD(p64(b_, SHDR_OFF + 64 + 32, 0xfffff000), "SHT_NOTE section 1");
}

/* An 8-aligned note area (as GNU property notes use): each descriptor
 * starts at the next multiple of 8, so after a 6-byte name ("Linux") it is
 * at +24, not at +20 as 4-alignment would put it. */
static void test_elf_note_align(void)
{
	struct elf o = elf_default();
	const size_t a = 0x400;
	size_t len;
	uint8_t *b = elf_build(&o, &len);

	REQUIRE(ram_init(32 * MiB) == 0);
	memset(b + a, 0xee, 64);
	p32(b, a, 6);
	p32(b, a + 4, 4);
	p32(b, a + 8, 0x100);
	memcpy(b + a + 12, "Linux", 6);
	p32(b, a + 24, 0);			/* descriptor */
	p32(b, a + 32, 4);			/* the PVH note at +32 */
	p32(b, a + 36, 8);
	p32(b, a + 40, 18);
	memcpy(b + a + 44, "Xen", 4);
	p64(b, a + 48, SEG0_PADDR + 0x321);
	p64(b, PH(2) + 8, a);
	p64(b, PH(2) + 32, 56);
	p64(b, PH(2) + 48, 8);
	REQUIRE_BOOT(write_tmp("al8", b, len), NULL, "", BOOT_AUTO);
	check_pvh_cpu(SEG0_PADDR + 0x321);
	/* read as 4-aligned, the same bytes are garbage */
	p64(b, PH(2) + 48, 4);
	CHECK(boot(write_tmp("al8", b, len), NULL, "", BOOT_AUTO) == -1 ||
	      cpu.proto != BOOT_PVH);

	/* The last note's padding may be missing (descsz 1, area ends). */
	p32(b, a, 4);
	p32(b, a + 4, 1);
	p32(b, a + 8, 1);
	memcpy(b + a + 12, "Foo", 4);
	p64(b, PH(2) + 32, 17);
	REQUIRE_BOOT(write_tmp("al8", b, len), NULL, "", BOOT_AUTO);
	CHECK(cpu.proto == BOOT_LINUX64);
	/* ...but not a byte of the descriptor */
	p64(b, PH(2) + 32, 16);
	CHECK_BOOT_FAILS(write_tmp("al8", b, len), NULL, "", BOOT_AUTO,
			 "note at +0x0 (namesz 4, descsz 1) runs past");
	free(b);
}

/* Every truncation (each length) of an ELF image without sections fails. */
static void test_elf_truncated(void)
{
	struct elf o = elf_default();
	uint64_t n, tried = 0, fails = 0;
	const char *k;
	size_t len;
	uint8_t *b;

	o.pvh = PVH_PHDR;
	o.sections = 0;
	b = elf_build(&o, &len);
	REQUIRE(len == SEG1_OFF + SEG1_FILESZ);
	REQUIRE(ram_init(16 * MiB) == 0);
	k = write_tmp("trunc", b, len);
	for (n = len; n-- > 0;) {
		REQUIRE(truncate(k, (off_t)n) == 0);
		tried++;
		if (boot(k, NULL, "", BOOT_AUTO) == -1 && strstr(err.msg, k))
			fails++;
		else
			printf("#   length %" PRIu64 ": %s\n", n, err.msg);
	}
	CHECK(fails == tried);
	REQUIRE_BOOT(write_tmp("trunc", b, len), NULL, "", BOOT_AUTO);
	CHECK(cpu.proto == BOOT_PVH);
	free(b);
}

/* The 64-bit protocol only maps 1 GiB; PVH runs with paging off. */
static void test_elf_above_1g(void)
{
	struct elf o = elf_default();
	size_t len;
	uint8_t *b;

	if (ram_init(2 * GiB) < 0)
		SKIP("cannot map 2 GiB of guest RAM");
	b = elf_build(&o, &len);
	p64(b, PH(1) + 24, GiB - 0x1000);
	CHECK_BOOT_FAILS(write_tmp("k", b, len), NULL, "", BOOT_AUTO,
			 "past the 1 GiB");
	free(b);
	o.pvh = PVH_PHDR;
	b = elf_build(&o, &len);
	p64(b, PH(1) + 24, GiB - 0x1000);
	REQUIRE_BOOT(write_tmp("k", b, len), NULL, "", BOOT_AUTO);
	CHECK(cpu.proto == BOOT_PVH);
	CHECK(cpu.kernel_end == GiB - 0x1000 + SEG1_MEMSZ);
	free(b);
}

static void test_cmdline_limits(void)
{
	struct bz o = bz_default();
	struct elf eo = elf_default();
	char *c = malloc(5000);
	const char *ek;

	REQUIRE(c);
	REQUIRE(ram_init(64 * MiB) == 0);
	/* the kernel's cmdline_size */
	o.cmdline_size = 16;
	memset(c, 'a', 17);
	c[16] = 0;
	REQUIRE_BOOT(bz_write("bz", &o), NULL, c, BOOT_AUTO);
	check_cmdline(c);
	c[16] = 'a';
	c[17] = 0;
	CHECK_BOOT_FAILS(bz_write("bz", &o), NULL, c, BOOT_AUTO,
			 "command line is 17 bytes");
	CHECK_CONTAINS(err.msg, "cmdline_size 16");
	/* the VMM's 4 KiB area */
	o.cmdline_size = 0xfffff;
	memset(c, 'b', 4096);
	c[4095] = 0;
	REQUIRE_BOOT(bz_write("bz", &o), NULL, c, BOOT_AUTO);
	check_cmdline(c);
	CHECK(g8(0x20000 + 4095) == 0);
	memset(c, 'c', 4096);
	c[4096] = 0;
	CHECK_BOOT_FAILS(bz_write("bz", &o), NULL, c, BOOT_AUTO,
			 "command line is 4096 bytes");
	CHECK_CONTAINS(err.msg, "room for");
	/* never truncated: no part of the long line was written */
	CHECK(g8(0x20000) == 'b' && g8(0x20000 + 4094) == 'b');
	/* an ELF kernel has no cmdline_size: the area is the limit */
	ek = elf_write("elf", &eo);
	c[4095] = 0;
	REQUIRE_BOOT(ek, NULL, c, BOOT_AUTO);
	check_cmdline(c);
	CHECK(g32(0x7000 + 0x238) == 4095);
	c[4095] = 'c';
	CHECK_BOOT_FAILS(ek, NULL, c, BOOT_AUTO, "command line is 4096 bytes");
	free(c);
}

/* ---- whole-VM arguments, big guests ---- */

static void test_args(void)
{
	struct bz o = bz_default();
	const char *k = bz_write("bz", &o);
	struct boot_args a = { .kernel = k, .cmdline = "", .vcpus = 1 };

	REQUIRE(ram_init(64 * MiB) == 0);
	CHECK_BOOT_FAILS(tmp_path("missing"), NULL, "", BOOT_AUTO,
			 "No such file or directory");
	CHECK(err.code == KR_NOT_FOUND);
	CHECK_CONTAINS(err.msg, tmp_path("missing"));
	CHECK_BOOT_FAILS(tmpdir, NULL, "", BOOT_AUTO, "not a regular file");
	CHECK_BOOT_FAILS(k, tmpdir, "", BOOT_AUTO, "not a regular file");
	vcpus = 0;
	CHECK_BOOT_FAILS(k, NULL, "", BOOT_AUTO, "0 vCPUs");
	vcpus = 255;
	CHECK_BOOT_FAILS(k, NULL, "", BOOT_AUTO, "255 vCPUs");
	vcpus = 254;
	REQUIRE_BOOT(k, NULL, "", BOOT_AUTO);
	check_mptable(254);
	vcpus = 2;
	a.ram_size = MiB;
	CHECK(boot_load(&gm, &a, &cpu, &err) == -1);
	CHECK_CONTAINS(err.msg, "need more than 1 MiB");
	a.ram_size = 64 * MiB;
	a.kernel = NULL;
	CHECK(boot_load(&gm, &a, &cpu, &err) == -1);
	CHECK(boot_load(&gm, NULL, &cpu, &err) == -1);
	CHECK(boot_load(NULL, &a, &cpu, &err) == -1);
	/* ram_size larger than the memory actually given */
	a.kernel = k;
	a.ram_size = 128 * MiB;
	a.initrd = k;
	CHECK(boot_load(&gm, &a, &cpu, &err) == -1);
	CHECK_CONTAINS(err.msg, "outside guest memory");
	CHECK(strcmp(boot_proto_name(BOOT_PVH), "pvh") == 0);
	CHECK(strcmp(boot_proto_name(BOOT_LINUX64), "linux64") == 0);
}

/* 4 GiB: 3 GiB below the hole, 1 GiB above 4 GiB. */
static void test_big_guest(void)
{
	struct bz bo = bz_default();
	struct elf eo = elf_default();
	uint8_t rdb[4096 + 17];
	const char *rd;

	if (ram_init(4 * GiB) < 0)
		SKIP("cannot map 4 GiB of guest RAM");
	pattern(rdb, sizeof(rdb), 6);
	rd = write_tmp("rd", rdb, sizeof(rdb));
	REQUIRE_BOOT(bz_write("bz", &bo), rd, "", BOOT_AUTO);
	/* below initrd_addr_max 0x7fffffff */
	CHECK(cpu.initrd_start == ((0x80000000ull - sizeof(rdb)) & ~0xfffull));
	CHECK(memcmp(host(cpu.initrd_start), rdb, sizeof(rdb)) == 0);
	CHECK(g8(0x7000 + 0x1e8) == 4);
	CHECK(g64(0x7000 + 0x2d0 + 60) == 0x100000000ull);
	CHECK(g64(0x7000 + 0x2d0 + 68) == GiB);
	CHECK(g32(0x7000 + 0x2d0 + 76) == 1);
	CHECK(g64(0x7000 + 0x2d0 + 48) == 0xc0000000ull - 0x100000);

	REQUIRE_BOOT(elf_write("elf", &eo), rd, "", BOOT_AUTO);
	/* an ELF has no initrd_addr_max: the top of low RAM */
	CHECK(cpu.initrd_start == ((0xc0000000ull - sizeof(rdb)) & ~0xfffull));
	CHECK(memcmp(host(cpu.initrd_start), rdb, sizeof(rdb)) == 0);
	CHECK(g8(0x7000 + 0x1e8) == 4);

	eo.pvh = PVH_PHDR;
	REQUIRE_BOOT(elf_write("elf", &eo), rd, "", BOOT_AUTO);
	check_pvh_info(cpu.initrd_start, sizeof(rdb));
	CHECK(g32(0x6030) == 4);
}

/* ---- the real guest kernel, if cached ---- */

#define KERNEL_CACHE "/var/cache/kata-run/kernel"

/* The newest <cache>/<key>/ holding both bzImage and vmlinux. */
static int find_cached_kernel(char *dir, size_t size)
{
	DIR *d = opendir(KERNEL_CACHE);
	struct dirent *de;
	time_t best = 0;
	int found = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char bz[PATH_MAX], vm[PATH_MAX];
		struct stat sb, sv;

		if (de->d_name[0] == '.')
			continue;
		snprintf(bz, sizeof(bz), "%s/%s/bzImage", KERNEL_CACHE,
			 de->d_name);
		snprintf(vm, sizeof(vm), "%s/%s/vmlinux", KERNEL_CACHE,
			 de->d_name);
		if (stat(bz, &sb) < 0 || stat(vm, &sv) < 0 ||
		    !S_ISREG(sb.st_mode) || !S_ISREG(sv.st_mode))
			continue;
		if (!found || sb.st_mtime > best) {
			best = sb.st_mtime;
			snprintf(dir, size, "%s/%s", KERNEL_CACHE, de->d_name);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* Independent of the loader: a byte search for the PVH note header. */
static int scan_pvh(const uint8_t *b, size_t len, uint64_t *entry)
{
	size_t off;

	for (off = 0; off + 24 <= len; off += 4) {
		uint32_t descsz = r32(b, off + 4);

		if (r32(b, off) != 4 || r32(b, off + 8) != 18 ||
		    memcmp(b + off + 12, "Xen", 4) != 0 ||
		    (descsz != 4 && descsz != 8))
			continue;
		*entry = descsz == 8 ? r64(b, off + 16) : r32(b, off + 16);
		return 1;
	}
	return 0;
}

static void check_real_bzimage(const char *path, const uint8_t *b,
			       size_t len)
{
	static const char cmdline[] = "console=ttyS0 nokaslr panic=-1";
	unsigned sects = b[0x1f1] ? b[0x1f1] : 4;
	uint64_t setup = (sects + 1ull) * 512, run = 0x100000, top;
	uint32_t align = r32(b, 0x230), init_size = r32(b, 0x260);
	uint8_t rdb[100000];

	pattern(rdb, sizeof(rdb), 12);
	REQUIRE(ram_init(512 * MiB) == 0);
	REQUIRE_BOOT(path, write_tmp("rd", rdb, sizeof(rdb)), cmdline,
		     BOOT_AUTO);
	printf("# real bzImage: protocol %x, setup_sects %u, run 0x%" PRIx64
	       "..0x%" PRIx64 ", initrd at 0x%" PRIx64 "\n",
	       b[0x206] | b[0x207] << 8, sects, cpu.kernel_start,
	       cpu.kernel_end, cpu.initrd_start);
	check_linux64_cpu(0x100200);
	CHECK(memcmp(host(0x100000), b + setup, len - setup) == 0);
	if (b[0x234] && align)
		run = (run + align - 1) & ~((uint64_t)align - 1);
	if (r64(b, 0x258) > run)
		run = r64(b, 0x258);
	CHECK(cpu.kernel_end == run + init_size);
	top = (uint64_t)r32(b, 0x22c) + 1;
	if (top > 512 * MiB)
		top = 512 * MiB;
	CHECK(cpu.initrd_start == ((top - sizeof(rdb)) & ~0xfffull));
	CHECK(memcmp(host(cpu.initrd_start), rdb, sizeof(rdb)) == 0);
	/* header copied, sentinel not */
	CHECK(memcmp(host(0x7000 + 0x1f1), b + 0x1f1, 0x210 - 0x1f1) == 0);
	CHECK(g8(0x7000 + 0x1ef) == 0);
	CHECK(g8(0x7000 + 0x210) == 0xff);
	CHECK(g32(0x7000 + 0x228) == 0x20000);
	CHECK(g32(0x7000 + 0x21c) == sizeof(rdb));
	CHECK(g8(0x7000 + 0x1e8) == 3);
	check_cmdline(cmdline);
	check_mptable(2);
}

static void check_real_vmlinux(const char *path, const uint8_t *b,
			       size_t len)
{
	uint16_t phnum = (uint16_t)(b[56] | b[57] << 8), i;
	uint64_t phoff = r64(b, 32), pvh_entry = 0, start = UINT64_MAX, end = 0;
	int pvh = scan_pvh(b, len, &pvh_entry);

	REQUIRE(ram_init(512 * MiB) == 0);
	REQUIRE_BOOT(path, NULL, "console=hvc0", BOOT_AUTO);
	printf("# real vmlinux: %s, entry 0x%llx, kernel 0x%" PRIx64 "..0x%"
	       PRIx64 "\n", boot_proto_name(cpu.proto),
	       (unsigned long long)cpu.regs.rip, cpu.kernel_start,
	       cpu.kernel_end);
	if (pvh) {
		check_pvh_cpu(pvh_entry);
		check_pvh_info(0, 0);
	} else {
		CHECK(cpu.proto == BOOT_LINUX64);
	}
	for (i = 0; i < phnum; i++) {
		const uint8_t *ph = b + phoff + 56ull * i;
		uint64_t off = r64(ph, 8), pa = r64(ph, 24);
		uint64_t fs = r64(ph, 32), ms = r64(ph, 40);

		if (r32(ph, 0) != PT_LOAD || ms == 0)
			continue;
		REQUIRE(off + fs <= len);
		CHECKF(memcmp(host(pa), b + off, fs) == 0, "segment %u", i);
		CHECKF(all_bytes(pa + fs, ms - fs, 0), "segment %u bss", i);
		start = pa < start ? pa : start;
		end = pa + ms > end ? pa + ms : end;
	}
	CHECK(cpu.kernel_start == start && cpu.kernel_end == end);

	/* the 64-bit protocol on the same file: entry e_entry (physical) */
	REQUIRE(ram_init(512 * MiB) == 0);
	REQUIRE_BOOT(path, NULL, "console=ttyS0", BOOT_LINUX64);
	check_linux64_cpu(r64(b, 24));
	CHECK(g16(0x7000 + 0x1fe) == 0xaa55);
	CHECK(g32(0x7000 + 0x202) == 0x53726448);
}

static void test_real_kernel(void)
{
	char dir[PATH_MAX], bzp[PATH_MAX + 16], vmp[PATH_MAX + 16];
	char *bz = NULL, *vm = NULL;
	size_t bzlen, vmlen;
	struct kr_err e;

	if (!find_cached_kernel(dir, sizeof(dir)))
		SKIP("no cached guest kernel (bzImage + vmlinux) in "
		     KERNEL_CACHE "/<key>/");
	snprintf(bzp, sizeof(bzp), "%s/bzImage", dir);
	snprintf(vmp, sizeof(vmp), "%s/vmlinux", dir);
	printf("# real kernel: %s\n", dir);
	if (kr_read_file(bzp, 256 * MiB, &bz, &bzlen, &e) < 0 ||
	    kr_read_file(vmp, 512 * MiB, &vm, &vmlen, &e) < 0) {
		printf("#   %s\n", e.msg);
		CHECK(0);
	} else {
		check_real_bzimage(bzp, (uint8_t *)bz, bzlen);
		check_real_vmlinux(vmp, (uint8_t *)vm, vmlen);
	}
	free(bz);
	free(vm);
}

int main(void)
{
	struct kr_err e;
	int ret;

	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	KR_TEST(test_e820);
	KR_TEST(test_mptable);
	KR_TEST(test_bz_basic);
	KR_TEST(test_bz_variants);
	KR_TEST(test_bz_placement);
	KR_TEST(test_bz_initrd_limits);
	KR_TEST(test_bz_bad_header);
	KR_TEST(test_bz_truncated);
	KR_TEST(test_bz_too_big);
	KR_TEST(test_cmdline_limits);
	KR_TEST(test_elf_linux64);
	KR_TEST(test_elf_high_entry);
	KR_TEST(test_elf_pvh);
	KR_TEST(test_elf_bad_headers);
	KR_TEST(test_elf_bad_segments);
	KR_TEST(test_elf_bad_notes);
	KR_TEST(test_elf_note_align);
	KR_TEST(test_elf_truncated);
	KR_TEST(test_elf_above_1g);
	KR_TEST(test_args);
	KR_TEST(test_big_guest);
	KR_TEST(test_real_kernel);
	ram_free();
	ret = kr_test_done();
	if (kr_rm_rf(tmpdir, &e) < 0)
		printf("# cleanup: %s\n", e.msg);
	return ret;
}
