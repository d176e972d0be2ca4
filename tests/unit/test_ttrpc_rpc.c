/* ttrpc server and client talking to each other (and to raw, hostile peers)
 * over socketpairs and a Unix socket, all in one process. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/ttrpc.h"
#include "kr/util.h"
#include "../lib/kr_test.h"

#define SVC "test.v1.Test"
#define CALL_MS 5000

/* ---- the test service -------------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int blocked;		/* Block handlers waiting */
	bool released;
	struct ttrpc_server *srv;	/* for the Shutdown method */
} tc = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, NULL };

static void tc_reset(void)
{
	pthread_mutex_lock(&tc.lock);
	tc.blocked = 0;
	tc.released = false;
	pthread_mutex_unlock(&tc.lock);
}

static void tc_release(void)
{
	pthread_mutex_lock(&tc.lock);
	tc.released = true;
	pthread_cond_broadcast(&tc.cv);
	pthread_mutex_unlock(&tc.lock);
}

/* Wait until n Block handlers are waiting (false after 5 s). */
static bool tc_wait_blocked(int n)
{
	uint64_t end = kr_now_ms() + 5000;
	bool ok;

	pthread_mutex_lock(&tc.lock);
	while (tc.blocked < n && kr_now_ms() < end) {
		pthread_mutex_unlock(&tc.lock);
		usleep(1000);
		pthread_mutex_lock(&tc.lock);
	}
	ok = tc.blocked >= n;
	pthread_mutex_unlock(&tc.lock);
	return ok;
}

static int h_echo(void *ctx, const uint8_t *req, size_t req_len,
		  uint8_t **resp, size_t *resp_len, struct kr_err *err)
{
	if (!req_len)
		return 0;
	*resp = malloc(req_len);
	memcpy(*resp, req, req_len);
	*resp_len = req_len;
	return 0;
}

static int h_fail(void *ctx, const uint8_t *req, size_t req_len,
		  uint8_t **resp, size_t *resp_len, struct kr_err *err)
{
	return kr_err_set(err, KR_NOT_FOUND, "no such thing");
}

/* Payload: milliseconds to sleep, as decimal text. */
static int h_sleep(void *ctx, const uint8_t *req, size_t req_len,
		   uint8_t **resp, size_t *resp_len, struct kr_err *err)
{
	char num[16] = "";

	memcpy(num, req, req_len < 15 ? req_len : 15);
	usleep((useconds_t)atoi(num) * 1000);
	*resp = (uint8_t *)kr_xstrdup("slept");
	*resp_len = 5;
	return 0;
}

/* Waits for tc_release() (at most 10 s, so a broken test cannot hang). */
static int h_block(void *ctx, const uint8_t *req, size_t req_len,
		   uint8_t **resp, size_t *resp_len, struct kr_err *err)
{
	uint64_t end = kr_now_ms() + 10000;

	pthread_mutex_lock(&tc.lock);
	tc.blocked++;
	while (!tc.released && kr_now_ms() < end) {
		pthread_mutex_unlock(&tc.lock);
		usleep(1000);
		pthread_mutex_lock(&tc.lock);
	}
	tc.blocked--;
	pthread_mutex_unlock(&tc.lock);
	*resp = (uint8_t *)kr_xstrdup("unblocked");
	*resp_len = 9;
	return 0;
}

static int h_release(void *ctx, const uint8_t *req, size_t req_len,
		     uint8_t **resp, size_t *resp_len, struct kr_err *err)
{
	tc_release();
	return 0;
}

static int h_big(void *ctx, const uint8_t *req, size_t req_len,
		 uint8_t **resp, size_t *resp_len, struct kr_err *err)
{
	*resp = calloc(1, TTRPC_MAX_DATA + 1);
	*resp_len = TTRPC_MAX_DATA + 1;
	return 0;
}

static int h_shutdown(void *ctx, const uint8_t *req, size_t req_len,
		      uint8_t **resp, size_t *resp_len, struct kr_err *err)
{
	ttrpc_server_shutdown(tc.srv);
	return 0;
}

static const struct ttrpc_method methods[] = {
	{ SVC, "Echo", h_echo },
	{ SVC, "Fail", h_fail },
	{ SVC, "Sleep", h_sleep },
	{ SVC, "Block", h_block },
	{ SVC, "Release", h_release },
	{ SVC, "Big", h_big },
	{ SVC, "Shutdown", h_shutdown },
};

/* ---- fixture: a server on one end of a socketpair ---------------------- */

struct fixture {
	struct ttrpc_server *srv;
	struct ttrpc_client *cli;	/* NULL in raw mode */
	int raw;			/* the client end in raw mode */
	int sv[2];
	pthread_t thread;
	int serve_rc;
};

static void *serve_thread(void *arg)
{
	struct fixture *f = arg;

	f->serve_rc = ttrpc_server_serve_conn(f->srv, f->sv[0]);
	return NULL;
}

static bool fx_start(struct fixture *f, unsigned max_inflight, bool client)
{
	struct kr_err err;

	memset(f, 0, sizeof(*f));
	f->raw = -1;
	tc_reset();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sv) < 0)
		return false;
	f->srv = ttrpc_server_new(methods, KR_ARRAY_SIZE(methods), NULL,
				  max_inflight);
	if (!f->srv)
		return false;
	tc.srv = f->srv;
	if (pthread_create(&f->thread, NULL, serve_thread, f))
		return false;
	if (!client) {
		f->raw = f->sv[1];
		return true;
	}
	f->cli = ttrpc_client_new(f->sv[1], &err);
	if (!f->cli)
		printf("#   client: %s\n", err.msg);
	return f->cli != NULL;
}

static void fx_stop(struct fixture *f)
{
	tc_release();
	if (f->cli)
		ttrpc_client_free(f->cli);
	if (f->raw >= 0)
		close(f->raw);
	pthread_join(f->thread, NULL);
	ttrpc_server_free(f->srv);
	tc.srv = NULL;
}

static int call(struct ttrpc_client *c, const char *method, const char *arg,
		uint8_t **resp, size_t *len, int timeout_ms, struct kr_err *err)
{
	return ttrpc_client_call(c, SVC, method, (const uint8_t *)arg,
				 arg ? strlen(arg) : 0, resp, len, timeout_ms,
				 err);
}

/* A call on its own thread, for tests that block or play the server. */
struct bg_call {
	struct ttrpc_client *c;
	const char *method;
	const char *arg;
	int timeout_ms;
	pthread_t t;
	int rc;
	struct kr_err err;
	uint8_t *resp;
	size_t len;
	uint64_t ms;		/* how long the call took */
	int done;		/* atomic */
};

static void *bg_run(void *arg)
{
	struct bg_call *b = arg;
	uint64_t t0 = kr_now_ms();

	b->rc = call(b->c, b->method, b->arg, &b->resp, &b->len, b->timeout_ms,
		     &b->err);
	b->ms = kr_now_ms() - t0;
	__atomic_store_n(&b->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static bool bg_start(struct bg_call *b, struct ttrpc_client *c,
		     const char *method, const char *arg, int timeout_ms)
{
	memset(b, 0, sizeof(*b));
	b->c = c;
	b->method = method;
	b->arg = arg;
	b->timeout_ms = timeout_ms;
	return pthread_create(&b->t, NULL, bg_run, b) == 0;
}

static void bg_join(struct bg_call *b)
{
	pthread_join(b->t, NULL);
	free(b->resp);
	b->resp = NULL;
}

/* ---- raw frames -------------------------------------------------------- */

static bool raw_request(int fd, uint32_t id, const char *method,
			const char *arg, int64_t timeout_nano)
{
	struct kr_err err;
	uint8_t *buf;
	size_t len;
	bool ok;

	if (ttrpc_request_encode(SVC, method, (const uint8_t *)arg,
				 arg ? strlen(arg) : 0, timeout_nano, &buf,
				 &len, &err) < 0)
		return false;
	ok = ttrpc_write_frame(fd, id, TTRPC_REQUEST, buf, len, &err) == 0;
	free(buf);
	return ok;
}

/* Read one frame within 5 s.  1 on success, 0 at EOF, -1 on timeout. */
static int raw_frame(int fd, struct ttrpc_hdr *h, uint8_t **data)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct kr_err err;

	*data = NULL;
	if (poll(&p, 1, 5000) != 1)
		return -1;
	return ttrpc_read_frame(fd, -1, h, data, &err);
}

/* Read a Response; returns its status code (-1 on failure) and stream id. */
static int raw_status(int fd, uint32_t *id, char *msg, size_t msg_size)
{
	struct ttrpc_response r;
	struct ttrpc_hdr h;
	struct kr_err err;
	uint8_t *data;
	int code = -1;

	if (raw_frame(fd, &h, &data) != 1)
		return -1;
	if (h.type == TTRPC_RESPONSE &&
	    ttrpc_response_decode(data, h.length, &r, &err) == 0) {
		code = r.code;
		*id = h.stream_id;
		if (msg)
			snprintf(msg, msg_size, "%.*s", (int)r.message_len,
				 r.message);
	}
	free(data);
	return code;
}

/* ---- server and client together ---------------------------------------- */

static void test_echo(void)
{
	struct fixture f;
	struct kr_err err;
	uint8_t *resp = NULL;
	size_t len = 0;

	REQUIRE(fx_start(&f, 0, true));
	CHECK(call(f.cli, "Echo", "hello", &resp, &len, CALL_MS, &err) == 0);
	CHECK(len == 5 && resp && memcmp(resp, "hello", 5) == 0);
	free(resp);
	/* Empty request and response. */
	resp = (uint8_t *)"junk";
	CHECK(call(f.cli, "Echo", NULL, &resp, &len, CALL_MS, &err) == 0);
	CHECK(resp == NULL && len == 0);
	/* The result may be dropped. */
	CHECK(call(f.cli, "Echo", "x", NULL, NULL, CALL_MS, &err) == 0);
	/* A timeout is mandatory. */
	CHECK(call(f.cli, "Echo", "x", NULL, NULL, 0, &err) < 0);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	fx_stop(&f);
	CHECK(f.serve_rc == 0);
}

static void test_unknown_method(void)
{
	struct fixture f;
	struct kr_err err;

	REQUIRE(fx_start(&f, 0, true));
	CHECK(call(f.cli, "Nope", "x", NULL, NULL, CALL_MS, &err) < 0);
	CHECK(err.code == KR_UNIMPLEMENTED);
	CHECK_STREQ(err.msg, "unknown method " SVC "/Nope");
	CHECK(ttrpc_client_call(f.cli, "other.Svc", "Echo", NULL, 0, NULL, NULL,
				CALL_MS, &err) < 0);
	CHECK(err.code == 12);
	CHECK_STREQ(err.msg, "unknown method other.Svc/Echo");
	/* A method name that is a prefix of a real one is not it. */
	CHECK(call(f.cli, "Ech", "x", NULL, NULL, CALL_MS, &err) < 0);
	CHECK(err.code == KR_UNIMPLEMENTED);
	/* The handler's own error travels with its code and message. */
	CHECK(call(f.cli, "Fail", NULL, NULL, NULL, CALL_MS, &err) < 0);
	CHECK(err.code == KR_NOT_FOUND);
	CHECK_STREQ(err.msg, "no such thing");
	/* A result too large for a frame becomes an error. */
	CHECK(call(f.cli, "Big", NULL, NULL, NULL, CALL_MS, &err) < 0);
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	CHECK(call(f.cli, "Echo", "still", NULL, NULL, CALL_MS, &err) == 0);
	fx_stop(&f);
}

/* A blocked call must not stall others on the same connection, and its
 * response comes after theirs. */
static void test_concurrency(void)
{
	struct fixture f;
	struct bg_call b;
	struct kr_err err;
	uint8_t *resp = NULL;
	size_t len;

	REQUIRE(fx_start(&f, 0, true));
	REQUIRE(bg_start(&b, f.cli, "Block", NULL, CALL_MS));
	CHECK(tc_wait_blocked(1));
	CHECK(call(f.cli, "Echo", "second", &resp, &len, 1000, &err) == 0);
	CHECK(len == 6 && memcmp(resp, "second", 6) == 0);
	free(resp);
	CHECK(__atomic_load_n(&b.done, __ATOMIC_SEQ_CST) == 0);
	CHECK(call(f.cli, "Release", NULL, NULL, NULL, 1000, &err) == 0);
	pthread_join(b.t, NULL);
	CHECK(b.rc == 0 && b.len == 9 && memcmp(b.resp, "unblocked", 9) == 0);
	free(b.resp);
	fx_stop(&f);
}

struct stress {
	struct ttrpc_client *c;
	int id;
	int failures;
};

static void *stress_run(void *arg)
{
	struct stress *s = arg;

	for (int i = 0; i < 200; i++) {
		char msg[64];
		uint8_t *resp = NULL;
		size_t len = 0;
		struct kr_err err;

		snprintf(msg, sizeof(msg), "thread %d call %d", s->id, i);
		if (call(s->c, "Echo", msg, &resp, &len, CALL_MS, &err) < 0 ||
		    len != strlen(msg) || memcmp(resp, msg, len) != 0)
			s->failures++;
		free(resp);
	}
	return NULL;
}

/* Many threads multiplexed on one connection each get their own answers. */
static void test_multiplex(void)
{
	struct stress s[8];
	pthread_t t[8];
	struct fixture f;

	REQUIRE(fx_start(&f, 0, true));
	for (int i = 0; i < 8; i++) {
		s[i] = (struct stress){ .c = f.cli, .id = i };
		REQUIRE(pthread_create(&t[i], NULL, stress_run, &s[i]) == 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECKF(s[i].failures == 0, "thread %d: %d failures", i,
		       s[i].failures);
	}
	fx_stop(&f);
}

static void test_client_timeout(void)
{
	struct fixture f;
	struct kr_err err;
	uint8_t *resp = NULL;
	size_t len;
	uint64_t t0 = kr_now_ms(), took;

	REQUIRE(fx_start(&f, 0, true));
	CHECK(call(f.cli, "Sleep", "600", NULL, NULL, 100, &err) < 0);
	took = kr_now_ms() - t0;
	CHECK(err.code == KR_DEADLINE_EXCEEDED);
	CHECKF(took >= 100 && took < 450, "took %llu ms",
	       (unsigned long long)took);
	/* The connection still works, before and after the late response. */
	CHECK(call(f.cli, "Echo", "a", &resp, &len, CALL_MS, &err) == 0);
	free(resp);
	usleep(700 * 1000);
	CHECK(call(f.cli, "Echo", "b", &resp, &len, CALL_MS, &err) == 0);
	CHECK(len == 1 && resp && resp[0] == 'b');
	free(resp);
	fx_stop(&f);
}

static void test_max_inflight(void)
{
	struct fixture f;
	struct bg_call b;
	struct kr_err err;
	uint64_t end;
	int rc;

	REQUIRE(fx_start(&f, 1, true));
	REQUIRE(bg_start(&b, f.cli, "Block", NULL, CALL_MS));
	CHECK(tc_wait_blocked(1));
	CHECK(call(f.cli, "Echo", "x", NULL, NULL, 1000, &err) < 0);
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	CHECK_CONTAINS(err.msg, "limit 1");
	tc_release();
	pthread_join(b.t, NULL);
	CHECK(b.rc == 0);
	free(b.resp);
	/* The slot frees once the handler thread is done (just after its
	 * response went out). */
	end = kr_now_ms() + 2000;
	do {
		rc = call(f.cli, "Echo", "x", NULL, NULL, 1000, &err);
	} while (rc < 0 && err.code == KR_RESOURCE_EXHAUSTED &&
		 kr_now_ms() < end && usleep(1000) == 0);
	CHECK(rc == 0);
	fx_stop(&f);
}

/* The client frees while a call waits: the call fails UNAVAILABLE. */
static void test_client_free_pending(void)
{
	struct fixture f;
	struct bg_call b;

	REQUIRE(fx_start(&f, 0, true));
	REQUIRE(bg_start(&b, f.cli, "Block", NULL, CALL_MS));
	CHECK(tc_wait_blocked(1));
	ttrpc_client_free(f.cli);
	f.cli = NULL;
	pthread_join(b.t, NULL);
	CHECK(b.rc < 0 && b.err.code == KR_UNAVAILABLE);
	CHECK(b.ms < 2000);
	fx_stop(&f);
}

/* ---- a raw client against the server ----------------------------------- */

static void test_server_deadline(void)
{
	struct fixture f;
	uint32_t id = 0;
	char msg[256];

	REQUIRE(fx_start(&f, 0, false));
	/* The handler outlives timeout_nano: DEADLINE_EXCEEDED. */
	CHECK(raw_request(f.raw, 1, "Sleep", "200", 50 * 1000000ll));
	CHECK(raw_status(f.raw, &id, msg, sizeof(msg)) == KR_DEADLINE_EXCEEDED);
	CHECK(id == 1);
	CHECK_CONTAINS(msg, "deadline exceeded");
	/* In time (and 64-bit timeouts): OK. */
	CHECK(raw_request(f.raw, 3, "Sleep", "1", 5000000000ll));
	CHECK(raw_status(f.raw, &id, NULL, 0) == 0 && id == 3);
	CHECK(raw_request(f.raw, 5, "Sleep", "1", INT64_MAX));
	CHECK(raw_status(f.raw, &id, NULL, 0) == 0 && id == 5);
	CHECK(raw_request(f.raw, 7, "Sleep", "1", -1));
	CHECK(raw_status(f.raw, &id, NULL, 0) == 0 && id == 7);
	fx_stop(&f);
}

static void test_oversized_request(void)
{
	static const size_t big = TTRPC_MAX_DATA + 1;
	struct ttrpc_hdr h = { .length = (uint32_t)big, .stream_id = 1,
			       .type = TTRPC_REQUEST };
	uint8_t hb[TTRPC_HDR_LEN], *junk = calloc(1, big);
	struct fixture f;
	uint32_t id = 0;
	char msg[256];

	REQUIRE(junk);
	REQUIRE(fx_start(&f, 0, false));
	ttrpc_hdr_encode(hb, &h);
	CHECK(kr_write_full(f.raw, hb, sizeof(hb)) == 0);
	CHECK(kr_write_full(f.raw, junk, big) == 0);
	CHECK(raw_status(f.raw, &id, msg, sizeof(msg)) == KR_RESOURCE_EXHAUSTED);
	CHECK(id == 1);
	CHECK_CONTAINS(msg, "exceeds maximum message size");
	/* The connection still serves the next request. */
	CHECK(raw_request(f.raw, 3, "Echo", "next", 0));
	CHECK(raw_status(f.raw, &id, NULL, 0) == 0 && id == 3);
	/* Exactly TTRPC_MAX_DATA is allowed (it fails to decode, though). */
	h.length = TTRPC_MAX_DATA;
	h.stream_id = 5;
	ttrpc_hdr_encode(hb, &h);
	memset(junk, 0xff, TTRPC_MAX_DATA);
	CHECK(kr_write_full(f.raw, hb, sizeof(hb)) == 0);
	CHECK(kr_write_full(f.raw, junk, TTRPC_MAX_DATA) == 0);
	CHECK(raw_status(f.raw, &id, NULL, 0) == KR_INVALID_ARGUMENT && id == 5);
	free(junk);
	fx_stop(&f);
	CHECK(f.serve_rc == 0);
}

static void test_garbage_request(void)
{
	struct fixture f;
	struct kr_err err;
	uint32_t id = 0;
	char msg[256];

	REQUIRE(fx_start(&f, 0, false));
	/* Undecodable Request: INVALID_ARGUMENT on that stream. */
	CHECK(ttrpc_write_frame(f.raw, 1, TTRPC_REQUEST,
				(const uint8_t *)"\xff", 1, &err) == 0);
	CHECK(raw_status(f.raw, &id, msg, sizeof(msg)) == KR_INVALID_ARGUMENT);
	CHECK(id == 1);
	CHECK_CONTAINS(msg, "ttrpc.Request");
	CHECK(ttrpc_write_frame(f.raw, 3, TTRPC_REQUEST,
				(const uint8_t *)"\x0a\x05xy", 4, &err) == 0);
	CHECK(raw_status(f.raw, &id, NULL, 0) == KR_INVALID_ARGUMENT && id == 3);
	/* Even stream id. */
	CHECK(raw_request(f.raw, 4, "Echo", "x", 0));
	CHECK(raw_status(f.raw, &id, msg, sizeof(msg)) == KR_INVALID_ARGUMENT);
	CHECK(id == 4);
	CHECK_CONTAINS(msg, "odd");
	/* Non-Request frames are ignored: the next answer is for stream 9. */
	CHECK(ttrpc_write_frame(f.raw, 5, TTRPC_DATA, (const uint8_t *)"d", 1,
				&err) == 0);
	CHECK(ttrpc_write_frame(f.raw, 7, TTRPC_RESPONSE, NULL, 0, &err) == 0);
	CHECK(ttrpc_write_frame(f.raw, 11, 0x7f, NULL, 0, &err) == 0);
	CHECK(raw_request(f.raw, 9, "Echo", "x", 0));
	CHECK(raw_status(f.raw, &id, NULL, 0) == 0 && id == 9);
	/* A frame cut off by EOF ends the connection cleanly. */
	{
		struct ttrpc_hdr h = { .length = 100, .stream_id = 13,
				       .type = TTRPC_REQUEST };
		uint8_t hb[TTRPC_HDR_LEN];

		ttrpc_hdr_encode(hb, &h);
		CHECK(kr_write_full(f.raw, hb, sizeof(hb)) == 0);
		CHECK(kr_write_full(f.raw, "0123456789", 10) == 0);
		shutdown(f.raw, SHUT_WR);
	}
	pthread_join(f.thread, NULL);
	CHECK(f.serve_rc == 0);
	close(f.raw);
	f.raw = -1;
	ttrpc_server_free(f.srv);
}

/* serve_conn returns after shutdown even though the peer stays. */
static void test_shutdown_conn(void)
{
	struct fixture f;
	uint32_t id = 0;

	REQUIRE(fx_start(&f, 0, false));
	CHECK(raw_request(f.raw, 1, "Shutdown", NULL, 0));
	CHECK(raw_status(f.raw, &id, NULL, 0) == 0 && id == 1);
	pthread_join(f.thread, NULL);
	CHECK(f.serve_rc == 0);
	ttrpc_server_free(f.srv);
	close(f.raw);
}

/* ---- a raw (hostile) server against the client ------------------------- */

struct raw_peer {
	int sv[2];
	struct ttrpc_client *cli;
};

static bool peer_start(struct raw_peer *p)
{
	struct kr_err err;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->sv) < 0)
		return false;
	p->cli = ttrpc_client_new(p->sv[1], &err);
	return p->cli != NULL;
}

/* Read a Request at the raw end; returns its stream id (0 on failure). */
static uint32_t peer_read_request(struct raw_peer *p, struct ttrpc_request *req,
				  uint8_t **data)
{
	struct ttrpc_hdr h;
	struct kr_err err;

	if (raw_frame(p->sv[0], &h, data) != 1 || h.type != TTRPC_REQUEST ||
	    ttrpc_request_decode(*data, h.length, req, &err) < 0)
		return 0;
	return h.stream_id;
}

static bool peer_respond(struct raw_peer *p, uint32_t id, int code,
			 const char *msg, const char *payload)
{
	struct kr_err err;
	uint8_t *buf;
	size_t len;
	bool ok;

	if (ttrpc_response_encode(code, msg, (const uint8_t *)payload,
				  payload ? strlen(payload) : 0, &buf, &len,
				  &err) < 0)
		return false;
	ok = ttrpc_write_frame(p->sv[0], id, TTRPC_RESPONSE, buf, len,
			       &err) == 0;
	free(buf);
	return ok;
}

/* Stream ids 1, 3, 5...; timeout_nano = timeout_ms * 1e6; stray frames
 * (unknown ids, Data frames, a malformed Response) are survived. */
static void test_client_ids(void)
{
	struct raw_peer p;
	struct ttrpc_request req;
	struct bg_call b;
	uint8_t *data = NULL;
	struct kr_err err;

	REQUIRE(peer_start(&p));
	for (uint32_t want = 1; want <= 7; want += 2) {
		REQUIRE(bg_start(&b, p.cli, "Echo", "ping", 1234));
		CHECK(peer_read_request(&p, &req, &data) == want);
		CHECK(req.timeout_nano == 1234000000ll);
		CHECK(req.method_len == 4 && !memcmp(req.method, "Echo", 4));
		CHECK(req.payload_len == 4 && !memcmp(req.payload, "ping", 4));
		free(data);
		/* Noise first: an unknown id, a Data frame. */
		CHECK(peer_respond(&p, want + 100, 0, NULL, "stray"));
		CHECK(ttrpc_write_frame(p.sv[0], want, TTRPC_DATA,
					(const uint8_t *)"zz", 2, &err) == 0);
		CHECK(peer_respond(&p, want, 0, NULL, "pong"));
		bg_join(&b);
		CHECK(b.rc == 0);
	}
	/* A malformed Response fails that call only. */
	REQUIRE(bg_start(&b, p.cli, "Echo", "x", CALL_MS));
	CHECK(peer_read_request(&p, &req, &data) == 9);
	free(data);
	CHECK(ttrpc_write_frame(p.sv[0], 9, TTRPC_RESPONSE,
				(const uint8_t *)"\x12\x09", 2, &err) == 0);
	bg_join(&b);
	CHECK(b.rc < 0 && b.err.code == KR_INTERNAL);
	/* Out-of-range status codes from the peer become UNKNOWN. */
	REQUIRE(bg_start(&b, p.cli, "Echo", "x", CALL_MS));
	CHECK(peer_read_request(&p, &req, &data) == 11);
	free(data);
	CHECK(peer_respond(&p, 11, 99, "odd code", NULL));
	bg_join(&b);
	CHECK(b.rc < 0 && b.err.code == KR_UNKNOWN);
	CHECK_STREQ(b.err.msg, "odd code");
	ttrpc_client_free(p.cli);
	close(p.sv[0]);
}

static void test_peer_closes(void)
{
	struct raw_peer p;
	struct ttrpc_request req;
	struct bg_call b;
	uint8_t *data = NULL;
	struct kr_err err;
	uint64_t t0;

	REQUIRE(peer_start(&p));
	REQUIRE(bg_start(&b, p.cli, "Echo", "x", CALL_MS));
	CHECK(peer_read_request(&p, &req, &data) == 1);
	free(data);
	close(p.sv[0]);
	bg_join(&b);
	CHECK(b.rc < 0 && b.err.code == KR_UNAVAILABLE);
	CHECK(b.ms < 2000);
	CHECK_CONTAINS(b.err.msg, "connection to agent closed");
	t0 = kr_now_ms();
	CHECK(call(p.cli, "Echo", "x", NULL, NULL, CALL_MS, &err) < 0);
	CHECK(err.code == KR_UNAVAILABLE && kr_now_ms() - t0 < 100);
	CHECK_STREQ(err.msg, "connection to agent closed");
	ttrpc_client_free(p.cli);
}

/* A length of ~4 GiB must fail the connection, not allocate it. */
static void test_hostile_oversized_response(void)
{
	struct ttrpc_hdr h = { .length = 0xfffffff0u, .stream_id = 1,
			       .type = TTRPC_RESPONSE };
	uint8_t hb[TTRPC_HDR_LEN];
	struct raw_peer p;
	struct ttrpc_request req;
	struct bg_call b;
	uint8_t *data = NULL;
	struct kr_err err;

	REQUIRE(peer_start(&p));
	REQUIRE(bg_start(&b, p.cli, "Echo", "x", CALL_MS));
	CHECK(peer_read_request(&p, &req, &data) == 1);
	free(data);
	ttrpc_hdr_encode(hb, &h);
	CHECK(kr_write_full(p.sv[0], hb, sizeof(hb)) == 0);
	CHECK(kr_write_full(p.sv[0], "AAAA", 4) == 0);
	bg_join(&b);
	CHECK(b.rc < 0 && b.err.code == KR_UNAVAILABLE);
	CHECK(b.ms < 2000);	/* did not wait for 4 GiB nor the timeout */
	CHECK_CONTAINS(b.err.msg, "exceeds maximum message size");
	CHECK(call(p.cli, "Echo", "x", NULL, NULL, CALL_MS, &err) < 0);
	CHECK(err.code == KR_UNAVAILABLE);
	ttrpc_client_free(p.cli);
	close(p.sv[0]);
}

/* A peer that never reads cannot hold a sender past its deadline. */
static void test_send_timeout(void)
{
	size_t big = TTRPC_MAX_DATA / 2;
	uint8_t *payload = calloc(1, big);
	struct raw_peer p;
	struct kr_err err;
	uint64_t t0 = kr_now_ms(), took;
	int rc = 0;

	REQUIRE(payload);
	REQUIRE(peer_start(&p));
	/* The socket buffers fill after a few calls; then a send blocks. */
	for (int i = 0; i < 64 && rc == 0; i++)
		rc = ttrpc_client_call(p.cli, SVC, "Echo", payload, big, NULL,
				       NULL, 50, &err);
	took = kr_now_ms() - t0;
	CHECK(rc < 0 && err.code == KR_DEADLINE_EXCEEDED);
	CHECKF(took < 64 * 50 + 1000, "took %llu ms",
	       (unsigned long long)took);
	/* A frame cut short poisons the connection: later calls fail. */
	CHECK(ttrpc_client_call(p.cli, SVC, "Echo", NULL, 0, NULL, NULL, 50,
				&err) < 0);
	CHECK(err.code == KR_UNAVAILABLE);
	ttrpc_client_free(p.cli);
	close(p.sv[0]);
	free(payload);
}

/* ---- Unix socket listener ---------------------------------------------- */

struct listener {
	struct ttrpc_server *srv;
	int fd;
	int rc;
	struct kr_err err;
};

static void *listen_thread(void *arg)
{
	struct listener *l = arg;

	l->rc = ttrpc_server_serve_listener(l->srv, l->fd, &l->err);
	return NULL;
}

static void test_unix_listener(void)
{
	char dir[] = "/tmp/kr-ttrpc-XXXXXX", path[128];
	struct ttrpc_client *c1, *c2;
	struct listener l = { 0 };
	struct kr_err err;
	pthread_t t;
	uint8_t *resp = NULL;
	size_t len;
	uint64_t t0;
	int fd;

	REQUIRE(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ttrpc.sock", dir);
	tc_reset();
	l.srv = ttrpc_server_new(methods, KR_ARRAY_SIZE(methods), NULL, 0);
	REQUIRE(l.srv);
	tc.srv = l.srv;
	l.fd = kr_unix_listen(path, &err);
	REQUIRE(l.fd >= 0);
	/* A live server's path is not taken over. */
	CHECK(kr_unix_listen(path, &err) < 0);
	CHECK_CONTAINS(err.msg, path);
	REQUIRE(pthread_create(&t, NULL, listen_thread, &l) == 0);

	fd = kr_unix_connect(path, &err);
	REQUIRE(fd >= 0);
	c1 = ttrpc_client_new(fd, &err);
	fd = kr_unix_connect(path, &err);
	REQUIRE(fd >= 0);
	c2 = ttrpc_client_new(fd, &err);
	REQUIRE(c1 && c2);
	CHECK(call(c1, "Echo", "one", &resp, &len, CALL_MS, &err) == 0);
	free(resp);
	CHECK(call(c2, "Echo", "two", &resp, &len, CALL_MS, &err) == 0);
	CHECK(len == 3 && memcmp(resp, "two", 3) == 0);
	free(resp);
	/* Shutdown from inside a handler: that call is still answered and
	 * the accept loop returns promptly. */
	t0 = kr_now_ms();
	CHECK(call(c1, "Shutdown", NULL, NULL, NULL, CALL_MS, &err) == 0);
	pthread_join(t, NULL);
	CHECK(l.rc == 0);
	CHECK(kr_now_ms() - t0 < 1000);
	/* The connections close too: later calls fail at once. */
	ttrpc_server_free(l.srv);
	tc.srv = NULL;
	CHECK(call(c2, "Echo", "x", NULL, NULL, CALL_MS, &err) < 0);
	CHECK(err.code == KR_UNAVAILABLE);
	ttrpc_client_free(c1);
	ttrpc_client_free(c2);
	close(l.fd);

	/* The socket file is now stale: listening again replaces it. */
	fd = kr_unix_listen(path, &err);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	unlink(path);
	rmdir(dir);
}

static void test_unix_errors(void)
{
	char longpath[200];
	struct kr_err err;

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK(kr_unix_listen(longpath, &err) < 0);
	CHECK(err.errnum == ENAMETOOLONG);
	CHECK_CONTAINS(err.msg, longpath);
	CHECK(kr_unix_connect(longpath, &err) < 0);
	CHECK(err.errnum == ENAMETOOLONG);
	CHECK(kr_unix_connect("/nonexistent/kr.sock", &err) < 0);
	CHECK(err.code == KR_NOT_FOUND);
	CHECK_CONTAINS(err.msg, "/nonexistent/kr.sock");
	/* A regular file in the way is left alone. */
	{
		char dir[] = "/tmp/kr-ttrpc-XXXXXX", path[128];
		FILE *fp;

		REQUIRE(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/file", dir);
		fp = fopen(path, "w");
		REQUIRE(fp);
		fclose(fp);
		CHECK(kr_unix_listen(path, &err) < 0);
		CHECK(err.errnum == EADDRINUSE);
		CHECK(access(path, F_OK) == 0);
		unlink(path);
		rmdir(dir);
	}
}

int main(void)
{
	/* As documented in ttrpc.h: programs using ttrpc ignore SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	alarm(300);	/* a hang is a failure, not a stuck CI job */
	KR_TEST(test_echo);
	KR_TEST(test_unknown_method);
	KR_TEST(test_concurrency);
	KR_TEST(test_multiplex);
	KR_TEST(test_client_timeout);
	KR_TEST(test_max_inflight);
	KR_TEST(test_client_free_pending);
	KR_TEST(test_server_deadline);
	KR_TEST(test_oversized_request);
	KR_TEST(test_garbage_request);
	KR_TEST(test_shutdown_conn);
	KR_TEST(test_client_ids);
	KR_TEST(test_peer_closes);
	KR_TEST(test_hostile_oversized_response);
	KR_TEST(test_send_timeout);
	KR_TEST(test_unix_listener);
	KR_TEST(test_unix_errors);
	return kr_test_done();
}
