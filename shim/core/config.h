/* kata-run's configuration file (docs/config.md, examples/kata-run.toml).
 *
 * A flat TOML subset, one "key = value" per line; '#' starts a comment;
 * strings in double quotes (\" and \\ escapes), integers bare.  Unknown keys
 * and malformed lines are errors naming the file and line: a typo must not
 * silently fall back to a default.
 *
 * Where it comes from: --config FILE (must exist), else $KATA_RUN_CONFIG
 * (must exist), else /etc/kata-run/config.toml if it exists, else the
 * built-in defaults below.  Command-line flags override the file. */
#ifndef KR_SHIM_CONFIG_H
#define KR_SHIM_CONFIG_H

#include <limits.h>
#include <stdbool.h>

#include "kr/error.h"

#define KR_CONFIG_DEFAULT_PATH "/etc/kata-run/config.toml"
#define KR_KERNEL_NAME "bzImage"
#define KR_INITRD_NAME "kata-initramfs.cpio.gz"

struct kr_config {
	char path[PATH_MAX];		/* the file read; "" = built-in defaults */
	char hypervisor[16];		/* "auto" | "libvirt" | "kvm" (default auto) */
	char kernel[PATH_MAX];		/* "" = search (kr_config_find_guest) */
	char initrd[PATH_MAX];		/* "" = search */
	unsigned vcpus;			/* 1..64, default 1 */
	unsigned memory_mib;		/* 64..65536, default 512 */
	char log_level[8];		/* error|warn|info|debug, default warn */
	unsigned boot_timeout_s;	/* VM start until the agent answers: 1..600, default 30 */
	unsigned call_timeout_s;	/* each agent call: 1..600, default 30 */
	char libvirt_uri[256];		/* "" = qemu:///embed (no daemon) */
	char virtiofsd[PATH_MAX];	/* default /usr/lib/qemu/virtiofsd */
	char state_root[PATH_MAX];	/* default /run/kata-run */
	char kernel_params[1024];	/* appended to the guest command line, default "" */
};

/* The built-in defaults. */
void kr_config_defaults(struct kr_config *cfg);
/* Defaults, then the file chosen as described above (path: --config or
 * NULL).  Errors: a named file that does not exist, unreadable, bigger than
 * 64 KiB, bad syntax, unknown key, value out of range: "FILE:LINE: why". */
int kr_config_load(struct kr_config *cfg, const char *path, struct kr_err *err);
/* Parse config text (the part of kr_config_load after reading; for tests).
 * name is used in error messages.  Applies over *cfg as given (call
 * kr_config_defaults first); all or nothing: on error *cfg is unchanged.
 * Does not set cfg->path (kr_config_load does). */
int kr_config_parse(struct kr_config *cfg, const char *text, const char *name,
		    struct kr_err *err);
/* Set one key from a string (the parser and command-line flags use it).
 * The value is unquoted text ("2", "/path"); it is checked as in a file
 * (range, choices, length, absolute paths, no control characters) and on
 * error the field keeps its old value. */
int kr_config_set(struct kr_config *cfg, const char *key, const char *value,
		  struct kr_err *err);

/* Fill cfg->kernel / cfg->initrd when empty by looking, in order, in
 * exe_dir (a build tree: build/bzImage, build/kata-initramfs.cpio.gz),
 * exe_dir/../share/kata-run/ (make install) and /usr/share/kata-run/.
 * exe_dir may be NULL.  A path that is set (or found) must be a readable
 * regular file.  The error lists the places looked at and the fix
 * ("make guest-kernel", "make initramfs", or set kernel = in the file). */
int kr_config_find_guest(struct kr_config *cfg, const char *exe_dir,
			 struct kr_err *err);

/* Write the effective configuration as a valid config file (kata-run
 * check --config-dump; a template for /etc/kata-run/config.toml). */
void kr_config_dump(const struct kr_config *cfg, int fd);

#endif
