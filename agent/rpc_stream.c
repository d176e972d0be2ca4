/* Stdio RPCs: WriteStdin, CloseStdin, ReadStdout, ReadStderr,
 * TtyWinResize.  Reads long-poll (RPC_LONG_POLL_MS) and answer "no data
 * yet" rather than block past the caller's deadline; writes never block
 * (the host retries with what was not taken). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "agent.h"
#include "kr/log.h"
#include "rpc.h"

enum stream { STREAM_STDOUT, STREAM_STDERR };

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int rc;

	do {
		rc = poll(&pfd, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	return rc;
}

static int read_stream(struct process *p, enum stream s, uint32_t max_len,
		       kata_run_agent_v1_ReadStreamResponse *resp,
		       struct kr_err *err)
{
	int fd = p->terminal ? p->pty_fd : s == STREAM_STDOUT ? p->stdout_fd : p->stderr_fd;
	struct rpc_blob *b = resp->data.arg;
	size_t cap = RPC_STREAM_CHUNK;
	ssize_t n;
	int rc;

	if (p->terminal && s == STREAM_STDERR)
		fd = -1;	/* a terminal has one output stream */
	if (fd < 0) {
		resp->eof = true;
		return 0;
	}
	if (max_len && max_len < cap)
		cap = max_len;
	rc = wait_fd(fd, POLLIN, RPC_LONG_POLL_MS);
	if (rc < 0)
		return kr_err_sys(err, "poll output");
	if (rc == 0)
		return 0;	/* nothing yet */
	b->data = malloc(cap);
	if (!b->data)
		return kr_err_errno(err, ENOMEM, "read output");
	do {
		n = read(fd, b->data, cap);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	/* A pty master reads EIO once every slave is closed: that is EOF. */
	if (n == 0 || (n < 0 && errno == EIO)) {
		resp->eof = true;
		return 0;
	}
	if (n < 0)
		return kr_err_sys(err, "read output");
	b->len = (size_t)n;
	return 0;
}

static int read_common(struct agent *a, const void *in, void *out,
		       enum stream s, struct kr_err *err)
{
	const kata_run_agent_v1_ReadStreamRequest *req = in;
	struct container *c;
	struct process *p = rpc_process_get(a, req->container_id, req->exec_id, &c, err);
	int rc;

	if (!p)
		return -1;
	rc = read_stream(p, s, req->max_len, out, err);
	rpc_process_put(a, c, p);
	return rc;
}

static int read_stdout(struct agent *a, const void *in, void *out, struct kr_err *err)
{
	return read_common(a, in, out, STREAM_STDOUT, err);
}
static void read_prepare(void *req, void *resp, struct rpc_blob *in,
			 struct rpc_blob *out)
{
	kata_run_agent_v1_ReadStreamResponse *r = resp;

	rpc_blob_bind_encode(&r->data, out);
}
RPC_DEFINE_WITH(ReadStdout, ReadStreamRequest, ReadStreamResponse, read_stdout,
		read_prepare)

static int read_stderr(struct agent *a, const void *in, void *out, struct kr_err *err)
{
	return read_common(a, in, out, STREAM_STDERR, err);
}
RPC_DEFINE_WITH(ReadStderr, ReadStreamRequest, ReadStreamResponse, read_stderr,
		read_prepare)

static int write_stdin(struct process *p, const uint8_t *data, size_t len,
		       uint32_t *written, struct kr_err *err)
{
	int fd;
	ssize_t n = 0;

	pthread_mutex_lock(&p->io_lock);
	fd = p->terminal ? p->pty_fd : p->stdin_fd;
	if (fd < 0) {
		pthread_mutex_unlock(&p->io_lock);
		return kr_err_set(err, KR_FAILED_PRECONDITION, "stdin is closed");
	}
	if (len && wait_fd(fd, POLLOUT, RPC_LONG_POLL_MS) > 0) {
		int fl = fcntl(fd, F_GETFL);

		if (!(fl & O_NONBLOCK))
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		do {
			n = write(fd, data, len);
		} while (n < 0 && errno == EINTR);
	}
	pthread_mutex_unlock(&p->io_lock);
	if (n < 0 && errno == EAGAIN)
		n = 0;
	if (n < 0)
		return kr_err_sys(err, "write stdin");
	*written = (uint32_t)n;
	return 0;
}

static int write_stdin_rpc(struct agent *a, const void *in, void *out,
			   struct kr_err *err)
{
	const kata_run_agent_v1_WriteStreamRequest *req = in;
	kata_run_agent_v1_WriteStreamResponse *resp = out;
	struct container *c;
	struct process *p = rpc_process_get(a, req->container_id, req->exec_id, &c, err);
	int rc;

	if (!p)
		return -1;
	const struct rpc_blob *data = req->data.arg;

	rc = write_stdin(p, data->data, data->len, &resp->len, err);
	rpc_process_put(a, c, p);
	return rc;
}
static void write_prepare(void *req, void *resp, struct rpc_blob *in,
			  struct rpc_blob *out)
{
	kata_run_agent_v1_WriteStreamRequest *r = req;

	rpc_blob_bind_decode(&r->data, in, RPC_BLOB_STDIN_MAX);
}
RPC_DEFINE_WITH(WriteStdin, WriteStreamRequest, WriteStreamResponse,
		write_stdin_rpc, write_prepare)

static void close_stdin(struct process *p)
{
	pthread_mutex_lock(&p->io_lock);
	if (p->terminal && p->pty_fd >= 0) {
		/* The pty stays open for output: send EOF the way a terminal does. */
		struct termios t;
		char eof = 4;

		if (tcgetattr(p->pty_fd, &t) == 0)
			eof = (char)t.c_cc[VEOF];
		(void)!write(p->pty_fd, &eof, 1);
	} else if (p->stdin_fd >= 0) {
		close(p->stdin_fd);
		p->stdin_fd = -1;
	}
	pthread_mutex_unlock(&p->io_lock);
}

static int close_stdin_rpc(struct agent *a, const void *in, void *out,
			   struct kr_err *err)
{
	const kata_run_agent_v1_ProcessRequest *req = in;
	struct container *c;
	struct process *p = rpc_process_get(a, req->container_id, req->exec_id, &c, err);

	if (!p)
		return -1;
	close_stdin(p);
	rpc_process_put(a, c, p);
	return 0;
}
RPC_DEFINE(CloseStdin, ProcessRequest, Empty, close_stdin_rpc)

static int tty_resize(struct agent *a, const void *in, void *out,
		      struct kr_err *err)
{
	const kata_run_agent_v1_TtyWinResizeRequest *req = in;
	struct winsize ws = { .ws_row = (unsigned short)req->rows,
			      .ws_col = (unsigned short)req->cols };
	struct container *c;
	struct process *p = rpc_process_get(a, req->container_id, req->exec_id, &c, err);
	int rc = 0;

	if (!p)
		return -1;
	if (!p->terminal || p->pty_fd < 0)
		rc = kr_err_set(err, KR_FAILED_PRECONDITION, "process has no terminal");
	else if (req->rows > 0xffff || req->cols > 0xffff)
		rc = kr_err_set(err, KR_INVALID_ARGUMENT, "window size %ux%u out of range", req->rows, req->cols);
	else if (ioctl(p->pty_fd, TIOCSWINSZ, &ws) < 0)
		rc = kr_err_sys(err, "resize terminal");
	rpc_process_put(a, c, p);
	return rc;
}
RPC_DEFINE(TtyWinResize, TtyWinResizeRequest, Empty, tty_resize)
