/* Shared by the C integration tests: start a kata-agent on a Unix socket in
 * a private mount namespace with a throw-away state dir (tmpfs) and a
 * unique cgroup prefix, build busybox bundles, and check for leaks. */
#ifndef KR_AGENT_HARNESS_H
#define KR_AGENT_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

struct harness {
	char dir[256];		/* everything lives under here */
	char sock[300];
	char state[300];
	char prefix[64];	/* cgroup prefix */
	pid_t agent_pid;
};

/* Start the agent (path from $KR_AGENT or build/kata-agent). */
int harness_start(struct harness *h);
/* Stop it (DestroySandbox if possible, else SIGKILL) and remove dir. */
void harness_stop(struct harness *h);

/* Make DIR/rootfs (busybox + applets + the probe if $KR_PROBE exists) and
 * DIR/config.json for `args` (a JSON array text, e.g. "[\"sh\",\"-c\",\"x\"]")
 * with optional extra JSON fragments inserted into "process" and "linux". */
int harness_bundle(const char *dir, const char *args_json, bool terminal,
		   const char *process_extra, const char *linux_extra,
		   const char *top_extra);

/* Appended to the default mounts of the next bundles (",{...}"). */
extern const char *harness_extra_mounts;

/* Leak checks: 0 if nothing is left. Print what is found. */
int harness_count_mounts(const char *needle);
int harness_count_cgroups(const char *prefix);
int harness_count_children(pid_t parent);

#endif
