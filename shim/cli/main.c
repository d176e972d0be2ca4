/* kata-run: global options, configuration, subcommand dispatch (cli.h). */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kr/log.h"
#include "kr/util.h"

int cli_fail(const struct kr_err *err)
{
	fprintf(stderr, "kata-run: %s\n", err->msg);
	return KR_EXIT_ERROR;
}

static void usage(FILE *f)
{
	fputs("Usage: kata-run [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	      "       kata-run [GLOBAL OPTIONS] BUNDLE        (= run BUNDLE)\n"
	      "Run OCI containers, each in its own lightweight VM.\n\n"
	      "Commands:\n"
	      "  run [--id ID] [--timings] BUNDLE   run the bundle's container in a new VM\n"
	      "  check [--config-dump]              what this host has and lacks\n"
	      "  cleanup [ID...]                    remove what killed runs left (all stale ones\n"
	      "                                     when no ID is given)\n"
	      "  version                            print the version\n\n"
	      "Global options:\n"
	      "  --config FILE            configuration file (default $KATA_RUN_CONFIG, then\n"
	      "                           " KR_CONFIG_DEFAULT_PATH " if present; docs/config.md)\n"
	      "  --hypervisor NAME        auto, libvirt or kvm (overrides the file)\n"
	      "  --log-level LEVEL        error, warn, info or debug\n"
	      "  --debug                  same as --log-level debug\n"
	      "  -h, --help, --version\n\n"
	      "Exit status of run: the container's (128+N when signal N ended it); 125 when\n"
	      "kata-run failed, 126 when the command cannot run, 127 when it does not exist.\n", f);
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "kata-run: %s%s\n", arg ? arg : "", what);
	usage(stderr);
	return KR_EXIT_ERROR;
}

static void find_exe_dir(struct kr_cli *cli)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return;
	exe[n] = '\0';
	snprintf(cli->exe_dir, sizeof(cli->exe_dir), "%s", dirname(exe));
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "hypervisor", required_argument, NULL, 'H' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static struct kr_cli cli;
	const char *config = NULL, *hypervisor = NULL, *level = NULL, *cmd;
	struct kr_err err = { 0 };
	int c, lvl;

	cli.t0_ms = kr_now_ms();
	kr_log_init("kata-run", KR_LOG_WARN, STDERR_FILENO);
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'H': hypervisor = optarg; break;
		case 'l': level = optarg; break;
		case 'd': level = "debug"; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kata-run %s\n", KR_VERSION); return 0;
		default: usage(stderr); return KR_EXIT_ERROR;
		}
	}
	if (optind >= argc)
		return usage_error("no command or bundle given", NULL);
	if (kr_config_load(&cli.cfg, config, &err) < 0 ||
	    (hypervisor && kr_config_set(&cli.cfg, "hypervisor", hypervisor, &err) < 0) ||
	    (level && kr_config_set(&cli.cfg, "log_level", level, &err) < 0))
		return cli_fail(&err);
	lvl = kr_log_level_parse(cli.cfg.log_level);
	kr_log_set_level(lvl < 0 ? KR_LOG_WARN : (enum kr_log_level)lvl);
	/* libvirt logs harmless probe failures (dmidecode, /dev/kvm) to
	 * stderr; real failures come back through its error API. */
	setenv("LIBVIRT_LOG_OUTPUTS", lvl >= KR_LOG_DEBUG ? "3:stderr" : "4:file:/dev/null", 0);
	find_exe_dir(&cli);

	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	optind = 0;	/* subcommands parse their own argv */
	if (!strcmp(cmd, "run"))
		return cmd_run(&cli, argc, argv);
	if (!strcmp(cmd, "check"))
		return cmd_check(&cli, argc, argv);
	if (!strcmp(cmd, "cleanup"))
		return cmd_cleanup(&cli, argc, argv);
	if (!strcmp(cmd, "version")) {
		printf("kata-run %s\n", KR_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	/* kata-run BUNDLE: anything that names a directory (or looks like a
	 * path) is a bundle. */
	if (is_dir(cmd) || strchr(cmd, '/')) {
		char *run_argv[] = { "run", (char *)cmd, NULL };

		if (argc != 1)
			return usage_error(": unexpected arguments after the bundle", cmd);
		return cmd_run(&cli, 2, run_argv);
	}
	return usage_error(": neither a command nor a bundle directory", cmd);
}
