/* Shared between cgroup.c (manager, public API) and the two version
 * backends, cgroup_v1.c and cgroup_v2.c.  Not for other modules; the unit
 * test includes it to drive the v2 backend against a fake directory tree and
 * to test the v1 mount-table parsing with synthetic input. */
#ifndef KR_AGENT_CGROUP_INTERNAL_H
#define KR_AGENT_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "kr/error.h"

/* v1 controllers we use, in the order processes are moved in: freezer
 * first, so that a process half-moved by a failed cgroup_add_pid is still
 * found (and killed) through the freezer.  v2 has a single hierarchy and
 * keeps it in slot CG_V2 (= 0) of the per-hierarchy arrays. */
enum cg_ctrl {
	CG_FREEZER,
	CG_MEMORY,
	CG_PIDS,
	CG_CPU,
	CG_CPUACCT,
	CG_CPUSET,
	CG_NR
};
#define CG_V2 0

#define CG_MAX_PIDS 65536		/* pid lists longer than this: refused */
#define CG_FILE_MAX (1u << 20)		/* largest control file we read */
#define CG_FREEZE_TIMEOUT_MS 2000
#define CG_DESTROY_TIMEOUT_MS 5000
#define CG_ID_MAX 255
#define CG_PREFIX_MAX 1024

/* One hierarchy: where the prefix starts and where containers go. */
struct cg_hier {
	char *parent;		/* v2: mount root; v1: mount + agent's own cgroup */
	char *base;		/* parent/prefix */
	unsigned created;	/* deepest prefix levels made by us (removed on free) */
	bool shared;		/* same hierarchy as an earlier slot: skip dir ops */
};

struct cgroup_ops;

struct cgroup_manager {
	const struct cgroup_ops *ops;
	char *prefix;
	struct cg_hier hier[CG_NR];	/* slot unused when base == NULL */
};

struct cgroup {
	struct cgroup_manager *m;
	char *id;
	char *path[CG_NR];	/* container dir per hierarchy, NULL if unused */
	bool created[CG_NR];	/* made by cgroup_create (vs. adopted) */
	int oom_fd;		/* inotify (v2) or eventfd (v1); -1 if none */
	uint64_t oom_seen;	/* oom_kill counter at the last check */
};

/* A version backend.  Every fallible op returns < 0 and fills err. */
struct cgroup_ops {
	const char *name;
	/* Find the hierarchies under mount_root (fills m->hier[].parent). */
	int (*detect)(struct cgroup_manager *m, const char *mount_root,
		      struct kr_err *err);
	/* Create the prefix directories (fills base and created). */
	int (*setup)(struct cgroup_manager *m, struct kr_err *err);
	/* mkdir the container directories (fills cg->path, cg->created). */
	int (*create)(struct cgroup *cg, struct kr_err *err);
	int (*update)(struct cgroup *cg, const struct oci_resources *res,
		      struct kr_err *err);
	int (*add_pid)(struct cgroup *cg, pid_t pid, struct kr_err *err);
	int (*freeze)(struct cgroup *cg, bool frozen, struct kr_err *err);
	int (*pids)(struct cgroup *cg, pid_t **pids, size_t *n,
		    struct kr_err *err);
	int (*populated)(struct cgroup *cg, bool *populated,
			 struct kr_err *err);
	int (*kill_all)(struct cgroup *cg, int sig, struct kr_err *err);
	int (*stats)(struct cgroup *cg, struct cgroup_stats *st,
		     struct kr_err *err);
	/* Open cg->oom_fd and set cg->oom_seen. */
	int (*oom_open)(struct cgroup *cg, struct kr_err *err);
	int (*oom_check)(struct cgroup *cg, uint64_t *new_kills,
			 struct kr_err *err);
};

extern const struct cgroup_ops cg_v1_ops;
extern const struct cgroup_ops cg_v2_ops;

/* Internal constructor: a manager for `ops` at `root` without the statfs
 * check (tests point the v2 backend at a fake tree with it). */
struct cgroup_manager *cg_manager_new_ops(const struct cgroup_ops *ops,
					  const char *root, const char *prefix,
					  struct kr_err *err);

/* ---- helpers shared by the backends (cgroup.c) ---- */

/* "<dir>/<file>" into a malloc'd string (aborts on OOM, like kr_xstrdup). */
char *cg_join(const char *dir, const char *file);
bool cg_exists(const char *dir, const char *file);
int cg_write(const char *dir, const char *file, const char *val,
	     struct kr_err *err);
int cg_writef(struct kr_err *err, const char *dir, const char *file,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int cg_read(const char *dir, const char *file, char **out,
	    struct kr_err *err);
/* A single number; "max" reads as UINT64_MAX. */
int cg_read_u64(const char *dir, const char *file, uint64_t *val,
		struct kr_err *err);
/* Same, but a missing file leaves *val alone and is not an error. */
int cg_read_u64_opt(const char *dir, const char *file, uint64_t *val,
		    struct kr_err *err);
/* "key value" lines: true and *val set if key is found. */
bool cg_kv_u64(const char *text, const char *key, uint64_t *val);
/* Read a flat-keyed file and fetch one key; missing file -> not found. */
int cg_read_kv(const char *dir, const char *file, const char *key,
	       uint64_t *val, bool *found, struct kr_err *err);

/* Parse a cgroup.procs file (at most CG_MAX_PIDS entries). */
int cg_read_pids(const char *dir, pid_t **pids, size_t *n,
		 struct kr_err *err);
int cg_write_pid(const char *dir, pid_t pid, struct kr_err *err);
/* kill(2) every pid in dir/cgroup.procs once; ESRCH is fine. */
int cg_signal_procs(const char *dir, int sig, struct kr_err *err);

/* mkdir one directory; *created says whether it was new. */
int cg_mkdir(const char *path, bool *created, struct kr_err *err);
/* rmdir with EBUSY retries, removing child cgroups first (bounded depth);
 * a missing directory is fine. */
int cg_rmdir(const char *path, struct kr_err *err);
/* Create the prefix levels under h->parent, calling level(dir) on each
 * (NULL for none); sets h->base and h->created. */
int cg_prefix_create(struct cgroup_manager *m, struct cg_hier *h,
		     int (*level)(const char *dir, struct kr_err *err),
		     struct kr_err *err);
/* Remove the levels cg_prefix_create made, deepest first. */
void cg_prefix_remove(struct cgroup_manager *m, struct cg_hier *h);
/* Wait (bounded, polling) until fn(dir) is true. */
int cg_poll_until(bool (*done)(const char *dir, void *arg), const char *dir,
		  void *arg, unsigned timeout_ms);
void cg_sleep_ms(unsigned ms);

/* ---- v1 mount-table parsing, exposed for the unit test ---- */

/* From /proc/self/mountinfo text: the mount point under mount_root of the
 * v1 hierarchy carrying `ctrl`, and the hierarchy path mounted there. */
int cg_v1_find_mount(const char *mountinfo, const char *mount_root,
		     const char *ctrl, char **mnt, char **mnt_root);
/* From /proc/self/cgroup text: the process's path in the hierarchy
 * carrying `ctrl`.  Returns -1 if not listed. */
int cg_v1_own_path(const char *proc_cgroup, const char *ctrl, char **path);
/* Directory of the process's own cgroup under a mount: the own path with
 * the mount's root stripped (cgroup namespaces and bind mounts). */
char *cg_v1_parent_dir(const char *mnt, const char *mnt_root,
		       const char *own);

/* ---- v2 value conversions (runc's), exposed for the unit test ---- */

uint64_t cg_v2_shares_to_weight(uint64_t shares);
/* OCI memory+swap -> memory.swap.max; *set false when nothing to write,
 * *val -1 meaning "max". */
int cg_v2_swap_value(const struct oci_resources *res, bool *set,
		     int64_t *val, struct kr_err *err);

#endif
