/* stdio: containerd's FIFOs (or file:// URIs) <-> the agent's streams
 * (shim.h).  No open here ever blocks (a FIFO open waits for its peer):
 *
 *   stdout/stderr  O_WRONLY|O_NONBLOCK succeeds when the client already has
 *                  its read end (ctr opens it before Create), then writes
 *                  block normally; a client that leaves gives EPIPE (SIGPIPE
 *                  is ignored) and output is dropped, never stalling the
 *                  pumps.  Without a reader at all, O_RDWR|O_NONBLOCK: the
 *                  pipe buffer takes 64 KiB, the rest is dropped.
 *   stdin          O_RDONLY|O_NONBLOCK: a FIFO that never had a writer
 *                  polls as "nothing yet" (not EOF), so the pump waits for
 *                  the client; EOF after the client closes becomes
 *                  CloseStdin. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kr/agent_client.h"
#include "kr/log.h"
#include "sandbox.h"
#include "shim.h"

static int open_output(const char *uri, struct kr_err *err)
{
	int fd;

	if (!uri || !uri[0])
		return -1;
	if (strncmp(uri, "file://", 7) == 0) {
		fd = open(uri + 7, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			kr_err_sys(err, "open %s", uri);
		return fd < 0 ? -2 : fd;
	}
	if (strncmp(uri, "binary://", 9) == 0) {
		kr_err_set(err, KR_UNIMPLEMENTED, "%s: binary:// logging is not supported", uri);
		return -2;
	}
	if (strncmp(uri, "fifo://", 7) == 0)
		uri += 7;
	fd = open(uri, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFL);

		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		return fd;
	}
	if (errno == ENXIO)	/* no reader (yet) */
		fd = open(uri, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		kr_err_sys(err, "open %s", uri);
		return -2;
	}
	return fd;
}

static int open_input(const char *path, struct kr_err *err)
{
	int fd;

	if (!path || !path[0])
		return -1;
	if (strncmp(path, "fifo://", 7) == 0)
		path += 7;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		kr_err_sys(err, "open %s", path);
		return -2;
	}
	return fd;
}

static void close_fds(struct shim_process *p)
{
	for (int i = 0; i < 3; i++) {
		if (p->fds[i] >= 0)
			close(p->fds[i]);
		p->fds[i] = -1;
	}
}

int io_attach(struct shim *s, struct shim_process *p, struct kr_err *err)
{
	p->fds[0] = open_input(p->stdin_path, err);
	p->fds[1] = open_output(p->stdout_path, err);
	p->fds[2] = p->terminal ? -1 : open_output(p->stderr_path, err);
	for (int i = 0; i < 3; i++)
		if (p->fds[i] == -2) {
			p->fds[i] = -1;
			close_fds(p);
			return -1;
		}
	p->io = agent_stdio_start(s->sb->agent, p->task->id, p->exec_id, p->fds[0], p->fds[1],
				  p->fds[2], p->terminal, err);
	if (!p->io) {
		close_fds(p);
		return -1;
	}
	return 0;
}

void io_detach(struct shim_process *p, int timeout_ms)
{
	if (p->io) {
		agent_stdio_finish(p->io, timeout_ms);
		p->io = NULL;
	}
	close_fds(p);
}
