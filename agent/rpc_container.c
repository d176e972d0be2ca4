/* Container RPCs: create, start, remove, stats, pause, resume, update, ps. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cgroup.h"
#include "kr/log.h"
#include "kr/util.h"
#include "rpc.h"

static int create_container(struct agent *a, const void *in, void *out,
			    struct kr_err *err)
{
	const kata_run_agent_v1_CreateContainerRequest *req = in;
	kata_run_agent_v1_CreateContainerResponse *resp = out;
	const struct rpc_blob *spec = req->oci_spec_json.arg;
	pid_t pid;

	if (!spec->data)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "create container %s: no OCI spec", req->container_id);
	if (container_create(a, req->container_id, (const char *)spec->data,
			     spec->len, req->rootfs_path,
			     req->rootfs_overlay, &pid, err) < 0)
		return -1;
	resp->pid = (uint32_t)pid;
	return 0;
}
static void create_prepare(void *req, void *resp, struct rpc_blob *in,
			   struct rpc_blob *out)
{
	kata_run_agent_v1_CreateContainerRequest *r = req;

	rpc_blob_bind_decode(&r->oci_spec_json, in, RPC_BLOB_SPEC_MAX);
}
RPC_DEFINE_WITH(CreateContainer, CreateContainerRequest, CreateContainerResponse,
		create_container, create_prepare)

/* Run op on the pinned container named by a ContainerRequest. */
#define WITH_CONTAINER(req_id, body)                                          \
	do {                                                                  \
		struct container *c = container_get(a, (req_id), err);        \
		int rc;                                                       \
		if (!c)                                                       \
			return -1;                                            \
		rc = (body);                                                  \
		container_put(a, c);                                          \
		return rc;                                                    \
	} while (0)

static int start_container(struct agent *a, const void *in, void *out,
			   struct kr_err *err)
{
	const kata_run_agent_v1_ContainerRequest *req = in;

	WITH_CONTAINER(req->container_id, container_start(a, c, err));
}
RPC_DEFINE(StartContainer, ContainerRequest, Empty, start_container)

static int remove_container(struct agent *a, const void *in, void *out,
			    struct kr_err *err)
{
	const kata_run_agent_v1_RemoveContainerRequest *req = in;

	WITH_CONTAINER(req->container_id,
		       container_remove(a, c, req->timeout_ms, err));
}
RPC_DEFINE(RemoveContainer, RemoveContainerRequest, Empty, remove_container)

static int fill_stats(struct container *c,
		      kata_run_agent_v1_StatsContainerResponse *r,
		      struct kr_err *err)
{
	struct cgroup_stats st = { 0 };
	struct cgroup *cg = container_cg_get(c, err);
	int rc;

	if (!cg)
		return -1;
	rc = cgroup_stats(cg, &st, err);
	container_cg_put(c);
	if (rc < 0)
		return kr_err_wrap(err, "stats of container %s", c->id);
	r->cpu_usage_ns = st.cpu_usage_ns;
	r->cpu_user_ns = st.cpu_user_ns;
	r->cpu_system_ns = st.cpu_system_ns;
	r->cpu_nr_periods = st.cpu_nr_periods;
	r->cpu_nr_throttled = st.cpu_nr_throttled;
	r->cpu_throttled_ns = st.cpu_throttled_ns;
	r->memory_usage = st.memory_usage;
	r->memory_max_usage = st.memory_max_usage;
	r->memory_limit = st.memory_limit;
	r->memory_cache = st.memory_cache;
	r->memory_rss = st.memory_rss;
	r->memory_swap = st.memory_swap;
	r->memory_oom_kills = st.memory_oom_kills;
	r->pids_current = st.pids_current;
	r->pids_limit = st.pids_limit;
	return 0;
}

static int stats_container(struct agent *a, const void *in, void *out,
			   struct kr_err *err)
{
	const kata_run_agent_v1_ContainerRequest *req = in;

	WITH_CONTAINER(req->container_id, fill_stats(c, out, err));
}
RPC_DEFINE(StatsContainer, ContainerRequest, StatsContainerResponse, stats_container)

static int set_paused(struct agent *a, struct container *c, bool pause,
		      struct kr_err *err)
{
	enum container_state want = pause ? CT_RUNNING : CT_PAUSED;

	pthread_mutex_lock(&a->lock);
	if (c->state != want) {
		pthread_mutex_unlock(&a->lock);
		return kr_err_set(err, KR_FAILED_PRECONDITION, "container %s is not %s",
				  c->id, pause ? "running" : "paused");
	}
	pthread_mutex_unlock(&a->lock);
	struct cgroup *cg = container_cg_get(c, err);
	int rc;

	if (!cg)
		return -1;
	rc = cgroup_freeze(cg, pause, err);
	container_cg_put(c);
	if (rc < 0)
		return kr_err_wrap(err, "%s container %s", pause ? "pause" : "resume", c->id);
	pthread_mutex_lock(&a->lock);
	if (c->state == want)
		c->state = pause ? CT_PAUSED : CT_RUNNING;
	pthread_mutex_unlock(&a->lock);
	kr_info("container %s %s", c->id, pause ? "paused" : "resumed");
	return 0;
}

static int pause_container(struct agent *a, const void *in, void *out,
			   struct kr_err *err)
{
	const kata_run_agent_v1_ContainerRequest *req = in;

	WITH_CONTAINER(req->container_id, set_paused(a, c, true, err));
}
RPC_DEFINE(PauseContainer, ContainerRequest, Empty, pause_container)

static int resume_container(struct agent *a, const void *in, void *out,
			    struct kr_err *err)
{
	const kata_run_agent_v1_ContainerRequest *req = in;

	WITH_CONTAINER(req->container_id, set_paused(a, c, false, err));
}
RPC_DEFINE(ResumeContainer, ContainerRequest, Empty, resume_container)

static int apply_update(struct container *c, const void *json, size_t len,
			struct kr_err *err)
{
	struct oci_resources res = { 0 };
	int rc;

	if (spec_parse_resources(json, len, &res, err) < 0)
		return kr_err_wrap(err, "update container %s", c->id);
	struct cgroup *cg = container_cg_get(c, err);
	rc = cg ? cgroup_update(cg, &res, err) : -1;
	if (cg)
		container_cg_put(c);
	spec_resources_release(&res);
	return rc < 0 ? kr_err_wrap(err, "update container %s", c->id) : 0;
}

static int update_container(struct agent *a, const void *in, void *out,
			    struct kr_err *err)
{
	const kata_run_agent_v1_UpdateContainerRequest *req = in;
	const struct rpc_blob *res = req->resources_json.arg;

	if (!res->data)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "update container %s: no resources", req->container_id);
	WITH_CONTAINER(req->container_id, apply_update(c, res->data, res->len, err));
}

static void update_prepare(void *req, void *resp, struct rpc_blob *in,
			   struct rpc_blob *out)
{
	kata_run_agent_v1_UpdateContainerRequest *r = req;

	rpc_blob_bind_decode(&r->resources_json, in, RPC_BLOB_RESOURCES_MAX);
}
RPC_DEFINE_WITH(UpdateContainer, UpdateContainerRequest, Empty, update_container,
		update_prepare)

static int list_pids(struct container *c,
		     kata_run_agent_v1_ListProcessesResponse *resp,
		     struct kr_err *err)
{
	pid_t *pids = NULL;
	size_t n = 0;

	struct cgroup *cg = container_cg_get(c, err);
	int rc;

	if (!cg)
		return -1;
	rc = cgroup_pids(cg, &pids, &n, err);
	container_cg_put(c);
	if (rc < 0)
		return kr_err_wrap(err, "list processes of container %s", c->id);
	for (size_t i = 0; i < n && i < KR_ARRAY_SIZE(resp->pids); i++)
		resp->pids[resp->pids_count++] = (uint32_t)pids[i];
	free(pids);
	return 0;
}

static int list_processes(struct agent *a, const void *in, void *out,
			  struct kr_err *err)
{
	const kata_run_agent_v1_ContainerRequest *req = in;

	WITH_CONTAINER(req->container_id, list_pids(c, out, err));
}
RPC_DEFINE(ListProcesses, ContainerRequest, ListProcessesResponse, list_processes)
