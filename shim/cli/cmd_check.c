/* kata-run check: what this host has and lacks for the configured
 * hypervisor, one line per item:
 *
 *   ok   ITEM: detail
 *   MISSING ITEM: detail -- fix: COMMAND
 *
 * Exit 0 when everything the configured hypervisor needs is present, else 1.
 * A missing item that is not needed (say /dev/kvm with libvirt, which falls
 * back to TCG) is still shown, marked "(optional)", and does not fail. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt.h>

#include "cli.h"
#include "kr/util.h"
#include "../../hypervisor/hypervisor.h"

#define LIBVIRTD_SOCKET "/run/libvirt/libvirt-sock"

struct check {
	const struct kr_config *cfg;
	bool libvirt;		/* the configured backend is libvirt */
	int failed;		/* needed items missing */
};

static void __attribute__((format(printf, 6, 7)))
item(struct check *c, bool present, bool needed, const char *name, const char *fix,
     const char *fmt, ...)
{
	va_list ap;

	printf(present ? "ok   %s: " : "MISSING %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!present && !needed)
		printf(" (optional)");
	if (!present && fix)
		printf(" -- fix: %s", fix);
	putchar('\n');
	if (!present && needed)
		c->failed++;
}

static const char *config_file(const struct kr_config *cfg)
{
	return cfg->path[0] ? cfg->path : KR_CONFIG_DEFAULT_PATH;
}

static void check_root(struct check *c)
{
	uid_t uid = geteuid();

	item(c, uid == 0, true, "root", "run kata-run as root (sudo kata-run ...)",
	     uid == 0 ? "running as root" : "running as uid %u; VMs, mounts and cgroups need root",
	     (unsigned)uid);
}

static void check_backend(struct check *c)
{
	struct kr_err err = { 0 };
	const struct hv_ops *ops = hypervisor_open(c->cfg->hypervisor, &err);
	char fix[PATH_MAX + 64];

	c->libvirt = ops && strcmp(ops->name, "libvirt") == 0;
	snprintf(fix, sizeof(fix), "hypervisor = \"auto\" in %s, or --hypervisor auto",
		 config_file(c->cfg));
	if (ops)
		item(c, true, true, "hypervisor", NULL, "\"%s\" -> %s backend",
		     c->cfg->hypervisor, ops->name);
	else
		item(c, false, true, "hypervisor", fix, "%s", err.msg);
}

static void check_kvm(struct check *c)
{
	const char *why = NULL;
	enum hv_accel a = hv_detect_accel(NULL, &why);
	struct stat st;
	bool pvm = stat("/sys/module/kvm_pvm", &st) == 0;
	/* Only the built-in VMM cannot do without KVM; libvirt uses TCG. */
	bool needed = !c->libvirt;

	if (a == HV_ACCEL_KVM)
		item(c, true, needed, "/dev/kvm", NULL, "%s: guests run with %s acceleration",
		     why, hv_accel_name(a));
	else
		item(c, false, needed, "/dev/kvm",
		     pvm ? NULL : "modprobe kvm_intel (or kvm_amd); in a VM, enable nested virtualization",
		     "%s%s", why, needed ? "" : ": guests run under TCG (software emulation, "
		     "slow boot: raise boot_timeout_s)");
}

/* The built-in VMM's program, needed by the kvm backend only. */
static void check_vmm(struct check *c)
{
	char vmm[PATH_MAX];
	bool found = hv_find_vmm(vmm, sizeof(vmm)) == 0;

	item(c, found, !c->libvirt, "kata-vmm", "make (build/kata-vmm) or make install",
	     found ? "%s" : "not found next to kata-run nor in /usr/local/bin, /usr/bin%s",
	     found ? vmm : (c->libvirt ? " (only the kvm backend needs it)" : ""));
}

static void check_libvirt(struct check *c)
{
	unsigned long v = 0;
	const char *uri = c->cfg->libvirt_uri;
	struct stat st;
	bool sock, user = getpwnam("libvirt-qemu") != NULL;

	if (virGetVersion(&v, NULL, NULL) == 0)
		item(c, true, c->libvirt, "libvirt", NULL, "library %lu.%lu.%lu", v / 1000000,
		     v / 1000 % 1000, v % 1000);
	else
		item(c, false, c->libvirt, "libvirt", "scripts/libvirt-setup.sh --no-daemons",
		     "virGetVersion failed: the libvirt library is not usable");
	/* libvirt's QEMU driver refuses to start without Debian's QEMU user,
	 * even embedded (scripts/libvirt-setup.sh). */
	item(c, user, c->libvirt, "libvirt-qemu user", "scripts/libvirt-setup.sh --no-daemons",
	     "%s", user ? "exists" : "no such user; libvirt's QEMU driver needs it");
	if (strcmp(uri, "qemu:///system") != 0) {
		item(c, true, false, "libvirtd", NULL, "not needed: %s",
		     uri[0] ? uri : "qemu:///embed");
		return;
	}
	sock = stat(LIBVIRTD_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
	item(c, sock, c->libvirt, "libvirtd", "scripts/libvirt-setup.sh",
	     sock ? "%s (libvirt_uri = qemu:///system)" : "no socket %s (libvirt_uri = qemu:///system)",
	     LIBVIRTD_SOCKET);
}

/* The first executable regular file called name in $PATH. */
static bool find_in_path(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");
	kr_cleanup_free char *dirs = kr_xstrdup(path && *path ? path : "/usr/bin:/bin");
	char *save = NULL;
	struct stat st;

	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
		if (kr_snprintf(out, size, "%s/%s", d, name) >= 0 && stat(out, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return true;
	return false;
}

static bool executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static void check_programs(struct check *c)
{
	char qemu[PATH_MAX];
	const char *vfs = c->cfg->virtiofsd;
	bool has_vfs = executable(vfs);

	if (find_in_path("qemu-system-x86_64", qemu, sizeof(qemu)))
		item(c, true, c->libvirt, "qemu-system-x86_64", NULL, "%s", qemu);
	else
		item(c, false, c->libvirt, "qemu-system-x86_64", "apt-get install qemu-system-x86",
		     "not in PATH");
	/* Debian 12 ships virtiofsd in qemu-system-common, which
	 * qemu-system-x86 pulls in. */
	item(c, has_vfs, true, "virtiofsd", "apt-get install qemu-system-x86", "%s%s", vfs,
	     has_vfs ? "" : ": not an executable file (virtiofsd = in the config)");
}

static void check_guest(struct check *c, const char *exe_dir)
{
	struct kr_config g = *c->cfg;
	struct kr_err err = { 0 };
	bool rc = kr_config_find_guest(&g, exe_dir, &err) == 0;
	/* On failure, a field the search filled in was found. */
	bool kernel = rc || (!c->cfg->kernel[0] && g.kernel[0]);
	bool initrd = rc || (!c->cfg->initrd[0] && g.initrd[0]);

	if (kernel)
		item(c, true, true, "guest kernel", NULL, "%s", g.kernel);
	if (initrd)
		item(c, true, true, "guest initramfs", NULL, "%s", g.initrd);
	/* The error names every place looked at and the fix. */
	if (!rc)
		item(c, false, true, kernel ? "guest initramfs" : initrd ? "guest kernel" :
		     "guest kernel/initramfs", NULL, "%s", err.msg);
}

/* state_root need not exist yet: then its nearest existing parent must
 * let us create it. */
static void check_state_root(struct check *c)
{
	static const char fix[] = "run as root, or state_root = \"DIR\" in the config";
	const char *root = c->cfg->state_root;
	char parent[PATH_MAX];
	struct stat st;
	char *slash;
	bool ok;

	if (stat(root, &st) == 0) {
		ok = S_ISDIR(st.st_mode) && access(root, W_OK | X_OK) == 0;
		item(c, ok, true, "state_root", fix, ok ? "%s is writable" :
		     "%s is not a writable directory", root);
		return;
	}
	if (errno != ENOENT) {
		item(c, false, true, "state_root", fix, "%s: %s", root, strerror(errno));
		return;
	}
	snprintf(parent, sizeof(parent), "%s", root);
	do {
		slash = strrchr(parent, '/');
		if (!slash)
			break;
		slash[slash == parent] = '\0';	/* keep "/" itself */
	} while (stat(parent, &st) != 0 && strcmp(parent, "/") != 0);
	ok = stat(parent, &st) == 0 && S_ISDIR(st.st_mode) && access(parent, W_OK | X_OK) == 0;
	item(c, ok, true, "state_root", fix, "%s does not exist yet; %s %s", root, parent,
	     ok ? "is writable, so it can be created" : "is not writable");
}

static void usage(FILE *f)
{
	fputs("Usage: kata-run [GLOBAL OPTIONS] check [--config-dump]\n"
	      "Report what this host has and lacks for the configured hypervisor, one line\n"
	      "per item (\"ok   ITEM: ...\" or \"MISSING ITEM: ... -- fix: ...\").\n"
	      "Exit status 0 when everything needed is present, 1 otherwise.\n\n"
	      "  --config-dump   print the configuration in effect as a config file\n"
	      "  -h, --help      this text\n", f);
}

int cmd_check(struct kr_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config-dump", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct check c = { .cfg = &cli->cfg };
	int o;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'D':
			kr_config_dump(&cli->cfg, STDOUT_FILENO);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return KR_EXIT_ERROR;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kata-run check: unexpected argument %s\n", argv[optind]);
		return KR_EXIT_ERROR;
	}
	item(&c, true, true, "config", NULL, "%s",
	     cli->cfg.path[0] ? cli->cfg.path : "built-in defaults (no " KR_CONFIG_DEFAULT_PATH ")");
	check_root(&c);
	check_backend(&c);
	check_kvm(&c);
	check_vmm(&c);
	check_libvirt(&c);
	check_programs(&c);
	check_guest(&c, cli->exe_dir);
	check_state_root(&c);
	fflush(stdout);
	return c.failed ? 1 : 0;
}
