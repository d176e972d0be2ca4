/* The OCI runtime spec (config.json), parsed into plain C structs.
 *
 * Parsed once in the agent (from the JSON bytes of a CreateContainer request)
 * and used by the launch, rootfs, cgroup, capability and seccomp code, none
 * of which touches JSON.  Unknown fields are ignored, as runc does; a field
 * of the wrong type, or a value out of range, is an error naming the field
 * ("process.user.uid: expected an unsigned integer"). */
#ifndef KR_AGENT_SPEC_H
#define KR_AGENT_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kr/error.h"

#define OCI_SPEC_MAX_BYTES (1u << 20)	/* config.json larger than 1 MiB: refused */

struct oci_user {
	uid_t uid;
	gid_t gid;
	gid_t *additional_gids;
	size_t n_additional_gids;
	bool has_umask;
	mode_t umask;
};

/* Capability sets as bitmasks (bit n = capability n, CAP_LAST_CAP <= 63).
 * has_caps false means the spec had no "capabilities" object: then the
 * process keeps no capabilities at all. */
struct oci_caps {
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

struct oci_rlimit {
	int resource;		/* RLIMIT_* */
	uint64_t soft, hard;
};

struct oci_process {
	bool terminal;
	unsigned short console_rows, console_cols;	/* 0 if absent */
	char **args;		/* NULL-terminated, n_args >= 1 */
	size_t n_args;
	char **env;		/* NULL-terminated, "K=V" */
	size_t n_env;
	char *cwd;		/* absolute; "/" if absent */
	struct oci_user user;
	bool has_caps;
	struct oci_caps caps;
	struct oci_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	bool has_oom_score_adj;
	int oom_score_adj;
};

/* A mount with its options already split into mount(2) arguments. */
struct oci_mount {
	char *destination;	/* absolute path inside the container */
	char *type;		/* may be NULL for bind mounts */
	char *source;		/* may be NULL */
	unsigned long flags;	/* MS_* from options (ro, nosuid, bind, ...) */
	unsigned long clear_flags;	/* MS_* named by "rw", "suid", ... */
	unsigned long propagation;	/* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (| MS_REC) or 0 */
	bool bind;		/* "bind" or "rbind" (flags has MS_BIND, and MS_REC for rbind) */
	char *data;		/* remaining options joined with ',' or NULL */
};

struct oci_namespace {
	int type;		/* CLONE_NEWPID, CLONE_NEWNS, ... */
	char *path;		/* join this namespace instead of creating one; may be NULL */
};

struct oci_device {
	char *path;
	char type;		/* 'c', 'b', 'u', 'p' */
	int64_t major, minor;
	bool has_mode;
	mode_t file_mode;
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
};

struct oci_id_mapping {
	uint32_t container_id, host_id, size;
};

/* Resource limits; has_* flags say which fields were present. */
struct oci_resources {
	bool has_memory_limit, has_memory_reservation, has_memory_swap;
	int64_t memory_limit;		/* bytes; -1 = unlimited */
	int64_t memory_reservation;
	int64_t memory_swap;		/* memory+swap, as OCI defines it */
	bool has_cpu_shares, has_cpu_quota, has_cpu_period;
	uint64_t cpu_shares;
	int64_t cpu_quota;		/* us; -1 = unlimited */
	uint64_t cpu_period;		/* us */
	char *cpuset_cpus, *cpuset_mems;	/* NULL if absent */
	bool has_pids_limit;
	int64_t pids_limit;		/* <= 0 = unlimited */
};

/* Seccomp actions, independent of libseccomp's constants (seccomp.c maps). */
enum oci_seccomp_action {
	OCI_SECCOMP_KILL,		/* SCMP_ACT_KILL / SCMP_ACT_KILL_THREAD */
	OCI_SECCOMP_KILL_PROCESS,
	OCI_SECCOMP_TRAP,
	OCI_SECCOMP_ERRNO,
	OCI_SECCOMP_TRACE,
	OCI_SECCOMP_ALLOW,
	OCI_SECCOMP_LOG,
};

enum oci_seccomp_op {
	OCI_SCMP_NE, OCI_SCMP_LT, OCI_SCMP_LE, OCI_SCMP_EQ,
	OCI_SCMP_GE, OCI_SCMP_GT, OCI_SCMP_MASKED_EQ,
};

struct oci_seccomp_arg {
	unsigned index;
	uint64_t value, value_two;
	enum oci_seccomp_op op;
};

struct oci_seccomp_rule {
	char **names;
	size_t n_names;
	enum oci_seccomp_action action;
	bool has_errno_ret;
	unsigned errno_ret;
	struct oci_seccomp_arg *args;
	size_t n_args;
};

struct oci_seccomp {
	enum oci_seccomp_action default_action;
	bool has_default_errno_ret;
	unsigned default_errno_ret;
	char **architectures;	/* "SCMP_ARCH_X86_64", ... */
	size_t n_architectures;
	struct oci_seccomp_rule *rules;
	size_t n_rules;
};

struct oci_sysctl {
	char *key, *value;
};

struct oci_spec {
	char *oci_version;
	char *root_path;	/* "rootfs" by default */
	bool root_readonly;
	char *hostname;		/* NULL if absent */
	struct oci_process process;	/* has_process false => n_args == 0 */
	bool has_process;
	struct oci_mount *mounts;
	size_t n_mounts;
	struct oci_namespace *namespaces;
	size_t n_namespaces;
	struct oci_id_mapping *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct oci_device *devices;
	size_t n_devices;
	struct oci_resources resources;
	char *cgroups_path;	/* NULL if absent */
	struct oci_sysctl *sysctls;
	size_t n_sysctls;
	char **masked_paths;
	size_t n_masked_paths;
	char **readonly_paths;
	size_t n_readonly_paths;
	struct oci_seccomp *seccomp;	/* NULL if absent */
	char *rootfs_propagation;	/* NULL if absent */
};

/* Parse a whole config.json.  The JSON must be strict (no comments, no
 * trailing garbage) and at most OCI_SPEC_MAX_BYTES. */
int spec_parse(const char *json, size_t len, struct oci_spec **out,
	       struct kr_err *err);
/* Parse a lone OCI "process" object (ExecProcess carries one). */
int spec_parse_process(const char *json, size_t len, struct oci_process **out,
		       struct kr_err *err);
/* Parse a LinuxResources object (UpdateContainer carries one). */
int spec_parse_resources(const char *json, size_t len,
			 struct oci_resources *out, struct kr_err *err);
void spec_free(struct oci_spec *spec);
void spec_process_free(struct oci_process *p);
void spec_resources_release(struct oci_resources *r);	/* frees strings inside */

/* Helpers for the launch code. */
bool spec_has_namespace(const struct oci_spec *spec, int clone_flag);
const struct oci_namespace *spec_namespace(const struct oci_spec *spec,
					   int clone_flag);
/* RLIMIT_NOFILE -> "RLIMIT_NOFILE" (for messages). */
const char *spec_rlimit_name(int resource);
/* "K" -> value from a NULL-terminated env array, or NULL. */
const char *spec_getenv(char *const *env, const char *key);

#endif
