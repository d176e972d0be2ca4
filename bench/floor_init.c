/* The /init of the floor initramfs in bench/kata_run_vs_qemu.sh: power the
 * VM off at once.  Booting it measures "VM created + kernel reaches init +
 * VM gone" with nothing of kata-run in between.  Build it static:
 *   gcc -static -O2 -o init floor_init.c */
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	reboot(RB_POWER_OFF);
	/* Not reached unless reboot() failed (not PID 1, no CAP_SYS_BOOT):
	 * returning from init makes the kernel panic, and panic=-1 ends the
	 * VM as well, so the benchmark still finishes. */
	return 1;
}
