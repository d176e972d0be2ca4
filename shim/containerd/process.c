/* Process objects of the Task service (the init process and execs):
 * Start, State, Kill, Wait, Exec, ResizePty, CloseIO, and the waiter
 * thread that turns the agent's exit into STOPPED + TaskExit (shim.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kr/agent_client.h"
#include "kr/log.h"
#include "kr/util.h"
#include "sandbox.h"
#include "shim.h"

#define EXEC_SPEC_MAX (256 << 10)	/* the agent's cap on a process spec */
#define FLUSH_TIMEOUT_MS 10000		/* output after the exit, at most */
#define EXIT_VM_GONE 255		/* the VM or its agent died */

static bool is_init(const struct shim_process *p) { return !p->exec_id[0]; }

/* ---- exits ---------------------------------------------------------------------- */

void process_exited(struct shim *s, struct shim_process *p, uint32_t status)
{
	PB(TaskExit) ev = PB_INIT(TASK_EXIT);
	PB(Timestamp) ts = PB_INIT(TIMESTAMP);

	if (p->status == PROC_STOPPED)
		return;
	p->status = PROC_STOPPED;
	p->exit_status = status;
	clock_gettime(CLOCK_REALTIME, &p->exited_at);
	if (is_init(p))
		p->task->paused = false;
	shim_now(&ts, &p->exited_at);
	ev.container_id = p->task->id;
	ev.id = is_init(p) ? p->task->id : p->exec_id;
	ev.pid = shim_task_pid(s);
	ev.exit_status = status;
	ev.exited_at = &ts;
	events_publish("/tasks/exit", "TaskExit", &ev.base);
	pthread_cond_broadcast(&s->exited);
	kr_info("container %s process \"%s\" exited with %u", p->task->id, p->exec_id, status);
}

void process_release(struct shim_process *p)
{
	free(p->stdin_path);
	free(p->stdout_path);
	free(p->stderr_path);
	free(p->spec_json);
	p->stdin_path = p->stdout_path = p->stderr_path = p->spec_json = NULL;
}

/* Waits in the agent (long polls), then delivers all output before the
 * exit is reported: ctr prints what it read, then exits with the status. */
static void *waiter_main(void *arg)
{
	struct shim_process *p = arg;
	struct shim *s = shim_global;
	struct kr_err err = { 0 };
	int status = 0;

	if (agent_wait(s->sb->agent, p->task->id, p->exec_id, &status, NULL, &err) < 0) {
		kr_warn("wait for %s \"%s\": %s", p->task->id, p->exec_id, err.msg);
		status = EXIT_VM_GONE;
	}
	io_detach(p, status == EXIT_VM_GONE ? 0 : FLUSH_TIMEOUT_MS);
	pthread_mutex_lock(&s->lock);
	process_exited(s, p, (uint32_t)status);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int process_watch(struct shim *s, struct shim_process *p, struct kr_err *err)
{
	int rc = pthread_create(&p->waiter, NULL, waiter_main, p);

	(void)s;
	if (rc)
		return kr_err_errno(err, rc, "start the waiter of %s", p->task->id);
	p->waiter_started = true;
	return 0;
}

/* ---- Start ---------------------------------------------------------------------- */

static int start_in_vm(struct shim *s, struct shim_process *p, struct kr_err *err)
{
	struct agent_client *a = s->sb->agent;
	uint32_t pid;

	if (is_init(p))
		return agent_container_op(a, "StartContainer", p->task->id, err);
	if (agent_exec(a, p->task->id, p->exec_id, p->spec_json, p->spec_len, &pid, err) < 0)
		return -1;
	/* The agent keeps the output until it is read. */
	if (io_attach(s, p, err) < 0) {
		agent_signal(a, p->task->id, p->exec_id, 9, false, NULL);
		return -1;
	}
	return 0;
}

SHIM_HANDLER(process_start)
{
	struct shim *s = ctx;
	PB(StartResponse) out = PB_INIT(START_RESPONSE);
	struct shim_process *p;
	int rc = -1;
	UNPACK(ProcessRequest, process_request, "Start");

	pthread_mutex_lock(&s->lock);
	p = shim_find_process(s, r->id, r->exec_id, err);
	if (p && p->status != PROC_CREATED) {
		kr_err_set(err, KR_FAILED_PRECONDITION, "%s \"%s\": already started", r->id, r->exec_id);
		p = NULL;
	}
	if (p)
		p->status = PROC_RUNNING;	/* a second Start is refused meanwhile */
	pthread_mutex_unlock(&s->lock);
	if (!p)
		goto out;
	if (start_in_vm(s, p, err) < 0) {
		pthread_mutex_lock(&s->lock);
		if (p->status == PROC_RUNNING)	/* not ended meanwhile (dead VM) */
			p->status = PROC_CREATED;
		pthread_mutex_unlock(&s->lock);
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	out.pid = shim_task_pid(s);
	/* Queued before the waiter can queue the exit. */
	if (is_init(p)) {
		PB(TaskStart) ev = PB_INIT(TASK_START);

		ev.container_id = r->id;
		ev.pid = out.pid;
		events_publish("/tasks/start", "TaskStart", &ev.base);
	} else {
		PB(TaskExecStarted) ev = PB_INIT(TASK_EXEC_STARTED);

		ev.container_id = r->id;
		ev.exec_id = r->exec_id;
		ev.pid = out.pid;
		events_publish("/tasks/exec-started", "TaskExecStarted", &ev.base);
	}
	pthread_mutex_unlock(&s->lock);
	if (process_watch(s, p, err) < 0)
		goto out;
	rc = shim_reply(&out.base, resp, resp_len);
out:
	FREE_REQ();
	return rc;
}

/* ---- State, Wait ----------------------------------------------------------------- */

/* An exited process's status; *at points to ts, filled with its time. */
static uint32_t exit_of(const struct shim_process *p, PB(Timestamp) *ts, PB(Timestamp) **at)
{
	shim_now(ts, &p->exited_at);
	*at = ts;
	return p->exit_status;
}

SHIM_HANDLER(process_state)
{
	struct shim *s = ctx;
	PB(StateResponse) out = PB_INIT(STATE_RESPONSE);
	PB(Timestamp) ts = PB_INIT(TIMESTAMP);
	struct shim_process *p;
	int rc = -1;
	UNPACK(ProcessRequest, process_request, "State");

	pthread_mutex_lock(&s->lock);	/* cached: never waits for the guest */
	p = shim_find_process(s, r->id, r->exec_id, err);
	if (p) {
		out.id = is_init(p) ? p->task->id : p->exec_id;
		out.bundle = p->task->bundle;
		out.pid = shim_task_pid(s);
		out.status = (PB(Status))p->status;
		if (p->status == PROC_RUNNING && p->task->paused)
			out.status = KATA_RUN__CONTAINERD__STATUS__PAUSED;
		out.stdin = p->stdin_path;
		out.stdout = p->stdout_path;
		out.stderr = p->stderr_path;
		out.terminal = p->terminal;
		out.exec_id = p->exec_id;
		if (p->status == PROC_STOPPED)
			out.exit_status = exit_of(p, &ts, &out.exited_at);
		rc = shim_reply(&out.base, resp, resp_len);
	}
	pthread_mutex_unlock(&s->lock);
	FREE_REQ();
	return rc;
}

/* Works before Start (ctr waits first), concurrently, and after the exit.
 * The process is looked up again after each wake-up: an exec that never
 * started may be deleted meanwhile. */
SHIM_HANDLER(process_wait)
{
	struct shim *s = ctx;
	PB(WaitResponse) out = PB_INIT(WAIT_RESPONSE);
	PB(Timestamp) ts = PB_INIT(TIMESTAMP);
	struct shim_process *p;
	int rc = -1;
	UNPACK(ProcessRequest, process_request, "Wait");

	pthread_mutex_lock(&s->lock);
	while ((p = shim_find_process(s, r->id, r->exec_id, err)) && p->status != PROC_STOPPED)
		pthread_cond_wait(&s->exited, &s->lock);
	if (p) {
		out.exit_status = exit_of(p, &ts, &out.exited_at);
		rc = shim_reply(&out.base, resp, resp_len);
	}
	pthread_mutex_unlock(&s->lock);
	FREE_REQ();
	return rc;
}

/* ---- Kill, Exec, ResizePty, CloseIO ----------------------------------------------- */

SHIM_HANDLER(process_kill)
{
	struct shim *s = ctx;
	struct shim_process *p;
	struct agent_client *a = NULL;
	int rc = -1;
	UNPACK(KillRequest, kill_request, "Kill");

	*resp = NULL;
	*resp_len = 0;
	pthread_mutex_lock(&s->lock);
	p = shim_find_process(s, r->id, r->exec_id, err);
	if (p && p->status == PROC_STOPPED)
		kr_err_set(err, KR_NOT_FOUND, "%s \"%s\": process already finished", r->id, r->exec_id);
	else if (p && !is_init(p) && p->status == PROC_CREATED)
		kr_err_set(err, KR_FAILED_PRECONDITION, "%s \"%s\": not started", r->id, r->exec_id);
	else if (p)
		a = s->sb ? s->sb->agent : NULL;
	pthread_mutex_unlock(&s->lock);
	if (r->signal == 0 || r->signal > 64)
		kr_err_set(err, KR_INVALID_ARGUMENT, "Kill: signal %u", r->signal);
	else if (a)
		rc = agent_signal(a, r->id, r->exec_id, (int)r->signal, r->all, err);
	FREE_REQ();
	return rc;
}

SHIM_HANDLER(process_exec)
{
	struct shim *s = ctx;
	struct shim_process *p = NULL;
	struct shim_task *t;
	int rc = -1;
	UNPACK(ExecProcessRequest, exec_process_request, "Exec");

	*resp = NULL;
	*resp_len = 0;
	if (!r->exec_id[0] || strlen(r->exec_id) > SHIM_ID_MAX || !r->spec || !r->spec->value.len ||
	    r->spec->value.len > EXEC_SPEC_MAX) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "Exec: missing exec id or process spec (at most %d bytes)",
			   EXEC_SPEC_MAX);
		goto out;
	}
	pthread_mutex_lock(&s->lock);
	t = shim_find_task(s, r->id, err);
	if (t && t->init.status != PROC_RUNNING)
		kr_err_set(err, KR_FAILED_PRECONDITION, "container %s is not running", r->id);
	else if (t && shim_find_process(s, r->id, r->exec_id, NULL))
		kr_err_set(err, KR_ALREADY_EXISTS, "exec %s of %s already exists", r->exec_id, r->id);
	else if (t) {
		p = kr_xcalloc(1, sizeof(*p));
		p->task = t;
		snprintf(p->exec_id, sizeof(p->exec_id), "%s", r->exec_id);
		p->status = PROC_CREATED;
		p->terminal = r->terminal;
		p->stdin_path = kr_xstrdup(r->stdin);
		p->stdout_path = kr_xstrdup(r->stdout);
		p->stderr_path = kr_xstrdup(r->stderr);
		p->fds[0] = p->fds[1] = p->fds[2] = -1;
		p->spec_json = malloc(r->spec->value.len);
		if (p->spec_json)
			memcpy(p->spec_json, r->spec->value.data, r->spec->value.len);
		p->spec_len = r->spec->value.len;
		p->next = t->execs;
		t->execs = p;
		{
			PB(TaskExecAdded) ev = PB_INIT(TASK_EXEC_ADDED);

			ev.container_id = r->id;
			ev.exec_id = r->exec_id;
			events_publish("/tasks/exec-added", "TaskExecAdded", &ev.base);
		}
		rc = 0;
	}
	pthread_mutex_unlock(&s->lock);
out:
	FREE_REQ();
	return rc;
}

SHIM_HANDLER(process_resize)
{
	struct shim *s = ctx;
	struct shim_process *p;
	struct agent_client *a = NULL;
	int rc = 0;
	UNPACK(ResizePtyRequest, resize_pty_request, "ResizePty");

	*resp = NULL;
	*resp_len = 0;
	pthread_mutex_lock(&s->lock);
	p = shim_find_process(s, r->id, r->exec_id, err);
	if (!p)
		rc = -1;
	else if (p->terminal && p->status == PROC_RUNNING && s->sb)
		a = s->sb->agent;
	pthread_mutex_unlock(&s->lock);
	/* 0x0 arrives when ctr's terminal has no size: nothing to do. */
	if (a && r->width && r->height && r->width < 65536 && r->height < 65536)
		rc = agent_resize(a, r->id, r->exec_id, r->height, r->width, err);
	FREE_REQ();
	return rc;
}

/* EOF on the stdin FIFO closes the process's stdin (io.c), and containerd
 * may not send CloseIO at all: nothing more to do than check the ids. */
SHIM_HANDLER(process_close_io)
{
	struct shim *s = ctx;
	int rc = 0;
	UNPACK(CloseIORequest, close_iorequest, "CloseIO");

	*resp = NULL;
	*resp_len = 0;
	pthread_mutex_lock(&s->lock);
	if (!shim_find_process(s, r->id, r->exec_id, err))
		rc = -1;
	pthread_mutex_unlock(&s->lock);
	FREE_REQ();
	return rc;
}
