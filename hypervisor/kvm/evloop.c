/* The VMM's I/O thread loop (evloop.h): epoll plus a table of handlers.
 *
 * Removal while events are pending: epoll may already have returned an event
 * for an fd a handler just removed (or closed and reused).  Each
 * registration gets a generation number stored in the epoll data; the loop
 * runs a handler only if the fd's current registration still has that
 * generation. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "evloop.h"

#define EV_MAX_FDS 4096		/* fds are small integers: direct table */
#define EV_BATCH 64

struct ev_slot {
	ev_fn fn;
	void *opaque;
	uint32_t gen;		/* 0 = free */
};

struct evloop {
	int epfd;
	int stopfd;		/* eventfd: ev_stop() wakes the loop */
	pthread_mutex_t lock;	/* guards slot[] and next_gen */
	uint32_t next_gen;
	atomic_int stop;	/* ev_stop() from any thread */
	struct ev_slot slot[EV_MAX_FDS];
};

struct evloop *ev_new(struct kr_err *err)
{
	struct evloop *ev = calloc(1, sizeof(*ev));
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = UINT64_MAX };

	if (!ev) {
		kr_err_set(err, KR_RESOURCE_EXHAUSTED, "evloop: out of memory");
		return NULL;
	}
	ev->epfd = epoll_create1(EPOLL_CLOEXEC);
	ev->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ev->epfd < 0 || ev->stopfd < 0 ||
	    epoll_ctl(ev->epfd, EPOLL_CTL_ADD, ev->stopfd, &e) < 0) {
		kr_err_errno(err, errno, "evloop: epoll/eventfd");
		ev_free(ev);
		return NULL;
	}
	pthread_mutex_init(&ev->lock, NULL);
	ev->next_gen = 1;
	return ev;
}

void ev_free(struct evloop *ev)
{
	if (!ev)
		return;
	if (ev->epfd >= 0)
		close(ev->epfd);
	if (ev->stopfd >= 0)
		close(ev->stopfd);
	free(ev);
}

static uint64_t ev_data(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int ev_add(struct evloop *ev, int fd, uint32_t events, ev_fn fn, void *opaque,
	   struct kr_err *err)
{
	struct epoll_event e = { .events = events };
	int rc = 0;

	if (fd < 0 || fd >= EV_MAX_FDS) {
		kr_err_set(err, KR_RESOURCE_EXHAUSTED,
			   "evloop: fd %d outside the table (max %d)", fd, EV_MAX_FDS);
		return -1;
	}
	pthread_mutex_lock(&ev->lock);
	if (ev->slot[fd].gen) {
		kr_err_set(err, KR_ALREADY_EXISTS, "evloop: fd %d already registered", fd);
		rc = -1;
		goto out;
	}
	if (++ev->next_gen == 0)
		ev->next_gen = 1;
	ev->slot[fd] = (struct ev_slot){ fn, opaque, ev->next_gen };
	e.data.u64 = ev_data(fd, ev->next_gen);
	if (epoll_ctl(ev->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		kr_err_errno(err, errno, "evloop: epoll_ctl ADD fd %d", fd);
		memset(&ev->slot[fd], 0, sizeof(ev->slot[fd]));
		rc = -1;
	}
out:
	pthread_mutex_unlock(&ev->lock);
	return rc;
}

int ev_mod(struct evloop *ev, int fd, uint32_t events, struct kr_err *err)
{
	struct epoll_event e = { .events = events };
	int rc = 0;

	pthread_mutex_lock(&ev->lock);
	if (fd < 0 || fd >= EV_MAX_FDS || !ev->slot[fd].gen) {
		kr_err_set(err, KR_NOT_FOUND, "evloop: fd %d not registered", fd);
		rc = -1;
	} else {
		e.data.u64 = ev_data(fd, ev->slot[fd].gen);
		if (epoll_ctl(ev->epfd, EPOLL_CTL_MOD, fd, &e) < 0) {
			kr_err_errno(err, errno, "evloop: epoll_ctl MOD fd %d", fd);
			rc = -1;
		}
	}
	pthread_mutex_unlock(&ev->lock);
	return rc;
}

void ev_del(struct evloop *ev, int fd)
{
	if (fd < 0 || fd >= EV_MAX_FDS)
		return;
	pthread_mutex_lock(&ev->lock);
	if (ev->slot[fd].gen) {
		epoll_ctl(ev->epfd, EPOLL_CTL_DEL, fd, NULL);
		memset(&ev->slot[fd], 0, sizeof(ev->slot[fd]));
	}
	pthread_mutex_unlock(&ev->lock);
}

int ev_run_once(struct evloop *ev, int timeout_ms)
{
	struct epoll_event evs[EV_BATCH];
	int n, ran = 0;

	n = epoll_wait(ev->epfd, evs, EV_BATCH, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++) {
		uint64_t d = evs[i].data.u64;
		int fd = (int)(uint32_t)d;
		uint32_t gen = (uint32_t)(d >> 32);
		struct ev_slot s;

		if (d == UINT64_MAX) {
			uint64_t v;

			if (read(ev->stopfd, &v, sizeof(v)) < 0) {
				/* Already drained: nothing to do. */
			}
			continue;
		}
		pthread_mutex_lock(&ev->lock);
		s = ev->slot[fd];
		pthread_mutex_unlock(&ev->lock);
		if (s.gen != gen)
			continue;	/* removed (or replaced) meanwhile */
		s.fn(s.opaque, fd, evs[i].events);
		ran++;
	}
	return ran;
}

void ev_run(struct evloop *ev)
{
	while (!atomic_load(&ev->stop))
		if (ev_run_once(ev, -1) < 0)
			break;
}

void ev_stop(struct evloop *ev)
{
	uint64_t one = 1;

	atomic_store(&ev->stop, 1);
	if (write(ev->stopfd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: a wake-up is pending anyway. */
	}
}
