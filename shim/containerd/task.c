/* Container objects of the Task service: Create, Delete, Pids, Pause,
 * Resume, Stats, Update (shim.h).  Process-level calls are in process.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "kr/agent_client.h"
#include "kr/log.h"
#include "kr/util.h"
#include "sandbox.h"
#include "shim.h"

#define REMOVE_TIMEOUT_MS 5000
#define RESOURCES_MAX (64 << 10)

/* ---- Create ---------------------------------------------------------------------- */

/* runtimeoptions.v1.Options{config_path} (ctr --runtime-config-path, CRI's
 * ConfigPath): the first container's file configures the pod's VM. */
static int apply_options(struct shim *s, const PB(Any) *opts, struct kr_err *err)
{
	PB(RuntimeOptions) *o;
	int rc = 0;

	if (!opts || !strstr(opts->type_url, "runtimeoptions.v1.Options"))
		return 0;
	o = kata_run__containerd__runtime_options__unpack(NULL, opts->value.len, opts->value.data);
	if (!o)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "runtime options: malformed");
	if (o->config_path[0]) {
		rc = kr_config_load(&s->cfg, o->config_path, err);
		if (rc == 0 && s->args.debug)
			kr_config_set(&s->cfg, "log_level", "debug", NULL);
	}
	protobuf_c_message_free_unpacked(&o->base, NULL);
	return rc;
}

/* The pod's VM: booted by its first container, with that rootfs shared. */
static int ensure_sandbox(struct shim *s, struct shim_task *t, struct kr_err *err)
{
	char group[256];

	if (s->sb)
		return 0;
	if (kr_config_find_guest(&s->cfg, s->exe_dir, err) < 0)
		return -1;
	shim_group_id(t->bundle, t->id, group, sizeof(group));
	shim_sandbox_id(group, s->sandbox_id, sizeof(s->sandbox_id));
	if (kr_sandbox_new(&s->cfg, s->sandbox_id, kr_now_ms(), &s->sb, err) < 0)
		return -1;
	return 0;
}

struct share_ctx {
	struct shim *s;
	const char *cid;
};

static int share_bind(void *ctx, const char *host, unsigned index, char *guest, struct kr_err *err)
{
	struct share_ctx *c = ctx;

	return kr_sandbox_share_path(c->s->sb, c->cid, host, index, guest, err);
}

static void task_free(struct shim_task *t)
{
	process_release(&t->init);
	free(t);
}

static struct shim_task *task_new(const PB(CreateTaskRequest) *r)
{
	struct shim_task *t = kr_xcalloc(1, sizeof(*t));
	struct shim_process *p = &t->init;

	snprintf(t->id, sizeof(t->id), "%s", r->id);
	snprintf(t->bundle, sizeof(t->bundle), "%s", r->bundle);
	p->task = t;
	p->status = PROC_CREATED;
	p->terminal = r->terminal;
	p->stdin_path = kr_xstrdup(r->stdin);
	p->stdout_path = kr_xstrdup(r->stdout);
	p->stderr_path = kr_xstrdup(r->stderr);
	p->fds[0] = p->fds[1] = p->fds[2] = -1;
	return t;
}

/* Rootfs on the host, shared into the VM (booting it if this is the
 * pod's first container), the container created by the agent. */
static int create_in_vm(struct shim *s, struct shim_task *t, const PB(CreateTaskRequest) *r,
			struct kr_err *err)
{
	char rootfs[PATH_MAX], guest_rootfs[PATH_MAX];
	struct share_ctx sc = { s, t->id };
	struct kr_bundle b;
	kr_cleanup_free char *spec = NULL;
	size_t len;
	uint32_t pid;
	bool booted_here = false;
	int rc = -1;

	if (kr_snprintf(rootfs, sizeof(rootfs), "%s/rootfs", t->bundle) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "bundle %s", t->bundle);
	if (r->n_rootfs) {
		if (rootfs_mount(r->rootfs, r->n_rootfs, rootfs, err) < 0)
			return kr_err_wrap(err, "rootfs");
		t->rootfs_mounted = true;
	}
	if (kr_bundle_load(t->bundle, &b, err) < 0)
		return -1;
	if (!s->sb) {
		if (apply_options(s, r->options, err) < 0 || ensure_sandbox(s, t, err) < 0)
			goto out;
		booted_here = true;
	}
	if (kr_sandbox_share_rootfs(s->sb, t->id, b.rootfs, guest_rootfs, err) < 0)
		goto out;
	t->shared = true;
	if (kr_bundle_guest_spec(&b, share_bind, &sc, 0, 0, &spec, &len, err) < 0)
		goto out;
	if (booted_here) {
		if (kr_sandbox_start(s->sb, NULL, err) < 0)
			goto out;
		s->sb_booted = true;
		shim_start_oom_watch(s);
	}
	if (agent_create_container(s->sb->agent, t->id, spec, len, guest_rootfs, false, &pid, err) < 0)
		goto out;
	if (io_attach(s, &t->init, err) < 0) {
		agent_remove_container(s->sb->agent, t->id, 0, NULL);
		goto out;
	}
	rc = 0;
out:
	kr_bundle_free(&b);
	return rc;
}

/* Undo what create_in_vm did for t (not the VM: Shutdown ends it). */
static void undo_create(struct shim *s, struct shim_task *t)
{
	struct kr_err e = { 0 };

	if (t->shared && s->sb && kr_sandbox_unshare(s->sb, t->id, &e) < 0)
		kr_warn("%s", e.msg);
	t->shared = false;
	if (t->rootfs_mounted) {
		char rootfs[PATH_MAX];

		if (kr_snprintf(rootfs, sizeof(rootfs), "%s/rootfs", t->bundle) >= 0 &&
		    rootfs_unmount(rootfs, &e) < 0)
			kr_warn("%s", e.msg);
		t->rootfs_mounted = false;
	}
}

/* A VM that failed to boot is not kept for the next Create. */
static void drop_unbooted_sandbox(struct shim *s)
{
	struct kr_err e = { 0 };

	if (!s->sb || s->sb_booted)
		return;
	if (kr_sandbox_stop(s->sb, &e) < 0)
		kr_warn("%s", e.msg);
	kr_sandbox_free(s->sb);
	s->sb = NULL;
}

static void publish_create(struct shim *s, const PB(CreateTaskRequest) *r)
{
	PB(TaskCreate) ev = PB_INIT(TASK_CREATE);
	PB(TaskIO) io = PB_INIT(TASK_IO);

	ev.container_id = r->id;
	ev.bundle = r->bundle;
	ev.rootfs = r->rootfs;
	ev.n_rootfs = r->n_rootfs;
	io.stdin = r->stdin;
	io.stdout = r->stdout;
	io.stderr = r->stderr;
	io.terminal = r->terminal;
	ev.io = &io;
	ev.pid = shim_task_pid(s);
	events_publish("/tasks/create", "TaskCreate", &ev.base);
}

SHIM_HANDLER(task_create)
{
	struct shim *s = ctx;
	PB(CreateTaskResponse) out = PB_INIT(CREATE_TASK_RESPONSE);
	struct shim_task *t;
	int rc = -1;
	UNPACK(CreateTaskRequest, create_task_request, "Create");

	if (!r->id[0] || strlen(r->id) > SHIM_ID_MAX || r->bundle[0] != '/') {
		kr_err_set(err, KR_INVALID_ARGUMENT, "Create: bad id or bundle");
		goto out;
	}
	if (r->checkpoint[0]) {
		kr_err_set(err, KR_UNIMPLEMENTED, "Create: restoring a checkpoint is not supported");
		goto out;
	}
	pthread_mutex_lock(&s->create_lock);
	pthread_mutex_lock(&s->lock);
	if (shim_find_task(s, r->id, NULL) || s->exiting) {
		pthread_mutex_unlock(&s->lock);
		pthread_mutex_unlock(&s->create_lock);
		kr_err_set(err, s->exiting ? KR_UNAVAILABLE : KR_ALREADY_EXISTS, "container %s: %s", r->id,
			   s->exiting ? "the shim is shutting down" : "already exists");
		goto out;
	}
	pthread_mutex_unlock(&s->lock);
	t = task_new(r);
	if (create_in_vm(s, t, r, err) < 0) {
		kr_error("create %s: %s", r->id, err->msg);
		undo_create(s, t);
		task_free(t);
		drop_unbooted_sandbox(s);
		pthread_mutex_unlock(&s->create_lock);
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	t->next = s->tasks;
	s->tasks = t;
	publish_create(s, r);
	out.pid = shim_task_pid(s);
	rc = shim_reply(&out.base, resp, resp_len);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->create_lock);
	kr_info("container %s created", r->id);
out:
	FREE_REQ();
	return rc;
}

/* ---- Delete ---------------------------------------------------------------------- */

static void unlink_task(struct shim *s, struct shim_task *t)
{
	for (struct shim_task **pp = &s->tasks; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			return;
		}
}

static int delete_exec(struct shim *s, struct shim_task *t, struct shim_process *p,
		       PB(DeleteResponse) *out, struct kr_err *err)
{
	if (p->status == PROC_RUNNING)
		return kr_err_set(err, KR_FAILED_PRECONDITION, "exec %s of %s is running", p->exec_id, t->id);
	for (struct shim_process **pp = &t->execs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	if (p->waiter_started)
		pthread_join(p->waiter, NULL);
	if (p->status == PROC_STOPPED && s->sb && s->sb->agent)
		agent_remove_process(s->sb->agent, t->id, p->exec_id, NULL);
	io_detach(p, 0);
	pthread_mutex_lock(&s->lock);
	out->pid = shim_task_pid(s);
	out->exit_status = p->exit_status;
	shim_now(out->exited_at, &p->exited_at);
	process_release(p);
	free(p);
	return 0;
}

/* The container is gone from the VM and the host; its record goes last. */
static void delete_init(struct shim *s, struct shim_task *t)
{
	struct kr_err e = { 0 };

	if (t->init.waiter_started)
		pthread_join(t->init.waiter, NULL);
	while (t->execs) {
		struct shim_process *p = t->execs;

		t->execs = p->next;
		if (p->waiter_started)
			pthread_join(p->waiter, NULL);
		io_detach(p, 0);
		process_release(p);
		free(p);
	}
	if (s->sb && kr_sandbox_vm_alive(s->sb) &&
	    agent_remove_container(s->sb->agent, t->id, REMOVE_TIMEOUT_MS, &e) < 0 && e.code != KR_NOT_FOUND)
		kr_warn("remove %s in the VM: %s", t->id, e.msg);
	io_detach(&t->init, 0);
	undo_create(s, t);
}

SHIM_HANDLER(task_delete)
{
	struct shim *s = ctx;
	PB(DeleteResponse) out = PB_INIT(DELETE_RESPONSE);
	PB(Timestamp) ts = PB_INIT(TIMESTAMP);
	struct shim_task *t;
	struct shim_process *p;
	int rc = -1;
	UNPACK(ProcessRequest, process_request, "Delete");

	out.exited_at = &ts;
	pthread_mutex_lock(&s->lock);
	p = shim_find_process(s, r->id, r->exec_id, err);
	if (!p)
		goto unlock;
	t = p->task;
	if (r->exec_id[0]) {
		rc = delete_exec(s, t, p, &out, err);
		if (rc == 0)
			rc = shim_reply(&out.base, resp, resp_len);
		goto unlock;
	}
	if (p->status == PROC_RUNNING || t->paused) {
		kr_err_set(err, KR_FAILED_PRECONDITION, "container %s: cannot delete a running process", t->id);
		goto unlock;
	}
	unlink_task(s, t);
	pthread_mutex_unlock(&s->lock);
	delete_init(s, t);
	pthread_mutex_lock(&s->lock);
	out.pid = shim_task_pid(s);
	out.exit_status = p->exit_status;
	shim_now(&ts, &p->exited_at);
	{
		PB(TaskDelete) ev = PB_INIT(TASK_DELETE);

		ev.container_id = t->id;
		ev.pid = out.pid;
		ev.exit_status = out.exit_status;
		ev.exited_at = &ts;
		events_publish("/tasks/delete", "TaskDelete", &ev.base);
	}
	rc = shim_reply(&out.base, resp, resp_len);
	kr_info("container %s deleted", t->id);
	task_free(t);
unlock:
	pthread_mutex_unlock(&s->lock);
	FREE_REQ();
	return rc;
}

/* ---- Pids, Pause, Resume, Stats, Update ----------------------------------------- */

/* The agent of the VM running container id, or NULL with NOT_FOUND. */
static struct agent_client *agent_for(struct shim *s, const char *id, struct kr_err *err)
{
	struct agent_client *a = NULL;

	pthread_mutex_lock(&s->lock);
	if (shim_find_task(s, id, err)) {
		a = s->sb ? s->sb->agent : NULL;
		if (!a)
			kr_err_set(err, KR_UNAVAILABLE, "container %s: no VM", id);
	}
	pthread_mutex_unlock(&s->lock);
	return a;
}

SHIM_HANDLER(task_pids)
{
	struct shim *s = ctx;
	KataRun__Agent__V1__ContainerRequest q = KATA_RUN__AGENT__V1__CONTAINER_REQUEST__INIT;
	KataRun__Agent__V1__ListProcessesResponse *lp = NULL;
	PB(PidsResponse) out = PB_INIT(PIDS_RESPONSE);
	struct agent_client *a;
	PB(ProcessInfo) *infos = NULL, **ptrs = NULL;
	int rc = -1;
	UNPACK(IdRequest, id_request, "Pids");

	a = agent_for(s, r->id, err);
	if (!a)
		goto out;
	q.container_id = r->id;
	if (agent_call(a, "ListProcesses", &q.base, &kata_run__agent__v1__list_processes_response__descriptor,
		       (ProtobufCMessage **)&lp, 0, err) < 0)
		goto out;
	infos = kr_xcalloc(lp->n_pids + 1, sizeof(*infos));
	ptrs = kr_xcalloc(lp->n_pids + 1, sizeof(*ptrs));
	for (size_t i = 0; i < lp->n_pids; i++) {
		PB(ProcessInfo) init = PB_INIT(PROCESS_INFO);

		infos[i] = init;
		infos[i].pid = lp->pids[i];	/* guest pids: there is no host one */
		ptrs[i] = &infos[i];
	}
	out.processes = ptrs;
	out.n_processes = lp->n_pids;
	rc = shim_reply(&out.base, resp, resp_len);
out:
	if (lp)
		protobuf_c_message_free_unpacked(&lp->base, NULL);
	free(infos);
	free(ptrs);
	FREE_REQ();
	return rc;
}

static int pause_resume(struct shim *s, const uint8_t *req, size_t req_len, bool pause,
			struct kr_err *err)
{
	PB(ContainerEvent) ev = PB_INIT(CONTAINER_EVENT);
	struct agent_client *a;
	struct shim_task *t;
	int rc = -1;
	UNPACK(IdRequest, id_request, "Pause/Resume");

	a = agent_for(s, r->id, err);
	if (a && agent_container_op(a, pause ? "PauseContainer" : "ResumeContainer", r->id, err) == 0) {
		pthread_mutex_lock(&s->lock);
		t = shim_find_task(s, r->id, NULL);
		if (t)
			t->paused = pause;
		ev.container_id = r->id;
		events_publish(pause ? "/tasks/paused" : "/tasks/resumed", pause ? "TaskPaused" : "TaskResumed",
			       &ev.base);
		pthread_mutex_unlock(&s->lock);
		rc = 0;
	}
	FREE_REQ();
	return rc;
}

SHIM_HANDLER(task_pause)
{
	*resp = NULL;
	*resp_len = 0;
	return pause_resume(ctx, req, req_len, true, err);
}

SHIM_HANDLER(task_resume)
{
	*resp = NULL;
	*resp_len = 0;
	return pause_resume(ctx, req, req_len, false, err);
}

/* The agent's cgroup numbers as io.containerd.cgroups.v2.Metrics. */
static int metrics_any(const KataRun__Agent__V1__StatsContainerResponse *st, PB(Any) *any)
{
	PB(Metrics) m = PB_INIT(METRICS);
	PB(PidsStat) pids = PB_INIT(PIDS_STAT);
	PB(CPUStat) cpu = PB_INIT(CPUSTAT);
	PB(MemoryStat) mem = PB_INIT(MEMORY_STAT);
	PB(MemoryEvents) mev = PB_INIT(MEMORY_EVENTS);
	size_t n;

	pids.current = st->pids_current;
	pids.limit = st->pids_limit;
	cpu.usage_usec = st->cpu_usage_ns / 1000;
	cpu.user_usec = st->cpu_user_ns / 1000;
	cpu.system_usec = st->cpu_system_ns / 1000;
	cpu.nr_periods = st->cpu_nr_periods;
	cpu.nr_throttled = st->cpu_nr_throttled;
	cpu.throttled_usec = st->cpu_throttled_ns / 1000;
	mem.anon = st->memory_rss;
	mem.file = st->memory_cache;
	mem.usage = st->memory_usage;
	mem.usage_limit = st->memory_limit;
	mem.swap_usage = st->memory_swap;
	mev.oom_kill = st->memory_oom_kills;
	m.pids = &pids;
	m.cpu = &cpu;
	m.memory = &mem;
	m.memory_events = &mev;
	n = protobuf_c_message_get_packed_size(&m.base);
	any->type_url = "io.containerd.cgroups.v2.Metrics";
	any->value.data = malloc(n ? n : 1);
	if (!any->value.data)
		return -1;
	any->value.len = protobuf_c_message_pack(&m.base, any->value.data);
	return 0;
}

SHIM_HANDLER(task_stats)
{
	struct shim *s = ctx;
	KataRun__Agent__V1__ContainerRequest q = KATA_RUN__AGENT__V1__CONTAINER_REQUEST__INIT;
	KataRun__Agent__V1__StatsContainerResponse *st = NULL;
	PB(StatsResponse) out = PB_INIT(STATS_RESPONSE);
	PB(Any) any = PB_INIT(ANY);
	struct agent_client *a;
	int rc = -1;
	UNPACK(IdRequest, id_request, "Stats");

	a = agent_for(s, r->id, err);
	q.container_id = r->id;
	if (a && agent_call(a, "StatsContainer", &q.base, &kata_run__agent__v1__stats_container_response__descriptor,
			    (ProtobufCMessage **)&st, 0, err) == 0) {
		if (metrics_any(st, &any) == 0) {
			out.stats = &any;
			rc = shim_reply(&out.base, resp, resp_len);
		}
		free(any.value.data);
		protobuf_c_message_free_unpacked(&st->base, NULL);
	}
	FREE_REQ();
	return rc;
}

SHIM_HANDLER(task_update)
{
	struct shim *s = ctx;
	KataRun__Agent__V1__UpdateContainerRequest q = KATA_RUN__AGENT__V1__UPDATE_CONTAINER_REQUEST__INIT;
	ProtobufCMessage *empty = NULL;
	struct agent_client *a;
	int rc = -1;
	UNPACK(UpdateTaskRequest, update_task_request, "Update");

	*resp = NULL;
	*resp_len = 0;
	if (!r->resources || !r->resources->value.len || r->resources->value.len > RESOURCES_MAX) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "Update: resources missing or over %d bytes", RESOURCES_MAX);
		goto out;
	}
	a = agent_for(s, r->id, err);
	q.container_id = r->id;
	q.resources_json = r->resources->value;	/* LinuxResources JSON, checked by the agent */
	if (a && agent_call(a, "UpdateContainer", &q.base, &kata_run__agent__v1__empty__descriptor, &empty, 0,
			    err) == 0) {
		protobuf_c_message_free_unpacked(empty, NULL);
		rc = 0;
	}
out:
	FREE_REQ();
	return rc;
}
