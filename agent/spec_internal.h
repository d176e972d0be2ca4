/* Shared by the spec parser's files (spec.c, spec_json.c, spec_linux.c);
 * nothing else includes this.
 *
 * Conventions: "parent" is the field path of the enclosing object ("" at
 * the top, "process", "mounts[2]") and every error is "<path>: <what>".
 * Getters by key return 1 if the member is present, 0 if it is absent or
 * null (Go's encoding/json, which runc uses, treats null as absent) and -1
 * with err set if it has the wrong type or is out of range. */
#ifndef KR_AGENT_SPEC_INTERNAL_H
#define KR_AGENT_SPEC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "kr/error.h"
#include "spec.h"

struct fpath {
	char s[256];
};

/* Paths only feed error messages: an overlong one is cut and marked. */
static inline const char *fp_done(struct fpath *fp, int n)
{
	if (n >= (int)sizeof(fp->s))
		memcpy(fp->s + sizeof(fp->s) - 4, "...", 4);
	return fp->s;
}

static inline const char *fp_key(struct fpath *fp, const char *parent,
				 const char *key)
{
	if (parent && parent[0])
		return fp_done(fp, snprintf(fp->s, sizeof(fp->s), "%s.%s",
					    parent, key));
	return fp_done(fp, snprintf(fp->s, sizeof(fp->s), "%s", key));
}

static inline const char *fp_idx(struct fpath *fp, const char *parent,
				 size_t i)
{
	return fp_done(fp, snprintf(fp->s, sizeof(fp->s), "%s[%zu]", parent, i));
}

#define SJ_U16 "an unsigned 16-bit integer"
#define SJ_U32 "an unsigned 32-bit integer"
#define SJ_U64 "an unsigned 64-bit integer"
#define SJ_I64 "a 64-bit integer"

/* Checks for sj_get_strv() elements and sj_check_str(). */
enum { STRV_ABSOLUTE = 1, STRV_ENV = 2, STRV_NONEMPTY = 4 };

/* ---- spec_json.c ---- */
int sj_invalid(struct kr_err *err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Strict JSON, at most OCI_SPEC_MAX_BYTES, top level an object. */
int sj_parse_json(const char *json, size_t len, struct json_object **out,
		  struct kr_err *err);
bool sj_has_nul(struct json_object *v);
int sj_member(struct json_object *obj, const char *parent, const char *key,
	      enum json_type type, struct json_object **out,
	      struct kr_err *err);
/* Conversions of a value at a full path: 0 or -1. */
int sj_to_string(struct json_object *v, const char *path, char **out,
		 struct kr_err *err);
int sj_to_uint(struct json_object *v, const char *path, uint64_t max,
	       const char *what, uint64_t *out, struct kr_err *err);
int sj_to_int(struct json_object *v, const char *path, int64_t min,
	      int64_t max, const char *what, int64_t *out, struct kr_err *err);
int sj_get_string(struct json_object *obj, const char *parent,
		  const char *key, char **out, struct kr_err *err);
int sj_get_bool(struct json_object *obj, const char *parent, const char *key,
		bool *out, struct kr_err *err);
int sj_get_uint(struct json_object *obj, const char *parent, const char *key,
		uint64_t max, const char *what, uint64_t *out,
		struct kr_err *err);
int sj_get_u32(struct json_object *obj, const char *parent, const char *key,
	       uint32_t *out, struct kr_err *err);
int sj_get_int(struct json_object *obj, const char *parent, const char *key,
	       int64_t min, int64_t max, const char *what, int64_t *out,
	       struct kr_err *err);
/* Turns a getter's 0 (absent) into a "required" error. */
int sj_require(int r, const char *parent, const char *key,
	       struct kr_err *err);
int sj_get_array(struct json_object *obj, const char *parent,
		 const char *key, size_t max, struct json_object **arr,
		 size_t *n, struct kr_err *err);
/* A NULL-terminated string array; *out stays NULL if absent. */
int sj_get_strv(struct json_object *obj, const char *parent,
		const char *key, size_t max, int flags, char ***out,
		size_t *n, struct kr_err *err);
int sj_check_str(const char *s, const char *path, int flags,
		 struct kr_err *err);
void sj_strv_free(char **v, size_t n);

/* ---- spec.c ---- */
/* "rprivate" -> MS_PRIVATE | MS_REC; false if not a propagation name. */
bool spec_propagation_flag(const char *name, unsigned long *flag);

/* ---- spec_linux.c ---- */
int spec_parse_linux(struct json_object *root, struct oci_spec *spec,
		     struct kr_err *err);
int spec_parse_resources_obj(struct json_object *res, const char *path,
			     struct oci_resources *r, struct kr_err *err);
/* Frees everything the "linux" object put in spec. */
void spec_linux_release(struct oci_spec *spec);

#endif
