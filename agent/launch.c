/* The agent side of a launch: see launch.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "cgroup.h"
#include "kr/log.h"
#include "kr/util.h"
#include "launch_internal.h"
#include "sync.h"

struct launch_pipes {
	int in[2], out[2], err[2];
};

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		p[i] = -1;
	}
}

static int make_pipes(bool terminal, struct launch_pipes *lp,
		      struct kr_err *err)
{
	lp->in[0] = lp->in[1] = lp->out[0] = lp->out[1] = -1;
	lp->err[0] = lp->err[1] = -1;
	if (terminal)
		return 0;
	if (pipe2(lp->in, O_CLOEXEC) < 0 || pipe2(lp->out, O_CLOEXEC) < 0 ||
	    pipe2(lp->err, O_CLOEXEC) < 0) {
		kr_err_sys(err, "create stdio pipes");
		close_pair(lp->in);
		close_pair(lp->out);
		close_pair(lp->err);
		return -1;
	}
	return 0;
}

static int write_id_map(pid_t pid, const char *file,
			const struct oci_id_mapping *m, size_t n,
			struct kr_err *err)
{
	char buf[4096], path[64];
	size_t off = 0;

	if (n == 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "user namespace without %s mappings", file);
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + off, sizeof(buf) - off, "%u %u %u\n",
				 m[i].container_id, m[i].host_id, m[i].size);

		if (w < 0 || (size_t)w >= sizeof(buf) - off)
			return kr_err_set(err, KR_INVALID_ARGUMENT, "too many %s mappings", file);
		off += (size_t)w;
	}
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	return kr_write_file(path, buf, err);
}

static int handle_userns(const struct launch_config *cfg, pid_t stage1,
			 int sync, struct kr_err *err)
{
	const struct oci_spec *s = cfg->spec;

	if (write_id_map(stage1, "uid_map", s->uid_mappings, s->n_uid_mappings, err) < 0 ||
	    write_id_map(stage1, "gid_map", s->gid_mappings, s->n_gid_mappings, err) < 0)
		return kr_err_wrap(err, "user namespace");
	if (sync_send(sync, SYNC_USERNS_MAPPED, 0) < 0)
		return kr_err_sys(err, "launch channel");
	return 0;
}

static int handle_pid(const struct launch_config *cfg, pid_t pid, int sync,
		      struct kr_err *err)
{
	if (cfg->cg && cgroup_add_pid(cfg->cg, pid, err) < 0)
		return -1;
	if (sync_send(sync, SYNC_CGROUP_DONE, 0) < 0)
		return kr_err_sys(err, "launch channel");
	return 0;
}

/* Wait for EOF (execve closed the child's end) or SYNC_ERROR. */
static int wait_exec(int sync, uint64_t deadline, struct kr_err *err)
{
	struct sync_msg m;
	int rc;

	for (;;) {
		rc = sync_recv(sync, &m, NULL, deadline, err);
		if (rc < 0)
			return kr_err_wrap(err, "waiting for exec");
		if (rc == 0)
			return 0;
		if (m.type == SYNC_ERROR) {
			kr_err_set(err, m.errnum ? kr_code_from_errno(m.errnum) : KR_UNKNOWN, "%s", m.msg);
			err->errnum = m.errnum;
			return -1;
		}
	}
}

/* Drive the child through set-up until READY (and, for an exec, until the
 * execve).  Returns 0 or -1 with err. */
static int drive_child(const struct launch_config *cfg, pid_t stage1,
		       int sync, struct launch_result *res, struct kr_err *err)
{
	uint64_t deadline = kr_now_ms() + (cfg->timeout_ms ? cfg->timeout_ms : 30000);
	struct sync_msg m;
	int passfd, rc;

	for (;;) {
		rc = sync_recv(sync, &m, &passfd, deadline, err);
		if (rc < 0)
			return kr_err_wrap(err, "container set-up");
		if (rc == 0)
			return kr_err_set(err, KR_INTERNAL, "container process exited during set-up");
		switch (m.type) {
		case SYNC_USERNS_READY:
			if (handle_userns(cfg, stage1, sync, err) < 0)
				return -1;
			break;
		case SYNC_PID:
			res->pid = m.pid;
			if (handle_pid(cfg, m.pid, sync, err) < 0)
				return -1;
			break;
		case SYNC_PTY:
			if (passfd < 0)
				return kr_err_set(err, KR_INTERNAL, "pty message without a file descriptor");
			res->pty_fd = passfd;
			break;
		case SYNC_READY:
			return cfg->is_exec ? wait_exec(sync, deadline, err) : 0;
		case SYNC_ERROR:
			kr_err_set(err, m.errnum ? kr_code_from_errno(m.errnum) : KR_UNKNOWN, "%s", m.msg);
			err->errnum = m.errnum;
			return -1;
		default:
			if (passfd >= 0)
				close(passfd);
			return kr_err_set(err, KR_INTERNAL, "unexpected launch message %u", m.type);
		}
	}
}

int launch_create(const struct launch_config *cfg, struct launch_result *res,
		  struct kr_err *err)
{
	struct launch_pipes lp;
	int sv[2];
	pid_t stage1;

	*res = (struct launch_result){ .pid = -1, .sync_fd = -1, .stdin_fd = -1,
				       .stdout_fd = -1, .stderr_fd = -1, .pty_fd = -1 };
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return kr_err_sys(err, "create launch channel");
	if (make_pipes(cfg->proc->terminal, &lp, err) < 0) {
		close_pair(sv);
		return -1;
	}
	stage1 = fork();
	if (stage1 < 0) {
		kr_err_sys(err, "fork");
		close_pair(sv);
		close_pair(lp.in);
		close_pair(lp.out);
		close_pair(lp.err);
		return -1;
	}
	if (stage1 == 0) {
		struct launch_child_fds fds = { lp.in[0], lp.out[1], lp.err[1] };

		launch_child(cfg, sv[1], &fds);
	}
	reaper_ignore(stage1);
	close(sv[1]);
	close(lp.in[0]);
	close(lp.out[1]);
	close(lp.err[1]);
	res->sync_fd = sv[0];
	res->stdin_fd = lp.in[1];
	res->stdout_fd = lp.out[0];
	res->stderr_fd = lp.err[0];
	if (drive_child(cfg, stage1, sv[0], res, err) < 0) {
		kill(stage1, SIGKILL);
		if (res->pid > 0)
			kill(res->pid, SIGKILL);
		launch_result_close(res);
		return -1;
	}
	if (cfg->is_exec) {
		close(res->sync_fd);
		res->sync_fd = -1;
	}
	return 0;
}

int launch_start(int sync_fd, unsigned timeout_ms, struct kr_err *err)
{
	int rc;

	if (sync_send(sync_fd, SYNC_START, 0) < 0) {
		close(sync_fd);
		return kr_err_set(err, KR_INTERNAL, "container process exited before start");
	}
	rc = wait_exec(sync_fd, kr_now_ms() + (timeout_ms ? timeout_ms : 30000), err);
	close(sync_fd);
	return rc;
}

void launch_result_close(struct launch_result *res)
{
	int *fds[] = { &res->sync_fd, &res->stdin_fd, &res->stdout_fd,
		       &res->stderr_fd, &res->pty_fd };

	for (size_t i = 0; i < KR_ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}
