/* Unit tests for hypervisor/kvm/guest_mem.c and virtqueue.c.  The tests play
 * the guest: they write descriptor tables and rings by hand into malloc'd
 * "guest RAM" (two regions, below and above 4 GiB) and check what the
 * device side makes of them, well-formed and hostile alike. */
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kr/error.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "../lib/vq_driver.h"
#include "guest_mem.h"
#include "virtqueue.h"

#define RAM0_GPA 0x0ull
#define RAM0_SIZE (1u << 20)
#define RAM1_GPA 0x100000000ull
#define RAM1_SIZE 0x10000u
#define DESC 0x1000ull
#define AVAIL 0x2000ull
#define USED 0x3000ull
#define BUF 0x10000ull

#define F_INDIRECT (1ull << VIRTIO_F_INDIRECT_DESC)
#define F_EVENT (1ull << VIRTIO_F_EVENT_IDX)
#define NEXT VQ_DESC_F_NEXT
#define WRITE VQ_DESC_F_WRITE
#define INDIRECT VQ_DESC_F_INDIRECT

static uint8_t *ram0, *ram1;
static struct guest_mem gm;
static struct vq vq;
static struct vq_seg segs[128];
static struct vq_chain chain;
static struct kr_err err;
static struct gq q0;		/* the queue as the guest sees it */

/* ---- the guest's side: tests/lib/vq_driver.h, on queue q0 ---- */

#define D(i, a, l, f, n) desc_at(DESC, (i), (a), (l), (f), (n))
#define set_avail_idx(idx) gq_set_avail_idx(&q0, (idx))
#define avail_add(head) gq_avail_add(&q0, (head))
#define used_idx() gq_used_idx(&q0)
#define used_id(slot) gq_used_id(&q0, (slot))
#define used_len(slot) gq_used_len(&q0, (slot))

#define USED_EVENT (AVAIL + 4 + 2ull * q0.size)
#define AVAIL_EVENT (USED + 4 + 8ull * q0.size)

/* Fresh memory and a queue of size n at DESC/AVAIL/USED. */
static int start(unsigned n, uint64_t features)
{
	memset(ram0, 0, RAM0_SIZE);
	memset(ram1, 0, RAM1_SIZE);
	memset(&err, 0, sizeof(err));
	gq_init(&q0, 0, n, DESC, AVAIL, USED);
	vq_chain_init(&chain, segs, KR_ARRAY_SIZE(segs));
	return vq_setup(&vq, &gm, n, DESC, AVAIL, USED, features, &err);
}

static int pop(void)
{
	return vq_pop(&vq, &gm, &chain, &err);
}

/* A hostile chain: the pop fails with want in the message, the queue is
 * broken from then on. */
#define CHECK_POP_FAILS(want)                                                \
	do {                                                                 \
		CHECK(pop() == -1);                                          \
		CHECK(err.code == KR_INVALID_ARGUMENT);                      \
		CHECK_CONTAINS(err.msg, (want));                             \
		CHECK(vq.broken);                                            \
		CHECK(pop() == -1);                                          \
		CHECK(err.code == KR_FAILED_PRECONDITION);                   \
		CHECK_CONTAINS(err.msg, "broken");                           \
	} while (0)

#define CHECK_SEG(n, gpa, l, w)                                              \
	do {                                                                 \
		CHECK(chain.seg[n].ptr == (void *)host(gpa));                \
		CHECK(chain.seg[n].len == (l));                              \
		CHECK(chain.seg[n].writable == (w));                         \
	} while (0)

/* ---- guest memory ---- */

static void test_gm_add_region(void)
{
	struct guest_mem g;
	uint8_t *b = aligned_alloc(4096, 8192);

	REQUIRE(b);
	gm_init(&g);
	CHECK(g.nr == 0);
	CHECK(gm_add_region(&g, 0x1000, 0, b, &err) == -1);
	CHECK_CONTAINS(err.msg, "size 0");
	CHECK(gm_add_region(&g, UINT64_MAX - 0xfff, 0x2000, b, &err) == -1);
	CHECK_CONTAINS(err.msg, "wraps");
	CHECK(gm_add_region(&g, 0x1000, 0x1000, NULL, &err) == -1);
	CHECK(gm_add_region(&g, 0x1000, 0x1000, b + 8, &err) == -1);
	CHECK_CONTAINS(err.msg, "congruent");
	CHECK(g.nr == 0);

	CHECK(gm_add_region(&g, 0x10000, 0x1000, b, &err) == 0);
	/* same, partial below, partial above, containing, contained */
	CHECK(gm_add_region(&g, 0x10000, 0x1000, b + 4096, &err) == -1);
	CHECK_CONTAINS(err.msg, "overlaps 0x10000+0x1000");
	CHECK(gm_add_region(&g, 0xf000, 0x1001, b, &err) == -1);
	CHECK_CONTAINS(err.msg, "overlaps");
	CHECK(gm_add_region(&g, 0x10fff, 0x1000, b + 15, &err) == -1);
	CHECK_CONTAINS(err.msg, "overlaps");
	CHECK(gm_add_region(&g, 0x8000, 0x10000, b, &err) == -1);
	CHECK_CONTAINS(err.msg, "overlaps");
	CHECK(gm_add_region(&g, 0x10800, 0x10, b, &err) == -1);
	CHECK_CONTAINS(err.msg, "overlaps");
	CHECK(g.nr == 1);
	/* Adjacent on both sides is fine; so is the last page of 2^64. */
	CHECK(gm_add_region(&g, 0xf000, 0x1000, b + 4096, &err) == 0);
	CHECK(gm_add_region(&g, 0x11000, 0x1000, b, &err) == 0);
	CHECK(gm_add_region(&g, UINT64_MAX - 0xfff, 0x1000, b, &err) == 0);
	CHECK(g.nr == 4);
	for (unsigned i = 4; i < GM_MAX_REGIONS; i++)
		CHECK(gm_add_region(&g, 0x100000ull * (i + 1), 16, b, &err) ==
		      0);
	CHECK(gm_add_region(&g, 0x1000000, 16, b, &err) == -1);
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	free(b);
}

static void test_gm_ptr(void)
{
	CHECK(gm_ptr(&gm, 0, 1) == ram0);
	CHECK(gm_ptr(&gm, 0, RAM0_SIZE) == ram0);
	CHECK(gm_ptr(&gm, 0, RAM0_SIZE + 1ull) == NULL);
	CHECK(gm_ptr(&gm, 0x1234, 0x10) == ram0 + 0x1234);
	CHECK(gm_ptr(&gm, RAM0_SIZE - 1, 1) == ram0 + RAM0_SIZE - 1);
	CHECK(gm_ptr(&gm, RAM0_SIZE - 1, 2) == NULL);
	CHECK(gm_ptr(&gm, RAM0_SIZE, 1) == NULL);		/* hole */
	CHECK(gm_ptr(&gm, RAM1_GPA + 8, 8) == ram1 + 8);
	CHECK(gm_ptr(&gm, RAM1_GPA - 1, 2) == NULL);
	/* len 0: only inside a region, not one past its end */
	CHECK(gm_ptr(&gm, 0x10, 0) == ram0 + 0x10);
	CHECK(gm_ptr(&gm, RAM0_SIZE, 0) == NULL);
	CHECK(gm_ptr(&gm, RAM1_GPA + RAM1_SIZE, 0) == NULL);
	/* ranges that wrap 2^64 */
	CHECK(gm_ptr(&gm, 0x10, UINT64_MAX) == NULL);
	CHECK(gm_ptr(&gm, 0x10, UINT64_MAX - 0xf) == NULL);
	CHECK(gm_ptr(&gm, UINT64_MAX, 2) == NULL);
	CHECK(gm_ptr(&gm, RAM1_GPA + 1, UINT64_MAX) == NULL);
}

static void test_gm_adjacent(void)
{
	struct guest_mem g;
	uint8_t *b = aligned_alloc(4096, 8192);

	REQUIRE(b);
	gm_init(&g);
	REQUIRE(gm_add_region(&g, 0x0, 0x1000, b, &err) == 0);
	REQUIRE(gm_add_region(&g, 0x1000, 0x1000, b + 4096, &err) == 0);
	CHECK(gm_ptr(&g, 0xff0, 0x10) == b + 0xff0);
	CHECK(gm_ptr(&g, 0x1000, 0x10) == b + 0x1000);
	/* even contiguous on both sides: one range, one region */
	CHECK(gm_ptr(&g, 0xff0, 0x20) == NULL);
	free(b);
}

static void test_gm_read_write(void)
{
	char buf[8] = "abcdefg";
	char back[8] = "";

	memset(&err, 0, sizeof(err));
	CHECK(gm_write(&gm, RAM1_GPA + 0x100, buf, 8, &err) == 0);
	CHECK(memcmp(ram1 + 0x100, "abcdefg", 8) == 0);
	CHECK(gm_read(&gm, RAM1_GPA + 0x100, back, 8, &err) == 0);
	CHECK_STREQ(back, "abcdefg");
	CHECK(gm_read(&gm, RAM1_GPA + RAM1_SIZE - 4, back, 8, &err) == -1);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	CHECK_STREQ(err.msg, "guest range 0x10000fffc+0x8 is outside guest"
		    " memory");
	CHECK(gm_write(&gm, 0xfffffffffffffffcull, buf, 8, &err) == -1);
	CHECK_CONTAINS(err.msg, "0xfffffffffffffffc+0x8");
	CHECK(gm_read(&gm, 0x10, back, 0, &err) == 0);
}

/* ---- setup ---- */

static void test_setup_valid(void)
{
	REQUIRE(start(16, F_EVENT | F_INDIRECT) == 0);
	CHECK(vq.ready && !vq.broken);
	CHECK(vq.size == 16 && vq.indirect && vq.event_idx);
	CHECK(vq.desc == ram0 + DESC && vq.avail == ram0 + AVAIL &&
	      vq.used == ram0 + USED);
	CHECK(vq.last_avail_idx == 0 && vq.used_idx == 0);
	CHECK(pop() == 0);	/* empty */
	REQUIRE(start(1, 0) == 0);
	CHECK(vq.size == 1 && !vq.indirect && !vq.event_idx);
}

static void test_setup_size(void)
{
	static const unsigned bad[] = { 0, 3, 6, 100, 65536, 0x80000000u };

	for (unsigned i = 0; i < KR_ARRAY_SIZE(bad); i++) {
		CHECK(start(bad[i], 0) == -1);
		CHECK(err.code == KR_INVALID_ARGUMENT);
		CHECK_CONTAINS(err.msg, "not a power of two");
		CHECK(!vq.ready);
	}
	/* The largest size works where the areas fit. */
	memset(&err, 0, sizeof(err));
	CHECK(vq_setup(&vq, &gm, VQ_MAX_SIZE, 0x0, 0x80000, 0xa0000, F_EVENT,
		       &err) == 0);
	CHECK(vq.size == VQ_MAX_SIZE);
}

static void test_setup_alignment(void)
{
	CHECK(vq_setup(&vq, &gm, 16, DESC + 8, AVAIL, USED, 0, &err) == -1);
	CHECK_STREQ(err.msg, "descriptor table at 0x1008 is not 16-byte"
		    " aligned");
	CHECK(vq_setup(&vq, &gm, 16, DESC, AVAIL + 1, USED, 0, &err) == -1);
	CHECK_STREQ(err.msg, "available ring at 0x2001 is not 2-byte aligned");
	CHECK(vq_setup(&vq, &gm, 16, DESC, AVAIL, USED + 2, 0, &err) == -1);
	CHECK_STREQ(err.msg, "used ring at 0x3002 is not 4-byte aligned");
	CHECK(!vq.ready);
	/* smallest legal alignments */
	CHECK(vq_setup(&vq, &gm, 16, DESC + 16, AVAIL + 2, USED + 4, 0,
		       &err) == 0);
}

static void test_setup_outside(void)
{
	const uint64_t end0 = RAM0_SIZE, end1 = RAM1_GPA + RAM1_SIZE;

	CHECK(vq_setup(&vq, &gm, 16, end0, AVAIL, USED, 0, &err) == -1);
	CHECK_STREQ(err.msg, "descriptor table 0x100000+0x100 is outside"
		    " guest memory");
	/* Straddles the end of region 1 by one entry. */
	CHECK(vq_setup(&vq, &gm, 16, end1 - 0xf0, AVAIL, USED, 0, &err) == -1);
	CHECK(vq_setup(&vq, &gm, 16, end1 - 0x100, AVAIL, USED, 0, &err) == 0);
	CHECK(vq_setup(&vq, &gm, 16, DESC, 0xfffffffffffffffeull, USED, 0,
		       &err) == -1);
	CHECK_CONTAINS(err.msg, "available ring 0xfffffffffffffffe+0x24");

	/* Rings ending exactly at the region's end: the event fields only
	 * count when EVENT_IDX is negotiated. */
	CHECK(vq_setup(&vq, &gm, 16, DESC, end1 - 36, USED, 0, &err) == 0);
	CHECK(vq_setup(&vq, &gm, 16, DESC, end1 - 36, USED, F_EVENT,
		       &err) == -1);
	CHECK_STREQ(err.msg, "available ring 0x10000ffdc+0x26 is outside"
		    " guest memory");
	CHECK(vq_setup(&vq, &gm, 16, DESC, AVAIL, end1 - 132, 0, &err) == 0);
	CHECK(vq_setup(&vq, &gm, 16, DESC, AVAIL, end1 - 132, F_EVENT,
		       &err) == -1);
	CHECK_STREQ(err.msg, "used ring 0x10000ff7c+0x86 is outside guest"
		    " memory");
	CHECK(!vq.ready);
	CHECK(pop() == -1);
	CHECK_CONTAINS(err.msg, "not set up");
}

/* ---- well-formed chains ---- */

static void test_single(void)
{
	REQUIRE(start(16, 0) == 0);
	D(3, BUF, 100, 0, 0);
	avail_add(3);
	CHECK(pop() == 1);
	CHECK(chain.head == 3);
	CHECK(chain.nseg == 1 && chain.nread == 1);
	CHECK_SEG(0, BUF, 100, false);
	CHECK(chain.read_len == 100 && chain.write_len == 0);
	CHECK(vq.last_avail_idx == 1 && vq.inflight == 1);
	CHECK(pop() == 0);
	CHECK(vq.last_avail_idx == 1);
}

static void test_read_then_write(void)
{
	REQUIRE(start(16, 0) == 0);
	/* out of order in the table, as a guest's free list leaves it */
	D(7, BUF, 16, NEXT, 2);
	D(2, BUF + 0x100, 4000, NEXT, 15);
	D(15, RAM1_GPA + 0x40, 512, WRITE | NEXT, 0);
	D(0, BUF + 0x2000, 1, WRITE, 9);	/* next ignored without NEXT */
	avail_add(7);
	CHECK(pop() == 1);
	CHECK(chain.head == 7);
	CHECK(chain.nseg == 4 && chain.nread == 2);
	CHECK_SEG(0, BUF, 16, false);
	CHECK_SEG(1, BUF + 0x100, 4000, false);
	CHECK_SEG(2, RAM1_GPA + 0x40, 512, true);
	CHECK_SEG(3, BUF + 0x2000, 1, true);
	CHECK(chain.read_len == 4016 && chain.write_len == 513);
}

static void test_write_only_and_many(void)
{
	REQUIRE(start(16, 0) == 0);
	D(0, BUF, 64, WRITE, 0);
	for (unsigned i = 1; i < 16; i++)
		D(i, BUF + 0x100 * i, i, i < 15 ? NEXT : 0, i + 1);
	avail_add(0);
	avail_add(1);
	CHECK(pop() == 1);
	CHECK(chain.head == 0 && chain.nseg == 1 && chain.nread == 0);
	CHECK(chain.write_len == 64 && chain.read_len == 0);
	/* a chain using every descriptor of the table is not a loop */
	CHECK(pop() == 1);
	CHECK(chain.head == 1 && chain.nseg == 15 && chain.nread == 15);
	CHECK_SEG(14, BUF + 0xf00, 15, false);
	CHECK(chain.read_len == 120);
	CHECK(pop() == 0);
}

static void test_indirect(void)
{
	const uint64_t table = RAM1_GPA + 0x1008;	/* 8-aligned only */

	REQUIRE(start(16, F_INDIRECT) == 0);
	desc_at(table, 0, BUF, 10, NEXT, 2);
	desc_at(table, 2, BUF + 0x40, 20, WRITE | NEXT, 1);
	desc_at(table, 1, RAM1_GPA, 30, WRITE, 0);
	/* WRITE on the indirect descriptor itself is ignored */
	D(5, table, 3 * 16, INDIRECT | WRITE, 0);
	avail_add(5);
	CHECK(pop() == 1);
	CHECK(chain.head == 5);
	CHECK(chain.nseg == 3 && chain.nread == 1);
	CHECK_SEG(0, BUF, 10, false);
	CHECK_SEG(1, BUF + 0x40, 20, true);
	CHECK_SEG(2, RAM1_GPA, 30, true);
	CHECK(chain.read_len == 10 && chain.write_len == 50);
}

static void test_direct_then_indirect(void)
{
	const uint64_t table = BUF + 0x8000;

	REQUIRE(start(16, F_INDIRECT) == 0);
	D(0, BUF, 8, NEXT, 1);
	D(1, table, 32, INDIRECT, 0);
	desc_at(table, 0, BUF + 0x10, 4, NEXT, 1);
	desc_at(table, 1, BUF + 0x20, 6, WRITE, 0);
	avail_add(0);
	CHECK(pop() == 1);
	CHECK(chain.nseg == 3 && chain.nread == 2);
	CHECK_SEG(0, BUF, 8, false);
	CHECK_SEG(1, BUF + 0x10, 4, false);
	CHECK_SEG(2, BUF + 0x20, 6, true);

	/* the ordering rule spans the switch into the table */
	REQUIRE(start(16, F_INDIRECT) == 0);
	D(0, BUF, 8, WRITE | NEXT, 1);
	D(1, table, 16, INDIRECT, 0);
	desc_at(table, 0, BUF + 0x10, 4, 0, 0);
	avail_add(0);
	CHECK_POP_FAILS("indirect desc 0 (table of desc 1): readable"
			" descriptor after a writable one");
}

static void test_chain_stream(void)
{
	uint8_t out[16];

	REQUIRE(start(16, 0) == 0);
	memcpy(host(BUF), "hea", 3);
	memcpy(host(BUF + 0x100), "der+pay", 7);
	memcpy(host(BUF + 0x200), "load", 4);
	D(0, BUF, 3, NEXT, 1);
	D(1, BUF + 0x100, 7, NEXT, 2);
	D(2, BUF + 0x200, 4, NEXT, 3);
	D(3, BUF + 0x300, 2, WRITE | NEXT, 4);
	D(4, BUF + 0x400, 5, WRITE, 0);
	avail_add(0);
	REQUIRE(pop() == 1);
	memset(out, 0, sizeof(out));
	CHECK(vq_chain_read(&chain, 0, out, 6) == 6);
	CHECK(memcmp(out, "header", 6) == 0);
	CHECK(vq_chain_read(&chain, 7, out, 16) == 7);
	CHECK(memcmp(out, "payload", 7) == 0);
	CHECK(vq_chain_read(&chain, 14, out, 1) == 0);
	CHECK(vq_chain_write(&chain, 1, "abcdefgh", 8) == 6);
	CHECK(memcmp(host(BUF + 0x301), "a", 1) == 0);
	CHECK(memcmp(host(BUF + 0x400), "bcdef", 5) == 0);
	CHECK(*host(BUF + 0x300) == 0);
}

/* ---- hostile chains ---- */

static void test_self_loop(void)
{
	REQUIRE(start(16, 0) == 0);
	D(4, BUF, 8, NEXT, 4);
	avail_add(4);
	CHECK_POP_FAILS("desc 4: chain longer than 16 descriptors (loop)");
	CHECK(vq.last_avail_idx == 0);
}

static void test_two_cycle(void)
{
	REQUIRE(start(8, 0) == 0);
	D(0, BUF, 8, NEXT, 1);
	D(1, BUF, 8, NEXT, 0);
	avail_add(1);
	CHECK_POP_FAILS("desc 0: chain longer than 8 descriptors (loop)");

	/* A loop of zero-length descriptors is bounded the same way. */
	REQUIRE(start(8, 0) == 0);
	D(0, 0, 0, NEXT, 1);
	D(1, 0, 0, NEXT, 0);
	avail_add(0);
	CHECK_POP_FAILS("chain longer than 8 descriptors (loop)");
}

static void test_indirect_loop(void)
{
	REQUIRE(start(16, F_INDIRECT) == 0);
	desc_at(BUF, 0, BUF + 0x100, 8, NEXT, 1);
	desc_at(BUF, 1, BUF + 0x100, 8, NEXT, 2);
	desc_at(BUF, 2, BUF + 0x100, 8, NEXT, 1);
	D(0, BUF, 48, INDIRECT, 0);
	avail_add(0);
	CHECK_POP_FAILS("indirect desc 2 (table of desc 0): chain longer than"
			" 3 descriptors (loop)");
}

static void test_next_out_of_range(void)
{
	REQUIRE(start(16, 0) == 0);
	D(0, BUF, 8, NEXT, 16);
	avail_add(0);
	CHECK_POP_FAILS("desc 0: next 16 is out of range (16 entries)");

	REQUIRE(start(16, F_INDIRECT) == 0);
	desc_at(BUF, 0, BUF + 0x100, 8, NEXT, 2);
	D(0, BUF, 32, INDIRECT, 0);
	avail_add(0);
	CHECK_POP_FAILS("indirect desc 0 (table of desc 0): next 2 is out of"
			" range (2 entries)");
}

static void test_head_out_of_range(void)
{
	REQUIRE(start(16, 0) == 0);
	avail_add(16);
	CHECK_POP_FAILS("avail ring slot 0: head 16 is out of range (queue"
			" size 16)");
	REQUIRE(start(16, 0) == 0);
	avail_add(0xffff);
	CHECK_POP_FAILS("head 65535");
}

static void test_addr_outside(void)
{
	REQUIRE(start(16, 0) == 0);
	D(0, RAM0_SIZE, 16, 0, 0);		/* the hole after RAM0 */
	avail_add(0);
	CHECK_POP_FAILS("desc 0: buffer 0x100000+0x10 is outside guest"
			" memory");

	REQUIRE(start(16, 0) == 0);
	D(0, BUF, 8, NEXT, 1);
	D(1, RAM1_GPA + RAM1_SIZE - 8, 9, WRITE, 0);	/* one byte past */
	avail_add(0);
	CHECK_POP_FAILS("desc 1: buffer 0x10000fff8+0x9 is outside");
}

static void test_addr_wraps(void)
{
	REQUIRE(start(16, 0) == 0);
	D(0, 0xfffffffffffff000ull, 0x2000, 0, 0);
	avail_add(0);
	CHECK_POP_FAILS("buffer 0xfffffffffffff000+0x2000 is outside");

	/* Both wrap to end inside RAM0: a naive addr + len <= end check
	 * would accept them. */
	REQUIRE(start(16, 0) == 0);
	D(0, 0xfffffffffffffff8ull, 16, WRITE, 0);
	avail_add(0);
	CHECK_POP_FAILS("buffer 0xfffffffffffffff8+0x10 is outside");
}

static void test_zero_length(void)
{
	REQUIRE(start(16, 0) == 0);
	/* skipped wherever they are, whatever their address and flags */
	D(0, 0xdead00000000ull, 0, NEXT, 1);
	D(1, BUF, 16, NEXT, 2);
	D(2, 0, 0, WRITE | NEXT, 3);
	D(3, BUF + 0x20, 8, NEXT, 4);		/* readable after an empty write */
	D(4, BUF + 0x40, 4, WRITE, 0);
	D(5, UINT64_MAX, 0, 0, 0);
	avail_add(0);
	avail_add(5);
	CHECK(pop() == 1);
	CHECK(chain.head == 0 && chain.nseg == 3 && chain.nread == 2);
	CHECK_SEG(0, BUF, 16, false);
	CHECK_SEG(1, BUF + 0x20, 8, false);
	CHECK_SEG(2, BUF + 0x40, 4, true);
	CHECK(pop() == 1);
	CHECK(chain.head == 5 && chain.nseg == 0);
	CHECK(chain.read_len == 0 && chain.write_len == 0);
	CHECK(!vq.broken);
}

static void test_huge_total(void)
{
	const uint32_t mib = 1u << 20;

	/* 64 x 1 MiB is exactly the limit; each reuses all of RAM0 */
	REQUIRE(start(128, 0) == 0);
	for (unsigned i = 0; i < 64; i++)
		D(i, 0, mib, i < 63 ? NEXT : 0, i + 1);
	avail_add(0);
	CHECK(pop() == 1);
	CHECK(chain.nseg == 64 && chain.read_len == VQ_MAX_CHAIN_BYTES);

	REQUIRE(start(128, 0) == 0);
	for (unsigned i = 0; i < 65; i++)
		D(i, 0, mib, i < 64 ? NEXT : 0, i + 1);
	avail_add(0);
	CHECK_POP_FAILS("desc 64: length 0x100000 takes the chain past"
			" 67108864 bytes");

	/* a single huge length fails on the limit before the address */
	REQUIRE(start(16, 0) == 0);
	D(0, BUF, 0xffffffffu, WRITE, 0);
	avail_add(0);
	CHECK_POP_FAILS("desc 0: length 0xffffffff takes the chain past");
}

static void test_write_before_read(void)
{
	REQUIRE(start(16, 0) == 0);
	D(0, BUF, 8, WRITE | NEXT, 1);
	D(1, BUF + 0x10, 8, 0, 0);
	avail_add(0);
	CHECK_POP_FAILS("desc 1: readable descriptor after a writable one");
}

static void test_segment_cap(void)
{
	struct vq_seg small[2];

	REQUIRE(start(16, 0) == 0);
	D(0, BUF, 1, NEXT, 1);
	D(1, BUF, 1, NEXT, 2);
	D(2, BUF, 1, 0, 0);
	avail_add(0);
	vq_chain_init(&chain, small, 2);
	CHECK_POP_FAILS("desc 2: chain needs more than 2 segments");
}

static void test_avail_jump(void)
{
	REQUIRE(start(16, 0) == 0);
	set_avail_idx(17);
	CHECK_POP_FAILS("avail idx 17 is 17 entries ahead of 0 (queue size"
			" 16)");

	/* moving backwards looks like a jump of almost 2^16 */
	REQUIRE(start(16, 0) == 0);
	vq_set_base(&vq, 100, 100);
	set_avail_idx(99);
	CHECK_POP_FAILS("avail idx 99 is 65535 entries ahead of 100");

	/* exactly a full ring is fine */
	REQUIRE(start(16, 0) == 0);
	for (unsigned i = 0; i < 16; i++) {
		D(i, BUF, 1, 0, 0);
		avail_add(i);
	}
	for (unsigned i = 0; i < 16; i++) {
		CHECK(pop() == 1);
		CHECK(chain.head == i);
	}
	CHECK(pop() == 0);
}

static void test_too_many_inflight(void)
{
	REQUIRE(start(4, 0) == 0);
	D(0, BUF, 1, 0, 0);
	for (unsigned i = 0; i < 4; i++)
		avail_add(0);	/* the same head four times */
	for (unsigned i = 0; i < 4; i++)
		CHECK(pop() == 1);
	CHECK(vq_push(&vq, 0, 0, &err) == 0);
	avail_add(0);
	CHECK(pop() == 1);
	avail_add(0);
	CHECK_POP_FAILS("more than 4 chains in flight");
}

static void test_wrapped_indices(void)
{
	REQUIRE(start(16, 0) == 0);
	vq_set_base(&vq, 65534, 65534);
	set_avail_idx(65534);
	for (unsigned i = 0; i < 4; i++) {
		D(i, BUF + 0x100 * i, 10 + i, 0, 0);
		avail_add(i);
	}
	CHECK(q0.avail_idx == 2);
	for (unsigned i = 0; i < 4; i++) {
		CHECK(pop() == 1);
		CHECK(chain.head == i);
		CHECK(chain.seg[0].len == 10 + i);
	}
	CHECK(pop() == 0);
	CHECK(vq.last_avail_idx == 2);
	for (unsigned i = 0; i < 4; i++)
		CHECK(vq_push(&vq, (uint16_t)(3 - i), 100 + i, &err) == 0);
	CHECK(used_idx() == 2);
	CHECK(used_id(14) == 3 && used_len(14) == 100);
	CHECK(used_id(15) == 2 && used_len(15) == 101);
	CHECK(used_id(0) == 1 && used_len(0) == 102);
	CHECK(used_id(1) == 0 && used_len(1) == 103);
	/* exactly a ring ahead is fine, one more breaks, across the wrap */
	set_avail_idx(18);
	CHECK(pop() == 1);
	CHECK(chain.head == 0);
	REQUIRE(start(16, 0) == 0);
	vq_set_base(&vq, 65530, 0);
	set_avail_idx(11);
	CHECK_POP_FAILS("avail idx 11 is 17 entries ahead of 65530");
}

static void test_nested_indirect(void)
{
	REQUIRE(start(16, F_INDIRECT) == 0);
	desc_at(BUF, 0, BUF + 0x100, 16, INDIRECT, 0);
	desc_at(BUF + 0x100, 0, BUF + 0x200, 8, 0, 0);
	D(0, BUF, 16, INDIRECT, 0);
	avail_add(0);
	CHECK_POP_FAILS("indirect desc 0 (table of desc 0): nested indirect"
			" descriptor");
}

static void test_indirect_bad(void)
{
	static const uint32_t bad_len[] = { 0, 8, 24, 17 };

	for (unsigned i = 0; i < KR_ARRAY_SIZE(bad_len); i++) {
		char want[80];

		REQUIRE(start(16, F_INDIRECT) == 0);
		D(2, BUF, bad_len[i], INDIRECT, 0);
		avail_add(2);
		snprintf(want, sizeof(want), "desc 2: indirect table length"
			 " %u is not", bad_len[i]);
		CHECK_POP_FAILS(want);
	}

	REQUIRE(start(16, F_INDIRECT) == 0);
	D(0, BUF, 32, INDIRECT | NEXT, 1);
	D(1, BUF, 8, 0, 0);
	avail_add(0);
	CHECK_POP_FAILS("desc 0: INDIRECT together with NEXT");

	REQUIRE(start(16, F_INDIRECT) == 0);
	D(0, RAM1_GPA + RAM1_SIZE - 16, 32, INDIRECT, 0);
	avail_add(0);
	CHECK_POP_FAILS("desc 0: indirect table 0x10000fff0+0x20 is outside"
			" guest memory");

	REQUIRE(start(16, F_INDIRECT) == 0);
	D(0, 0, (VQ_MAX_INDIRECT + 1) * 16, INDIRECT, 0);
	avail_add(0);
	CHECK_POP_FAILS("desc 0: indirect table of 32769 entries (at most"
			" 32768)");

	/* not negotiated */
	REQUIRE(start(16, 0) == 0);
	desc_at(BUF, 0, BUF + 0x100, 8, 0, 0);
	D(0, BUF, 16, INDIRECT, 0);
	avail_add(0);
	CHECK_POP_FAILS("desc 0: indirect descriptor, but"
			" VIRTIO_F_INDIRECT_DESC was not negotiated");
}

static void test_indirect_max(void)
{
	/* the largest table, a 32768-descriptor chain through all of it */
	const unsigned n = VQ_MAX_INDIRECT;
	struct vq_seg *many = calloc(n, sizeof(*many));

	REQUIRE(many);
	REQUIRE(start(16, F_INDIRECT) == 0);
	for (unsigned i = 0; i < n; i++)
		desc_at(0x20000, i, BUF, 1, i + 1 < n ? NEXT : 0,
			(uint16_t)(i + 1));
	D(0, 0x20000, n * 16, INDIRECT, 0);
	avail_add(0);
	vq_chain_init(&chain, many, n);
	CHECK(pop() == 1);
	CHECK(chain.nseg == n && chain.read_len == n);
	free(many);
}

/* ---- used ring and notifications ---- */

static void test_push(void)
{
	REQUIRE(start(16, 0) == 0);
	D(9, BUF, 8, WRITE, 0);
	avail_add(9);
	CHECK(vq_push(&vq, 9, 8, &err) == -1);
	CHECK_CONTAINS(err.msg, "no chain in flight");
	REQUIRE(pop() == 1);
	CHECK(vq_push(&vq, 16, 8, &err) == -1);
	CHECK_STREQ(err.msg, "push of head 16 (queue size 16)");
	CHECK(used_idx() == 0);
	CHECK(vq_push(&vq, chain.head, 5, &err) == 0);
	CHECK(used_idx() == 1);
	CHECK(used_id(0) == 9 && used_len(0) == 5);
	CHECK(vq.used_idx == 1 && vq.inflight == 0);
	CHECK(vq_push(&vq, 9, 5, &err) == -1);
	CHECK(used_idx() == 1);

	/* a broken queue takes no more pushes */
	avail_add(9);
	REQUIRE(pop() == 1);
	set_avail_idx(q0.avail_idx + 17);
	CHECK(pop() == -1);
	CHECK(vq_push(&vq, 9, 0, &err) == -1);
	CHECK_STREQ(err.msg, "queue is broken");
	CHECK(used_idx() == 1);
	/* a new setup (after the driver's reset) recovers */
	REQUIRE(start(16, 0) == 0);
	CHECK(!vq.broken && pop() == 0);
}

static void push_one(unsigned head)
{
	D(head, BUF, 4, 0, 0);
	avail_add(head);
	if (pop() != 1 || vq_push(&vq, chain.head, 0, &err) != 0)
		abort();
}

static void test_notify_flags(void)
{
	REQUIRE(start(16, 0) == 0);
	CHECK(!vq_need_notify(&vq));	/* nothing pushed */
	push_one(1);
	CHECK(vq_need_notify(&vq));
	CHECK(!vq_need_notify(&vq));	/* nothing new since */
	put16(AVAIL, VQ_AVAIL_F_NO_INTERRUPT);
	push_one(2);
	CHECK(!vq_need_notify(&vq));
	put16(AVAIL, 0);
	CHECK(!vq_need_notify(&vq));	/* already decided for that one */
	push_one(3);
	push_one(4);
	CHECK(vq_need_notify(&vq));
}

static void test_notify_event_idx(void)
{
	REQUIRE(start(16, F_EVENT) == 0);
	/* NO_INTERRUPT is ignored with EVENT_IDX */
	put16(AVAIL, VQ_AVAIL_F_NO_INTERRUPT);
	put16(USED_EVENT, 0);
	push_one(0);			/* used 0 -> 1 passes 0 */
	CHECK(vq_need_notify(&vq));
	push_one(1);			/* 1 -> 2: event 0 already passed */
	CHECK(!vq_need_notify(&vq));
	put16(USED_EVENT, 3);
	push_one(2);			/* 2 -> 3 */
	CHECK(!vq_need_notify(&vq));
	push_one(3);
	push_one(4);			/* 3 -> 5 passes 3 */
	CHECK(vq_need_notify(&vq));
	put16(USED_EVENT, 6);
	push_one(5);			/* 5 -> 6: 6 not passed yet */
	CHECK(!vq_need_notify(&vq));
	push_one(6);			/* 6 -> 7 */
	CHECK(vq_need_notify(&vq));

	/* across the 16-bit wrap */
	REQUIRE(start(16, F_EVENT) == 0);
	vq_set_base(&vq, 65534, 65534);
	set_avail_idx(65534);
	put16(USED_EVENT, 65535);
	push_one(0);			/* 65534 -> 65535 */
	CHECK(!vq_need_notify(&vq));
	push_one(1);
	push_one(2);			/* 65535 -> 1 passes 65535 */
	CHECK(vq_need_notify(&vq));
	put16(USED_EVENT, 0);
	push_one(3);			/* 1 -> 2: 0 is behind */
	CHECK(!vq_need_notify(&vq));
}

static void test_kick_suppression(void)
{
	REQUIRE(start(16, 0) == 0);
	vq_disable_notify(&vq);
	CHECK(get16(USED) == VQ_USED_F_NO_NOTIFY);
	CHECK(!vq_enable_notify(&vq));
	CHECK(get16(USED) == 0);
	vq_disable_notify(&vq);
	D(0, BUF, 4, 0, 0);
	avail_add(0);			/* no kick: the device must re-poll */
	CHECK(vq_enable_notify(&vq));
	CHECK(get16(USED) == 0);
	CHECK(pop() == 1);
	CHECK(!vq_enable_notify(&vq));

	REQUIRE(start(16, F_EVENT) == 0);
	vq_set_base(&vq, 700, 700);
	set_avail_idx(700);
	vq_disable_notify(&vq);
	CHECK(get16(USED) == 0);	/* flags unused with EVENT_IDX */
	CHECK(!vq_enable_notify(&vq));
	CHECK(get16(AVAIL_EVENT) == 700);
	D(0, BUF, 4, 0, 0);
	avail_add(0);
	CHECK(pop() == 1);
	CHECK(!vq_enable_notify(&vq));
	CHECK(get16(AVAIL_EVENT) == 701);
	avail_add(0);
	CHECK(vq_enable_notify(&vq));
}

int main(void)
{
	struct kr_err e;

	ram0 = aligned_alloc(4096, RAM0_SIZE);
	ram1 = aligned_alloc(4096, RAM1_SIZE);
	if (!ram0 || !ram1)
		abort();
	gm_init(&gm);
	vqd_gm = &gm;
	if (gm_add_region(&gm, RAM0_GPA, RAM0_SIZE, ram0, &e) < 0 ||
	    gm_add_region(&gm, RAM1_GPA, RAM1_SIZE, ram1, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		return 1;
	}

	KR_TEST(test_gm_add_region);
	KR_TEST(test_gm_ptr);
	KR_TEST(test_gm_adjacent);
	KR_TEST(test_gm_read_write);
	KR_TEST(test_setup_valid);
	KR_TEST(test_setup_size);
	KR_TEST(test_setup_alignment);
	KR_TEST(test_setup_outside);
	KR_TEST(test_single);
	KR_TEST(test_read_then_write);
	KR_TEST(test_write_only_and_many);
	KR_TEST(test_indirect);
	KR_TEST(test_direct_then_indirect);
	KR_TEST(test_chain_stream);
	KR_TEST(test_self_loop);
	KR_TEST(test_two_cycle);
	KR_TEST(test_indirect_loop);
	KR_TEST(test_next_out_of_range);
	KR_TEST(test_head_out_of_range);
	KR_TEST(test_addr_outside);
	KR_TEST(test_addr_wraps);
	KR_TEST(test_zero_length);
	KR_TEST(test_huge_total);
	KR_TEST(test_write_before_read);
	KR_TEST(test_segment_cap);
	KR_TEST(test_avail_jump);
	KR_TEST(test_too_many_inflight);
	KR_TEST(test_wrapped_indices);
	KR_TEST(test_nested_indirect);
	KR_TEST(test_indirect_bad);
	KR_TEST(test_indirect_max);
	KR_TEST(test_push);
	KR_TEST(test_notify_flags);
	KR_TEST(test_notify_event_idx);
	KR_TEST(test_kick_suppression);
	free(ram0);
	free(ram1);
	return kr_test_done();
}
