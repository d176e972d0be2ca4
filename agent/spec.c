/* OCI runtime spec (config.json) parser: JSON bytes -> struct oci_spec.
 *
 * The bytes come from the host over the agent channel, and inside the guest
 * the host is the only one who can send them, but the parser is still
 * written as if the input were hostile: bounded size, depth and counts,
 * strict JSON, every integer range-checked, every error naming the field
 * ("mounts[2].destination: must be an absolute path").
 *
 * Three files: spec_json.c (strict JSON and typed accessors), this one (the
 * top level, process and mounts, the public API) and spec_linux.c (the
 * "linux" object).  One function per spec object.  Arrays are allocated at
 * their final size and their count set before the elements are filled, so
 * that on any error the free functions can release a half-built struct. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "kr/util.h"
#include "security.h"
#include "spec_internal.h"

#define MAX_ARGS 4096
#define MAX_ENV 4096
#define MAX_MOUNTS 1024
#define MAX_MOUNT_OPTIONS 64
#define MAX_MOUNT_DATA 4095	/* mount(2) copies one page of data */
#define MAX_GIDS 65536		/* NGROUPS_MAX */
#define MAX_CAPS 64
#define MAX_RLIMITS 32

/* ---- process ------------------------------------------------------------- */

static void user_release(struct oci_user *u)
{
	free(u->additional_gids);
	u->additional_gids = NULL;
	u->n_additional_gids = 0;
}

static int parse_gids(struct json_object *obj, const char *parent,
		      struct oci_user *u, struct kr_err *err)
{
	struct json_object *arr;
	struct fpath fp, ep;
	size_t n;
	uint64_t g;
	int r;

	r = sj_get_array(obj, parent, "additionalGids", MAX_GIDS, &arr, &n, err);
	if (r <= 0)
		return r;
	fp_key(&fp, parent, "additionalGids");
	u->additional_gids = kr_xcalloc(n, sizeof(gid_t));
	u->n_additional_gids = n;
	for (size_t i = 0; i < n; i++) {
		fp_idx(&ep, fp.s, i);
		if (sj_to_uint(json_object_array_get_idx(arr, i), ep.s,
			       UINT32_MAX - 1, SJ_U32, &g, err) < 0)
			return -1;
		u->additional_gids[i] = (gid_t)g;
	}
	return 0;
}

static int parse_user(struct json_object *proc, const char *parent,
		      struct oci_user *u, struct kr_err *err)
{
	struct json_object *obj;
	struct fpath fp, kp;
	uint32_t id = 0;
	uint64_t mask = 0;
	int r;

	r = sj_member(proc, parent, "user", json_type_object, &obj, err);
	if (r <= 0)
		return r;
	fp_key(&fp, parent, "user");
	/* (uid_t)-1 means "leave unchanged" to setresuid(): as a spec value
	 * it would silently keep the agent's root identity. */
	if ((r = sj_get_u32(obj, fp.s, "uid", &id, err)) < 0)
		return -1;
	if (r && id == (uint32_t)-1)
		return sj_invalid(err, fp_key(&kp, fp.s, "uid"),
				  "4294967295 is not a valid user id");
	u->uid = r ? id : 0;
	if ((r = sj_get_u32(obj, fp.s, "gid", &id, err)) < 0)
		return -1;
	if (r && id == (uint32_t)-1)
		return sj_invalid(err, fp_key(&kp, fp.s, "gid"),
				  "4294967295 is not a valid group id");
	u->gid = r ? id : 0;
	r = sj_get_uint(obj, fp.s, "umask", 0777, "an integer in [0, 0777]",
			&mask, err);
	if (r < 0)
		return -1;
	u->has_umask = r;
	u->umask = r ? (mode_t)mask : 0;
	return parse_gids(obj, fp.s, u, err);
}

static int parse_console(struct json_object *proc, const char *parent,
			 struct oci_process *p, struct kr_err *err)
{
	struct json_object *obj;
	struct fpath fp;
	uint64_t v;
	int r;

	if ((r = sj_member(proc, parent, "consoleSize", json_type_object, &obj,
			   err)) <= 0)
		return r;
	fp_key(&fp, parent, "consoleSize");
	r = sj_get_uint(obj, fp.s, "height", USHRT_MAX, SJ_U16, &v, err);
	if (r < 0)
		return -1;
	p->console_rows = r ? (unsigned short)v : 0;
	r = sj_get_uint(obj, fp.s, "width", USHRT_MAX, SJ_U16, &v, err);
	if (r < 0)
		return -1;
	p->console_cols = r ? (unsigned short)v : 0;
	return 0;
}

static int parse_capset(struct json_object *obj, const char *parent,
			const char *key, uint64_t *set, struct kr_err *err)
{
	struct json_object *arr, *v;
	struct fpath fp, ep;
	size_t n;
	int r, cap;

	*set = 0;
	if ((r = sj_get_array(obj, parent, key, MAX_CAPS, &arr, &n, err)) <= 0)
		return r;
	fp_key(&fp, parent, key);
	for (size_t i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		fp_idx(&ep, fp.s, i);
		if (!json_object_is_type(v, json_type_string))
			return sj_invalid(err, ep.s, "expected a string");
		if (sj_has_nul(v))
			return sj_invalid(err, ep.s,
					  "string contains a NUL character");
		cap = caps_from_name(json_object_get_string(v));
		if (cap < 0 || cap > 63)
			return sj_invalid(err, ep.s, "unknown capability \"%s\"",
					  json_object_get_string(v));
		*set |= 1ull << cap;
	}
	return 0;
}

static int parse_caps(struct json_object *proc, const char *parent,
		      struct oci_process *p, struct kr_err *err)
{
	struct json_object *obj;
	struct fpath fp;
	int r;

	if ((r = sj_member(proc, parent, "capabilities", json_type_object, &obj,
			   err)) <= 0)
		return r;
	fp_key(&fp, parent, "capabilities");
	p->has_caps = true;
	if (parse_capset(obj, fp.s, "bounding", &p->caps.bounding, err) < 0 ||
	    parse_capset(obj, fp.s, "effective", &p->caps.effective, err) < 0 ||
	    parse_capset(obj, fp.s, "inheritable", &p->caps.inheritable,
			 err) < 0 ||
	    parse_capset(obj, fp.s, "permitted", &p->caps.permitted, err) < 0 ||
	    parse_capset(obj, fp.s, "ambient", &p->caps.ambient, err) < 0)
		return -1;
	return 0;
}

/* Indexed by RLIMIT_*; also names limits in error messages (user.c). */
static const char *const rlimit_names[] = {
	[RLIMIT_CPU] = "RLIMIT_CPU",
	[RLIMIT_FSIZE] = "RLIMIT_FSIZE",
	[RLIMIT_DATA] = "RLIMIT_DATA",
	[RLIMIT_STACK] = "RLIMIT_STACK",
	[RLIMIT_CORE] = "RLIMIT_CORE",
	[RLIMIT_RSS] = "RLIMIT_RSS",
	[RLIMIT_NPROC] = "RLIMIT_NPROC",
	[RLIMIT_NOFILE] = "RLIMIT_NOFILE",
	[RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",
	[RLIMIT_AS] = "RLIMIT_AS",
	[RLIMIT_LOCKS] = "RLIMIT_LOCKS",
	[RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
	[RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE",
	[RLIMIT_NICE] = "RLIMIT_NICE",
	[RLIMIT_RTPRIO] = "RLIMIT_RTPRIO",
	[RLIMIT_RTTIME] = "RLIMIT_RTTIME",
};

const char *spec_rlimit_name(int resource)
{
	if (resource < 0 || (size_t)resource >= KR_ARRAY_SIZE(rlimit_names) ||
	    !rlimit_names[resource])
		return "RLIMIT_?";
	return rlimit_names[resource];
}

static int rlimit_from_name(const char *name)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(rlimit_names); i++)
		if (rlimit_names[i] && !strcmp(rlimit_names[i], name))
			return (int)i;
	return -1;
}

static int parse_rlimit(struct json_object *obj, const char *path,
			struct oci_rlimit *rl, struct kr_err *err)
{
	struct json_object *v;
	struct fpath fp;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return sj_invalid(err, path, "expected an object");
	if (sj_require(sj_member(obj, path, "type", json_type_string, &v, err),
		       path, "type", err) < 0)
		return -1;
	rl->resource = rlimit_from_name(json_object_get_string(v));
	if (rl->resource < 0)
		return sj_invalid(err, fp_key(&fp, path, "type"),
				  "unknown rlimit \"%s\"",
				  json_object_get_string(v));
	r = sj_get_uint(obj, path, "hard", UINT64_MAX, SJ_U64, &rl->hard, err);
	if (sj_require(r, path, "hard", err) < 0)
		return -1;
	r = sj_get_uint(obj, path, "soft", UINT64_MAX, SJ_U64, &rl->soft, err);
	return sj_require(r, path, "soft", err) < 0 ? -1 : 0;
}

static int parse_rlimits(struct json_object *proc, const char *parent,
			 struct oci_process *p, struct kr_err *err)
{
	struct json_object *arr;
	struct fpath fp, ep, tp;
	size_t n;
	int r;

	r = sj_get_array(proc, parent, "rlimits", MAX_RLIMITS, &arr, &n, err);
	if (r <= 0)
		return r;
	fp_key(&fp, parent, "rlimits");
	p->rlimits = kr_xcalloc(n, sizeof(*p->rlimits));
	p->n_rlimits = n;
	for (size_t i = 0; i < n; i++) {
		fp_idx(&ep, fp.s, i);
		if (parse_rlimit(json_object_array_get_idx(arr, i), ep.s,
				 &p->rlimits[i], err) < 0)
			return -1;
		/* The runtime spec requires an error for duplicate types. */
		for (size_t j = 0; j < i; j++) {
			int res = p->rlimits[i].resource;

			if (p->rlimits[j].resource == res)
				return sj_invalid(err, fp_key(&tp, ep.s, "type"),
						  "duplicate rlimit \"%s\"",
						  rlimit_names[res]);
		}
	}
	return 0;
}

static int parse_args_env(struct json_object *obj, const char *parent,
			  struct oci_process *p, struct kr_err *err)
{
	struct fpath fp;
	int r;

	r = sj_get_strv(obj, parent, "args", MAX_ARGS, 0, &p->args, &p->n_args,
			err);
	if (sj_require(r, parent, "args", err) < 0)
		return -1;
	if (p->n_args == 0)
		return sj_invalid(err, fp_key(&fp, parent, "args"),
				  "must not be empty");
	r = sj_get_strv(obj, parent, "env", MAX_ENV, STRV_ENV, &p->env, &p->n_env,
			err);
	if (r < 0)
		return -1;
	if (!p->env)
		p->env = kr_xcalloc(1, sizeof(char *));
	return 0;
}

static int parse_process_fields(struct json_object *obj, const char *parent,
				struct oci_process *p, struct kr_err *err)
{
	struct fpath fp;
	int64_t adj;
	int r;

	if (sj_get_bool(obj, parent, "terminal", &p->terminal, err) < 0 ||
	    parse_console(obj, parent, p, err) < 0 ||
	    parse_user(obj, parent, &p->user, err) < 0 ||
	    parse_args_env(obj, parent, p, err) < 0)
		return -1;
	if ((r = sj_get_string(obj, parent, "cwd", &p->cwd, err)) < 0)
		return -1;
	if (!r)
		p->cwd = kr_xstrdup("/");
	else if (sj_check_str(p->cwd, fp_key(&fp, parent, "cwd"), STRV_ABSOLUTE,
			      err) < 0)
		return -1;
	if (parse_caps(obj, parent, p, err) < 0 ||
	    parse_rlimits(obj, parent, p, err) < 0 ||
	    sj_get_bool(obj, parent, "noNewPrivileges", &p->no_new_privileges,
			err) < 0)
		return -1;
	r = sj_get_int(obj, parent, "oomScoreAdj", -1000, 1000,
		       "an integer in [-1000, 1000]", &adj, err);
	if (r < 0)
		return -1;
	p->has_oom_score_adj = r;
	p->oom_score_adj = r ? (int)adj : 0;
	return 0;
}

static void process_release(struct oci_process *p)
{
	sj_strv_free(p->args, p->n_args);
	sj_strv_free(p->env, p->n_env);
	free(p->cwd);
	user_release(&p->user);
	free(p->rlimits);
	memset(p, 0, sizeof(*p));
}

/* ---- mounts -------------------------------------------------------------- */

struct mount_opt {
	const char *name;
	bool clear;
	unsigned long flag;
};

/* The table runc uses (libcontainer/specconv), plus "defaults" as a no-op
 * (as crun does: passing it on as data makes tmpfs and friends fail). */
static const struct mount_opt mount_opts[] = {
	{ "acl", false, MS_POSIXACL },
	{ "async", true, MS_SYNCHRONOUS },
	{ "atime", true, MS_NOATIME },
	{ "bind", false, MS_BIND },
	{ "defaults", false, 0 },
	{ "dev", true, MS_NODEV },
	{ "diratime", true, MS_NODIRATIME },
	{ "dirsync", false, MS_DIRSYNC },
	{ "exec", true, MS_NOEXEC },
	{ "iversion", false, MS_I_VERSION },
	{ "lazytime", false, MS_LAZYTIME },
	{ "loud", true, MS_SILENT },
	{ "mand", false, MS_MANDLOCK },
	{ "noacl", true, MS_POSIXACL },
	{ "noatime", false, MS_NOATIME },
	{ "nodev", false, MS_NODEV },
	{ "nodiratime", false, MS_NODIRATIME },
	{ "noexec", false, MS_NOEXEC },
	{ "noiversion", true, MS_I_VERSION },
	{ "nolazytime", true, MS_LAZYTIME },
	{ "nomand", true, MS_MANDLOCK },
	{ "norelatime", true, MS_RELATIME },
	{ "nostrictatime", true, MS_STRICTATIME },
	{ "nosuid", false, MS_NOSUID },
	{ "nosymfollow", false, MS_NOSYMFOLLOW },
	{ "rbind", false, MS_BIND | MS_REC },
	{ "relatime", false, MS_RELATIME },
	{ "remount", false, MS_REMOUNT },
	{ "ro", false, MS_RDONLY },
	{ "rw", true, MS_RDONLY },
	{ "silent", false, MS_SILENT },
	{ "strictatime", false, MS_STRICTATIME },
	{ "suid", true, MS_NOSUID },
	{ "symfollow", true, MS_NOSYMFOLLOW },
	{ "sync", false, MS_SYNCHRONOUS },
};

static const struct {
	const char *name;
	unsigned long flag;
} propagations[] = {
	{ "private", MS_PRIVATE },	{ "rprivate", MS_PRIVATE | MS_REC },
	{ "shared", MS_SHARED },	{ "rshared", MS_SHARED | MS_REC },
	{ "slave", MS_SLAVE },		{ "rslave", MS_SLAVE | MS_REC },
	{ "unbindable", MS_UNBINDABLE },
	{ "runbindable", MS_UNBINDABLE | MS_REC },
};

/* runc applies these recursively with mount_setattr(2); we cannot, and
 * passing "rro" on as fs data would be silently ignored by a bind mount,
 * leaving it writable. */
static const char *const recursive_attrs[] = {
	"rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec",
	"rexec", "rnodiratime", "rdiratime", "rrelatime", "rnorelatime",
	"rnoatime", "ratime", "rstrictatime", "rnostrictatime",
	"rnosymfollow", "rsymfollow", "idmap", "ridmap",
};

static bool apply_flag_opt(struct oci_mount *m, const char *o)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(mount_opts); i++) {
		if (strcmp(mount_opts[i].name, o))
			continue;
		/* Later options win, as in mount(8): "ro,rw" is rw. */
		if (mount_opts[i].clear) {
			m->flags &= ~mount_opts[i].flag;
			m->clear_flags |= mount_opts[i].flag;
		} else {
			m->flags |= mount_opts[i].flag;
			m->clear_flags &= ~mount_opts[i].flag;
		}
		return true;
	}
	return false;
}

bool spec_propagation_flag(const char *name, unsigned long *flag)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(propagations); i++) {
		if (!strcmp(propagations[i].name, name)) {
			*flag = propagations[i].flag;
			return true;
		}
	}
	return false;
}

static bool is_recursive_attr(const char *o)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(recursive_attrs); i++)
		if (!strcmp(recursive_attrs[i], o))
			return true;
	return false;
}

/* Append one fs-specific option to data; -1 if it would not fit a page. */
static int append_data(char *data, size_t *len, const char *o)
{
	size_t ol = strlen(o), need = ol + (*len ? 1 : 0);

	if (*len + need > MAX_MOUNT_DATA)
		return -1;
	if (*len)
		data[(*len)++] = ',';
	memcpy(data + *len, o, ol);
	*len += ol;
	data[*len] = '\0';
	return 0;
}

static int parse_mount_options(struct json_object *obj, const char *path,
			       struct oci_mount *m, struct kr_err *err)
{
	struct json_object *arr, *v;
	struct fpath fp, ep;
	char data[MAX_MOUNT_DATA + 1] = "";
	size_t n, dlen = 0;
	const char *o;
	int r;

	r = sj_get_array(obj, path, "options", MAX_MOUNT_OPTIONS, &arr, &n, err);
	if (r <= 0)
		return r;
	fp_key(&fp, path, "options");
	for (size_t i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		fp_idx(&ep, fp.s, i);
		if (!json_object_is_type(v, json_type_string))
			return sj_invalid(err, ep.s, "expected a string");
		if (sj_has_nul(v))
			return sj_invalid(err, ep.s,
					  "string contains a NUL character");
		o = json_object_get_string(v);
		if (apply_flag_opt(m, o) ||
		    spec_propagation_flag(o, &m->propagation))
			continue;
		if (is_recursive_attr(o))
			return sj_invalid(err, ep.s,
					  "mount option \"%s\" is not supported", o);
		if (!o[0])
			continue;
		if (append_data(data, &dlen, o) < 0)
			return sj_invalid(err, fp.s,
					  "filesystem data longer than %d bytes",
					  MAX_MOUNT_DATA);
	}
	m->bind = (m->flags & MS_BIND) != 0;
	m->data = dlen ? kr_xstrdup(data) : NULL;
	return 0;
}

static int parse_mount(struct json_object *obj, const char *path,
		       struct oci_mount *m, struct kr_err *err)
{
	struct fpath fp;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return sj_invalid(err, path, "expected an object");
	r = sj_get_string(obj, path, "destination", &m->destination, err);
	if (sj_require(r, path, "destination", err) < 0 ||
	    sj_check_str(m->destination, fp_key(&fp, path, "destination"),
			 STRV_ABSOLUTE, err) < 0)
		return -1;
	if (sj_get_string(obj, path, "type", &m->type, err) < 0 ||
	    sj_get_string(obj, path, "source", &m->source, err) < 0)
		return -1;
	return parse_mount_options(obj, path, m, err);
}

static int parse_mounts(struct json_object *root, struct oci_spec *spec,
			struct kr_err *err)
{
	struct json_object *arr;
	struct fpath ep;
	size_t n;
	int r;

	if ((r = sj_get_array(root, "", "mounts", MAX_MOUNTS, &arr, &n, err)) <= 0)
		return r;
	spec->mounts = kr_xcalloc(n, sizeof(*spec->mounts));
	spec->n_mounts = n;
	for (size_t i = 0; i < n; i++)
		if (parse_mount(json_object_array_get_idx(arr, i),
				fp_idx(&ep, "mounts", i), &spec->mounts[i],
				err) < 0)
			return -1;
	return 0;
}

/* ---- top level ------------------------------------------------------------ */

static int parse_root(struct json_object *top, struct oci_spec *spec,
		      struct kr_err *err)
{
	struct json_object *obj;
	int r;

	if ((r = sj_member(top, "", "root", json_type_object, &obj, err)) < 0)
		return -1;
	if (r > 0) {
		if (sj_get_string(obj, "root", "path", &spec->root_path, err) < 0 ||
		    sj_get_bool(obj, "root", "readonly", &spec->root_readonly,
				err) < 0)
			return -1;
		if (spec->root_path &&
		    sj_check_str(spec->root_path, "root.path", STRV_NONEMPTY,
				 err) < 0)
			return -1;
	}
	if (!spec->root_path)
		spec->root_path = kr_xstrdup("rootfs");
	return 0;
}

static int parse_spec_obj(struct json_object *top, struct oci_spec *spec,
			  struct kr_err *err)
{
	struct json_object *proc;
	int r;

	if (sj_get_string(top, "", "ociVersion", &spec->oci_version, err) < 0 ||
	    parse_root(top, spec, err) < 0 ||
	    sj_get_string(top, "", "hostname", &spec->hostname, err) < 0)
		return -1;
	if ((r = sj_member(top, "", "process", json_type_object, &proc, err)) < 0)
		return -1;
	if (r > 0) {
		spec->has_process = true;
		if (parse_process_fields(proc, "process", &spec->process,
					 err) < 0)
			return -1;
	}
	if (parse_mounts(top, spec, err) < 0)
		return -1;
	return spec_parse_linux(top, spec, err);
}

int spec_parse(const char *json, size_t len, struct oci_spec **out,
	       struct kr_err *err)
{
	struct json_object *top;
	struct oci_spec *spec;
	int r;

	*out = NULL;
	if (sj_parse_json(json, len, &top, err) < 0)
		return -1;
	spec = kr_xcalloc(1, sizeof(*spec));
	r = parse_spec_obj(top, spec, err);
	json_object_put(top);
	if (r < 0) {
		spec_free(spec);
		return -1;
	}
	*out = spec;
	return 0;
}

int spec_parse_process(const char *json, size_t len, struct oci_process **out,
		       struct kr_err *err)
{
	struct json_object *top;
	struct oci_process *p;
	int r;

	*out = NULL;
	if (sj_parse_json(json, len, &top, err) < 0)
		return -1;
	p = kr_xcalloc(1, sizeof(*p));
	r = parse_process_fields(top, "", p, err);
	json_object_put(top);
	if (r < 0) {
		spec_process_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int spec_parse_resources(const char *json, size_t len,
			 struct oci_resources *out, struct kr_err *err)
{
	struct json_object *top;
	int r;

	memset(out, 0, sizeof(*out));
	if (sj_parse_json(json, len, &top, err) < 0)
		return -1;
	r = spec_parse_resources_obj(top, "", out, err);
	json_object_put(top);
	if (r < 0)
		spec_resources_release(out);
	return r;
}

void spec_process_free(struct oci_process *p)
{
	if (!p)
		return;
	process_release(p);
	free(p);
}

void spec_resources_release(struct oci_resources *r)
{
	if (!r)
		return;
	free(r->cpuset_cpus);
	free(r->cpuset_mems);
	memset(r, 0, sizeof(*r));
}

static void mounts_free(struct oci_mount *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].destination);
		free(m[i].type);
		free(m[i].source);
		free(m[i].data);
	}
	free(m);
}

void spec_free(struct oci_spec *spec)
{
	if (!spec)
		return;
	free(spec->oci_version);
	free(spec->root_path);
	free(spec->hostname);
	process_release(&spec->process);
	mounts_free(spec->mounts, spec->n_mounts);
	spec_linux_release(spec);
	free(spec);
}

/* ---- helpers for the launch code ------------------------------------------ */

const struct oci_namespace *spec_namespace(const struct oci_spec *spec,
					   int clone_flag)
{
	if (!spec)
		return NULL;
	for (size_t i = 0; i < spec->n_namespaces; i++)
		if (spec->namespaces[i].type == clone_flag)
			return &spec->namespaces[i];
	return NULL;
}

bool spec_has_namespace(const struct oci_spec *spec, int clone_flag)
{
	return spec_namespace(spec, clone_flag) != NULL;
}

/* The first match, as getenv(3) in the container would see it. */
const char *spec_getenv(char *const *env, const char *key)
{
	size_t kl;

	if (!env || !key)
		return NULL;
	kl = strlen(key);
	for (; *env; env++)
		if (!strncmp(*env, key, kl) && (*env)[kl] == '=')
			return *env + kl + 1;
	return NULL;
}
