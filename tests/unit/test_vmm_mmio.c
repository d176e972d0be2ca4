/* Unit tests for hypervisor/kvm/bus.c, evloop.c and the virtio-mmio
 * transport (virtio_mmio.c).  No /dev/kvm: the tests play the guest driver
 * through virtio_mmio_rw() (what a vCPU's MMIO exit would call), with a
 * fake device model recording what the transport asks of it, malloc'd
 * "guest RAM", a real evloop run one round at a time, and an eventfd as
 * the interrupt line. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "../lib/vq_driver.h"
#include "bus.h"
#include "evloop.h"
#include "guest_mem.h"
#include "virtio_mmio.h"
#include "virtqueue.h"

#define BIT(n) (1ull << (n))

#define RAM_SIZE (1u << 20)
#define BASE 0xd0000000ull
#define GSI 5u
#define QMAX 16u
/* Queue 0 and queue 1 rings. */
#define DESC0 0x1000ull
#define AVAIL0 0x2000ull
#define USED0 0x3000ull
#define DESC1 0x4000ull
#define AVAIL1 0x5000ull
#define USED1 0x6000ull
#define BUF 0x10000ull
#define OUTSIDE 0x7fff0000ull	/* not guest RAM */

#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRV (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER)
#define S_FOK (S_DRV | VIRTIO_CONFIG_S_FEATURES_OK)
#define S_OK (S_FOK | VIRTIO_CONFIG_S_DRIVER_OK)
#define S_NR VIRTIO_CONFIG_S_NEEDS_RESET

#define F_V1 BIT(VIRTIO_F_VERSION_1)
/* What the fake offers besides VERSION_1: low and high device bits. */
#define FAKE_FEATURES (BIT(0) | BIT(5) | BIT(VIRTIO_F_EVENT_IDX) | BIT(41))
#define FAKE_CONFIG_SIZE 10u

static uint8_t *ram;
static struct guest_mem gm;
static struct evloop *ev;
static struct virtio_dev dev;
static int irq_fd = -1;
static struct kr_err err;

/* ---- the fake device model ---- */

static struct fake {
	int activate_calls, reset_calls, notify_calls[VIRTIO_MAX_QUEUES];
	int cfg_reads, cfg_writes;
	uint32_t cfg_off;
	unsigned cfg_len;
	uint8_t cfg[FAKE_CONFIG_SIZE];
	bool cfg_read_fills_nothing;
	bool activate_fail;
	bool locked_in_activate, locked_in_notify, locked_in_cfg;
	/* Snapshot of the queues as activate saw them. */
	uint64_t features_at_activate;
	bool ready_at_activate[VIRTIO_MAX_QUEUES];
	struct vq vq_at_activate[VIRTIO_MAX_QUEUES];
	/* queue_notify pops every chain and pushes it with push_len. */
	bool pop_on_notify;
	uint32_t push_len;
	int pops, pop_errors;
} fake;

/* The transport calls every op with d->lock held: a trylock from the
 * same thread then fails (default mutex). */
static bool held(struct virtio_dev *d)
{
	if (pthread_mutex_trylock(&d->lock) == 0) {
		pthread_mutex_unlock(&d->lock);
		return false;
	}
	return true;
}

static void fake_config_read(struct virtio_dev *d, uint32_t off,
			     uint8_t *data, unsigned len)
{
	fake.cfg_reads++;
	fake.cfg_off = off;
	fake.cfg_len = len;
	fake.locked_in_cfg = held(d);
	if (!fake.cfg_read_fills_nothing)
		memcpy(data, fake.cfg + off, len);
}

static void fake_config_write(struct virtio_dev *d, uint32_t off,
			      const uint8_t *data, unsigned len)
{
	fake.cfg_writes++;
	fake.cfg_off = off;
	fake.cfg_len = len;
	memcpy(fake.cfg + off, data, len);
}

static int fake_activate(struct virtio_dev *d, struct kr_err *e)
{
	fake.activate_calls++;
	fake.locked_in_activate = held(d);
	fake.features_at_activate = d->driver_features;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		fake.ready_at_activate[q] = d->vq[q].ready;
		fake.vq_at_activate[q] = d->vq[q];
	}
	if (fake.activate_fail)
		return kr_err_set(e, KR_UNAVAILABLE, "fake backend is gone");
	return 0;
}

static void fake_reset(struct virtio_dev *d)
{
	fake.reset_calls++;
}

static void fake_pop_all(struct virtio_dev *d, unsigned q)
{
	struct vq_seg segs[8];
	struct vq_chain c;
	struct kr_err e = { 0 };
	int r;

	vq_chain_init(&c, segs, KR_ARRAY_SIZE(segs));
	while ((r = vq_pop(&d->vq[q], d->gm, &c, &e)) == 1) {
		fake.pops++;
		vq_push(&d->vq[q], c.head, fake.push_len, &e);
	}
	if (r < 0) {
		fake.pop_errors++;
		virtio_dev_fail(d, &e);
		return;
	}
	virtio_dev_signal_used(d, q);
}

static void fake_queue_notify(struct virtio_dev *d, unsigned q)
{
	fake.notify_calls[q]++;
	fake.locked_in_notify = held(d);
	if (fake.pop_on_notify)
		fake_pop_all(d, q);
}

static const struct virtio_dev_ops fake_ops = {
	.name = "fake",
	.device_id = 42,
	.num_queues = 2,
	.queue_max = QMAX,
	.config_size = FAKE_CONFIG_SIZE,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.activate = fake_activate,
	.reset = fake_reset,
	.queue_notify = fake_queue_notify,
};

/* ---- the ioeventfd hook (KVM_IOEVENTFD in the real VMM) ---- */

struct hook_call {
	void *ctx;
	uint64_t addr;
	uint32_t datamatch;
	int fd;
	bool assign;
};

static struct hooks_log {
	struct hook_call call[16];
	int n;
	int fail_at;		/* index of the call to fail, -1: none */
} hlog;
static int hook_ctx_marker;

static int fake_ioeventfd(void *ctx, uint64_t addr, uint32_t datamatch,
			  int fd, bool assign, struct kr_err *e)
{
	int i = hlog.n;

	if (hlog.n < (int)KR_ARRAY_SIZE(hlog.call))
		hlog.call[hlog.n++] =
			(struct hook_call){ ctx, addr, datamatch, fd, assign };
	if (i == hlog.fail_at)
		return kr_err_set(e, KR_RESOURCE_EXHAUSTED, "KVM_IOEVENTFD: no space");
	return 0;
}

static const struct virtio_mmio_hooks hooks = {
	.ioeventfd = fake_ioeventfd,
	.ctx = &hook_ctx_marker,
};

/* ---- guest memory, rings, registers: tests/lib/vq_driver.h ---- */

#define desc0(i, a, l, f, n) desc_at(DESC0, (i), (a), (l), (f), (n))

/* Make head available on queue 0 (size qsize), after what the ring holds. */
static void avail0_add(unsigned qsize, uint16_t head)
{
	struct gq g;

	gq_init(&g, 0, qsize, DESC0, AVAIL0, USED0);
	g.avail_idx = get16(AVAIL0 + 2);
	gq_avail_add(&g, head);
}

/* The usual driver: VERSION_1, queue 0 of size 8, DRIVER_OK. */
static void bring_up(void)
{
	negotiate(F_V1);
	queue_enable(0, 8, DESC0, AVAIL0, USED0);
	wr(VIRTIO_MMIO_STATUS, S_OK);
}

static void kick(uint32_t q)
{
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Interrupts raised since the last call (the irqfd counter). */
static uint64_t irqs(void)
{
	return irq_count(irq_fd);
}

static void stop(void)
{
	virtio_dev_destroy(&dev);
}

static int start_with(const struct virtio_dev_ops *ops,
		      const struct virtio_mmio_hooks *h)
{
	stop();		/* a test that bailed out early left it running */
	memset(ram, 0, RAM_SIZE);
	memset(&fake, 0, sizeof(fake));
	for (unsigned i = 0; i < FAKE_CONFIG_SIZE; i++)
		fake.cfg[i] = 0xa0 + i;
	memset(&hlog, 0, sizeof(hlog));
	hlog.fail_at = -1;
	memset(&err, 0, sizeof(err));
	irqs();
	while (ev_run_once(ev, 0) > 0)
		;
	return virtio_dev_init(&dev, ops, &fake, FAKE_FEATURES, &gm, ev, BASE,
			       GSI, irq_fd, h, &err);
}

static int start(void)
{
	return start_with(&fake_ops, NULL);
}

/* ==== bus ==== */

struct bus_rec {
	int calls;
	uint64_t off;
	unsigned len;
	bool is_write;
	uint8_t fill;
};

static void bus_fn(void *opaque, uint64_t off, uint8_t *data, unsigned len,
		   bool is_write)
{
	struct bus_rec *r = opaque;

	r->calls++;
	r->off = off;
	r->len = len;
	r->is_write = is_write;
	if (!is_write)
		memset(data, r->fill, len);
}

static void test_bus_register(void)
{
	struct bus b = { 0 };
	struct bus_rec r = { 0 };

	CHECK(bus_register(&b, 0x1000, 0, bus_fn, &r, "empty", &err) == -1);
	CHECK_CONTAINS(err.msg, "empty: bad range");
	CHECK(bus_register(&b, UINT64_MAX - 0xff, 0x200, bus_fn, &r, "wrap",
			   &err) == -1);
	CHECK_CONTAINS(err.msg, "wrap: bad range");
	CHECK(b.nr == 0);

	CHECK(bus_register(&b, 0x1000, 0x100, bus_fn, &r, "a", &err) == 0);
	/* same, overlapping below, above, containing, contained */
	CHECK(bus_register(&b, 0x1000, 0x100, bus_fn, &r, "b", &err) == -1);
	CHECK_CONTAINS(err.msg, "b at 0x1000+0x100 overlaps a at 0x1000+0x100");
	CHECK(bus_register(&b, 0xf80, 0x81, bus_fn, &r, "b", &err) == -1);
	CHECK(bus_register(&b, 0x10ff, 0x10, bus_fn, &r, "b", &err) == -1);
	CHECK(bus_register(&b, 0x0, 0x10000, bus_fn, &r, "b", &err) == -1);
	CHECK(bus_register(&b, 0x1010, 0x10, bus_fn, &r, "b", &err) == -1);
	CHECK(b.nr == 1);
	/* Adjacent on both sides. */
	CHECK(bus_register(&b, 0xf00, 0x100, bus_fn, &r, "below", &err) == 0);
	CHECK(bus_register(&b, 0x1100, 0x100, bus_fn, &r, "above", &err) == 0);
	CHECK(b.nr == 3);
	/* Ending exactly at 2^64 does not wrap; overlaps there are seen. */
	CHECK(bus_register(&b, UINT64_MAX - 0xfff, 0x1000, bus_fn, &r, "top",
			   &err) == 0);
	CHECK(bus_register(&b, UINT64_MAX, 1, bus_fn, &r, "last", &err) == -1);
	CHECK_CONTAINS(err.msg, "last at 0xffffffffffffffff+0x1 overlaps top");
	CHECK(bus_register(&b, UINT64_MAX - 0x1fff, 0x1001, bus_fn, &r, "b",
			   &err) == -1);
	CHECK(b.nr == 4);

	while (b.nr < BUS_MAX_RANGES)
		REQUIRE(bus_register(&b, 0x100000 + 0x1000ull * b.nr, 0x1000,
				     bus_fn, &r, "n", &err) == 0);
	CHECK(bus_register(&b, 0x900000, 0x1000, bus_fn, &r, "extra", &err) == -1);
	CHECK_CONTAINS(err.msg, "more than 32 devices");
}

static void test_bus_dispatch(void)
{
	struct bus b = { 0 };
	struct bus_rec r1 = { .fill = 0x11 }, r2 = { .fill = 0x22 };
	uint8_t data[8];

	REQUIRE(bus_register(&b, 0x3f8, 8, bus_fn, &r1, "uart", &err) == 0);
	REQUIRE(bus_register(&b, UINT64_MAX - 0xfff, 0x1000, bus_fn, &r2,
			     "top", &err) == 0);

	memset(data, 0, sizeof(data));
	CHECK(bus_dispatch(&b, 0x3fd, data, 1, false));
	CHECK(r1.calls == 1 && r1.off == 5 && r1.len == 1 && !r1.is_write);
	CHECK(data[0] == 0x11 && data[1] == 0);
	CHECK(bus_dispatch(&b, 0x3f8, data, 8, true));
	CHECK(r1.calls == 2 && r1.off == 0 && r1.len == 8 && r1.is_write);

	/* Straddling the end, before the start, nowhere: not claimed;
	 * reads give all-ones, writes vanish. */
	memset(data, 0, sizeof(data));
	CHECK(!bus_dispatch(&b, 0x3fe, data, 4, false));
	CHECK(data[0] == 0xff && data[3] == 0xff && data[4] == 0);
	CHECK(!bus_dispatch(&b, 0x3f7, data, 2, false));
	CHECK(!bus_dispatch(&b, 0x2000, data, 4, true));
	CHECK(r1.calls == 2);

	/* The last bytes of the address space: no overflow in the check. */
	CHECK(bus_dispatch(&b, UINT64_MAX - 7, data, 8, false));
	CHECK(r2.calls == 1 && r2.off == 0xff8 && r2.len == 8);
	CHECK(!bus_dispatch(&b, UINT64_MAX - 3, data, 8, false));
	CHECK(!bus_dispatch(&b, UINT64_MAX, data, 2, false));
	CHECK(r2.calls == 1);
}

/* The transport behind the bus, as the vCPU loop will use it. */
static void test_bus_mmio(void)
{
	struct bus b = { 0 };
	uint8_t data[4];
	uint32_t v;

	REQUIRE(start() == 0);
	REQUIRE(bus_register(&b, BASE, VIRTIO_MMIO_WINDOW, virtio_mmio_rw, &dev,
			     "virtio-fake", &err) == 0);
	CHECK(bus_dispatch(&b, BASE + VIRTIO_MMIO_DEVICE_ID, data, 4, false));
	memcpy(&v, data, 4);
	CHECK(le32toh(v) == 42);
	v = htole32(S_ACK);
	memcpy(data, &v, 4);
	CHECK(bus_dispatch(&b, BASE + VIRTIO_MMIO_STATUS, data, 4, true));
	CHECK(dev.status == S_ACK);
	CHECK(!bus_dispatch(&b, BASE + VIRTIO_MMIO_WINDOW - 2, data, 4, false));
	CHECK(data[0] == 0xff);
	stop();
}

/* ==== evloop ==== */

struct ev_rec {
	int fd;
	int calls;
	uint32_t events;
	int victim;		/* fd this handler removes, -1 none */
	struct evloop *loop;
	struct ev_rec *readd;	/* re-register victim with this record */
};

static void rec_fn(void *opaque, int fd, uint32_t events)
{
	struct ev_rec *r = opaque;
	struct kr_err e;

	r->calls++;
	r->fd = fd;
	r->events = events;
	if (r->victim >= 0) {
		ev_del(r->loop, r->victim);
		if (r->readd)
			ev_add(r->loop, r->victim, EPOLLIN, rec_fn, r->readd, &e);
	}
}

static int new_efd(uint64_t count)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd >= 0 && count && write(fd, &count, sizeof(count)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_ev_basic(void)
{
	struct evloop *l = ev_new(&err);
	struct ev_rec r = { .victim = -1 };
	int a = new_efd(0), pipefd[2];
	uint64_t one = 1;

	REQUIRE(l && a >= 0);
	REQUIRE(pipe(pipefd) == 0);
	r.loop = l;
	CHECK(ev_run_once(l, 0) == 0);
	CHECK(ev_add(l, a, EPOLLIN, rec_fn, &r, &err) == 0);
	CHECK(ev_add(l, a, EPOLLIN, rec_fn, &r, &err) == -1);
	CHECK(err.code == KR_ALREADY_EXISTS);
	CHECK_CONTAINS(err.msg, "already registered");
	CHECK(ev_add(l, -1, EPOLLIN, rec_fn, &r, &err) == -1);
	CHECK(ev_add(l, 4096, EPOLLIN, rec_fn, &r, &err) == -1);
	CHECK_CONTAINS(err.msg, "fd 4096 outside the table");

	CHECK(ev_run_once(l, 0) == 0);
	CHECK(r.calls == 0);
	CHECK(write(a, &one, sizeof(one)) == 8);
	CHECK(ev_run_once(l, 0) == 1);
	CHECK(r.calls == 1 && r.fd == a && (r.events & EPOLLIN));
	/* Level-triggered: still readable, called again. */
	CHECK(ev_run_once(l, 0) == 1);
	CHECK(r.calls == 2);

	/* ev_mod: an eventfd is always writable. */
	CHECK(ev_mod(l, a, EPOLLOUT, &err) == 0);
	CHECK(ev_run_once(l, 0) == 1);
	CHECK(r.calls == 3 && (r.events & EPOLLOUT) && !(r.events & EPOLLIN));
	CHECK(ev_mod(l, pipefd[0], EPOLLIN, &err) == -1);
	CHECK(err.code == KR_NOT_FOUND);

	ev_del(l, a);
	ev_del(l, a);		/* twice: harmless */
	ev_del(l, pipefd[0]);	/* never registered */
	ev_del(l, -5);
	ev_del(l, 100000);
	CHECK(ev_run_once(l, 0) == 0);
	CHECK(r.calls == 3);
	/* Free again after removal. */
	CHECK(ev_add(l, a, EPOLLIN, rec_fn, &r, &err) == 0);
	CHECK(ev_run_once(l, 0) == 1);
	CHECK(r.calls == 4);

	/* A regular file cannot be polled: the error says so and the slot
	 * stays free. */
	{
		int f = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

		REQUIRE(f >= 0);
		CHECK(ev_add(l, f, EPOLLIN, rec_fn, &r, &err) == -1);
		CHECK_CONTAINS(err.msg, "epoll_ctl ADD");
		CHECK(ev_add(l, f, EPOLLIN, rec_fn, &r, &err) == -1);
		CHECK(err.code != KR_ALREADY_EXISTS);
		close(f);
	}
	ev_free(l);
	ev_free(NULL);
	close(a);
	close(pipefd[0]);
	close(pipefd[1]);
}

/* Two fds ready in the same round; whichever handler runs first removes
 * the other: the other's pending event must not reach its handler. */
static void test_ev_del_in_round(void)
{
	struct evloop *l = ev_new(&err);
	int a = new_efd(1), b = new_efd(1);
	struct ev_rec ra = { .victim = b }, rb = { .victim = a };

	REQUIRE(l && a >= 0 && b >= 0);
	ra.loop = rb.loop = l;
	REQUIRE(ev_add(l, a, EPOLLIN, rec_fn, &ra, &err) == 0);
	REQUIRE(ev_add(l, b, EPOLLIN, rec_fn, &rb, &err) == 0);
	CHECK(ev_run_once(l, 0) == 1);
	CHECK(ra.calls + rb.calls == 1);
	/* Next round: the survivor alone (still readable). */
	ra.victim = rb.victim = -1;
	CHECK(ev_run_once(l, 0) == 1);
	CHECK(ra.calls + rb.calls == 2);
	CHECK(ra.calls == 2 || rb.calls == 2);
	ev_free(l);
	close(a);
	close(b);
}

/* Removed and registered again in the same round (a new owner): the stale
 * event must not run the new handler either. */
static void test_ev_readd_in_round(void)
{
	struct evloop *l = ev_new(&err);
	int a = new_efd(1), b = new_efd(1);
	struct ev_rec ra = { .victim = b }, rb = { .victim = a };
	struct ev_rec fresh_a = { .victim = -1 }, fresh_b = { .victim = -1 };

	REQUIRE(l && a >= 0 && b >= 0);
	ra.loop = rb.loop = l;
	ra.readd = &fresh_b;
	rb.readd = &fresh_a;
	REQUIRE(ev_add(l, a, EPOLLIN, rec_fn, &ra, &err) == 0);
	REQUIRE(ev_add(l, b, EPOLLIN, rec_fn, &rb, &err) == 0);
	CHECK(ev_run_once(l, 0) == 1);
	CHECK(ra.calls + rb.calls == 1);
	CHECK(fresh_a.calls == 0 && fresh_b.calls == 0);
	/* Next round the new registration gets the (level) event. */
	ra.victim = rb.victim = -1;
	CHECK(ev_run_once(l, 0) == 2);
	CHECK(fresh_a.calls + fresh_b.calls == 1);
	ev_free(l);
	close(a);
	close(b);
}

/* A handler removing itself is not called again, though still ready. */
static void test_ev_del_self(void)
{
	struct evloop *l = ev_new(&err);
	int a = new_efd(1);
	struct ev_rec ra = { .victim = a };

	REQUIRE(l && a >= 0);
	ra.loop = l;
	REQUIRE(ev_add(l, a, EPOLLIN, rec_fn, &ra, &err) == 0);
	CHECK(ev_run_once(l, 0) == 1);
	CHECK(ev_run_once(l, 0) == 0);
	CHECK(ra.calls == 1);
	ev_free(l);
	close(a);
}

static void stop_fn(void *opaque, int fd, uint32_t events)
{
	struct ev_rec *r = opaque;

	r->calls++;
	ev_stop(r->loop);
}

static void *stop_later(void *arg)
{
	usleep(20000);
	ev_stop(arg);
	return NULL;
}

static void test_ev_stop(void)
{
	struct evloop *l = ev_new(&err), *l2 = ev_new(&err);
	int a = new_efd(1);
	struct ev_rec r = { .victim = -1 };
	pthread_t t;

	REQUIRE(l && l2 && a >= 0);
	r.loop = l;
	/* From a handler. */
	REQUIRE(ev_add(l, a, EPOLLIN, stop_fn, &r, &err) == 0);
	ev_run(l);
	CHECK(r.calls == 1);
	/* From another thread, while the loop sleeps in epoll_wait. */
	REQUIRE(pthread_create(&t, NULL, stop_later, l2) == 0);
	ev_run(l2);
	pthread_join(t, NULL);
	ev_free(l);
	ev_free(l2);
	close(a);
}

/* ==== virtio-mmio: identification, features ==== */

static void test_mmio_ids(void)
{
	REQUIRE(start() == 0);
	CHECK(rd(VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976);
	CHECK(rd(VIRTIO_MMIO_VERSION) == 2);
	CHECK(rd(VIRTIO_MMIO_DEVICE_ID) == 42);
	CHECK(rd(VIRTIO_MMIO_VENDOR_ID) == VIRTIO_MMIO_VENDOR);
	CHECK(rd(VIRTIO_MMIO_STATUS) == 0);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	CHECK(rd(VIRTIO_MMIO_CONFIG_GENERATION) == 0);
	/* No shared memory regions. */
	CHECK(rd(VIRTIO_MMIO_SHM_LEN_LOW) == 0xffffffff);
	CHECK(rd(VIRTIO_MMIO_SHM_LEN_HIGH) == 0xffffffff);
	CHECK(rd(VIRTIO_MMIO_SHM_BASE_LOW) == 0xffffffff);
	CHECK(rd(VIRTIO_MMIO_SHM_BASE_HIGH) == 0xffffffff);
	/* Write-only and unknown registers read 0. */
	CHECK(rd(VIRTIO_MMIO_QUEUE_NOTIFY) == 0);
	CHECK(rd(VIRTIO_MMIO_DRIVER_FEATURES) == 0);
	CHECK(rd(0x0e0) == 0);
	/* Read-only registers ignore writes. */
	wr(VIRTIO_MMIO_MAGIC_VALUE, 0);
	wr(VIRTIO_MMIO_DEVICE_ID, 7);
	CHECK(rd(VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976);
	CHECK(rd(VIRTIO_MMIO_DEVICE_ID) == 42);
	stop();
}

static void test_mmio_cmdline(void)
{
	char buf[64], small[20];

	REQUIRE(start() == 0);
	CHECK(virtio_mmio_cmdline(&dev, buf, sizeof(buf)) == 0);
	CHECK_STREQ(buf, "virtio_mmio.device=4K@0xd0000000:5");
	CHECK(virtio_mmio_cmdline(&dev, small, sizeof(small)) == -1);
	/* 34 characters: no room for the NUL in 34 bytes. */
	CHECK(virtio_mmio_cmdline(&dev, buf, 34) == -1);
	CHECK(virtio_mmio_cmdline(&dev, buf, 35) == 0);
	stop();
}

static void test_init_bad_shape(void)
{
	struct virtio_dev_ops o = fake_ops;

	o.num_queues = 0;
	CHECK(start_with(&o, NULL) == -1);
	CHECK_CONTAINS(err.msg, "virtio-fake: bad queue shape (0 queues of 16)");
	CHECK(dev.ops == NULL);
	o.num_queues = VIRTIO_MAX_QUEUES + 1;
	CHECK(start_with(&o, NULL) == -1);
	o.num_queues = 1;
	o.queue_max = 0;
	CHECK(start_with(&o, NULL) == -1);
	o.queue_max = 12;
	CHECK(start_with(&o, NULL) == -1);
	CHECK_CONTAINS(err.msg, "1 queues of 12");
	o.queue_max = 1;
	CHECK(start_with(&o, NULL) == 0);
	o.num_queues = VIRTIO_MAX_QUEUES;
	o.queue_max = VQ_MAX_SIZE;
	CHECK(start_with(&o, NULL) == 0);
	stop();
}

static void test_feature_windows(void)
{
	REQUIRE(start() == 0);
	CHECK(dev.device_features == (FAKE_FEATURES | F_V1));
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == (BIT(0) | BIT(5) | BIT(29)));
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == (BIT(0) | BIT(9)));
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == 0);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == 0);

	/* Before DRIVER, the driver's feature words are dropped. */
	wr(VIRTIO_MMIO_STATUS, S_ACK);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0x21);
	CHECK(dev.driver_features == 0);

	wr(VIRTIO_MMIO_STATUS, S_DRV);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0x21);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0x201);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);	/* no such window */
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
	CHECK(dev.driver_features == (BIT(0) | BIT(5) | F_V1 | BIT(41)));
	/* Rewriting one window replaces only that half. */
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0x1);
	CHECK(dev.driver_features == (BIT(0) | F_V1 | BIT(41)));

	wr(VIRTIO_MMIO_STATUS, S_FOK);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_FOK);
	/* Final from FEATURES_OK on. */
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0x20);
	CHECK(dev.driver_features == (BIT(0) | F_V1 | BIT(41)));
	stop();
}

static void test_features_ok_check(void)
{
	REQUIRE(start() == 0);
	/* A bit we did not offer (1): FEATURES_OK does not stick. */
	negotiate(F_V1 | BIT(1));
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_DRV);
	/* A high bit we did not offer. */
	negotiate(F_V1 | BIT(40));
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_DRV);
	/* A subset without VERSION_1 (a legacy driver). */
	negotiate(BIT(0) | BIT(5));
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_DRV);
	negotiate(0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_DRV);

	/* The driver may try again with a good subset. */
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 0x20);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr(VIRTIO_MMIO_STATUS, S_FOK);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_FOK);

	/* Everything offered is fine too. */
	negotiate(FAKE_FEATURES | F_V1);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_FOK);
	CHECK(dev.driver_features == (FAKE_FEATURES | F_V1));
	CHECK(fake.activate_calls == 0);
	stop();
}

static void test_driver_ok_without_features_ok(void)
{
	REQUIRE(start() == 0);
	negotiate(F_V1 | BIT(1));	/* refused */
	queue_enable(0, 8, DESC0, AVAIL0, USED0);
	wr(VIRTIO_MMIO_STATUS, S_DRV | VIRTIO_CONFIG_S_DRIVER_OK);
	CHECK(fake.activate_calls == 0);
	CHECK(!dev.active);
	CHECK(rd(VIRTIO_MMIO_STATUS) ==
	      (S_DRV | VIRTIO_CONFIG_S_DRIVER_OK | S_NR));
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
	CHECK(irqs() == 1);
	stop();
}

/* The driver cannot set DEVICE_NEEDS_RESET itself, nor clear bits other
 * than by a reset. */
static void test_status_bits(void)
{
	REQUIRE(start() == 0);
	wr(VIRTIO_MMIO_STATUS, S_ACK | S_NR);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_ACK);
	wr(VIRTIO_MMIO_STATUS, S_DRV);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_DRIVER);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_DRV);
	wr(VIRTIO_MMIO_STATUS, S_DRV | VIRTIO_CONFIG_S_FAILED);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_DRV | VIRTIO_CONFIG_S_FAILED));
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == 0);
	stop();
}

/* ==== queues ==== */

static void test_queue_regs(void)
{
	REQUIRE(start() == 0);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == QMAX);
	CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 0);
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == QMAX);
	/* Absent queues. */
	wr(VIRTIO_MMIO_QUEUE_SEL, 2);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);
	wr(VIRTIO_MMIO_QUEUE_SEL, VIRTIO_MAX_QUEUES);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0xffffffff);
	CHECK(rd(VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 0);

	/* 64-bit addresses in two halves, in either order. */
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0x1);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x4000);
	wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, 0x5000);
	wr(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0x2);
	wr(VIRTIO_MMIO_QUEUE_USED_LOW, 0x6000);
	wr(VIRTIO_MMIO_QUEUE_USED_HIGH, 0x3);
	CHECK(dev.qregs[1].num == 4);
	CHECK(dev.qregs[1].desc == 0x100004000ull);
	CHECK(dev.qregs[1].avail == 0x200005000ull);
	CHECK(dev.qregs[1].used == 0x300006000ull);
	CHECK(dev.qregs[0].num == 0 && dev.qregs[0].desc == 0);

	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 1);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 0);

	/* Ready: the registers are frozen. */
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x7000);
	wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, 0x7000);
	wr(VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
	CHECK(dev.qregs[1].num == 4);
	CHECK(dev.qregs[1].desc == 0x100004000ull);
	CHECK(dev.qregs[1].avail == 0x200005000ull);
	CHECK(dev.qregs[1].used == 0x300006000ull);

	/* Stopped: writable again.  Before DRIVER_OK nothing was set up. */
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	CHECK(dev.qregs[1].num == 8);
	CHECK(!dev.vq[1].ready);

	/* An absent queue (but inside the qregs array) stays untouched. */
	wr(VIRTIO_MMIO_QUEUE_SEL, 5);
	wr(VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 0);
	CHECK(dev.qregs[5].num == 0 && dev.qregs[5].desc == 0 &&
	      !dev.qregs[5].ready);
	stop();
}

static void test_driver_ok_activates(void)
{
	REQUIRE(start() == 0);
	negotiate(F_V1 | BIT(VIRTIO_F_EVENT_IDX));
	queue_enable(0, 8, DESC0, AVAIL0, USED0);
	CHECK(fake.activate_calls == 0);
	CHECK(!dev.vq[0].ready);	/* not before DRIVER_OK */
	wr(VIRTIO_MMIO_STATUS, S_OK);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	CHECK(fake.activate_calls == 1);
	CHECK(fake.locked_in_activate);
	CHECK(dev.active);
	CHECK(fake.features_at_activate == (F_V1 | BIT(VIRTIO_F_EVENT_IDX)));
	CHECK(fake.ready_at_activate[0]);
	CHECK(fake.vq_at_activate[0].size == 8);
	CHECK(fake.vq_at_activate[0].desc_gpa == DESC0);
	CHECK(fake.vq_at_activate[0].avail_gpa == AVAIL0);
	CHECK(fake.vq_at_activate[0].used_gpa == USED0);
	CHECK(fake.vq_at_activate[0].event_idx);
	CHECK(!fake.vq_at_activate[0].indirect);
	CHECK(fake.vq_at_activate[0].desc == host(DESC0));
	CHECK(!fake.ready_at_activate[1]);
	CHECK(dev.kick_watched[0] && !dev.kick_watched[1]);
	/* DRIVER_OK again: nothing new. */
	wr(VIRTIO_MMIO_STATUS, S_OK);
	CHECK(fake.activate_calls == 1);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	CHECK(irqs() == 0);
	stop();
	CHECK(fake.reset_calls == 1);	/* destroy resets an active device */
}

static void test_kick_notify(void)
{
	REQUIRE(start() == 0);
	bring_up();
	CHECK(ev_run_once(ev, 0) == 0);
	kick(0);
	CHECK(fake.notify_calls[0] == 0);	/* not on the vCPU thread */
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.notify_calls[0] == 1);
	CHECK(fake.locked_in_notify);
	CHECK(ev_run_once(ev, 0) == 0);		/* the kick was consumed */

	/* Kicks coalesce until the loop runs. */
	kick(0);
	kick(0);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.notify_calls[0] == 2);

	/* A queue that is not ready, absent queues: no notification. */
	kick(1);
	kick(2);
	kick(VIRTIO_MAX_QUEUES);
	kick(0xffffffff);
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(fake.notify_calls[1] == 0);
	CHECK(fake.notify_calls[0] == 2);
	stop();
}

/* The device pushes used buffers; InterruptStatus and the line follow
 * vq_need_notify(); ACK clears only the bits written. */
static void test_interrupts(void)
{
	REQUIRE(start() == 0);
	bring_up();
	fake.pop_on_notify = true;
	fake.push_len = 7;
	desc0(0, BUF, 64, VQ_DESC_F_WRITE, 0);
	avail0_add(8, 0);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.pops == 1);
	CHECK(get16(USED0 + 2) == 1);
	CHECK(get32(USED0 + 4) == 0 && get32(USED0 + 8) == 7);
	CHECK(irqs() == 1);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);

	/* The guest asks for no interrupts: none. */
	put16(AVAIL0, VQ_AVAIL_F_NO_INTERRUPT);
	avail0_add(8, 0);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.pops == 2);
	CHECK(get16(USED0 + 2) == 2);
	CHECK(irqs() == 0);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);

	/* Nothing pushed: no interrupt either. */
	put16(AVAIL0, 0);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.pops == 2);
	CHECK(irqs() == 0);

	/* Both bits; partial ACKs. */
	virtio_dev_lock(&dev);
	virtio_dev_raise(&dev, VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	virtio_dev_unlock(&dev);
	CHECK(irqs() == 1);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 3);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, 0);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_VRING);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, 0xffffffff);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	/* InterruptStatus is read-only. */
	wr(VIRTIO_MMIO_INTERRUPT_STATUS, 3);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	stop();
}

/* A hostile chain breaks the queue: NEEDS_RESET, a config interrupt, and
 * no more notifications for that queue until a reset. */
static void test_broken_queue(void)
{
	REQUIRE(start() == 0);
	bring_up();
	fake.pop_on_notify = true;
	desc0(0, BUF, 64, VQ_DESC_F_NEXT, 0);	/* a loop onto itself */
	avail0_add(8, 0);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.pop_errors == 1);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
	CHECK(rd(VIRTIO_MMIO_CONFIG_GENERATION) == 1);
	CHECK(irqs() == 1);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);		/* the fd is still watched */
	CHECK(fake.notify_calls[0] == 1);	/* but the device is not told */

	/* A reset and a fresh set-up bring it back. */
	memset(ram, 0, RAM_SIZE);
	bring_up();
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	CHECK(fake.reset_calls == 1);
	CHECK(fake.activate_calls == 2);
	desc0(0, BUF, 64, VQ_DESC_F_WRITE, 0);
	avail0_add(8, 0);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.pops == 1);
	CHECK(get16(USED0 + 2) == 1);
	stop();
}

static void test_reset(void)
{
	int kfd;

	REQUIRE(start() == 0);
	negotiate(F_V1 | BIT(VIRTIO_F_EVENT_IDX));
	queue_enable(0, 8, DESC0, AVAIL0, USED0);
	queue_enable(1, 4, DESC1, AVAIL1, USED1);
	wr(VIRTIO_MMIO_STATUS, S_OK);
	REQUIRE(dev.active);
	virtio_dev_lock(&dev);
	virtio_dev_raise(&dev, VIRTIO_MMIO_INT_VRING);
	virtio_dev_unlock(&dev);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	kfd = dev.kick_fd[0];
	kick(0);		/* pending when the reset comes */

	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(fake.reset_calls == 1);
	CHECK(!dev.active);
	CHECK(rd(VIRTIO_MMIO_STATUS) == 0);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	CHECK(dev.driver_features == 0);
	CHECK(dev.dev_feat_sel == 0 && dev.queue_sel == 0);
	CHECK(rd(VIRTIO_MMIO_DEVICE_FEATURES) == (uint32_t)(FAKE_FEATURES));
	for (unsigned q = 0; q < 2; q++) {
		wr(VIRTIO_MMIO_QUEUE_SEL, q);
		CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 0);
		CHECK(dev.qregs[q].num == 0 && dev.qregs[q].desc == 0 &&
		      dev.qregs[q].avail == 0 && dev.qregs[q].used == 0);
		CHECK(!dev.vq[q].ready);
		CHECK(!dev.kick_watched[q]);
	}
	/* The pending kick was dropped, the fd is not watched. */
	CHECK(dev.kick_fd[0] == kfd);
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(fake.notify_calls[0] == 0);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(fake.notify_calls[0] == 0);
	/* A second reset: the device is not active, ops->reset not again. */
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(fake.reset_calls == 1);

	/* And up again; the kick written while stopped is gone too. */
	bring_up();
	CHECK(fake.activate_calls == 2);
	CHECK(fake.features_at_activate == F_V1);
	CHECK(!fake.ready_at_activate[1]);
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(fake.notify_calls[0] == 0);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.notify_calls[0] == 1);
	stop();
}

static void check_needs_reset_at_driver_ok(uint32_t num, uint64_t desc,
					   uint64_t avail, uint64_t used)
{
	REQUIRE(start() == 0);
	negotiate(F_V1);
	queue_enable(0, num, desc, avail, used);
	wr(VIRTIO_MMIO_STATUS, S_OK);
	CHECKF(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR),
	       "num %u desc 0x%llx avail 0x%llx used 0x%llx", num,
	       (unsigned long long)desc, (unsigned long long)avail,
	       (unsigned long long)used);
	CHECK(fake.activate_calls == 0);
	CHECK(!dev.active);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
	CHECK(irqs() == 1);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(fake.notify_calls[0] == 0);
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(fake.reset_calls == 0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == 0);
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	stop();
}

static void test_bad_rings(void)
{
	check_needs_reset_at_driver_ok(8, OUTSIDE, AVAIL0, USED0);
	check_needs_reset_at_driver_ok(8, DESC0, OUTSIDE, USED0);
	check_needs_reset_at_driver_ok(8, DESC0, AVAIL0, OUTSIDE);
	/* Straddling the end of RAM. */
	check_needs_reset_at_driver_ok(8, RAM_SIZE - 64, AVAIL0, USED0);
	/* Misaligned, and a 64-bit address whose low half is fine. */
	check_needs_reset_at_driver_ok(8, DESC0 + 8, AVAIL0, USED0);
	check_needs_reset_at_driver_ok(8, DESC0, AVAIL0, USED0 + 2);
	check_needs_reset_at_driver_ok(8, DESC0 | 0x100000000ull, AVAIL0, USED0);
}

static void test_bad_queue_size(void)
{
	check_needs_reset_at_driver_ok(0, DESC0, AVAIL0, USED0);
	check_needs_reset_at_driver_ok(3, DESC0, AVAIL0, USED0);
	check_needs_reset_at_driver_ok(QMAX * 2, DESC0, AVAIL0, USED0);
	check_needs_reset_at_driver_ok(0xffffffff, DESC0, AVAIL0, USED0);
}

/* Before DRIVER_OK no config interrupt: the error shows in the status
 * only. */
static void test_fail_before_driver_ok(void)
{
	struct kr_err why = { 0 };

	REQUIRE(start() == 0);
	negotiate(F_V1);
	kr_err_set(&why, KR_INTERNAL, "backend died");
	virtio_dev_lock(&dev);
	virtio_dev_fail(&dev, &why);
	virtio_dev_unlock(&dev);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_FOK | S_NR));
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
	CHECK(irqs() == 0);
	/* DRIVER_OK now does not activate a device that needs a reset. */
	queue_enable(0, 8, DESC0, AVAIL0, USED0);
	wr(VIRTIO_MMIO_STATUS, S_OK);
	CHECK(fake.activate_calls == 0);
	CHECK(!dev.active);
	stop();
}

static void test_activate_fails(void)
{
	REQUIRE(start() == 0);
	fake.activate_fail = true;
	bring_up();
	CHECK(fake.activate_calls == 1);
	CHECK(!dev.active);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));
	CHECK(rd(VIRTIO_MMIO_INTERRUPT_STATUS) == VIRTIO_MMIO_INT_CONFIG);
	CHECK(irqs() == 1);
	kick(0);
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(fake.notify_calls[0] == 0);
	/* Not active: reset does not call ops->reset. */
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(fake.reset_calls == 0);
	CHECK(rd(VIRTIO_MMIO_STATUS) == 0);
	fake.activate_fail = false;
	bring_up();
	CHECK(dev.active);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
	CHECK(fake.reset_calls == 1);
}

/* A queue enabled after DRIVER_OK is taken over at once, with the same
 * checks; enabling a live queue again changes nothing. */
static void test_late_queue(void)
{
	REQUIRE(start() == 0);
	bring_up();
	queue_enable(1, 4, DESC1, AVAIL1, USED1);
	CHECK(dev.vq[1].ready && dev.vq[1].size == 4);
	CHECK(dev.kick_watched[1]);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	kick(1);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.notify_calls[1] == 1 && fake.notify_calls[0] == 0);

	/* The device has moved on; QueueReady = 1 again must not rewind
	 * the queue. */
	vq_set_base(&dev.vq[0], 3, 3);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	CHECK(dev.vq[0].last_avail_idx == 3 && dev.vq[0].used_idx == 3);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();

	/* Late, and above QueueNumMax: refused like at DRIVER_OK. */
	REQUIRE(start() == 0);
	bring_up();
	queue_enable(1, QMAX * 2, DESC1, AVAIL1, USED1);
	CHECK(!dev.vq[1].ready);
	CHECK(!dev.kick_watched[1]);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));
	CHECK(irqs() == 1);
	stop();

	/* Late, outside RAM. */
	REQUIRE(start() == 0);
	bring_up();
	queue_enable(1, 4, OUTSIDE, AVAIL1, USED1);
	CHECK(!dev.vq[1].ready);
	CHECK(rd(VIRTIO_MMIO_STATUS) == (S_OK | S_NR));
	stop();
}

/* QueueReady = 0 on a live queue stops its kicks; the other queue goes
 * on. */
static void test_queue_stop(void)
{
	REQUIRE(start() == 0);
	negotiate(F_V1);
	queue_enable(0, 8, DESC0, AVAIL0, USED0);
	queue_enable(1, 4, DESC1, AVAIL1, USED1);
	wr(VIRTIO_MMIO_STATUS, S_OK);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	CHECK(rd(VIRTIO_MMIO_QUEUE_READY) == 0);
	CHECK(!dev.vq[0].ready);
	CHECK(!dev.kick_watched[0]);
	kick(0);
	kick(1);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.notify_calls[0] == 0 && fake.notify_calls[1] == 1);
	/* Set up again while the device runs. */
	wr(VIRTIO_MMIO_QUEUE_NUM, 16);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	CHECK(dev.vq[0].ready && dev.vq[0].size == 16);
	CHECK(ev_run_once(ev, 0) == 1);		/* the pending kick */
	CHECK(fake.notify_calls[0] == 1);
	CHECK(rd(VIRTIO_MMIO_STATUS) == S_OK);
	stop();
}

/* ==== config space ==== */

static void cfg_rw(uint64_t off, uint8_t *data, unsigned len, bool is_write)
{
	virtio_mmio_rw(&dev, VIRTIO_MMIO_CONFIG + off, data, len, is_write);
}

static void test_config_space(void)
{
	uint8_t b[8];

	REQUIRE(start() == 0);
	memset(b, 0xee, sizeof(b));
	cfg_rw(0, b, 4, false);
	CHECK(b[0] == 0xa0 && b[1] == 0xa1 && b[2] == 0xa2 && b[3] == 0xa3);
	CHECK(b[4] == 0xee);
	CHECK(fake.cfg_reads == 1 && fake.cfg_off == 0 && fake.cfg_len == 4);
	CHECK(fake.locked_in_cfg);
	cfg_rw(8, b, 2, false);
	CHECK(b[0] == 0xa8 && b[1] == 0xa9);
	CHECK(fake.cfg_off == 8 && fake.cfg_len == 2);
	cfg_rw(9, b, 1, false);
	CHECK(b[0] == 0xa9);
	cfg_rw(3, b, 4, false);		/* unaligned is fine in config */
	CHECK(b[0] == 0xa3 && b[3] == 0xa6);
	CHECK(fake.cfg_reads == 4);

	/* Past the end (partly or wholly), or a width the spec does not
	 * have: zeros, and the device is not asked. */
	memset(b, 0xee, sizeof(b));
	cfg_rw(8, b, 4, false);
	CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0);
	memset(b, 0xee, sizeof(b));
	cfg_rw(FAKE_CONFIG_SIZE, b, 1, false);
	CHECK(b[0] == 0);
	cfg_rw(VIRTIO_MMIO_WINDOW - VIRTIO_MMIO_CONFIG - 4, b, 4, false);
	CHECK(b[0] == 0 && b[3] == 0);
	cfg_rw(UINT64_MAX - VIRTIO_MMIO_CONFIG - 1, b, 2, false);
	CHECK(b[0] == 0 && b[1] == 0);
	/* 4 GiB past the config base: must not wrap to offset 0. */
	memset(b, 0xee, sizeof(b));
	cfg_rw(0x100000000ull, b, 4, false);
	CHECK(b[0] == 0 && b[3] == 0);
	memset(b, 0xee, sizeof(b));
	cfg_rw(0, b, 8, false);
	CHECK(b[0] == 0 && b[7] == 0);
	memset(b, 0xee, sizeof(b));
	cfg_rw(0, b, 3, false);
	CHECK(b[0] == 0 && b[2] == 0 && b[3] == 0xee);
	CHECK(fake.cfg_reads == 4);

	/* Writes. */
	b[0] = 0x11;
	b[1] = 0x22;
	cfg_rw(4, b, 2, true);
	CHECK(fake.cfg_writes == 1 && fake.cfg_off == 4 && fake.cfg_len == 2);
	CHECK(fake.cfg[4] == 0x11 && fake.cfg[5] == 0x22 && fake.cfg[6] == 0xa6);
	b[0] = 0x33;
	cfg_rw(9, b, 1, true);
	CHECK(fake.cfg[9] == 0x33);
	cfg_rw(8, b, 4, true);
	cfg_rw(FAKE_CONFIG_SIZE, b, 1, true);
	cfg_rw(0, b, 3, true);
	cfg_rw(0, b, 8, true);
	CHECK(fake.cfg_writes == 2);
	CHECK(fake.cfg[0] == 0xa0 && fake.cfg[8] == 0xa8);

	/* What the device leaves unfilled reads as 0. */
	fake.cfg_read_fills_nothing = true;
	memset(b, 0xee, sizeof(b));
	cfg_rw(0, b, 4, false);
	CHECK(b[0] == 0 && b[3] == 0);
	stop();
}

static void test_config_no_callbacks(void)
{
	struct virtio_dev_ops o = fake_ops;
	uint8_t b[4] = { 1, 2, 3, 4 };

	o.config_read = NULL;
	o.config_write = NULL;
	REQUIRE(start_with(&o, NULL) == 0);
	cfg_rw(0, b, 4, true);		/* dropped */
	cfg_rw(0, b, 4, false);
	CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0);
	stop();

	/* No config space at all. */
	o = fake_ops;
	o.config_size = 0;
	REQUIRE(start_with(&o, NULL) == 0);
	memset(b, 0xee, sizeof(b));
	cfg_rw(0, b, 1, false);
	CHECK(b[0] == 0);
	cfg_rw(0, b, 1, true);
	CHECK(fake.cfg_reads == 0 && fake.cfg_writes == 0);
	stop();
}

/* Registers take aligned 32-bit accesses only; the rest is ignored. */
static void test_register_access_width(void)
{
	uint8_t b[8];
	uint32_t v;

	REQUIRE(start() == 0);
	memset(b, 0xee, sizeof(b));
	virtio_mmio_rw(&dev, VIRTIO_MMIO_MAGIC_VALUE, b, 2, false);
	CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0xee);
	memset(b, 0xee, sizeof(b));
	virtio_mmio_rw(&dev, VIRTIO_MMIO_MAGIC_VALUE, b, 1, false);
	CHECK(b[0] == 0 && b[1] == 0xee);
	memset(b, 0xee, sizeof(b));
	virtio_mmio_rw(&dev, VIRTIO_MMIO_MAGIC_VALUE, b, 8, false);
	CHECK(b[0] == 0 && b[7] == 0);
	memset(b, 0xee, sizeof(b));
	virtio_mmio_rw(&dev, VIRTIO_MMIO_MAGIC_VALUE + 2, b, 4, false);
	CHECK(b[0] == 0 && b[3] == 0);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_VERSION + 1, b, 4, false);
	CHECK(b[0] == 0);

	/* Status: a byte write, a misaligned word, a 64-bit write. */
	v = htole32(S_ACK);
	memcpy(b, &v, 4);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_STATUS, b, 1, true);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_STATUS, b, 2, true);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_STATUS + 1, b, 4, true);
	memset(b + 4, 0, 4);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_STATUS, b, 8, true);
	CHECK(rd(VIRTIO_MMIO_STATUS) == 0);

	/* Queue address as one 64-bit write: ignored. */
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	v = htole32(0x1000);
	memcpy(b, &v, 4);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_QUEUE_DESC_LOW, b, 8, true);
	CHECK(dev.qregs[0].desc == 0);

	/* A 16-bit QueueNotify does not kick. */
	bring_up();
	memset(b, 0, sizeof(b));
	virtio_mmio_rw(&dev, VIRTIO_MMIO_QUEUE_NOTIFY, b, 2, true);
	virtio_mmio_rw(&dev, VIRTIO_MMIO_QUEUE_NOTIFY + 2, b, 4, true);
	CHECK(ev_run_once(ev, 0) == 0);
	CHECK(fake.notify_calls[0] == 0);
	stop();
}

/* ==== ioeventfd hook ==== */

static void test_ioeventfd_hook(void)
{
	int k0, k1;
	uint64_t one = 1;

	REQUIRE(start_with(&fake_ops, &hooks) == 0);
	k0 = dev.kick_fd[0];
	k1 = dev.kick_fd[1];
	CHECK(k0 >= 0 && k1 >= 0 && k0 != k1);
	REQUIRE(hlog.n == 2);
	for (int i = 0; i < 2; i++) {
		CHECK(hlog.call[i].ctx == &hook_ctx_marker);
		CHECK(hlog.call[i].addr == BASE + VIRTIO_MMIO_QUEUE_NOTIFY);
		CHECK(hlog.call[i].datamatch == (uint32_t)i);
		CHECK(hlog.call[i].fd == dev.kick_fd[i]);
		CHECK(hlog.call[i].assign);
	}
	CHECK(dev.ioeventfd_bound[0] && dev.ioeventfd_bound[1]);
	CHECK(!dev.ioeventfd_bound[2]);

	/* The kernel signals the fd on the guest's write; no VM exit. */
	bring_up();
	CHECK(write(k0, &one, sizeof(one)) == 8);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.notify_calls[0] == 1);
	/* An exit that reaches us anyway still works. */
	kick(0);
	CHECK(ev_run_once(ev, 0) == 1);
	CHECK(fake.notify_calls[0] == 2);

	/* A reset keeps the bindings (the fds stay, unwatched). */
	wr(VIRTIO_MMIO_STATUS, 0);
	CHECK(hlog.n == 2);

	stop();
	REQUIRE(hlog.n == 4);
	for (int i = 2; i < 4; i++) {
		CHECK(hlog.call[i].addr == BASE + VIRTIO_MMIO_QUEUE_NOTIFY);
		CHECK(hlog.call[i].datamatch == (uint32_t)(i - 2));
		CHECK(hlog.call[i].fd == (i == 2 ? k0 : k1));
		CHECK(!hlog.call[i].assign);
	}
	/* Destroy closed the kick fds. */
	CHECK(fcntl(k0, F_GETFD) == -1 && errno == EBADF);
	CHECK(fcntl(k1, F_GETFD) == -1 && errno == EBADF);
	CHECK(dev.ops == NULL);
	stop();			/* twice: harmless */
	CHECK(hlog.n == 4);
}

static void test_ioeventfd_hook_fails(void)
{
	REQUIRE(start_with(&fake_ops, NULL) == 0);
	stop();
	/* Fail the second binding (queue 1). */
	hlog.n = 0;
	hlog.fail_at = 1;
	CHECK(virtio_dev_init(&dev, &fake_ops, &fake, FAKE_FEATURES, &gm, ev,
			      BASE, GSI, irq_fd, &hooks, &err) == -1);
	CHECK_CONTAINS(err.msg, "virtio-fake: queue 1 notify: KVM_IOEVENTFD: no space");
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	CHECK(dev.ops == NULL);
	/* Queue 0 was bound, queue 1 failed; queue 0 is unbound again and
	 * its fd closed. */
	REQUIRE(hlog.n == 3);
	CHECK(hlog.call[0].assign && hlog.call[0].datamatch == 0);
	CHECK(hlog.call[1].assign && hlog.call[1].datamatch == 1);
	CHECK(!hlog.call[2].assign && hlog.call[2].datamatch == 0);
	CHECK(hlog.call[2].fd == hlog.call[0].fd);
	CHECK(fcntl(hlog.call[0].fd, F_GETFD) == -1);
	CHECK(fcntl(hlog.call[1].fd, F_GETFD) == -1);
}

int main(void)
{
	struct kr_err e;

	alarm(60);	/* a hung ev_run fails the run instead of blocking CI */
	kr_log_set_level(KR_LOG_ERROR);	/* expected NEEDS_RESET warnings */
	ram = aligned_alloc(4096, RAM_SIZE);
	irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ev = ev_new(&e);
	gm_init(&gm);
	vqd_gm = &gm;
	vqd_dev = &dev;
	if (!ram || irq_fd < 0 || !ev ||
	    gm_add_region(&gm, 0, RAM_SIZE, ram, &e) < 0) {
		printf("Bail out! setup: %s\n", e.msg);
		return 1;
	}

	KR_TEST(test_bus_register);
	KR_TEST(test_bus_dispatch);
	KR_TEST(test_bus_mmio);
	KR_TEST(test_ev_basic);
	KR_TEST(test_ev_del_in_round);
	KR_TEST(test_ev_readd_in_round);
	KR_TEST(test_ev_del_self);
	KR_TEST(test_ev_stop);
	KR_TEST(test_mmio_ids);
	KR_TEST(test_mmio_cmdline);
	KR_TEST(test_init_bad_shape);
	KR_TEST(test_feature_windows);
	KR_TEST(test_features_ok_check);
	KR_TEST(test_driver_ok_without_features_ok);
	KR_TEST(test_status_bits);
	KR_TEST(test_queue_regs);
	KR_TEST(test_driver_ok_activates);
	KR_TEST(test_kick_notify);
	KR_TEST(test_interrupts);
	KR_TEST(test_broken_queue);
	KR_TEST(test_reset);
	KR_TEST(test_bad_rings);
	KR_TEST(test_bad_queue_size);
	KR_TEST(test_fail_before_driver_ok);
	KR_TEST(test_activate_fails);
	KR_TEST(test_late_queue);
	KR_TEST(test_queue_stop);
	KR_TEST(test_config_space);
	KR_TEST(test_config_no_callbacks);
	KR_TEST(test_register_access_width);
	KR_TEST(test_ioeventfd_hook);
	KR_TEST(test_ioeventfd_hook_fails);
	stop();
	ev_free(ev);
	close(irq_fd);
	free(ram);
	return kr_test_done();
}
