/* Sandbox-wide state: the cgroup manager and agent shutdown. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent.h"
#include "cgroup.h"
#include "kr/log.h"
#include "kr/util.h"

struct agent *agent_global;

/* The manager is made on first use: a failure (no cgroup file system) then
 * becomes an error of the request that needs it, not of agent start-up. */
int agent_cgroups(struct agent *a, struct cgroup_manager **out,
		  struct kr_err *err)
{
	pthread_mutex_lock(&a->lock);
	if (!a->cgm)
		a->cgm = cgroup_manager_new(a->cfg.cgroup_root, a->cfg.cgroup_prefix, err);
	*out = a->cgm;
	pthread_mutex_unlock(&a->lock);
	return *out ? 0 : -1;
}

/* Kill every container, release cgroups and state, then exit (or power the
 * VM off when we are its init). */
void agent_shutdown(struct agent *a, bool power_off)
{
	struct kr_err err = { 0 };

	pthread_mutex_lock(&a->lock);
	if (a->shutting_down) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	a->shutting_down = true;
	pthread_mutex_unlock(&a->lock);
	container_remove_all(a);
	if (a->cgm)
		cgroup_manager_free(a->cgm);
	/* The state dir may be a mount point (a tmpfs given to us): then
	 * only its contents can go. */
	if (!a->is_pid1 && kr_rm_rf(a->cfg.state_dir, &err) < 0 && err.errnum != EBUSY)
		kr_warn("remove state dir: %s", err.msg);
	kr_info("agent stopped");
	if (a->is_pid1 && power_off)
		pid1_power_off();
	_exit(0);
}
