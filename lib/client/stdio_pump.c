/* Streaming a container process's stdio through the agent API: one thread
 * per direction.  Output threads long-poll ReadStdout/ReadStderr until EOF,
 * so a caller that waits for them has seen every byte before it reports the
 * exit; the input thread copies its fd to WriteStdin and sends CloseStdin
 * at EOF.  A wake pipe stops the input thread, which may sit in poll() on a
 * terminal that never produces input. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kr/agent_client.h"
#include "kr/log.h"
#include "kr/util.h"

#define CHUNK 65536

struct agent_stdio;

struct pump {
	struct agent_stdio *s;
	const char *method;
	int fd;
	pthread_t t;
	bool running;
};

struct agent_stdio {
	struct agent_client *c;
	char id[160], exec_id[160];
	bool tty;
	int wake[2];
	struct pump in, out, err;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int outputs_left;
	bool stop;
	bool broken;			/* a write to an output gave EPIPE */
	void (*broken_fn)(void *);
	void *broken_ctx;
};

static bool stopping(struct agent_stdio *s)
{
	bool stop;

	pthread_mutex_lock(&s->lock);
	stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/* The reader of an output went away: tell the owner once; keep reading
 * (and dropping) so that the process is never blocked by a full pipe. */
static void output_broken(struct agent_stdio *s)
{
	void (*fn)(void *) = NULL;
	void *ctx = NULL;

	pthread_mutex_lock(&s->lock);
	if (!s->broken) {
		s->broken = true;
		fn = s->broken_fn;
		ctx = s->broken_ctx;
	}
	pthread_mutex_unlock(&s->lock);
	if (fn)
		fn(ctx);
}

void agent_stdio_on_broken(struct agent_stdio *s, void (*fn)(void *ctx), void *ctx)
{
	bool already;

	pthread_mutex_lock(&s->lock);
	s->broken_fn = fn;
	s->broken_ctx = ctx;
	already = s->broken;
	pthread_mutex_unlock(&s->lock);
	if (already && fn)
		fn(ctx);
}

static void *output_main(void *arg)
{
	struct pump *p = arg;
	struct agent_stdio *s = p->s;
	KataRun__Agent__V1__ReadStreamRequest req =
		KATA_RUN__AGENT__V1__READ_STREAM_REQUEST__INIT;

	req.container_id = s->id;
	req.exec_id = s->exec_id;
	req.max_len = CHUNK;
	while (!stopping(s)) {
		KataRun__Agent__V1__ReadStreamResponse *resp = NULL;
		struct kr_err err = { 0 };
		bool eof;

		if (agent_call(s->c, p->method, &req.base,
			       &kata_run__agent__v1__read_stream_response__descriptor,
			       (ProtobufCMessage **)&resp, AGENT_CALL_TIMEOUT_MS, &err) < 0) {
			kr_debug("%s of %s: %s", p->method, s->id, err.msg);
			break;
		}
		eof = resp->eof;
		if (resp->data.len && p->fd >= 0 &&
		    kr_write_full(p->fd, resp->data.data, resp->data.len) < 0) {
			kr_debug("%s: write: %s", p->method, strerror(errno));
			if (errno == EPIPE)
				output_broken(s);
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		if (eof)
			break;
	}
	pthread_mutex_lock(&s->lock);
	s->outputs_left--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int close_stdin(struct agent_stdio *s)
{
	KataRun__Agent__V1__ProcessRequest req = KATA_RUN__AGENT__V1__PROCESS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct kr_err err = { 0 };

	req.container_id = s->id;
	req.exec_id = s->exec_id;
	if (agent_call(s->c, "CloseStdin", &req.base,
		       &kata_run__agent__v1__empty__descriptor, &resp, 0, &err) < 0)
		return -1;
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

/* Send all of buf, retrying what the agent did not take yet. */
static int send_input(struct agent_stdio *s, const uint8_t *buf, size_t len)
{
	KataRun__Agent__V1__WriteStreamRequest req =
		KATA_RUN__AGENT__V1__WRITE_STREAM_REQUEST__INIT;

	req.container_id = s->id;
	req.exec_id = s->exec_id;
	while (len && !stopping(s)) {
		KataRun__Agent__V1__WriteStreamResponse *resp = NULL;
		struct kr_err err = { 0 };
		size_t took;

		req.data.data = (uint8_t *)buf;
		req.data.len = len;
		if (agent_call(s->c, "WriteStdin", &req.base,
			       &kata_run__agent__v1__write_stream_response__descriptor,
			       (ProtobufCMessage **)&resp, 0, &err) < 0)
			return -1;
		took = resp->len > len ? len : resp->len;	/* never trust a count */
		protobuf_c_message_free_unpacked(&resp->base, NULL);
		buf += took;
		len -= took;
	}
	return 0;
}

static void *input_main(void *arg)
{
	struct pump *p = arg;
	struct agent_stdio *s = p->s;
	uint8_t *buf = malloc(CHUNK);

	while (buf && !stopping(s)) {
		struct pollfd pfd[2] = { { .fd = p->fd, .events = POLLIN },
					 { .fd = s->wake[0], .events = POLLIN } };
		ssize_t n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		n = read(p->fd, buf, CHUNK);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			close_stdin(s);
			break;
		}
		if (send_input(s, buf, (size_t)n) < 0)
			break;
	}
	free(buf);
	return NULL;
}

static int start_pump(struct agent_stdio *s, struct pump *p, const char *method,
		      int fd, void *(*fn)(void *), struct kr_err *err)
{
	int rc;

	p->s = s;
	p->method = method;
	p->fd = fd;
	rc = pthread_create(&p->t, NULL, fn, p);
	if (rc)
		return kr_err_errno(err, rc, "start %s thread", method);
	p->running = true;
	return 0;
}

struct agent_stdio *agent_stdio_start(struct agent_client *c, const char *id,
				      const char *exec_id, int in_fd,
				      int out_fd, int err_fd, bool tty,
				      struct kr_err *err)
{
	struct agent_stdio *s = kr_xcalloc(1, sizeof(*s));

	s->c = c;
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->exec_id, sizeof(s->exec_id), "%s", exec_id ? exec_id : "");
	s->tty = tty;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		kr_err_sys(err, "pipe");
		free(s);
		return NULL;
	}
	s->outputs_left = tty ? 1 : 2;
	if (start_pump(s, &s->out, "ReadStdout", out_fd, output_main, err) < 0 ||
	    (!tty && start_pump(s, &s->err, "ReadStderr", err_fd, output_main, err) < 0))
		goto fail;
	if (in_fd >= 0) {
		if (start_pump(s, &s->in, "WriteStdin", in_fd, input_main, err) < 0)
			goto fail;
	} else if (!tty) {
		close_stdin(s);
	}
	return s;
fail:
	agent_stdio_finish(s, 0);
	return NULL;
}

void agent_stdio_finish(struct agent_stdio *s, int timeout_ms)
{
	struct timespec deadline;

	if (!s)
		return;
	kr_deadline_ms(&deadline, CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&s->lock);
	while (s->outputs_left > 0 && (s->out.running || s->err.running)) {
		if (pthread_cond_timedwait(&s->cond, &s->lock, &deadline) == ETIMEDOUT)
			break;
	}
	s->stop = true;
	pthread_mutex_unlock(&s->lock);
	(void)!write(s->wake[1], "x", 1);
	struct pump *pumps[] = { &s->in, &s->out, &s->err };
	for (size_t i = 0; i < KR_ARRAY_SIZE(pumps); i++)
		if (pumps[i]->running)
			pthread_join(pumps[i]->t, NULL);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
