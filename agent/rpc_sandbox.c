/* Sandbox RPCs: CreateSandbox, DestroySandbox, GetGuestDetails, Check. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent.h"
#include "cgroup.h"
#include "kr/log.h"
#include "rpc.h"

static int create_sandbox(struct agent *a, const void *in, void *out,
			  struct kr_err *err)
{
	const kata_run_agent_v1_CreateSandboxRequest *req = in;

	if (req->sandbox_id[0] && agent_check_id(req->sandbox_id, "sandbox id", err) < 0)
		return -1;
	pthread_mutex_lock(&a->lock);
	snprintf(a->sandbox_id, sizeof(a->sandbox_id), "%s", req->sandbox_id);
	pthread_mutex_unlock(&a->lock);
	/* Only the guest's own hostname: on a host (tests) it is not ours. */
	if (a->is_pid1 && req->hostname[0] &&
	    sethostname(req->hostname, strlen(req->hostname)) < 0)
		return kr_err_sys(err, "set hostname %s", req->hostname);
	kr_info("sandbox %s created", req->sandbox_id);
	return 0;
}
RPC_DEFINE(CreateSandbox, CreateSandboxRequest, Empty, create_sandbox)

struct shutdown_arg {
	struct agent *a;
	bool power_off;
};

/* Let the reply leave before the agent goes away. */
static void *delayed_shutdown(void *arg)
{
	struct shutdown_arg *s = arg;

	usleep(100 * 1000);
	agent_shutdown(s->a, s->power_off);
	return NULL;
}

static int destroy_sandbox(struct agent *a, const void *in, void *out,
			   struct kr_err *err)
{
	const kata_run_agent_v1_DestroySandboxRequest *req = in;
	static struct shutdown_arg arg;
	pthread_t t;
	int rc;

	kr_info("destroying sandbox %s", a->sandbox_id);
	container_remove_all(a);
	arg.a = a;
	arg.power_off = req->power_off;
	rc = pthread_create(&t, NULL, delayed_shutdown, &arg);
	if (rc)
		return kr_err_errno(err, rc, "shut down");
	pthread_detach(t);
	return 0;
}
RPC_DEFINE(DestroySandbox, DestroySandboxRequest, Empty, destroy_sandbox)

static uint64_t boottime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int guest_details(struct agent *a, const void *in, void *out,
			 struct kr_err *err)
{
	kata_run_agent_v1_GuestDetailsResponse *resp = out;
	struct cgroup_manager *cgm;
	struct utsname u;
	struct sysinfo si;

	snprintf(resp->agent_version, sizeof(resp->agent_version), "%s", KR_VERSION);
	if (uname(&u) == 0)
		snprintf(resp->kernel_release, sizeof(resp->kernel_release), "%s", u.release);
	if (sysinfo(&si) == 0)
		resp->mem_total_bytes = (uint64_t)si.totalram * si.mem_unit;
	resp->online_cpus = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	resp->is_pid1 = a->is_pid1;
	resp->uptime_ms = boottime_ms();
	resp->init_started_ms = a->init_started_ms;
	if (agent_cgroups(a, &cgm, NULL) == 0)
		resp->cgroup_version = cgroup_manager_is_v2(cgm) ? 2 : 1;
	pthread_mutex_lock(&a->lock);
	snprintf(resp->sandbox_id, sizeof(resp->sandbox_id), "%s", a->sandbox_id);
	resp->container_count = (uint32_t)a->n_containers;
	pthread_mutex_unlock(&a->lock);
	return 0;
}
RPC_DEFINE(GetGuestDetails, Empty, GuestDetailsResponse, guest_details)

static int check(struct agent *a, const void *in, void *out, struct kr_err *err)
{
	return 0;
}
RPC_DEFINE(Check, Empty, Empty, check)

static int get_oom_event(struct agent *a, const void *in, void *out,
			 struct kr_err *err)
{
	kata_run_agent_v1_OOMEventResponse *resp = out;

	oom_next_event(a, resp->container_id, RPC_LONG_POLL_MS);
	return 0;
}
RPC_DEFINE(GetOOMEvent, Empty, OOMEventResponse, get_oom_event)
