/* Starting a container's init or an exec'd process.
 *
 *   agent ──fork──> stage 1: user ns (maps written by the agent), setns to
 *                   the spec's namespace paths, unshare the rest; forks
 *                   stage 2 when a pid namespace must take effect, reports
 *                   its pid and exits
 *                   stage 2: waits until the agent has put it into the
 *                   cgroup; cgroup ns, hostname, rootfs, pty, sysctls,
 *                   masked paths, cwd, rlimits; reports READY; waits for
 *                   START; seccomp, capabilities, user; execve
 *
 * The agent and the child talk over a SOCK_SEQPACKET pair (fixed-size
 * struct sync_msg, plus the pty master passed with SCM_RIGHTS).  The child's
 * end is close-on-exec, so EOF after START means execve succeeded; a failure
 * at any step comes back as SYNC_ERROR carrying errno and the message
 * ("exec /bin/nope: No such file or directory"). */
#ifndef KR_AGENT_LAUNCH_H
#define KR_AGENT_LAUNCH_H

#include <stdbool.h>
#include <sys/types.h>

#include "kr/error.h"
#include "spec.h"

struct cgroup;

struct launch_config {
	const struct oci_spec *spec;	/* the container's spec */
	const struct oci_process *proc;	/* what to run */
	bool is_exec;			/* join target_pid's namespaces */
	pid_t target_pid;
	const char *rootfs_source;	/* create only */
	bool overlay;
	const char *state_dir;
	struct cgroup *cg;
	unsigned timeout_ms;		/* set-up deadline */
};

struct launch_result {
	pid_t pid;			/* in the agent's pid namespace */
	int sync_fd;			/* create: until launch_start() */
	int stdin_fd, stdout_fd, stderr_fd;	/* pipes (agent ends) */
	int pty_fd;			/* terminal mode: pty master */
};

/* Create the process.  For a container init, returns once it is ready and
 * waiting for launch_start(); for an exec, once execve succeeded.  On failure
 * nothing is left running (the child is killed). */
int launch_create(const struct launch_config *cfg, struct launch_result *res,
		  struct kr_err *err);
/* Let a created init exec; returns once execve succeeded or failed.  Closes
 * sync_fd. */
int launch_start(int sync_fd, unsigned timeout_ms, struct kr_err *err);
void launch_result_close(struct launch_result *res);

#endif
