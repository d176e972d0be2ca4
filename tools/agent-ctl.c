/* kr-agent-ctl: drive a kata-agent directly over its ttrpc socket.  A
 * developer and test tool (kata-run and the shim are the user-facing front
 * ends); `run` does what kata-run does once the VM is up. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>

#include "kr/agent_client.h"
#include "kr/log.h"
#include "kr/tty.h"
#include "kr/util.h"

#define EXIT_CTL_ERROR 125

struct ctl {
	const char *socket;
	int timeout_ms;
	struct agent_client *c;
};

static int fail(const struct kr_err *err)
{
	fprintf(stderr, "kr-agent-ctl: %s\n", err->msg);
	return EXIT_CTL_ERROR;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kr-agent-ctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'kr-agent-ctl --help'.\n");
	return EXIT_CTL_ERROR;
}

/* ---- terminal and signals ------------------------------------------------ */

struct fwd {
	struct agent_client *c;
	const char *id, *exec_id;
	bool tty;
	sigset_t set;
};

/* Forward the signals a user sends us to the container process; a window
 * change becomes a TTY resize. */
static void *signal_main(void *arg)
{
	struct fwd *f = arg;

	for (;;) {
		struct kr_err err = { 0 };
		int sig;

		if (sigwait(&f->set, &sig) != 0)
			continue;
		if (sig == SIGWINCH) {
			unsigned rows, cols;

			if (f->tty && kr_tty_size(STDIN_FILENO, &rows, &cols))
				agent_resize(f->c, f->id, f->exec_id, rows, cols, &err);
			continue;
		}
		if (agent_signal(f->c, f->id, f->exec_id, sig, false, &err) < 0)
			kr_debug("forward signal %d: %s", sig, err.msg);
	}
	return NULL;
}

static void start_forwarding(struct fwd *f)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
	pthread_t t;

	sigemptyset(&f->set);
	for (size_t i = 0; i < KR_ARRAY_SIZE(sigs); i++)
		sigaddset(&f->set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &f->set, NULL);
	if (pthread_create(&t, NULL, signal_main, f) == 0)
		pthread_detach(t);
}

static void block_forwarded_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Attach stdio, wait for the process, deliver all output; returns its
 * exit status or -1. */
static int attach_and_wait(struct ctl *ctl, const char *id, const char *exec_id,
			   bool tty, int (*start)(struct ctl *, const char *),
			   struct kr_err *err)
{
	static struct fwd f;
	struct agent_stdio *s;
	int status;

	f = (struct fwd){ .c = ctl->c, .id = id, .exec_id = exec_id, .tty = tty };
	if (tty) {
		unsigned rows, cols;

		if (kr_tty_size(STDIN_FILENO, &rows, &cols))
			agent_resize(ctl->c, id, exec_id, rows, cols, NULL);
		kr_tty_raw(STDIN_FILENO);
	}
	s = agent_stdio_start(ctl->c, id, exec_id, STDIN_FILENO, STDOUT_FILENO,
			      STDERR_FILENO, tty, err);
	if (!s)
		return -1;
	start_forwarding(&f);
	if (start && start(ctl, id) < 0) {
		agent_stdio_finish(s, 0);
		return -1;
	}
	if (agent_wait(ctl->c, id, exec_id, &status, NULL, err) < 0) {
		agent_stdio_finish(s, 0);
		return -1;
	}
	agent_stdio_finish(s, 10000);
	kr_tty_restore();
	return status;
}

/* ---- bundle -------------------------------------------------------------- */

struct bundle {
	char *json;
	size_t len;
	char rootfs[PATH_MAX];
	bool terminal;
};

static int bundle_load(const char *dir, const char *rootfs_opt, struct bundle *b,
		       struct kr_err *err)
{
	char path[PATH_MAX], root[PATH_MAX];
	struct json_object *top, *o, *v;
	const char *root_path = "rootfs";

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (kr_read_file(path, 1 << 20, &b->json, &b->len, err) < 0)
		return kr_err_wrap(err, "bundle %s", dir);
	top = json_tokener_parse(b->json);
	if (!top)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: invalid JSON", path);
	if (json_object_object_get_ex(top, "root", &o) &&
	    json_object_object_get_ex(o, "path", &v) && json_object_is_type(v, json_type_string))
		root_path = json_object_get_string(v);
	if (json_object_object_get_ex(top, "process", &o) &&
	    json_object_object_get_ex(o, "terminal", &v))
		b->terminal = json_object_get_boolean(v);
	snprintf(root, sizeof(root), "%s", root_path);	/* root_path lives in top */
	json_object_put(top);
	root_path = root;
	if (rootfs_opt) {
		/* A path as the agent sees it (maybe inside a VM): passed as is,
		 * the agent checks it. */
		snprintf(b->rootfs, sizeof(b->rootfs), "%s", rootfs_opt);
		return 0;
	}
	if (root_path[0] != '/') {
		char rel[PATH_MAX];

		snprintf(rel, sizeof(rel), "%s", root_path);
		if (kr_snprintf(root, sizeof(root), "%s/%s", dir, rel) < 0)
			return kr_err_errno(err, ENAMETOOLONG, "rootfs of bundle %s", dir);
	}
	if (!realpath(root, b->rootfs))
		return kr_err_sys(err, "rootfs %s", root);
	return 0;
}

/* ---- commands ------------------------------------------------------------ */

static int start_op(struct ctl *ctl, const char *id)
{
	struct kr_err err = { 0 };

	if (agent_container_op(ctl->c, "StartContainer", id, &err) < 0) {
		fail(&err);
		return -1;
	}
	return 0;
}

static int cmd_run(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "overlay", no_argument, NULL, 'o' },
		{ "rootfs", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rootfs = NULL;
	char id[64];
	bool overlay = false;
	struct bundle b = { 0 };
	struct kr_err err = { 0 };
	int c, status;

	snprintf(id, sizeof(id), "run-%d", (int)getpid());
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 'i')
			snprintf(id, sizeof(id), "%s", optarg);
		else if (c == 'o')
			overlay = true;
		else if (c == 'r')
			rootfs = optarg;
		else
			return usage_error("run: bad option");
	}
	if (optind != argc - 1)
		return usage_error("run: expected one BUNDLE");
	if (bundle_load(argv[optind], rootfs, &b, &err) < 0)
		return fail(&err);
	if (agent_create_container(ctl->c, id, b.json, b.len, b.rootfs, overlay, NULL, &err) < 0) {
		free(b.json);
		return fail(&err);
	}
	free(b.json);
	status = attach_and_wait(ctl, id, "", b.terminal, start_op, &err);
	if (status < 0 && err.msg[0])
		fail(&err);
	if (agent_remove_container(ctl->c, id, 0, &err) < 0 && status >= 0)
		return fail(&err);
	return status < 0 ? EXIT_CTL_ERROR : status;
}

static int cmd_create(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "overlay", no_argument, NULL, 'o' },
		{ "rootfs", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rootfs = NULL;
	bool overlay = false;
	struct bundle b = { 0 };
	struct kr_err err = { 0 };
	uint32_t pid;
	int c;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 'o')
			overlay = true;
		else if (c == 'r')
			rootfs = optarg;
		else
			return usage_error("create: bad option");
	}
	if (optind != argc - 2)
		return usage_error("create: expected ID BUNDLE");
	if (bundle_load(argv[optind + 1], rootfs, &b, &err) < 0)
		return fail(&err);
	c = agent_create_container(ctl->c, argv[optind], b.json, b.len, b.rootfs,
				   overlay, &pid, &err);
	free(b.json);
	if (c < 0)
		return fail(&err);
	printf("%u\n", pid);
	return 0;
}

/* Build an OCI process object for `exec` from the command line. */
static char *exec_process_json(int argc, char **argv, bool tty, const char *cwd,
			       char **env, size_t n_env, const char *user)
{
	struct json_object *p = json_object_new_object();
	struct json_object *args = json_object_new_array();
	struct json_object *envs = json_object_new_array();
	struct json_object *u = json_object_new_object();
	unsigned uid = 0, gid = 0;
	char *out;

	for (int i = 0; i < argc; i++)
		json_object_array_add(args, json_object_new_string(argv[i]));
	json_object_array_add(envs, json_object_new_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	for (size_t i = 0; i < n_env; i++)
		json_object_array_add(envs, json_object_new_string(env[i]));
	if (user && sscanf(user, "%u:%u", &uid, &gid) < 1)
		uid = 0;
	json_object_object_add(u, "uid", json_object_new_int64(uid));
	json_object_object_add(u, "gid", json_object_new_int64(gid));
	json_object_object_add(p, "terminal", json_object_new_boolean(tty));
	/* The size must be right before the process runs: a resize sent after
	 * the exec races with its first look at the terminal. */
	struct winsize ws;
	if (tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		struct json_object *cs = json_object_new_object();

		json_object_object_add(cs, "height", json_object_new_int(ws.ws_row));
		json_object_object_add(cs, "width", json_object_new_int(ws.ws_col));
		json_object_object_add(p, "consoleSize", cs);
	}
	json_object_object_add(p, "user", u);
	json_object_object_add(p, "args", args);
	json_object_object_add(p, "env", envs);
	json_object_object_add(p, "cwd", json_object_new_string(cwd ? cwd : "/"));
	out = kr_xstrdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
	json_object_put(p);
	return out;
}

static int cmd_exec(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tty", no_argument, NULL, 't' },
		{ "cwd", required_argument, NULL, 'c' },
		{ "env", required_argument, NULL, 'e' },
		{ "user", required_argument, NULL, 'u' },
		{ NULL, 0, NULL, 0 },
	};
	char *env[64];
	size_t n_env = 0;
	const char *cwd = NULL, *user = NULL;
	bool tty = false;
	struct kr_err err = { 0 };
	char *json;
	int c, status;

	while ((c = getopt_long(argc, argv, "+te:", opts, NULL)) != -1) {
		if (c == 't')
			tty = true;
		else if (c == 'c')
			cwd = optarg;
		else if (c == 'e' && n_env < KR_ARRAY_SIZE(env))
			env[n_env++] = optarg;
		else if (c == 'u')
			user = optarg;
		else
			return usage_error("exec: bad option");
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (argc - optind < 3)
		return usage_error("exec: expected ID EXEC_ID -- CMD [ARG...]");
	const char *id = argv[optind], *exec_id = argv[optind + 1];
	if (optind + 2 < argc && !strcmp(argv[optind + 2], "--"))
		optind++;
	json = exec_process_json(argc - optind - 2, argv + optind + 2, tty, cwd, env, n_env, user);
	if (agent_exec(ctl->c, id, exec_id, json, strlen(json), NULL, &err) < 0) {
		free(json);
		return fail(&err);
	}
	free(json);
	status = attach_and_wait(ctl, id, exec_id, tty, NULL, &err);
	return status < 0 ? fail(&err) : status;
}

static int cmd_wait(struct ctl *ctl, int argc, char **argv)
{
	struct kr_err err = { 0 };
	bool oom = false;
	int status;

	if (argc < 2 || argc > 3)
		return usage_error("wait: expected ID [EXEC_ID]");
	if (agent_wait(ctl->c, argv[1], argc == 3 ? argv[2] : "", &status, &oom, &err) < 0)
		return fail(&err);
	printf("%d%s\n", status, oom ? " oom-killed" : "");
	return status;
}

static int parse_signal(const char *s)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "TERM", SIGTERM }, { "KILL", SIGKILL }, { "INT", SIGINT },
		{ "HUP", SIGHUP }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
		{ "USR2", SIGUSR2 }, { "STOP", SIGSTOP }, { "CONT", SIGCONT },
	};
	char *end;
	long n;

	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < KR_ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i].name))
			return names[i].sig;
	n = strtol(s, &end, 10);
	return *end || n <= 0 || n >= NSIG ? -1 : (int)n;
}

static int cmd_kill(struct ctl *ctl, int argc, char **argv)
{
	struct kr_err err = { 0 };
	bool all = false;
	int i = 1, sig;

	if (i < argc && !strcmp(argv[i], "--all")) {
		all = true;
		i++;
	}
	if (argc - i < 2 || argc - i > 3)
		return usage_error("kill: expected [--all] ID SIGNAL [EXEC_ID]");
	sig = parse_signal(argv[i + 1]);
	if (sig < 0)
		return usage_error("kill: unknown signal %s", argv[i + 1]);
	if (agent_signal(ctl->c, argv[i], argc - i == 3 ? argv[i + 2] : "", sig, all, &err) < 0)
		return fail(&err);
	return 0;
}

static int cmd_simple(struct ctl *ctl, const char *method, int argc, char **argv)
{
	struct kr_err err = { 0 };

	if (argc != 2)
		return usage_error("expected ID");
	if (agent_container_op(ctl->c, method, argv[1], &err) < 0)
		return fail(&err);
	return 0;
}

static int cmd_rm(struct ctl *ctl, int argc, char **argv)
{
	struct kr_err err = { 0 };

	if (argc == 3) {	/* an exited exec process */
		if (agent_remove_process(ctl->c, argv[1], argv[2], &err) < 0)
			return fail(&err);
		return 0;
	}
	if (argc != 2)
		return usage_error("rm: expected ID [EXEC_ID]");
	if (agent_remove_container(ctl->c, argv[1], 0, &err) < 0)
		return fail(&err);
	return 0;
}

/* Print any reply message as JSON-ish "field: value" lines. */
static void print_message(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	printf("{");
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *v = (const char *)m + f->offset;

		printf("%s\"%s\": ", i ? ", " : "", f->name);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const uint32_t *a = *(uint32_t *const *)v;

			printf("[");
			for (size_t j = 0; j < n; j++)
				printf("%s%u", j ? ", " : "", a[j]);
			printf("]");
			continue;
		}
		switch (f->type) {
		case PROTOBUF_C_TYPE_UINT64: printf("%llu", (unsigned long long)*(const uint64_t *)v); break;
		case PROTOBUF_C_TYPE_UINT32: printf("%u", *(const uint32_t *)v); break;
		case PROTOBUF_C_TYPE_INT32: printf("%d", *(const int32_t *)v); break;
		case PROTOBUF_C_TYPE_BOOL: printf("%s", *(const protobuf_c_boolean *)v ? "true" : "false"); break;
		case PROTOBUF_C_TYPE_STRING: printf("\"%s\"", *(char *const *)v ? *(char *const *)v : ""); break;
		default: printf("null"); break;
		}
	}
	printf("}\n");
}

static int cmd_query(struct ctl *ctl, const char *method, const char *id,
		     const ProtobufCMessageDescriptor *resp_desc)
{
	KataRun__Agent__V1__ContainerRequest creq = KATA_RUN__AGENT__V1__CONTAINER_REQUEST__INIT;
	KataRun__Agent__V1__Empty empty = KATA_RUN__AGENT__V1__EMPTY__INIT;
	ProtobufCMessage *resp = NULL;
	struct kr_err err = { 0 };

	creq.container_id = (char *)id;
	if (agent_call(ctl->c, method, id ? &creq.base : &empty.base, resp_desc,
		       &resp, ctl->timeout_ms, &err) < 0)
		return fail(&err);
	print_message(resp);
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

static int cmd_update(struct ctl *ctl, int argc, char **argv)
{
	KataRun__Agent__V1__UpdateContainerRequest req = KATA_RUN__AGENT__V1__UPDATE_CONTAINER_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct kr_err err = { 0 };
	char *json;
	size_t len;

	if (argc != 3)
		return usage_error("update: expected ID RESOURCES.json");
	if (kr_read_file(argv[2], 65536, &json, &len, &err) < 0)
		return fail(&err);
	req.container_id = argv[1];
	req.resources_json.data = (uint8_t *)json;
	req.resources_json.len = len;
	int rc = agent_call(ctl->c, "UpdateContainer", &req.base,
			    &kata_run__agent__v1__empty__descriptor, &resp, 0, &err);
	free(json);
	if (rc < 0)
		return fail(&err);
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

static int cmd_oom_wait(struct ctl *ctl)
{
	KataRun__Agent__V1__Empty empty = KATA_RUN__AGENT__V1__EMPTY__INIT;
	uint64_t deadline = kr_now_ms() + (uint64_t)ctl->timeout_ms;
	struct kr_err err = { 0 };

	while (kr_now_ms() < deadline) {
		KataRun__Agent__V1__OOMEventResponse *resp = NULL;

		if (agent_call(ctl->c, "GetOOMEvent", &empty.base,
			       &kata_run__agent__v1__oomevent_response__descriptor,
			       (ProtobufCMessage **)&resp, 0, &err) < 0)
			return fail(&err);
		if (resp->container_id[0]) {
			printf("%s\n", resp->container_id);
			protobuf_c_message_free_unpacked(&resp->base, NULL);
			return 0;
		}
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	kr_err_set(&err, KR_DEADLINE_EXCEEDED, "no OOM event within %d ms", ctl->timeout_ms);
	return fail(&err);
}

static int cmd_destroy(struct ctl *ctl, int argc, char **argv)
{
	KataRun__Agent__V1__DestroySandboxRequest req = KATA_RUN__AGENT__V1__DESTROY_SANDBOX_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct kr_err err = { 0 };

	req.power_off = argc > 1 && !strcmp(argv[1], "--power-off");
	if (agent_call(ctl->c, "DestroySandbox", &req.base,
		       &kata_run__agent__v1__empty__descriptor, &resp, 0, &err) < 0)
		return fail(&err);
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kr-agent-ctl [-s SOCKET] [-t SECONDS] COMMAND [ARGS]\n"
		"Drive a kata-agent over its ttrpc socket (developer and test tool).\n\n"
		"  run [--id ID] [--overlay] [--rootfs DIR] BUNDLE   create, start, attach, wait, remove\n"
		"  create [--overlay] [--rootfs DIR] ID BUNDLE       prints the init pid\n"
		"  start ID | pause ID | resume ID | rm ID [EXEC_ID]\n"
		"  wait ID [EXEC_ID]                               prints and exits with the status\n"
		"  exec [--tty] [--cwd D] [--env K=V] [--user U[:G]] ID EXEC_ID -- CMD [ARG...]\n"
		"  kill [--all] ID SIGNAL [EXEC_ID]\n"
		"  ps ID | stats ID | update ID RESOURCES.json\n"
		"  details | check | oom-wait | destroy [--power-off]\n\n"
		"  -s, --socket PATH   agent socket (default /run/kata-agent.sock)\n"
		"  -t, --timeout SEC   connect / per-call timeout (default 30)\n"
		"      --debug         debug logging\n"
		"Exit status: the container's (128+N for signal N), 125 for errors.\n");
}

static int dispatch(struct ctl *ctl, int argc, char **argv)
{
	const char *cmd = argv[0];

	optind = 1;
	if (!strcmp(cmd, "run")) return cmd_run(ctl, argc, argv);
	if (!strcmp(cmd, "create")) return cmd_create(ctl, argc, argv);
	if (!strcmp(cmd, "start")) return cmd_simple(ctl, "StartContainer", argc, argv);
	if (!strcmp(cmd, "pause")) return cmd_simple(ctl, "PauseContainer", argc, argv);
	if (!strcmp(cmd, "resume")) return cmd_simple(ctl, "ResumeContainer", argc, argv);
	if (!strcmp(cmd, "rm")) return cmd_rm(ctl, argc, argv);
	if (!strcmp(cmd, "wait")) return cmd_wait(ctl, argc, argv);
	if (!strcmp(cmd, "exec")) return cmd_exec(ctl, argc, argv);
	if (!strcmp(cmd, "kill")) return cmd_kill(ctl, argc, argv);
	if (!strcmp(cmd, "update")) return cmd_update(ctl, argc, argv);
	if (!strcmp(cmd, "oom-wait")) return cmd_oom_wait(ctl);
	if (!strcmp(cmd, "destroy")) return cmd_destroy(ctl, argc, argv);
	if (!strcmp(cmd, "ps") && argc == 2)
		return cmd_query(ctl, "ListProcesses", argv[1], &kata_run__agent__v1__list_processes_response__descriptor);
	if (!strcmp(cmd, "stats") && argc == 2)
		return cmd_query(ctl, "StatsContainer", argv[1], &kata_run__agent__v1__stats_container_response__descriptor);
	if (!strcmp(cmd, "details"))
		return cmd_query(ctl, "GetGuestDetails", NULL, &kata_run__agent__v1__guest_details_response__descriptor);
	if (!strcmp(cmd, "check"))
		return cmd_query(ctl, "Check", NULL, &kata_run__agent__v1__empty__descriptor);
	return usage_error("unknown command or arguments: %s", cmd);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { .socket = "/run/kata-agent.sock", .timeout_ms = 30000 };
	struct kr_err err = { 0 };
	int c, rc;

	kr_log_init("kr-agent-ctl", KR_LOG_WARN, -1);
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "+s:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': ctl.socket = optarg; break;
		case 't': ctl.timeout_ms = atoi(optarg) * 1000; break;
		case 'd': kr_log_set_level(KR_LOG_DEBUG); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_CTL_ERROR;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_CTL_ERROR;
	}
	if (ctl.timeout_ms <= 0)
		ctl.timeout_ms = 30000;
	/* Threads started later inherit this mask; the forwarder sigwaits. */
	block_forwarded_signals();
	ctl.c = agent_client_connect(ctl.socket, ctl.timeout_ms, &err);
	if (!ctl.c)
		return fail(&err);
	rc = dispatch(&ctl, argc - optind, argv + optind);
	kr_tty_restore();
	/* Pump threads may still sit in a call: exit without tearing down. */
	fflush(stdout);
	_exit(rc);
}
