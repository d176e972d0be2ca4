/* The container's /dev: see devices.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "devices.h"
#include "kr/util.h"
#include "mounts.h"

/* The nodes every container gets (the OCI runtime spec's default devices
 * less /dev/ptmx, a link below, and /dev/console, the terminal code's).
 * They are bind mounts of the agent's own nodes rather than mknod: a bind
 * works unchanged when the container has a user namespace (mknod needs
 * CAP_MKNOD in the initial one), so there is one code path, and the
 * container gets exactly the devices the guest kernel gave the agent. */
static const char *const default_devices[] = {
	"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
	"/dev/tty",
};

static const struct {
	const char *target, *name;
} dev_links[] = {
	{ "/proc/self/fd", "fd" },
	{ "/proc/self/fd/0", "stdin" },
	{ "/proc/self/fd/1", "stdout" },
	{ "/proc/self/fd/2", "stderr" },
};

/* Largest device numbers the kernel's dev_t holds (12 + 20 bits). */
#define DEV_MAJOR_MAX 0xfffLL
#define DEV_MINOR_MAX 0xfffffLL

int devices_mount_dev(int rootfd, struct kr_err *err)
{
	char fdp[MOUNTS_FD_PATH_MAX];
	kr_cleanup_close int fd = -1;

	fd = mounts_resolve(rootfd, "/dev", MOUNTS_CREATE_DIR, err);
	if (fd < 0)
		return kr_err_wrap(err, "mount /dev");
	if (mount("tmpfs", mounts_fd_path(fdp, fd), "tmpfs",
		  MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
		return kr_err_sys(err, "mount /dev");
	return 0;
}

/* Bind the agent's node at path onto an empty file at the same path in
 * the container. */
static int bind_device(int rootfd, const char *path, struct kr_err *err)
{
	char fdp[MOUNTS_FD_PATH_MAX];
	kr_cleanup_close int fd = -1;

	fd = mounts_resolve(rootfd, path, MOUNTS_CREATE_FILE, err);
	if (fd < 0)
		return kr_err_wrap(err, "device %s", path);
	if (mount(path, mounts_fd_path(fdp, fd), NULL, MS_BIND, NULL) < 0)
		return kr_err_sys(err, "device %s: bind", path);
	return 0;
}

static bool spec_has_device(const struct oci_spec *spec, const char *path)
{
	for (size_t i = 0; i < spec->n_devices; i++)
		if (spec->devices[i].path &&
		    mounts_path_eq(spec->devices[i].path, path))
			return true;
	return false;
}

static int device_kind(const struct oci_device *d, mode_t *kind)
{
	switch (d->type) {
	case 'c':
	case 'u':
		*kind = S_IFCHR;
		return 0;
	case 'b':
		*kind = S_IFBLK;
		return 0;
	case 'p':
		*kind = S_IFIFO;
		return 0;
	default:
		return -1;
	}
}

static int check_device(const struct oci_device *d, mode_t *kind,
			struct kr_err *err)
{
	const char *base;

	if (!d->path || d->path[0] != '/')
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "device %s: path must be absolute",
				  d->path ? d->path : "(null)");
	base = strrchr(d->path, '/') + 1;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "device %s: not a file name", d->path);
	if (device_kind(d, kind) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "device %s: unknown type '%c'", d->path,
				  d->type);
	if (d->major < 0 || d->major > DEV_MAJOR_MAX ||
	    d->minor < 0 || d->minor > DEV_MINOR_MAX)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "device %s: number %lld:%lld out of range",
				  d->path, (long long)d->major,
				  (long long)d->minor);
	return 0;
}

static mode_t device_mode(const struct oci_device *d)
{
	return d->has_mode ? d->file_mode & 07777 : 0666;
}

/* mknod applied the umask: set the mode again, then the owner. */
static int set_node_attrs(int dirfd, const char *name,
			  const struct oci_device *d, struct kr_err *err)
{
	if (fchmodat(dirfd, name, device_mode(d), 0) < 0)
		return kr_err_sys(err, "device %s: chmod", d->path);
	if ((d->has_uid || d->has_gid) &&
	    fchownat(dirfd, name, d->has_uid ? d->uid : (uid_t)-1,
		     d->has_gid ? d->gid : (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
		return kr_err_sys(err, "device %s: chown", d->path);
	return 0;
}

static int create_device(int rootfd, const struct oci_device *d,
			 struct kr_err *err)
{
	char parent[PATH_MAX];
	kr_cleanup_close int dirfd = -1;
	const char *name;
	mode_t kind = 0;

	if (check_device(d, &kind, err) < 0)
		return -1;
	name = strrchr(d->path, '/') + 1;
	if (kr_snprintf(parent, sizeof(parent), "%.*s",
			(int)(name - d->path), d->path) < 0)
		return kr_err_sys(err, "device %s", d->path);
	dirfd = mounts_resolve(rootfd, parent, MOUNTS_CREATE_DIR, err);
	if (dirfd < 0)
		return kr_err_wrap(err, "device %s", d->path);
	if (mknodat(dirfd, name, kind | device_mode(d),
		    makedev((unsigned)d->major, (unsigned)d->minor)) == 0)
		return set_node_attrs(dirfd, name, d, err);
	if (errno == EEXIST)	/* as runc: what the image or a mount put there stays */
		return 0;
	/* No CAP_MKNOD (a user namespace): the agent's node, as runc does. */
	if (errno == EPERM && kind != S_IFIFO)
		return bind_device(rootfd, d->path, err);
	return kr_err_sys(err, "device %s", d->path);
}

static int make_links(int devfd, struct kr_err *err)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(dev_links); i++)
		if (symlinkat(dev_links[i].target, devfd, dev_links[i].name) < 0 &&
		    errno != EEXIST)
			return kr_err_sys(err, "symlink /dev/%s", dev_links[i].name);
	/* runc adds /dev/core only where the kernel has /proc/kcore. */
	if (access("/proc/kcore", F_OK) == 0 &&
	    symlinkat("/proc/kcore", devfd, "core") < 0 && errno != EEXIST)
		return kr_err_sys(err, "symlink /dev/core");
	return 0;
}

/* /dev/ptmx must be the container's devpts multiplexer (devpts mounted
 * with newinstance at /dev/pts), never a node reaching the agent's ptys. */
static int make_ptmx(int devfd, struct kr_err *err)
{
	if (unlinkat(devfd, "ptmx", 0) < 0 && errno != ENOENT)
		return kr_err_sys(err, "remove /dev/ptmx");
	if (symlinkat("pts/ptmx", devfd, "ptmx") < 0)
		return kr_err_sys(err, "symlink /dev/ptmx");
	return 0;
}

static int make_shm(int devfd, struct kr_err *err)
{
	if (mkdirat(devfd, "shm", 01777) < 0) {
		if (errno == EEXIST)
			return 0;
		return kr_err_sys(err, "mkdir /dev/shm");
	}
	/* mkdir applied the umask; shm must be world-writable and sticky. */
	if (fchmodat(devfd, "shm", 01777, 0) < 0)
		return kr_err_sys(err, "chmod /dev/shm");
	return 0;
}

int devices_setup(int rootfd, const struct oci_spec *spec, struct kr_err *err)
{
	kr_cleanup_close int devfd = -1;

	for (size_t i = 0; i < KR_ARRAY_SIZE(default_devices); i++) {
		const char *path = default_devices[i];

		if (spec_has_device(spec, path) || mounts_find(spec, path))
			continue;
		if (bind_device(rootfd, path, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < spec->n_devices; i++)
		if (create_device(rootfd, &spec->devices[i], err) < 0)
			return -1;
	devfd = mounts_resolve(rootfd, "/dev", MOUNTS_CREATE_DIR, err);
	if (devfd < 0)
		return kr_err_wrap(err, "/dev");
	if (make_links(devfd, err) < 0 || make_ptmx(devfd, err) < 0 ||
	    make_shm(devfd, err) < 0)
		return -1;
	return 0;
}
