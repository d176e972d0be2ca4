/* Process RPCs: ExecProcess, SignalProcess, WaitProcess. */
#include <signal.h>
#include <string.h>

#include "agent.h"
#include "cgroup.h"
#include "kr/log.h"
#include "rpc.h"

static int exec_process(struct agent *a, const void *in, void *out,
			struct kr_err *err)
{
	const kata_run_agent_v1_ExecProcessRequest *req = in;
	kata_run_agent_v1_ExecProcessResponse *resp = out;
	const struct rpc_blob *proc = req->process_json.arg;
	struct container *c;
	pid_t pid = -1;
	int rc;

	if (!proc->data)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "exec %s: no process", req->exec_id);
	c = container_get(a, req->container_id, err);
	if (!c)
		return -1;
	rc = process_exec(a, c, req->exec_id, (const char *)proc->data, proc->len,
			  &pid, err);
	container_put(a, c);
	resp->pid = (uint32_t)pid;
	return rc;
}
static void exec_prepare(void *req, void *resp, struct rpc_blob *in,
			 struct rpc_blob *out)
{
	kata_run_agent_v1_ExecProcessRequest *r = req;

	rpc_blob_bind_decode(&r->process_json, in, RPC_BLOB_PROCESS_MAX);
}
RPC_DEFINE_WITH(ExecProcess, ExecProcessRequest, ExecProcessResponse,
		exec_process, exec_prepare)

static int signal_process(struct agent *a, const void *in, void *out,
			  struct kr_err *err)
{
	const kata_run_agent_v1_SignalProcessRequest *req = in;
	struct container *c;
	struct process *p;
	int rc;

	if (req->signal == 0 || req->signal >= (uint32_t)NSIG)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "invalid signal %u", req->signal);
	p = rpc_process_get(a, req->container_id, req->exec_id, &c, err);
	if (!p)
		return -1;
	if (req->all && req->exec_id[0] == '\0') {
		struct cgroup *cg = container_cg_get(c, err);

		rc = cg ? cgroup_kill_all(cg, (int)req->signal, err) : -1;
		if (cg)
			container_cg_put(c);
	} else
		rc = process_signal(p, (int)req->signal, err);
	rpc_process_put(a, c, p);
	return rc;
}
RPC_DEFINE(SignalProcess, SignalProcessRequest, Empty, signal_process)

/* An init killed by SIGKILL in a cgroup that had an OOM kill was the OOM
 * killer's victim. */
static bool was_oom_killed(struct container *c, struct process *p)
{
	struct cgroup_stats st = { 0 };
	struct cgroup *cg;
	bool oom;

	if (p->exit_status != 128 + SIGKILL)
		return false;
	if (c->oom_kills)
		return true;
	cg = container_cg_get(c, NULL);
	if (!cg)
		return false;
	oom = cgroup_stats(cg, &st, NULL) == 0 && st.memory_oom_kills > 0;
	container_cg_put(c);
	return oom;
}

static int wait_process(struct agent *a, const void *in, void *out,
			struct kr_err *err)
{
	const kata_run_agent_v1_ProcessRequest *req = in;
	kata_run_agent_v1_WaitProcessResponse *resp = out;
	struct container *c;
	struct process *p;
	int rc = 0;

	p = rpc_process_get(a, req->container_id, req->exec_id, &c, err);
	if (!p)
		return -1;
	if (process_wait(a, p, RPC_LONG_POLL_MS) < 0) {
		/* Not an error of the process: the caller asks again. */
		rc = kr_err_set(err, KR_DEADLINE_EXCEEDED, "process still running");
	} else {
		resp->exit_status = p->exit_status;
		resp->exited_at_ns = p->exited_at_ns;
		resp->oom_killed = was_oom_killed(c, p);
	}
	rpc_process_put(a, c, p);
	return rc;
}
RPC_DEFINE(WaitProcess, ProcessRequest, WaitProcessResponse, wait_process)

static int remove_process(struct agent *a, const void *in, void *out,
			  struct kr_err *err)
{
	const kata_run_agent_v1_ProcessRequest *req = in;
	struct container *c = container_get(a, req->container_id, err);
	int rc;

	if (!c)
		return -1;
	rc = container_remove_exec(a, c, req->exec_id, err);
	container_put(a, c);
	return rc;
}
RPC_DEFINE(RemoveProcess, ProcessRequest, Empty, remove_process)
