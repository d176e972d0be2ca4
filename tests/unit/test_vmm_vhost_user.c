/* Unit tests for hypervisor/kvm/vhost_user.c and virtio_fs.c.
 *
 * Against the real back-end: Debian's virtiofsd (QEMU 7.2, C) runs as a
 * child on a listening socket the test creates (--fd: no connect race, and
 * no pid file left in /run/virtiofsd as --socket-path leaves).  Guest RAM is
 * a 16 MiB memfd; the test plays the guest driver: it writes split rings and
 * FUSE requests (FUSE_INIT, LOOKUP, OPEN, READ) into that memory, kicks, and
 * checks what virtiofsd wrote back, first with the vhost-user API alone,
 * then through the virtio-fs device model, the virtio-mmio transport and
 * the event loop (interrupt status, reset, re-activation, virtiofsd's death).
 *
 * Against hostile back-ends: a socketpair whose far end the test writes by
 * hand (replies queued before the request is sent, so no thread is needed),
 * and a scripted fake virtiofsd thread for virtio_fs_create.
 *
 * Needs root (virtiofsd's chroot sandbox); prints SKIP without root or
 * without /usr/lib/qemu/virtiofsd (Debian package qemu-system-common).
 *
 *   make -j2 WERROR=1 build/tests/test_vmm_vhost_user && build/tests/test_vmm_vhost_user
 *   make -j2 SANITIZE=1 WERROR=1 build-asan/tests/test_vmm_vhost_user && build-asan/tests/test_vmm_vhost_user
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "evloop.h"
#include "guest_mem.h"
#include "vhost_user.h"
#include "virtio_fs.h"
#include "virtio_mmio.h"
#include "virtqueue.h"
#include "../lib/fd_count.h"

#ifndef VIRTIOFSD		/* -DVIRTIOFSD=... to try another build */
#define VIRTIOFSD "/usr/lib/qemu/virtiofsd"
#endif
#define RAM_SIZE (16u << 20)
#define QSIZE 16u
/* Guest physical layout: queue q's rings, one request and one reply
 * buffer. */
#define DESC(q) (0x1000ull + 0x3000ull * (q))
#define AVAIL(q) (DESC(q) + 0x1000)
#define USED(q) (DESC(q) + 0x2000)
#define REQ_BUF 0x10000ull
#define REP_BUF 0x20000ull
#define REP_CAP 0x10000u
#define MMIO_BASE 0xd0000000ull
#define WAIT_MS 5000
#define BIT(n) (1ull << (n))

static const char file_name[] = "hello.txt";
static const char file_data[] = "hello from the host, through virtiofsd\n";

static char tmpdir[64];
static char shared_dir[128];
static int memfd = -1;
static uint8_t *ram;
static struct guest_mem gm;
static struct vu_mem_backing backing;
static const char *skip_why;	/* virtiofsd tests cannot run */

/* ---- small helpers ------------------------------------------------------- */

static uint64_t now_ms(void)
{
	return kr_now_ms();
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}


static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0)
		abort();
	return fd;
}

/* Wait until fd is readable, then drain it (an eventfd). */
static bool wait_readable(int fd, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;
	uint64_t now = now_ms();

	if (poll(&p, 1, deadline > now ? (int)(deadline - now) : 0) <= 0)
		return false;
	if (read(fd, &v, sizeof(v)) < 0) {
		/* another reader drained it: fine */
	}
	return true;
}

/* ---- guest memory, as the guest driver sees it --------------------------- */

static uint8_t *host(uint64_t gpa, size_t len)
{
	uint8_t *p = gm_ptr(&gm, gpa, len);

	if (!p)
		abort();
	return p;
}

static void put16(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(host(gpa, 2), &v, 2);
}

static void put32(uint64_t gpa, uint32_t v)
{
	v = htole32(v);
	memcpy(host(gpa, 4), &v, 4);
}

static void put64(uint64_t gpa, uint64_t v)
{
	v = htole64(v);
	memcpy(host(gpa, 8), &v, 8);
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, host(gpa, 2), 2);
	return le16toh(v);
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, host(gpa, 4), 4);
	return le32toh(v);
}

static void desc_at(unsigned q, unsigned i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	uint64_t d = DESC(q) + 16ull * i;

	put64(d, addr);
	put32(d + 8, len);
	put16(d + 12, flags);
	put16(d + 14, next);
}

/* One queue of the test's guest driver.  kick and wait differ between the
 * bare vhost-user test (eventfds) and the device test (MMIO, irq). */
struct gq {
	unsigned q;
	uint16_t avail_idx;	/* next avail.idx the guest publishes */
	uint16_t used_idx;	/* used entries consumed */
	bool event_idx;		/* keep used_event current */
	bool require_irq;	/* each completion must interrupt with ISR bit 0 */
	void (*kick)(struct gq *g);
	bool (*wait)(struct gq *g, uint64_t deadline);
	int kick_fd;		/* bare: write to kick */
	int call_fd;		/* bare: virtiofsd signals it */
	struct virtio_dev *dev;	/* device test */
	int irq_fd;		/* device test */
	uint32_t isr_seen;	/* device test: InterruptStatus bits read */
};

static void gq_reset_rings(unsigned q)
{
	memset(host(DESC(q), 0x3000), 0, 0x3000);
}

static uint16_t used_idx(unsigned q)
{
	uint16_t v = get16(USED(q) + 2);

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return v;
}

static void bare_kick(struct gq *g)
{
	uint64_t one = 1;

	if (write(g->kick_fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

static bool bare_wait(struct gq *g, uint64_t deadline)
{
	return wait_readable(g->call_fd, deadline);
}

/* ---- FUSE over the ring ---------------------------------------------------- */

struct fuse_reply {
	struct fuse_out_header out;
	uint32_t used_len;
	const uint8_t *body;	/* in guest memory, after the header */
};

/* Submit one FUSE request as a 2-descriptor chain (readable request,
 * writable reply buffer), kick, wait for the used entry.  false with a
 * diagnostic if it does not come or does not match. */
static bool fuse_call(struct gq *g, uint32_t opcode, uint64_t unique,
		      uint64_t nodeid, const void *arg, size_t arg_len,
		      const void *name, size_t name_len, struct fuse_reply *rep)
{
	struct fuse_in_header in = {
		.len = (uint32_t)(sizeof(in) + arg_len + name_len),
		.opcode = opcode,
		.unique = unique,
		.nodeid = nodeid,
	};
	uint8_t *req = host(REQ_BUF, in.len);
	uint64_t deadline = now_ms() + WAIT_MS;
	unsigned slot;

	memcpy(req, &in, sizeof(in));
	if (arg_len)
		memcpy(req + sizeof(in), arg, arg_len);
	if (name_len)
		memcpy(req + sizeof(in) + arg_len, name, name_len);
	memset(host(REP_BUF, REP_CAP), 0, REP_CAP);
	g->isr_seen = 0;
	desc_at(g->q, 0, REQ_BUF, in.len, VQ_DESC_F_NEXT, 1);
	desc_at(g->q, 1, REP_BUF, REP_CAP, VQ_DESC_F_WRITE, 0);
	put16(AVAIL(g->q) + 4 + 2ull * (g->avail_idx % QSIZE), 0);
	if (g->event_idx)	/* used_event: interrupt me for the next one */
		put16(AVAIL(g->q) + 4 + 2ull * QSIZE, g->used_idx);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(AVAIL(g->q) + 2, ++g->avail_idx);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	g->kick(g);

	while (used_idx(g->q) == g->used_idx) {
		if (!g->wait(g, deadline)) {
			printf("#   opcode %u: no used entry within %d ms\n", opcode,
			       WAIT_MS);
			return false;
		}
	}
	slot = g->used_idx % QSIZE;
	g->used_idx++;
	/* The used entry was published before the interrupt: wait for it if
	 * the loop above did not see it.  A stray interrupt with status 0
	 * (one whose bit a previous acknowledgement cleared) is ignored, as
	 * Linux does. */
	deadline = now_ms() + 1000;
	while (g->require_irq && !(g->isr_seen & VIRTIO_MMIO_INT_VRING) &&
	       g->wait(g, deadline))
		;
	if (g->require_irq && !(g->isr_seen & VIRTIO_MMIO_INT_VRING)) {
		printf("#   opcode %u: no interrupt with InterruptStatus bit 0 (saw 0x%x)\n",
		       opcode, g->isr_seen);
		return false;
	}
	if (get32(USED(g->q) + 4 + 8ull * slot) != 0) {
		printf("#   opcode %u: used id %u, expected 0\n", opcode,
		       get32(USED(g->q) + 4 + 8ull * slot));
		return false;
	}
	rep->used_len = get32(USED(g->q) + 8 + 8ull * slot);
	memcpy(&rep->out, host(REP_BUF, sizeof(rep->out)), sizeof(rep->out));
	rep->body = host(REP_BUF, REP_CAP) + sizeof(rep->out);
	if (rep->out.unique != unique || rep->out.len != rep->used_len ||
	    rep->out.error != 0) {
		printf("#   opcode %u: reply unique %llu len %u (used %u) error %d\n",
		       opcode, (unsigned long long)rep->out.unique, rep->out.len,
		       rep->used_len, rep->out.error);
		return false;
	}
	return true;
}

static bool fuse_init(struct gq *g, uint64_t unique)
{
	struct fuse_init_in ii = {
		.major = FUSE_KERNEL_VERSION,
		.minor = FUSE_KERNEL_MINOR_VERSION,
		.max_readahead = 65536,
	};
	struct fuse_init_out io;
	struct fuse_reply rep;

	if (!fuse_call(g, FUSE_INIT, unique, 0, &ii, sizeof(ii), NULL, 0, &rep))
		return false;
	if (rep.used_len < sizeof(rep.out) + 24) {
		printf("#   FUSE_INIT reply of %u bytes\n", rep.used_len);
		return false;
	}
	memset(&io, 0, sizeof(io));
	memcpy(&io, rep.body, rep.used_len - sizeof(rep.out) < sizeof(io) ?
	       rep.used_len - sizeof(rep.out) : sizeof(io));
	printf("# virtiofsd answered FUSE_INIT: %u.%u, max_write %u\n", io.major,
	       io.minor, io.max_write);
	return io.major == 7;
}

/* LOOKUP file_name in the root: its node id, after checking size/mode. */
static bool fuse_lookup(struct gq *g, uint64_t unique, uint64_t *nodeid)
{
	struct fuse_entry_out e;
	struct fuse_reply rep;

	if (!fuse_call(g, FUSE_LOOKUP, unique, FUSE_ROOT_ID, NULL, 0, file_name,
		       sizeof(file_name), &rep))
		return false;
	if (rep.used_len != sizeof(rep.out) + sizeof(e)) {
		printf("#   FUSE_LOOKUP reply of %u bytes\n", rep.used_len);
		return false;
	}
	memcpy(&e, rep.body, sizeof(e));
	if (e.nodeid == 0 || e.attr.size != strlen(file_data) ||
	    !S_ISREG(e.attr.mode) || (e.attr.mode & 07777) != 0640) {
		printf("#   FUSE_LOOKUP: node %llu size %llu mode 0%o\n",
		       (unsigned long long)e.nodeid,
		       (unsigned long long)e.attr.size, e.attr.mode);
		return false;
	}
	*nodeid = e.nodeid;
	return true;
}

static bool fuse_open_read(struct gq *g, uint64_t unique, uint64_t nodeid)
{
	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct fuse_open_out oo;
	struct fuse_read_in ri = { .size = 4096 };
	struct fuse_reply rep;
	size_t n = strlen(file_data);

	if (!fuse_call(g, FUSE_OPEN, unique, nodeid, &oi, sizeof(oi), NULL, 0, &rep))
		return false;
	if (rep.used_len != sizeof(rep.out) + sizeof(oo))
		return false;
	memcpy(&oo, rep.body, sizeof(oo));
	ri.fh = oo.fh;
	if (!fuse_call(g, FUSE_READ, unique + 1, nodeid, &ri, sizeof(ri), NULL, 0,
		       &rep))
		return false;
	if (rep.used_len != sizeof(rep.out) + n || memcmp(rep.body, file_data, n)) {
		printf("#   FUSE_READ: %u bytes: \"%.*s\"\n", rep.used_len,
		       (int)(rep.used_len - sizeof(rep.out)), rep.body);
		return false;
	}
	return true;
}

/* ---- virtiofsd as a child ------------------------------------------------ */

struct vfsd {
	pid_t pid;
	char sock[128];
	char log[128];
};

/* The listening socket the child inherits as --fd (not close-on-exec). */
static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		abort();
	strcpy(sa.sun_path, path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		perror("bind/listen");
		abort();
	}
	return fd;
}

static void exec_virtiofsd(int lfd, const char *log)
{
	char fdopt[32], src[160];
	int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	/* Die with the test, whatever happens to it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (out >= 0) {
		dup2(out, 1);
		dup2(out, 2);
	}
	snprintf(fdopt, sizeof(fdopt), "--fd=%d", lfd);
	snprintf(src, sizeof(src), "source=%s", shared_dir);
	execl(VIRTIOFSD, VIRTIOFSD, fdopt, "-o", src, "-o", "cache=none",
	      "-o", "sandbox=chroot", (char *)NULL);
	_exit(127);
}

static void vfsd_start(struct vfsd *v, const char *name)
{
	int lfd;

	snprintf(v->sock, sizeof(v->sock), "%s/%s.sock", tmpdir, name);
	snprintf(v->log, sizeof(v->log), "%s/%s.log", tmpdir, name);
	lfd = listen_on(v->sock);
	v->pid = fork();
	if (v->pid < 0)
		abort();
	if (v->pid == 0)
		exec_virtiofsd(lfd, v->log);
	/* Only virtiofsd may accept: once it has, connects are refused. */
	close(lfd);
}

static void vfsd_dump_log(const struct vfsd *v)
{
	char line[512];
	FILE *f = fopen(v->log, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("#   virtiofsd: %s", line);
	fclose(f);
}

/* Wait up to ms for the child to exit; its wait status, or -1. */
static int vfsd_wait(struct vfsd *v, unsigned ms)
{
	uint64_t deadline = now_ms() + ms;
	int st;

	if (v->pid <= 0)
		return -1;
	do {
		pid_t r = waitpid(v->pid, &st, WNOHANG);

		if (r == v->pid) {
			v->pid = 0;
			return st;
		}
		if (r < 0)
			return -1;
		sleep_ms(5);
	} while (now_ms() < deadline);
	return -1;
}

static void vfsd_kill(struct vfsd *v)
{
	if (v->pid <= 0)
		return;
	kill(v->pid, SIGKILL);
	waitpid(v->pid, NULL, 0);
	v->pid = 0;
}

/* ---- the fake back-end (socketpair) -------------------------------------- */

struct hdr {
	uint32_t request, flags, size;
};

static struct vhost_user *fake(int *peer, int timeout_ms)
{
	int sv[2];
	struct kr_err err;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	*peer = sv[1];
	return vu_attach(sv[0], timeout_ms, &err);
}

static void peer_send(int peer, uint32_t req, uint32_t flags, uint32_t size,
		      const void *payload, size_t len, int fd)
{
	uint8_t buf[256];
	struct hdr h = { req, flags, size };
	struct iovec iov = { buf, sizeof(h) + len };
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	if (fd >= 0) {
		struct cmsghdr *c;

		m.msg_control = ctl.b;
		m.msg_controllen = sizeof(ctl.b);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(peer, &m, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
		abort();
}

static void peer_u64(int peer, uint32_t req, uint64_t v)
{
	peer_send(peer, req, 5, 8, &v, 8, -1);
}

/* Read one request the front-end sent: header, payload, fds received
 * (caller closes them).  Returns the payload size, -1 if none is there. */
static int peer_recv(int peer, struct hdr *h, void *payload, size_t cap,
		     int *fds, int *nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { h, sizeof(*h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
	ssize_t n = recvmsg(peer, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	*nfds = 0;
	if (n != sizeof(*h))
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		memcpy(fds + *nfds, CMSG_DATA(c), k * sizeof(int));
		*nfds += k;
	}
	if (h->size > cap)
		return -1;
	if (h->size && recv(peer, payload, h->size, MSG_DONTWAIT) != (ssize_t)h->size)
		return -1;
	return (int)h->size;
}

static bool peer_empty(int peer)
{
	char c;

	return recv(peer, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* ---- hostile and fake back-ends: vhost_user.c alone --------------------- */

static void test_connect_errors(void)
{
	struct kr_err err = { 0 };
	char path[160], longp[200];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t t0 = now_ms();
	int fd;

	snprintf(path, sizeof(path), "%s/nobody.sock", tmpdir);
	CHECK(vu_connect(path, 1000, &err) == NULL);
	CHECK_CONTAINS(err.msg, "vhost-user: connect to");
	CHECK_CONTAINS(err.msg, "No such file or directory");

	/* Bound but not listening: refused at once, not after the timeout. */
	snprintf(path, sizeof(path), "%s/deaf.sock", tmpdir);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, path);
	REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(vu_connect(path, 5000, &err) == NULL);
	CHECK_CONTAINS(err.msg, "Connection refused");
	close(fd);

	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	CHECK(vu_connect(longp, 1000, &err) == NULL);
	CHECK_CONTAINS(err.msg, "longer than 107 bytes");
	CHECK(now_ms() - t0 < 1000);
}

/* A back-end that accepts connections (the kernel does, from the backlog)
 * but never answers: the first request times out. */
static void test_listener_never_answers(void)
{
	struct kr_err err = { 0 };
	char path[160];
	struct vhost_user *vu;
	uint64_t f, t0;
	int lfd;

	snprintf(path, sizeof(path), "%s/mute.sock", tmpdir);
	lfd = listen_on(path);
	fcntl(lfd, F_SETFD, FD_CLOEXEC);
	vu = vu_connect(path, 300, &err);
	REQUIRE(vu);
	t0 = now_ms();
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: no reply within 300 ms");
	CHECK(err.code == KR_DEADLINE_EXCEEDED);
	CHECK(now_ms() - t0 >= 290 && now_ms() - t0 < 2000);
	CHECK(vu_broken(vu));
	vu_close(vu);
	close(lfd);
}

static void test_fake_wrong_size(void)
{
	struct kr_err err = { 0 };
	uint8_t twelve[12] = { 0 };
	struct hdr h;
	int peer, fds[8], nfds;
	uint64_t f;
	struct vhost_user *vu = fake(&peer, 1000);

	REQUIRE(vu);
	peer_send(peer, VHOST_USER_GET_FEATURES, 5, 12, twelve, 12, -1);
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: reply size 12, expected 8");
	/* What the front-end sent: GET_FEATURES, version 1, no payload. */
	CHECK(peer_recv(peer, &h, NULL, 0, fds, &nfds) == 0);
	CHECK(h.request == 1 && h.flags == 1 && h.size == 0 && nfds == 0);
	/* The stream is out of step now: nothing more is sent. */
	CHECK(vu_broken(vu));
	CHECK(vu_set_owner(vu, &err) < 0);
	CHECK_CONTAINS(err.msg, "vhost-user SET_OWNER: connection unusable after an earlier failure (vhost-user GET_FEATURES: reply size 12");
	CHECK(peer_empty(peer));
	vu_close(vu);
	close(peer);
}

static void test_fake_oversized(void)
{
	struct kr_err err = { 0 };
	int peer;
	uint64_t f, t0 = now_ms();
	struct vhost_user *vu = fake(&peer, 1000);

	REQUIRE(vu);
	peer_send(peer, VHOST_USER_GET_FEATURES, 5, 1u << 30, NULL, 0, -1);
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: reply size 1073741824 exceeds the maximum 4096");
	CHECK(now_ms() - t0 < 500);	/* refused from the header alone */
	vu_close(vu);
	close(peer);
}

static void test_fake_wrong_request(void)
{
	struct kr_err err = { 0 };
	int peer;
	uint64_t f;
	struct vhost_user *vu = fake(&peer, 1000);

	REQUIRE(vu);
	peer_u64(peer, VHOST_USER_GET_PROTOCOL_FEATURES, 0);
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: reply to request 15 (GET_PROTOCOL_FEATURES), expected 1");
	vu_close(vu);
	close(peer);
}

static void test_fake_bad_flags(void)
{
	struct kr_err err = { 0 };
	uint64_t f, zero = 0;
	int peer;
	struct vhost_user *vu = fake(&peer, 1000);

	REQUIRE(vu);
	peer_send(peer, VHOST_USER_GET_FEATURES, 1, 8, &zero, 8, -1);
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: reply flags 0x1 lack the reply bit");
	vu_close(vu);
	close(peer);

	vu = fake(&peer, 1000);
	REQUIRE(vu);
	peer_send(peer, VHOST_USER_GET_FEATURES, 6, 8, &zero, 8, -1);
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: reply version 2, expected 1");
	vu_close(vu);
	close(peer);
}

static void test_fake_no_reply(void)
{
	struct kr_err err = { 0 };
	uint64_t f, t0;
	uint8_t three[3] = { 0 };
	int peer;
	struct vhost_user *vu = fake(&peer, 200);

	REQUIRE(vu);
	t0 = now_ms();
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: no reply within 200 ms");
	CHECK(err.errnum == ETIMEDOUT && err.code == KR_DEADLINE_EXCEEDED);
	CHECK(now_ms() - t0 >= 190 && now_ms() - t0 < 2000);
	vu_close(vu);
	close(peer);

	/* A header, then 3 of the 8 payload bytes, then silence. */
	vu = fake(&peer, 200);
	REQUIRE(vu);
	peer_send(peer, VHOST_USER_GET_FEATURES, 5, 8, three, 3, -1);
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: incomplete reply within 200 ms");
	vu_close(vu);
	close(peer);
}

/* The back-end went away: a clean error, and no SIGPIPE (the default
 * SIGPIPE action would kill this test). */
static void test_fake_eof(void)
{
	struct kr_err err = { 0 };
	uint64_t f;
	int peer;
	struct vhost_user *vu = fake(&peer, 1000);

	REQUIRE(vu);
	close(peer);
	CHECK(vu_set_owner(vu, &err) < 0);
	CHECK_CONTAINS(err.msg, "vhost-user SET_OWNER: back-end closed the connection");
	CHECK(err.errnum == EPIPE);
	vu_close(vu);

	/* Closed after the request went out: EOF while reading the reply. */
	vu = fake(&peer, 1000);
	REQUIRE(vu);
	shutdown(peer, SHUT_WR);
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: back-end closed the connection");
	vu_close(vu);
	close(peer);
}

static void test_fake_fd_in_reply(void)
{
	struct kr_err err = { 0 };
	uint64_t f, v = 0;
	int peer, efd = new_eventfd(), before;
	struct vhost_user *vu = fake(&peer, 1000);

	REQUIRE(vu);
	peer_send(peer, VHOST_USER_GET_FEATURES, 5, 8, &v, 8, efd);
	close(efd);
	before = count_fds();
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user GET_FEATURES: reply carried 1 file descriptor(s)");
	CHECK(count_fds() == before);	/* the fd that came was closed */
	vu_close(vu);
	close(peer);
}

/* Handshake with REPLY_ACK: what goes on the wire, what is negotiated, and
 * a failure status that does not break the connection. */
static void test_fake_handshake_ack(void)
{
	struct kr_err err = { 0 };
	struct hdr h;
	uint64_t payload[8], f = 0;
	int peer, fds[8], nfds;
	struct vhost_user *vu = fake(&peer, 1000);

	REQUIRE(vu);
	peer_u64(peer, VHOST_USER_GET_FEATURES, BIT(30) | BIT(32));
	peer_u64(peer, VHOST_USER_GET_PROTOCOL_FEATURES,
		 BIT(VU_PROTO_F_MQ) | BIT(VU_PROTO_F_REPLY_ACK) | BIT(VU_PROTO_F_CONFIG));
	peer_u64(peer, VHOST_USER_SET_OWNER, 0);
	CHECK(vu_handshake(vu, VU_PROTO_WANTED, &err) == 0);
	CHECK(vu_features(vu) == (BIT(30) | BIT(32)));
	CHECK(vu_protocol_features(vu) == (BIT(VU_PROTO_F_MQ) | BIT(VU_PROTO_F_REPLY_ACK)));

	CHECK(peer_recv(peer, &h, payload, sizeof(payload), fds, &nfds) == 0);
	CHECK(h.request == VHOST_USER_GET_FEATURES && h.flags == 1);
	CHECK(peer_recv(peer, &h, payload, sizeof(payload), fds, &nfds) == 0);
	CHECK(h.request == VHOST_USER_GET_PROTOCOL_FEATURES && h.flags == 1);
	CHECK(peer_recv(peer, &h, payload, sizeof(payload), fds, &nfds) == 8);
	CHECK(h.request == VHOST_USER_SET_PROTOCOL_FEATURES && h.flags == 1);
	CHECK(payload[0] == (BIT(VU_PROTO_F_MQ) | BIT(VU_PROTO_F_REPLY_ACK)));
	CHECK(peer_recv(peer, &h, payload, sizeof(payload), fds, &nfds) == 0);
	CHECK(h.request == VHOST_USER_SET_OWNER && h.flags == (1 | VHOST_USER_FLAG_NEED_REPLY));

	peer_u64(peer, VHOST_USER_SET_FEATURES, 1);
	CHECK(vu_set_features(vu, BIT(32), &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user SET_FEATURES: back-end reported failure (status 1)");
	CHECK(!vu_broken(vu));
	peer_u64(peer, VHOST_USER_GET_FEATURES, 42);
	CHECK(vu_get_features(vu, &f, &err) == 0 && f == 42);
	vu_close(vu);
	close(peer);
}

/* SET_MEM_TABLE and a ring set-up on the wire: layouts, order, fds, and
 * ring addresses given as the front-end's virtual addresses. */
static void test_fake_ring_messages(void)
{
	struct kr_err err = { 0 };
	struct vu_mem_region regs[VU_MAX_REGIONS];
	unsigned n = 0;
	struct hdr h;
	uint8_t p[512];
	uint32_t st[2];
	uint64_t u[5];
	int peer, fds[8], nfds, kick = new_eventfd(), call = new_eventfd();
	uint16_t base = 0;
	struct vhost_user *vu = fake(&peer, 1000);
	struct vu_vring r = { .index = 1, .num = QSIZE, .desc = host(DESC(1), 1),
			      .avail = host(AVAIL(1), 1), .used = host(USED(1), 1),
			      .kick_fd = kick, .call_fd = call };
	static const uint32_t order[] = {
		VHOST_USER_SET_VRING_NUM, VHOST_USER_SET_VRING_BASE,
		VHOST_USER_SET_VRING_ADDR, VHOST_USER_SET_VRING_CALL,
		VHOST_USER_SET_VRING_KICK, VHOST_USER_SET_VRING_ENABLE,
	};

	REQUIRE(vu);
	/* Protocol features with REPLY_ACK and bit 30 acked: every SET is
	 * acknowledged, rings need ENABLE. */
	peer_u64(peer, VHOST_USER_GET_FEATURES, BIT(30) | BIT(32));
	peer_u64(peer, VHOST_USER_GET_PROTOCOL_FEATURES, BIT(VU_PROTO_F_REPLY_ACK));
	peer_u64(peer, VHOST_USER_SET_OWNER, 0);
	peer_u64(peer, VHOST_USER_SET_FEATURES, 0);
	REQUIRE(vu_handshake(vu, VU_PROTO_WANTED, &err) == 0);
	REQUIRE(vu_set_features(vu, BIT(30) | BIT(32), &err) == 0);
	for (int i = 0; i < 5; i++)	/* the handshake and SET_FEATURES */
		CHECK(peer_recv(peer, &h, p, sizeof(p), fds, &nfds) >= 0);

	peer_u64(peer, VHOST_USER_SET_MEM_TABLE, 0);
	REQUIRE(vu_mem_regions(&gm, &backing, regs, &n, &err) == 0 && n == 1);
	CHECK(vu_set_mem_table(vu, regs, n, &err) == 0);
	CHECK(peer_recv(peer, &h, p, sizeof(p), fds, &nfds) == 8 + 32);
	CHECK(h.request == VHOST_USER_SET_MEM_TABLE && nfds == 1);
	memcpy(u, p + 8, 32);
	CHECK(p[0] == 1 && u[0] == 0 && u[1] == RAM_SIZE &&
	      u[2] == (uintptr_t)ram && u[3] == 0);
	CHECK(nfds == 1 && same_file(fds[0], memfd));
	if (nfds)
		close(fds[0]);

	for (unsigned i = 0; i < KR_ARRAY_SIZE(order); i++)
		peer_u64(peer, order[i], 0);
	CHECK(vu_setup_vring(vu, &r, &err) == 0);
	for (unsigned i = 0; i < KR_ARRAY_SIZE(order); i++) {
		int sz = peer_recv(peer, &h, p, sizeof(p), fds, &nfds);

		CHECKF(h.request == order[i], "message %u is %u", i, h.request);
		CHECK(h.flags == (1 | VHOST_USER_FLAG_NEED_REPLY));
		if (h.request == VHOST_USER_SET_VRING_ADDR) {
			CHECK(sz == 40);
			memcpy(st, p, 8);
			memcpy(u, p + 8, 32);
			CHECK(st[0] == 1 && st[1] == 0);
			CHECK(u[0] == (uintptr_t)ram + DESC(1));	/* desc */
			CHECK(u[1] == (uintptr_t)ram + USED(1));	/* used */
			CHECK(u[2] == (uintptr_t)ram + AVAIL(1));	/* avail */
		} else if (h.request == VHOST_USER_SET_VRING_KICK ||
			   h.request == VHOST_USER_SET_VRING_CALL) {
			memcpy(u, p, 8);
			CHECK(sz == 8 && u[0] == 1 && nfds == 1);
			CHECK(nfds == 1 && same_file(fds[0],
				h.request == VHOST_USER_SET_VRING_KICK ? kick : call));
		} else {
			memcpy(st, p, 8);
			CHECK(sz == 8 && st[0] == 1);
			CHECK(st[1] == (h.request == VHOST_USER_SET_VRING_NUM ? QSIZE :
					h.request == VHOST_USER_SET_VRING_BASE ? 0 : 1));
		}
		for (int k = 0; k < nfds; k++)
			close(fds[k]);
	}

	/* GET_VRING_BASE: the reply must be about the ring asked for. */
	st[0] = 1;
	st[1] = 7;
	peer_send(peer, VHOST_USER_GET_VRING_BASE, 5, 8, st, 8, -1);
	CHECK(vu_stop_vring(vu, 1, &base, &err) == 0 && base == 7);
	st[0] = 0;
	peer_send(peer, VHOST_USER_GET_VRING_BASE, 5, 8, st, 8, -1);
	CHECK(vu_stop_vring(vu, 1, &base, &err) < 0);
	CHECK_STREQ(err.msg, "ring 1: vhost-user GET_VRING_BASE: reply for ring 0 with base 7");
	CHECK(vu_broken(vu));

	vu_close(vu);
	close(peer);
	close(kick);
	close(call);
}

/* ---- the real virtiofsd, through vhost_user.c ---------------------------- */

/* The whole session a VMM has with virtiofsd, the test being the guest:
 * handshake, memory, both rings, FUSE_INIT/LOOKUP/OPEN/READ on the
 * request queue, ring stop, disconnect (virtiofsd then exits). */
static void test_virtiofsd_session(void)
{
	struct kr_err err = { 0 };
	struct vfsd v = { 0 };
	struct vu_mem_region regs[VU_MAX_REGIONS];
	unsigned n;
	uint64_t nq = 0, node = 0, offered = 0;
	uint16_t base = 0xffff;
	int kick[2] = { new_eventfd(), new_eventfd() };
	int call[2] = { new_eventfd(), new_eventfd() };
	struct gq g = { .q = 1, .kick = bare_kick, .wait = bare_wait,
			.kick_fd = kick[1], .call_fd = call[1] };
	struct vhost_user *vu = NULL;
	int st;

	if (skip_why)
		SKIP("%s", skip_why);
	for (unsigned q = 0; q < 2; q++)
		gq_reset_rings(q);
	vfsd_start(&v, "session");
	vu = vu_connect(v.sock, WAIT_MS, &err);
	REQUIRE(vu);
	if (vu_handshake(vu, VU_PROTO_WANTED, &err) < 0) {
		printf("#   %s\n", err.msg);
		vfsd_dump_log(&v);
		CHECK(0);
		goto out;
	}
	CHECK(vu_get_protocol_features(vu, &offered, &err) == 0);
	printf("# virtiofsd: features 0x%llx, protocol features 0x%llx (negotiated 0x%llx)\n",
	       (unsigned long long)vu_features(vu), (unsigned long long)offered,
	       (unsigned long long)vu_protocol_features(vu));
	/* No CONFIG: the VMM must serve the config space itself. */
	CHECK(!(offered & BIT(VU_PROTO_F_CONFIG)));
	CHECK(vu_features(vu) & BIT(VIRTIO_F_VERSION_1));
	CHECK(vu_features(vu) & VHOST_USER_F_PROTOCOL_FEATURES_MASK);
	CHECK(vu_protocol_features(vu) == VU_PROTO_WANTED);
	CHECK(vu_get_queue_num(vu, &nq, &err) == 0 && nq == 2);

	CHECK(vu_set_features(vu, BIT(VIRTIO_F_VERSION_1) |
			      VHOST_USER_F_PROTOCOL_FEATURES_MASK, &err) == 0);
	CHECK(vu_mem_regions(&gm, &backing, regs, &n, &err) == 0);
	CHECK(vu_set_mem_table(vu, regs, n, &err) == 0);
	for (unsigned q = 0; q < 2; q++) {
		struct vu_vring r = { .index = q, .num = QSIZE,
				      .desc = host(DESC(q), 1),
				      .avail = host(AVAIL(q), 1),
				      .used = host(USED(q), 1),
				      .kick_fd = kick[q], .call_fd = call[q] };

		CHECKF(vu_setup_vring(vu, &r, &err) == 0, "%s", err.msg);
	}

	CHECK(fuse_init(&g, 1));
	CHECK(fuse_lookup(&g, 2, &node));
	CHECK(node && fuse_open_read(&g, 3, node));

	/* Stopping a ring gives back where virtiofsd got to: 4 requests. */
	CHECKF(vu_stop_vring(vu, 1, &base, &err) == 0, "%s", err.msg);
	CHECK(base == 4);
	CHECK(vu_stop_vring(vu, 0, &base, &err) == 0 && base == 0);
	CHECK(vu_check_alive(vu, &err) == 0);
out:
	vu_close(vu);
	/* One connection per virtiofsd: it exits once we hang up. */
	st = vfsd_wait(&v, 3000);
	CHECKF(st == 0, "virtiofsd wait status %d", st);
	if (st != 0)
		vfsd_dump_log(&v);
	vfsd_kill(&v);
	for (unsigned q = 0; q < 2; q++) {
		close(kick[q]);
		close(call[q]);
	}
}

/* virtiofsd killed in the middle of a session: the next request and the
 * liveness check fail cleanly (no SIGPIPE, no hang). */
static void test_virtiofsd_killed(void)
{
	struct kr_err err = { 0 };
	struct vfsd v = { 0 };
	struct vhost_user *vu;
	uint64_t f, t0;

	if (skip_why)
		SKIP("%s", skip_why);
	vfsd_start(&v, "killed");
	vu = vu_connect(v.sock, WAIT_MS, &err);
	REQUIRE(vu);
	CHECKF(vu_handshake(vu, VU_PROTO_WANTED, &err) == 0, "%s", err.msg);
	vfsd_kill(&v);
	t0 = now_ms();
	CHECK(vu_check_alive(vu, &err) < 0);
	CHECK_STREQ(err.msg, "vhost-user: back-end closed the connection");
	CHECK(vu_set_features(vu, BIT(32), &err) < 0);
	CHECK_CONTAINS(err.msg, "vhost-user SET_FEATURES: connection unusable after an earlier failure");
	vu_close(vu);

	/* Without the liveness check first: the request itself fails. */
	vfsd_start(&v, "killed2");
	vu = vu_connect(v.sock, WAIT_MS, &err);
	REQUIRE(vu);
	CHECKF(vu_handshake(vu, VU_PROTO_WANTED, &err) == 0, "%s", err.msg);
	vfsd_kill(&v);
	CHECK(vu_get_features(vu, &f, &err) < 0);
	CHECK_CONTAINS(err.msg, "vhost-user GET_FEATURES: back-end closed the connection");
	CHECK(now_ms() - t0 < 2000);
	vu_close(vu);
}

/* ---- virtio_fs.c --------------------------------------------------------- */

static uint32_t mmio_read(struct virtio_dev *d, uint64_t off)
{
	uint32_t v;

	virtio_mmio_rw(d, off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

static void mmio_write(struct virtio_dev *d, uint64_t off, uint32_t v)
{
	v = htole32(v);
	virtio_mmio_rw(d, off, (uint8_t *)&v, 4, true);
}

static void mmio_kick(struct gq *g)
{
	mmio_write(g->dev, VIRTIO_MMIO_QUEUE_NOTIFY, g->q);
}

/* The guest's interrupt handler: the line fired, InterruptStatus says
 * why, the bits are acknowledged. */
static bool mmio_wait(struct gq *g, uint64_t deadline)
{
	uint32_t isr;

	if (!wait_readable(g->irq_fd, deadline))
		return false;
	isr = mmio_read(g->dev, VIRTIO_MMIO_INTERRUPT_STATUS);
	g->isr_seen |= isr;
	mmio_write(g->dev, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	return true;
}

static uint64_t device_features(struct virtio_dev *d)
{
	uint64_t f;

	mmio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = mmio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
	mmio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)mmio_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

static void set_queue(struct virtio_dev *d, unsigned q)
{
	mmio_write(d, VIRTIO_MMIO_QUEUE_SEL, q);
	mmio_write(d, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	mmio_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)DESC(q));
	mmio_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	mmio_write(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)AVAIL(q));
	mmio_write(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
	mmio_write(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)USED(q));
	mmio_write(d, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
	mmio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Linux's virtio-mmio probe + virtio_fs probe, cut down: reset,
 * features, both queues, DRIVER_OK.  Returns the status read back. */
static uint32_t driver_init(struct virtio_dev *d, uint64_t want)
{
	uint64_t f = device_features(d) & want;
	uint32_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	for (unsigned q = 0; q < 2; q++)
		gq_reset_rings(q);
	mmio_write(d, VIRTIO_MMIO_STATUS, 0);
	mmio_write(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	mmio_write(d, VIRTIO_MMIO_STATUS, s);
	mmio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mmio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	mmio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	mmio_write(d, VIRTIO_MMIO_STATUS, s);
	if (!(mmio_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return mmio_read(d, VIRTIO_MMIO_STATUS);
	for (unsigned q = 0; q < 2; q++)
		set_queue(d, q);
	mmio_write(d, VIRTIO_MMIO_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK);
	return mmio_read(d, VIRTIO_MMIO_STATUS);
}

/* virtiofsd signals every call fd once when it gets it (libvhost-user's
 * "in case of I/O hang after reconnecting"): let those interrupts pass,
 * so that the ones the test then sees come from completions. */
static void settle(struct virtio_dev *d, int irq)
{
	sleep_ms(100);
	while (wait_readable(irq, now_ms()))
		;
	mmio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
}

static void *ev_thread(void *arg)
{
	ev_run(arg);
	return NULL;
}

static int fs_create(struct virtio_dev *d, const char *sock, const char *tag,
		     struct evloop *ev, int irq_fd, struct kr_err *err)
{
	struct virtio_fs_cfg cfg = { .socket_path = sock, .tag = tag,
				     .mem = &backing, .timeout_ms = WAIT_MS };

	return virtio_fs_create(d, &cfg, &gm, ev, MMIO_BASE, 5, irq_fd, NULL, err);
}

static void test_fs_bad_tags(void)
{
	struct kr_err err = { 0 };
	struct virtio_dev d = { 0 };
	struct evloop *ev = ev_new(&err);
	char path[160], t37[38];

	REQUIRE(ev);
	/* No socket there: a tag error must come before any connect. */
	snprintf(path, sizeof(path), "%s/nobody.sock", tmpdir);
	memset(t37, 'a', 37);
	t37[37] = 0;
	CHECK(fs_create(&d, path, "", ev, -1, &err) < 0);
	CHECK_STREQ(err.msg, "virtio-fs: tag \"\" is 0 bytes, must be 1..36");
	CHECK(fs_create(&d, path, t37, ev, -1, &err) < 0);
	CHECK_CONTAINS(err.msg, "is 37 bytes, must be 1..36");
	CHECK(fs_create(&d, path, "a\nb", ev, -1, &err) < 0);
	CHECK_STREQ(err.msg, "virtio-fs: tag contains control character 0x0a at byte 1");
	CHECK(virtio_fs_check_tag("kataShared", &err) == 0);
	CHECK(virtio_fs_check_tag(t37 + 1, &err) == 0);	/* 36 bytes */
	CHECK(fs_create(&d, path, "ok", ev, -1, &err) < 0);
	CHECK_CONTAINS(err.msg, "virtio-fs: virtiofsd at ");
	CHECK_CONTAINS(err.msg, "No such file or directory");
	ev_free(ev);
}

/* Config space through the ops and through the MMIO window; the offered
 * features; a 36-byte tag has no NUL. */
static void test_fs_config(void)
{
	struct kr_err err = { 0 };
	struct vfsd v = { 0 };
	struct virtio_dev d = { 0 };
	struct evloop *ev = ev_new(&err);
	const char *tag = "kataShared-0123456789abcdefghijklmno";	/* 36 */
	uint8_t cfg[VIRTIO_FS_CONFIG_SIZE], b[4];
	uint32_t nrq;
	int st;

	REQUIRE(ev);
	if (skip_why) {
		ev_free(ev);
		SKIP("%s", skip_why);
	}
	REQUIRE(strlen(tag) == 36);
	vfsd_start(&v, "config");
	if (fs_create(&d, v.sock, tag, ev, -1, &err) < 0) {
		printf("#   %s\n", err.msg);
		vfsd_dump_log(&v);
		CHECK(0);
		vfsd_kill(&v);
		ev_free(ev);
		return;
	}
	CHECK(d.ops->device_id == VIRTIO_ID_FS && d.ops->config_size == 40);
	CHECK(d.ops->num_queues == 2 && d.external_queues);
	memset(cfg, 0xee, sizeof(cfg));
	d.ops->config_read(&d, 0, cfg, sizeof(cfg));
	CHECK(memcmp(cfg, tag, 36) == 0);
	memcpy(&nrq, cfg + 36, 4);
	CHECK(le32toh(nrq) == 1);
	d.ops->config_read(&d, 36, b, 4);
	CHECK(b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0);
	memset(b, 0xee, 4);
	d.ops->config_read(&d, 38, b, 4);	/* beyond the end: untouched */
	CHECK(b[0] == 0xee);

	CHECK(mmio_read(&d, VIRTIO_MMIO_DEVICE_ID) == VIRTIO_ID_FS);
	CHECK(mmio_read(&d, VIRTIO_MMIO_CONFIG) == ('k' | 'a' << 8 | 't' << 16 | 'a' << 24));
	CHECK(mmio_read(&d, VIRTIO_MMIO_CONFIG + 36) == 1);
	virtio_mmio_rw(&d, VIRTIO_MMIO_CONFIG + 1, b, 1, false);
	CHECK(b[0] == 'a');
	/* VERSION_1 plus the ring features virtiofsd has; not its
	 * NOTIFY_ON_EMPTY, LOG_ALL or protocol bits. */
	CHECK(device_features(&d) == (BIT(VIRTIO_F_VERSION_1) |
				      BIT(VIRTIO_F_INDIRECT_DESC) |
				      BIT(VIRTIO_F_EVENT_IDX)));
	mmio_write(&d, VIRTIO_MMIO_QUEUE_SEL, 1);
	CHECK(mmio_read(&d, VIRTIO_MMIO_QUEUE_NUM_MAX) == VIRTIO_FS_QUEUE_MAX);
	mmio_write(&d, VIRTIO_MMIO_QUEUE_SEL, 2);
	CHECK(mmio_read(&d, VIRTIO_MMIO_QUEUE_NUM_MAX) == 0);

	virtio_fs_destroy(&d);
	st = vfsd_wait(&v, 3000);
	CHECKF(st == 0, "virtiofsd wait status %d", st);
	vfsd_kill(&v);
	ev_free(ev);

	/* A short tag is NUL-padded. */
	vfsd_start(&v, "config2");
	ev = ev_new(&err);
	REQUIRE(ev);
	CHECKF(fs_create(&d, v.sock, "myfs", ev, -1, &err) == 0, "%s", err.msg);
	if (d.ops) {
		memset(cfg, 0xee, sizeof(cfg));
		for (uint32_t off = 0; off < 40; off += 4)
			virtio_mmio_rw(&d, VIRTIO_MMIO_CONFIG + off, cfg + off, 4, false);
		CHECK(memcmp(cfg, "myfs", 4) == 0);
		for (int i = 4; i < 36; i++)
			CHECKF(cfg[i] == 0, "byte %d is 0x%02x", i, cfg[i]);
		CHECK(cfg[36] == 1);
		virtio_fs_destroy(&d);
	}
	vfsd_kill(&v);
	ev_free(ev);
}

/* The device end to end: guest driver on MMIO, I/O thread, virtiofsd.
 * Checks the interrupt-status path (bit 0 set when virtiofsd signals),
 * reset (rings taken back), re-activation, and virtiofsd's death
 * (DEVICE_NEEDS_RESET and a config interrupt, nothing else stops). */
static void test_fs_device(void)
{
	struct kr_err err = { 0 };
	struct vfsd v = { 0 };
	struct virtio_dev d = { 0 };
	struct evloop *ev = ev_new(&err);
	int irq = new_eventfd();
	pthread_t th;
	uint64_t node = 0, deadline;
	uint32_t s;
	struct gq g = { .q = 1, .kick = mmio_kick, .wait = mmio_wait,
			.irq_fd = irq, .dev = &d, .event_idx = true,
			.require_irq = true };

	REQUIRE(ev);
	if (skip_why) {
		ev_free(ev);
		close(irq);
		SKIP("%s", skip_why);
	}
	vfsd_start(&v, "device");
	if (fs_create(&d, v.sock, "kataShared", ev, irq, &err) < 0) {
		printf("#   %s\n", err.msg);
		vfsd_dump_log(&v);
		CHECK(0);
		goto out_nodev;
	}
	REQUIRE(pthread_create(&th, NULL, ev_thread, ev) == 0);

	s = driver_init(&d, ~0ull);
	CHECKF(s == 15, "status %u after DRIVER_OK", s);
	settle(&d, irq);
	CHECK(fuse_init(&g, 1));
	CHECK(g.isr_seen & VIRTIO_MMIO_INT_VRING);
	CHECK(fuse_lookup(&g, 2, &node));
	CHECK(node && fuse_open_read(&g, 3, node));

	/* Reset: rings go back, interrupt status clears. */
	mmio_write(&d, VIRTIO_MMIO_STATUS, 0);
	CHECK(mmio_read(&d, VIRTIO_MMIO_STATUS) == 0);
	CHECK(mmio_read(&d, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);

	/* The driver comes back (a guest reboot, a module reload): fresh
	 * rings from index 0, same FUSE session in virtiofsd. */
	g.avail_idx = g.used_idx = 0;
	g.isr_seen = 0;
	s = driver_init(&d, BIT(VIRTIO_F_VERSION_1));
	CHECKF(s == 15, "status %u after the second DRIVER_OK", s);
	settle(&d, irq);
	node = 0;
	CHECK(fuse_lookup(&g, 10, &node) && node);
	CHECK(g.isr_seen & VIRTIO_MMIO_INT_VRING);

	/* virtiofsd dies: the device asks for a reset and tells the guest
	 * with a configuration interrupt; the VMM goes on. */
	while (wait_readable(irq, now_ms()))
		;
	mmio_write(&d, VIRTIO_MMIO_INTERRUPT_ACK, 3);
	vfsd_kill(&v);
	deadline = now_ms() + WAIT_MS;
	while (!(mmio_read(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET) &&
	       now_ms() < deadline)
		sleep_ms(5);
	CHECK(mmio_read(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK(mmio_read(&d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CHECK(wait_readable(irq, now_ms() + 1000));
	/* And a new DRIVER_OK is refused cleanly. */
	s = driver_init(&d, BIT(VIRTIO_F_VERSION_1));
	CHECK(s & VIRTIO_CONFIG_S_NEEDS_RESET);

	ev_stop(ev);
	pthread_join(th, NULL);
	virtio_fs_destroy(&d);
out_nodev:
	vfsd_kill(&v);
	ev_free(ev);
	close(irq);
}

/* ---- a scripted fake virtiofsd for virtio_fs_create ---------------------- */

struct script {
	int lfd;
	uint64_t features, protocol, queues;
};

/* Answer GET_* from the script and NEED_REPLY with 0, until EOF. */
static void *fake_backend(void *arg)
{
	struct script *sc = arg;
	int fd = accept4(sc->lfd, NULL, NULL, SOCK_CLOEXEC);
	struct hdr h;
	uint8_t p[512];
	int fds[8], nfds;

	if (fd < 0)
		return NULL;
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		uint64_t v = 0;

		if (poll(&pf, 1, 5000) <= 0 ||
		    peer_recv(fd, &h, p, sizeof(p), fds, &nfds) < 0)
			break;
		for (int k = 0; k < nfds; k++)
			close(fds[k]);
		if (h.request == VHOST_USER_GET_FEATURES)
			v = sc->features;
		else if (h.request == VHOST_USER_GET_PROTOCOL_FEATURES)
			v = sc->protocol;
		else if (h.request == VHOST_USER_GET_QUEUE_NUM)
			v = sc->queues;
		else if (!(h.flags & VHOST_USER_FLAG_NEED_REPLY))
			continue;
		peer_u64(fd, h.request, v);
	}
	close(fd);
	return NULL;
}

static int fake_create(struct script *sc, struct virtio_dev *d,
		       struct evloop *ev, struct kr_err *err)
{
	char path[160];
	pthread_t th;
	int rc;

	snprintf(path, sizeof(path), "%s/fake.sock", tmpdir);
	sc->lfd = listen_on(path);
	fcntl(sc->lfd, F_SETFD, FD_CLOEXEC);
	if (pthread_create(&th, NULL, fake_backend, sc) != 0)
		abort();
	rc = fs_create(d, path, "fake", ev, -1, err);
	if (rc == 0)
		virtio_fs_destroy(d);	/* closes: the thread sees EOF */
	pthread_join(th, NULL);
	close(sc->lfd);
	return rc;
}

static void test_fs_backend_checks(void)
{
	struct kr_err err = { 0 };
	struct evloop *ev = ev_new(&err);
	struct virtio_dev d = { 0 };
	struct script sc = { .features = BIT(30) | BIT(VIRTIO_F_INDIRECT_DESC),
			     .protocol = BIT(VU_PROTO_F_MQ), .queues = 2 };

	REQUIRE(ev);
	CHECK(fake_create(&sc, &d, ev, &err) < 0);
	CHECK_CONTAINS(err.msg, "virtio-fs: virtiofsd at ");
	CHECK_CONTAINS(err.msg, "back-end features 0x50000000 lack VIRTIO_F_VERSION_1");

	sc.features = BIT(30) | BIT(VIRTIO_F_VERSION_1);
	sc.queues = 1;
	CHECK(fake_create(&sc, &d, ev, &err) < 0);
	CHECK_CONTAINS(err.msg, "back-end has 1 queues, virtio-fs needs 2");

	/* No protocol features at all (no bit 30): fine too. */
	sc.features = BIT(VIRTIO_F_VERSION_1);
	CHECKF(fake_create(&sc, &d, ev, &err) == 0, "%s", err.msg);
	ev_free(ev);
}

static void test_fs_features_masked(void)
{
	struct kr_err err = { 0 };
	char path[160];
	struct evloop *ev = ev_new(&err);
	struct virtio_dev d = { 0 };
	struct script sc = { .features = ~0ull, .protocol = ~0ull, .queues = 8 };
	pthread_t th;

	REQUIRE(ev);
	snprintf(path, sizeof(path), "%s/fake2.sock", tmpdir);
	sc.lfd = listen_on(path);
	fcntl(sc.lfd, F_SETFD, FD_CLOEXEC);
	REQUIRE(pthread_create(&th, NULL, fake_backend, &sc) == 0);
	CHECKF(fs_create(&d, path, "fake", ev, -1, &err) == 0, "%s", err.msg);
	if (d.ops) {
		CHECK(d.device_features == (BIT(VIRTIO_F_VERSION_1) |
					    BIT(VIRTIO_F_INDIRECT_DESC) |
					    BIT(VIRTIO_F_EVENT_IDX)));
		virtio_fs_destroy(&d);
	}
	pthread_join(th, NULL);
	close(sc.lfd);
	ev_free(ev);
}

/* ---- set-up and the leftovers check -------------------------------------- */

/* No virtiofsd of ours still running, no child left to reap. */
static void test_nothing_left(void)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int found = 0;

	REQUIRE(dir);
	while ((e = readdir(dir))) {
		char p[300], cmd[4096];
		int fd;
		ssize_t n;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/cmdline", e->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		cmd[n] = 0;
		if (strstr(cmd, "virtiofsd") && strstr(cmd, shared_dir)) {
			printf("#   still running: pid %s: %s\n", e->d_name, cmd);
			found++;
		}
	}
	closedir(dir);
	CHECK(found == 0);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
}

static int setup(void)
{
	struct kr_err err;
	char path[200];
	int fd;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kr-vhu-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(shared_dir, sizeof(shared_dir), "%s/shared", tmpdir);
	snprintf(path, sizeof(path), "%s/%s", shared_dir, file_name);
	if (mkdir(shared_dir, 0755) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, file_data, strlen(file_data)) != (ssize_t)strlen(file_data))
		return -1;
	fchmod(fd, 0640);
	close(fd);

	/* Guest RAM the way the VMM makes it: a memfd, MAP_SHARED, so that
	 * virtiofsd can map it too. */
	memfd = memfd_create("kr-test-guest-ram", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, RAM_SIZE) < 0)
		return -1;
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (ram == MAP_FAILED)
		return -1;
	gm_init(&gm);
	if (gm_add_region(&gm, 0, RAM_SIZE, ram, &err) < 0)
		return -1;
	for (unsigned i = 0; i < GM_MAX_REGIONS; i++)
		backing.fd[i] = -1;
	backing.fd[0] = memfd;
	backing.offset[0] = 0;

	if (access(VIRTIOFSD, X_OK) != 0)
		skip_why = "virtiofsd not installed (" VIRTIOFSD
			   ", Debian package qemu-system-common)";
	else if (geteuid() != 0)
		skip_why = "virtiofsd's chroot sandbox needs root";
	return 0;
}

int main(void)
{
	struct kr_err err;

	/* The default action: a SIGPIPE would kill the test. */
	signal(SIGPIPE, SIG_DFL);
	if (setup() < 0) {
		printf("Bail out! set-up: %s\n", strerror(errno));
		return 1;
	}
	KR_TEST(test_connect_errors);
	KR_TEST(test_listener_never_answers);
	KR_TEST(test_fake_wrong_size);
	KR_TEST(test_fake_oversized);
	KR_TEST(test_fake_wrong_request);
	KR_TEST(test_fake_bad_flags);
	KR_TEST(test_fake_no_reply);
	KR_TEST(test_fake_eof);
	KR_TEST(test_fake_fd_in_reply);
	KR_TEST(test_fake_handshake_ack);
	KR_TEST(test_fake_ring_messages);
	KR_TEST(test_virtiofsd_session);
	KR_TEST(test_virtiofsd_killed);
	KR_TEST(test_fs_bad_tags);
	KR_TEST(test_fs_config);
	KR_TEST(test_fs_device);
	KR_TEST(test_fs_backend_checks);
	KR_TEST(test_fs_features_masked);
	KR_TEST(test_nothing_left);

	munmap(ram, RAM_SIZE);
	close(memfd);
	if (kr_rm_rf(tmpdir, &err) < 0)
		printf("# cleanup %s: %s\n", tmpdir, err.msg);
	return kr_test_done();
}
