/* The JSON layer of the OCI spec parser (see spec_internal.h): a strict
 * front end over json-c, and typed accessors that name the field in every
 * error.  The spec objects themselves are parsed in spec.c and
 * spec_linux.c. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kr/util.h"
#include "spec_internal.h"

#define JSON_MAX_DEPTH 64
/* json-c spends ~800 bytes on an empty object: without a cap, 1 MiB of
 * "{}," would cost the agent 270 MiB.  Real configs (Docker's seccomp
 * profile included) have a few hundred. */
#define JSON_MAX_CONTAINERS 32768

int sj_invalid(struct kr_err *err, const char *path, const char *fmt, ...)
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
	size_t i = 0, containers = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if ((c == '{' || c == '[') && ++containers > JSON_MAX_CONTAINERS)
			return json_error(err, i,
					  "more than 32768 objects and arrays");
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

int sj_parse_json(const char *json, size_t len, struct json_object **out,
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
bool sj_has_nul(struct json_object *v)
{
	return strlen(json_object_get_string(v)) !=
	       (size_t)json_object_get_string_len(v);
}

/* 1 and *out set if present, 0 if absent or null (Go's encoding/json, which
 * runc uses, treats null as absent), -1 if of the wrong type. */
int sj_member(struct json_object *obj, const char *parent, const char *key,
	      enum json_type type, struct json_object **out,
	      struct kr_err *err)
{
	struct json_object *v = NULL;
	struct fpath fp;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, type))
		return sj_invalid(err, fp_key(&fp, parent, key), "expected %s",
				  type_desc(type));
	if (type == json_type_string && sj_has_nul(v))
		return sj_invalid(err, fp_key(&fp, parent, key),
				  "string contains a NUL character");
	*out = v;
	return 1;
}

int sj_to_string(struct json_object *v, const char *path, char **out,
		 struct kr_err *err)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return sj_invalid(err, path, "expected a string");
	if (sj_has_nul(v))
		return sj_invalid(err, path, "string contains a NUL character");
	s = json_object_get_string(v);
	*out = kr_xstrdup(s);
	return 0;
}

int sj_to_uint(struct json_object *v, const char *path, uint64_t max,
	       const char *what, uint64_t *out, struct kr_err *err)
{
	uint64_t u;

	if (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return sj_invalid(err, path, "expected %s", what);
	u = json_object_get_uint64(v);
	if (u > max)
		return sj_invalid(err, path, "expected %s", what);
	*out = u;
	return 0;
}

int sj_to_int(struct json_object *v, const char *path, int64_t min,
	      int64_t max, const char *what, int64_t *out,
	      struct kr_err *err)
{
	int64_t i;

	if (!json_object_is_type(v, json_type_int))
		return sj_invalid(err, path, "expected %s", what);
	i = json_object_get_int64(v);
	/* json-c keeps integers above INT64_MAX as uint64 and clamps here. */
	if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return sj_invalid(err, path, "expected %s", what);
	if (i < min || i > max)
		return sj_invalid(err, path, "expected %s", what);
	*out = i;
	return 0;
}

int sj_get_string(struct json_object *obj, const char *parent,
		  const char *key, char **out, struct kr_err *err)
{
	struct json_object *v;
	struct fpath fp;
	int r = sj_member(obj, parent, key, json_type_string, &v, err);

	if (r <= 0)
		return r;
	free(*out);
	*out = NULL;
	return sj_to_string(v, fp_key(&fp, parent, key), out, err) < 0 ? -1 : 1;
}

int sj_get_bool(struct json_object *obj, const char *parent,
		const char *key, bool *out, struct kr_err *err)
{
	struct json_object *v;
	int r = sj_member(obj, parent, key, json_type_boolean, &v, err);

	if (r > 0)
		*out = json_object_get_boolean(v);
	return r;
}

int sj_get_uint(struct json_object *obj, const char *parent,
		const char *key, uint64_t max, const char *what,
		uint64_t *out, struct kr_err *err)
{
	struct json_object *v = NULL;
	struct fpath fp;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	fp_key(&fp, parent, key);
	return sj_to_uint(v, fp.s, max, what, out, err) < 0 ? -1 : 1;
}

int sj_get_u32(struct json_object *obj, const char *parent,
	       const char *key, uint32_t *out, struct kr_err *err)
{
	uint64_t u;
	int r = sj_get_uint(obj, parent, key, UINT32_MAX, SJ_U32, &u, err);

	if (r > 0)
		*out = (uint32_t)u;
	return r;
}

int sj_get_int(struct json_object *obj, const char *parent,
	       const char *key, int64_t min, int64_t max, const char *what,
	       int64_t *out, struct kr_err *err)
{
	struct json_object *v = NULL;
	struct fpath fp;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	fp_key(&fp, parent, key);
	return sj_to_int(v, fp.s, min, max, what, out, err) < 0 ? -1 : 1;
}

int sj_require(int r, const char *parent, const char *key,
	       struct kr_err *err)
{
	struct fpath fp;

	if (r == 0)
		return sj_invalid(err, fp_key(&fp, parent, key), "required");
	return r;
}

/* An array member with at most max elements; 0 if absent. */
int sj_get_array(struct json_object *obj, const char *parent,
		 const char *key, size_t max, struct json_object **arr,
		 size_t *n, struct kr_err *err)
{
	struct fpath fp;
	int r = sj_member(obj, parent, key, json_type_array, arr, err);

	*n = 0;
	if (r <= 0)
		return r;
	*n = json_object_array_length(*arr);
	if (*n > max)
		return sj_invalid(err, fp_key(&fp, parent, key),
				  "too many entries (%zu, at most %zu)", *n, max);
	return 1;
}

void sj_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int sj_check_str(const char *s, const char *path, int flags,
		 struct kr_err *err)
{
	const char *eq;

	if ((flags & STRV_ABSOLUTE) && s[0] != '/')
		return sj_invalid(err, path, "must be an absolute path");
	if ((flags & STRV_NONEMPTY) && !s[0])
		return sj_invalid(err, path, "must not be empty");
	if (flags & STRV_ENV) {
		eq = strchr(s, '=');
		if (!eq)
			return sj_invalid(err, path,
					  "invalid environment variable: missing '='");
		if (eq == s)
			return sj_invalid(err, path,
					  "invalid environment variable: empty name");
	}
	return 0;
}

int sj_get_strv(struct json_object *obj, const char *parent,
		const char *key, size_t max, int flags, char ***out,
		size_t *n, struct kr_err *err)
{
	struct json_object *arr;
	struct fpath fp, ep;
	size_t count;
	int r = sj_get_array(obj, parent, key, max, &arr, &count, err);

	if (r <= 0)
		return r;
	fp_key(&fp, parent, key);
	*out = kr_xcalloc(count + 1, sizeof(char *));
	*n = count;
	for (size_t i = 0; i < count; i++) {
		fp_idx(&ep, fp.s, i);
		if (sj_to_string(json_object_array_get_idx(arr, i), ep.s,
				 &(*out)[i], err) < 0 ||
		    sj_check_str((*out)[i], ep.s, flags, err) < 0)
			return -1;
	}
	return 1;
}
