/* The container process's identity (groups, gid, uid, umask) and rlimits. */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/util.h"
#include "security.h"

/* In a user namespace whose /proc/self/setgroups says "deny", setgroups(2)
 * always fails; with no supplementary groups asked for, that is fine. */
static bool setgroups_denied(void)
{
	char *text = NULL;
	bool deny;

	if (kr_read_file("/proc/self/setgroups", 64, &text, NULL, NULL) < 0)
		return false;
	deny = strncmp(text, "deny", 4) == 0;
	free(text);
	return deny;
}

static int apply_groups(const struct oci_user *user, struct kr_err *err)
{
	/* Always call it: with none asked for, this drops the agent's own
	 * supplementary groups (root's, in the guest). */
	if (setgroups(user->n_additional_gids,
		      user->n_additional_gids ? user->additional_gids : NULL) == 0)
		return 0;
	if (errno == EPERM && user->n_additional_gids == 0 && setgroups_denied())
		return 0;
	return kr_err_sys(err, "setgroups");
}

int user_apply(const struct oci_user *user, struct kr_err *err)
{
	if (apply_groups(user, err) < 0)
		return -1;
	if (setresgid(user->gid, user->gid, user->gid) < 0)
		return kr_err_sys(err, "setresgid %u", (unsigned)user->gid);
	/* Keep the permitted set across the uid change so that caps_apply()
	 * can still hand a non-root process the capabilities it was given. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return kr_err_sys(err, "prctl PR_SET_KEEPCAPS");
	if (setresuid(user->uid, user->uid, user->uid) < 0)
		return kr_err_sys(err, "setresuid %u", (unsigned)user->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return kr_err_sys(err, "prctl PR_SET_KEEPCAPS");
	if (user->has_umask)
		umask(user->umask & 0777);
	return 0;
}

int rlimits_apply(const struct oci_process *p, struct kr_err *err)
{
	for (size_t i = 0; i < p->n_rlimits; i++) {
		const struct oci_rlimit *rl = &p->rlimits[i];
		struct rlimit lim = { .rlim_cur = rl->soft, .rlim_max = rl->hard };

		if (setrlimit(rl->resource, &lim) < 0)
			return kr_err_sys(err, "setrlimit %s",
					  spec_rlimit_name(rl->resource));
	}
	return 0;
}
