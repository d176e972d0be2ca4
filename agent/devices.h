/* The container's /dev, built inside its root before pivot_root (as runc):
 * a tmpfs unless the spec mounts one, the default device nodes, the spec's
 * linux.devices, the /dev/fd and stdio links, /dev/ptmx and /dev/shm. */
#ifndef KR_AGENT_DEVICES_H
#define KR_AGENT_DEVICES_H

#include <stdbool.h>

#include "kr/error.h"
#include "spec.h"

/* The tmpfs runc puts at /dev when the spec has no /dev mount:
 * nosuid,strictatime,mode=755,size=65536k. */
int devices_mount_dev(int rootfd, struct kr_err *err);

/* Everything else in /dev (the spec's mounts are in place by now, so
 * /dev/pts is the container's own devpts).  Not called when the spec binds
 * a /dev from outside: that one is complete already. */
int devices_setup(int rootfd, const struct oci_spec *spec, struct kr_err *err);

#endif
