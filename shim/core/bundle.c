/* OCI bundle loading and the guest's copy of its spec (bundle.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "bundle.h"
#include "kr/util.h"

static struct json_object *member(struct json_object *o, const char *key,
				  json_type type)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static int parse_spec(const char *path, const char *text, size_t len,
		      struct json_object **out, struct kr_err *err)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	enum json_tokener_error e;

	if (!tok)
		return kr_err_errno(err, ENOMEM, "parse %s", path);
	o = json_tokener_parse_ex(tok, text, (int)len);
	e = json_tokener_get_error(tok);
	if (!o || e != json_tokener_success || tok->char_offset < (int)len) {
		/* Trailing bytes after the object are an error too. */
		const char *why = e == json_tokener_continue ? "unexpected end of the file (truncated?)"
				  : e != json_tokener_success ? json_tokener_error_desc(e)
							      : "unexpected data after the JSON object";
		int at = (int)tok->char_offset;

		json_object_put(o);
		json_tokener_free(tok);
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: invalid JSON at byte %d: %s", path, at, why);
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: not a JSON object", path);
	}
	*out = o;
	return 0;
}

/* process.args must be a non-empty array of strings: kata-run runs it. */
static int check_process(struct kr_bundle *b, const char *path, struct kr_err *err)
{
	struct json_object *proc = member(b->spec, "process", json_type_object);
	struct json_object *args = member(proc, "args", json_type_array);
	struct json_object *a0;

	if (!proc)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: no \"process\": nothing to run", path);
	if (!args || json_object_array_length(args) == 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: process.args is missing or empty", path);
	for (size_t i = 0; i < json_object_array_length(args); i++)
		if (!json_object_is_type(json_object_array_get_idx(args, i), json_type_string))
			return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: process.args[%zu] is not a string", path, i);
	a0 = json_object_array_get_idx(args, 0);
	snprintf(b->argv0, sizeof(b->argv0), "%s", json_object_get_string(a0));
	b->terminal = json_object_get_boolean(member(proc, "terminal", json_type_boolean));
	return 0;
}

/* root.path (relative to the bundle) must be an existing directory. */
static int check_root(struct kr_bundle *b, const char *path, struct kr_err *err)
{
	struct json_object *root = member(b->spec, "root", json_type_object);
	struct json_object *p = member(root, "path", json_type_string);
	char joined[PATH_MAX];
	const char *rp;
	struct stat st;

	if (!p)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: root.path is missing", path);
	rp = json_object_get_string(p);
	b->readonly = json_object_get_boolean(member(root, "readonly", json_type_boolean));
	if ((rp[0] == '/' ? kr_snprintf(joined, sizeof(joined), "%s", rp)
			  : kr_snprintf(joined, sizeof(joined), "%s/%s", b->dir, rp)) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "%s: root.path", path);
	if (!realpath(joined, b->rootfs))
		return kr_err_sys(err, "%s: root.path %s", path, joined);
	if (stat(b->rootfs, &st) < 0)
		return kr_err_sys(err, "%s: root.path %s", path, b->rootfs);
	if (!S_ISDIR(st.st_mode))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s: root.path %s is not a directory", path, b->rootfs);
	return 0;
}

int kr_bundle_load(const char *dir, struct kr_bundle *b, struct kr_err *err)
{
	char path[PATH_MAX];
	kr_cleanup_free char *text = NULL;
	size_t len;
	struct stat st;

	memset(b, 0, sizeof(*b));
	if (!dir || !dir[0])
		return kr_err_set(err, KR_INVALID_ARGUMENT, "no bundle given");
	if (!realpath(dir, b->dir) || stat(b->dir, &st) < 0)
		return kr_err_sys(err, "bundle %s", dir);
	if (!S_ISDIR(st.st_mode))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "bundle %s: not a directory", dir);
	if (kr_snprintf(path, sizeof(path), "%s/config.json", b->dir) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "bundle %s", dir);
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return kr_err_set(err, KR_NOT_FOUND,
				  "bundle %s: no config.json (create one with `runc spec --bundle %s`)", dir, dir);
	if (kr_read_file(path, KR_BUNDLE_SPEC_MAX, &text, &len, err) < 0)
		return kr_err_wrap(err, "bundle %s", dir);
	if (parse_spec(path, text, len, &b->spec, err) < 0)
		return -1;
	if (check_process(b, path, err) < 0 || check_root(b, path, err) < 0) {
		kr_bundle_free(b);
		return -1;
	}
	return 0;
}

void kr_bundle_free(struct kr_bundle *b)
{
	if (b->spec)
		json_object_put(b->spec);
	b->spec = NULL;
}

static bool is_bind(struct json_object *m)
{
	struct json_object *type = member(m, "type", json_type_string);
	struct json_object *opts = member(m, "options", json_type_array);

	if (type && strcmp(json_object_get_string(type), "bind") == 0)
		return true;
	for (size_t i = 0; opts && i < json_object_array_length(opts); i++) {
		const char *o = json_object_get_string(json_object_array_get_idx(opts, i));
		if (o && (strcmp(o, "bind") == 0 || strcmp(o, "rbind") == 0))
			return true;
	}
	return false;
}

/* The guest cannot see host paths: every bind source is shared and
 * replaced by its guest path. */
static int share_binds(struct kr_bundle *b, kr_share_fn share, void *ctx,
		       struct kr_err *err)
{
	struct json_object *mounts = member(b->spec, "mounts", json_type_array);
	unsigned index = 0;

	for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
		struct json_object *m = json_object_array_get_idx(mounts, i);
		struct json_object *src = member(m, "source", json_type_string);
		char guest[PATH_MAX];

		if (!is_bind(m) || !src)
			continue;
		if (json_object_get_string(src)[0] != '/')
			return kr_err_set(err, KR_INVALID_ARGUMENT, "mounts[%zu]: bind source %s is not absolute",
					  i, json_object_get_string(src));
		if (!share)
			return kr_err_set(err, KR_UNIMPLEMENTED, "mounts[%zu]: bind mounts cannot be shared here", i);
		if (share(ctx, json_object_get_string(src), index++, guest, err) < 0)
			return kr_err_wrap(err, "mounts[%zu] (%s)", i, json_object_get_string(src));
		json_object_object_add(m, "source", json_object_new_string(guest));
	}
	return 0;
}

int kr_bundle_guest_spec(struct kr_bundle *b, kr_share_fn share, void *ctx,
			 unsigned rows, unsigned cols, char **json,
			 size_t *len, struct kr_err *err)
{
	struct json_object *proc = member(b->spec, "process", json_type_object);
	const char *s;

	if (share_binds(b, share, ctx, err) < 0)
		return -1;
	if (proc && rows && cols) {
		struct json_object *size = json_object_new_object();

		json_object_object_add(size, "height", json_object_new_int64(rows));
		json_object_object_add(size, "width", json_object_new_int64(cols));
		json_object_object_add(proc, "consoleSize", size);
	}
	s = json_object_to_json_string_ext(b->spec, JSON_C_TO_STRING_PLAIN);
	*len = strlen(s);
	if (*len > KR_BUNDLE_SPEC_MAX)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED, "spec of %zu bytes is over the agent's %d", *len,
				  KR_BUNDLE_SPEC_MAX);
	*json = kr_xstrdup(s);
	return 0;
}
