/* vhost-user front-end (vhost_user.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kr/util.h"
#include "vhost_user.h"

#define BIT(n) (1ull << (n))
#define VU_MAX_FDS VU_MAX_REGIONS

struct vhost_user {
	int fd;
	int timeout_ms;
	bool broken;
	char why[KR_ERR_MSG_MAX];	/* the failure that broke the connection */
	uint64_t features;	/* the back-end's GET_FEATURES */
	uint64_t acked;		/* the last SET_FEATURES */
	uint64_t protocol;	/* negotiated protocol features */
};

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
};

struct vu_state {
	uint32_t index;
	uint32_t num;
};

/* struct vhost_vring_addr: note the order desc, used, avail. */
struct vu_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vu_mem_wire {
	uint32_t nregions;
	uint32_t padding;
	struct {
		uint64_t gpa;
		uint64_t size;
		uint64_t uaddr;
		uint64_t mmap_offset;
	} r[VU_MAX_REGIONS];
};

_Static_assert(sizeof(struct vu_hdr) == VHOST_USER_HDR_SIZE, "header");
_Static_assert(sizeof(struct vu_addr) == 40, "vring address");
_Static_assert(sizeof(struct vu_mem_wire) == 8 + 32 * VU_MAX_REGIONS, "memory table");

/* Largest request payload sent: the memory table. */
#define VU_MAX_REQ_PAYLOAD sizeof(struct vu_mem_wire)

static const char *const req_names[] = {
	[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
	[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
	[VHOST_USER_SET_OWNER] = "SET_OWNER",
	[VHOST_USER_RESET_OWNER] = "RESET_OWNER",
	[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
	[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
	[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
	[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
	[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
	[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
};

const char *vu_request_name(uint32_t req)
{
	if (req < KR_ARRAY_SIZE(req_names) && req_names[req])
		return req_names[req];
	return "UNKNOWN";
}

/* ---- connection state ---------------------------------------------------- */

/* Record why the stream can no longer be trusted; returns -1. */
static int mark_broken(struct vhost_user *vu, const struct kr_err *err)
{
	if (!vu->broken)
		memcpy(vu->why, err->msg, sizeof(vu->why));
	vu->broken = true;
	return -1;
}

static int check_usable(const struct vhost_user *vu, const char *name,
			struct kr_err *err)
{
	if (!vu->broken)
		return 0;
	return kr_err_set(err, KR_UNAVAILABLE,
			  "vhost-user %s: connection unusable after an earlier failure (%s)",
			  name, vu->why);
}

static int timed_out(const struct vhost_user *vu, const char *name,
		     const char *what, struct kr_err *err)
{
	kr_err_set(err, KR_DEADLINE_EXCEEDED, "vhost-user %s: %s within %d ms",
		   name, what, vu->timeout_ms);
	err->errnum = ETIMEDOUT;
	return -1;
}

/* Wait until fd is ready for events or the deadline (kr_now_ms) passes:
 * 1 ready (or in error: the next call says which), 0 timed out, -1 error. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t now = kr_now_ms();
		int r;

		if (now >= deadline)
			return 0;
		r = poll(&p, 1, deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now));
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* ---- sending ------------------------------------------------------------- */

static void attach_fds(struct msghdr *m, void *ctl, size_t ctl_size,
		       const int *fds, unsigned nfds)
{
	struct cmsghdr *c;

	m->msg_control = ctl;
	m->msg_controllen = ctl_size;
	c = CMSG_FIRSTHDR(m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	m->msg_controllen = CMSG_SPACE(nfds * sizeof(int));
}

/* Send header and payload with one sendmsg where possible: libvhost-user
 * reads the payload with a single read() right after the header.  The fds
 * travel with the first byte. */
static int send_all(struct vhost_user *vu, const char *name, const uint8_t *buf,
		    size_t len, const int *fds, unsigned nfds, uint64_t deadline,
		    struct kr_err *err)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	size_t off = 0;

	while (off < len) {
		struct iovec iov = { (void *)(buf + off), len - off };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;
		int r;

		if (off == 0 && nfds)
			attach_fds(&m, ctl.buf, sizeof(ctl.buf), fds, nfds);
		n = sendmsg(vu->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			if (errno == EPIPE || errno == ECONNRESET)
				return kr_err_errno(err, errno,
						    "vhost-user %s: back-end closed the connection",
						    name);
			return kr_err_errno(err, errno, "vhost-user %s: send", name);
		}
		r = wait_fd(vu->fd, POLLOUT, deadline);
		if (r == 0)
			return timed_out(vu, name, "could not send the request", err);
		if (r < 0)
			return kr_err_sys(err, "vhost-user %s: poll", name);
	}
	return 0;
}

/* ---- receiving ----------------------------------------------------------- */

/* Close every fd that came with m; returns how many there were. */
static unsigned drop_fds(struct msghdr *m)
{
	unsigned n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		size_t nb;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nb = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nb; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			close(fd);
			n++;
		}
	}
	return n;
}

/* Read exactly len bytes of a reply before the deadline.  Replies to the
 * requests this front-end sends carry no fds: any that come are closed
 * and the reply is refused. */
static int recv_exact(struct vhost_user *vu, const char *name, void *buf,
		      size_t len, uint64_t deadline, struct kr_err *err)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	size_t off = 0;

	while (off < len) {
		struct iovec iov = { (uint8_t *)buf + off, len - off };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf) };
		ssize_t n = recvmsg(vu->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		int r;

		if (n > 0) {
			unsigned nfds = drop_fds(&m);

			if (nfds || (m.msg_flags & MSG_CTRUNC))
				return kr_err_set(err, KR_INTERNAL,
						  "vhost-user %s: reply carried %u file descriptor(s)%s",
						  name, nfds,
						  m.msg_flags & MSG_CTRUNC ? " (truncated)" : "");
			off += (size_t)n;
			continue;
		}
		if (n == 0) {
			kr_err_set(err, KR_UNAVAILABLE,
				   "vhost-user %s: back-end closed the connection%s", name,
				   off ? " in the middle of the reply" : "");
			err->errnum = EPIPE;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return kr_err_errno(err, errno, "vhost-user %s: receive", name);
		r = wait_fd(vu->fd, POLLIN, deadline);
		if (r == 0)
			return timed_out(vu, name, off ? "incomplete reply" : "no reply", err);
		if (r < 0)
			return kr_err_sys(err, "vhost-user %s: poll", name);
	}
	return 0;
}

/* Read the reply to req: a header that matches in every field, then
 * exactly size bytes.  Sizes are checked before any payload is read. */
static int recv_reply(struct vhost_user *vu, uint32_t req, void *out,
		      uint32_t size, uint64_t deadline, struct kr_err *err)
{
	const char *name = vu_request_name(req);
	struct vu_hdr h;

	if (recv_exact(vu, name, &h, sizeof(h), deadline, err) < 0)
		return -1;
	if ((h.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
		return kr_err_set(err, KR_INTERNAL,
				  "vhost-user %s: reply version %u, expected %u", name,
				  h.flags & VHOST_USER_VERSION_MASK, VHOST_USER_VERSION);
	if (!(h.flags & VHOST_USER_FLAG_REPLY))
		return kr_err_set(err, KR_INTERNAL,
				  "vhost-user %s: reply flags 0x%x lack the reply bit",
				  name, h.flags);
	if (h.request != req)
		return kr_err_set(err, KR_INTERNAL,
				  "vhost-user %s: reply to request %u (%s), expected %u",
				  name, h.request, vu_request_name(h.request), req);
	if (h.size > VHOST_USER_MAX_PAYLOAD)
		return kr_err_set(err, KR_INTERNAL,
				  "vhost-user %s: reply size %u exceeds the maximum %u",
				  name, h.size, VHOST_USER_MAX_PAYLOAD);
	if (h.size != size)
		return kr_err_set(err, KR_INTERNAL,
				  "vhost-user %s: reply size %u, expected %u", name,
				  h.size, size);
	return recv_exact(vu, name, out, size, deadline, err);
}

/* ---- one request --------------------------------------------------------- */

/* Send req with payload and fds; then read a reply of reply_size bytes
 * into reply, or, without a reply and with REPLY_ACK negotiated, the
 * back-end's u64 status.  Transport and protocol errors break the
 * connection; a non-zero status does not. */
static int request(struct vhost_user *vu, uint32_t req, const void *payload,
		   uint32_t size, const int *fds, unsigned nfds, void *reply,
		   uint32_t reply_size, struct kr_err *err)
{
	const char *name = vu_request_name(req);
	uint8_t buf[VHOST_USER_HDR_SIZE + VU_MAX_REQ_PAYLOAD];
	bool ack = !reply && (vu->protocol & BIT(VU_PROTO_F_REPLY_ACK));
	struct vu_hdr h = { req, VHOST_USER_VERSION, size };
	struct kr_err local;
	uint64_t deadline, status = 0;

	if (!err)
		err = &local;
	if (check_usable(vu, name, err) < 0)
		return -1;
	if (size > VU_MAX_REQ_PAYLOAD || nfds > VU_MAX_FDS)
		return kr_err_set(err, KR_INTERNAL, "vhost-user %s: request too large", name);
	if (ack)
		h.flags |= VHOST_USER_FLAG_NEED_REPLY;
	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), payload, size);
	deadline = kr_now_ms() + (uint64_t)vu->timeout_ms;
	if (send_all(vu, name, buf, sizeof(h) + size, fds, nfds, deadline, err) < 0)
		return mark_broken(vu, err);
	if (reply) {
		if (recv_reply(vu, req, reply, reply_size, deadline, err) < 0)
			return mark_broken(vu, err);
		return 0;
	}
	if (!ack)
		return 0;
	if (recv_reply(vu, req, &status, sizeof(status), deadline, err) < 0)
		return mark_broken(vu, err);
	if (status)
		return kr_err_set(err, KR_INTERNAL,
				  "vhost-user %s: back-end reported failure (status %llu)",
				  name, (unsigned long long)status);
	return 0;
}

static int get_u64(struct vhost_user *vu, uint32_t req, uint64_t *v,
		   struct kr_err *err)
{
	return request(vu, req, NULL, 0, NULL, 0, v, sizeof(*v), err);
}

static int set_u64(struct vhost_user *vu, uint32_t req, uint64_t v,
		   const int *fds, unsigned nfds, struct kr_err *err)
{
	return request(vu, req, &v, sizeof(v), fds, nfds, NULL, 0, err);
}

static int set_state(struct vhost_user *vu, uint32_t req, unsigned index,
		     unsigned num, struct kr_err *err)
{
	struct vu_state s = { index, num };

	return request(vu, req, &s, sizeof(s), NULL, 0, NULL, 0, err);
}

/* ---- connection ---------------------------------------------------------- */

struct vhost_user *vu_attach(int fd, int timeout_ms, struct kr_err *err)
{
	struct vhost_user *vu;
	int fl = fcntl(fd, F_GETFL);

	/* Non-blocking: every wait is a poll() with the request's deadline. */
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		kr_err_sys(err, "vhost-user: set the socket non-blocking");
		close(fd);
		return NULL;
	}
	vu = kr_xcalloc(1, sizeof(*vu));
	vu->fd = fd;
	vu_set_timeout(vu, timeout_ms);
	return vu;
}

static int sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	return nanosleep(&ts, NULL);
}

/* A Unix stream connect on a non-blocking socket fails with EAGAIN when
 * the listener's backlog is full (it never returns EINPROGRESS): retry
 * that, and only that, until the deadline. */
static int connect_retry(int fd, const struct sockaddr_un *sa, const char *path,
			 int timeout_ms, struct kr_err *err)
{
	uint64_t deadline = kr_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return kr_err_sys(err, "vhost-user: connect to %s", path);
		if (kr_now_ms() >= deadline) {
			kr_err_set(err, KR_DEADLINE_EXCEEDED,
				   "vhost-user: connect to %s: back-end did not accept within %d ms",
				   path, timeout_ms);
			err->errnum = ETIMEDOUT;
			return -1;
		}
		sleep_ms(10);
	}
}

struct vhost_user *vu_connect(const char *path, int timeout_ms,
			      struct kr_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (timeout_ms <= 0)
		timeout_ms = VU_DEFAULT_TIMEOUT_MS;
	if (!path || !path[0] || strlen(path) >= sizeof(sa.sun_path)) {
		kr_err_set(err, KR_INVALID_ARGUMENT,
			   "vhost-user: socket path \"%s\" empty or longer than %zu bytes",
			   path ? path : "", sizeof(sa.sun_path) - 1);
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		kr_err_sys(err, "vhost-user: socket");
		return NULL;
	}
	if (connect_retry(fd, &sa, path, timeout_ms, err) < 0) {
		close(fd);
		return NULL;
	}
	return vu_attach(fd, timeout_ms, err);
}

void vu_close(struct vhost_user *vu)
{
	if (!vu)
		return;
	close(vu->fd);
	free(vu);
}

int vu_fd(const struct vhost_user *vu)
{
	return vu->fd;
}

bool vu_broken(const struct vhost_user *vu)
{
	return vu->broken;
}

void vu_set_timeout(struct vhost_user *vu, int timeout_ms)
{
	vu->timeout_ms = timeout_ms > 0 ? timeout_ms : VU_DEFAULT_TIMEOUT_MS;
}

int vu_check_alive(struct vhost_user *vu, struct kr_err *err)
{
	struct kr_err local;
	char c;
	ssize_t n;

	if (!err)
		err = &local;
	if (check_usable(vu, "connection", err) < 0)
		return -1;
	n = recv(vu->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == 0)
		kr_err_set(err, KR_UNAVAILABLE, "vhost-user: back-end closed the connection");
	else if (n > 0)
		kr_err_set(err, KR_INTERNAL,
			   "vhost-user: back-end sent data nobody asked for");
	else
		kr_err_sys(err, "vhost-user: connection lost");
	return mark_broken(vu, err);
}

/* ---- requests ------------------------------------------------------------ */

int vu_get_features(struct vhost_user *vu, uint64_t *features,
		    struct kr_err *err)
{
	return get_u64(vu, VHOST_USER_GET_FEATURES, features, err);
}

int vu_set_features(struct vhost_user *vu, uint64_t features,
		    struct kr_err *err)
{
	if (set_u64(vu, VHOST_USER_SET_FEATURES, features, NULL, 0, err) < 0)
		return -1;
	vu->acked = features;
	return 0;
}

int vu_get_protocol_features(struct vhost_user *vu, uint64_t *features,
			     struct kr_err *err)
{
	return get_u64(vu, VHOST_USER_GET_PROTOCOL_FEATURES, features, err);
}

/* Sent without NEED_REPLY (REPLY_ACK is not in force until it is set),
 * as QEMU does. */
int vu_set_protocol_features(struct vhost_user *vu, uint64_t features,
			     struct kr_err *err)
{
	if (set_u64(vu, VHOST_USER_SET_PROTOCOL_FEATURES, features, NULL, 0, err) < 0)
		return -1;
	vu->protocol = features;
	return 0;
}

int vu_get_queue_num(struct vhost_user *vu, uint64_t *num, struct kr_err *err)
{
	if (!(vu->protocol & BIT(VU_PROTO_F_MQ)))
		return kr_err_set(err, KR_FAILED_PRECONDITION,
				  "vhost-user GET_QUEUE_NUM: protocol feature MQ not negotiated");
	return get_u64(vu, VHOST_USER_GET_QUEUE_NUM, num, err);
}

int vu_set_owner(struct vhost_user *vu, struct kr_err *err)
{
	return request(vu, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL, 0, err);
}

int vu_handshake(struct vhost_user *vu, uint64_t want_protocol,
		 struct kr_err *err)
{
	uint64_t offered;

	if (vu_get_features(vu, &vu->features, err) < 0)
		return -1;
	if (vu->features & VHOST_USER_F_PROTOCOL_FEATURES_MASK) {
		if (vu_get_protocol_features(vu, &offered, err) < 0 ||
		    vu_set_protocol_features(vu, offered & want_protocol, err) < 0)
			return -1;
	}
	return vu_set_owner(vu, err);
}

uint64_t vu_features(const struct vhost_user *vu)
{
	return vu->features;
}

uint64_t vu_protocol_features(const struct vhost_user *vu)
{
	return vu->protocol;
}

/* ---- memory -------------------------------------------------------------- */

int vu_mem_regions(const struct guest_mem *gm, const struct vu_mem_backing *mem,
		   struct vu_mem_region out[VU_MAX_REGIONS], unsigned *n,
		   struct kr_err *err)
{
	if (gm->nr == 0 || gm->nr > VU_MAX_REGIONS)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "vhost-user: %u guest memory regions (1..%u supported)",
				  gm->nr, VU_MAX_REGIONS);
	for (unsigned i = 0; i < gm->nr; i++) {
		if (mem->fd[i] < 0)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "vhost-user: guest memory region %u (gpa 0x%llx) has no shared-memory fd",
					  i, (unsigned long long)gm->region[i].gpa);
		out[i] = (struct vu_mem_region){
			.gpa = gm->region[i].gpa,
			.size = gm->region[i].size,
			.hva = gm->region[i].host,
			.fd = mem->fd[i],
			.mmap_offset = mem->offset[i],
		};
	}
	*n = gm->nr;
	return 0;
}

int vu_set_mem_table(struct vhost_user *vu, const struct vu_mem_region *r,
		     unsigned n, struct kr_err *err)
{
	struct vu_mem_wire m = { .nregions = n };
	int fds[VU_MAX_REGIONS];

	if (n == 0 || n > VU_MAX_REGIONS)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "vhost-user SET_MEM_TABLE: %u regions (1..%u)", n,
				  VU_MAX_REGIONS);
	for (unsigned i = 0; i < n; i++) {
		if (r[i].fd < 0 || !r[i].size || !r[i].hva)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "vhost-user SET_MEM_TABLE: region %u needs an fd, a size and an address",
					  i);
		m.r[i].gpa = r[i].gpa;
		m.r[i].size = r[i].size;
		m.r[i].uaddr = (uintptr_t)r[i].hva;
		m.r[i].mmap_offset = r[i].mmap_offset;
		fds[i] = r[i].fd;
	}
	return request(vu, VHOST_USER_SET_MEM_TABLE, &m, 8 + 32 * n, fds, n,
		       NULL, 0, err);
}

/* ---- rings --------------------------------------------------------------- */

static int set_vring_fd(struct vhost_user *vu, uint32_t req, unsigned index,
			int fd, struct kr_err *err)
{
	uint64_t v = index;

	if (fd < 0)
		return set_u64(vu, req, v | VHOST_USER_VRING_NOFD, NULL, 0, err);
	return set_u64(vu, req, v, &fd, 1, err);
}

static int set_vring_addr(struct vhost_user *vu, const struct vu_vring *ring,
			  struct kr_err *err)
{
	struct vu_addr a = {
		.index = ring->index,
		.desc = (uintptr_t)ring->desc,
		.used = (uintptr_t)ring->used,
		.avail = (uintptr_t)ring->avail,
	};

	return request(vu, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0,
		       NULL, 0, err);
}

static int check_vring(const struct vu_vring *ring, struct kr_err *err)
{
	/* The ring index shares a u64 with the no-fd flag: 8 bits. */
	if (ring->index > 0xff)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "index %u above 255",
				  ring->index);
	if (!ring->num || ring->num > 32768 || (ring->num & (ring->num - 1)))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "size %u not a power of 2 in 1..32768", ring->num);
	if (!ring->desc || !ring->avail || !ring->used)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "ring address missing");
	return 0;
}

int vu_setup_vring(struct vhost_user *vu, const struct vu_vring *ring,
		   struct kr_err *err)
{
	unsigned i = ring->index;

	if (check_vring(ring, err) < 0 ||
	    set_state(vu, VHOST_USER_SET_VRING_NUM, i, ring->num, err) < 0 ||
	    set_state(vu, VHOST_USER_SET_VRING_BASE, i, ring->base, err) < 0 ||
	    set_vring_addr(vu, ring, err) < 0 ||
	    set_vring_fd(vu, VHOST_USER_SET_VRING_CALL, i, ring->call_fd, err) < 0 ||
	    set_vring_fd(vu, VHOST_USER_SET_VRING_KICK, i, ring->kick_fd, err) < 0)
		return kr_err_wrap(err, "ring %u", i);
	if ((vu->acked & VHOST_USER_F_PROTOCOL_FEATURES_MASK) &&
	    vu_enable_vring(vu, i, true, err) < 0)
		return kr_err_wrap(err, "ring %u", i);
	return 0;
}

int vu_enable_vring(struct vhost_user *vu, unsigned index, bool enable,
		    struct kr_err *err)
{
	return set_state(vu, VHOST_USER_SET_VRING_ENABLE, index, enable, err);
}

int vu_stop_vring(struct vhost_user *vu, unsigned index, uint16_t *base,
		  struct kr_err *err)
{
	struct vu_state s = { index, 0 }, r;
	struct kr_err local;

	if (!err)
		err = &local;
	if (request(vu, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL, 0, &r,
		    sizeof(r), err) < 0)
		return kr_err_wrap(err, "ring %u", index);
	/* A split ring's index is 16 bits; anything else is a confused
	 * back-end. */
	if (r.index != index || r.num > 0xffff) {
		kr_err_set(err, KR_INTERNAL,
			   "ring %u: vhost-user GET_VRING_BASE: reply for ring %u with base %u",
			   index, r.index, r.num);
		return mark_broken(vu, err);
	}
	if (base)
		*base = (uint16_t)r.num;
	return 0;
}
