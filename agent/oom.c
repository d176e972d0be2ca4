/* OOM events: one thread waits on every container's OOM notification fd
 * (epoll) and queues the id of each container that had an OOM kill, for
 * GetOOMEvent callers.  The queue is bounded: a flood of events drops the
 * oldest, never grows memory. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cgroup.h"
#include "kr/log.h"
#include "kr/util.h"

#define OOM_QUEUE 64

static int epfd = -1;
static char queue[OOM_QUEUE][AGENT_ID_MAX + 1];
static size_t q_head, q_len;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;

static void queue_push(const char *id)
{
	size_t slot;

	if (q_len == OOM_QUEUE) {	/* drop the oldest */
		q_head = (q_head + 1) % OOM_QUEUE;
		q_len--;
	}
	slot = (q_head + q_len) % OOM_QUEUE;
	snprintf(queue[slot], sizeof(queue[slot]), "%s", id);
	q_len++;
	pthread_cond_broadcast(&q_cond);
}

/* The epoll token is the container pointer; it is only dereferenced after
 * finding it, under a->lock, still in the table (then pinned). */
static struct container *find_live(struct agent *a, void *token)
{
	for (struct container *c = a->containers; c; c = c->next)
		if (c == token && !c->removed)
			return c;
	return NULL;
}

/* cgroup v1 signals the eventfd when the cgroup hits its limit, a moment
 * before the OOM killer has picked and counted its victim: look again for
 * a short while before deciding the wake-up was not an OOM kill. */
#define OOM_RECHECKS 20
#define OOM_RECHECK_US 10000

static uint64_t count_new_kills(struct container *c)
{
	uint64_t kills = 0;

	for (int i = 0; i < OOM_RECHECKS && kills == 0; i++) {
		struct kr_err err = { 0 };
		struct cgroup *cg = container_cg_get(c, NULL);
		int rc;

		if (!cg)
			break;
		rc = cgroup_oom_check(cg, &kills, &err);
		container_cg_put(c);
		if (rc < 0) {
			kr_warn("container %s: OOM check: %s", c->id, err.msg);
			break;
		}
		if (!kills)
			usleep(OOM_RECHECK_US);
	}
	return kills;
}

static void handle_event(struct agent *a, void *token)
{
	struct container *c;
	uint64_t kills;

	pthread_mutex_lock(&a->lock);
	c = find_live(a, token);
	if (c)
		c->refs++;
	pthread_mutex_unlock(&a->lock);
	if (!c)
		return;
	kills = count_new_kills(c);
	if (kills) {
		pthread_mutex_lock(&a->lock);
		c->oom_kills += kills;
		queue_push(c->id);
		pthread_mutex_unlock(&a->lock);
		kr_info("container %s: %llu OOM kill(s)", c->id, (unsigned long long)kills);
	}
	container_put(a, c);
}

static void *oom_main(void *arg)
{
	struct agent *a = arg;

	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(epfd, ev, 16, -1);

		if (n < 0 && errno != EINTR) {
			kr_error("OOM watcher: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++)
			handle_event(a, ev[i].data.ptr);
	}
	return NULL;
}

int oom_start(struct agent *a, struct kr_err *err)
{
	pthread_t t;
	int rc;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return kr_err_sys(err, "epoll_create1");
	rc = pthread_create(&t, NULL, oom_main, a);
	if (rc)
		return kr_err_errno(err, rc, "start OOM watcher");
	pthread_detach(t);
	return 0;
}

int oom_watch(struct agent *a, struct container *c, struct kr_err *err)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	int fd = cgroup_oom_fd(c->cg);

	if (fd < 0 || epfd < 0)
		return 0;	/* no OOM notification on this cgroup set-up */
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return kr_err_sys(err, "watch OOM events of %s", c->id);
	return 0;
}

void oom_unwatch(struct agent *a, struct container *c)
{
	int fd = c->cg ? cgroup_oom_fd(c->cg) : -1;

	if (fd >= 0 && epfd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}

void oom_next_event(struct agent *a, char id[AGENT_ID_MAX + 1],
		    unsigned timeout_ms)
{
	struct timespec deadline;

	kr_deadline_ms(&deadline, CLOCK_REALTIME, timeout_ms);
	id[0] = '\0';
	pthread_mutex_lock(&a->lock);
	while (q_len == 0) {
		if (pthread_cond_timedwait(&q_cond, &a->lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (q_len) {
		snprintf(id, AGENT_ID_MAX + 1, "%s", queue[q_head]);
		q_head = (q_head + 1) % OOM_QUEUE;
		q_len--;
	}
	pthread_mutex_unlock(&a->lock);
}
