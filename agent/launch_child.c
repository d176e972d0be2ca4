/* The child side of a launch: stage 1 (namespaces) and stage 2 (everything
 * else up to execve).  Runs in a forked, single-threaded copy of the agent:
 * errors travel back over the sync socket (sync_fail), never to a log. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "agent.h"
#include "kr/log.h"
#include "kr/util.h"
#include "launch_internal.h"
#include "rootfs.h"
#include "security.h"
#include "sync.h"

#define SYNC_CHILD_FD 3
#define LOG_CHILD_FD 4	/* the agent's log, so set-up steps can log */
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Put stdio on 0-2 and the sync socket on 3, then close everything else:
 * other launches running concurrently in the agent must not see their pipes
 * held open by this child (they would never get EOF). */
static int child_fds(int sync_fd, const struct launch_child_fds *fds,
		     struct kr_err *err)
{
	int in = fds->stdin_r, out = fds->stdout_w, errfd = fds->stderr_w;
	int logfd = fcntl(kr_log_fd(), F_DUPFD_CLOEXEC, 10);

	if (in < 0 || out < 0 || errfd < 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null < 0)
			return kr_err_sys(err, "open /dev/null");
		in = in < 0 ? null : in;
		out = out < 0 ? null : out;
		errfd = errfd < 0 ? null : errfd;
	}
	/* dup2 onto 0-3 would clobber a source that already sits there: move
	 * everything above 10 first. */
	in = fcntl(in, F_DUPFD_CLOEXEC, 10);
	out = fcntl(out, F_DUPFD_CLOEXEC, 10);
	errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 10);
	sync_fd = fcntl(sync_fd, F_DUPFD_CLOEXEC, 10);
	if (in < 0 || out < 0 || errfd < 0 || sync_fd < 0)
		return kr_err_sys(err, "dup stdio");
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0 ||
	    dup3(sync_fd, SYNC_CHILD_FD, O_CLOEXEC) < 0)
		return kr_err_sys(err, "dup2 stdio");
	/* Never log into the container's stderr: no log rather than that. */
	if (logfd < 0 || dup3(logfd, LOG_CHILD_FD, O_CLOEXEC) < 0)
		kr_log_set_level(KR_LOG_ERROR);
	kr_log_set_fd(logfd < 0 ? -1 : LOG_CHILD_FD);
	if (syscall(SYS_close_range, LOG_CHILD_FD + 1, ~0U, 0) < 0) {
		for (int fd = LOG_CHILD_FD + 1; fd < 1024; fd++)
			close(fd);
	}
	return 0;
}

/* Enter a new user namespace and let the agent (privileged in the parent
 * namespace) write our maps; then become root inside. */
static int child_userns(int sync, struct kr_err *err)
{
	struct sync_msg m;

	if (unshare(CLONE_NEWUSER) < 0)
		return kr_err_sys(err, "unshare user namespace");
	if (sync_send(sync, SYNC_USERNS_READY, 0) < 0)
		return kr_err_sys(err, "launch channel");
	if (sync_recv(sync, &m, NULL, 0, err) <= 0 || m.type != SYNC_USERNS_MAPPED)
		return kr_err_set(err, KR_INTERNAL, "user namespace: agent did not write the id maps");
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return kr_err_sys(err, "become root in the user namespace");
	return 0;
}

static const struct {
	int flag;
	const char *name;
} ns_order[] = {
	/* user first: it grants the rights to join the others; mnt last
	 * because it changes our root. */
	{ CLONE_NEWUSER, "user" }, { CLONE_NEWIPC, "ipc" },
	{ CLONE_NEWUTS, "uts" }, { CLONE_NEWNET, "net" },
	{ CLONE_NEWPID, "pid" }, { CLONE_NEWCGROUP, "cgroup" },
	{ CLONE_NEWNS, "mnt" },
};

static int join_ns_path(const char *path, int flag, struct kr_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return kr_err_sys(err, "open namespace %s", path);
	if (setns(fd, flag) < 0) {
		kr_err_sys(err, "join namespace %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Create: join the namespaces the spec names by path, unshare the rest.
 * Returns the flags whose effect needs a fork (CLONE_NEWPID). */
static int child_create_ns(int sync, const struct oci_spec *spec,
			   struct kr_err *err)
{
	int unshare_flags = 0;

	const struct oci_namespace *user = spec_namespace(spec, CLONE_NEWUSER);
	if (user && user->path) {
		if (join_ns_path(user->path, CLONE_NEWUSER, err) < 0)
			return -1;
	} else if (user && child_userns(sync, err) < 0) {
		return -1;
	}
	for (size_t i = 1; i < KR_ARRAY_SIZE(ns_order); i++) {
		const struct oci_namespace *ns = spec_namespace(spec, ns_order[i].flag);

		if (!ns)
			continue;
		if (ns->path) {
			if (join_ns_path(ns->path, ns_order[i].flag, err) < 0)
				return -1;
		} else if (ns_order[i].flag != CLONE_NEWCGROUP) {
			/* cgroup ns: unshared in stage 2, once inside the cgroup */
			unshare_flags |= ns_order[i].flag;
		}
	}
	if (unshare_flags && unshare(unshare_flags) < 0)
		return kr_err_sys(err, "unshare namespaces 0x%x", unshare_flags);
	return unshare_flags & CLONE_NEWPID;
}

/* Exec: join every namespace of the container's init that differs from
 * ours.  Returns CLONE_NEWPID when the pid namespace changed. */
static int child_exec_ns(pid_t target, struct kr_err *err)
{
	int changed = 0;

	for (size_t i = 0; i < KR_ARRAY_SIZE(ns_order); i++) {
		char path[64], own[64];
		struct stat a, b;

		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)target, ns_order[i].name);
		snprintf(own, sizeof(own), "/proc/self/ns/%s", ns_order[i].name);
		if (stat(path, &a) < 0) {
			if (errno == ENOENT)
				continue;	/* kernel without this namespace type */
			return kr_err_sys(err, "container process %d", (int)target);
		}
		if (stat(own, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			continue;
		if (join_ns_path(path, ns_order[i].flag, err) < 0)
			return -1;
		changed |= ns_order[i].flag;
	}
	return changed & CLONE_NEWPID;
}

/* Open a pty in the container's own devpts, hand the master to the agent
 * and make the slave our controlling terminal on 0-2. */
static int child_pty(int sync, const struct oci_process *p, struct kr_err *err)
{
	char name[64];
	int master, slave;

	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return kr_err_sys(err, "open /dev/ptmx");
	if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0)
		return kr_err_sys(err, "set up pty");
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return kr_err_sys(err, "open %s", name);
	if (p->console_rows && p->console_cols) {
		struct winsize ws = { .ws_row = p->console_rows, .ws_col = p->console_cols };

		ioctl(slave, TIOCSWINSZ, &ws);
	}
	if (sync_send_fd(sync, SYNC_PTY, master) < 0)
		return kr_err_sys(err, "send pty to agent");
	close(master);
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
		return kr_err_sys(err, "dup2 pty");
	close(slave);
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		return kr_err_sys(err, "set controlling terminal");
	return 0;
}

static int child_sysctls(const struct oci_spec *spec, struct kr_err *err)
{
	for (size_t i = 0; i < spec->n_sysctls; i++) {
		char path[512];

		if (strstr(spec->sysctls[i].key, ".."))
			return kr_err_set(err, KR_INVALID_ARGUMENT, "sysctl %s: invalid name", spec->sysctls[i].key);
		snprintf(path, sizeof(path), "/proc/sys/%s", spec->sysctls[i].key);
		for (char *c = path + strlen("/proc/sys/"); *c; c++)
			if (*c == '.')
				*c = '/';
		if (kr_write_file(path, spec->sysctls[i].value, err) < 0)
			return kr_err_wrap(err, "sysctl %s", spec->sysctls[i].key);
	}
	return 0;
}

/* Resolve argv[0] as execvp would, in the container's root, so that a
 * missing binary fails at create time with a clear message. */
static int child_resolve_exe(const struct oci_process *p, char *out,
			     size_t size, struct kr_err *err)
{
	const char *cmd = p->args[0];
	const char *path;
	struct stat st;

	if (strchr(cmd, '/')) {
		if (stat(cmd, &st) < 0)
			return kr_err_sys(err, "exec %s", cmd);
		if (S_ISDIR(st.st_mode))
			return kr_err_errno(err, EISDIR, "exec %s", cmd);
		if (kr_snprintf(out, size, "%s", cmd) < 0)
			return kr_err_errno(err, ENAMETOOLONG, "exec %s", cmd);
		return 0;
	}
	path = spec_getenv(p->env, "PATH");
	if (!path)
		path = DEFAULT_PATH;
	while (*path) {
		size_t len = strcspn(path, ":");

		if (len && len < size &&
		    kr_snprintf(out, size, "%.*s/%s", (int)len, path, cmd) >= 0 &&
		    stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return 0;
		path += len;
		if (*path == ':')
			path++;
	}
	return kr_err_errno(err, ENOENT, "exec %s: not found in PATH", cmd);
}

/* As runc: without HOME in the spec, take the user's home from the
 * container's /etc/passwd ("/" if none).  Returns the env to exec with. */
static char **child_env_with_home(const struct oci_process *p)
{
	char line[1024], home[512] = "/";
	char **env;
	FILE *f;

	if (spec_getenv(p->env, "HOME"))
		return p->env;
	f = fopen("/etc/passwd", "re");
	while (f && fgets(line, sizeof(line), f)) {
		char *fields[7], *tok = line;
		int n = 0;

		/* strtok would merge empty fields: split by hand. */
		while (n < 7 && tok) {
			fields[n++] = tok;
			tok = strchr(tok, ':');
			if (tok)
				*tok++ = '\0';
		}
		if (n >= 6 && strtoul(fields[2], NULL, 10) == p->user.uid && fields[5][0]) {
			snprintf(home, sizeof(home), "%s", fields[5]);
			home[strcspn(home, "\n")] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	env = calloc(p->n_env + 2, sizeof(*env));
	if (!env)
		return p->env;
	for (size_t i = 0; i < p->n_env; i++)
		env[i] = p->env[i];
	if (asprintf(&env[p->n_env], "HOME=%s", home) < 0)
		return p->env;
	return env;
}

static int child_oom_score_adj(const struct oci_process *p, struct kr_err *err)
{
	if (!p->has_oom_score_adj)
		return 0;
	return kr_write_filef(err, "/proc/self/oom_score_adj", "%d", p->oom_score_adj);
}

/* Seccomp, capabilities, user, no_new_privs, in the order runc uses: with
 * no_new_privs off the filter must be loaded while we still have
 * CAP_SYS_ADMIN; with it on, as late as possible. */
static int child_confine(const struct oci_spec *spec, const struct oci_process *p,
			 struct kr_err *err)
{
	struct oci_caps none = { 0 };
	const struct oci_caps *caps = p->has_caps ? &p->caps : &none;

	if (spec->seccomp && !p->no_new_privileges &&
	    seccomp_apply(spec->seccomp, err) < 0)
		return -1;
	/* Without a capabilities object the process gets none, bounding set
	 * included: a setuid binary must not win them back. */
	if (caps_apply_bounding(caps, err) < 0)
		return -1;
	if (user_apply(&p->user, err) < 0)
		return -1;
	if (caps_apply(caps, err) < 0)
		return -1;
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kr_err_sys(err, "set no_new_privs");
	if (spec->seccomp && p->no_new_privileges &&
	    seccomp_apply(spec->seccomp, err) < 0)
		return -1;
	return 0;
}

static int child_wait_start(int sync, struct kr_err *err)
{
	struct sync_msg m;
	int rc = sync_recv(sync, &m, NULL, 0, err);

	if (rc <= 0 || m.type != SYNC_START)
		return kr_err_set(err, KR_ABORTED, "agent gave up before start");
	return 0;
}

static void stage2(const struct launch_config *cfg, int sync)
{
	const struct oci_spec *spec = cfg->spec;
	const struct oci_process *p = cfg->proc;
	char exe[4096], **env;
	struct sync_msg m;
	struct kr_err err = { 0 };

	if (sync_recv(sync, &m, NULL, 0, &err) <= 0 || m.type != SYNC_CGROUP_DONE) {
		kr_err_set(&err, KR_INTERNAL, "agent did not place the process in its cgroup");
		sync_fail(sync, &err, 1);
	}
	if (!cfg->is_exec && spec_has_namespace(spec, CLONE_NEWCGROUP) &&
	    !spec_namespace(spec, CLONE_NEWCGROUP)->path &&
	    unshare(CLONE_NEWCGROUP) < 0) {
		kr_err_sys(&err, "unshare cgroup namespace");
		sync_fail(sync, &err, 1);
	}
	if (setsid() < 0) {
		kr_err_sys(&err, "setsid");
		sync_fail(sync, &err, 1);
	}
	if (!cfg->is_exec) {
		if (spec->hostname && spec_has_namespace(spec, CLONE_NEWUTS) &&
		    sethostname(spec->hostname, strlen(spec->hostname)) < 0) {
			kr_err_sys(&err, "set hostname %s", spec->hostname);
			sync_fail(sync, &err, 1);
		}
		struct rootfs_config rc = {
			.spec = spec, .source = cfg->rootfs_source,
			.overlay = cfg->overlay, .state_dir = cfg->state_dir,
		};
		if (rootfs_setup(&rc, &err) < 0)
			sync_fail(sync, &err, 1);
	}
	if (p->terminal && child_pty(sync, p, &err) < 0)
		sync_fail(sync, &err, 1);
	if (!cfg->is_exec &&
	    (child_sysctls(spec, &err) < 0 || rootfs_finalize(spec, &err) < 0))
		sync_fail(sync, &err, 1);
	if (chdir(p->cwd ? p->cwd : "/") < 0) {
		kr_err_sys(&err, "chdir %s", p->cwd ? p->cwd : "/");
		sync_fail(sync, &err, 1);
	}
	if (child_resolve_exe(p, exe, sizeof(exe), &err) < 0 ||
	    child_oom_score_adj(p, &err) < 0 || rlimits_apply(p, &err) < 0)
		sync_fail(sync, &err, 1);
	env = child_env_with_home(p);
	if (sync_send(sync, SYNC_READY, 0) < 0)
		_exit(1);
	if (!cfg->is_exec && child_wait_start(sync, &err) < 0)
		_exit(1);
	if (child_confine(spec, p, &err) < 0)
		sync_fail(sync, &err, 1);
	execve(exe, p->args, env);
	kr_err_sys(&err, "exec %s", p->args[0]);
	sync_fail(sync, &err, 127);
}

void launch_child(const struct launch_config *cfg, int sync_fd,
		  const struct launch_child_fds *fds)
{
	struct kr_err err = { 0 };
	int need_fork;
	pid_t pid;

	reaper_child_reset_signals();
	if (child_fds(sync_fd, fds, &err) < 0)
		sync_fail(sync_fd, &err, 1);
	/* No PR_SET_PDEATHSIG: it fires when the forking *thread* exits, and
	 * RPC handler threads are short-lived.  The agent kills children that
	 * it gives up on instead. */
	need_fork = cfg->is_exec ? child_exec_ns(cfg->target_pid, &err)
				 : child_create_ns(SYNC_CHILD_FD, cfg->spec, &err);
	if (need_fork < 0)
		sync_fail(SYNC_CHILD_FD, &err, 1);
	if (!need_fork) {
		if (sync_send(SYNC_CHILD_FD, SYNC_PID, getpid()) < 0)
			_exit(1);
		stage2(cfg, SYNC_CHILD_FD);
	}
	/* A new pid namespace applies to children only. */
	pid = fork();
	if (pid < 0) {
		kr_err_sys(&err, "fork into the pid namespace");
		sync_fail(SYNC_CHILD_FD, &err, 1);
	}
	if (pid == 0)
		stage2(cfg, SYNC_CHILD_FD);
	if (sync_send(SYNC_CHILD_FD, SYNC_PID, pid) < 0)
		kill(pid, SIGKILL);
	_exit(0);
}
