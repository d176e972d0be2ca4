/* Process confinement applied in the container's init (and exec'd processes)
 * right before execve: capabilities, no_new_privileges, seccomp, rlimits,
 * user and groups.  Each is a separate file (caps.c, seccomp.c, user.c);
 * this header is their shared interface.  All functions are called in a
 * single-threaded forked child and must not depend on agent state. */
#ifndef KR_AGENT_SECURITY_H
#define KR_AGENT_SECURITY_H

#include "kr/error.h"
#include "spec.h"

/* Capability names ("CAP_SYS_ADMIN") <-> numbers; used by spec.c. */
int caps_from_name(const char *name);	/* -1 if unknown */
const char *caps_name(int cap);

/* Drop every capability not in the bounding set from the bounding set
 * (PR_CAPBSET_DROP).  Needs CAP_SETPCAP: call before changing user. */
int caps_apply_bounding(const struct oci_caps *caps, struct kr_err *err);
/* Set effective/permitted/inheritable with capset(2) and raise the ambient
 * set.  Call after switching user (with PR_SET_KEEPCAPS set). */
int caps_apply(const struct oci_caps *caps, struct kr_err *err);

/* Switch to the spec's user: setgroups(additional_gids), setresgid,
 * setresuid, keeping capabilities across the uid change for caps_apply();
 * and the umask if given. */
int user_apply(const struct oci_user *user, struct kr_err *err);

int rlimits_apply(const struct oci_process *p, struct kr_err *err);

/* Build a seccomp filter from the spec with libseccomp and load it.
 * Syscall names unknown to libseccomp are skipped (as runc does) at debug
 * level; an unknown architecture or action is an error. */
int seccomp_apply(const struct oci_seccomp *sc, struct kr_err *err);
/* Build and export the filter as BPF without loading it (tests, and the
 * agent checks a profile at create time so errors surface early). */
int seccomp_check(const struct oci_seccomp *sc, struct kr_err *err);

#endif
