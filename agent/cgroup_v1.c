/* cgroup v1 backend (host tests, older guests, hybrid hosts).
 *
 * Each controller has its own hierarchy, found in /proc/self/mountinfo under
 * the mount root.  Container cgroups go under the agent's own cgroup in each
 * hierarchy (from /proc/self/cgroup), so an agent started by a test stays
 * inside the test's cgroup: <mount>/<own path>/<prefix>/<id>.  Controllers
 * mounted together ("cpu,cpuacct") share one directory: the later slot is
 * marked shared and skipped for mkdir, rmdir and cgroup.procs. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cgroup_internal.h"
#include "kr/log.h"
#include "kr/util.h"

#define MOUNTINFO_FIELDS_MAX 64

static const char *const ctrl_names[CG_NR] = {
	[CG_FREEZER] = "freezer", [CG_MEMORY] = "memory", [CG_PIDS] = "pids",
	[CG_CPU] = "cpu", [CG_CPUACCT] = "cpuacct", [CG_CPUSET] = "cpuset",
};

/* Without these the container's limits, pause and OOM events cannot work. */
static const bool ctrl_required[CG_NR] = {
	[CG_FREEZER] = true, [CG_MEMORY] = true, [CG_PIDS] = true,
};

/* ---- mount table ----------------------------------------------------- */

static bool has_token(const char *list, const char *tok)
{
	size_t tl = strlen(tok);

	for (const char *p = list; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (!strncmp(p, tok, tl) && (p[tl] == ',' || p[tl] == '\0'))
			return true;
	}
	return false;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " ", &save); t && n < max;
	     t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	return n;
}

/* "id parent maj:min root mountpoint opts [optional...] - fstype src super" */
static bool match_mount(char *line, const char *mount_root, size_t rlen,
			const char *ctrl, char **mnt, char **mnt_root)
{
	char *f[MOUNTINFO_FIELDS_MAX];
	size_t n = split_fields(line, f, MOUNTINFO_FIELDS_MAX), k;

	for (k = 6; k < n && strcmp(f[k], "-"); k++)
		;
	if (k + 3 >= n || strcmp(f[k + 1], "cgroup") || !has_token(f[k + 3], ctrl))
		return false;
	unescape_octal(f[3]);
	unescape_octal(f[4]);
	if (strncmp(f[4], mount_root, rlen) || f[4][rlen] != '/')
		return false;
	*mnt = kr_xstrdup(f[4]);
	*mnt_root = kr_xstrdup(f[3]);
	return true;
}

int cg_v1_find_mount(const char *mountinfo, const char *mount_root,
		     const char *ctrl, char **mnt, char **mnt_root)
{
	kr_cleanup_free char *copy = kr_xstrdup(mountinfo);
	size_t rlen = strlen(mount_root);
	char *save = NULL;

	while (rlen > 1 && mount_root[rlen - 1] == '/')
		rlen--;
	for (char *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (match_mount(line, mount_root, rlen, ctrl, mnt, mnt_root))
			return 0;
	}
	return -1;
}

/* Lines are "hierarchy-id:controller,list:/path". */
int cg_v1_own_path(const char *proc_cgroup, const char *ctrl, char **path)
{
	kr_cleanup_free char *copy = kr_xstrdup(proc_cgroup);
	char *save = NULL;

	for (char *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2;

		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c2 = '\0';
		if (has_token(c1 + 1, ctrl) && c2[1] == '/') {
			*path = kr_xstrdup(c2 + 1);
			return 0;
		}
	}
	return -1;
}

char *cg_v1_parent_dir(const char *mnt, const char *mnt_root, const char *own)
{
	size_t rl = strlen(mnt_root);
	const char *rel = own;
	char *s;

	/* The mount shows the hierarchy from mnt_root down; /proc/self/cgroup
	 * paths are from the hierarchy's (or namespace's) root. */
	if (strcmp(mnt_root, "/") && !strncmp(own, mnt_root, rl) &&
	    (own[rl] == '/' || own[rl] == '\0'))
		rel = own + rl;
	if (rel[0] == '\0' || !strcmp(rel, "/"))
		return kr_xstrdup(mnt);
	if (asprintf(&s, "%s%s", mnt, rel) < 0)
		abort();
	return s;
}

static int detect_one(struct cgroup_manager *m, int c, const char *root,
		      const char *mountinfo, const char *self)
{
	kr_cleanup_free char *mnt = NULL;
	kr_cleanup_free char *mnt_root = NULL;
	kr_cleanup_free char *own = NULL;

	if (cg_v1_find_mount(mountinfo, root, ctrl_names[c], &mnt, &mnt_root) < 0)
		return -1;
	if (cg_v1_own_path(self, ctrl_names[c], &own) < 0)
		own = kr_xstrdup("/");
	m->hier[c].parent = cg_v1_parent_dir(mnt, mnt_root, own);
	for (int j = 0; j < c; j++) {
		if (m->hier[j].parent && !strcmp(m->hier[j].parent, m->hier[c].parent))
			m->hier[c].shared = true;
	}
	return 0;
}

static int v1_detect(struct cgroup_manager *m, const char *root,
		     struct kr_err *err)
{
	kr_cleanup_free char *mountinfo = NULL;
	kr_cleanup_free char *self = NULL;

	if (kr_read_file("/proc/self/mountinfo", CG_FILE_MAX, &mountinfo, NULL, err) < 0 ||
	    kr_read_file("/proc/self/cgroup", CG_FILE_MAX, &self, NULL, err) < 0)
		return -1;
	for (int c = 0; c < CG_NR; c++) {
		if (detect_one(m, c, root, mountinfo, self) == 0)
			continue;
		if (ctrl_required[c])
			return kr_err_errno(err, ENOENT, "the %s controller (cgroup v1) is not mounted under %s",
					    ctrl_names[c], root);
		kr_debug("cgroup: v1 controller %s not mounted under %s: not used",
			 ctrl_names[c], root);
	}
	return 0;
}

/* ---- directories ----------------------------------------------------- */

/* A new v1 cpuset cgroup starts with empty cpus and mems, and the kernel
 * refuses tasks until they are set: copy the parent's.  A no-op outside
 * the cpuset hierarchy (no such files). */
static int cpuset_inherit(const char *dir, struct kr_err *err)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	kr_cleanup_free char *parent = kr_xstrdup(dir);
	char *slash = strrchr(parent, '/');

	if (!slash)
		return 0;
	*slash = '\0';
	for (size_t i = 0; i < KR_ARRAY_SIZE(files); i++) {
		kr_cleanup_free char *cur = NULL;
		kr_cleanup_free char *up = NULL;

		if (!cg_exists(dir, files[i]))
			return 0;
		if (cg_read(dir, files[i], &cur, err) < 0)
			return -1;
		cur[strcspn(cur, "\n")] = '\0';
		if (cur[0])
			continue;
		if (cg_read(parent, files[i], &up, err) < 0)
			return -1;
		up[strcspn(up, "\n")] = '\0';
		if (up[0] && cg_write(dir, files[i], up, err) < 0)
			return -1;
	}
	return 0;
}

static int v1_setup(struct cgroup_manager *m, struct kr_err *err)
{
	for (int c = 0; c < CG_NR; c++) {
		struct cg_hier *h = &m->hier[c];

		if (!h->parent)
			continue;
		if (h->shared) {
			h->base = cg_join(h->parent, m->prefix);
			continue;
		}
		if (cg_prefix_create(m, h, cpuset_inherit, err) < 0)
			return -1;
	}
	return 0;
}

static int v1_create(struct cgroup *cg, struct kr_err *err)
{
	for (int c = 0; c < CG_NR; c++) {
		struct cg_hier *h = &cg->m->hier[c];

		if (!h->base)
			continue;
		cg->path[c] = cg_join(h->base, cg->id);
		if (h->shared)
			continue;
		if (cg_mkdir(cg->path[c], &cg->created[c], err) < 0 ||
		    cpuset_inherit(cg->path[c], err) < 0)
			return -1;
	}
	return 0;
}

/* ---- resources ------------------------------------------------------- */

static const char *need(struct cgroup *cg, int c, const char *file,
			struct kr_err *err)
{
	if (!cg->path[c])
		kr_err_errno(err, ENOENT, "%s: the %s controller (cgroup v1) is not mounted",
			     file, ctrl_names[c]);
	return cg->path[c];
}

static int write_i64(const char *dir, const char *file, int64_t v,
		     struct kr_err *err)
{
	return cg_writef(err, dir, file, "%" PRId64, v < 0 ? (int64_t)-1 : v);
}

/* memory and memory+swap must be written in the order that keeps
 * memsw >= memory at every step (runc's rule). */
static int set_memory(struct cgroup *cg, const struct oci_resources *res,
		      struct kr_err *err)
{
	const char *dir = cg->path[CG_MEMORY];
	int64_t mem = res->has_memory_limit ? res->memory_limit : 0;
	int64_t swap = res->has_memory_swap ? res->memory_swap : 0;
	bool memsw = cg_exists(dir, "memory.memsw.limit_in_bytes");
	bool swap_first = false;

	if (mem == -1 && swap == 0 && memsw)
		swap = -1;
	if (swap != 0 && !memsw) {
		kr_debug("cgroup: %s: no swap accounting, memory+swap limit ignored", dir);
		swap = 0;
	}
	if (mem != 0 && swap != 0) {
		uint64_t cur;

		if (cg_read_u64(dir, "memory.limit_in_bytes", &cur, err) < 0)
			return -1;
		swap_first = swap < 0 || cur < (uint64_t)swap;
	}
	if (swap_first && write_i64(dir, "memory.memsw.limit_in_bytes", swap, err) < 0)
		return -1;
	if (mem != 0 && write_i64(dir, "memory.limit_in_bytes", mem, err) < 0)
		return -1;
	if (!swap_first && swap != 0 &&
	    write_i64(dir, "memory.memsw.limit_in_bytes", swap, err) < 0)
		return -1;
	if (res->has_memory_reservation && res->memory_reservation != 0 &&
	    write_i64(dir, "memory.soft_limit_in_bytes", res->memory_reservation, err) < 0)
		return -1;
	return 0;
}

/* A smaller period can be refused (EINVAL) while the old quota would
 * exceed the parent's bandwidth: then set the quota first and retry. */
static int set_cfs(const char *dir, const struct oci_resources *res,
		   struct kr_err *err)
{
	bool quota = res->has_cpu_quota && res->cpu_quota != 0;
	bool period = res->has_cpu_period && res->cpu_period != 0;
	struct kr_err first;

	if (period) {
		if (cg_writef(&first, dir, "cpu.cfs_period_us", "%" PRIu64,
			      res->cpu_period) == 0)
			period = false;
		else if (first.errnum != EINVAL || !quota) {
			if (err)
				*err = first;
			return -1;
		}
	}
	if (quota && write_i64(dir, "cpu.cfs_quota_us", res->cpu_quota, err) < 0)
		return -1;
	if (period && cg_writef(err, dir, "cpu.cfs_period_us", "%" PRIu64,
				res->cpu_period) < 0)
		return -1;
	return 0;
}

static int set_cpu(struct cgroup *cg, const struct oci_resources *res,
		   struct kr_err *err)
{
	bool shares = res->has_cpu_shares && res->cpu_shares != 0;
	bool cfs = (res->has_cpu_quota && res->cpu_quota != 0) ||
		   (res->has_cpu_period && res->cpu_period != 0);
	const char *dir;

	if (shares || cfs) {
		if (!(dir = need(cg, CG_CPU, shares ? "cpu.shares" : "cpu.cfs_quota_us", err)))
			return -1;
		if (shares && cg_writef(err, dir, "cpu.shares", "%" PRIu64,
					res->cpu_shares) < 0)
			return -1;
		if (set_cfs(dir, res, err) < 0)
			return -1;
	}
	if (res->cpuset_cpus || res->cpuset_mems) {
		if (!(dir = need(cg, CG_CPUSET, res->cpuset_cpus ? "cpuset.cpus" : "cpuset.mems", err)))
			return -1;
		if (res->cpuset_cpus && cg_write(dir, "cpuset.cpus", res->cpuset_cpus, err) < 0)
			return -1;
		if (res->cpuset_mems && cg_write(dir, "cpuset.mems", res->cpuset_mems, err) < 0)
			return -1;
	}
	return 0;
}

static int v1_update(struct cgroup *cg, const struct oci_resources *res,
		     struct kr_err *err)
{
	if (set_memory(cg, res, err) < 0 || set_cpu(cg, res, err) < 0)
		return -1;
	if (!res->has_pids_limit)
		return 0;
	if (res->pids_limit <= 0)
		return cg_write(cg->path[CG_PIDS], "pids.max", "max", err);
	return cg_writef(err, cg->path[CG_PIDS], "pids.max", "%" PRId64,
			 res->pids_limit);
}

/* ---- processes ------------------------------------------------------- */

static int v1_add_pid(struct cgroup *cg, pid_t pid, struct kr_err *err)
{
	for (int c = 0; c < CG_NR; c++) {
		if (cg->path[c] && !cg->m->hier[c].shared &&
		    cg_write_pid(cg->path[c], pid, err) < 0)
			return -1;
	}
	return 0;
}

static bool state_is(const char *dir, void *arg)
{
	kr_cleanup_free char *buf = NULL;
	const char *want = arg;
	size_t wl = strlen(want);

	if (cg_read(dir, "freezer.state", &buf, NULL) < 0)
		return false;
	return !strncmp(buf, want, wl) && (buf[wl] == '\n' || buf[wl] == '\0');
}

static int v1_freeze(struct cgroup *cg, bool frozen, struct kr_err *err)
{
	const char *dir = cg->path[CG_FREEZER];
	const char *want = frozen ? "FROZEN" : "THAWED";

	if (cg_write(dir, "freezer.state", want, err) < 0)
		return -1;
	/* FREEZING until every task has stopped; a task in uninterruptible
	 * sleep can hold that up, hence the bound. */
	if (cg_poll_until(state_is, dir, (void *)want, CG_FREEZE_TIMEOUT_MS) == 0)
		return 0;
	if (frozen)
		cg_write(dir, "freezer.state", "THAWED", NULL);
	return kr_err_errno(err, ETIMEDOUT, "%s/freezer.state: not %s after %d ms",
			    dir, want, CG_FREEZE_TIMEOUT_MS);
}

/* The freezer is the first hierarchy a process enters: its list is the
 * most complete. */
static int v1_pids(struct cgroup *cg, pid_t **pids, size_t *n,
		   struct kr_err *err)
{
	return cg_read_pids(cg->path[CG_FREEZER], pids, n, err);
}

static int v1_populated(struct cgroup *cg, bool *populated,
			struct kr_err *err)
{
	*populated = false;
	for (int c = 0; c < CG_NR && !*populated; c++) {
		kr_cleanup_free pid_t *pids = NULL;
		size_t n;

		if (!cg->path[c] || cg->m->hier[c].shared)
			continue;
		if (cg_read_pids(cg->path[c], &pids, &n, err) < 0)
			return -1;
		*populated = n > 0;
	}
	return 0;
}

/* Freeze around the signalling so that no fork slips between listing and
 * kill (v1 has no cgroup.kill).  A frozen v1 task only acts on a signal once
 * thawed: thaw after SIGKILL always, after other signals only if the
 * cgroup was running before (a paused container stays paused). */
static int v1_kill_all(struct cgroup *cg, int sig, struct kr_err *err)
{
	const char *dir = cg->path[CG_FREEZER];
	bool was_frozen = state_is(dir, "FROZEN");
	int rc;

	if (!was_frozen && v1_freeze(cg, true, NULL) < 0)
		kr_debug("cgroup: %s: cannot freeze before signalling", dir);
	rc = cg_signal_procs(dir, sig, err);
	if ((sig == SIGKILL || !was_frozen) &&
	    v1_freeze(cg, false, rc < 0 ? NULL : err) < 0)
		rc = -1;
	return rc;
}

/* ---- stats ----------------------------------------------------------- */

static int stats_cpu(struct cgroup *cg, struct cgroup_stats *st,
		     struct kr_err *err)
{
	kr_cleanup_free char *acct = NULL;
	kr_cleanup_free char *cpu = NULL;
	const char *dir = cg->path[CG_CPUACCT];
	uint64_t tick_ns = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK), v;

	if (dir) {
		if (cg_read_u64(dir, "cpuacct.usage", &st->cpu_usage_ns, err) < 0 ||
		    cg_read(dir, "cpuacct.stat", &acct, err) < 0)
			return -1;
		/* cpuacct.stat counts USER_HZ ticks. */
		if (cg_kv_u64(acct, "user", &v))
			st->cpu_user_ns = v * tick_ns;
		if (cg_kv_u64(acct, "system", &v))
			st->cpu_system_ns = v * tick_ns;
	}
	dir = cg->path[CG_CPU];
	if (!dir || !cg_exists(dir, "cpu.stat"))
		return 0;
	if (cg_read(dir, "cpu.stat", &cpu, err) < 0)
		return -1;
	cg_kv_u64(cpu, "nr_periods", &st->cpu_nr_periods);
	cg_kv_u64(cpu, "nr_throttled", &st->cpu_nr_throttled);
	cg_kv_u64(cpu, "throttled_time", &st->cpu_throttled_ns);
	return 0;
}

static int stats_memory(struct cgroup *cg, struct cgroup_stats *st,
			struct kr_err *err)
{
	kr_cleanup_free char *mstat = NULL;
	const char *dir = cg->path[CG_MEMORY];
	bool found;

	if (cg_read_u64(dir, "memory.usage_in_bytes", &st->memory_usage, err) < 0 ||
	    cg_read_u64_opt(dir, "memory.max_usage_in_bytes", &st->memory_max_usage, err) < 0 ||
	    cg_read_u64(dir, "memory.limit_in_bytes", &st->memory_limit, err) < 0 ||
	    cg_read_kv(dir, "memory.oom_control", "oom_kill", &st->memory_oom_kills,
		       &found, err) < 0 ||
	    cg_read(dir, "memory.stat", &mstat, err) < 0)
		return -1;
	/* "Unlimited" reads as LONG_MAX rounded down to a page. */
	if (st->memory_limit >= (1ull << 62))
		st->memory_limit = UINT64_MAX;
	cg_kv_u64(mstat, "cache", &st->memory_cache);
	cg_kv_u64(mstat, "rss", &st->memory_rss);
	cg_kv_u64(mstat, "swap", &st->memory_swap);
	return 0;
}

static int v1_stats(struct cgroup *cg, struct cgroup_stats *st,
		    struct kr_err *err)
{
	const char *dir = cg->path[CG_PIDS];

	if (stats_cpu(cg, st, err) < 0 || stats_memory(cg, st, err) < 0)
		return -1;
	if (cg_read_u64(dir, "pids.current", &st->pids_current, err) < 0 ||
	    cg_read_u64(dir, "pids.max", &st->pids_limit, err) < 0)
		return -1;
	if (st->pids_limit == UINT64_MAX)
		st->pids_limit = 0;
	return 0;
}

/* ---- OOM events ------------------------------------------------------ */

static int read_oom_kills(const char *dir, uint64_t *v, bool *found,
			  struct kr_err *err)
{
	*v = 0;
	return cg_read_kv(dir, "memory.oom_control", "oom_kill", v, found, err);
}

/* memcg v1 notification API: writing "<eventfd> <fd of memory.oom_control>"
 * to cgroup.event_control makes the kernel signal the eventfd on each OOM
 * (and once when the cgroup is removed).  The control file's fd is only
 * needed for the registration. */
static int v1_oom_open(struct cgroup *cg, struct kr_err *err)
{
	const char *dir = cg->path[CG_MEMORY];
	kr_cleanup_free char *ctl = cg_join(dir, "memory.oom_control");
	kr_cleanup_close int efd = -1;
	kr_cleanup_close int cfd = -1;
	bool found;

	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0)
		return kr_err_sys(err, "eventfd");
	cfd = open(ctl, O_RDONLY | O_CLOEXEC);
	if (cfd < 0)
		return kr_err_sys(err, "open %s", ctl);
	if (cg_writef(err, dir, "cgroup.event_control", "%d %d", efd, cfd) < 0)
		return -1;
	if (read_oom_kills(dir, &cg->oom_seen, &found, err) < 0)
		return -1;
	cg->oom_fd = kr_steal_fd(efd);
	return 0;
}

static int v1_oom_check(struct cgroup *cg, uint64_t *new_kills,
			struct kr_err *err)
{
	uint64_t count = 0, cur;
	ssize_t n;
	bool found;

	do {
		n = read(cg->oom_fd, &count, sizeof(count));
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN)
		return kr_err_sys(err, "read OOM eventfd");
	if (n != sizeof(count))
		count = 0;
	if (read_oom_kills(cg->path[CG_MEMORY], &cur, &found, err) < 0)
		return -1;
	if (!found) {
		/* Kernels before 4.13 have no oom_kill counter: count the
		 * notifications instead. */
		*new_kills = count;
		return 0;
	}
	*new_kills = cur > cg->oom_seen ? cur - cg->oom_seen : 0;
	cg->oom_seen = cur;
	return 0;
}

const struct cgroup_ops cg_v1_ops = {
	.name = "v1",
	.detect = v1_detect,
	.setup = v1_setup,
	.create = v1_create,
	.update = v1_update,
	.add_pid = v1_add_pid,
	.freeze = v1_freeze,
	.pids = v1_pids,
	.populated = v1_populated,
	.kill_all = v1_kill_all,
	.stats = v1_stats,
	.oom_open = v1_oom_open,
	.oom_check = v1_oom_check,
};
