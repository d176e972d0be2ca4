/* kata-run, the command-line front end (shim/cli/): one file per
 * subcommand, all over the runtime core in shim/core/.
 *
 *   kata-run [GLOBAL OPTIONS] BUNDLE          same as: kata-run run BUNDLE
 *   kata-run [GLOBAL OPTIONS] run [--id ID] [--timings] BUNDLE
 *   kata-run [GLOBAL OPTIONS] check [--config-dump]
 *   kata-run [GLOBAL OPTIONS] cleanup [ID...]
 *   kata-run version | --version | --help
 *
 * GLOBAL OPTIONS: --config FILE, --hypervisor auto|libvirt|kvm,
 *                 --log-level error|warn|info|debug, --debug
 *
 * Exit status of run: the container's (128+N when signal N ended it);
 * 125 when kata-run itself failed, 126 when the command cannot be
 * executed, 127 when it does not exist (as docker and podman). */
#ifndef KR_SHIM_CLI_H
#define KR_SHIM_CLI_H

#include <stdint.h>

#include "config.h"

#define KR_EXIT_ERROR 125
#define KR_EXIT_CANNOT_EXEC 126
#define KR_EXIT_NOT_FOUND 127

struct kr_cli {
	struct kr_config cfg;		/* file + flags, resolved */
	char exe_dir[PATH_MAX];		/* directory of /proc/self/exe */
	uint64_t t0_ms;			/* kr_now_ms() when main() began */
};

/* Each returns the process exit status.  argv[0] is the subcommand name;
 * main.c resets getopt (optind = 0) before calling, so a subcommand parses
 * its own options with getopt_long as if argv were a whole command line. */
int cmd_run(struct kr_cli *cli, int argc, char **argv);
int cmd_check(struct kr_cli *cli, int argc, char **argv);
int cmd_cleanup(struct kr_cli *cli, int argc, char **argv);

/* Print "kata-run: <msg>" on stderr and return KR_EXIT_ERROR. */
int cli_fail(const struct kr_err *err);

#endif
