/* Capabilities: names, the bounding set, and capset(2) + the ambient set.
 *
 * No libcap: the raw syscall with _LINUX_CAPABILITY_VERSION_3 (two 32-bit
 * words per set) is all that is needed, and it keeps the static agent small.
 * Capabilities the running kernel does not know (a spec written for a newer
 * kernel) are silently left out, as runc and crun do. */
#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "kr/util.h"
#include "security.h"

static const char *const cap_names[] = {
	[CAP_CHOWN] = "CAP_CHOWN",
	[CAP_DAC_OVERRIDE] = "CAP_DAC_OVERRIDE",
	[CAP_DAC_READ_SEARCH] = "CAP_DAC_READ_SEARCH",
	[CAP_FOWNER] = "CAP_FOWNER",
	[CAP_FSETID] = "CAP_FSETID",
	[CAP_KILL] = "CAP_KILL",
	[CAP_SETGID] = "CAP_SETGID",
	[CAP_SETUID] = "CAP_SETUID",
	[CAP_SETPCAP] = "CAP_SETPCAP",
	[CAP_LINUX_IMMUTABLE] = "CAP_LINUX_IMMUTABLE",
	[CAP_NET_BIND_SERVICE] = "CAP_NET_BIND_SERVICE",
	[CAP_NET_BROADCAST] = "CAP_NET_BROADCAST",
	[CAP_NET_ADMIN] = "CAP_NET_ADMIN",
	[CAP_NET_RAW] = "CAP_NET_RAW",
	[CAP_IPC_LOCK] = "CAP_IPC_LOCK",
	[CAP_IPC_OWNER] = "CAP_IPC_OWNER",
	[CAP_SYS_MODULE] = "CAP_SYS_MODULE",
	[CAP_SYS_RAWIO] = "CAP_SYS_RAWIO",
	[CAP_SYS_CHROOT] = "CAP_SYS_CHROOT",
	[CAP_SYS_PTRACE] = "CAP_SYS_PTRACE",
	[CAP_SYS_PACCT] = "CAP_SYS_PACCT",
	[CAP_SYS_ADMIN] = "CAP_SYS_ADMIN",
	[CAP_SYS_BOOT] = "CAP_SYS_BOOT",
	[CAP_SYS_NICE] = "CAP_SYS_NICE",
	[CAP_SYS_RESOURCE] = "CAP_SYS_RESOURCE",
	[CAP_SYS_TIME] = "CAP_SYS_TIME",
	[CAP_SYS_TTY_CONFIG] = "CAP_SYS_TTY_CONFIG",
	[CAP_MKNOD] = "CAP_MKNOD",
	[CAP_LEASE] = "CAP_LEASE",
	[CAP_AUDIT_WRITE] = "CAP_AUDIT_WRITE",
	[CAP_AUDIT_CONTROL] = "CAP_AUDIT_CONTROL",
	[CAP_SETFCAP] = "CAP_SETFCAP",
	[CAP_MAC_OVERRIDE] = "CAP_MAC_OVERRIDE",
	[CAP_MAC_ADMIN] = "CAP_MAC_ADMIN",
	[CAP_SYSLOG] = "CAP_SYSLOG",
	[CAP_WAKE_ALARM] = "CAP_WAKE_ALARM",
	[CAP_BLOCK_SUSPEND] = "CAP_BLOCK_SUSPEND",
	[CAP_AUDIT_READ] = "CAP_AUDIT_READ",
	[CAP_PERFMON] = "CAP_PERFMON",
	[CAP_BPF] = "CAP_BPF",
	[CAP_CHECKPOINT_RESTORE] = "CAP_CHECKPOINT_RESTORE",
};

int caps_from_name(const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < KR_ARRAY_SIZE(cap_names); i++)
		if (cap_names[i] && !strcmp(cap_names[i], name))
			return (int)i;
	return -1;
}

const char *caps_name(int cap)
{
	if (cap < 0 || (size_t)cap >= KR_ARRAY_SIZE(cap_names))
		return NULL;
	return cap_names[cap];
}

/* The highest capability the running kernel knows; the guest kernel may be
 * older or newer than the headers we were built with. */
static int kernel_last_cap(void)
{
	char *text = NULL;
	long v;

	if (kr_read_file("/proc/sys/kernel/cap_last_cap", 32, &text, NULL,
			 NULL) < 0)
		return CAP_LAST_CAP;
	v = strtol(text, NULL, 10);
	free(text);
	if (v <= 0 || v > 63)
		return CAP_LAST_CAP;
	return (int)v;
}

static uint64_t kernel_cap_mask(void)
{
	int last = kernel_last_cap();

	return last >= 63 ? UINT64_MAX : (1ull << (last + 1)) - 1;
}

static const char *cap_label(int cap)
{
	const char *name = caps_name(cap);

	return name ? name : "an unnamed capability";
}

int caps_apply_bounding(const struct oci_caps *caps, struct kr_err *err)
{
	int last = kernel_last_cap();

	for (int cap = 0; cap <= last; cap++) {
		if (caps->bounding & (1ull << cap))
			continue;
		/* Already gone: dropping again would need CAP_SETPCAP. */
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 0)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return kr_err_sys(err, "drop %s from the bounding set",
					  cap_label(cap));
	}
	return 0;
}

static int set_ambient(uint64_t ambient, struct kr_err *err)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return kr_err_sys(err, "clear the ambient capability set");
	for (int cap = 0; cap < 64; cap++) {
		if (!(ambient & (1ull << cap)))
			continue;
		/* A cap missing from permitted or inheritable cannot be raised;
		 * runc's own default spec asks for that, so like crun we skip
		 * it instead of failing the container. */
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
			if (errno != EPERM && errno != EINVAL)
				return kr_err_sys(err, "raise ambient %s",
						  cap_label(cap));
			kr_debug("ambient %s not raised: %s", cap_label(cap),
				 strerror(errno));
		}
	}
	return 0;
}

int caps_apply(const struct oci_caps *caps, struct kr_err *err)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = 0,
	};
	struct __user_cap_data_struct data[2];
	uint64_t mask = kernel_cap_mask();
	uint64_t eff = caps->effective & mask, prm = caps->permitted & mask;
	uint64_t inh = caps->inheritable & mask;

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(eff >> (32 * i));
		data[i].permitted = (uint32_t)(prm >> (32 * i));
		data[i].inheritable = (uint32_t)(inh >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return kr_err_sys(err, "capset");
	return set_ambient(caps->ambient & mask, err);
}
