/* kata-run cleanup [ID...]: remove what runs killed with SIGKILL left
 * behind.  With qemu:///embed QEMU is not our child and outlives a killed
 * kata-run; its VM, virtiofsd, state and pod dirs stay until this runs.
 * Without ids every sandbox whose owner is gone is removed; sandboxes in
 * use are skipped (named with an id, they are an error). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sandbox.h"

static int clean_one(struct kr_cli *cli, const char *id, bool named)
{
	struct kr_err err = { 0 };
	int r = kr_sandbox_cleanup(&cli->cfg, id, &err);

	if (r == 0)
		printf("removed %s\n", id);
	else if (r == 1 && named)
		printf("%s: nothing to remove\n", id);
	else if (r < 0 && (named || err.code != KR_FAILED_PRECONDITION)) {
		cli_fail(&err);
		return -1;
	}
	return 0;
}

int cmd_cleanup(struct kr_cli *cli, int argc, char **argv)
{
	int rc = 0;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("Usage: kata-run cleanup [ID...]\n"
		     "Remove the VMs, mounts and state that killed kata-run processes left.\n"
		     "Without ids: every sandbox whose owner is gone.");
		return 0;
	}
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (clean_one(cli, argv[i], true) < 0)
				rc = KR_EXIT_ERROR;
		return rc;
	}
	char **ids = kr_sandbox_list(&cli->cfg);
	for (char **p = ids; *p; p++) {
		if (clean_one(cli, *p, false) < 0)
			rc = KR_EXIT_ERROR;
		free(*p);
	}
	free(ids);
	return rc;
}
