/* The container's root file system: see rootfs.h.
 *
 * Everything before pivot_root happens under state_dir/rootfs in the
 * container's fresh mount namespace, with "/" made a slave first so that
 * none of it propagates back to the agent; destinations are resolved
 * inside the new root by mounts_resolve(). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/magic.h>

#include "devices.h"
#include "kr/log.h"
#include "kr/util.h"
#include "mounts.h"
#include "rootfs.h"

/* ---- the root mount -------------------------------------------------------*/

/* overlayfs splits its options at ',' and lowerdir at ':'; rather than
 * relying on the kernel's escaping rules, refuse such paths. */
static bool overlay_safe(const char *path)
{
	return !strpbrk(path, ",:\\");
}

/* The set-up runs inside the container's user namespace when the spec
 * has one (launch.h); a full identity map makes it look like the initial
 * one from the inside, so ask the spec. */
static bool in_user_namespace(const struct oci_spec *spec)
{
	for (size_t i = 0; i < spec->n_namespaces; i++)
		if (spec->namespaces[i].type == CLONE_NEWUSER)
			return true;
	return false;
}

static int overlay_dirs(const struct rootfs_config *cfg, const struct stat *lower,
			char *upper, char *work, struct kr_err *err)
{
	if (kr_snprintf(upper, PATH_MAX, "%s/upper", cfg->state_dir) < 0 ||
	    kr_snprintf(work, PATH_MAX, "%s/work", cfg->state_dir) < 0)
		return kr_err_sys(err, "rootfs: state dir %s", cfg->state_dir);
	if (!overlay_safe(cfg->source) || !overlay_safe(upper))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "rootfs %s: overlayfs cannot take a path with ',', ':' or '\\'",
				  cfg->source);
	if (kr_mkdir_p(upper, 0755, err) < 0 || kr_mkdir_p(work, 0700, err) < 0)
		return kr_err_wrap(err, "rootfs");
	/* The merged root takes owner and mode from the upper layer's root:
	 * make it look like the image's.  An owner the container's user
	 * namespace does not map cannot be given; that only shows in ls. */
	if (chown(upper, lower->st_uid, lower->st_gid) < 0)
		kr_debug("rootfs: chown %s: %s", upper, strerror(errno));
	if (chmod(upper, lower->st_mode & 07777) < 0)
		return kr_err_sys(err, "rootfs: chmod %s", upper);
	return 0;
}

static int mount_overlay(const struct rootfs_config *cfg,
			 const struct stat *lower, const char *root,
			 struct kr_err *err)
{
	char upper[PATH_MAX], work[PATH_MAX], data[4096];

	if (overlay_dirs(cfg, lower, upper, work, err) < 0)
		return -1;
	if (kr_snprintf(data, sizeof(data), "lowerdir=%s,upperdir=%s,workdir=%s",
			cfg->source, upper, work) < 0)
		return kr_err_sys(err, "rootfs %s", cfg->source);
	/* In a user namespace overlayfs cannot write trusted.* xattrs and
	 * would silently lose opaque directories: ask for user.* ones
	 * (Linux 5.11+), unless the upper file system has none (tmpfs
	 * before 6.6). */
	if (in_user_namespace(cfg->spec) &&
	    strlen(data) + sizeof(",userxattr") <= sizeof(data)) {
		char ux[sizeof(data)];

		memcpy(ux, data, strlen(data) + 1);
		strcat(ux, ",userxattr");
		if (mount("overlay", root, "overlay", 0, ux) == 0)
			return 0;
		kr_debug("rootfs: overlay with userxattr: %s", strerror(errno));
	}
	if (mount("overlay", root, "overlay", 0, data) < 0)
		return kr_err_sys(err, "rootfs: mount overlay of %s", cfg->source);
	return 0;
}

static int mount_root(const struct rootfs_config *cfg, const char *root,
		      struct kr_err *err)
{
	struct stat st;

	if (stat(cfg->source, &st) < 0)
		return kr_err_sys(err, "rootfs %s", cfg->source);
	if (!S_ISDIR(st.st_mode))
		return kr_err_errno(err, ENOTDIR, "rootfs %s", cfg->source);
	if (cfg->overlay)
		return mount_overlay(cfg, &st, root, err);
	if (mount(cfg->source, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return kr_err_sys(err, "rootfs: bind %s", cfg->source);
	return 0;
}

/* pivot_root refuses a new root whose parent mount is shared.  Walk up
 * from root's parent to the first mount point and make it private
 * (mount(MS_PRIVATE) on a non-mount-point fails with EINVAL). */
static int make_parent_private(const char *root, struct kr_err *err)
{
	char p[PATH_MAX];
	char *slash;

	if (kr_snprintf(p, sizeof(p), "%s", root) < 0)
		return kr_err_sys(err, "rootfs %s", root);
	while ((slash = strrchr(p, '/'))) {
		if (slash == p)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (mount(NULL, p, NULL, MS_PRIVATE, NULL) == 0)
			return 0;
		if (errno != EINVAL)
			return kr_err_sys(err, "make %s private", p);
		if (!strcmp(p, "/"))
			break;
	}
	return 0;
}

/* ---- pivot ----------------------------------------------------------------*/

/* After pivot_root(".", ".") the old root is stacked on top of the new
 * one at ".".  Make it a slave first so that detaching it cannot
 * propagate an unmount to the agent when "/" was shared. */
static int detach_old_root(struct kr_err *err)
{
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return kr_err_sys(err, "pivot_root: make old root a slave");
	if (umount2(".", MNT_DETACH) < 0)
		return kr_err_sys(err, "pivot_root: detach old root");
	return 0;
}

static bool root_is_ramfs(void)
{
	struct statfs sf;

	return statfs("/", &sf) == 0 &&
	       (sf.f_type == RAMFS_MAGIC || sf.f_type == TMPFS_MAGIC);
}

static int pivot(const char *root, struct kr_err *err)
{
	kr_cleanup_close int fd = -1;
	int rc;

	fd = open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fchdir(fd) < 0)
		return kr_err_sys(err, "chdir %s", root);
	if (syscall(SYS_pivot_root, ".", ".") == 0)
		rc = detach_old_root(err);
	else if (errno == EINVAL && root_is_ramfs())
		/* The initial ramfs cannot be pivoted away.  runc's answer,
		 * MS_MOVE + chroot, leaves it and every agent mount reachable
		 * by a chroot escape (CAP_SYS_CHROOT), and the initramfs is
		 * shared with the agent: refuse rather than run weaker. */
		rc = kr_err_errno(err, EINVAL, "pivot_root %s: the agent's root "
				  "is the initramfs; the agent must switch_root "
				  "to a tmpfs at boot", root);
	else
		rc = kr_err_sys(err, "pivot_root %s", root);
	if (rc == 0 && chdir("/") < 0)
		rc = kr_err_sys(err, "chdir /");
	return rc;
}

/* ---- set-up ---------------------------------------------------------------*/

static int root_propagation(const struct oci_spec *spec, unsigned long *flags,
			    struct kr_err *err)
{
	*flags = MS_SLAVE | MS_REC;
	if (spec->rootfs_propagation &&
	    mounts_parse_propagation(spec->rootfs_propagation, flags) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "linux.rootfsPropagation: unknown value \"%s\"",
				  spec->rootfs_propagation);
	return 0;
}

/* The spec's mounts and /dev, under the new root at rootfd. */
static int fill_root(int rootfd, const struct oci_spec *spec,
		     struct kr_err *err)
{
	const struct oci_mount *dev = mounts_find(spec, "/dev");

	/* Before the spec's mounts, so that their /dev/pts, /dev/shm, ...
	 * land on this tmpfs rather than under it. */
	if (!dev && devices_mount_dev(rootfd, err) < 0)
		return -1;
	if (mounts_setup(rootfd, spec, err) < 0)
		return -1;
	/* A /dev bound in from outside is complete already (runc alike). */
	if (dev && mounts_is_bind(dev))
		return 0;
	return devices_setup(rootfd, spec, err);
}

int rootfs_setup(const struct rootfs_config *cfg, struct kr_err *err)
{
	const struct oci_spec *spec = cfg->spec;
	kr_cleanup_close int rootfd = -1;
	unsigned long prop;
	char root[PATH_MAX];

	if (!spec || !cfg->source || !cfg->state_dir)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "rootfs: no spec, source or state dir");
	if (root_propagation(spec, &prop, err) < 0)
		return -1;
	/* Mount targets are named through /proc/self/fd (mounts.h). */
	if (access("/proc/self/fd", X_OK) < 0)
		return kr_err_sys(err, "rootfs: /proc/self/fd (the agent must mount /proc)");
	if (mount(NULL, "/", NULL, prop, NULL) < 0)
		return kr_err_sys(err, "rootfs: set propagation of /");
	if (kr_snprintf(root, sizeof(root), "%s/rootfs", cfg->state_dir) < 0)
		return kr_err_sys(err, "rootfs: state dir %s", cfg->state_dir);
	if (kr_mkdir_p(root, 0755, err) < 0)
		return kr_err_wrap(err, "rootfs");
	/* Before mounting the root there: with "/" shared, the new mount
	 * would otherwise appear in the agent's namespace too (runc alike). */
	if (make_parent_private(root, err) < 0 || mount_root(cfg, root, err) < 0)
		return -1;
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return kr_err_sys(err, "rootfs: open %s", root);
	if (fill_root(rootfd, spec, err) < 0 || pivot(root, err) < 0)
		return -1;
	/* Now that the agent's tree is gone, give the container's the
	 * propagation it asked for. */
	if (spec->rootfs_propagation && mount(NULL, "/", NULL, prop, NULL) < 0)
		return kr_err_sys(err, "rootfs: set propagation %s",
				  spec->rootfs_propagation);
	return 0;
}

/* ---- after pivot ----------------------------------------------------------*/

/* The kernel ignores flags on a bind; a remount sets them.  Keep the
 * nosuid/nodev/noexec/atime flags the mount has (a user namespace may not
 * drop them, and dropping them would weaken the mount anyway). */
static int remount_ro(const char *path)
{
	unsigned long cur;

	if (mounts_get_flags(path, &cur) < 0)
		return -1;
	return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | cur,
		     NULL);
}

/* A file gets /dev/null bound over it, a directory an empty read-only
 * tmpfs; paths this kernel does not have are fine (runc alike). */
static int mask_path(const char *path, struct kr_err *err)
{
	struct stat st;
	int rc;

	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : kr_err_sys(err, "mask %s", path);
	if (S_ISDIR(st.st_mode))
		rc = mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL);
	else
		rc = mount("/dev/null", path, NULL, MS_BIND, NULL);
	if (rc < 0 && errno != ENOENT)
		return kr_err_sys(err, "mask %s", path);
	return 0;
}

static int readonly_path(const char *path, struct kr_err *err)
{
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return errno == ENOENT ? 0 :
		       kr_err_sys(err, "read-only path %s", path);
	if (remount_ro(path) < 0)
		return kr_err_sys(err, "read-only path %s: remount", path);
	return 0;
}

int rootfs_finalize(const struct oci_spec *spec, struct kr_err *err)
{
	for (size_t i = 0; i < spec->n_masked_paths; i++)
		if (mask_path(spec->masked_paths[i], err) < 0)
			return -1;
	for (size_t i = 0; i < spec->n_readonly_paths; i++)
		if (readonly_path(spec->readonly_paths[i], err) < 0)
			return -1;
	if (spec->root_readonly && remount_ro("/") < 0)
		return kr_err_sys(err, "remount / read-only");
	return 0;
}

/* ---- clean-up -------------------------------------------------------------*/

/* A directory still mounted on (its container's namespace leaked into the
 * agent's) must not be emptied: that would delete the image or a volume. */
static int check_not_mounted(const char *path, struct kr_err *err)
{
	struct statx sx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS,
		  &sx) < 0)
		return errno == ENOENT ? 0 : kr_err_sys(err, "cleanup %s", path);
	if ((sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return kr_err_errno(err, EBUSY, "cleanup %s: still mounted",
				    path);
	return 0;
}

int rootfs_cleanup(const char *state_dir, struct kr_err *err)
{
	static const char *const parts[] = { "rootfs", "upper", "work" };
	char path[PATH_MAX];

	for (size_t i = 0; i < KR_ARRAY_SIZE(parts); i++) {
		if (kr_snprintf(path, sizeof(path), "%s/%s", state_dir,
				parts[i]) < 0)
			return kr_err_sys(err, "cleanup %s", state_dir);
		if (check_not_mounted(path, err) < 0)
			return -1;
		if (kr_rm_rf(path, err) < 0)
			return kr_err_wrap(err, "cleanup");
	}
	return 0;
}
