/* The "linux" object of the OCI spec: namespaces, id mappings, devices,
 * resources, sysctl, masked and read-only paths, rootfs propagation and
 * seccomp.  Helpers and conventions: spec_internal.h. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "kr/util.h"
#include "spec_internal.h"

#define MAX_NAMESPACES 16
#define MAX_ID_MAPPINGS 340	/* the kernel's limit for uid_map lines */
#define MAX_DEVICES 1024
#define MAX_SYSCTLS 1024
#define MAX_PATHS 1024
#define MAX_SECCOMP_ARCHES 16
#define MAX_SECCOMP_RULES 4096
#define MAX_SECCOMP_NAMES 1024
#define MAX_SECCOMP_ARGS 16
#define SECCOMP_MAX_ARG_INDEX 6	/* syscalls take six arguments */

/* ---- linux: namespaces, id mappings, devices ----------------------------- */

static const struct {
	const char *name;
	int flag;
} ns_types[] = {
	{ "pid", CLONE_NEWPID },	{ "network", CLONE_NEWNET },
	{ "mount", CLONE_NEWNS },	{ "ipc", CLONE_NEWIPC },
	{ "uts", CLONE_NEWUTS },	{ "user", CLONE_NEWUSER },
	{ "cgroup", CLONE_NEWCGROUP },
#ifdef CLONE_NEWTIME
	{ "time", CLONE_NEWTIME },
#endif
};

static int parse_namespace(struct json_object *obj, const char *path,
			   struct oci_spec *spec, size_t idx,
			   struct kr_err *err)
{
	struct oci_namespace *ns = &spec->namespaces[idx];
	struct json_object *v;
	struct fpath fp;
	const char *type;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return sj_invalid(err, path, "expected an object");
	r = sj_member(obj, path, "type", json_type_string, &v, err);
	if (sj_require(r, path, "type", err) < 0)
		return -1;
	type = json_object_get_string(v);
	ns->type = 0;
	for (size_t i = 0; i < KR_ARRAY_SIZE(ns_types); i++)
		if (!strcmp(ns_types[i].name, type))
			ns->type = ns_types[i].flag;
	fp_key(&fp, path, "type");
	if (!ns->type)
		return sj_invalid(err, fp.s, "unknown namespace \"%s\"", type);
	for (size_t j = 0; j < idx; j++)
		if (spec->namespaces[j].type == ns->type)
			return sj_invalid(err, fp.s, "duplicate namespace \"%s\"",
					  type);
	if ((r = sj_get_string(obj, path, "path", &ns->path, err)) < 0)
		return -1;
	if (r && sj_check_str(ns->path, fp_key(&fp, path, "path"), STRV_ABSOLUTE,
			      err) < 0)
		return -1;
	return 0;
}

static int parse_namespaces(struct json_object *lnx, struct oci_spec *spec,
			    struct kr_err *err)
{
	struct json_object *arr;
	struct fpath ep;
	size_t n;
	int r;

	r = sj_get_array(lnx, "linux", "namespaces", MAX_NAMESPACES, &arr, &n, err);
	if (r <= 0)
		return r;
	spec->namespaces = kr_xcalloc(n, sizeof(*spec->namespaces));
	spec->n_namespaces = n;
	for (size_t i = 0; i < n; i++)
		if (parse_namespace(json_object_array_get_idx(arr, i),
				    fp_idx(&ep, "linux.namespaces", i), spec, i,
				    err) < 0)
			return -1;
	return 0;
}

static int get_required_u32(struct json_object *obj, const char *path,
			    const char *key, uint32_t *out, struct kr_err *err)
{
	return sj_require(sj_get_u32(obj, path, key, out, err), path, key, err);
}

static int parse_id_mapping(struct json_object *obj, const char *path,
			    struct oci_id_mapping *m, struct kr_err *err)
{
	struct fpath fp;

	if (!json_object_is_type(obj, json_type_object))
		return sj_invalid(err, path, "expected an object");
	if (get_required_u32(obj, path, "containerID", &m->container_id,
			     err) < 0 ||
	    get_required_u32(obj, path, "hostID", &m->host_id, err) < 0 ||
	    get_required_u32(obj, path, "size", &m->size, err) < 0)
		return -1;
	if (m->size == 0)
		return sj_invalid(err, fp_key(&fp, path, "size"), "must not be 0");
	return 0;
}

static int parse_id_mappings(struct json_object *lnx, const char *key,
			     struct oci_id_mapping **out, size_t *n_out,
			     struct kr_err *err)
{
	struct json_object *arr;
	struct fpath fp, ep;
	size_t n;
	int r;

	r = sj_get_array(lnx, "linux", key, MAX_ID_MAPPINGS, &arr, &n, err);
	if (r <= 0)
		return r;
	fp_key(&fp, "linux", key);
	*out = kr_xcalloc(n, sizeof(**out));
	*n_out = n;
	for (size_t i = 0; i < n; i++)
		if (parse_id_mapping(json_object_array_get_idx(arr, i),
				     fp_idx(&ep, fp.s, i), &(*out)[i], err) < 0)
			return -1;
	return 0;
}

static int parse_device_type(struct json_object *obj, const char *path,
			     struct oci_device *d, struct kr_err *err)
{
	struct json_object *v;
	struct fpath fp;
	const char *t;

	if (sj_require(sj_member(obj, path, "type", json_type_string, &v, err),
		       path, "type", err) < 0)
		return -1;
	t = json_object_get_string(v);
	if (strlen(t) != 1 || !strchr("cbup", t[0]))
		return sj_invalid(err, fp_key(&fp, path, "type"),
				  "unknown device type \"%s\"", t);
	d->type = t[0];
	return 0;
}

static int parse_device_ids(struct json_object *obj, const char *path,
			    struct oci_device *d, struct kr_err *err)
{
	static const char what[] = "an integer in [0, 4294967295]";
	uint32_t id = 0;
	int rmaj, rmin, r;

	rmaj = sj_get_int(obj, path, "major", 0, UINT32_MAX, what, &d->major, err);
	if (rmaj < 0)
		return -1;
	rmin = sj_get_int(obj, path, "minor", 0, UINT32_MAX, what, &d->minor, err);
	if (rmin < 0)
		return -1;
	/* Only FIFOs have no device number. */
	if (d->type != 'p' && (sj_require(rmaj, path, "major", err) < 0 ||
			       sj_require(rmin, path, "minor", err) < 0))
		return -1;
	if ((r = sj_get_u32(obj, path, "uid", &id, err)) < 0)
		return -1;
	d->has_uid = r;
	d->uid = id;
	if ((r = sj_get_u32(obj, path, "gid", &id, err)) < 0)
		return -1;
	d->has_gid = r;
	d->gid = id;
	return 0;
}

static int parse_device(struct json_object *obj, const char *path,
			struct oci_device *d, struct kr_err *err)
{
	struct fpath fp;
	uint64_t mode;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return sj_invalid(err, path, "expected an object");
	r = sj_get_string(obj, path, "path", &d->path, err);
	if (sj_require(r, path, "path", err) < 0 ||
	    sj_check_str(d->path, fp_key(&fp, path, "path"), STRV_ABSOLUTE,
			 err) < 0)
		return -1;
	if (parse_device_type(obj, path, d, err) < 0 ||
	    parse_device_ids(obj, path, d, err) < 0)
		return -1;
	r = sj_get_uint(obj, path, "fileMode", 07777, "an integer in [0, 07777]",
			&mode, err);
	if (r < 0)
		return -1;
	d->has_mode = r;
	d->file_mode = r ? (mode_t)mode : 0;
	return 0;
}

static int parse_devices(struct json_object *lnx, struct oci_spec *spec,
			 struct kr_err *err)
{
	struct json_object *arr;
	struct fpath ep;
	size_t n;
	int r;

	r = sj_get_array(lnx, "linux", "devices", MAX_DEVICES, &arr, &n, err);
	if (r <= 0)
		return r;
	spec->devices = kr_xcalloc(n, sizeof(*spec->devices));
	spec->n_devices = n;
	for (size_t i = 0; i < n; i++)
		if (parse_device(json_object_array_get_idx(arr, i),
				 fp_idx(&ep, "linux.devices", i),
				 &spec->devices[i], err) < 0)
			return -1;
	return 0;
}

/* ---- linux.resources ------------------------------------------------------ */

static int get_i64_flag(struct json_object *obj, const char *parent,
			const char *key, bool *has, int64_t *out,
			struct kr_err *err)
{
	int r = sj_get_int(obj, parent, key, INT64_MIN, INT64_MAX, SJ_I64, out,
			   err);

	if (r >= 0)
		*has = r;
	return r;
}

static int get_u64_flag(struct json_object *obj, const char *parent,
			const char *key, bool *has, uint64_t *out,
			struct kr_err *err)
{
	int r = sj_get_uint(obj, parent, key, UINT64_MAX, SJ_U64, out, err);

	if (r >= 0)
		*has = r;
	return r;
}

static int parse_memory(struct json_object *res, const char *parent,
			struct oci_resources *r, struct kr_err *err)
{
	struct json_object *obj;
	struct fpath fp;
	int rc;

	rc = sj_member(res, parent, "memory", json_type_object, &obj, err);
	if (rc <= 0)
		return rc;
	fp_key(&fp, parent, "memory");
	if (get_i64_flag(obj, fp.s, "limit", &r->has_memory_limit,
			 &r->memory_limit, err) < 0 ||
	    get_i64_flag(obj, fp.s, "reservation", &r->has_memory_reservation,
			 &r->memory_reservation, err) < 0 ||
	    get_i64_flag(obj, fp.s, "swap", &r->has_memory_swap,
			 &r->memory_swap, err) < 0)
		return -1;
	return 0;
}

static int parse_cpu(struct json_object *res, const char *parent,
		     struct oci_resources *r, struct kr_err *err)
{
	struct json_object *obj;
	struct fpath fp;
	int rc;

	rc = sj_member(res, parent, "cpu", json_type_object, &obj, err);
	if (rc <= 0)
		return rc;
	fp_key(&fp, parent, "cpu");
	if (get_u64_flag(obj, fp.s, "shares", &r->has_cpu_shares,
			 &r->cpu_shares, err) < 0 ||
	    get_i64_flag(obj, fp.s, "quota", &r->has_cpu_quota,
			 &r->cpu_quota, err) < 0 ||
	    get_u64_flag(obj, fp.s, "period", &r->has_cpu_period,
			 &r->cpu_period, err) < 0 ||
	    sj_get_string(obj, fp.s, "cpus", &r->cpuset_cpus, err) < 0 ||
	    sj_get_string(obj, fp.s, "mems", &r->cpuset_mems, err) < 0)
		return -1;
	return 0;
}

static int parse_pids(struct json_object *res, const char *parent,
		      struct oci_resources *r, struct kr_err *err)
{
	struct json_object *obj;
	struct fpath fp;
	int rc;

	rc = sj_member(res, parent, "pids", json_type_object, &obj, err);
	if (rc <= 0)
		return rc;
	fp_key(&fp, parent, "pids");
	/* "limit" is required by the spec, but absent simply means no limit. */
	return get_i64_flag(obj, fp.s, "limit", &r->has_pids_limit,
			    &r->pids_limit, err) < 0 ? -1 : 0;
}

/* devices, blockIO, hugepageLimits, network, rdma and unified are left to
 * the defaults of the guest's cgroup: the VM is the isolation boundary. */
int spec_parse_resources_obj(struct json_object *res, const char *path,
			     struct oci_resources *r, struct kr_err *err)
{
	if (parse_memory(res, path, r, err) < 0 ||
	    parse_cpu(res, path, r, err) < 0 ||
	    parse_pids(res, path, r, err) < 0)
		return -1;
	return 0;
}

/* ---- linux.seccomp -------------------------------------------------------- */

static const struct {
	const char *name;
	enum oci_seccomp_action action;
} seccomp_actions[] = {
	{ "SCMP_ACT_KILL", OCI_SECCOMP_KILL },
	{ "SCMP_ACT_KILL_THREAD", OCI_SECCOMP_KILL },
	{ "SCMP_ACT_KILL_PROCESS", OCI_SECCOMP_KILL_PROCESS },
	{ "SCMP_ACT_TRAP", OCI_SECCOMP_TRAP },
	{ "SCMP_ACT_ERRNO", OCI_SECCOMP_ERRNO },
	{ "SCMP_ACT_TRACE", OCI_SECCOMP_TRACE },
	{ "SCMP_ACT_ALLOW", OCI_SECCOMP_ALLOW },
	{ "SCMP_ACT_LOG", OCI_SECCOMP_LOG },
};

static const struct {
	const char *name;
	enum oci_seccomp_op op;
} seccomp_ops[] = {
	{ "SCMP_CMP_NE", OCI_SCMP_NE },	{ "SCMP_CMP_LT", OCI_SCMP_LT },
	{ "SCMP_CMP_LE", OCI_SCMP_LE },	{ "SCMP_CMP_EQ", OCI_SCMP_EQ },
	{ "SCMP_CMP_GE", OCI_SCMP_GE },	{ "SCMP_CMP_GT", OCI_SCMP_GT },
	{ "SCMP_CMP_MASKED_EQ", OCI_SCMP_MASKED_EQ },
};

static int get_action(struct json_object *obj, const char *parent,
		      const char *key, enum oci_seccomp_action *out,
		      struct kr_err *err)
{
	struct json_object *v;
	struct fpath fp;
	const char *name;

	if (sj_require(sj_member(obj, parent, key, json_type_string, &v, err),
		       parent, key, err) < 0)
		return -1;
	name = json_object_get_string(v);
	for (size_t i = 0; i < KR_ARRAY_SIZE(seccomp_actions); i++) {
		if (!strcmp(seccomp_actions[i].name, name)) {
			*out = seccomp_actions[i].action;
			return 0;
		}
	}
	return sj_invalid(err, fp_key(&fp, parent, key), "unknown action \"%s\"",
			  name);
}

/* SECCOMP_RET_DATA holds 16 bits. */
static int get_errno_ret(struct json_object *obj, const char *parent,
			 const char *key, bool *has, unsigned *out,
			 struct kr_err *err)
{
	uint64_t v;
	int r = sj_get_uint(obj, parent, key, UINT16_MAX, SJ_U16, &v, err);

	if (r < 0)
		return -1;
	*has = r;
	*out = r ? (unsigned)v : 0;
	return 0;
}

static int parse_seccomp_arg(struct json_object *obj, const char *path,
			     struct oci_seccomp_arg *a, struct kr_err *err)
{
	struct json_object *v;
	struct fpath fp;
	uint64_t idx;
	const char *op;
	size_t i;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return sj_invalid(err, path, "expected an object");
	r = sj_get_uint(obj, path, "index", SECCOMP_MAX_ARG_INDEX - 1,
			"an integer in [0, 5]", &idx, err);
	if (sj_require(r, path, "index", err) < 0)
		return -1;
	a->index = (unsigned)idx;
	if (sj_get_uint(obj, path, "value", UINT64_MAX, SJ_U64, &a->value,
			err) < 0 ||
	    sj_get_uint(obj, path, "valueTwo", UINT64_MAX, SJ_U64, &a->value_two,
			err) < 0)
		return -1;
	if (sj_require(sj_member(obj, path, "op", json_type_string, &v, err),
		       path, "op", err) < 0)
		return -1;
	op = json_object_get_string(v);
	for (i = 0; i < KR_ARRAY_SIZE(seccomp_ops); i++)
		if (!strcmp(seccomp_ops[i].name, op))
			break;
	if (i == KR_ARRAY_SIZE(seccomp_ops))
		return sj_invalid(err, fp_key(&fp, path, "op"),
				  "unknown operator \"%s\"", op);
	a->op = seccomp_ops[i].op;
	return 0;
}

static int parse_seccomp_rule(struct json_object *obj, const char *path,
			      struct oci_seccomp_rule *rule, struct kr_err *err)
{
	struct json_object *arr;
	struct fpath fp, ep;
	size_t n;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return sj_invalid(err, path, "expected an object");
	r = sj_get_strv(obj, path, "names", MAX_SECCOMP_NAMES, STRV_NONEMPTY,
			&rule->names, &rule->n_names, err);
	if (sj_require(r, path, "names", err) < 0)
		return -1;
	if (rule->n_names == 0)
		return sj_invalid(err, fp_key(&fp, path, "names"),
				  "must not be empty");
	if (get_action(obj, path, "action", &rule->action, err) < 0 ||
	    get_errno_ret(obj, path, "errnoRet", &rule->has_errno_ret,
			  &rule->errno_ret, err) < 0)
		return -1;
	r = sj_get_array(obj, path, "args", MAX_SECCOMP_ARGS, &arr, &n, err);
	if (r <= 0)
		return r;
	fp_key(&fp, path, "args");
	rule->args = kr_xcalloc(n, sizeof(*rule->args));
	rule->n_args = n;
	for (size_t i = 0; i < n; i++)
		if (parse_seccomp_arg(json_object_array_get_idx(arr, i),
				      fp_idx(&ep, fp.s, i), &rule->args[i],
				      err) < 0)
			return -1;
	return 0;
}

static int parse_seccomp_rules(struct json_object *obj, const char *path,
			       struct oci_seccomp *sc, struct kr_err *err)
{
	struct json_object *arr;
	struct fpath fp, ep;
	size_t n;
	int r;

	r = sj_get_array(obj, path, "syscalls", MAX_SECCOMP_RULES, &arr, &n, err);
	if (r <= 0)
		return r;
	fp_key(&fp, path, "syscalls");
	sc->rules = kr_xcalloc(n, sizeof(*sc->rules));
	sc->n_rules = n;
	for (size_t i = 0; i < n; i++)
		if (parse_seccomp_rule(json_object_array_get_idx(arr, i),
				       fp_idx(&ep, fp.s, i), &sc->rules[i],
				       err) < 0)
			return -1;
	return 0;
}

static void seccomp_free(struct oci_seccomp *sc)
{
	if (!sc)
		return;
	sj_strv_free(sc->architectures, sc->n_architectures);
	for (size_t i = 0; i < sc->n_rules; i++) {
		sj_strv_free(sc->rules[i].names, sc->rules[i].n_names);
		free(sc->rules[i].args);
	}
	free(sc->rules);
	free(sc);
}

/* Architecture names are checked by seccomp.c, which knows libseccomp's. */
static int parse_seccomp(struct json_object *lnx, struct oci_spec *spec,
			 struct kr_err *err)
{
	static const char path[] = "linux.seccomp";
	struct json_object *obj;
	struct oci_seccomp *sc;
	int r;

	r = sj_member(lnx, "linux", "seccomp", json_type_object, &obj, err);
	if (r <= 0)
		return r;
	sc = spec->seccomp = kr_xcalloc(1, sizeof(*sc));
	if (get_action(obj, path, "defaultAction", &sc->default_action,
		       err) < 0 ||
	    get_errno_ret(obj, path, "defaultErrnoRet",
			  &sc->has_default_errno_ret, &sc->default_errno_ret,
			  err) < 0 ||
	    sj_get_strv(obj, path, "architectures", MAX_SECCOMP_ARCHES,
			STRV_NONEMPTY, &sc->architectures, &sc->n_architectures,
			err) < 0)
		return -1;
	return parse_seccomp_rules(obj, path, sc, err);
}

/* ---- linux: the rest ------------------------------------------------------ */

static int parse_sysctl(struct json_object *lnx, struct oci_spec *spec,
			struct kr_err *err)
{
	struct json_object *obj;
	struct fpath fp;
	size_t n, i = 0;
	int r;

	r = sj_member(lnx, "linux", "sysctl", json_type_object, &obj, err);
	if (r <= 0)
		return r;
	n = (size_t)json_object_object_length(obj);
	if (n > MAX_SYSCTLS)
		return sj_invalid(err, "linux.sysctl",
				  "too many entries (%zu, at most %d)", n,
				  MAX_SYSCTLS);
	spec->sysctls = kr_xcalloc(n, sizeof(*spec->sysctls));
	spec->n_sysctls = n;
	json_object_object_foreach(obj, key, val) {
		fp_key(&fp, "linux.sysctl", key);
		if (!key[0])
			return sj_invalid(err, fp.s, "empty key");
		if (!val)
			return sj_invalid(err, fp.s, "expected a string");
		spec->sysctls[i].key = kr_xstrdup(key);
		if (sj_to_string(val, fp.s, &spec->sysctls[i].value, err) < 0)
			return -1;
		i++;
	}
	return 0;
}

static int parse_rootfs_propagation(struct json_object *lnx,
				    struct oci_spec *spec, struct kr_err *err)
{
	unsigned long flag;
	int r = sj_get_string(lnx, "linux", "rootfsPropagation",
			      &spec->rootfs_propagation, err);

	if (r <= 0)
		return r;
	if (!spec->rootfs_propagation[0]) {	/* runc: "" = unset */
		free(spec->rootfs_propagation);
		spec->rootfs_propagation = NULL;
		return 0;
	}
	if (spec_propagation_flag(spec->rootfs_propagation, &flag))
		return 0;
	return sj_invalid(err, "linux.rootfsPropagation",
			  "unknown propagation \"%s\"", spec->rootfs_propagation);
}

int spec_parse_linux(struct json_object *root, struct oci_spec *spec,
		     struct kr_err *err)
{
	struct json_object *lnx, *res;
	int r;

	if ((r = sj_member(root, "", "linux", json_type_object, &lnx, err)) <= 0)
		return r;
	if (parse_namespaces(lnx, spec, err) < 0 ||
	    parse_id_mappings(lnx, "uidMappings", &spec->uid_mappings,
			      &spec->n_uid_mappings, err) < 0 ||
	    parse_id_mappings(lnx, "gidMappings", &spec->gid_mappings,
			      &spec->n_gid_mappings, err) < 0 ||
	    parse_devices(lnx, spec, err) < 0)
		return -1;
	r = sj_member(lnx, "linux", "resources", json_type_object, &res, err);
	if (r < 0)
		return -1;
	if (r > 0 && spec_parse_resources_obj(res, "linux.resources",
					      &spec->resources, err) < 0)
		return -1;
	if (sj_get_string(lnx, "linux", "cgroupsPath", &spec->cgroups_path,
			  err) < 0 ||
	    parse_sysctl(lnx, spec, err) < 0 ||
	    sj_get_strv(lnx, "linux", "maskedPaths", MAX_PATHS, STRV_ABSOLUTE,
			&spec->masked_paths, &spec->n_masked_paths, err) < 0 ||
	    sj_get_strv(lnx, "linux", "readonlyPaths", MAX_PATHS, STRV_ABSOLUTE,
			&spec->readonly_paths, &spec->n_readonly_paths, err) < 0 ||
	    parse_rootfs_propagation(lnx, spec, err) < 0)
		return -1;
	return parse_seccomp(lnx, spec, err);
}

void spec_linux_release(struct oci_spec *spec)
{
	for (size_t i = 0; i < spec->n_namespaces; i++)
		free(spec->namespaces[i].path);
	free(spec->namespaces);
	free(spec->uid_mappings);
	free(spec->gid_mappings);
	for (size_t i = 0; i < spec->n_devices; i++)
		free(spec->devices[i].path);
	free(spec->devices);
	spec_resources_release(&spec->resources);
	free(spec->cgroups_path);
	for (size_t i = 0; i < spec->n_sysctls; i++) {
		free(spec->sysctls[i].key);
		free(spec->sysctls[i].value);
	}
	free(spec->sysctls);
	sj_strv_free(spec->masked_paths, spec->n_masked_paths);
	sj_strv_free(spec->readonly_paths, spec->n_readonly_paths);
	seccomp_free(spec->seccomp);
	free(spec->rootfs_propagation);
}
