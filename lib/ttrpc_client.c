/* ttrpc client: unary calls multiplexed on one connection.  See
 * include/kr/ttrpc.h.
 *
 * Each call puts a slot (on its own stack) in the pending table under a new
 * odd stream id, sends its Request and waits on the slot's condition
 * variable until the reader thread hands it the Response frame, the
 * connection dies, or the deadline passes.  A caller that gives up takes its
 * slot out of the table, so the reader drops a late response as it drops one
 * for an id it never issued.  The peer may be a compromised guest: the fd is
 * non-blocking so that sends honour the call's deadline too, frame lengths
 * are checked before anything is allocated, and a peer that breaks the
 * framing loses the connection: every pending and later call then fails with
 * UNAVAILABLE. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kr/ttrpc.h"
#include "kr/util.h"

#define CLOSED_MSG "connection to agent closed"

struct pending {
	struct pending *next;
	uint32_t stream_id;
	bool done;
	bool failed;		/* the connection died: see client->reason */
	pthread_cond_t cv;
	uint8_t *data;		/* the Response frame, once done */
	size_t len;
};

struct ttrpc_client {
	int fd;
	int wake[2];		/* self-pipe that stops the reader */
	pthread_t reader;
	pthread_condattr_t cattr;	/* CLOCK_MONOTONIC */

	pthread_mutex_t lock;	/* protects everything below */
	bool writing;		/* a sender owns the fd */
	pthread_cond_t write_cv;	/* writing dropped to false */
	struct pending *pending;
	uint32_t next_id;
	unsigned callers;	/* threads inside ttrpc_client_call */
	pthread_cond_t idle;	/* callers dropped to 0 */
	bool closed;
	char reason[KR_ERR_MSG_MAX];	/* why it closed, "" for plain EOF */
};

static void ts_from_ns(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

static int closed_err(struct ttrpc_client *c, struct kr_err *err)
{
	if (c->reason[0])
		return kr_err_set(err, KR_UNAVAILABLE, CLOSED_MSG ": %s",
				  c->reason);
	return kr_err_set(err, KR_UNAVAILABLE, CLOSED_MSG);
}

/* ---- pending table (all under c->lock) --------------------------------- */

static struct pending *pending_find(struct ttrpc_client *c, uint32_t id)
{
	for (struct pending *p = c->pending; p; p = p->next)
		if (p->stream_id == id)
			return p;
	return NULL;
}

static void pending_unlink(struct ttrpc_client *c, struct pending *slot)
{
	for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
		if (*pp == slot) {
			*pp = slot->next;
			return;
		}
	}
}

/* Odd ids from 1, +2 per call; after 2^31 calls the counter wraps, so skip
 * an id that a very long call may still hold. */
static uint32_t pending_new_id(struct ttrpc_client *c)
{
	uint32_t id;

	do {
		id = c->next_id;
		c->next_id += 2;
	} while (pending_find(c, id));
	return id;
}

/* The connection is gone: fail everything now and later. */
static void client_fail_all(struct ttrpc_client *c, const char *reason)
{
	if (!c->closed && reason)
		snprintf(c->reason, sizeof(c->reason), "%s", reason);
	c->closed = true;
	while (c->pending) {
		struct pending *p = c->pending;

		c->pending = p->next;
		p->done = true;
		p->failed = true;
		pthread_cond_signal(&p->cv);
	}
}

/* ---- reader thread ----------------------------------------------------- */

static void client_deliver(struct ttrpc_client *c, uint32_t id, uint8_t *data,
			   size_t len)
{
	struct pending *p;

	pthread_mutex_lock(&c->lock);
	p = pending_find(c, id);
	if (p) {
		pending_unlink(c, p);
		p->data = data;
		p->len = len;
		p->done = true;
		pthread_cond_signal(&p->cv);
		data = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(data);	/* abandoned or never issued: dropped */
}

static void *client_reader(void *arg)
{
	struct ttrpc_client *c = arg;
	const char *reason = "";
	struct kr_err err;

	for (;;) {
		struct ttrpc_hdr h;
		uint8_t *data;
		int rc = ttrpc_read_frame(c->fd, c->wake[0], &h, &data, &err);

		if (rc == 0)
			break;
		if (rc < 0) {
			/* Oversized frame: its data stays unread, so the
			 * stream cannot be resynchronised. */
			if (err.code != KR_CANCELED)
				reason = err.msg;
			break;
		}
		if (h.type != TTRPC_RESPONSE) {
			free(data);	/* 1.2 streaming frames: not ours */
			continue;
		}
		client_deliver(c, h.stream_id, data, h.length);
	}
	pthread_mutex_lock(&c->lock);
	client_fail_all(c, reason);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- calls ------------------------------------------------------------- */

/* Senders take turns through a flag and a condition variable rather than a
 * mutex so that waiting for the turn honours the deadline too (a timed
 * mutex lock on CLOCK_MONOTONIC is glibc-only and unknown to sanitizers). */
static int write_begin(struct ttrpc_client *c, uint64_t deadline_ns)
{
	struct timespec ts;
	int rc = 0;

	ts_from_ns(&ts, deadline_ns);
	pthread_mutex_lock(&c->lock);
	while (c->writing && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&c->write_cv, &c->lock, &ts);
	if (c->writing) {
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	c->writing = true;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void write_end(struct ttrpc_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->writing = false;
	pthread_cond_signal(&c->write_cv);
	pthread_mutex_unlock(&c->lock);
}

static int client_send(struct ttrpc_client *c, uint32_t id,
		       const uint8_t *buf, size_t len, uint64_t deadline_ns,
		       struct kr_err *err)
{
	int rc;

	if (write_begin(c, deadline_ns) < 0)
		return kr_err_errno(err, ETIMEDOUT,
				    "send request: connection busy");
	rc = ttrpc_write_frame_deadline(c->fd, id, TTRPC_REQUEST, buf, len,
					deadline_ns, err);
	write_end(c);
	if (rc == -2) {
		/* Half a frame went out: nothing can follow it. */
		pthread_mutex_lock(&c->lock);
		client_fail_all(c, "a request was cut off mid-frame");
		pthread_mutex_unlock(&c->lock);
		shutdown(c->fd, SHUT_RDWR);
	}
	return rc < 0 ? -1 : 0;
}

/* Wait for the slot until the deadline; returns with c->lock held and the
 * slot out of the table. */
static void call_wait(struct ttrpc_client *c, struct pending *slot,
		      uint64_t deadline_ns)
{
	struct timespec ts;

	ts_from_ns(&ts, deadline_ns);
	pthread_mutex_lock(&c->lock);
	while (!slot->done) {
		if (pthread_cond_timedwait(&slot->cv, &c->lock, &ts) == ETIMEDOUT)
			break;
	}
	if (!slot->done)
		pending_unlink(c, slot);
}

/* gRPC codes are 1..16; a peer sending anything else gets UNKNOWN. */
static int peer_code(int32_t code)
{
	return code > 0 && code <= 16 ? code : KR_UNKNOWN;
}

/* Turn a Response frame into the call's result; takes ownership of data. */
static int call_result(uint8_t *data, size_t len, const char *service,
		       const char *method, uint8_t **resp, size_t *resp_len,
		       struct kr_err *err)
{
	struct ttrpc_response r;
	struct kr_err derr;
	int rc = -1;

	if (ttrpc_response_decode(data, len, &r, &derr) < 0) {
		kr_err_set(err, KR_INTERNAL, "%s/%s: bad response: %s", service,
			   method, derr.msg);
	} else if (r.code != 0) {
		int n = r.message_len < KR_ERR_MSG_MAX ? (int)r.message_len
						       : KR_ERR_MSG_MAX - 1;

		if (n)
			kr_err_set(err, peer_code(r.code), "%.*s", n, r.message);
		else
			kr_err_set(err, peer_code(r.code), "%s",
				   kr_code_name(peer_code(r.code)));
	} else {
		/* Reuse the frame buffer: the payload is already inside it. */
		if (r.payload_len)
			memmove(data, r.payload, r.payload_len);
		if (resp) {
			*resp = r.payload_len ? data : NULL;
			*resp_len = r.payload_len;
			if (r.payload_len)
				data = NULL;
		}
		rc = 0;
	}
	free(data);
	return rc;
}

int ttrpc_client_call(struct ttrpc_client *c, const char *service,
		      const char *method, const uint8_t *req, size_t req_len,
		      uint8_t **resp, size_t *resp_len, int timeout_ms,
		      struct kr_err *err)
{
	struct pending slot = { 0 };
	uint64_t deadline_ns;
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if (resp) {
		*resp = NULL;
		*resp_len = 0;
	}
	if (timeout_ms <= 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s/%s: a timeout is required", service, method);
	deadline_ns = kr_now_ns() + (uint64_t)timeout_ms * 1000000u;
	if (ttrpc_request_encode(service, method, req, req_len,
				 (int64_t)timeout_ms * 1000000, &buf, &len,
				 err) < 0)
		return kr_err_wrap(err, "%s/%s", service, method);

	pthread_mutex_lock(&c->lock);
	if (c->closed) {
		closed_err(c, err);
		pthread_mutex_unlock(&c->lock);
		free(buf);
		return -1;
	}
	pthread_cond_init(&slot.cv, &c->cattr);
	slot.stream_id = pending_new_id(c);
	slot.next = c->pending;
	c->pending = &slot;
	c->callers++;
	pthread_mutex_unlock(&c->lock);

	rc = client_send(c, slot.stream_id, buf, len, deadline_ns, err);
	free(buf);
	if (rc < 0) {
		kr_err_wrap(err, "%s/%s", service, method);
		pthread_mutex_lock(&c->lock);
		if (!slot.done)
			pending_unlink(c, &slot);
	} else {
		call_wait(c, &slot, deadline_ns);
		if (slot.failed)
			rc = closed_err(c, err);
		else if (!slot.done)
			rc = kr_err_set(err, KR_DEADLINE_EXCEEDED,
					"%s/%s: no response within %d ms",
					service, method, timeout_ms);
	}
	if (--c->callers == 0)
		pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&slot.cv);

	if (rc < 0 || slot.failed) {
		free(slot.data);
		return -1;
	}
	return call_result(slot.data, slot.len, service, method, resp,
			   resp_len, err);
}

/* ---- life cycle -------------------------------------------------------- */

static int client_init(struct ttrpc_client *c, int fd, struct kr_err *err)
{
	int fl = fcntl(fd, F_GETFL);

	/* Non-blocking so that a peer that stops reading cannot hold a
	 * sender past its deadline; reads poll(2) first. */
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return kr_err_sys(err, "ttrpc client: set O_NONBLOCK");
	if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0)
		return kr_err_sys(err, "ttrpc client: pipe");
	c->fd = fd;
	c->next_id = 1;
	pthread_condattr_init(&c->cattr);
	pthread_condattr_setclock(&c->cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->idle, &c->cattr);
	pthread_cond_init(&c->write_cv, &c->cattr);
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

static void client_destroy(struct ttrpc_client *c)
{
	pthread_cond_destroy(&c->write_cv);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->idle);
	pthread_condattr_destroy(&c->cattr);
	close(c->wake[0]);
	close(c->wake[1]);
	close(c->fd);
	free(c);
}

struct ttrpc_client *ttrpc_client_new(int fd, struct kr_err *err)
{
	struct ttrpc_client *c = kr_xcalloc(1, sizeof(*c));
	int rc;

	if (client_init(c, fd, err) < 0) {
		close(fd);
		free(c);
		return NULL;
	}
	rc = pthread_create(&c->reader, NULL, client_reader, c);
	if (rc) {
		kr_err_errno(err, rc, "ttrpc client: start reader thread");
		client_destroy(c);
		return NULL;
	}
	return c;
}

void ttrpc_client_free(struct ttrpc_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	client_fail_all(c, NULL);
	pthread_mutex_unlock(&c->lock);
	/* A sender waiting for a peer that does not read gives up now rather
	 * than at its deadline (not a socket: ENOTSOCK, nothing to do). */
	shutdown(c->fd, SHUT_RDWR);
	(void)!write(c->wake[1], "", 1);
	pthread_join(c->reader, NULL);
	/* Failed callers still hold c->lock and their slots: let them go. */
	pthread_mutex_lock(&c->lock);
	while (c->callers)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	client_destroy(c);
}
