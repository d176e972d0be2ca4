/* The container's root file system and mounts, set up by the container's
 * init in its own mount namespace before it execs the user's process.
 *
 * Order (as runc/crun): make "/" private/slave so nothing propagates back
 * to the agent; mount the rootfs (overlay of a read-only lower and a writable
 * upper in the container's state dir, or a bind of the given directory);
 * the spec's mounts in order; /dev (tmpfs + default device nodes, the spec's
 * devices, /dev/pts, /dev/ptmx, /dev/fd, stdin/out/err links, /dev/shm);
 * pivot_root; masked paths; read-only paths; finally a read-only root if
 * asked. */
#ifndef KR_AGENT_ROOTFS_H
#define KR_AGENT_ROOTFS_H

#include <stdbool.h>

#include "kr/error.h"
#include "spec.h"

struct rootfs_config {
	const struct oci_spec *spec;
	const char *source;	/* directory holding the container's files */
	bool overlay;		/* true: overlay with source as lower layer */
	const char *state_dir;	/* container's private dir: upper/, work/, rootfs/ */
};

/* Runs in the container init, after unshare(CLONE_NEWNS).  On return the
 * process's root is the container's root and cwd is "/".  Errors name the
 * mount that failed: "mount /data: No such file or directory". */
int rootfs_setup(const struct rootfs_config *cfg, struct kr_err *err);

/* After pivot (needs /proc): the spec's masked and read-only paths and the
 * read-only root remount.  Split out because sysctls must be written between
 * the two steps. */
int rootfs_finalize(const struct oci_spec *spec, struct kr_err *err);

/* Remove the container's state dir leftovers (upper/work) on the agent side
 * after the container is gone. */
int rootfs_cleanup(const char *state_dir, struct kr_err *err);

#endif
