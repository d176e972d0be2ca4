/* kr-vmctl: start one VM through a hypervisor backend and keep it until it
 * ends or this program gets SIGTERM/SIGINT; then destroy it (nothing left).
 * A test driver until the kata-run CLI exists.
 *
 *   kr-vmctl [options] --id ID --kernel PATH
 *     --initrd PATH --share DIR --vcpus N --memory MIB --accel auto|tcg|kvm
 *     --cmdline-extra STR --state-dir DIR --uri URI --hypervisor NAME
 *     --boot-timeout SEC (0 = none: wait until the VM ends)
 *
 *   kr-vmctl --cleanup --id ID [--state-dir DIR] [--uri URI]
 *     removes what a killed kr-vmctl left (domain, QEMU, virtiofsd, state dir)
 *
 * Prints "agent_socket=PATH", "console_log=PATH", "state_dir=PATH" and
 * "ready" on stdout once the VM runs. Exit: 0 after a clean end, 1 on error. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hypervisor.h"
#include "kr/log.h"

static volatile sig_atomic_t stop_sig;
static void on_sig(int s) { stop_sig = s; }

static void usage(FILE *f)
{
	fputs("usage: kr-vmctl --id ID --kernel PATH [--initrd PATH] [--share DIR] [--vcpus N]\n"
	      "         [--memory MIB] [--accel auto|tcg|kvm] [--cmdline-extra STR]\n"
	      "         [--state-dir DIR] [--uri URI] [--hypervisor auto|libvirt|kvm|mock]\n"
	      "         [--log-level LEVEL]\n"
	      "       kr-vmctl --cleanup --id ID [--state-dir DIR] [--uri URI]\n", f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", 1, 0, 'i' }, { "kernel", 1, 0, 'k' }, { "initrd", 1, 0, 'r' },
		{ "share", 1, 0, 's' }, { "vcpus", 1, 0, 'c' }, { "memory", 1, 0, 'm' },
		{ "accel", 1, 0, 'a' }, { "cmdline-extra", 1, 0, 'x' }, { "state-dir", 1, 0, 'd' },
		{ "uri", 1, 0, 'u' }, { "hypervisor", 1, 0, 'H' }, { "log-level", 1, 0, 'l' },
		{ "help", 0, 0, 'h' }, { "cleanup", 0, 0, 'C' }, { 0, 0, 0, 0 },
	};
	struct hv_config cfg = { 0 };
	const char *hvname = "auto";
	const struct hv_ops *ops;
	struct hv_vm *vm = NULL;
	struct kr_err err = { 0 };
	struct sigaction sa = { 0 };
	int c, rc = 1, lvl = KR_LOG_WARN;
	bool cleanup = false;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': cfg.id = optarg; break;
		case 'k': cfg.kernel = optarg; break;
		case 'r': cfg.initrd = optarg; break;
		case 's': cfg.shared_dir = optarg; break;
		case 'c': cfg.vcpus = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'm': cfg.memory_mib = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'a':
			if (strcmp(optarg, "tcg") == 0) cfg.accel = HV_ACCEL_TCG;
			else if (strcmp(optarg, "kvm") == 0) cfg.accel = HV_ACCEL_KVM;
			else if (strcmp(optarg, "auto") == 0) cfg.accel = HV_ACCEL_AUTO;
			else { fprintf(stderr, "kr-vmctl: --accel %s: expected auto, tcg or kvm\n", optarg); return 2; }
			break;
		case 'x': cfg.cmdline_extra = optarg; break;
		case 'd': cfg.state_dir = optarg; break;
		case 'u': cfg.uri = optarg; break;
		case 'H': hvname = optarg; break;
		case 'l':
			lvl = kr_log_level_parse(optarg);
			if (lvl < 0) { fprintf(stderr, "kr-vmctl: --log-level %s: unknown\n", optarg); return 2; }
			break;
		case 'C': cleanup = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !cfg.id || (!cfg.kernel && !cleanup)) {
		usage(stderr);
		return 2;
	}
	kr_log_init("kr-vmctl", (enum kr_log_level)lvl, 2);
	/* libvirt's own log goes to stderr by default, with errors that do not
	 * matter here (dmidecode, /dev/kvm probes of the embedded driver); the
	 * backend reports real failures through kr_err.  Shown with debug. */
	setenv("LIBVIRT_LOG_OUTPUTS", lvl >= KR_LOG_DEBUG ? "3:stderr" : "4:file:/dev/null", 0);

	sa.sa_handler = on_sig;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	ops = hypervisor_open(hvname, &err);
	if (!ops)
		goto out;
	if (cleanup) {
		rc = ops->cleanup(&cfg, &err) < 0 ? 1 : 0;
		goto out;
	}
	if (ops->create(&cfg, &vm, &err) < 0)
		goto out;
	if (ops->start(vm, &err) < 0)
		goto out;
	printf("agent_socket=%s\nconsole_log=%s\nstate_dir=%s\nready\n", ops->agent_socket(vm),
	       ops->console_log(vm), ops->state_dir(vm));
	fflush(stdout);
	while (!stop_sig) {
		int r = ops->wait(vm, 200, &err);
		if (r < 0)
			goto out;
		if (r == 1) {
			kr_info("VM %s ended", cfg.id);
			break;
		}
	}
	if (stop_sig)
		kr_info("signal %d: destroying VM %s", (int)stop_sig, cfg.id);
	rc = 0;
out:
	if (vm) {
		struct kr_err e2 = { 0 };
		if (ops->destroy(vm, &e2) < 0) {
			fprintf(stderr, "kr-vmctl: %s\n", e2.msg);
			rc = 1;
		}
		ops->free(vm);
	}
	if (rc && err.msg[0])
		fprintf(stderr, "kr-vmctl: %s\n", err.msg);
	return rc;
}
