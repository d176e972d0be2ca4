/* Backend selection and the checks every backend shares. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hypervisor.h"
#include "kr/log.h"
#include "kr/util.h"

#define HV_BASE_CMDLINE "console=ttyS0 panic=-1 quiet"

/* auto: the built-in VMM where KVM can run a standard guest and kata-vmm
 * is installed; libvirt (QEMU, KVM or TCG) everywhere else. */
static const struct hv_ops *hypervisor_auto(void)
{
	char vmm[4096];
	const char *why;

	if (hv_detect_accel(NULL, &why) != HV_ACCEL_KVM) {
		kr_debug("hypervisor auto: libvirt (%s)", why);
		return &hv_libvirt_ops;
	}
	if (hv_find_vmm(vmm, sizeof(vmm)) < 0) {
		kr_debug("hypervisor auto: libvirt (kata-vmm is not installed)");
		return &hv_libvirt_ops;
	}
	kr_debug("hypervisor auto: kvm (%s)", vmm);
	return &hv_kvm_ops;
}

const struct hv_ops *hypervisor_open(const char *name, struct kr_err *err)
{
	if (!name || !*name || strcmp(name, "auto") == 0)
		return hypervisor_auto();
	if (strcmp(name, "libvirt") == 0)
		return &hv_libvirt_ops;
	if (strcmp(name, "mock") == 0)
		return &hv_mock_ops;
	if (strcmp(name, "kvm") == 0)
		return &hv_kvm_ops;
	kr_err_set(err, KR_INVALID_ARGUMENT,
		   "unknown hypervisor \"%.64s\" (expected auto, libvirt, kvm or mock)", name);
	return NULL;
}

const char *hv_accel_name(enum hv_accel a)
{
	switch (a) {
	case HV_ACCEL_TCG: return "tcg";
	case HV_ACCEL_KVM: return "kvm";
	default: return "auto";
	}
}

enum hv_accel hv_detect_accel(const char *root, const char **why)
{
	char p[PATH_MAX];
	const char *r = root && *root ? root : "";
	const char *reason;
	enum hv_accel a;
	struct stat st;

	snprintf(p, sizeof(p), "%s/dev/kvm", r);
	if (stat(p, &st) != 0) {
		a = HV_ACCEL_TCG;
		reason = "/dev/kvm is missing";
	} else {
		snprintf(p, sizeof(p), "%s/sys/module/kvm_pvm", r);
		if (stat(p, &st) == 0) {
			a = HV_ACCEL_TCG;
			reason = "/dev/kvm is PVM (/sys/module/kvm_pvm exists): it cannot run a standard guest kernel at useful speed";
		} else {
			a = HV_ACCEL_KVM;
			reason = "/dev/kvm exists and is not PVM";
		}
	}
	kr_info("hypervisor accel=%s: %s", hv_accel_name(a), reason);
	if (why)
		*why = reason;
	return a;
}

bool hv_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > HV_ID_MAX || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static int need_file(const char *what, const char *path, bool dir, struct kr_err *err)
{
	struct stat st;

	if (!path || !*path)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s path is empty", what);
	if (path[0] != '/')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s %s: path must be absolute", what, path);
	if (stat(path, &st) != 0)
		return kr_err_sys(err, "%s %s", what, path);
	if (dir && !S_ISDIR(st.st_mode))
		return kr_err_errno(err, ENOTDIR, "%s %s", what, path);
	if (!dir && !S_ISREG(st.st_mode))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s %s: not a regular file", what, path);
	return 0;
}

int hv_config_validate(const struct hv_config *cfg, struct kr_err *err)
{
	if (!cfg)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "no VM config");
	if (!hv_id_valid(cfg->id))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "VM id \"%.80s\": must be 1-%d characters of [A-Za-z0-9_.-]",
				  cfg->id ? cfg->id : "", HV_ID_MAX);
	if (need_file("kernel", cfg->kernel, false, err) < 0)
		return -1;
	if (cfg->initrd && need_file("initrd", cfg->initrd, false, err) < 0)
		return -1;
	if (cfg->shared_dir && need_file("shared dir", cfg->shared_dir, true, err) < 0)
		return -1;
	if (cfg->shared_dir && need_file("virtiofsd", cfg->virtiofsd ? cfg->virtiofsd : HV_VIRTIOFSD,
					 false, err) < 0)
		return -1;
	if (cfg->vcpus > 64)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "vcpus %u: at most 64", cfg->vcpus);
	if (cfg->memory_mib && (cfg->memory_mib < 64 || cfg->memory_mib > 65536))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "memory %u MiB: must be 64..65536", cfg->memory_mib);
	if (cfg->cmdline_extra && strlen(cfg->cmdline_extra) > 1024)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "kernel command line extra: longer than 1024");
	if (cfg->state_dir && cfg->state_dir[0] != '/')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "state dir %s: path must be absolute",
				  cfg->state_dir);
	return 0;
}

int hv_cmdline_for(const struct hv_config *cfg, const char *agent_listen,
		   const char *backend_args, char *buf, size_t size, struct kr_err *err)
{
	const char *extra = cfg->cmdline_extra;

	if (kr_snprintf(buf, size, "%s%s%s kata_run.agent.listen=%s kata_run.agent.share=%s%s%s",
			HV_BASE_CMDLINE, backend_args && *backend_args ? " " : "",
			backend_args ? backend_args : "", agent_listen, HV_SHARE_TAG,
			extra && *extra ? " " : "", extra && *extra ? extra : "") < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "kernel command line too long");
	return 0;
}

int hv_cmdline(const struct hv_config *cfg, char *buf, size_t size, struct kr_err *err)
{
	return hv_cmdline_for(cfg, "serial:" HV_AGENT_PORT, NULL, buf, size, err);
}

int hv_state_dir_path(const struct hv_config *cfg, char *buf, size_t size, struct kr_err *err)
{
	if ((cfg->state_dir ? kr_snprintf(buf, size, "%s", cfg->state_dir)
			    : kr_snprintf(buf, size, "%s/%s", HV_STATE_ROOT, cfg->id)) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "state dir path too long");
	return 0;
}

int hv_state_dir_claim(const char *id, const char *dir, struct kr_err *err)
{
	struct stat st;

	/* The state dir is the VM's alone: an existing one means the id is in
	 * use (or a killed run left it; cleanup removes it). */
	if (stat(dir, &st) == 0)
		return kr_err_set(err, KR_ALREADY_EXISTS,
				  "VM %s: state dir %s already exists (the VM runs, or a killed run left it: cleanup removes it)",
				  id, dir);
	return kr_mkdir_p(dir, 0700, err);
}
