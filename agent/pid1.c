/* Duties of the guest's init: the file systems every container expects,
 * and powering the VM off at the end. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "kr/log.h"
#include "kr/util.h"

static const struct {
	const char *source, *target, *type;
	unsigned long flags;
	const char *data;
} pid1_mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755" },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620" },
	{ "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
	{ "cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL },
	{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755" },
	{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" },
};

int pid1_setup(struct kr_err *err)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(pid1_mounts); i++) {
		if (mkdir(pid1_mounts[i].target, 0755) < 0 && errno != EEXIST)
			return kr_err_sys(err, "mkdir %s", pid1_mounts[i].target);
		if (mount(pid1_mounts[i].source, pid1_mounts[i].target,
			  pid1_mounts[i].type, pid1_mounts[i].flags,
			  pid1_mounts[i].data) < 0 && errno != EBUSY)
			return kr_err_sys(err, "mount %s", pid1_mounts[i].target);
	}
	/* The console is our stdio (the kernel opened it for init). */
	return 0;
}

void pid1_power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Without ACPI power-off the CPU only halts: the VMM treats reboot
	 * as the end too (on_reboot=destroy). */
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}
