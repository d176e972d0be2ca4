/* Container cgroups, inside the guest (cgroup v2) and, for host tests and
 * older guests, on a v1 or hybrid hierarchy.
 *
 * The manager finds the layout once: a cgroup2 mount at the root given to
 * cgroup_manager_new() means v2; otherwise each v1 controller (memory, pids,
 * cpu, cpuacct, freezer, cpuset) is used under its own mount.  Container
 * cgroups are created under a prefix: "<root>/<prefix>/<id>" on v2 and
 * "<ctrl-mount>/<own cgroup of the agent>/<prefix>/<id>" on v1, so an agent
 * run by a test stays inside the test's cgroup. */
#ifndef KR_AGENT_CGROUP_H
#define KR_AGENT_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kr/error.h"
#include "spec.h"

struct cgroup_manager;
struct cgroup;

/* mount_root: where cgroup file systems are mounted ("/sys/fs/cgroup").
 * prefix: a relative path for all container cgroups ("kata-run").
 * Creates the prefix directories and, on v2, enables the memory, pids, cpu
 * and cpuset controllers in cgroup.subtree_control along the way. */
struct cgroup_manager *cgroup_manager_new(const char *mount_root,
					  const char *prefix,
					  struct kr_err *err);
/* Removes the prefix directories (they must be empty by then). */
void cgroup_manager_free(struct cgroup_manager *m);
bool cgroup_manager_is_v2(const struct cgroup_manager *m);

/* Create the cgroup of container `id` and apply `res` (may be NULL). */
struct cgroup *cgroup_create(struct cgroup_manager *m, const char *id,
			     const struct oci_resources *res,
			     struct kr_err *err);
/* Move a process in (writes cgroup.procs in every hierarchy). */
int cgroup_add_pid(struct cgroup *cg, pid_t pid, struct kr_err *err);
/* Apply a resource update (only the fields present). */
int cgroup_update(struct cgroup *cg, const struct oci_resources *res,
		  struct kr_err *err);
/* Freeze/thaw all processes (cgroup.freeze on v2, freezer.state on v1);
 * returns once the kernel reports the state reached (bounded wait). */
int cgroup_freeze(struct cgroup *cg, bool frozen, struct kr_err *err);
/* Pids in the cgroup (malloc'd array). */
int cgroup_pids(struct cgroup *cg, pid_t **pids, size_t *n,
		struct kr_err *err);
/* Send sig to every process in the cgroup. */
int cgroup_kill_all(struct cgroup *cg, int sig, struct kr_err *err);

struct cgroup_stats {
	uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
	uint64_t cpu_nr_periods, cpu_nr_throttled, cpu_throttled_ns;
	uint64_t memory_usage, memory_max_usage, memory_limit; /* limit: UINT64_MAX if none */
	uint64_t memory_cache, memory_rss, memory_swap;
	uint64_t memory_oom_kills;	/* cumulative OOM kills in this cgroup */
	uint64_t pids_current, pids_limit;	/* limit: 0 if none */
};
int cgroup_stats(struct cgroup *cg, struct cgroup_stats *st,
		 struct kr_err *err);

/* OOM notification: a file descriptor that becomes readable (v1: eventfd
 * registered on memory.oom_control) or gets an inotify event (v2:
 * memory.events) when memory pressure events happen; then call
 * cgroup_oom_check() which returns how many new OOM kills happened since the
 * previous call (0 if the wake-up was for something else) and consumes the
 * wake-up. */
int cgroup_oom_fd(struct cgroup *cg);
int cgroup_oom_check(struct cgroup *cg, uint64_t *new_kills,
		     struct kr_err *err);

/* Kill what is left (SIGKILL, bounded wait) and remove the directories.
 * Frees cg even when it fails. */
int cgroup_destroy(struct cgroup *cg, struct kr_err *err);

#endif
