/* Task events to containerd (spec section 4): ttrpc Forward calls to
 * $TTRPC_ADDRESS, service containerd.services.events.ttrpc.v1.Events.
 *
 * Handlers must never wait for containerd (it may be restarting, and it
 * may be the one calling us), so events_publish only packs the event and
 * queues it; one publisher thread delivers the queue in order over one
 * connection, reconnecting and retrying with growing delays (1 s, 2 s, ...)
 * as the Go shims do.  The queue is bounded: if containerd stays away, the
 * oldest events go first (CRI learns exits through Wait anyway). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"
#include "shim.h"

#define EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"
#define EVENTS_METHOD "Forward"
#define EVENT_TYPE_PREFIX "containerd.events."
#define EVENTS_QUEUE_MAX 4096
#define EVENTS_CALL_MS 5000
#define EVENTS_RETRIES 5
#define EVENT_TOPIC_MAX 64

struct event {
	struct event *next;
	char topic[EVENT_TOPIC_MAX];		/* for log lines */
	uint8_t *data;				/* packed ForwardRequest */
	size_t len;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* queue changed, stop requested, or idle */
	bool inited;
	bool running;			/* the publisher thread exists */
	bool stop;			/* flush: exit once the queue is empty */
	uint64_t deadline_ms;		/* flush: give up at (kr_now_ms) */
	struct event *head, *tail;
	size_t n;
	pthread_t thread;
	char path[PATH_MAX];		/* containerd's ttrpc socket */
	char *ns;
	struct ttrpc_client *client;	/* publisher thread only */
} ev = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- encoding ------------------------------------------------------------------ */

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(m);
	buf = kr_xcalloc(1, *len ? *len : 1);
	protobuf_c_message_pack(m, buf);
	return buf;
}

int events_encode(const char *namespace, const char *topic, const char *type,
		  const ProtobufCMessage *msg, const struct timespec *ts,
		  uint8_t **out, size_t *out_len)
{
	PB(ForwardRequest) req = PB_INIT(FORWARD_REQUEST);
	PB(Envelope) env = PB_INIT(ENVELOPE);
	PB(Timestamp) t = PB_INIT(TIMESTAMP);
	PB(Any) any = PB_INIT(ANY);
	char url[128];
	size_t vlen;

	*out = NULL;
	*out_len = 0;
	if (!namespace || !topic || topic[0] != '/' || !type || !*type || !msg || !ts ||
	    kr_snprintf(url, sizeof(url), EVENT_TYPE_PREFIX "%s", type) < 0)
		return -1;
	any.type_url = url;
	any.value.data = pack(msg, &vlen);
	any.value.len = vlen;
	t.seconds = ts->tv_sec;
	t.nanos = (int32_t)ts->tv_nsec;
	env.timestamp = &t;
	env.namespace_ = (char *)namespace;
	env.topic = (char *)topic;
	env.event = &any;
	req.envelope = &env;
	*out = pack(&req.base, out_len);
	free(any.value.data);
	return 0;
}

/* ---- delivery (publisher thread) ------------------------------------------------- */

static void disconnect(void)
{
	ttrpc_client_free(ev.client);
	ev.client = NULL;
}

static int connect_publisher(struct kr_err *err)
{
	int fd;

	if (ev.client)
		return 0;
	fd = kr_unix_connect(ev.path, err);
	if (fd < 0)
		return -1;
	ev.client = ttrpc_client_new(fd, err);	/* closes fd on failure */
	return ev.client ? 0 : -1;
}

/* ms left for the next call: 5 s, less when a flush deadline is near;
 * 0 = past the deadline, give up. */
static int call_timeout(void)
{
	uint64_t now = kr_now_ms(), deadline;

	pthread_mutex_lock(&ev.lock);
	deadline = ev.deadline_ms;
	pthread_mutex_unlock(&ev.lock);
	if (!deadline)
		return EVENTS_CALL_MS;
	if (now >= deadline)
		return 0;
	return deadline - now < EVENTS_CALL_MS ? (int)(deadline - now) : EVENTS_CALL_MS;
}

/* Sleep ms without holding the lock for publishers (the wait releases
 * it); cut short by a flush deadline.  Returns false if past it. */
static bool backoff(unsigned ms)
{
	uint64_t until = kr_now_ms() + ms;
	bool ok = true;

	pthread_mutex_lock(&ev.lock);
	for (;;) {
		uint64_t now = kr_now_ms(), end = until;
		struct timespec ts;

		if (ev.deadline_ms && ev.deadline_ms < end)
			end = ev.deadline_ms;
		if (now >= end) {
			ok = !ev.deadline_ms || now < ev.deadline_ms;
			break;
		}
		kr_deadline_ms(&ts, CLOCK_MONOTONIC, (unsigned)(end - now));
		pthread_cond_timedwait(&ev.cond, &ev.lock, &ts);
	}
	pthread_mutex_unlock(&ev.lock);
	return ok;
}

/* containerd answered and refused the event: sending it again would get
 * the same answer.  (Transport failures carry an errno or UNAVAILABLE.) */
static bool rejected(const struct kr_err *err)
{
	return err->errnum == 0 &&
	       (err->code == KR_INVALID_ARGUMENT || err->code == KR_NOT_FOUND ||
		err->code == KR_ALREADY_EXISTS || err->code == KR_PERMISSION_DENIED ||
		err->code == KR_FAILED_PRECONDITION || err->code == KR_UNIMPLEMENTED);
}

static void deliver(const struct event *e)
{
	struct kr_err err = { 0 };
	int tries = 0, timeout;

	while ((timeout = call_timeout()) > 0) {
		bool reused = ev.client != NULL;

		if (connect_publisher(&err) == 0 &&
		    ttrpc_client_call(ev.client, EVENTS_SERVICE, EVENTS_METHOD, e->data, e->len,
				      NULL, NULL, timeout, &err) == 0) {
			kr_debug("event %s forwarded", e->topic);
			return;
		}
		if (ev.client && rejected(&err))
			break;
		disconnect();
		/* A connection that worked before may just have been closed by
		 * a containerd restart: reconnect at once, once. */
		if (reused)
			continue;
		if (++tries > EVENTS_RETRIES)
			break;
		kr_debug("event %s: %s; retry %d in %d s", e->topic, err.msg, tries, tries);
		if (!backoff((unsigned)tries * 1000))
			break;
	}
	kr_warn("event %s dropped: %s", e->topic,
		err.msg[0] ? err.msg : "no time left to deliver it");
}

static void free_event(struct event *e)
{
	free(e->data);
	free(e);
}

/* Lock held.  After the flush deadline: what is left is dropped. */
static void drop_queue(void)
{
	size_t n = ev.n;

	while (ev.head) {
		struct event *e = ev.head;

		ev.head = e->next;
		free_event(e);
	}
	ev.tail = NULL;
	ev.n = 0;
	if (n)
		kr_warn("%zu events dropped: containerd did not take them in time", n);
}

static void *publisher(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ev.lock);
	for (;;) {
		struct event *e;

		while (!ev.head && !ev.stop)
			pthread_cond_wait(&ev.cond, &ev.lock);
		if (ev.stop && ev.deadline_ms && kr_now_ms() >= ev.deadline_ms)
			drop_queue();
		if (!ev.head)
			break;		/* stopped, and nothing left */
		e = ev.head;
		ev.head = e->next;
		if (!ev.head)
			ev.tail = NULL;
		ev.n--;
		pthread_mutex_unlock(&ev.lock);
		deliver(e);
		free_event(e);
		pthread_mutex_lock(&ev.lock);
	}
	pthread_mutex_unlock(&ev.lock);
	disconnect();
	return NULL;
}

/* ---- API --------------------------------------------------------------------------- */

void events_init(const char *ttrpc_address, const char *namespace)
{
	pthread_condattr_t ca;
	const char *path = ttrpc_address;
	int rc;

	pthread_mutex_lock(&ev.lock);
	if (ev.inited)
		goto out;
	ev.inited = true;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ev.cond, &ca);
	pthread_condattr_destroy(&ca);
	ev.ns = kr_xstrdup(namespace ? namespace : "");
	if (path && !strncmp(path, "unix://", 7))
		path += 7;
	if (!path || !*path) {
		kr_info("events: no TTRPC_ADDRESS: task events are not published");
		goto out;
	}
	if (kr_snprintf(ev.path, sizeof(ev.path), "%s", path) < 0) {
		kr_warn("events: TTRPC_ADDRESS is too long: task events are not published");
		goto out;
	}
	rc = pthread_create(&ev.thread, NULL, publisher, NULL);
	if (rc)
		kr_warn("events: start the publisher: %s: task events are not published",
			strerror(rc));
	else
		ev.running = true;
out:
	pthread_mutex_unlock(&ev.lock);
}

void events_publish(const char *topic, const char *type, const ProtobufCMessage *msg)
{
	struct event *e;
	struct timespec now;

	pthread_mutex_lock(&ev.lock);
	if (!ev.running || ev.stop) {
		pthread_mutex_unlock(&ev.lock);
		kr_debug("event %s (%s) not published: no publisher", topic, type);
		return;
	}
	pthread_mutex_unlock(&ev.lock);

	e = kr_xcalloc(1, sizeof(*e));
	snprintf(e->topic, sizeof(e->topic), "%s", topic ? topic : "");
	/* The time the event happened, not when containerd got it. */
	clock_gettime(CLOCK_REALTIME, &now);
	if (events_encode(ev.ns, topic, type, msg, &now, &e->data, &e->len) < 0) {
		kr_warn("event %s (%s): cannot encode it", e->topic, type ? type : "?");
		free(e);
		return;
	}

	pthread_mutex_lock(&ev.lock);
	if (ev.n >= EVENTS_QUEUE_MAX) {
		struct event *old = ev.head;

		ev.head = old->next;
		if (!ev.head)
			ev.tail = NULL;
		ev.n--;
		kr_warn("events: %d queued, containerd is not taking them: dropped %s",
			EVENTS_QUEUE_MAX, old->topic);
		free_event(old);
	}
	if (ev.tail)
		ev.tail->next = e;
	else
		ev.head = e;
	ev.tail = e;
	ev.n++;
	pthread_cond_broadcast(&ev.cond);
	pthread_mutex_unlock(&ev.lock);
}

void events_flush(int timeout_ms)
{
	pthread_mutex_lock(&ev.lock);
	if (!ev.running || ev.stop) {
		pthread_mutex_unlock(&ev.lock);
		return;
	}
	ev.stop = true;
	ev.deadline_ms = kr_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	if (!ev.deadline_ms)
		ev.deadline_ms = 1;	/* 0 means "no deadline" */
	pthread_cond_broadcast(&ev.cond);
	pthread_mutex_unlock(&ev.lock);
	/* The publisher honours the deadline in every call and sleep, so
	 * this returns at most about timeout_ms from now. */
	pthread_join(ev.thread, NULL);
	pthread_mutex_lock(&ev.lock);
	ev.running = false;
	pthread_mutex_unlock(&ev.lock);
}
