/* `delete` (spec section 2.5): containerd runs it after every task
 * deletion and whenever it lost a shim, with cwd (or -bundle) = the bundle.
 *
 * A live daemon cleans up its own containers on the Delete RPC, and may
 * still serve other containers of the pod, so its VM is left alone.  Only
 * when the pod's owner is gone is its sandbox (VM, virtiofsd, mounts, state)
 * removed here.  Either way the bundle's rootfs mount and a socket nobody
 * serves any more are removed.
 *
 * stdout carries only the packed DeleteResponse; warnings go to stderr
 * (containerd logs them as cleanup warnings).  containerd kills us after
 * 5 s, so a watchdog answers at 4 s whatever the cleanup is doing. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"
#include "sandbox.h"
#include "shim.h"

#define DELETE_EXIT_STATUS 137		/* 128 + SIGKILL, as runc and Kata */
#define DELETE_WATCHDOG_S 4

/* The answer, packed before any slow work so that the watchdog can send
 * it from a signal handler. */
static uint8_t response[64];
static size_t response_len;
static volatile sig_atomic_t answered;

static int pack_response(struct kr_err *err)
{
	PB(DeleteResponse) r = PB_INIT(DELETE_RESPONSE);
	PB(Timestamp) ts = PB_INIT(TIMESTAMP);
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	ts.seconds = now.tv_sec;
	ts.nanos = (int32_t)now.tv_nsec;
	r.pid = 0;
	r.exit_status = DELETE_EXIT_STATUS;
	r.exited_at = &ts;
	response_len = protobuf_c_message_get_packed_size(&r.base);
	if (response_len > sizeof(response))
		return kr_err_set(err, KR_INTERNAL, "DeleteResponse: %zu bytes", response_len);
	protobuf_c_message_pack(&r.base, response);
	return 0;
}

static int send_response(void)
{
	if (answered)
		return 0;
	answered = 1;
	return kr_write_full(STDOUT_FILENO, response, response_len);
}

static void watchdog(int sig)
{
	static const char msg[] = SHIM_NAME " delete: cleanup still running after "
				  "4 s; leaving the rest to `kata-run cleanup`\n";

	(void)sig;
	if (!answered) {
		answered = 1;
		(void)!write(STDOUT_FILENO, response, response_len);
	}
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(0);
}

static void arm_watchdog(void)
{
	struct sigaction sa = { .sa_handler = watchdog };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(DELETE_WATCHDOG_S);
}

static void unmount_rootfs(const char *bundle)
{
	char path[PATH_MAX];
	struct kr_err err = { 0 };

	if (kr_snprintf(path, sizeof(path), "%s/rootfs", bundle) < 0)
		return;
	if (rootfs_unmount(path, &err) < 0)
		kr_warn("delete: %s", err.msg);
}

/* The pod's socket when its daemon is gone: the next start for this
 * group would otherwise find it (it copes, but this is tidier). */
static void remove_dead_socket(const struct shim_args *a, const char *group)
{
	char sock[PATH_MAX];
	struct kr_err err = { 0 };
	struct stat st;

	if (!a->address || !*a->address)
		return;
	if (shim_socket_path(a, group, sock, sizeof(sock), &err) < 0) {
		kr_warn("delete: %s", err.msg);
		return;
	}
	if (lstat(sock, &st) < 0 || !S_ISSOCK(st.st_mode) || kr_unix_probe(sock) != 0)
		return;
	if (unlink(sock) < 0 && errno != ENOENT)
		kr_warn("delete: remove dead socket %s: %s", sock, strerror(errno));
	else
		kr_debug("delete: removed dead socket %s", sock);
}

static void cleanup_sandbox(const char *sandbox_id)
{
	struct kr_config cfg;
	struct kr_err err = { 0 };
	int r;

	if (kr_config_load(&cfg, NULL, &err) < 0) {
		kr_warn("delete: %s; using the built-in defaults", err.msg);
		kr_config_defaults(&cfg);
		kr_err_clear(&err);
	}
	/* libvirt reports harmless probe failures on stderr. */
	setenv("LIBVIRT_LOG_OUTPUTS", kr_log_get_level() >= KR_LOG_DEBUG ? "3:stderr" : "4:file:/dev/null", 0);
	r = kr_sandbox_cleanup(&cfg, sandbox_id, &err);
	if (r == 0)
		kr_info("delete: removed sandbox %s left by a dead shim", sandbox_id);
	else if (r == 1)
		kr_debug("delete: no sandbox %s", sandbox_id);
	else if (err.code == KR_FAILED_PRECONDITION)
		kr_debug("delete: sandbox %s: its shim is alive and cleans up itself (%s)",
			 sandbox_id, err.msg);
	else
		kr_warn("delete: %s", err.msg);
}

int shim_delete(const struct shim_args *a)
{
	const char *bundle = a->bundle && *a->bundle ? a->bundle : ".";
	char group[SHIM_ID_MAX + 1], sandbox_id[65];
	struct kr_err err = { 0 };

	if (pack_response(&err) < 0) {
		kr_error("delete: %s", err.msg);
		return 1;
	}
	arm_watchdog();
	shim_group_id(bundle, a->id, group, sizeof(group));
	shim_sandbox_id(group, sandbox_id, sizeof(sandbox_id));
	kr_debug("delete: container %s, group %s, sandbox %s", a->id, group, sandbox_id);
	unmount_rootfs(bundle);
	remove_dead_socket(a, group);
	cleanup_sandbox(sandbox_id);
	alarm(0);
	if (send_response() < 0) {
		kr_error("delete: write the response to stdout: %s", strerror(errno));
		return 1;
	}
	return 0;
}
