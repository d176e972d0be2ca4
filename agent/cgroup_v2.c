/* cgroup v2 backend: one unified hierarchy, containers at
 * <root>/<prefix>/<id>.  Every function here works on plain directory
 * paths, so the unit test can run it against a fake tree of ordinary
 * files (see cg_manager_new_ops). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cgroup_internal.h"
#include "kr/log.h"
#include "kr/util.h"

/* Controllers we delegate to container cgroups, in write order. */
static const char *const wanted_ctrls[] = { "memory", "pids", "cpu", "cpuset" };

/* ---- conversions (runc's, so limits mean the same under both) -------- */

uint64_t cg_v2_shares_to_weight(uint64_t shares)
{
	/* v1 shares [2, 262144] map linearly onto v2 weight [1, 10000]. */
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((shares - 2) * 9999) / 262142;
}

/* OCI memory.swap is memory+swap (the v1 memsw meaning); v2 limits swap
 * alone.  0 means "not given", -1 "unlimited". */
int cg_v2_swap_value(const struct oci_resources *res, bool *set,
		     int64_t *val, struct kr_err *err)
{
	int64_t mem = res->has_memory_limit ? res->memory_limit : 0;
	int64_t swap = res->has_memory_swap ? res->memory_swap : 0;

	*set = true;
	/* Unlimited memory with swap unset: unlimited swap too, as v1 did. */
	if (mem == -1 && swap == 0) {
		*val = -1;
		return 0;
	}
	if (swap == 0) {
		*set = false;
		return 0;
	}
	if (swap == -1) {
		*val = -1;
		return 0;
	}
	if (mem <= 0)
		return kr_err_errno(err, EINVAL, "memory.swap.max: a swap limit (%" PRId64 ") needs a memory limit",
				    swap);
	if (swap < mem)
		return kr_err_errno(err, EINVAL, "memory.swap.max: memory+swap limit %" PRId64 " is below the memory limit %" PRId64,
				    swap, mem);
	*val = swap - mem;
	return 0;
}

/* -1 (or any negative) is "max" in v2 files. */
static void fmt_limit(char *buf, size_t len, int64_t v)
{
	if (v < 0)
		snprintf(buf, len, "max");
	else
		snprintf(buf, len, "%" PRId64, v);
}

/* ---- setup ----------------------------------------------------------- */

static bool has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += wl) {
		bool start = p == list || p[-1] == ' ' || p[-1] == '\n';
		char end = p[wl];

		if (start && (end == '\0' || end == ' ' || end == '\n'))
			return true;
	}
	return false;
}

/* Delegate our controllers to the children of dir: "+memory +pids ..."
 * for those the kernel offers at this level. */
static int enable_controllers(const char *dir, struct kr_err *err)
{
	kr_cleanup_free char *avail = NULL;
	char req[64] = "";

	if (cg_read(dir, "cgroup.controllers", &avail, err) < 0)
		return -1;
	for (size_t i = 0; i < KR_ARRAY_SIZE(wanted_ctrls); i++) {
		if (!has_word(avail, wanted_ctrls[i])) {
			kr_debug("cgroup: %s: controller %s not available",
				 dir, wanted_ctrls[i]);
			continue;
		}
		if (req[0])
			strcat(req, " ");
		strcat(req, "+");
		strcat(req, wanted_ctrls[i]);
	}
	if (!req[0])
		return 0;
	return cg_write(dir, "cgroup.subtree_control", req, err);
}

static int v2_detect(struct cgroup_manager *m, const char *root,
		     struct kr_err *err)
{
	m->hier[CG_V2].parent = kr_xstrdup(root);
	return 0;
}

static int v2_setup(struct cgroup_manager *m, struct kr_err *err)
{
	struct cg_hier *h = &m->hier[CG_V2];

	if (enable_controllers(h->parent, err) < 0)
		return -1;
	return cg_prefix_create(m, h, enable_controllers, err);
}

static int v2_create(struct cgroup *cg, struct kr_err *err)
{
	cg->path[CG_V2] = cg_join(cg->m->hier[CG_V2].base, cg->id);
	return cg_mkdir(cg->path[CG_V2], &cg->created[CG_V2], err);
}

/* ---- resources ------------------------------------------------------- */

static int set_memory(const char *dir, const struct oci_resources *res,
		      struct kr_err *err)
{
	char buf[32];
	bool set;
	int64_t swap;

	if (cg_v2_swap_value(res, &set, &swap, err) < 0)
		return -1;
	/* No swap accounting (no file): "max" and "0" are already what the
	 * container gets. */
	if (set && swap <= 0 && !cg_exists(dir, "memory.swap.max"))
		set = false;
	if (set) {
		fmt_limit(buf, sizeof(buf), swap);
		if (cg_write(dir, "memory.swap.max", buf, err) < 0)
			return -1;
	}
	if (res->has_memory_limit && res->memory_limit != 0) {
		fmt_limit(buf, sizeof(buf), res->memory_limit);
		if (cg_write(dir, "memory.max", buf, err) < 0)
			return -1;
	}
	if (res->has_memory_reservation && res->memory_reservation != 0) {
		fmt_limit(buf, sizeof(buf), res->memory_reservation);
		if (cg_write(dir, "memory.low", buf, err) < 0)
			return -1;
	}
	return 0;
}

/* cpu.max is "$QUOTA $PERIOD"; a lone period keeps the current quota. */
static int set_cpu_max(const char *dir, const struct oci_resources *res,
		       struct kr_err *err)
{
	bool quota = res->has_cpu_quota && res->cpu_quota != 0;
	bool period = res->has_cpu_period && res->cpu_period != 0;
	kr_cleanup_free char *cur = NULL;
	char qbuf[32], buf[64];

	if (!quota && !period)
		return 0;
	if (quota) {
		fmt_limit(qbuf, sizeof(qbuf), res->cpu_quota);
	} else {
		if (cg_read(dir, "cpu.max", &cur, err) < 0)
			return -1;
		if (sscanf(cur, "%31s", qbuf) != 1)
			snprintf(qbuf, sizeof(qbuf), "max");
	}
	if (period)
		snprintf(buf, sizeof(buf), "%s %" PRIu64, qbuf, res->cpu_period);
	else
		snprintf(buf, sizeof(buf), "%s", qbuf);
	return cg_write(dir, "cpu.max", buf, err);
}

static int set_cpu(const char *dir, const struct oci_resources *res,
		   struct kr_err *err)
{
	if (res->has_cpu_shares && res->cpu_shares != 0 &&
	    cg_writef(err, dir, "cpu.weight", "%" PRIu64,
		      cg_v2_shares_to_weight(res->cpu_shares)) < 0)
		return -1;
	if (set_cpu_max(dir, res, err) < 0)
		return -1;
	if (res->cpuset_cpus && cg_write(dir, "cpuset.cpus", res->cpuset_cpus, err) < 0)
		return -1;
	if (res->cpuset_mems && cg_write(dir, "cpuset.mems", res->cpuset_mems, err) < 0)
		return -1;
	return 0;
}

static int v2_update(struct cgroup *cg, const struct oci_resources *res,
		     struct kr_err *err)
{
	const char *dir = cg->path[CG_V2];
	char buf[32];

	if (set_memory(dir, res, err) < 0 || set_cpu(dir, res, err) < 0)
		return -1;
	if (res->has_pids_limit) {
		fmt_limit(buf, sizeof(buf), res->pids_limit > 0 ? res->pids_limit : -1);
		if (cg_write(dir, "pids.max", buf, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- processes ------------------------------------------------------- */

static int v2_add_pid(struct cgroup *cg, pid_t pid, struct kr_err *err)
{
	return cg_write_pid(cg->path[CG_V2], pid, err);
}

static bool events_frozen_is(const char *dir, void *arg)
{
	uint64_t v;
	bool found;

	if (cg_read_kv(dir, "cgroup.events", "frozen", &v, &found, NULL) < 0 || !found)
		return false;
	return v == *(uint64_t *)arg;
}

static int v2_freeze(struct cgroup *cg, bool frozen, struct kr_err *err)
{
	const char *dir = cg->path[CG_V2];
	uint64_t want = frozen;

	if (cg_write(dir, "cgroup.freeze", frozen ? "1" : "0", err) < 0)
		return -1;
	if (cg_poll_until(events_frozen_is, dir, &want, CG_FREEZE_TIMEOUT_MS) < 0)
		return kr_err_errno(err, ETIMEDOUT, "%s/cgroup.events: not \"frozen %d\" after %d ms",
				    dir, frozen, CG_FREEZE_TIMEOUT_MS);
	return 0;
}

static int v2_pids(struct cgroup *cg, pid_t **pids, size_t *n,
		   struct kr_err *err)
{
	return cg_read_pids(cg->path[CG_V2], pids, n, err);
}

/* "populated" counts descendants too; cgroup.procs is the fallback. */
static int v2_populated(struct cgroup *cg, bool *populated,
			struct kr_err *err)
{
	kr_cleanup_free pid_t *pids = NULL;
	size_t n;
	uint64_t v;
	bool found;

	if (cg_read_kv(cg->path[CG_V2], "cgroup.events", "populated", &v,
		       &found, err) < 0)
		return -1;
	if (found) {
		*populated = v != 0;
		return 0;
	}
	if (cg_read_pids(cg->path[CG_V2], &pids, &n, err) < 0)
		return -1;
	*populated = n > 0;
	return 0;
}

static int v2_kill_all(struct cgroup *cg, int sig, struct kr_err *err)
{
	const char *dir = cg->path[CG_V2];

	/* cgroup.kill (5.14+) kills the whole subtree atomically, forks
	 * included. */
	if (sig == SIGKILL && cg_exists(dir, "cgroup.kill"))
		return cg_write(dir, "cgroup.kill", "1", err);
	return cg_signal_procs(dir, sig, err);
}

/* ---- stats ----------------------------------------------------------- */

static int stats_cpu(const char *dir, struct cgroup_stats *st,
		     struct kr_err *err)
{
	kr_cleanup_free char *buf = NULL;
	uint64_t v;

	if (!cg_exists(dir, "cpu.stat"))
		return 0;
	if (cg_read(dir, "cpu.stat", &buf, err) < 0)
		return -1;
	if (cg_kv_u64(buf, "usage_usec", &v))
		st->cpu_usage_ns = v * 1000;
	if (cg_kv_u64(buf, "user_usec", &v))
		st->cpu_user_ns = v * 1000;
	if (cg_kv_u64(buf, "system_usec", &v))
		st->cpu_system_ns = v * 1000;
	if (cg_kv_u64(buf, "throttled_usec", &v))
		st->cpu_throttled_ns = v * 1000;
	cg_kv_u64(buf, "nr_periods", &st->cpu_nr_periods);
	cg_kv_u64(buf, "nr_throttled", &st->cpu_nr_throttled);
	return 0;
}

static int stats_memory(const char *dir, struct cgroup_stats *st,
			struct kr_err *err)
{
	kr_cleanup_free char *buf = NULL;
	bool found;

	if (cg_read_u64_opt(dir, "memory.current", &st->memory_usage, err) < 0 ||
	    cg_read_u64_opt(dir, "memory.peak", &st->memory_max_usage, err) < 0 ||
	    cg_read_u64_opt(dir, "memory.max", &st->memory_limit, err) < 0 ||
	    cg_read_u64_opt(dir, "memory.swap.current", &st->memory_swap, err) < 0)
		return -1;
	if (cg_read_kv(dir, "memory.events", "oom_kill", &st->memory_oom_kills,
		       &found, err) < 0)
		return -1;
	if (!cg_exists(dir, "memory.stat"))
		return 0;
	if (cg_read(dir, "memory.stat", &buf, err) < 0)
		return -1;
	cg_kv_u64(buf, "anon", &st->memory_rss);
	cg_kv_u64(buf, "file", &st->memory_cache);
	return 0;
}

static int v2_stats(struct cgroup *cg, struct cgroup_stats *st,
		    struct kr_err *err)
{
	const char *dir = cg->path[CG_V2];

	if (stats_cpu(dir, st, err) < 0 || stats_memory(dir, st, err) < 0)
		return -1;
	if (cg_read_u64_opt(dir, "pids.current", &st->pids_current, err) < 0 ||
	    cg_read_u64_opt(dir, "pids.max", &st->pids_limit, err) < 0)
		return -1;
	if (st->pids_limit == UINT64_MAX)
		st->pids_limit = 0;
	return 0;
}

/* ---- OOM events ------------------------------------------------------ */

static int read_oom_kills(const char *dir, uint64_t *v, struct kr_err *err)
{
	bool found;

	*v = 0;
	return cg_read_kv(dir, "memory.events", "oom_kill", v, &found, err);
}

/* The kernel signals every change of memory.events as IN_MODIFY. */
static int v2_oom_open(struct cgroup *cg, struct kr_err *err)
{
	kr_cleanup_close int fd = -1;
	kr_cleanup_free char *path = cg_join(cg->path[CG_V2], "memory.events");

	if (!cg_exists(cg->path[CG_V2], "memory.events")) {
		kr_debug("cgroup: no %s: no OOM events", path);
		return 0;
	}
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return kr_err_sys(err, "inotify_init1");
	if (inotify_add_watch(fd, path, IN_MODIFY) < 0)
		return kr_err_sys(err, "inotify_add_watch %s", path);
	if (read_oom_kills(cg->path[CG_V2], &cg->oom_seen, err) < 0)
		return -1;
	cg->oom_fd = kr_steal_fd(fd);
	return 0;
}

static int v2_oom_check(struct cgroup *cg, uint64_t *new_kills,
			struct kr_err *err)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t cur;

	/* Drain (bounded): several writes may have queued several events. */
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(cg->oom_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return kr_err_sys(err, "read inotify fd");
		if (n == 0)
			break;
	}
	if (read_oom_kills(cg->path[CG_V2], &cur, err) < 0)
		return -1;
	*new_kills = cur > cg->oom_seen ? cur - cg->oom_seen : 0;
	cg->oom_seen = cur;
	return 0;
}

const struct cgroup_ops cg_v2_ops = {
	.name = "v2",
	.detect = v2_detect,
	.setup = v2_setup,
	.create = v2_create,
	.update = v2_update,
	.add_pid = v2_add_pid,
	.freeze = v2_freeze,
	.pids = v2_pids,
	.populated = v2_populated,
	.kill_all = v2_kill_all,
	.stats = v2_stats,
	.oom_open = v2_oom_open,
	.oom_check = v2_oom_check,
};
