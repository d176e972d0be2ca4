/* The spec's mounts, placed inside the container's root before pivot_root.
 *
 * Every destination is resolved inside the root as if the root were "/"
 * (mounts_resolve): ".." stops at the root and symlinks, absolute or
 * relative, are followed inside it, so an image shipping "evil -> /etc"
 * gets its own /etc mounted over, never the agent's.  The mount itself
 * targets the resolved O_PATH fd through /proc/self/fd/N, so a path swapped
 * for a symlink after the check (a volume shared with another container)
 * cannot redirect it (CVE-2021-30465). */
#ifndef KR_AGENT_MOUNTS_H
#define KR_AGENT_MOUNTS_H

#include <stdbool.h>
#include <stdio.h>

#include "kr/error.h"
#include "spec.h"

enum mounts_create {
	MOUNTS_NO_CREATE,	/* every component must exist */
	MOUNTS_CREATE_DIR,	/* missing components become directories */
	MOUNTS_CREATE_FILE,	/* ... except the last, an empty file */
};

/* Open path inside the tree at rootfd (O_PATH, close-on-exec), following
 * symlinks and ".." without ever leaving it.  Returns the fd or -1. */
int mounts_resolve(int rootfd, const char *path, enum mounts_create create,
		   struct kr_err *err);

/* "/proc/self/fd/N": a mount(2) target or source naming an open fd. */
#define MOUNTS_FD_PATH_MAX 32
static inline const char *mounts_fd_path(char buf[MOUNTS_FD_PATH_MAX], int fd)
{
	snprintf(buf, MOUNTS_FD_PATH_MAX, "/proc/self/fd/%d", fd);
	return buf;
}

/* All of spec->mounts in order.  Errors read "mount /data: <cause>". */
int mounts_setup(int rootfd, const struct oci_spec *spec, struct kr_err *err);

/* The spec's mount whose destination is path ("/dev", "/dev/" and "//dev"
 * alike), or NULL. */
const struct oci_mount *mounts_find(const struct oci_spec *spec,
				    const char *path);
bool mounts_path_eq(const char *a, const char *b);
/* "bind"/"rbind" in the options, or type "bind". */
bool mounts_is_bind(const struct oci_mount *m);

/* The per-mount flags (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, atime
 * flags) that path's mount has now.  A bind remount must repeat them: in a
 * user namespace the kernel refuses to drop flags locked by the parent. */
int mounts_get_flags(const char *path, unsigned long *flags);

/* MS_REMOUNT|MS_BIND path with flags; on EPERM retried with the mount's
 * current flags added (minus clear, the flags the spec asked to drop). */
int mounts_remount_bind(const char *path, unsigned long flags,
			unsigned long clear);

/* "rslave" -> MS_SLAVE|MS_REC, ...  Returns -1 for an unknown name. */
int mounts_parse_propagation(const char *name, unsigned long *flags);

#endif
