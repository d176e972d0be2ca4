/* The shim daemon: set-up, the ttrpc method table, Connect and Shutdown,
 * teardown (shim.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kr/agent_client.h"
#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"
#include "sandbox.h"
#include "shim.h"

/* GetOOMEvent long-polls in the agent (an empty answer after about 10 s);
 * after a failed call the watcher waits this long before the next one. */
#define OOM_RETRY_MS 300

struct shim *shim_global;

/* ---- helpers for the handlers ------------------------------------------------ */

int shim_reply(const ProtobufCMessage *m, uint8_t **resp, size_t *resp_len)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	*resp = NULL;
	*resp_len = 0;
	if (!n)
		return 0;
	*resp = malloc(n);
	if (!*resp)
		return -1;
	*resp_len = protobuf_c_message_pack(m, *resp);
	return 0;
}

void shim_now(PB(Timestamp) *ts, const struct timespec *t)
{
	struct timespec now;

	if (!t) {
		clock_gettime(CLOCK_REALTIME, &now);
		t = &now;
	}
	ts->seconds = t->tv_sec;
	ts->nanos = (int32_t)t->tv_nsec;
}

struct shim_task *shim_find_task(struct shim *s, const char *id, struct kr_err *err)
{
	for (struct shim_task *t = s->tasks; t; t = t->next)
		if (strcmp(t->id, id) == 0)
			return t;
	kr_err_set(err, KR_NOT_FOUND, "container %.80s: not found", id);
	return NULL;
}

struct shim_process *shim_find_process(struct shim *s, const char *id,
				       const char *exec_id, struct kr_err *err)
{
	struct shim_task *t = shim_find_task(s, id, err);

	if (!t)
		return NULL;
	if (!exec_id || !exec_id[0])
		return &t->init;
	for (struct shim_process *p = t->execs; p; p = p->next)
		if (strcmp(p->exec_id, exec_id) == 0)
			return p;
	kr_err_set(err, KR_NOT_FOUND, "process %.80s of container %.80s: not found", exec_id, id);
	return NULL;
}

uint32_t shim_task_pid(struct shim *s)
{
	int pid = s->sb ? kr_sandbox_vm_pid(s->sb) : 0;

	return pid > 0 ? (uint32_t)pid : (uint32_t)getpid();
}

static void release_pod(struct shim *s);

/* ---- Connect, Shutdown ---------------------------------------------------------- */

static SHIM_HANDLER(shim_connect)
{
	struct shim *s = ctx;
	PB(IdRequest) *r = kata_run__containerd__id_request__unpack(NULL, req_len, req);
	PB(ConnectResponse) out = PB_INIT(CONNECT_RESPONSE);
	int rc;

	if (!r)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "Connect: malformed request");
	pthread_mutex_lock(&s->lock);
	out.shim_pid = (uint32_t)getpid();
	out.task_pid = shim_find_task(s, r->id, NULL) ? shim_task_pid(s) : 0;
	out.version = KR_VERSION;
	rc = shim_reply(&out.base, resp, resp_len);
	pthread_mutex_unlock(&s->lock);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return rc;
}

/* Sent after every task's Delete: the daemon ends with its last task. */
static SHIM_HANDLER(shim_shutdown)
{
	struct shim *s = ctx;
	PB(ShutdownRequest) *r = kata_run__containerd__shutdown_request__unpack(NULL, req_len, req);
	bool last;

	if (!r)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "Shutdown: malformed request");
	protobuf_c_message_free_unpacked(&r->base, NULL);
	pthread_mutex_lock(&s->lock);
	last = s->tasks == NULL;
	if (last)
		s->exiting = true;
	pthread_mutex_unlock(&s->lock);
	if (last) {
		kr_info("shutdown: no containers left, exiting");
		/* A `start` for the same group from now on must make a new
		 * daemon, not reach this one. */
		release_pod(s);
		ttrpc_server_shutdown(s->srv);	/* this call is still answered */
	}
	*resp = NULL;
	*resp_len = 0;
	return 0;
}

static const struct ttrpc_method methods[] = {
	{ TASK_SERVICE, "Create", task_create },
	{ TASK_SERVICE, "Delete", task_delete },
	{ TASK_SERVICE, "Pids", task_pids },
	{ TASK_SERVICE, "Pause", task_pause },
	{ TASK_SERVICE, "Resume", task_resume },
	{ TASK_SERVICE, "Stats", task_stats },
	{ TASK_SERVICE, "Update", task_update },
	{ TASK_SERVICE, "Start", process_start },
	{ TASK_SERVICE, "State", process_state },
	{ TASK_SERVICE, "Kill", process_kill },
	{ TASK_SERVICE, "Wait", process_wait },
	{ TASK_SERVICE, "Exec", process_exec },
	{ TASK_SERVICE, "ResizePty", process_resize },
	{ TASK_SERVICE, "CloseIO", process_close_io },
	{ TASK_SERVICE, "Connect", shim_connect },
	{ TASK_SERVICE, "Shutdown", shim_shutdown },
	/* Checkpoint: not in the table, so ttrpc answers Unimplemented. */
};

static void end_all(struct shim *s);

/* ---- OOM events and the VM's death ----------------------------------------------- */

static void *oom_main(void *arg)
{
	struct shim *s = arg;

	for (;;) {
		KataRun__Agent__V1__Empty req = KATA_RUN__AGENT__V1__EMPTY__INIT;
		KataRun__Agent__V1__OOMEventResponse *ev = NULL;
		struct agent_client *agent;
		struct kr_err err = { 0 };
		bool stop;

		pthread_mutex_lock(&s->lock);
		stop = s->exiting;
		agent = s->sb ? s->sb->agent : NULL;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		if (s->sb && !kr_sandbox_vm_alive(s->sb)) {
			/* Processes that never started have no waiter to see
			 * it: every one still alive ends here. */
			kr_warn("the VM of sandbox %s is gone: every process ends", s->sandbox_id);
			end_all(s);
			break;
		}
		if (!agent) {
			usleep(OOM_RETRY_MS * 1000);
			continue;
		}
		kr_err_clear(&err);
		if (agent_call(agent, "GetOOMEvent", &req.base,
			       &kata_run__agent__v1__oomevent_response__descriptor,
			       (ProtobufCMessage **)&ev, AGENT_CALL_TIMEOUT_MS, &err) < 0 &&
		    err.code == KR_UNAVAILABLE) {
			/* The agent's channel closed: QEMU is gone or going
			 * (libvirt may notice much later). */
			kr_warn("sandbox %s: %s: every process ends", s->sandbox_id, err.msg);
			end_all(s);
			break;
		}
		if (!ev) {	/* failed: do not spin on a sick agent */
			usleep(OOM_RETRY_MS * 1000);
			continue;
		}
		if (ev->container_id[0]) {
			PB(ContainerEvent) oom = PB_INIT(CONTAINER_EVENT);

			oom.container_id = ev->container_id;
			kr_info("container %s: OOM kill", ev->container_id);
			events_publish("/tasks/oom", "TaskOOM", &oom.base);
		}
		protobuf_c_message_free_unpacked(&ev->base, NULL);
	}
	return NULL;
}

/* Called by task_create once the VM runs. */
void shim_start_oom_watch(struct shim *s)
{
	if (s->oom_started)
		return;
	if (pthread_create(&s->oom_thread, NULL, oom_main, s) == 0)
		s->oom_started = true;
}

/* ---- the daemon -------------------------------------------------------------- */

static void *signal_main(void *arg)
{
	struct shim *s = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	while (sigwait(&set, &sig) != 0)
		;
	kr_info("signal %d: shutting down", sig);
	pthread_mutex_lock(&s->lock);
	s->exiting = true;
	pthread_mutex_unlock(&s->lock);
	ttrpc_server_shutdown(s->srv);
	return NULL;
}

/* containerd's per-bundle log FIFO (kept open by containerd): our stderr. */
static void open_log(void)
{
	int fd = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, STDERR_FILENO);
	close(fd);
}

static void socket_path_of(int fd, char *out, size_t size)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	out[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && sa.sun_family == AF_UNIX &&
	    len > offsetof(struct sockaddr_un, sun_path) && sa.sun_path[0])
		snprintf(out, size, "%.*s", (int)(len - offsetof(struct sockaddr_un, sun_path)), sa.sun_path);
}

/* Every process still running ends now: the VM goes with the daemon. */
static void end_all(struct shim *s)
{
	pthread_mutex_lock(&s->lock);
	for (struct shim_task *t = s->tasks; t; t = t->next) {
		if (t->init.status != PROC_STOPPED)
			process_exited(s, &t->init, 255);
		for (struct shim_process *p = t->execs; p; p = p->next)
			if (p->status == PROC_RUNNING)
				process_exited(s, p, 255);
	}
	pthread_mutex_unlock(&s->lock);
}

static void join_waiters(struct shim *s)
{
	for (struct shim_task *t = s->tasks; t; t = t->next) {
		if (t->init.waiter_started)
			pthread_join(t->init.waiter, NULL);
		t->init.waiter_started = false;
		for (struct shim_process *p = t->execs; p; p = p->next) {
			if (p->waiter_started)
				pthread_join(p->waiter, NULL);
			p->waiter_started = false;
		}
	}
}

/* End the pod: its VM, its threads, its host state.  Once; from the last
 * Shutdown (so that containerd, which starts the next shim for the same
 * id right after, finds nothing in the way) or from the daemon's exit. */
static void release_pod(struct shim *s)
{
	struct kr_err err = { 0 };

	pthread_mutex_lock(&s->create_lock);
	pthread_mutex_lock(&s->lock);
	s->exiting = true;
	pthread_mutex_unlock(&s->lock);
	if (s->socket_path[0])
		unlink(s->socket_path);
	/* VM first: every agent call in flight (waiters, the OOM poll) fails
	 * at once, the threads finish, and only then does the client go. */
	if (s->sb && kr_sandbox_kill(s->sb, &err) < 0)
		kr_warn("%s", err.msg);
	if (s->oom_started)
		pthread_join(s->oom_thread, NULL);
	s->oom_started = false;
	end_all(s);
	if (s->sb) {
		join_waiters(s);
		if (kr_sandbox_stop(s->sb, &err) < 0)
			kr_warn("%s", err.msg);
		kr_sandbox_free(s->sb);
		s->sb = NULL;
	}
	pthread_mutex_unlock(&s->create_lock);
}

static void teardown(struct shim *s)
{
	release_pod(s);
	events_flush(2000);
}

static int daemon_setup(struct shim *s, const struct shim_args *a, struct kr_err *err)
{
	char exe[PATH_MAX];
	ssize_t n;

	s->args = *a;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->create_lock, NULL);
	pthread_cond_init(&s->exited, NULL);
	if (kr_config_load(&s->cfg, NULL, err) < 0)
		return -1;
	if (a->debug)
		kr_config_set(&s->cfg, "log_level", "debug", NULL);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		snprintf(s->exe_dir, sizeof(s->exe_dir), "%s", dirname(exe));
	}
	/* Before any thread: the private mount namespace of the pod. */
	if (kr_sandbox_private_mounts(&s->cfg, err) < 0)
		return -1;
	return 0;
}

int shim_daemon(const struct shim_args *a)
{
	static struct shim shim;
	struct shim *s = &shim;
	struct kr_err err = { 0 };
	sigset_t set;
	pthread_t t;
	int fd;

	shim_global = s;
	open_log();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (daemon_setup(s, a, &err) < 0) {
		kr_error("start: %s", err.msg);
		return 1;
	}
	fd = a->socket ? kr_unix_listen(a->socket, &err) : 3;
	if (fd < 0) {
		kr_error("listen: %s", err.msg);
		return 1;
	}
	socket_path_of(fd, s->socket_path, sizeof(s->socket_path));
	s->srv = ttrpc_server_new(methods, KR_ARRAY_SIZE(methods), s, 0);
	if (!s->srv) {
		kr_error("ttrpc server: %s", strerror(errno));
		return 1;
	}
	ttrpc_server_require_same_user(s->srv);
	events_init(getenv("TTRPC_ADDRESS"), a->namespace);
	if (pthread_create(&t, NULL, signal_main, s) == 0)
		pthread_detach(t);
	kr_info("serving %s (namespace %s, first container %s)", s->socket_path, a->namespace, a->id);
	if (ttrpc_server_serve_listener(s->srv, fd, &err) < 0)
		kr_error("serve: %s", err.msg);
	teardown(s);
	kr_info("exiting");
	/* Handler threads may still hold references: leave without freeing. */
	_exit(0);
}
