/* The spec's mounts inside the container's root: see mounts.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "kr/log.h"
#include "kr/util.h"
#include "mounts.h"

#define WALK_MAX_DEPTH 128	/* directories deep; deeper is refused */
#define WALK_MAX_LINKS 40	/* as the kernel's MAXSYMLINKS */

/* Walk state: fds[0] is the caller's root (borrowed), fds[1..depth] are the
 * directories opened below it, so ".." is a pop and never a lookup that
 * could climb out of the root. */
struct walk {
	int fds[WALK_MAX_DEPTH + 1];
	int depth;
	int links;
	char rest[PATH_MAX];	/* the part of the path still to resolve */
};

static void walk_pop(struct walk *w, int to)
{
	while (w->depth > to)
		close(w->fds[w->depth--]);
}

/* Copy the next component of *pos into comp and advance *pos; *last says
 * whether nothing follows.  Returns 0 when no component is left, -1 if one
 * is longer than NAME_MAX. */
static int next_comp(const char **pos, char comp[NAME_MAX + 1], bool *last)
{
	const char *p = *pos, *end;
	size_t len;

	while (*p == '/')
		p++;
	if (!*p)
		return 0;
	end = strchrnul(p, '/');
	len = (size_t)(end - p);
	if (len > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(comp, p, len);
	comp[len] = '\0';
	while (*end == '/')
		end++;
	*last = *end == '\0';
	*pos = end;
	return 1;
}

/* Open name below dirfd without following it, creating it when asked. */
static int open_comp(int dirfd, const char *name, enum mounts_create create,
		     bool last)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0 || errno != ENOENT || create == MOUNTS_NO_CREATE)
		return fd;
	if (create == MOUNTS_CREATE_FILE && last) {
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			return -1;
		if (fd >= 0)
			close(fd);
	} else if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) {
		return -1;
	}
	return openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

/* fd is a symlink we just opened: splice its target in front of what is
 * left.  Reading through the fd (not the name) means we follow exactly the
 * link we opened, even if the name was swapped meanwhile. */
static int follow_link(struct walk *w, int fd, const char *tail)
{
	char target[PATH_MAX], joined[PATH_MAX];
	ssize_t n;

	if (++w->links > WALK_MAX_LINKS) {
		errno = ELOOP;
		return -1;
	}
	n = readlinkat(fd, "", target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	if (n == 0) {
		errno = ENOENT;
		return -1;
	}
	target[n] = '\0';
	if (kr_snprintf(joined, sizeof(joined), "%s/%s", target, tail) < 0)
		return -1;
	memcpy(w->rest, joined, strlen(joined) + 1);
	if (target[0] == '/')
		walk_pop(w, 0);	/* absolute: restart at the container's root */
	return 0;
}

static int walk_step(struct walk *w, const char **pos, const char *comp,
		     enum mounts_create create, bool last)
{
	struct stat st;
	int fd;

	if (!strcmp(comp, "."))
		return 0;
	if (!strcmp(comp, "..")) {
		walk_pop(w, w->depth > 0 ? w->depth - 1 : 0);
		return 0;
	}
	fd = open_comp(w->fds[w->depth], comp, create, last);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (S_ISLNK(st.st_mode)) {
		if (follow_link(w, fd, *pos) < 0)
			goto fail;
		*pos = w->rest;
		close(fd);
		return 0;
	}
	if (w->depth == WALK_MAX_DEPTH) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	w->fds[++w->depth] = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

int mounts_resolve(int rootfd, const char *path, enum mounts_create create,
		   struct kr_err *err)
{
	struct walk w = { .depth = 0 };
	char comp[NAME_MAX + 1] = "";
	const char *pos = w.rest;
	bool last = false;
	int fd, rc;

	w.fds[0] = rootfd;
	if (kr_snprintf(w.rest, sizeof(w.rest), "%s", path) < 0)
		return kr_err_sys(err, "resolve %s", path);
	while ((rc = next_comp(&pos, comp, &last)) > 0) {
		if (walk_step(&w, &pos, comp, create, last) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc < 0) {
		kr_err_sys(err, "resolve %s", comp);
		walk_pop(&w, 0);
		return -1;
	}
	if (w.depth == 0) {
		fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? kr_err_sys(err, "dup") : fd;
	}
	fd = w.fds[w.depth--];
	walk_pop(&w, 0);
	return fd;
}

/* ---- flags ----------------------------------------------------------------*/

static const struct {
	const char *name;
	unsigned long flags;
} propagations[] = {
	{ "shared", MS_SHARED }, { "rshared", MS_SHARED | MS_REC },
	{ "slave", MS_SLAVE }, { "rslave", MS_SLAVE | MS_REC },
	{ "private", MS_PRIVATE }, { "rprivate", MS_PRIVATE | MS_REC },
	{ "unbindable", MS_UNBINDABLE },
	{ "runbindable", MS_UNBINDABLE | MS_REC },
};

int mounts_parse_propagation(const char *name, unsigned long *flags)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(propagations); i++) {
		if (!strcmp(name, propagations[i].name)) {
			*flags = propagations[i].flags;
			return 0;
		}
	}
	errno = EINVAL;
	return -1;
}

/* statvfs's ST_* values differ from MS_* for the atime flags. */
static const struct {
	unsigned long st, ms;
} vfs_flags[] = {
	{ ST_RDONLY, MS_RDONLY }, { ST_NOSUID, MS_NOSUID },
	{ ST_NODEV, MS_NODEV }, { ST_NOEXEC, MS_NOEXEC },
	{ ST_SYNCHRONOUS, MS_SYNCHRONOUS }, { ST_NOATIME, MS_NOATIME },
	{ ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
};

#define ATIME_FLAGS (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)

int mounts_get_flags(const char *path, unsigned long *flags)
{
	struct statvfs sv;

	if (statvfs(path, &sv) < 0)
		return -1;
	*flags = 0;
	for (size_t i = 0; i < KR_ARRAY_SIZE(vfs_flags); i++)
		if (sv.f_flag & vfs_flags[i].st)
			*flags |= vfs_flags[i].ms;
	return 0;
}

int mounts_remount_bind(const char *path, unsigned long flags,
			unsigned long clear)
{
	unsigned long cur;

	flags &= ~(MS_BIND | MS_REC | MS_REMOUNT);
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return -1;
	if (mounts_get_flags(path, &cur) < 0) {
		errno = EPERM;
		return -1;
	}
	if (flags & ATIME_FLAGS)
		cur &= ~ATIME_FLAGS;
	cur &= ~clear;
	return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags | cur, NULL);
}

bool mounts_path_eq(const char *a, const char *b)
{
	for (;;) {
		size_t la, lb;

		while (*a == '/')
			a++;
		while (*b == '/')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		la = strcspn(a, "/");
		lb = strcspn(b, "/");
		if (la != lb || memcmp(a, b, la) != 0)
			return false;
		a += la;
		b += lb;
	}
}

const struct oci_mount *mounts_find(const struct oci_spec *spec,
				    const char *path)
{
	for (size_t i = 0; i < spec->n_mounts; i++)
		if (spec->mounts[i].destination &&
		    mounts_path_eq(spec->mounts[i].destination, path))
			return &spec->mounts[i];
	return NULL;
}

/* ---- one mount ------------------------------------------------------------*/

/* After a mount the fd we mounted on names the directory underneath it;
 * remount and propagation changes must act on the new mount, so look the
 * destination up again (the lookup crosses into the new mount). */
static int remount_dest(int rootfd, const struct oci_mount *m,
			unsigned long flags, struct kr_err *err)
{
	char fdp[MOUNTS_FD_PATH_MAX];
	kr_cleanup_close int fd = -1;

	flags &= ~(MS_BIND | MS_REC);
	if (!flags)
		return 0;
	fd = mounts_resolve(rootfd, m->destination, MOUNTS_NO_CREATE, err);
	if (fd < 0)
		return kr_err_wrap(err, "mount %s", m->destination);
	if (mounts_remount_bind(mounts_fd_path(fdp, fd), flags,
				m->clear_flags) < 0)
		return kr_err_sys(err, "mount %s: remount", m->destination);
	return 0;
}

static int do_bind(int rootfd, const struct oci_mount *m, const char *source,
		   unsigned long flags, struct kr_err *err)
{
	char fdp[MOUNTS_FD_PATH_MAX];
	kr_cleanup_close int fd = -1;
	struct stat st;

	if (!source)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "mount %s: bind mount without a source",
				  m->destination);
	if (stat(source, &st) < 0)
		return kr_err_sys(err, "mount %s", m->destination);
	fd = mounts_resolve(rootfd, m->destination, S_ISDIR(st.st_mode) ?
			    MOUNTS_CREATE_DIR : MOUNTS_CREATE_FILE, err);
	if (fd < 0)
		return kr_err_wrap(err, "mount %s", m->destination);
	if (mount(source, mounts_fd_path(fdp, fd), NULL,
		  MS_BIND | (flags & MS_REC), NULL) < 0)
		return kr_err_sys(err, "mount %s", m->destination);
	/* The kernel ignores every flag but MS_REC on a bind: ro, nosuid, ...
	 * take a second, remount call. */
	return remount_dest(rootfd, m, flags, err);
}

/* When a file system may not be mounted afresh here, runc binds the
 * agent's copy instead: sysfs needs a network namespace owned by our user
 * namespace, cgroup2 a cgroup namespace. */
static const char *fallback_source(const char *type)
{
	if (!strcmp(type, "sysfs"))
		return "/sys";
	if (!strcmp(type, "cgroup2"))
		return "/sys/fs/cgroup";
	return NULL;
}

static int do_typed(int rootfd, const struct oci_mount *m, const char *type,
		    const char *source, struct kr_err *err)
{
	char fdp[MOUNTS_FD_PATH_MAX];
	kr_cleanup_close int fd = -1;
	const char *fallback;

	fd = mounts_resolve(rootfd, m->destination, MOUNTS_CREATE_DIR, err);
	if (fd < 0)
		return kr_err_wrap(err, "mount %s", m->destination);
	if (mount(source, mounts_fd_path(fdp, fd), type,
		  m->flags & ~(MS_BIND | MS_REC), m->data) == 0)
		return 0;
	fallback = fallback_source(type);
	if (errno != EPERM || !fallback)
		return kr_err_sys(err, "mount %s", m->destination);
	kr_debug("mount %s: %s not permitted here, binding %s instead",
		 m->destination, type, fallback);
	return do_bind(rootfd, m, fallback, m->flags | MS_BIND | MS_REC, err);
}

static bool host_cgroup2(void)
{
	struct statfs sf;

	return statfs("/sys/fs/cgroup", &sf) == 0 &&
	       sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* runc's specs say "cgroup"; we only do the unified hierarchy (the guest
 * kernel's), so a v1 host (the unit tests' host) gets no cgroup mount. */
static int do_cgroup(int rootfd, const struct oci_mount *m,
		     struct kr_err *err)
{
	if (!host_cgroup2()) {
		kr_debug("mount %s: the agent's cgroups are not v2, skipped",
			 m->destination);
		return 1;
	}
	return do_typed(rootfd, m, "cgroup2", "cgroup2", err);
}

static int set_propagation(int rootfd, const struct oci_mount *m,
			   struct kr_err *err)
{
	char fdp[MOUNTS_FD_PATH_MAX];
	kr_cleanup_close int fd = -1;

	fd = mounts_resolve(rootfd, m->destination, MOUNTS_NO_CREATE, err);
	if (fd < 0)
		return kr_err_wrap(err, "mount %s", m->destination);
	if (mount(NULL, mounts_fd_path(fdp, fd), NULL, m->propagation,
		  NULL) < 0)
		return kr_err_sys(err, "mount %s: set propagation",
				  m->destination);
	return 0;
}

bool mounts_is_bind(const struct oci_mount *m)
{
	return m->bind || (m->flags & MS_BIND) ||
	       (m->type && (!strcmp(m->type, "bind") ||
			    !strcmp(m->type, "rbind")));
}

static int mount_one(int rootfd, const struct oci_mount *m,
		     struct kr_err *err)
{
	int rc;

	if (!m->destination || !*m->destination)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "mount: empty destination");
	if (mounts_is_bind(m)) {
		unsigned long rec = m->type && !strcmp(m->type, "rbind") ?
				    MS_REC : 0;

		rc = do_bind(rootfd, m, m->source, m->flags | rec, err);
	} else if (!m->type) {
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "mount %s: no type", m->destination);
	} else if (!strcmp(m->type, "cgroup") || !strcmp(m->type, "cgroup2")) {
		rc = do_cgroup(rootfd, m, err);
		if (rc > 0)
			return 0;
	} else {
		rc = do_typed(rootfd, m, m->type,
			      m->source ? m->source : m->type, err);
	}
	if (rc == 0 && m->propagation)
		rc = set_propagation(rootfd, m, err);
	return rc;
}

int mounts_setup(int rootfd, const struct oci_spec *spec, struct kr_err *err)
{
	for (size_t i = 0; i < spec->n_mounts; i++)
		if (mount_one(rootfd, &spec->mounts[i], err) < 0)
			return -1;
	return 0;
}
