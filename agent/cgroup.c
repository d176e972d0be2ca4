/* Cgroup manager: detection, the public API (dispatching to the v1 or v2
 * backend through a const ops table) and the file helpers both backends
 * share.  See cgroup.h for the contract. */
#include <dirent.h>
#include <errno.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_internal.h"
#include "kr/log.h"
#include "kr/util.h"

#define RMDIR_DEPTH_MAX 32	/* nested child cgroups removed on destroy */
#define RMDIR_TRIES 6		/* EBUSY: the last task is still leaving */
#define KILL_ROUNDS (CG_DESTROY_TIMEOUT_MS / 10)

/* ---- file helpers ---------------------------------------------------- */

char *cg_join(const char *dir, const char *file)
{
	char *s;

	if (asprintf(&s, "%s/%s", dir, file) < 0)
		abort();
	return s;
}

bool cg_exists(const char *dir, const char *file)
{
	kr_cleanup_free char *p = cg_join(dir, file);

	return access(p, F_OK) == 0;
}

int cg_write(const char *dir, const char *file, const char *val,
	     struct kr_err *err)
{
	kr_cleanup_free char *p = cg_join(dir, file);

	kr_debug("cgroup: write %s to %s", val, p);
	return kr_write_file(p, val, err);
}

int cg_writef(struct kr_err *err, const char *dir, const char *file,
	      const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return kr_err_errno(err, E2BIG, "write %s/%s", dir, file);
	return cg_write(dir, file, buf, err);
}

int cg_read(const char *dir, const char *file, char **out,
	    struct kr_err *err)
{
	kr_cleanup_free char *p = cg_join(dir, file);

	return kr_read_file(p, CG_FILE_MAX, out, NULL, err);
}

static int parse_u64(const char *s, uint64_t *val)
{
	char *end;
	unsigned long long v;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!strncmp(s, "max", 3)) {
		end = (char *)s + 3;
		v = UINT64_MAX;
	} else {
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno)
			return -1;
	}
	if (*end != '\0' && *end != '\n' && *end != ' ')
		return -1;
	*val = v;
	return 0;
}

int cg_read_u64(const char *dir, const char *file, uint64_t *val,
		struct kr_err *err)
{
	kr_cleanup_free char *buf = NULL;

	if (cg_read(dir, file, &buf, err) < 0)
		return -1;
	if (parse_u64(buf, val) < 0)
		return kr_err_errno(err, EINVAL, "parse %s/%s: \"%.32s\"",
				    dir, file, buf);
	return 0;
}

int cg_read_u64_opt(const char *dir, const char *file, uint64_t *val,
		    struct kr_err *err)
{
	if (!cg_exists(dir, file))
		return 0;
	return cg_read_u64(dir, file, val, err);
}

bool cg_kv_u64(const char *text, const char *key, uint64_t *val)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (line && *line) {
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			return parse_u64(line + klen + 1, val) == 0;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return false;
}

int cg_read_kv(const char *dir, const char *file, const char *key,
	       uint64_t *val, bool *found, struct kr_err *err)
{
	kr_cleanup_free char *buf = NULL;

	*found = false;
	if (!cg_exists(dir, file))
		return 0;
	if (cg_read(dir, file, &buf, err) < 0)
		return -1;
	*found = cg_kv_u64(buf, key, val);
	return 0;
}

/* ---- processes ------------------------------------------------------- */

int cg_read_pids(const char *dir, pid_t **pids, size_t *n,
		 struct kr_err *err)
{
	kr_cleanup_free char *buf = NULL;
	kr_cleanup_free pid_t *out = NULL;
	size_t count = 0, cap = 0;
	char *line, *save = NULL;

	if (cg_read(dir, "cgroup.procs", &buf, err) < 0)
		return -1;
	for (char *c = buf; *c; c++)
		cap += *c == '\n';
	if (cap > CG_MAX_PIDS)
		return kr_err_errno(err, E2BIG, "%s/cgroup.procs: more than %d processes",
				    dir, CG_MAX_PIDS);
	out = kr_xcalloc(cap + 1, sizeof(*out));
	for (line = strtok_r(buf, "\n", &save); line && count <= cap;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end;
		long v = strtol(line, &end, 10);

		if (*end || v <= 0 || v > INT32_MAX)
			return kr_err_errno(err, EINVAL, "%s/cgroup.procs: bad pid \"%.16s\"",
					    dir, line);
		out[count++] = (pid_t)v;
	}
	*pids = kr_steal_ptr(out);
	*n = count;
	return 0;
}

int cg_write_pid(const char *dir, pid_t pid, struct kr_err *err)
{
	return cg_writef(err, dir, "cgroup.procs", "%d", (int)pid);
}

int cg_signal_procs(const char *dir, int sig, struct kr_err *err)
{
	kr_cleanup_free pid_t *pids = NULL;
	size_t n = 0;
	int rc = 0;

	if (cg_read_pids(dir, &pids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (kill(pids[i], sig) < 0 && errno != ESRCH && rc == 0)
			rc = kr_err_sys(err, "kill %d (in %s)", (int)pids[i], dir);
	}
	return rc;
}

/* ---- directories ----------------------------------------------------- */

int cg_mkdir(const char *path, bool *created, struct kr_err *err)
{
	*created = false;
	if (mkdir(path, 0755) == 0) {
		*created = true;
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	return kr_err_sys(err, "mkdir %s", path);
}

void cg_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int rmdir_retry(const char *path, struct kr_err *err)
{
	unsigned delay = 10;

	for (int i = 0; i < RMDIR_TRIES; i++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		cg_sleep_ms(delay);	/* exiting tasks leave asynchronously */
		delay *= 2;
	}
	return kr_err_sys(err, "rmdir %s", path);
}

/* Child cgroups (a container with its own cgroup namespace may make them)
 * block rmdir: remove them first.  Only directories: cgroupfs control files
 * cannot be unlinked and go away with their directory. */
static int rmdir_tree(const char *path, int depth, struct kr_err *err)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > RMDIR_DEPTH_MAX)
		return kr_err_errno(err, ELOOP, "rmdir %s: nested too deep", path);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : kr_err_sys(err, "open %s", path);
	while (rc == 0 && (de = readdir(d))) {
		kr_cleanup_free char *sub = NULL;

		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") ||
		    !strcmp(de->d_name, ".."))
			continue;
		sub = cg_join(path, de->d_name);
		rc = rmdir_tree(sub, depth + 1, err);
	}
	closedir(d);
	if (rc < 0)
		return rc;
	return rmdir_retry(path, err);
}

int cg_rmdir(const char *path, struct kr_err *err)
{
	return rmdir_tree(path, 0, err);
}

static unsigned prefix_levels(const char *prefix)
{
	unsigned n = 1;

	for (const char *c = prefix; *c; c++)
		n += *c == '/';
	return n;
}

int cg_prefix_create(struct cgroup_manager *m, struct cg_hier *h,
		     int (*level)(const char *dir, struct kr_err *err),
		     struct kr_err *err)
{
	unsigned levels = prefix_levels(m->prefix);
	size_t plen = strlen(h->parent);
	char *dir;

	h->base = cg_join(h->parent, m->prefix);
	h->created = 0;
	dir = kr_xstrdup(h->base);
	/* Walk down "parent/a", "parent/a/b", ... by restoring one '/' at a
	 * time in a copy of base with every separator after parent cut. */
	for (char *c = dir + plen + 1; *c; c++)
		if (*c == '/')
			*c = '\0';
	for (unsigned i = 0; i < levels; i++) {
		bool created;

		if (i > 0)
			dir[strlen(dir)] = '/';
		if (cg_mkdir(dir, &created, err) < 0)
			goto fail;
		if (created && h->created == 0)
			h->created = levels - i;
		if (level && level(dir, err) < 0)
			goto fail;
	}
	free(dir);
	return 0;
fail:
	free(dir);
	return -1;
}

void cg_prefix_remove(struct cgroup_manager *m, struct cg_hier *h)
{
	kr_cleanup_free char *dir = NULL;

	if (!h->base)
		return;
	dir = kr_xstrdup(h->base);
	for (unsigned i = 0; i < h->created; i++) {
		char *slash;

		/* Plain rmdir: a level that still holds cgroups is not ours
		 * to empty. */
		if (rmdir(dir) < 0 && errno != ENOENT)
			kr_warn("cgroup: rmdir %s: %s", dir, strerror(errno));
		slash = strrchr(dir, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	h->created = 0;
}

int cg_poll_until(bool (*done)(const char *dir, void *arg), const char *dir,
		  void *arg, unsigned timeout_ms)
{
	uint64_t deadline = kr_now_ms() + timeout_ms;
	unsigned delay = 1;

	for (;;) {
		if (done(dir, arg))
			return 0;
		if (kr_now_ms() >= deadline)
			return -1;
		cg_sleep_ms(delay);
		if (delay < 16)
			delay *= 2;
	}
}

/* ---- manager --------------------------------------------------------- */

static bool valid_name(const char *s, size_t len)
{
	return len > 0 && !(len == 1 && s[0] == '.') &&
	       !(len == 2 && s[0] == '.' && s[1] == '.');
}

/* A relative path of plain components: nothing may climb out of the root. */
static int check_prefix(const char *prefix, struct kr_err *err)
{
	const char *c = prefix;

	if (!prefix || strlen(prefix) > CG_PREFIX_MAX || *prefix == '/')
		goto bad;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);

		if (!valid_name(c, len))
			goto bad;
		if (!slash)
			return 0;
		c = slash + 1;
	}
bad:
	return kr_err_errno(err, EINVAL, "cgroup prefix \"%s\": want a relative path of plain names",
			    prefix ? prefix : "(null)");
}

static int check_id(const char *id, struct kr_err *err)
{
	if (!id || strlen(id) > CG_ID_MAX || strchr(id, '/') ||
	    !valid_name(id, strlen(id)))
		return kr_err_errno(err, EINVAL, "cgroup name \"%s\": want a plain name of at most %d bytes",
				    id ? id : "(null)", CG_ID_MAX);
	return 0;
}

struct cgroup_manager *cg_manager_new_ops(const struct cgroup_ops *ops,
					  const char *root, const char *prefix,
					  struct kr_err *err)
{
	struct cgroup_manager *m;

	if (check_prefix(prefix, err) < 0)
		return NULL;
	m = kr_xcalloc(1, sizeof(*m));
	m->ops = ops;
	m->prefix = kr_xstrdup(prefix);
	if (ops->detect(m, root, err) < 0 || ops->setup(m, err) < 0) {
		kr_err_wrap(err, "cgroup %s under %s", ops->name, root);
		cgroup_manager_free(m);
		return NULL;
	}
	kr_debug("cgroup: %s manager at %s, prefix %s", ops->name, root, prefix);
	return m;
}

struct cgroup_manager *cgroup_manager_new(const char *mount_root,
					  const char *prefix,
					  struct kr_err *err)
{
	struct statfs sfs;

	if (statfs(mount_root, &sfs) < 0) {
		kr_err_sys(err, "statfs %s", mount_root);
		return NULL;
	}
	if (sfs.f_type == CGROUP2_SUPER_MAGIC)
		return cg_manager_new_ops(&cg_v2_ops, mount_root, prefix, err);
	return cg_manager_new_ops(&cg_v1_ops, mount_root, prefix, err);
}

void cgroup_manager_free(struct cgroup_manager *m)
{
	if (!m)
		return;
	for (int i = CG_NR - 1; i >= 0; i--) {
		struct cg_hier *h = &m->hier[i];

		if (!h->shared)
			cg_prefix_remove(m, h);
		free(h->parent);
		free(h->base);
	}
	free(m->prefix);
	free(m);
}

bool cgroup_manager_is_v2(const struct cgroup_manager *m)
{
	return m->ops == &cg_v2_ops;
}

/* ---- cgroups --------------------------------------------------------- */

static void cg_free(struct cgroup *cg)
{
	if (cg->oom_fd >= 0)
		close(cg->oom_fd);
	for (int i = 0; i < CG_NR; i++)
		free(cg->path[i]);
	free(cg->id);
	free(cg);
}

/* Remove the directories; only_created: just those cgroup_create made
 * (undoing a failed create must not remove a cgroup it adopted). */
static int remove_dirs(struct cgroup *cg, bool only_created,
		       struct kr_err *err)
{
	int rc = 0;

	for (int i = CG_NR - 1; i >= 0; i--) {
		if (!cg->path[i] || cg->m->hier[i].shared)
			continue;
		if (only_created && !cg->created[i])
			continue;
		if (cg_rmdir(cg->path[i], rc ? NULL : err) < 0)
			rc = -1;
	}
	return rc;
}

struct cgroup *cgroup_create(struct cgroup_manager *m, const char *id,
			     const struct oci_resources *res,
			     struct kr_err *err)
{
	struct cgroup *cg;

	if (check_id(id, err) < 0)
		return NULL;
	cg = kr_xcalloc(1, sizeof(*cg));
	cg->m = m;
	cg->id = kr_xstrdup(id);
	cg->oom_fd = -1;
	if (m->ops->create(cg, err) < 0)
		goto fail;
	if (res && m->ops->update(cg, res, err) < 0)
		goto fail;
	if (m->ops->oom_open(cg, err) < 0)
		goto fail;
	return cg;
fail:
	kr_err_wrap(err, "create cgroup %s", id);
	remove_dirs(cg, true, NULL);
	cg_free(cg);
	return NULL;
}

int cgroup_add_pid(struct cgroup *cg, pid_t pid, struct kr_err *err)
{
	if (cg->m->ops->add_pid(cg, pid, err) < 0)
		return kr_err_wrap(err, "cgroup %s: add pid %d", cg->id, (int)pid);
	return 0;
}

int cgroup_update(struct cgroup *cg, const struct oci_resources *res,
		  struct kr_err *err)
{
	if (!res)
		return 0;
	if (cg->m->ops->update(cg, res, err) < 0)
		return kr_err_wrap(err, "cgroup %s: update", cg->id);
	return 0;
}

int cgroup_freeze(struct cgroup *cg, bool frozen, struct kr_err *err)
{
	if (cg->m->ops->freeze(cg, frozen, err) < 0)
		return kr_err_wrap(err, "cgroup %s: %s", cg->id,
				   frozen ? "freeze" : "thaw");
	return 0;
}

int cgroup_pids(struct cgroup *cg, pid_t **pids, size_t *n,
		struct kr_err *err)
{
	*pids = NULL;
	*n = 0;
	if (cg->m->ops->pids(cg, pids, n, err) < 0)
		return kr_err_wrap(err, "cgroup %s: list pids", cg->id);
	return 0;
}

int cgroup_kill_all(struct cgroup *cg, int sig, struct kr_err *err)
{
	if (cg->m->ops->kill_all(cg, sig, err) < 0)
		return kr_err_wrap(err, "cgroup %s: signal %d", cg->id, sig);
	return 0;
}

int cgroup_stats(struct cgroup *cg, struct cgroup_stats *st,
		 struct kr_err *err)
{
	memset(st, 0, sizeof(*st));
	st->memory_limit = UINT64_MAX;
	if (cg->m->ops->stats(cg, st, err) < 0)
		return kr_err_wrap(err, "cgroup %s: stats", cg->id);
	return 0;
}

int cgroup_oom_fd(struct cgroup *cg)
{
	return cg->oom_fd;
}

int cgroup_oom_check(struct cgroup *cg, uint64_t *new_kills,
		     struct kr_err *err)
{
	*new_kills = 0;
	if (cg->oom_fd < 0)
		return 0;
	if (cg->m->ops->oom_check(cg, new_kills, err) < 0)
		return kr_err_wrap(err, "cgroup %s: OOM events", cg->id);
	return 0;
}

/* SIGKILL everything and wait until the cgroup is empty.  Killing again
 * every 100 ms catches children forked between the listing and the kill
 * when the kernel has no cgroup.kill. */
static int kill_and_wait(struct cgroup *cg, struct kr_err *err)
{
	const struct cgroup_ops *ops = cg->m->ops;

	for (int round = 0; round < KILL_ROUNDS; round++) {
		bool populated;

		if (ops->populated(cg, &populated, err) < 0)
			return -1;
		if (!populated)
			return 0;
		if (round % 10 == 0 && ops->kill_all(cg, SIGKILL, err) < 0)
			return -1;
		cg_sleep_ms(10);
	}
	return kr_err_errno(err, EBUSY, "processes still running after %d ms",
			    CG_DESTROY_TIMEOUT_MS);
}

int cgroup_destroy(struct cgroup *cg, struct kr_err *err)
{
	int rc;

	if (!cg)
		return 0;
	rc = kill_and_wait(cg, err);
	/* Try the rmdir even then: it is what leaves nothing behind, and its
	 * EBUSY names the directory. */
	if (remove_dirs(cg, false, rc < 0 ? NULL : err) < 0)
		rc = -1;
	if (rc < 0)
		kr_err_wrap(err, "destroy cgroup %s", cg->id);
	cg_free(cg);
	return rc;
}
