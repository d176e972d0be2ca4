/* kata-agent: the guest side of kata-run.  Runs as the guest's PID 1 (or on
 * a host for tests), serves the agent API over ttrpc and creates the
 * containers.  See docs/architecture.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agent.h"
#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"
#include "rpc.h"

#define DEFAULT_VSOCK_PORT 1024
#define MAX_INFLIGHT 128

struct options {
	const char *listen;
	const char *share_tag;	/* virtio-fs tag to mount at AGENT_SHARED_DIR */
	const char *log_level;
	const char *log_file;
	struct agent_config cfg;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kata-agent [OPTIONS]\n"
		"The kata-run guest agent: serves the agent API (ttrpc) and runs containers.\n\n"
		"  -l, --listen ADDR       unix:PATH, vsock:PORT or serial:NAME (a virtio-serial\n"
		"                          port named NAME); default vsock:%d\n"
		"      --state-dir DIR     container state (default /run/kata-agent)\n"
		"      --cgroup-root DIR   cgroup mount root (default /sys/fs/cgroup)\n"
		"      --cgroup-prefix P   parent of container cgroups (default kata-run)\n"
		"      --log-level L       error, warn, info, debug (default info)\n"
		"      --log-file FILE     log here instead of stderr\n"
		"  -h, --help              this text\n"
		"  -V, --version           print the version\n\n"
		"As PID 1 it also mounts /proc, /sys, /dev, cgroup2, /run and /tmp, and\n"
		"options come from the kernel command line: kata_run.agent.listen=ADDR,\n"
		"kata_run.agent.log=LEVEL, and kata_run.agent.share=TAG (mount the virtio-fs\n"
		"share TAG, holding the containers' root file systems, at %s).\n",
		DEFAULT_VSOCK_PORT, AGENT_SHARED_DIR);
}

/* As init, our options come from the kernel command line. */
static void options_from_cmdline(struct options *o)
{
	static char buf[4096];
	char *save = NULL;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		if (!strncmp(tok, "kata_run.agent.listen=", 22))
			o->listen = tok + 22;
		else if (!strncmp(tok, "kata_run.agent.log=", 19))
			o->log_level = tok + 19;
		else if (!strncmp(tok, "kata_run.agent.share=", 21))
			o->share_tag = tok + 21;
	}
}

static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_STATE = 256, OPT_CG_ROOT, OPT_CG_PREFIX, OPT_LOG_LEVEL, OPT_LOG_FILE };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "cgroup-root", required_argument, NULL, OPT_CG_ROOT },
		{ "cgroup-prefix", required_argument, NULL, OPT_CG_PREFIX },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "log-file", required_argument, NULL, OPT_LOG_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "l:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case OPT_STATE: o->cfg.state_dir = optarg; break;
		case OPT_CG_ROOT: o->cfg.cgroup_root = optarg; break;
		case OPT_CG_PREFIX: o->cfg.cgroup_prefix = optarg; break;
		case OPT_LOG_LEVEL: o->log_level = optarg; break;
		case OPT_LOG_FILE: o->log_file = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("kata-agent %s\n", KR_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kata-agent: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

static int listen_vsock(unsigned port, struct kr_err *err)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port,
				  .svm_cid = VMADDR_CID_ANY };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return kr_err_sys(err, "vsock socket (is CONFIG_VIRTIO_VSOCKETS in the guest kernel?)");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		kr_err_sys(err, "listen on vsock port %u", port);
		close(fd);
		return -1;
	}
	return fd;
}

/* A virtio-serial port is found by the name the host gave it. */
static int find_serial_port(const char *name, char *dev, size_t size,
			    struct kr_err *err)
{
	glob_t g;
	int rc = -1;

	if (glob("/sys/class/virtio-ports/*/name", 0, NULL, &g) != 0)
		return kr_err_set(err, KR_NOT_FOUND, "no virtio-serial ports (is CONFIG_VIRTIO_CONSOLE in the guest kernel?)");
	for (size_t i = 0; i < g.gl_pathc && rc < 0; i++) {
		char *got = NULL;

		if (kr_read_file(g.gl_pathv[i], 256, &got, NULL, NULL) < 0)
			continue;
		got[strcspn(got, "\n")] = '\0';
		if (strcmp(got, name) == 0) {
			const char *port = strrchr(g.gl_pathv[i], '/');
			char tmp[512];

			snprintf(tmp, sizeof(tmp), "%.*s", (int)(port - g.gl_pathv[i]), g.gl_pathv[i]);
			snprintf(dev, size, "/dev/%s", strrchr(tmp, '/') + 1);
			rc = 0;
		}
		free(got);
	}
	globfree(&g);
	if (rc < 0)
		kr_err_set(err, KR_NOT_FOUND, "virtio-serial port \"%s\" not found", name);
	return rc;
}

/* The port is opened once and never closed: closing a virtio-serial port
 * discards its unread input, so a request that arrives while we are between
 * two host connections would be lost.  Each host connection is served on a
 * dup of the port; when the host hangs up, reads return 0 and we poll
 * (POLLHUP until it reconnects) before serving again. */
static int serve_serial(struct ttrpc_server *srv, const char *name,
			struct kr_err *err)
{
	char dev[256];
	int port;

	if (find_serial_port(name, dev, sizeof(dev), err) < 0)
		return -1;
	port = open(dev, O_RDWR | O_CLOEXEC);
	if (port < 0)
		return kr_err_sys(err, "open %s", dev);
	kr_info("serving on virtio-serial port %s (%s)", name, dev);
	for (;;) {
		struct pollfd pfd = { .fd = port, .events = POLLIN };
		int conn;

		/* Host not connected: POLLHUP without POLLIN; wait a little. */
		if (poll(&pfd, 1, 1000) >= 0 && !(pfd.revents & POLLIN)) {
			usleep(20 * 1000);
			continue;
		}
		conn = fcntl(port, F_DUPFD_CLOEXEC, 0);
		if (conn < 0)
			return kr_err_sys(err, "dup %s", dev);
		ttrpc_server_serve_conn(srv, conn);
	}
}

static int serve(struct ttrpc_server *srv, const char *listen_addr,
		 struct kr_err *err)
{
	int fd;

	if (!strncmp(listen_addr, "serial:", 7))
		return serve_serial(srv, listen_addr + 7, err);
	if (!strncmp(listen_addr, "unix:", 5)) {
		fd = kr_unix_listen(listen_addr + 5, err);
	} else if (!strncmp(listen_addr, "vsock:", 6)) {
		char *end;
		unsigned long port = strtoul(listen_addr + 6, &end, 10);

		if (*end || port == 0 || port > 0xffffffffUL)
			return kr_err_set(err, KR_INVALID_ARGUMENT, "invalid vsock port in %s", listen_addr);
		fd = listen_vsock((unsigned)port, err);
	} else {
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "--listen %s: expected unix:PATH, vsock:PORT or serial:NAME", listen_addr);
	}
	if (fd < 0)
		return -1;
	kr_info("listening on %s", listen_addr);
	return ttrpc_server_serve_listener(srv, fd, err);
}

static uint64_t boottime_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct agent agent_state = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static int agent_init(struct agent *a, const struct options *o,
		      struct kr_err *err)
{
	pthread_condattr_t ca;

	a->cfg = o->cfg;
	a->is_pid1 = getpid() == 1;
	if (a->is_pid1 && getenv("KATA_AGENT_INIT_MS"))
		a->init_started_ms = strtoull(getenv("KATA_AGENT_INIT_MS"), NULL, 10);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->exited, &ca);
	pthread_condattr_destroy(&ca);
	agent_global = a;
	/* 0711 even if it existed: a user namespace's mapped root must be able
	 * to traverse it to its container's rootfs. */
	if (kr_mkdir_p(a->cfg.state_dir, 0711, err) < 0 || chmod(a->cfg.state_dir, 0711) < 0)
		return kr_err_wrap(err, "state dir %s", a->cfg.state_dir);
	if (reaper_start(a, err) < 0 || oom_start(a, err) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {
		.cfg = { .state_dir = "/run/kata-agent", .cgroup_root = "/sys/fs/cgroup",
			 .cgroup_prefix = "kata-run", .launch_timeout_ms = 30000 },
	};
	char listen_default[32];
	struct kr_err err = { 0 };
	struct ttrpc_server *srv;
	int level, log_fd = -1;

	snprintf(listen_default, sizeof(listen_default), "vsock:%d", DEFAULT_VSOCK_PORT);
	o.listen = listen_default;
	reaper_block_signals();
	if (getpid() == 1) {
		/* The moment the kernel ran /init, kept across the re-exec of
		 * pid1_switch_root (GetGuestDetails reports it for timings). */
		if (!getenv("KATA_AGENT_INIT_MS")) {
			char ms[32];

			snprintf(ms, sizeof(ms), "%llu", (unsigned long long)boottime_now_ms());
			setenv("KATA_AGENT_INIT_MS", ms, 1);
		}
		if (pid1_switch_root(argv, &err) < 0 || pid1_setup(&err) < 0) {
			fprintf(stderr, "kata-agent: %s\n", err.msg);
			pid1_power_off();
		}
		options_from_cmdline(&o);
	}
	if (parse_args(argc, argv, &o) < 0)
		return 2;
	level = o.log_level ? kr_log_level_parse(o.log_level) : KR_LOG_INFO;
	if (level < 0) {
		fprintf(stderr, "kata-agent: unknown log level '%s'\n", o.log_level);
		return 2;
	}
	if (o.log_file) {
		log_fd = open(o.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (log_fd < 0) {
			fprintf(stderr, "kata-agent: open log file %s: %s\n", o.log_file, strerror(errno));
			return 1;
		}
	}
	kr_log_init("kata-agent", (enum kr_log_level)level, log_fd);
	if (agent_init(&agent_state, &o, &err) < 0)
		goto fail;
	srv = ttrpc_server_new(agent_methods, agent_n_methods, &agent_state, MAX_INFLIGHT);
	if (!srv) {
		kr_err_set(&err, KR_RESOURCE_EXHAUSTED, "create ttrpc server");
		goto fail;
	}
	if (o.share_tag && pid1_mount_share(o.share_tag, AGENT_SHARED_DIR, &err) < 0) {
		/* Not fatal: the host learns of it when a container needs it. */
		kr_error("%s", err.msg);
		kr_err_clear(&err);
	}
	kr_info("kata-agent %s started (pid %d%s)", KR_VERSION, (int)getpid(),
		agent_state.is_pid1 ? ", guest init" : "");
	if (serve(srv, o.listen, &err) < 0)
		goto fail;
	agent_shutdown(&agent_state, agent_state.is_pid1);
	return 0;
fail:
	kr_error("%s", err.msg);
	if (agent_state.is_pid1)
		pid1_power_off();
	return 1;
}
