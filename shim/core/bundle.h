/* An OCI bundle on the host: config.json and the rootfs it names.
 *
 * Everything is checked before any VM exists, so bad input costs nothing
 * and leaves nothing: a missing bundle dir, no config.json, invalid JSON, no
 * process.args, a rootfs that does not exist.  The spec is then rewritten
 * for the guest: host paths (bind-mount sources) become paths under the
 * sandbox's virtio-fs share (sandbox.c does the sharing). */
#ifndef KR_SHIM_BUNDLE_H
#define KR_SHIM_BUNDLE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "kr/error.h"

#define KR_BUNDLE_SPEC_MAX (1 << 20)	/* the agent's cap on a spec */

struct json_object;

struct kr_bundle {
	char dir[PATH_MAX];		/* absolute */
	char rootfs[PATH_MAX];		/* absolute, resolved, a directory */
	bool readonly;			/* root.readonly */
	bool terminal;			/* process.terminal */
	char argv0[256];		/* process.args[0], for error messages */
	struct json_object *spec;	/* owned */
};

/* Load and check dir/config.json.  On error nothing is allocated. */
int kr_bundle_load(const char *dir, struct kr_bundle *b, struct kr_err *err);
void kr_bundle_free(struct kr_bundle *b);

/* A host path the guest needs (a bind-mount source).  The callback shares
 * it and writes the guest path into guest (size PATH_MAX). */
typedef int (*kr_share_fn)(void *ctx, const char *host_path, unsigned index,
			   char *guest, struct kr_err *err);

/* Rewrite bind mounts with host sources through share(), and set
 * process.consoleSize when rows/cols are non-zero.  Serialise the result
 * (malloc'd, *len without the NUL) for CreateContainer. */
int kr_bundle_guest_spec(struct kr_bundle *b, kr_share_fn share, void *ctx,
			 unsigned rows, unsigned cols, char **json,
			 size_t *len, struct kr_err *err);

#endif
