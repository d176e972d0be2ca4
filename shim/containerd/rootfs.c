/* containerd's rootfs mounts (spec section 6.3): the snapshotter's mounts,
 * applied in order on <bundle>/rootfs, as containerd's own Go mounter does.
 *
 * Options are fstab-style: names such as ro, nosuid or rbind become mount(2)
 * flags, propagation names are applied by a second mount(2) call, the rest
 * is the data string.  The kernel copies at most one page of data, which an
 * overlay with many layers exceeds: like containerd we then name the
 * lowerdirs relative to their common parent and mount from there, in a
 * thread with its own working directory (unshare(CLONE_FS)) because the
 * daemon's other threads must not see a chdir. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/util.h"
#include "shim.h"

#define ROOTFS_MAX_MOUNTS 128
#define ROOTFS_MAX_OPTIONS 256
#define ROOTFS_MAX_UNMOUNTS 128
#define ROOTFS_TYPE_MAX 63
#define ROOTFS_OPTION_MAX (64u << 10)	/* a lowerdir list of ~500 layers */
#define PAGE_DATA_MAX 4095		/* one page, NUL included */

struct opt_flag {
	const char *name;
	bool clear;
	unsigned long flag;
};

/* containerd's mount/mount_linux.go table. */
static const struct opt_flag opt_flags[] = {
	{ "async", true, MS_SYNCHRONOUS },	{ "atime", true, MS_NOATIME },
	{ "bind", false, MS_BIND },		{ "defaults", false, 0 },
	{ "dev", true, MS_NODEV },		{ "diratime", true, MS_NODIRATIME },
	{ "dirsync", false, MS_DIRSYNC },	{ "exec", true, MS_NOEXEC },
	{ "mand", false, MS_MANDLOCK },		{ "noatime", false, MS_NOATIME },
	{ "nodev", false, MS_NODEV },		{ "nodiratime", false, MS_NODIRATIME },
	{ "noexec", false, MS_NOEXEC },		{ "nomand", true, MS_MANDLOCK },
	{ "norelatime", true, MS_RELATIME },	{ "nostrictatime", true, MS_STRICTATIME },
	{ "nosuid", false, MS_NOSUID },		{ "rbind", false, MS_BIND | MS_REC },
	{ "relatime", false, MS_RELATIME },	{ "remount", false, MS_REMOUNT },
	{ "ro", false, MS_RDONLY },		{ "rw", true, MS_RDONLY },
	{ "strictatime", false, MS_STRICTATIME }, { "suid", true, MS_NOSUID },
	{ "sync", false, MS_SYNCHRONOUS },
};

static const struct opt_flag prop_flags[] = {
	{ "private", false, MS_PRIVATE },	{ "rprivate", false, MS_PRIVATE | MS_REC },
	{ "shared", false, MS_SHARED },		{ "rshared", false, MS_SHARED | MS_REC },
	{ "slave", false, MS_SLAVE },		{ "rslave", false, MS_SLAVE | MS_REC },
	{ "unbindable", false, MS_UNBINDABLE }, { "runbindable", false, MS_UNBINDABLE | MS_REC },
};

/* Flags a read-only (or nosuid...) bind needs re-applied by a remount:
 * the first bind mount(2) ignores them. */
#define BIND_REMOUNT_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

static const struct opt_flag *find_opt(const struct opt_flag *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].name, name))
			return &t[i];
	return NULL;
}

void rootfs_opts_free(struct rootfs_opts *o)
{
	free(o->data);
	o->data = NULL;
}

/* Append ",opt" (or "opt") to the data string being built. */
static void data_append(char **data, size_t *len, const char *opt)
{
	size_t n = strlen(opt), need = *len + n + 2;
	char *p = realloc(*data, need);

	if (!p)
		abort();	/* as kr_xcalloc: a small allocation failing is fatal */
	if (*len)
		p[(*len)++] = ',';
	memcpy(p + *len, opt, n + 1);
	*len += n;
	*data = p;
}

int rootfs_parse_options(char *const *options, size_t n, struct rootfs_opts *o,
			 struct kr_err *err)
{
	size_t len = 0;

	*o = (struct rootfs_opts){ 0 };
	if (n > ROOTFS_MAX_OPTIONS)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%zu mount options, the limit is %d",
				  n, ROOTFS_MAX_OPTIONS);
	o->data = kr_xcalloc(1, 1);
	for (size_t i = 0; i < n; i++) {
		const char *opt = options[i];
		const struct opt_flag *f;

		if (!opt || !*opt)
			continue;
		if (strlen(opt) > ROOTFS_OPTION_MAX) {
			rootfs_opts_free(o);
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "mount option %zu is %zu bytes long", i, strlen(opt));
		}
		if (!strcmp(opt, "loop")) {
			rootfs_opts_free(o);
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "mount option \"loop\" (a file system image) is not supported");
		}
		if ((f = find_opt(opt_flags, KR_ARRAY_SIZE(opt_flags), opt))) {
			if (f->clear)
				o->flags &= ~f->flag;
			else
				o->flags |= f->flag;
		} else if ((f = find_opt(prop_flags, KR_ARRAY_SIZE(prop_flags), opt))) {
			o->propagation |= f->flag;
		} else {
			data_append(&o->data, &len, opt);
		}
	}
	return 0;
}

/* ---- overlay: too many layers for one page ------------------------------------ */

/* The value of the one "lowerdir=" option in data, or NULL. */
static const char *find_lowerdir(const char *data, size_t *len)
{
	const char *p = data, *found = NULL;

	while (*p) {
		const char *end = strchrnul(p, ',');

		if (!strncmp(p, "lowerdir=", 9)) {
			if (found)
				return NULL;	/* twice: not a shape we rewrite */
			found = p + 9;
			*len = (size_t)(end - found);
		}
		p = *end ? end + 1 : end;
	}
	return found;
}

/* The directory that all ':'-separated absolute dirs share (containerd:
 * path.Dir of their longest common prefix); "" if none but "/". */
static void common_parent(const char *dirs, size_t len, char *out)
{
	size_t plen = 0;
	const char *first = dirs, *p;

	plen = strcspn(first, ":,");
	if (plen > len)
		plen = len;
	for (p = dirs; p < dirs + len;) {
		size_t n = strcspn(p, ":,"), k = 0;

		if (p + n > dirs + len)
			n = (size_t)(dirs + len - p);
		while (k < plen && k < n && p[k] == first[k])
			k++;
		plen = k;
		p += n + 1;
	}
	/* path.Dir: cut the last (maybe partial) component. */
	while (plen > 0 && first[plen - 1] != '/')
		plen--;
	while (plen > 1 && first[plen - 1] == '/')
		plen--;
	if (plen <= 1 || first[0] != '/' || plen >= PATH_MAX) {
		out[0] = '\0';
		return;
	}
	memcpy(out, first, plen);
	out[plen] = '\0';
}

int rootfs_overlay_compact(const char *data, char *dir, char **out, struct kr_err *err)
{
	size_t llen = 0, dlen, olen = 0;
	const char *lower = find_lowerdir(data, &llen), *p;
	char *res;

	*out = NULL;
	dir[0] = '\0';
	if (!lower || !memchr(lower, ':', llen))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "overlay options are %zu bytes, over the one-page limit, and have no lowerdir list to shorten",
				  strlen(data));
	common_parent(lower, llen, dir);
	if (!dir[0])
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "overlay options are %zu bytes (too many layers for one page) and the lowerdirs share no parent directory",
				  strlen(data));
	dlen = strlen(dir);
	res = kr_xcalloc(1, strlen(data) + 1);
	/* Everything before lowerdir=, then each dir without "<dir>/", then
	 * the rest. */
	memcpy(res, data, (size_t)(lower - data));
	olen = (size_t)(lower - data);
	for (p = lower; p < lower + llen;) {
		size_t n = strcspn(p, ":,");

		if (n <= dlen + 1 || strncmp(p, dir, dlen) || p[dlen] != '/') {
			free(res);
			dir[0] = '\0';
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "overlay options are %zu bytes (too many layers for one page): lowerdir \"%.*s\" is not under %s",
					  strlen(data), (int)(n > 200 ? 200 : n), p, dir);
		}
		if (p != lower)
			res[olen++] = ':';
		memcpy(res + olen, p + dlen + 1, n - dlen - 1);
		olen += n - dlen - 1;
		p += n + 1;
	}
	strcpy(res + olen, lower + llen);
	if (strlen(res) > PAGE_DATA_MAX) {
		size_t total = strlen(res);

		free(res);
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "overlay options are %zu bytes even with lowerdirs relative to %s: too many layers (the kernel takes one page, %d bytes)",
				  total, dir, PAGE_DATA_MAX);
	}
	*out = res;
	return 0;
}

struct mount_at {
	const char *dir, *source, *target, *type, *data;
	unsigned long flags;
	int err;
};

static void *mount_at_thread(void *arg)
{
	struct mount_at *m = arg;

	/* A private cwd for this thread only; it dies with the thread. */
	if (unshare(CLONE_FS) < 0 || chdir(m->dir) < 0 ||
	    mount(m->source, m->target, m->type, m->flags, m->data) < 0)
		m->err = errno;
	return NULL;
}

/* mount(2) with cwd = dir, without moving the process's cwd. */
static int mount_at(struct mount_at *m)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, mount_at_thread, m);

	if (rc) {
		errno = rc;
		return -1;
	}
	pthread_join(t, NULL);
	errno = m->err;
	return m->err ? -1 : 0;
}

/* ---- mounting ------------------------------------------------------------------- */

static int check_mount(const PB(Mount) *m, struct kr_err *err)
{
	size_t tlen = m->type ? strlen(m->type) : 0;

	if (tlen == 0 || tlen > ROOTFS_TYPE_MAX || strpbrk(m->type, "/ ,"))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "mount type \"%.64s\" is not a file system type",
				  m->type ? m->type : "");
	if (m->source && strlen(m->source) >= PATH_MAX)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "mount source is %zu bytes long",
				  strlen(m->source));
	return 0;
}

static int do_bind(const PB(Mount) *m, const struct rootfs_opts *o, const char *target,
		   struct kr_err *err)
{
	const char *src = m->source ? m->source : "";

	/* Relative to what?  The daemon's cwd is not the caller's. */
	if (src[0] != '/')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "bind mount source \"%.200s\" is not an absolute path",
				  src);
	if (mount(src, target, NULL, MS_BIND | (o->flags & MS_REC), NULL) < 0)
		return kr_err_sys(err, "bind %s on %s", src, target);
	if ((o->flags & BIND_REMOUNT_FLAGS) &&
	    mount("", target, NULL, MS_REMOUNT | MS_BIND | (o->flags & ~MS_REC), NULL) < 0) {
		kr_err_sys(err, "remount %s read-only/nosuid/nodev/noexec", target);
		umount2(target, MNT_DETACH);
		return -1;
	}
	return 0;
}

static int do_mount(const PB(Mount) *m, const struct rootfs_opts *o, const char *target,
		    struct kr_err *err)
{
	const char *src = m->source && *m->source ? m->source : "none";
	struct mount_at at = { .source = src, .target = target, .type = m->type,
			       .flags = o->flags, .data = o->data };
	char dir[PATH_MAX];
	char *data = NULL;
	int rc;

	if (strlen(o->data) <= PAGE_DATA_MAX) {
		if (mount(src, target, m->type, o->flags, o->data) < 0)
			return kr_err_sys(err, "mount %s (%s) on %s", src, m->type, target);
		return 0;
	}
	if (strcmp(m->type, "overlay"))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "mount %s (%s): options are %zu bytes, the kernel takes one page (%d)",
				  src, m->type, strlen(o->data), PAGE_DATA_MAX);
	if (target[0] != '/')
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "mount overlay on %s: too many layers for one page, and a relative target", target);
	if (rootfs_overlay_compact(o->data, dir, &data, err) < 0)
		return kr_err_wrap(err, "mount overlay on %s", target);
	kr_debug("overlay on %s: %zu bytes of options, lowerdirs relative to %s", target,
		 strlen(o->data), dir);
	at.dir = dir;
	at.data = data;
	rc = mount_at(&at);
	if (rc < 0)
		kr_err_sys(err, "mount overlay on %s (lowerdirs relative to %s)", target, dir);
	free(data);
	return rc;
}

static int mount_one(const PB(Mount) *m, const char *target, struct kr_err *err)
{
	struct rootfs_opts o;
	int rc;

	if (check_mount(m, err) < 0 ||
	    rootfs_parse_options(m->options, m->n_options, &o, err) < 0)
		return -1;
	if (!strcmp(m->type, "bind") || (o.flags & MS_BIND))
		rc = do_bind(m, &o, target, err);
	else
		rc = do_mount(m, &o, target, err);
	if (rc == 0 && o.propagation &&
	    mount("", target, NULL, o.propagation, NULL) < 0) {
		kr_err_sys(err, "set propagation of %s", target);
		umount2(target, MNT_DETACH);
		rc = -1;
	}
	rootfs_opts_free(&o);
	return rc;
}

int rootfs_mount(PB(Mount) **mounts, size_t n, const char *target, struct kr_err *err)
{
	if (!target || !*target)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "rootfs: no target directory");
	if (n > ROOTFS_MAX_MOUNTS)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "rootfs: %zu mounts, the limit is %d",
				  n, ROOTFS_MAX_MOUNTS);
	for (size_t i = 0; i < n; i++) {
		if (!mounts[i])
			kr_err_set(err, KR_INVALID_ARGUMENT, "mount %zu is empty", i);
		if (!mounts[i] || mount_one(mounts[i], target, err) < 0) {
			/* Each mount stacks on target: undo the top i. */
			for (size_t j = i; j-- > 0;)
				if (umount2(target, MNT_DETACH) < 0)
					kr_warn("rootfs: undo mount %zu on %s: %s", j, target,
						strerror(errno));
			return kr_err_wrap(err, "rootfs mount %zu of %zu", i + 1, n);
		}
	}
	return 0;
}

int rootfs_unmount(const char *target, struct kr_err *err)
{
	for (int i = 0; i < ROOTFS_MAX_UNMOUNTS; i++) {
		if (umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EINVAL || errno == ENOENT)
			return 0;	/* nothing (more) mounted there */
		return kr_err_sys(err, "unmount %s", target);
	}
	return kr_err_set(err, KR_INTERNAL, "unmount %s: still mounted after %d unmounts",
			  target, ROOTFS_MAX_UNMOUNTS);
}
