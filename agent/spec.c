/* OCI runtime spec (config.json) parser: JSON bytes -> struct oci_spec.
 *
 * The bytes come from the host over the agent channel, and inside the guest
 * the host is the only one who can send them, but the parser is still
 * written as if the input were hostile: bounded size, depth and counts,
 * strict JSON, every integer range-checked, every error naming the field
 * ("mounts[2].destination: must be an absolute path").
 *
 * One function per spec object.  Arrays are allocated at their final size
 * and their count set before the elements are filled, so that on any error
 * the free functions can release a half-built struct. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <json-c/json.h>

#include "kr/error.h"
#include "kr/util.h"
#include "security.h"
#include "spec.h"

#define JSON_MAX_DEPTH 64

/* Caps on array sizes.  The 1 MiB input bound limits them anyway; these keep
 * nonsense (a million masked paths) out of the launch code. */
#define MAX_ARGS 4096
#define MAX_ENV 4096
#define MAX_MOUNTS 1024
#define MAX_MOUNT_OPTIONS 64
#define MAX_MOUNT_DATA 4095	/* mount(2) copies one page of data */
#define MAX_GIDS 65536		/* NGROUPS_MAX */
#define MAX_CAPS 64
#define MAX_RLIMITS 32
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

/* ---- field paths and errors ---------------------------------------------- */

struct fpath {
	char s[256];
};

/* Paths only feed error messages: an overlong one is cut and marked. */
static const char *fp_done(struct fpath *fp, int n)
{
	if (n >= (int)sizeof(fp->s))
		memcpy(fp->s + sizeof(fp->s) - 4, "...", 4);
	return fp->s;
}

static const char *fp_key(struct fpath *fp, const char *parent, const char *key)
{
	if (parent && parent[0])
		return fp_done(fp, snprintf(fp->s, sizeof(fp->s), "%s.%s",
					    parent, key));
	return fp_done(fp, snprintf(fp->s, sizeof(fp->s), "%s", key));
}

static const char *fp_idx(struct fpath *fp, const char *parent, size_t i)
{
	return fp_done(fp, snprintf(fp->s, sizeof(fp->s), "%s[%zu]", parent, i));
}

static int invalid(struct kr_err *err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int invalid(struct kr_err *err, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: %s", path, msg);
}

/* ---- strict JSON front end ----------------------------------------------- */

static int json_error(struct kr_err *err, size_t off, const char *why)
{
	return kr_err_set(err, KR_INVALID_ARGUMENT,
			  "invalid JSON at offset %zu: %s", off, why);
}

static int scan_string(const char *s, size_t len, size_t *pos,
		       struct kr_err *err)
{
	for (size_t i = *pos + 1; i < len; i++) {
		if ((unsigned char)s[i] < 0x20)
			return json_error(err, i, "control character in string");
		if (s[i] == '\\') {
			i++;
		} else if (s[i] == '"') {
			*pos = i + 1;
			return 0;
		}
	}
	*pos = len;	/* json-c reports the unterminated string */
	return 0;
}

static size_t skip_digits(const char *s, size_t len, size_t i)
{
	while (i < len && isdigit((unsigned char)s[i]))
		i++;
	return i;
}

/* Integer literals must fit in int64 (negative) or uint64: json-c would
 * silently clamp them. */
static int check_integer(const char *s, size_t start, size_t digits,
			 bool neg, struct kr_err *err)
{
	char buf[24];
	unsigned long long v;

	if (digits > 20)
		return json_error(err, start, "integer out of range");
	memcpy(buf, s + start + neg, digits);
	buf[digits] = '\0';
	errno = 0;
	v = strtoull(buf, NULL, 10);
	if (errno == ERANGE || (neg && v > (unsigned long long)INT64_MAX + 1))
		return json_error(err, start, "integer out of range");
	return 0;
}

/* The RFC 8259 number grammar; json-c also takes "1." and friends. */
static int scan_number(const char *s, size_t len, size_t *pos,
		       struct kr_err *err)
{
	size_t start = *pos, i = *pos, digits, mark;
	bool neg = s[i] == '-', integral = true;

	i += neg;
	mark = i;
	i = skip_digits(s, len, i);
	digits = i - mark;
	if (digits == 0 || (digits > 1 && s[mark] == '0'))
		return json_error(err, start, "invalid number");
	if (i < len && s[i] == '.') {
		integral = false;
		mark = ++i;
		if ((i = skip_digits(s, len, i)) == mark)
			return json_error(err, start, "invalid number");
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		integral = false;
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		mark = i;
		if ((i = skip_digits(s, len, i)) == mark)
			return json_error(err, start, "invalid number");
	}
	*pos = i;
	return integral ? check_integer(s, start, digits, neg, err) : 0;
}

static int scan_word(const char *s, size_t len, size_t *pos, struct kr_err *err)
{
	size_t start = *pos, i = *pos, n;

	while (i < len && isalnum((unsigned char)s[i]))
		i++;
	n = i - start;
	*pos = i;
	if ((n == 4 && !memcmp(s + start, "true", 4)) ||
	    (n == 5 && !memcmp(s + start, "false", 5)) ||
	    (n == 4 && !memcmp(s + start, "null", 4)))
		return 0;
	return json_error(err, start, "unexpected token");
}

/* json-c's strict mode still accepts single-quoted strings, raw control
 * characters in strings, NaN, Infinity and "1.", and clamps out-of-range
 * integers; this lexical pass rejects what json-c would let through and
 * leaves the grammar to json-c. */
static int prescan(const char *s, size_t len, struct kr_err *err)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"') {
			if (scan_string(s, len, &i, err) < 0)
				return -1;
		} else if (c == '-' || isdigit(c)) {
			if (scan_number(s, len, &i, err) < 0)
				return -1;
		} else if (isalpha(c)) {
			if (scan_word(s, len, &i, err) < 0)
				return -1;
		} else if (c == '\'' || c == '\0') {
			return json_error(err, i, "unexpected character");
		} else {
			i++;
		}
	}
	return 0;
}

static int parse_json(const char *json, size_t len, struct json_object **out,
		      struct kr_err *err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	*out = NULL;
	if (len > OCI_SPEC_MAX_BYTES)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "config is %zu bytes, more than the %u allowed",
				  len, OCI_SPEC_MAX_BYTES);
	if (!json && len)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "config is NULL");
	if (prescan(json, len, err) < 0)
		return -1;
	for (end = 0; end < len && isspace((unsigned char)json[end]); end++)
		;
	if (end < len && json[end] != '{')
		return json_error(err, end, "the top level must be an object");
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok)
		return kr_err_errno(err, ENOMEM, "json_tokener_new");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, len ? json : "", (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj) {
		if (jerr == json_tokener_continue || jerr == json_tokener_success)
			return json_error(err, len, "unexpected end of input");
		return json_error(err, end, json_tokener_error_desc(jerr));
	}
	if (end < len) {
		json_object_put(obj);
		return json_error(err, end, "trailing data after the value");
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return json_error(err, 0, "the top level must be an object");
	}
	*out = obj;
	return 0;
}

/* ---- typed member access ------------------------------------------------- */

static const char *type_desc(enum json_type t)
{
	switch (t) {
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	case json_type_boolean: return "a boolean";
	case json_type_int: return "an integer";
	default: return "a value";
	}
}

/* A "\u0000" escape would silently cut the C string short. */
static bool has_nul(struct json_object *v)
{
	return strlen(json_object_get_string(v)) !=
	       (size_t)json_object_get_string_len(v);
}

/* 1 and *out set if present, 0 if absent or null (Go's encoding/json, which
 * runc uses, treats null as absent), -1 if of the wrong type. */
static int member(struct json_object *obj, const char *parent, const char *key,
		  enum json_type type, struct json_object **out,
		  struct kr_err *err)
{
	struct json_object *v = NULL;
	struct fpath fp;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, type))
		return invalid(err, fp_key(&fp, parent, key), "expected %s",
			       type_desc(type));
	if (type == json_type_string && has_nul(v))
		return invalid(err, fp_key(&fp, parent, key),
			       "string contains a NUL character");
	*out = v;
	return 1;
}

static int to_string(struct json_object *v, const char *path, char **out,
		     struct kr_err *err)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return invalid(err, path, "expected a string");
	if (has_nul(v))
		return invalid(err, path, "string contains a NUL character");
	s = json_object_get_string(v);
	*out = kr_xstrdup(s);
	return 0;
}

static int to_uint(struct json_object *v, const char *path, uint64_t max,
		   const char *what, uint64_t *out, struct kr_err *err)
{
	uint64_t u;

	if (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return invalid(err, path, "expected %s", what);
	u = json_object_get_uint64(v);
	if (u > max)
		return invalid(err, path, "expected %s", what);
	*out = u;
	return 0;
}

static int to_int(struct json_object *v, const char *path, int64_t min,
		  int64_t max, const char *what, int64_t *out,
		  struct kr_err *err)
{
	int64_t i;

	if (!json_object_is_type(v, json_type_int))
		return invalid(err, path, "expected %s", what);
	i = json_object_get_int64(v);
	/* json-c keeps integers above INT64_MAX as uint64 and clamps here. */
	if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return invalid(err, path, "expected %s", what);
	if (i < min || i > max)
		return invalid(err, path, "expected %s", what);
	*out = i;
	return 0;
}

static const char U16[] = "an unsigned 16-bit integer";
static const char U32[] = "an unsigned 32-bit integer";
static const char U64[] = "an unsigned 64-bit integer";
static const char I64[] = "a 64-bit integer";

/* Getters by key: 1 present, 0 absent, -1 error. */
static int get_string(struct json_object *obj, const char *parent,
		      const char *key, char **out, struct kr_err *err)
{
	struct json_object *v;
	struct fpath fp;
	int r = member(obj, parent, key, json_type_string, &v, err);

	if (r <= 0)
		return r;
	free(*out);
	*out = NULL;
	return to_string(v, fp_key(&fp, parent, key), out, err) < 0 ? -1 : 1;
}

static int get_bool(struct json_object *obj, const char *parent,
		    const char *key, bool *out, struct kr_err *err)
{
	struct json_object *v;
	int r = member(obj, parent, key, json_type_boolean, &v, err);

	if (r > 0)
		*out = json_object_get_boolean(v);
	return r;
}

static int get_uint(struct json_object *obj, const char *parent,
		    const char *key, uint64_t max, const char *what,
		    uint64_t *out, struct kr_err *err)
{
	struct json_object *v = NULL;
	struct fpath fp;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	return to_uint(v, fp_key(&fp, parent, key), max, what, out, err) < 0 ?
	       -1 : 1;
}

static int get_u32(struct json_object *obj, const char *parent,
		   const char *key, uint32_t *out, struct kr_err *err)
{
	uint64_t u;
	int r = get_uint(obj, parent, key, UINT32_MAX, U32, &u, err);

	if (r > 0)
		*out = (uint32_t)u;
	return r;
}

static int get_int(struct json_object *obj, const char *parent,
		   const char *key, int64_t min, int64_t max, const char *what,
		   int64_t *out, struct kr_err *err)
{
	struct json_object *v = NULL;
	struct fpath fp;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	return to_int(v, fp_key(&fp, parent, key), min, max, what, out, err) < 0 ?
	       -1 : 1;
}

static int require(int r, const char *parent, const char *key,
		   struct kr_err *err)
{
	struct fpath fp;

	if (r == 0)
		return invalid(err, fp_key(&fp, parent, key), "required");
	return r;
}

/* An array member with at most max elements; 0 if absent. */
static int get_array(struct json_object *obj, const char *parent,
		     const char *key, size_t max, struct json_object **arr,
		     size_t *n, struct kr_err *err)
{
	struct fpath fp;
	int r = member(obj, parent, key, json_type_array, arr, err);

	*n = 0;
	if (r <= 0)
		return r;
	*n = json_object_array_length(*arr);
	if (*n > max)
		return invalid(err, fp_key(&fp, parent, key),
			       "too many entries (%zu, at most %zu)", *n, max);
	return 1;
}

static void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

enum { STRV_ABSOLUTE = 1, STRV_ENV = 2, STRV_NONEMPTY = 4 };

static int check_str(const char *s, const char *path, int flags,
		     struct kr_err *err)
{
	const char *eq;

	if ((flags & STRV_ABSOLUTE) && s[0] != '/')
		return invalid(err, path, "must be an absolute path");
	if ((flags & STRV_NONEMPTY) && !s[0])
		return invalid(err, path, "must not be empty");
	if (flags & STRV_ENV) {
		eq = strchr(s, '=');
		if (!eq)
			return invalid(err, path,
				       "invalid environment variable: missing '='");
		if (eq == s)
			return invalid(err, path,
				       "invalid environment variable: empty name");
	}
	return 0;
}

/* A NULL-terminated string array; *out stays NULL if absent. */
static int get_strv(struct json_object *obj, const char *parent,
		    const char *key, size_t max, int flags, char ***out,
		    size_t *n, struct kr_err *err)
{
	struct json_object *arr;
	struct fpath fp, ep;
	size_t count;
	int r = get_array(obj, parent, key, max, &arr, &count, err);

	if (r <= 0)
		return r;
	fp_key(&fp, parent, key);
	*out = kr_xcalloc(count + 1, sizeof(char *));
	*n = count;
	for (size_t i = 0; i < count; i++) {
		fp_idx(&ep, fp.s, i);
		if (to_string(json_object_array_get_idx(arr, i), ep.s,
			      &(*out)[i], err) < 0 ||
		    check_str((*out)[i], ep.s, flags, err) < 0)
			return -1;
	}
	return 1;
}

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
	int r = get_array(obj, parent, "additionalGids", MAX_GIDS, &arr, &n, err);

	if (r <= 0)
		return r;
	fp_key(&fp, parent, "additionalGids");
	u->additional_gids = kr_xcalloc(n, sizeof(gid_t));
	u->n_additional_gids = n;
	for (size_t i = 0; i < n; i++) {
		fp_idx(&ep, fp.s, i);
		if (to_uint(json_object_array_get_idx(arr, i), ep.s,
			    UINT32_MAX - 1, U32, &g, err) < 0)
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

	if ((r = member(proc, parent, "user", json_type_object, &obj, err)) <= 0)
		return r;
	fp_key(&fp, parent, "user");
	/* (uid_t)-1 means "leave unchanged" to setresuid(): as a spec value
	 * it would silently keep the agent's root identity. */
	if ((r = get_u32(obj, fp.s, "uid", &id, err)) < 0)
		return -1;
	if (r && id == (uint32_t)-1)
		return invalid(err, fp_key(&kp, fp.s, "uid"),
			       "4294967295 is not a valid user id");
	u->uid = r ? id : 0;
	if ((r = get_u32(obj, fp.s, "gid", &id, err)) < 0)
		return -1;
	if (r && id == (uint32_t)-1)
		return invalid(err, fp_key(&kp, fp.s, "gid"),
			       "4294967295 is not a valid group id");
	u->gid = r ? id : 0;
	r = get_uint(obj, fp.s, "umask", 0777, "an integer in [0, 0777]",
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

	if ((r = member(proc, parent, "consoleSize", json_type_object, &obj,
			err)) <= 0)
		return r;
	fp_key(&fp, parent, "consoleSize");
	if ((r = get_uint(obj, fp.s, "height", USHRT_MAX, U16, &v, err)) < 0)
		return -1;
	p->console_rows = r ? (unsigned short)v : 0;
	if ((r = get_uint(obj, fp.s, "width", USHRT_MAX, U16, &v, err)) < 0)
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
	if ((r = get_array(obj, parent, key, MAX_CAPS, &arr, &n, err)) <= 0)
		return r;
	fp_key(&fp, parent, key);
	for (size_t i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		fp_idx(&ep, fp.s, i);
		if (!json_object_is_type(v, json_type_string))
			return invalid(err, ep.s, "expected a string");
		if (has_nul(v))
			return invalid(err, ep.s, "string contains a NUL character");
		cap = caps_from_name(json_object_get_string(v));
		if (cap < 0 || cap > 63)
			return invalid(err, ep.s, "unknown capability \"%s\"",
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

	if ((r = member(proc, parent, "capabilities", json_type_object, &obj,
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

/* Indexed by RLIMIT_*; user.c keeps the same names for its messages. */
static const char *const rlimit_names[] = {
	[RLIMIT_CPU] = "RLIMIT_CPU",		[RLIMIT_FSIZE] = "RLIMIT_FSIZE",
	[RLIMIT_DATA] = "RLIMIT_DATA",		[RLIMIT_STACK] = "RLIMIT_STACK",
	[RLIMIT_CORE] = "RLIMIT_CORE",		[RLIMIT_RSS] = "RLIMIT_RSS",
	[RLIMIT_NPROC] = "RLIMIT_NPROC",	[RLIMIT_NOFILE] = "RLIMIT_NOFILE",
	[RLIMIT_MEMLOCK] = "RLIMIT_MEMLOCK",	[RLIMIT_AS] = "RLIMIT_AS",
	[RLIMIT_LOCKS] = "RLIMIT_LOCKS",	[RLIMIT_SIGPENDING] = "RLIMIT_SIGPENDING",
	[RLIMIT_MSGQUEUE] = "RLIMIT_MSGQUEUE",	[RLIMIT_NICE] = "RLIMIT_NICE",
	[RLIMIT_RTPRIO] = "RLIMIT_RTPRIO",	[RLIMIT_RTTIME] = "RLIMIT_RTTIME",
};

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
		return invalid(err, path, "expected an object");
	if (require(member(obj, path, "type", json_type_string, &v, err),
		    path, "type", err) < 0)
		return -1;
	rl->resource = rlimit_from_name(json_object_get_string(v));
	if (rl->resource < 0)
		return invalid(err, fp_key(&fp, path, "type"),
			       "unknown rlimit \"%s\"", json_object_get_string(v));
	r = get_uint(obj, path, "hard", UINT64_MAX, U64, &rl->hard, err);
	if (require(r, path, "hard", err) < 0)
		return -1;
	r = get_uint(obj, path, "soft", UINT64_MAX, U64, &rl->soft, err);
	return require(r, path, "soft", err) < 0 ? -1 : 0;
}

static int parse_rlimits(struct json_object *proc, const char *parent,
			 struct oci_process *p, struct kr_err *err)
{
	struct json_object *arr;
	struct fpath fp, ep, tp;
	size_t n;
	int r;

	r = get_array(proc, parent, "rlimits", MAX_RLIMITS, &arr, &n, err);
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
		for (size_t j = 0; j < i; j++)
			if (p->rlimits[j].resource == p->rlimits[i].resource)
				return invalid(err, fp_key(&tp, ep.s, "type"),
					       "duplicate rlimit \"%s\"",
					       rlimit_names[p->rlimits[i].resource]);
	}
	return 0;
}

static int parse_args_env(struct json_object *obj, const char *parent,
			  struct oci_process *p, struct kr_err *err)
{
	struct fpath fp;
	int r;

	r = get_strv(obj, parent, "args", MAX_ARGS, 0, &p->args, &p->n_args,
		     err);
	if (require(r, parent, "args", err) < 0)
		return -1;
	if (p->n_args == 0)
		return invalid(err, fp_key(&fp, parent, "args"),
			       "must not be empty");
	r = get_strv(obj, parent, "env", MAX_ENV, STRV_ENV, &p->env, &p->n_env,
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

	if (get_bool(obj, parent, "terminal", &p->terminal, err) < 0 ||
	    parse_console(obj, parent, p, err) < 0 ||
	    parse_user(obj, parent, &p->user, err) < 0 ||
	    parse_args_env(obj, parent, p, err) < 0)
		return -1;
	if ((r = get_string(obj, parent, "cwd", &p->cwd, err)) < 0)
		return -1;
	if (!r)
		p->cwd = kr_xstrdup("/");
	else if (check_str(p->cwd, fp_key(&fp, parent, "cwd"), STRV_ABSOLUTE,
			   err) < 0)
		return -1;
	if (parse_caps(obj, parent, p, err) < 0 ||
	    parse_rlimits(obj, parent, p, err) < 0 ||
	    get_bool(obj, parent, "noNewPrivileges", &p->no_new_privileges,
		     err) < 0)
		return -1;
	r = get_int(obj, parent, "oomScoreAdj", -1000, 1000,
		    "an integer in [-1000, 1000]", &adj, err);
	if (r < 0)
		return -1;
	p->has_oom_score_adj = r;
	p->oom_score_adj = r ? (int)adj : 0;
	return 0;
}

static void process_release(struct oci_process *p)
{
	strv_free(p->args, p->n_args);
	strv_free(p->env, p->n_env);
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

static bool apply_propagation_opt(struct oci_mount *m, const char *o)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(propagations); i++) {
		if (!strcmp(propagations[i].name, o)) {
			m->propagation = propagations[i].flag;
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

	r = get_array(obj, path, "options", MAX_MOUNT_OPTIONS, &arr, &n, err);
	if (r <= 0)
		return r;
	fp_key(&fp, path, "options");
	for (size_t i = 0; i < n; i++) {
		v = json_object_array_get_idx(arr, i);
		fp_idx(&ep, fp.s, i);
		if (!json_object_is_type(v, json_type_string))
			return invalid(err, ep.s, "expected a string");
		if (has_nul(v))
			return invalid(err, ep.s, "string contains a NUL character");
		o = json_object_get_string(v);
		if (apply_flag_opt(m, o) || apply_propagation_opt(m, o))
			continue;
		if (is_recursive_attr(o))
			return invalid(err, ep.s, "mount option \"%s\" is not supported", o);
		if (!o[0])
			continue;
		if (append_data(data, &dlen, o) < 0)
			return invalid(err, fp.s, "filesystem data longer than %d bytes",
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
		return invalid(err, path, "expected an object");
	r = get_string(obj, path, "destination", &m->destination, err);
	if (require(r, path, "destination", err) < 0 ||
	    check_str(m->destination, fp_key(&fp, path, "destination"),
		      STRV_ABSOLUTE, err) < 0)
		return -1;
	if (get_string(obj, path, "type", &m->type, err) < 0 ||
	    get_string(obj, path, "source", &m->source, err) < 0)
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

	if ((r = get_array(root, "", "mounts", MAX_MOUNTS, &arr, &n, err)) <= 0)
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
		return invalid(err, path, "expected an object");
	r = member(obj, path, "type", json_type_string, &v, err);
	if (require(r, path, "type", err) < 0)
		return -1;
	type = json_object_get_string(v);
	ns->type = 0;
	for (size_t i = 0; i < KR_ARRAY_SIZE(ns_types); i++)
		if (!strcmp(ns_types[i].name, type))
			ns->type = ns_types[i].flag;
	fp_key(&fp, path, "type");
	if (!ns->type)
		return invalid(err, fp.s, "unknown namespace \"%s\"", type);
	for (size_t j = 0; j < idx; j++)
		if (spec->namespaces[j].type == ns->type)
			return invalid(err, fp.s, "duplicate namespace \"%s\"",
				       type);
	if ((r = get_string(obj, path, "path", &ns->path, err)) < 0)
		return -1;
	if (r && check_str(ns->path, fp_key(&fp, path, "path"), STRV_ABSOLUTE,
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

	r = get_array(lnx, "linux", "namespaces", MAX_NAMESPACES, &arr, &n, err);
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

static int parse_id_mapping(struct json_object *obj, const char *path,
			    struct oci_id_mapping *m, struct kr_err *err)
{
	struct fpath fp;

	if (!json_object_is_type(obj, json_type_object))
		return invalid(err, path, "expected an object");
	if (require(get_u32(obj, path, "containerID", &m->container_id, err),
		    path, "containerID", err) < 0 ||
	    require(get_u32(obj, path, "hostID", &m->host_id, err),
		    path, "hostID", err) < 0 ||
	    require(get_u32(obj, path, "size", &m->size, err),
		    path, "size", err) < 0)
		return -1;
	if (m->size == 0)
		return invalid(err, fp_key(&fp, path, "size"), "must not be 0");
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

	r = get_array(lnx, "linux", key, MAX_ID_MAPPINGS, &arr, &n, err);
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

	if (require(member(obj, path, "type", json_type_string, &v, err),
		    path, "type", err) < 0)
		return -1;
	t = json_object_get_string(v);
	if (strlen(t) != 1 || !strchr("cbup", t[0]))
		return invalid(err, fp_key(&fp, path, "type"),
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

	rmaj = get_int(obj, path, "major", 0, UINT32_MAX, what, &d->major, err);
	if (rmaj < 0)
		return -1;
	rmin = get_int(obj, path, "minor", 0, UINT32_MAX, what, &d->minor, err);
	if (rmin < 0)
		return -1;
	/* Only FIFOs have no device number. */
	if (d->type != 'p' && (require(rmaj, path, "major", err) < 0 ||
			       require(rmin, path, "minor", err) < 0))
		return -1;
	if ((r = get_u32(obj, path, "uid", &id, err)) < 0)
		return -1;
	d->has_uid = r;
	d->uid = id;
	if ((r = get_u32(obj, path, "gid", &id, err)) < 0)
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
		return invalid(err, path, "expected an object");
	r = get_string(obj, path, "path", &d->path, err);
	if (require(r, path, "path", err) < 0 ||
	    check_str(d->path, fp_key(&fp, path, "path"), STRV_ABSOLUTE,
		      err) < 0)
		return -1;
	if (parse_device_type(obj, path, d, err) < 0 ||
	    parse_device_ids(obj, path, d, err) < 0)
		return -1;
	r = get_uint(obj, path, "fileMode", 07777, "an integer in [0, 07777]",
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

	r = get_array(lnx, "linux", "devices", MAX_DEVICES, &arr, &n, err);
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
	int r = get_int(obj, parent, key, INT64_MIN, INT64_MAX, I64, out, err);

	if (r >= 0)
		*has = r;
	return r;
}

static int get_u64_flag(struct json_object *obj, const char *parent,
			const char *key, bool *has, uint64_t *out,
			struct kr_err *err)
{
	int r = get_uint(obj, parent, key, UINT64_MAX, U64, out, err);

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

	if ((rc = member(res, parent, "memory", json_type_object, &obj, err)) <= 0)
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

	if ((rc = member(res, parent, "cpu", json_type_object, &obj, err)) <= 0)
		return rc;
	fp_key(&fp, parent, "cpu");
	if (get_u64_flag(obj, fp.s, "shares", &r->has_cpu_shares,
			 &r->cpu_shares, err) < 0 ||
	    get_i64_flag(obj, fp.s, "quota", &r->has_cpu_quota,
			 &r->cpu_quota, err) < 0 ||
	    get_u64_flag(obj, fp.s, "period", &r->has_cpu_period,
			 &r->cpu_period, err) < 0 ||
	    get_string(obj, fp.s, "cpus", &r->cpuset_cpus, err) < 0 ||
	    get_string(obj, fp.s, "mems", &r->cpuset_mems, err) < 0)
		return -1;
	return 0;
}

static int parse_pids(struct json_object *res, const char *parent,
		      struct oci_resources *r, struct kr_err *err)
{
	struct json_object *obj;
	struct fpath fp;
	int rc;

	if ((rc = member(res, parent, "pids", json_type_object, &obj, err)) <= 0)
		return rc;
	fp_key(&fp, parent, "pids");
	/* "limit" is required by the spec, but absent simply means no limit. */
	return get_i64_flag(obj, fp.s, "limit", &r->has_pids_limit,
			    &r->pids_limit, err) < 0 ? -1 : 0;
}

/* devices, blockIO, hugepageLimits, network, rdma and unified are left to
 * the defaults of the guest's cgroup: the VM is the isolation boundary. */
static int parse_resources_obj(struct json_object *res, const char *path,
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

	if (require(member(obj, parent, key, json_type_string, &v, err),
		    parent, key, err) < 0)
		return -1;
	name = json_object_get_string(v);
	for (size_t i = 0; i < KR_ARRAY_SIZE(seccomp_actions); i++) {
		if (!strcmp(seccomp_actions[i].name, name)) {
			*out = seccomp_actions[i].action;
			return 0;
		}
	}
	return invalid(err, fp_key(&fp, parent, key), "unknown action \"%s\"",
		       name);
}

/* SECCOMP_RET_DATA holds 16 bits. */
static int get_errno_ret(struct json_object *obj, const char *parent,
			 const char *key, bool *has, unsigned *out,
			 struct kr_err *err)
{
	uint64_t v;
	int r = get_uint(obj, parent, key, UINT16_MAX, U16, &v, err);

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
		return invalid(err, path, "expected an object");
	r = get_uint(obj, path, "index", SECCOMP_MAX_ARG_INDEX - 1,
		     "an integer in [0, 5]", &idx, err);
	if (require(r, path, "index", err) < 0)
		return -1;
	a->index = (unsigned)idx;
	if (get_uint(obj, path, "value", UINT64_MAX, U64, &a->value, err) < 0 ||
	    get_uint(obj, path, "valueTwo", UINT64_MAX, U64, &a->value_two,
		     err) < 0)
		return -1;
	if (require(member(obj, path, "op", json_type_string, &v, err),
		    path, "op", err) < 0)
		return -1;
	op = json_object_get_string(v);
	for (i = 0; i < KR_ARRAY_SIZE(seccomp_ops); i++)
		if (!strcmp(seccomp_ops[i].name, op))
			break;
	if (i == KR_ARRAY_SIZE(seccomp_ops))
		return invalid(err, fp_key(&fp, path, "op"),
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
		return invalid(err, path, "expected an object");
	r = get_strv(obj, path, "names", MAX_SECCOMP_NAMES, STRV_NONEMPTY,
		     &rule->names, &rule->n_names, err);
	if (require(r, path, "names", err) < 0)
		return -1;
	if (rule->n_names == 0)
		return invalid(err, fp_key(&fp, path, "names"), "must not be empty");
	if (get_action(obj, path, "action", &rule->action, err) < 0 ||
	    get_errno_ret(obj, path, "errnoRet", &rule->has_errno_ret,
			  &rule->errno_ret, err) < 0)
		return -1;
	r = get_array(obj, path, "args", MAX_SECCOMP_ARGS, &arr, &n, err);
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

	r = get_array(obj, path, "syscalls", MAX_SECCOMP_RULES, &arr, &n, err);
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
	strv_free(sc->architectures, sc->n_architectures);
	for (size_t i = 0; i < sc->n_rules; i++) {
		strv_free(sc->rules[i].names, sc->rules[i].n_names);
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

	r = member(lnx, "linux", "seccomp", json_type_object, &obj, err);
	if (r <= 0)
		return r;
	sc = spec->seccomp = kr_xcalloc(1, sizeof(*sc));
	if (get_action(obj, path, "defaultAction", &sc->default_action,
		       err) < 0 ||
	    get_errno_ret(obj, path, "defaultErrnoRet",
			  &sc->has_default_errno_ret, &sc->default_errno_ret,
			  err) < 0 ||
	    get_strv(obj, path, "architectures", MAX_SECCOMP_ARCHES,
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

	r = member(lnx, "linux", "sysctl", json_type_object, &obj, err);
	if (r <= 0)
		return r;
	n = (size_t)json_object_object_length(obj);
	if (n > MAX_SYSCTLS)
		return invalid(err, "linux.sysctl",
			       "too many entries (%zu, at most %d)", n,
			       MAX_SYSCTLS);
	spec->sysctls = kr_xcalloc(n, sizeof(*spec->sysctls));
	spec->n_sysctls = n;
	json_object_object_foreach(obj, key, val) {
		fp_key(&fp, "linux.sysctl", key);
		if (!key[0])
			return invalid(err, fp.s, "empty key");
		if (!val)
			return invalid(err, fp.s, "expected a string");
		spec->sysctls[i].key = kr_xstrdup(key);
		if (to_string(val, fp.s, &spec->sysctls[i].value, err) < 0)
			return -1;
		i++;
	}
	return 0;
}

static int parse_rootfs_propagation(struct json_object *lnx,
				    struct oci_spec *spec, struct kr_err *err)
{
	int r = get_string(lnx, "linux", "rootfsPropagation",
			   &spec->rootfs_propagation, err);

	if (r <= 0)
		return r;
	if (!spec->rootfs_propagation[0]) {	/* runc: "" = unset */
		free(spec->rootfs_propagation);
		spec->rootfs_propagation = NULL;
		return 0;
	}
	for (size_t i = 0; i < KR_ARRAY_SIZE(propagations); i++)
		if (!strcmp(propagations[i].name, spec->rootfs_propagation))
			return 0;
	return invalid(err, "linux.rootfsPropagation",
		       "unknown propagation \"%s\"", spec->rootfs_propagation);
}

static int parse_linux(struct json_object *root, struct oci_spec *spec,
		       struct kr_err *err)
{
	struct json_object *lnx, *res;
	int r;

	if ((r = member(root, "", "linux", json_type_object, &lnx, err)) <= 0)
		return r;
	if (parse_namespaces(lnx, spec, err) < 0 ||
	    parse_id_mappings(lnx, "uidMappings", &spec->uid_mappings,
			      &spec->n_uid_mappings, err) < 0 ||
	    parse_id_mappings(lnx, "gidMappings", &spec->gid_mappings,
			      &spec->n_gid_mappings, err) < 0 ||
	    parse_devices(lnx, spec, err) < 0)
		return -1;
	r = member(lnx, "linux", "resources", json_type_object, &res, err);
	if (r < 0 || (r > 0 && parse_resources_obj(res, "linux.resources",
						   &spec->resources, err) < 0))
		return -1;
	if (get_string(lnx, "linux", "cgroupsPath", &spec->cgroups_path,
		       err) < 0 ||
	    parse_sysctl(lnx, spec, err) < 0 ||
	    get_strv(lnx, "linux", "maskedPaths", MAX_PATHS, STRV_ABSOLUTE,
		     &spec->masked_paths, &spec->n_masked_paths, err) < 0 ||
	    get_strv(lnx, "linux", "readonlyPaths", MAX_PATHS, STRV_ABSOLUTE,
		     &spec->readonly_paths, &spec->n_readonly_paths, err) < 0 ||
	    parse_rootfs_propagation(lnx, spec, err) < 0)
		return -1;
	return parse_seccomp(lnx, spec, err);
}

/* ---- top level ------------------------------------------------------------ */

static int parse_root(struct json_object *top, struct oci_spec *spec,
		      struct kr_err *err)
{
	struct json_object *obj;
	int r;

	if ((r = member(top, "", "root", json_type_object, &obj, err)) < 0)
		return -1;
	if (r > 0) {
		if (get_string(obj, "root", "path", &spec->root_path, err) < 0 ||
		    get_bool(obj, "root", "readonly", &spec->root_readonly,
			     err) < 0)
			return -1;
		if (spec->root_path &&
		    check_str(spec->root_path, "root.path", STRV_NONEMPTY,
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

	if (get_string(top, "", "ociVersion", &spec->oci_version, err) < 0 ||
	    parse_root(top, spec, err) < 0 ||
	    get_string(top, "", "hostname", &spec->hostname, err) < 0)
		return -1;
	if ((r = member(top, "", "process", json_type_object, &proc, err)) < 0)
		return -1;
	if (r > 0) {
		spec->has_process = true;
		if (parse_process_fields(proc, "process", &spec->process,
					 err) < 0)
			return -1;
	}
	if (parse_mounts(top, spec, err) < 0)
		return -1;
	return parse_linux(top, spec, err);
}

int spec_parse(const char *json, size_t len, struct oci_spec **out,
	       struct kr_err *err)
{
	struct json_object *top;
	struct oci_spec *spec;
	int r;

	*out = NULL;
	if (parse_json(json, len, &top, err) < 0)
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
	if (parse_json(json, len, &top, err) < 0)
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
	if (parse_json(json, len, &top, err) < 0)
		return -1;
	r = parse_resources_obj(top, "", out, err);
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
	strv_free(spec->masked_paths, spec->n_masked_paths);
	strv_free(spec->readonly_paths, spec->n_readonly_paths);
	seccomp_free(spec->seccomp);
	free(spec->rootfs_propagation);
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
