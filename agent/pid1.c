/* Duties of the guest's init: the file systems every container expects,
 * and powering the VM off at the end. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "agent.h"
#include "kr/log.h"
#include "kr/util.h"

static const struct {
	const char *source, *target, *type;
	unsigned long flags;
	const char *data;
} pid1_mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755" },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620" },
	{ "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
	{ "cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755" },
	{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
};

/* ---- leaving the initramfs ------------------------------------------------
 * The kernel refuses pivot_root away from the initial ramfs, and a chroot
 * instead of pivot_root lets a container holding CAP_SYS_CHROOT climb out
 * into the agent's tree.  So, like switch_root, the agent copies the
 * initramfs into a tmpfs, frees the ramfs, moves the tmpfs onto "/", chroots
 * there and re-executes itself; containers can then pivot_root. */

#define NEWROOT_NAME ".kr-root"
#define NEWROOT "/" NEWROOT_NAME

static int copy_tree(int src_dir, int dst_dir, int depth, struct kr_err *err);

static int copy_file(int src_dir, int dst_dir, const char *name,
		     const struct stat *st, struct kr_err *err)
{
	int in = openat(src_dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int out = in < 0 ? -1 : openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				       st->st_mode & 07777);
	off_t left = st->st_size;

	while (out >= 0 && left > 0) {
		ssize_t n = sendfile(out, in, NULL, (size_t)left);

		if (n <= 0)
			break;
		left -= n;
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (in < 0 || out < 0 || left)
		return kr_err_sys(err, "copy %s", name);
	return 0;
}

static int copy_entry(int src, int dst, const char *name, int depth,
		      struct kr_err *err)
{
	struct stat st;
	char target[4096];
	ssize_t n;

	if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return kr_err_sys(err, "stat %s", name);
	if (S_ISDIR(st.st_mode)) {
		int s2, d2, rc;

		if (mkdirat(dst, name, st.st_mode & 07777) < 0 && errno != EEXIST)
			return kr_err_sys(err, "mkdir %s", name);
		s2 = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		d2 = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		rc = s2 < 0 || d2 < 0 ? kr_err_sys(err, "open %s", name)
				       : copy_tree(s2, d2, depth + 1, err);
		if (s2 >= 0)
			close(s2);
		if (d2 >= 0)
			close(d2);
		return rc;
	}
	if (S_ISLNK(st.st_mode)) {
		n = readlinkat(src, name, target, sizeof(target) - 1);
		if (n < 0)
			return kr_err_sys(err, "readlink %s", name);
		target[n] = '\0';
		return symlinkat(target, dst, name) < 0 ? kr_err_sys(err, "symlink %s", name) : 0;
	}
	if (S_ISREG(st.st_mode))
		return copy_file(src, dst, name, &st, err);
	if (mknodat(dst, name, st.st_mode, st.st_rdev) < 0)
		return kr_err_sys(err, "mknod %s", name);
	return 0;
}

static int copy_tree(int src, int dst, int depth, struct kr_err *err)
{
	DIR *d;
	struct dirent *de;
	int rc = 0, fd;

	if (depth > 64)
		return kr_err_errno(err, ELOOP, "initramfs too deep");
	fd = dup(src);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d)
		return kr_err_sys(err, "read initramfs");
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (depth == 0 && !strcmp(de->d_name, NEWROOT_NAME)))
			continue;
		rc = copy_entry(src, dst, de->d_name, depth, err);
	}
	closedir(d);
	return rc;
}

static bool root_is_initramfs(void)
{
	struct statfs sf;

	/* rootfs is ramfs, or tmpfs with CONFIG_TMPFS; after the switch "/"
	 * is a tmpfs too, so also require that no switch happened. */
	return statfs("/", &sf) == 0 &&
	       (sf.f_type == RAMFS_MAGIC || sf.f_type == TMPFS_MAGIC) &&
	       !getenv("KATA_AGENT_SWITCHED");
}

/* Delete the ramfs copy (its pages are not swappable memory); kr_rm_rf
 * never crosses into another file system, so NEWROOT is safe. */
static void free_initramfs(int root)
{
	int fd = dup(root);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[300];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, NEWROOT_NAME))
			continue;
		snprintf(path, sizeof(path), "/%s", de->d_name);
		kr_rm_rf(path, NULL);
	}
	if (d)
		closedir(d);
}

int pid1_switch_root(char **argv, struct kr_err *err)
{
	int src, dst;

	if (!root_is_initramfs())
		return 0;
	if (mkdir(NEWROOT, 0755) < 0 && errno != EEXIST)
		return kr_err_sys(err, "mkdir " NEWROOT);
	if (mount("tmpfs", NEWROOT, "tmpfs", 0, "mode=0755") < 0)
		return kr_err_sys(err, "mount tmpfs on " NEWROOT);
	src = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dst = open(NEWROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (src < 0 || dst < 0)
		return kr_err_sys(err, "open roots");
	if (copy_tree(src, dst, 0, err) < 0)
		return kr_err_wrap(err, "copy initramfs to tmpfs");
	close(dst);
	free_initramfs(src);
	close(src);
	if (chdir(NEWROOT) < 0 || mount(NEWROOT, "/", NULL, MS_MOVE, NULL) < 0 ||
	    chroot(".") < 0 || chdir("/") < 0)
		return kr_err_sys(err, "switch root to tmpfs");
	setenv("KATA_AGENT_SWITCHED", "1", 1);
	execv("/init", argv);
	return kr_err_sys(err, "re-exec /init after switching root");
}

int pid1_setup(struct kr_err *err)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(pid1_mounts); i++) {
		if (mkdir(pid1_mounts[i].target, 0755) < 0 && errno != EEXIST)
			return kr_err_sys(err, "mkdir %s", pid1_mounts[i].target);
		if (mount(pid1_mounts[i].source, pid1_mounts[i].target,
			  pid1_mounts[i].type, pid1_mounts[i].flags,
			  pid1_mounts[i].data) < 0 && errno != EBUSY)
			return kr_err_sys(err, "mount %s", pid1_mounts[i].target);
	}
	/* The console is our stdio (the kernel opened it for init). */
	return 0;
}

int pid1_mount_share(const char *tag, const char *dir, struct kr_err *err)
{
	if (kr_mkdir_p(dir, 0755, err) < 0)
		return -1;
	if (mount(tag, dir, "virtiofs", MS_NOSUID | MS_NODEV, NULL) < 0)
		return kr_err_sys(err, "mount virtio-fs share %s at %s (is CONFIG_VIRTIO_FS in the guest kernel?)", tag, dir);
	kr_info("virtio-fs share %s mounted at %s", tag, dir);
	return 0;
}

void pid1_power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Without ACPI power-off the CPU only halts: the VMM treats reboot
	 * as the end too (on_reboot=destroy). */
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}
