/* The launch channel: see sync.h. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kr/util.h"
#include "sync.h"

int sync_send(int fd, uint32_t type, int32_t pid)
{
	struct sync_msg m = { .type = type, .pid = pid };
	ssize_t n;

	do {
		n = send(fd, &m, sizeof(m), MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(m) ? 0 : -1;
}

int sync_send_fd(int fd, uint32_t type, int passfd)
{
	struct sync_msg m = { .type = type };
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	ssize_t n;

	memset(u.buf, 0, sizeof(u.buf));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &passfd, sizeof(int));
	do {
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(m) ? 0 : -1;
}

void sync_fail(int fd, const struct kr_err *err, int status)
{
	struct sync_msg m = { .type = SYNC_ERROR, .errnum = err->errnum };

	memcpy(m.msg, err->msg, sizeof(m.msg));
	m.msg[sizeof(m.msg) - 1] = '\0';
	(void)!send(fd, &m, sizeof(m), MSG_NOSIGNAL);
	_exit(status);
}

static int wait_readable(int fd, uint64_t deadline_ms, struct kr_err *err)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int timeout = -1, rc;

		if (deadline_ms) {
			uint64_t now = kr_now_ms();

			if (now >= deadline_ms)
				return kr_err_set(err, KR_DEADLINE_EXCEEDED, "timed out");
			timeout = (int)(deadline_ms - now);
		}
		rc = poll(&pfd, 1, timeout);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return kr_err_sys(err, "poll");
		if (rc > 0)
			return 0;
	}
}

int sync_recv(int fd, struct sync_msg *m, int *passfd, uint64_t deadline_ms,
	      struct kr_err *err)
{
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	ssize_t n;

	if (passfd)
		*passfd = -1;
	if (wait_readable(fd, deadline_ms, err) < 0)
		return -1;
	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return kr_err_sys(err, "read launch channel");
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int got;

			memcpy(&got, CMSG_DATA(cm), sizeof(int));
			if (passfd && *passfd < 0)
				*passfd = got;
			else
				close(got);
		}
	}
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*m)) {
		if (passfd && *passfd >= 0) {
			close(*passfd);
			*passfd = -1;
		}
		return kr_err_set(err, KR_INTERNAL, "launch channel: short message (%zd bytes)", n);
	}
	m->msg[sizeof(m->msg) - 1] = '\0';
	return 1;
}
