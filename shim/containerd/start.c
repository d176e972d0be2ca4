/* `start` (spec section 2.3): make sure a ttrpc server for this container's
 * pod is listening, tell containerd where, and get out of the way.
 *
 * One socket per pod ("group"), named after the hash of
 * "<address>/<namespace>/<group>" as containerd's own shims do.  The first
 * container of a pod binds it and spawns the daemon, which inherits the
 * listening socket as fd 3; later containers find it answering and just
 * return its address.
 *
 * containerd reads stdout and stderr as one pipe and takes everything in it
 * as the address, so on success nothing but the address is written there:
 * logs go to the bundle's `log` FIFO (containerd copies it into its own log)
 * or nowhere.  On failure one line on stdout becomes containerd's error. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/sha256.h"
#include "kr/util.h"
#include "sandbox.h"
#include "shim.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define CONFIG_MAX (1u << 20)		/* config.json: 1 MiB is plenty */
#define STDIN_MAX (16u << 20)		/* the options Any */
#define STDIN_WAIT_MS 2000
#define DAEMON_FD 3			/* where the daemon finds the listener */

/* ---- identifiers and names ------------------------------------------------ */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool shim_id_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > SHIM_ID_MAX || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 1; i < n; i++) {
		if (is_alnum(s[i]))
			continue;
		if (!strchr("._-", s[i]) || !is_alnum(s[i - 1]))
			return false;
	}
	return true;
}

/* Go's path.Clean, in place semantics on a copy: the Go shims hash
 * filepath.Join(address, namespace, group), which cleans the result, so an
 * address such as "/run//containerd/x.sock/" must hash the same here.
 * out has room for strlen(in) + 2. */
static void path_clean(const char *in, char *out)
{
	size_t n = strlen(in), r = 0, w = 0, dotdot = 0;
	bool rooted = in[0] == '/';

	if (rooted) {
		out[w++] = '/';
		r = dotdot = 1;
	}
	while (r < n) {
		if (in[r] == '/') {
			r++;
		} else if (in[r] == '.' && (r + 1 == n || in[r + 1] == '/')) {
			r++;
		} else if (in[r] == '.' && in[r + 1] == '.' && (r + 2 == n || in[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			while (r < n && in[r] != '/')
				out[w++] = in[r++];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
}

int shim_socket_path(const struct shim_args *a, const char *group, char *out,
		     size_t size, struct kr_err *err)
{
	char hex[65];
	char *joined, *clean;
	size_t len;

	if (!a->address || !*a->address || !a->namespace || !*a->namespace || !group || !*group)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "socket path: address, namespace and group id are required");
	len = strlen(a->address) + strlen(a->namespace) + strlen(group) + 3;
	joined = kr_xcalloc(1, len);
	clean = kr_xcalloc(1, len + 2);
	snprintf(joined, len, "%s/%s/%s", a->address, a->namespace, group);
	path_clean(joined, clean);
	kr_sha256_hex(clean, strlen(clean), hex);
	free(joined);
	free(clean);
	if (kr_snprintf(out, size, "%s/%s", SHIM_SOCKET_DIR, hex) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "socket path %s/%s", SHIM_SOCKET_DIR, hex);
	return 0;
}

void shim_sandbox_id(const char *group, char *out, size_t size)
{
	char hex[65];

	if (kr_sandbox_id_valid(group) && strlen(group) < size) {
		snprintf(out, size, "%s", group);
		return;
	}
	/* Too long (container ids go to 76) or not a file name: a stable
	 * short name, so that start, the daemon and delete agree. */
	kr_sha256_hex(group, strlen(group), hex);
	snprintf(out, size, "kr%.16s", hex);
}

/* The sandbox-id annotation of bundle/config.json, or NULL (malloc'd). */
static char *read_group_annotation(const char *bundle)
{
	char path[PATH_MAX];
	struct kr_err err = { 0 };
	struct json_tokener *tok;
	struct json_object *spec, *ann, *v;
	char *text = NULL, *res = NULL;
	size_t len;

	if (kr_snprintf(path, sizeof(path), "%s/config.json", bundle && *bundle ? bundle : ".") < 0)
		return NULL;
	if (kr_read_file(path, CONFIG_MAX, &text, &len, &err) < 0) {
		kr_debug("group id: %s", err.msg);
		return NULL;
	}
	tok = json_tokener_new();
	spec = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
	if (!spec || json_tokener_get_error(tok) != json_tokener_success)
		kr_warn("group id: %s: not valid JSON; using the container id", path);
	else if (json_object_object_get_ex(spec, "annotations", &ann) &&
		 json_object_is_type(ann, json_type_object) &&
		 json_object_object_get_ex(ann, SANDBOX_ID_ANNOTATION, &v) &&
		 json_object_is_type(v, json_type_string))
		res = kr_xstrdup(json_object_get_string(v));
	json_object_put(spec);
	if (tok)
		json_tokener_free(tok);
	free(text);
	return res;
}

void shim_group_id(const char *bundle, const char *id, char *out, size_t size)
{
	char *g = read_group_annotation(bundle);

	/* A sandbox id is the pause container's id: anything containerd
	 * would refuse as an id is not one, and must not merge pods. */
	if (g && shim_id_valid(g) && strlen(g) < size)
		snprintf(out, size, "%s", g);
	else {
		if (g)
			kr_warn("group id: annotation %s=\"%.80s\" is not a valid id; using the container id",
				SANDBOX_ID_ANNOTATION, g);
		snprintf(out, size, "%s", id ? id : "");
	}
	free(g);
}

/* ---- the socket -------------------------------------------------------------- */

/* Listen on path; *fd = -1 (and success) when a live shim already serves
 * it: the pod's daemon runs, join it.  A stale socket is replaced. */
static int listen_or_join(const char *path, int *fd, struct kr_err *err)
{
	*fd = kr_unix_listen(path, err);
	if (*fd < 0) {
		if (err->errnum != EADDRINUSE || kr_unix_probe(path) != 1)
			return -1;
		kr_debug("%s is served already: joining that shim", path);
		kr_err_clear(err);
		return 0;
	}
	/* containerd (root) is the only client. */
	if (chmod(path, 0600) < 0) {
		kr_err_sys(err, "chmod %s", path);
		close(*fd);
		*fd = -1;
		unlink(path);
		return -1;
	}
	return 0;
}

/* ---- the address file ------------------------------------------------------ */

/* bundle/address, which containerd reads to reconnect after a restart: a
 * reader must never see half of it, hence a temporary file and rename. */
static int write_address_file(const char *bundle, const char *addr, struct kr_err *err)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd;

	if (kr_snprintf(path, sizeof(path), "%s/address", bundle) < 0 ||
	    kr_snprintf(tmp, sizeof(tmp), "%s/.address.%d", bundle, (int)getpid()) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "address file in %s", bundle);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return kr_err_sys(err, "create %s", tmp);
	if (kr_write_full(fd, addr, strlen(addr)) < 0) {
		kr_err_sys(err, "write %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		kr_err_sys(err, "rename %s to %s", tmp, path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* ---- the daemon ------------------------------------------------------------- */

/* The child between fork and exec: only system calls.  fds: /dev/null on
 * 0-2, the listener on 3, nothing else (everything else gets CLOEXEC). */
static void __attribute__((noreturn))
daemon_child(const char *exe, char **argv, int lfd, int nullfd, int errfd)
{
	int e;

	/* Its own session: a signal to start's process group (or a
	 * terminal's) must not reach the pod's daemon. */
	if (setsid() < 0)
		goto fail;
	/* Move everything above the target fds first, so that no dup2
	 * below clobbers a descriptor still needed. */
	lfd = fcntl(lfd, F_DUPFD, 10);
	nullfd = fcntl(nullfd, F_DUPFD, 10);
	errfd = fcntl(errfd, F_DUPFD_CLOEXEC, 10);
	if (lfd < 0 || nullfd < 0 || errfd < 0)
		goto fail;
	if (dup2(nullfd, 0) < 0 || dup2(nullfd, 1) < 0 || dup2(nullfd, 2) < 0 ||
	    dup2(lfd, DAEMON_FD) < 0)	/* dup2 clears FD_CLOEXEC on fd 3 */
		goto fail;
	/* Whatever containerd or a library left open stays out of the
	 * long-lived daemon (best effort: needs Linux 5.11). */
	(void)syscall(SYS_close_range, DAEMON_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC);
	execv(exe, argv);
fail:
	e = errno;
	(void)!write(errfd, &e, sizeof(e));
	_exit(127);
}

static void build_daemon_argv(const struct shim_args *a, char **argv)
{
	int n = 0;

	argv[n++] = (char *)SHIM_NAME;
	argv[n++] = (char *)"-namespace";
	argv[n++] = (char *)a->namespace;
	argv[n++] = (char *)"-id";
	argv[n++] = (char *)a->id;
	argv[n++] = (char *)"-address";
	argv[n++] = (char *)a->address;
	if (a->publish_binary && *a->publish_binary) {
		argv[n++] = (char *)"-publish-binary";
		argv[n++] = (char *)a->publish_binary;
	}
	if (a->debug)
		argv[n++] = (char *)"-debug";
	argv[n] = NULL;
}

/* Our binary's path: exec'ing "/proc/self/exe" would name the daemon
 * "exe" in ps.  If the file was replaced since (an upgrade), keep running
 * the binary containerd started, through /proc/self/exe. */
static void self_exe(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);

	if (n > 0 && (size_t)n < size - 1) {
		buf[n] = '\0';
		if (buf[0] == '/' && !strstr(buf, " (deleted)") && access(buf, X_OK) == 0)
			return;
	}
	snprintf(buf, size, "/proc/self/exe");
}

/* Fork and exec the daemon; returns once exec succeeded (a CLOEXEC pipe
 * reports the child's errno if it did not). */
static int spawn_daemon(const struct shim_args *a, int lfd, pid_t *pid, struct kr_err *err)
{
	char *argv[16], exe[PATH_MAX];
	int nullfd, p[2], e = 0;
	ssize_t n;

	build_daemon_argv(a, argv);
	self_exe(exe, sizeof(exe));
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0)
		return kr_err_sys(err, "open /dev/null");
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(nullfd);
		return kr_err_sys(err, "spawn the shim daemon: pipe");
	}
	*pid = fork();
	if (*pid == 0)
		daemon_child(exe, argv, lfd, nullfd, p[1]);
	e = errno;
	close(nullfd);
	close(p[1]);
	if (*pid < 0) {
		close(p[0]);
		return kr_err_errno(err, e, "spawn the shim daemon: fork");
	}
	n = kr_read_full(p[0], &e, sizeof(e));
	close(p[0]);
	if (n == 0)
		return 0;
	waitpid(*pid, NULL, 0);
	*pid = -1;
	return kr_err_errno(err, n == sizeof(e) ? e : EIO, "spawn the shim daemon: exec %s", exe);
}

/* containerd's oom_score_adj + 1: under memory pressure the kernel should
 * pick the shim before containerd (as the Go shims do).  Best effort. */
static void set_oom_score(pid_t child)
{
	char path[64], *text = NULL;
	struct kr_err err = { 0 };
	long v;

	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)getppid());
	if (kr_read_file(path, 32, &text, NULL, &err) < 0) {
		kr_debug("oom_score_adj: %s", err.msg);
		return;
	}
	v = strtol(text, NULL, 10) + 1;
	free(text);
	if (v > 1000)
		v = 1000;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)child);
	if (kr_write_filef(&err, path, "%ld", v) < 0)
		kr_debug("oom_score_adj of the daemon: %s", err.msg);
}

/* ---- start -------------------------------------------------------------------- */

/* containerd writes the runtime options (an Any) to stdin; we take them
 * from CreateTaskRequest.options instead, so read and drop them, bounded
 * in size and time (a terminal when run by hand is left alone). */
static void drain_stdin(void)
{
	uint64_t deadline = kr_now_ms() + STDIN_WAIT_MS;
	size_t total = 0;
	char buf[4096];

	if (isatty(STDIN_FILENO))
		return;
	while (total < STDIN_MAX) {
		uint64_t now = kr_now_ms();
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		ssize_t n;

		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0)
			break;
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	kr_debug("start: %zu bytes of options on stdin (ignored)", total);
}

/* Logs of this short-lived process go to containerd's log FIFO in the
 * bundle, never to the pipe containerd reads the address from. */
static void redirect_logs(const char *bundle)
{
	char path[PATH_MAX];
	struct stat st;
	int fd = -1;

	if (kr_snprintf(path, sizeof(path), "%s/log", bundle) == 0)
		fd = open(path, O_WRONLY | O_NONBLOCK | O_APPEND | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0)
		kr_log_set_fd(fd);
}

static int start_fail(const struct kr_err *err)
{
	char line[KR_ERR_MSG_MAX + 8];
	int n = snprintf(line, sizeof(line), "%s\n", err->msg);

	kr_error("start: %s", err->msg);
	(void)!kr_write_full(STDOUT_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	return 1;
}

static int print_address(const char *addr, struct kr_err *err)
{
	if (kr_write_full(STDOUT_FILENO, addr, strlen(addr)) < 0)
		return kr_err_sys(err, "write the address to stdout");
	return 0;
}

/* After the fork, something failed: containerd will not use this shim.
 * (Nothing to undo when we joined a running one.) */
static void undo_daemon(pid_t pid, const char *sock)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(sock);
}

int shim_start(const struct shim_args *a)
{
	const char *bundle = a->bundle && *a->bundle ? a->bundle : ".";
	char group[SHIM_ID_MAX + 1], sock[PATH_MAX], addr[PATH_MAX + 8], dir[PATH_MAX];
	struct kr_err err = { 0 };
	pid_t pid = -1;
	int lfd;

	redirect_logs(bundle);
	shim_group_id(bundle, a->id, group, sizeof(group));
	if (a->socket && *a->socket)
		snprintf(sock, sizeof(sock), "%s", a->socket);	/* tests, debugging */
	else if (shim_socket_path(a, group, sock, sizeof(sock), &err) < 0)
		return start_fail(&err);
	snprintf(dir, sizeof(dir), "%s", sock);
	*(strrchr(dir, '/') ? strrchr(dir, '/') : dir) = '\0';
	/* 0711: containerd (root) reaches the socket; nobody lists the pods. */
	if ((dir[0] && kr_mkdir_p(dir, 0711, &err) < 0) ||
	    kr_snprintf(addr, sizeof(addr), "unix://%s", sock) < 0 ||
	    listen_or_join(sock, &lfd, &err) < 0)
		return start_fail(&err);
	if (write_address_file(bundle, addr, &err) < 0) {
		if (lfd >= 0) {
			close(lfd);
			unlink(sock);
		}
		return start_fail(&err);
	}
	if (lfd >= 0) {
		int rc = spawn_daemon(a, lfd, &pid, &err);

		close(lfd);
		if (rc < 0) {
			unlink(sock);
			return start_fail(&err);
		}
		set_oom_score(pid);
		kr_debug("start: daemon %d for group %s serves %s", (int)pid, group, addr);
	}
	drain_stdin();
	if (print_address(addr, &err) < 0) {
		undo_daemon(pid, sock);
		return start_fail(&err);
	}
	return 0;
}
