/* ttrpc server: one reader thread per connection, one handler thread per
 * call.  See include/kr/ttrpc.h.
 *
 * Lifetimes: a connection (struct conn) belongs to its reader; handler
 * threads write their responses to it, so the reader waits for all of them
 * (conn->inflight == 0) before it closes the fd and frees the connection.
 * The server counts its live connections so that ttrpc_server_free() can
 * wait for them.  Shutdown is a self-pipe that every poll(2) in the server
 * watches: it is never drained, so one byte wakes every reader for good.
 *
 * Behaviour towards the peer follows ttrpc 1.1.1 (spec section 1): unknown
 * method -> UNIMPLEMENTED, undecodable Request or even stream id ->
 * INVALID_ARGUMENT, length > TTRPC_MAX_DATA -> the data is discarded and the
 * stream gets RESOURCE_EXHAUSTED, non-Request frames are ignored; none of
 * these closes the connection.  A call beyond max_inflight gets
 * RESOURCE_EXHAUSTED.  timeout_nano > 0 does not interrupt the handler (C has
 * no cancellation to offer it), but a handler that returns after the
 * deadline gets DEADLINE_EXCEEDED instead of its result, as a Go handler
 * watching its context would. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"

/* Used when ttrpc_server_new() gets max_inflight 0: every call holds a
 * thread and up to TTRPC_MAX_DATA of request, so there is always a bound. */
#define TTRPC_DEFAULT_INFLIGHT 64
#define ACCEPT_BACKOFF_MS 100

struct ttrpc_server {
	const struct ttrpc_method *methods;
	size_t n_methods;
	void *ctx;
	unsigned max_inflight;
	bool same_user_only;	/* SO_PEERCRED must match our uid/gid */
	int wake[2];		/* self-pipe: readable once shut down */
	int stopping;		/* atomic */
	pthread_mutex_t lock;
	pthread_cond_t conns_done;
	unsigned n_conns;	/* under lock */
};

struct conn {
	struct ttrpc_server *srv;
	int fd;
	pthread_mutex_t write_lock;
	bool broken;		/* under write_lock: a frame was cut short */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned inflight;	/* under lock: handler threads alive */
};

struct call {
	struct conn *conn;
	const struct ttrpc_method *m;
	uint8_t *data;		/* the Request frame; req points into it */
	struct ttrpc_request req;
	uint32_t stream_id;
	uint64_t deadline_ns;	/* 0: none */
};

/* ---- writing responses ------------------------------------------------- */

static void conn_write(struct conn *conn, uint32_t stream_id,
		       const uint8_t *data, size_t len)
{
	struct kr_err err;
	int rc = 0;

	pthread_mutex_lock(&conn->write_lock);
	if (!conn->broken)
		rc = ttrpc_write_frame_deadline(conn->fd, stream_id,
						TTRPC_RESPONSE, data, len, 0,
						&err);
	if (rc == -2) {
		/* The peer would read the next frame from the middle of this
		 * one: end the connection (the reader then sees EOF). */
		conn->broken = true;
		shutdown(conn->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&conn->write_lock);
	if (rc < 0)
		kr_debug("ttrpc: stream %u: %s", stream_id, err.msg);
}

static void conn_respond(struct conn *conn, uint32_t stream_id, int code,
			 const char *msg, const uint8_t *payload, size_t len)
{
	struct kr_err err, err2;
	uint8_t *buf;
	size_t n;

	/* A result too large for a frame becomes that error instead. */
	if (ttrpc_response_encode(code, msg, payload, len, &buf, &n, &err) < 0 &&
	    ttrpc_response_encode(err.code ? err.code : KR_INTERNAL, err.msg,
				  NULL, 0, &buf, &n, &err2) < 0)
		return;
	conn_write(conn, stream_id, buf, n);
	free(buf);
}

static void conn_statusf(struct conn *conn, uint32_t stream_id, int code,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void conn_statusf(struct conn *conn, uint32_t stream_id, int code,
			 const char *fmt, ...)
{
	char msg[KR_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	conn_respond(conn, stream_id, code, msg, NULL, 0);
}

/* ---- handler threads --------------------------------------------------- */

static void call_free(struct call *c)
{
	struct conn *conn = c->conn;

	free(c->data);
	free(c);
	pthread_mutex_lock(&conn->lock);
	if (--conn->inflight == 0)
		pthread_cond_broadcast(&conn->idle);
	pthread_mutex_unlock(&conn->lock);
}

/* gRPC has codes 1..16; anything else from a handler is a bug: UNKNOWN. */
static int status_code(int code)
{
	return code > 0 && code <= 16 ? code : KR_UNKNOWN;
}

static void *call_run(void *arg)
{
	struct call *c = arg;
	struct ttrpc_server *srv = c->conn->srv;
	struct kr_err err = { .code = KR_UNKNOWN };
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	int rc;

	rc = c->m->fn(srv->ctx, c->req.payload, c->req.payload_len, &resp,
		      &resp_len, &err);
	if (c->deadline_ns && kr_now_ns() > c->deadline_ns)
		conn_statusf(c->conn, c->stream_id, KR_DEADLINE_EXCEEDED,
			     "%s/%s: deadline exceeded (timeout %lld ns)",
			     c->m->service, c->m->method,
			     (long long)c->req.timeout_nano);
	else if (rc < 0)
		conn_statusf(c->conn, c->stream_id, status_code(err.code), "%s",
			     err.msg[0] ? err.msg : "handler failed");
	else
		conn_respond(c->conn, c->stream_id, KR_OK, NULL, resp,
			     resp_len);
	free(resp);
	call_free(c);
	return NULL;
}

static const struct ttrpc_method *server_lookup(struct ttrpc_server *srv,
						const struct ttrpc_request *req)
{
	for (size_t i = 0; i < srv->n_methods; i++) {
		const struct ttrpc_method *m = &srv->methods[i];

		if (strlen(m->service) == req->service_len &&
		    strlen(m->method) == req->method_len &&
		    !memcmp(m->service, req->service, req->service_len) &&
		    !memcmp(m->method, req->method, req->method_len))
			return m;
	}
	return NULL;
}

static uint64_t deadline_from(int64_t timeout_nano)
{
	uint64_t now = kr_now_ns();

	if (timeout_nano <= 0)
		return 0;
	if ((uint64_t)timeout_nano > UINT64_MAX - now)
		return UINT64_MAX;
	return now + (uint64_t)timeout_nano;
}

/* Start a handler thread for c; on failure the call is answered here. */
static void call_start(struct call *c)
{
	struct conn *conn = c->conn;
	pthread_attr_t attr;
	pthread_t tid;
	int rc;

	pthread_mutex_lock(&conn->lock);
	if (conn->inflight >= conn->srv->max_inflight) {
		pthread_mutex_unlock(&conn->lock);
		conn_statusf(conn, c->stream_id, KR_RESOURCE_EXHAUSTED,
			     "too many concurrent calls on this connection (limit %u)",
			     conn->srv->max_inflight);
		free(c->data);
		free(c);
		return;
	}
	conn->inflight++;
	pthread_mutex_unlock(&conn->lock);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&tid, &attr, call_run, c);
	pthread_attr_destroy(&attr);
	if (rc) {
		conn_statusf(conn, c->stream_id, KR_RESOURCE_EXHAUSTED,
			     "cannot start a handler thread: %s", strerror(rc));
		call_free(c);
	}
}

/* ---- the reader -------------------------------------------------------- */

/* Handle one complete frame; takes ownership of data. */
static void conn_dispatch(struct conn *conn, const struct ttrpc_hdr *h,
			  uint8_t *data)
{
	struct ttrpc_request req;
	struct kr_err err;
	const struct ttrpc_method *m;
	struct call *c;

	if (h->type != TTRPC_REQUEST)	/* forward compatibility (1.2 Data) */
		goto out;
	if (ttrpc_request_decode(data, h->length, &req, &err) < 0) {
		conn_statusf(conn, h->stream_id, KR_INVALID_ARGUMENT, "%s",
			     err.msg);
		goto out;
	}
	if (!(h->stream_id & 1)) {
		conn_statusf(conn, h->stream_id, KR_INVALID_ARGUMENT,
			     "stream id %u must be odd for client-initiated calls",
			     h->stream_id);
		goto out;
	}
	m = server_lookup(conn->srv, &req);
	if (!m) {
		conn_statusf(conn, h->stream_id, KR_UNIMPLEMENTED,
			     "unknown method %.*s/%.*s", (int)req.service_len,
			     req.service, (int)req.method_len, req.method);
		goto out;
	}
	c = kr_xcalloc(1, sizeof(*c));
	c->conn = conn;
	c->m = m;
	c->data = data;
	c->req = req;
	c->stream_id = h->stream_id;
	c->deadline_ns = deadline_from(req.timeout_nano);
	call_start(c);
	return;
out:
	free(data);
}

/* Returns 0 to go on, -1 when the connection is over. */
static int conn_oversized(struct conn *conn, const struct ttrpc_hdr *h,
			  struct kr_err *err)
{
	struct kr_err derr;
	char msg[KR_ERR_MSG_MAX];

	memcpy(msg, err->msg, sizeof(msg));
	if (ttrpc_discard(conn->fd, conn->srv->wake[0], h->length, &derr) <= 0)
		return -1;
	conn_respond(conn, h->stream_id, KR_RESOURCE_EXHAUSTED, msg, NULL, 0);
	return 0;
}

static bool conn_is_broken(struct conn *conn)
{
	bool broken;

	pthread_mutex_lock(&conn->write_lock);
	broken = conn->broken;
	pthread_mutex_unlock(&conn->write_lock);
	return broken;
}

/* Read frames until end of stream, an error or shutdown.  0 when the
 * connection ended normally. */
static int conn_read_loop(struct conn *conn)
{
	for (;;) {
		struct ttrpc_hdr h;
		struct kr_err err;
		uint8_t *data;
		int rc;

		if (conn_is_broken(conn))
			return 0;
		rc = ttrpc_read_frame(conn->fd, conn->srv->wake[0], &h, &data,
				      &err);
		if (rc == 0)
			return 0;	/* EOF, also inside a truncated frame */
		if (rc < 0 && err.code == KR_RESOURCE_EXHAUSTED) {
			if (conn_oversized(conn, &h, &err) < 0)
				return 0;
			continue;
		}
		if (rc < 0) {
			if (err.code == KR_CANCELED)
				return 0;
			kr_debug("ttrpc: connection dropped: %s", err.msg);
			errno = err.errnum;
			return -1;
		}
		conn_dispatch(conn, &h, data);
	}
}

static void server_conn_done(struct ttrpc_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	if (--srv->n_conns == 0)
		pthread_cond_broadcast(&srv->conns_done);
	pthread_mutex_unlock(&srv->lock);
}

/* The body of serve_conn; the caller has counted the connection. */
static int conn_serve(struct ttrpc_server *srv, int fd)
{
	struct conn *conn = kr_xcalloc(1, sizeof(*conn));
	int rc, saved;

	conn->srv = srv;
	conn->fd = fd;
	pthread_mutex_init(&conn->write_lock, NULL);
	pthread_mutex_init(&conn->lock, NULL);
	pthread_cond_init(&conn->idle, NULL);

	rc = conn_read_loop(conn);
	saved = errno;

	/* Handlers still write to conn: wait for the last one. */
	pthread_mutex_lock(&conn->lock);
	while (conn->inflight)
		pthread_cond_wait(&conn->idle, &conn->lock);
	pthread_mutex_unlock(&conn->lock);

	close(fd);
	pthread_cond_destroy(&conn->idle);
	pthread_mutex_destroy(&conn->lock);
	pthread_mutex_destroy(&conn->write_lock);
	free(conn);
	server_conn_done(srv);
	errno = saved;
	return rc;
}

int ttrpc_server_serve_conn(struct ttrpc_server *srv, int fd)
{
	pthread_mutex_lock(&srv->lock);
	srv->n_conns++;
	pthread_mutex_unlock(&srv->lock);
	return conn_serve(srv, fd);
}

/* ---- the accept loop --------------------------------------------------- */

struct conn_start {
	struct ttrpc_server *srv;
	int fd;
};

static void *conn_thread(void *arg)
{
	struct conn_start s = *(struct conn_start *)arg;

	free(arg);
	conn_serve(s.srv, s.fd);
	return NULL;
}

static int conn_spawn(struct ttrpc_server *srv, int fd)
{
	struct conn_start *s = kr_xcalloc(1, sizeof(*s));
	pthread_attr_t attr;
	pthread_t tid;
	int rc;

	s->srv = srv;
	s->fd = fd;
	/* Counted before the thread exists so that free() cannot miss it. */
	pthread_mutex_lock(&srv->lock);
	srv->n_conns++;
	pthread_mutex_unlock(&srv->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&tid, &attr, conn_thread, s);
	pthread_attr_destroy(&attr);
	if (rc) {
		free(s);
		close(fd);
		server_conn_done(srv);
		errno = rc;
		return -1;
	}
	return 0;
}

/* Wait for the listener or the shutdown pipe.  1: shut down, 0: ready. */
static int listener_wait(struct ttrpc_server *srv, int listen_fd, int ms,
			 struct kr_err *err)
{
	struct pollfd p[2] = {
		{ .fd = srv->wake[0], .events = POLLIN },
		{ .fd = listen_fd, .events = POLLIN },
	};

	for (;;) {
		int rc = poll(p, listen_fd >= 0 ? 2 : 1, ms);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return kr_err_sys(err, "poll listener");
		if (p[0].revents)
			return 1;
		return 0;
	}
}

/* Errors after which accepting again makes sense. */
static bool accept_transient(int e)
{
	return e == EINTR || e == EAGAIN || e == EWOULDBLOCK ||
	       e == ECONNABORTED || e == EPROTO || e == EPERM;
}

/* Out of fds or memory: wait a little (watching shutdown) and retry. */
static bool accept_backoff(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* As containerd's own ttrpc servers: only a peer with our uid and gid. */
static bool peer_is_us(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	if (cr.uid == geteuid() && cr.gid == getegid())
		return true;
	kr_warn("ttrpc: refused a connection from uid %u gid %u (pid %d)", (unsigned)cr.uid,
		(unsigned)cr.gid, (int)cr.pid);
	return false;
}

void ttrpc_server_require_same_user(struct ttrpc_server *srv)
{
	srv->same_user_only = true;
}

int ttrpc_server_serve_listener(struct ttrpc_server *srv, int listen_fd,
				struct kr_err *err)
{
	for (;;) {
		int rc = listener_wait(srv, listen_fd, -1, err);
		int fd;

		if (rc != 0)
			return rc < 0 ? -1 : 0;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && accept_transient(errno))
			continue;
		if (fd < 0 && !accept_backoff(errno))
			return kr_err_sys(err, "accept ttrpc connection");
		if (fd >= 0 && srv->same_user_only && !peer_is_us(fd)) {
			close(fd);
			continue;
		}
		if (fd >= 0 && conn_spawn(srv, fd) == 0)
			continue;
		kr_debug("ttrpc: cannot take a connection: %s", strerror(errno));
		rc = listener_wait(srv, -1, ACCEPT_BACKOFF_MS, err);
		if (rc != 0)
			return rc < 0 ? -1 : 0;
	}
}

/* ---- life cycle -------------------------------------------------------- */

struct ttrpc_server *ttrpc_server_new(const struct ttrpc_method *methods,
				      size_t n_methods, void *ctx,
				      unsigned max_inflight)
{
	struct ttrpc_server *srv = kr_xcalloc(1, sizeof(*srv));

	if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		int saved = errno;

		free(srv);
		errno = saved;
		return NULL;
	}
	srv->methods = methods;
	srv->n_methods = n_methods;
	srv->ctx = ctx;
	srv->max_inflight = max_inflight ? max_inflight : TTRPC_DEFAULT_INFLIGHT;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->conns_done, NULL);
	return srv;
}

/* Only an atomic flag and a write(2): safe from handlers and any thread. */
void ttrpc_server_shutdown(struct ttrpc_server *srv)
{
	if (__atomic_exchange_n(&srv->stopping, 1, __ATOMIC_SEQ_CST))
		return;
	(void)!write(srv->wake[1], "", 1);
}

void ttrpc_server_free(struct ttrpc_server *srv)
{
	if (!srv)
		return;
	ttrpc_server_shutdown(srv);
	pthread_mutex_lock(&srv->lock);
	while (srv->n_conns)
		pthread_cond_wait(&srv->conns_done, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	close(srv->wake[0]);
	close(srv->wake[1]);
	pthread_cond_destroy(&srv->conns_done);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
