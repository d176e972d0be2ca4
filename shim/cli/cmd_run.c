/* kata-run run [--id ID] [--timings] BUNDLE: one container in a fresh VM.
 *
 *   load and check the bundle            (bad input: error, nothing made)
 *   private mount namespace, signal thread
 *   sandbox: pod dir, share the rootfs, boot, wait for the agent
 *   CreateContainer, attach stdio (raw TTY if the spec asks), Start
 *   forward SIGINT/SIGTERM/SIGHUP/... ; SIGWINCH resizes the TTY
 *   wait, flush output, power the VM off, remove everything
 *   exit with the container's status
 *
 * A signal before the container starts cancels the boot (exit 128+N).
 * After it starts, signals go to the container; the third SIGINT/SIGTERM
 * kills it with SIGKILL, so a container that ignores them cannot keep
 * kata-run (and its VM) alive. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "cli.h"
#include "kr/agent_client.h"
#include "kr/log.h"
#include "kr/tty.h"
#include "kr/util.h"
#include "sandbox.h"

#define KILL_AFTER_SIGNALS 3

struct run {
	struct kr_cli *cli;
	struct kr_bundle b;
	struct kr_sandbox *sb;
	char id[65];
	bool tty;			/* container has a TTY and we have one */
	bool timings;
	volatile sig_atomic_t cancel;	/* signal number before the start */
	pthread_mutex_t lock;		/* guards started and sb->agent use */
	bool started;
	unsigned interrupts;
	sigset_t sigs;
};

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

static void forward(struct run *r, int sig)
{
	struct kr_err err = { 0 };

	if (sig == SIGWINCH) {
		unsigned rows, cols;

		if (r->tty && kr_tty_size(STDIN_FILENO, &rows, &cols))
			agent_resize(r->sb->agent, r->id, "", rows, cols, &err);
		return;
	}
	if ((sig == SIGINT || sig == SIGTERM) && ++r->interrupts >= KILL_AFTER_SIGNALS) {
		kr_warn("signal %d received %u times: killing the container", sig, r->interrupts);
		sig = SIGKILL;
	}
	if (agent_signal(r->sb->agent, r->id, "", sig, sig == SIGKILL, &err) < 0)
		kr_debug("forward signal %d: %s", sig, err.msg);
}

static void *signal_main(void *arg)
{
	struct run *r = arg;

	for (;;) {
		int sig;

		if (sigwait(&r->sigs, &sig) != 0)
			continue;
		pthread_mutex_lock(&r->lock);
		if (r->started)
			forward(r, sig);
		else if (sig != SIGWINCH && !r->cancel)
			r->cancel = sig;
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

/* Before any other thread exists, so that every thread inherits the mask
 * and only signal_main sees these signals. */
static int start_signal_thread(struct run *r, struct kr_err *err)
{
	pthread_t t;
	int rc;

	sigemptyset(&r->sigs);
	for (size_t i = 0; i < KR_ARRAY_SIZE(forwarded); i++)
		sigaddset(&r->sigs, forwarded[i]);
	pthread_sigmask(SIG_BLOCK, &r->sigs, NULL);
	rc = pthread_create(&t, NULL, signal_main, r);
	if (rc)
		return kr_err_errno(err, rc, "start the signal thread");
	pthread_detach(t);
	return 0;
}

static void set_started(struct run *r, bool on)
{
	pthread_mutex_lock(&r->lock);
	r->started = on;
	pthread_mutex_unlock(&r->lock);
}

/* Errors about the container's command get the shell's exit codes. */
static int exit_code_for(const struct kr_err *err)
{
	const char *m = strstr(err->msg, "exec ");

	if (!m)
		return KR_EXIT_ERROR;
	if (strstr(m, "not found") || strstr(m, "No such file"))
		return KR_EXIT_NOT_FOUND;
	if (strstr(m, "Permission denied") || strstr(m, "Exec format") || strstr(m, "Is a directory"))
		return KR_EXIT_CANNOT_EXEC;
	return KR_EXIT_ERROR;
}

static int share_bind(void *ctx, const char *host, unsigned index, char *guest, struct kr_err *err)
{
	struct run *r = ctx;

	return kr_sandbox_share_path(r->sb, r->id, host, index, guest, err);
}

/* Share the rootfs and the bind sources, boot, create the container. */
static int boot_and_create(struct run *r, struct kr_err *err)
{
	char guest_rootfs[PATH_MAX];
	kr_cleanup_free char *spec = NULL;
	unsigned rows = 0, cols = 0;
	size_t len;
	uint32_t pid;

	if (r->tty)
		kr_tty_size(STDIN_FILENO, &rows, &cols);
	if (kr_sandbox_share_rootfs(r->sb, r->id, r->b.rootfs, guest_rootfs, err) < 0 ||
	    kr_bundle_guest_spec(&r->b, share_bind, r, rows, cols, &spec, &len, err) < 0)
		return -1;
	if (kr_sandbox_start(r->sb, &r->cancel, err) < 0)
		return -1;
	if (agent_create_container(r->sb->agent, r->id, spec, len, guest_rootfs, false, &pid, err) < 0)
		return -1;	/* the agent names the container and the step */
	kr_debug("container %s created, pid %u in the guest", r->id, pid);
	return 0;
}

/* Nobody reads our output any more (`kata-run b | head`): do what the pipe
 * would do to a local process, SIGPIPE; a container that ignores it (a pid
 * namespace's init does, without a handler) is killed a little later, so
 * that kata-run and the VM end. */
static void output_broken(void *ctx)
{
	struct run *r = ctx;
	bool running;

	kr_info("output closed by its reader: sending SIGPIPE to the container");
	agent_signal(r->sb->agent, r->id, "", SIGPIPE, true, NULL);
	usleep(2000 * 1000);
	pthread_mutex_lock(&r->lock);
	running = r->started;
	pthread_mutex_unlock(&r->lock);
	if (running)
		agent_signal(r->sb->agent, r->id, "", SIGKILL, true, NULL);
}

/* Attach, start, wait, flush.  Returns the container's status or -1. */
static int attach_start_wait(struct run *r, struct kr_err *err)
{
	struct agent_client *agent = r->sb->agent;
	struct agent_stdio *io;
	int status;

	if (r->tty)
		kr_tty_raw(STDIN_FILENO);
	io = agent_stdio_start(agent, r->id, "", STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO,
			       r->b.terminal, err);
	if (!io)
		return kr_err_wrap(err, "attach to container");
	agent_stdio_on_broken(io, output_broken, r);
	set_started(r, true);
	if (agent_container_op(agent, "StartContainer", r->id, err) < 0) {
		set_started(r, false);
		agent_stdio_finish(io, 0);
		return -1;	/* the agent names the container and the step */
	}
	if (agent_wait(agent, r->id, "", &status, NULL, err) < 0) {
		set_started(r, false);
		agent_stdio_finish(io, 0);
		return kr_err_wrap(err, "wait for the container");
	}
	set_started(r, false);
	agent_stdio_finish(io, (int)r->cli->cfg.call_timeout_s * 1000);
	kr_tty_restore();
	return status;
}

static void print_timings(const struct kr_timings *t)
{
	fprintf(stderr, "timings: vm_created_ms=%llu init_ms=%llu agent_ready_ms=%llu container_done_ms=%llu vm_gone_ms=%llu\n",
		(unsigned long long)t->vm_created, (unsigned long long)t->init,
		(unsigned long long)t->agent_ready, (unsigned long long)t->container_done,
		(unsigned long long)t->vm_gone);
}

/* An error from a running VM is often the VM's death: say so. */
static void explain_vm_death(struct run *r, struct kr_err *err)
{
	char tail[2048];

	if (!r->sb->t.vm_created || kr_sandbox_vm_alive(r->sb))
		return;	/* never started, or still running: not the cause */
	kr_sandbox_console_tail(r->sb, 10, tail, sizeof(tail));
	kr_err_wrap(err, "the VM stopped");
	if (tail[0])
		fprintf(stderr, "kata-run: last lines of the guest console:\n%s\n", tail);
}

static int run_bundle(struct run *r, const char *bundle, uint64_t t0)
{
	struct kr_config *cfg = &r->cli->cfg;
	struct kr_err err = { 0 }, e2 = { 0 };
	int status = -1, rc;

	if (kr_bundle_load(bundle, &r->b, &err) < 0 ||
	    kr_config_find_guest(cfg, r->cli->exe_dir, &err) < 0)
		return cli_fail(&err);
	r->tty = r->b.terminal && isatty(STDIN_FILENO);
	if (kr_sandbox_private_mounts(cfg, &err) < 0 || start_signal_thread(r, &err) < 0) {
		kr_bundle_free(&r->b);
		return cli_fail(&err);
	}
	if (kr_sandbox_new(cfg, r->id, t0, &r->sb, &err) < 0) {
		kr_bundle_free(&r->b);
		return cli_fail(&err);
	}
	r->sb->want_init_time = r->timings;
	if (boot_and_create(r, &err) == 0)
		status = attach_start_wait(r, &err);
	kr_tty_restore();
	r->sb->t.container_done = kr_now_ms() - t0;
	if (status < 0) {
		if (err.code != KR_CANCELED)
			explain_vm_death(r, &err);
		rc = err.code == KR_CANCELED && r->cancel ? 128 + (int)r->cancel : exit_code_for(&err);
		cli_fail(&err);
	} else {
		rc = status;
	}
	if (kr_sandbox_stop(r->sb, &e2) < 0) {
		fprintf(stderr, "kata-run: cleanup: %s\n", e2.msg);
		if (rc == 0)
			rc = KR_EXIT_ERROR;
	}
	if (r->timings)
		print_timings(&r->sb->t);
	kr_sandbox_free(r->sb);
	kr_bundle_free(&r->b);
	return rc;
}

static void usage(FILE *f)
{
	fputs("Usage: kata-run [GLOBAL OPTIONS] run [--id ID] [--timings] BUNDLE\n"
	      "       kata-run [GLOBAL OPTIONS] BUNDLE\n"
	      "Run the OCI bundle's container in a new VM, attached to this terminal;\n"
	      "exit with its status (128+N if signal N ended it).\n\n"
	      "  --id ID      sandbox and container id (default: a random kr...)\n"
	      "  --timings    print when each step was reached (ms) on stderr\n", f);
}

int cmd_run(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "timings", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct run r;	/* the signal thread may outlive this frame */
	uint64_t t0 = cli->t0_ms;
	bool id_too_long = false;
	int c;

	r = (struct run){ .cli = cli, .lock = PTHREAD_MUTEX_INITIALIZER };
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			id_too_long = strlen(optarg) >= sizeof(r.id);
			snprintf(r.id, sizeof(r.id), "%s", optarg);
			break;
		case 'T': r.timings = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return KR_EXIT_ERROR;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "kata-run: run: expected one BUNDLE directory\n");
		usage(stderr);
		return KR_EXIT_ERROR;
	}
	if (!r.id[0])
		kr_sandbox_new_id(r.id, sizeof(r.id));
	else if (id_too_long || !kr_sandbox_id_valid(r.id)) {
		struct kr_err err;

		kr_err_set(&err, KR_INVALID_ARGUMENT, "--id %s: 1 to 64 of A-Z a-z 0-9 _ . -", r.id);
		return cli_fail(&err);
	}
	return run_bundle(&r, argv[optind], t0);
}
