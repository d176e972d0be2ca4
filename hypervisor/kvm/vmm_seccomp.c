/* The VMM's run-time syscall allow-list (seccomp.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "vmm_seccomp.h"

/* What the vCPU threads, the I/O thread and the signal thread call while
 * the guest runs.  No open/openat, execve, fork/clone, ptrace, mount,
 * bind/listen, new eventfds or memfds: all of those happen before. */
static const int allowed[] = {
	/* I/O on fds that already exist (devices, sockets, eventfds) */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(lseek), SCMP_SYS(close),
	SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(newfstatat),
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* vsock (Unix sockets to host services) and vhost-user */
	SCMP_SYS(accept4), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(shutdown),
	SCMP_SYS(getsockopt), SCMP_SYS(unlink),
	/* memory (malloc) and threads that already exist */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mprotect), SCMP_SYS(futex),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigtimedwait),
	SCMP_SYS(sigaltstack),	/* sanitizer runtimes, at thread exit */
	SCMP_SYS(tgkill), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(sched_yield), SCMP_SYS(getrandom),
	SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
};

/* ioctls: only running vCPUs and reading their registers for error logs. */
static const unsigned long allowed_ioctls[] = {
	KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, FIONBIO,
	/* tear-down: devices unbind their notification eventfds */
	KVM_IOEVENTFD,
};

static int add_rules(scmp_filter_ctx ctx)
{
	int rc;

	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < sizeof(allowed_ioctls) / sizeof(allowed_ioctls[0]); i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, allowed_ioctls[i]));
		if (rc < 0)
			return rc;
	}
	/* socket() only for Unix stream sockets (vsock connects to host
	 * services), connect() for those. */
	rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			      SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	if (rc < 0)
		return rc;
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
}

/* Debug mode: say which call was refused, then die as KILL_PROCESS would.
 * Only async-signal-safe calls, all on the list. */
static void report_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[96];
	int n;

	(void)uc;
	n = snprintf(msg, sizeof(msg), "kata-vmm: seccomp refused syscall %d (not on the allow-list)\n",
		     si->si_syscall);
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* nothing more to do */
	}
	(void)sig;
	_exit(128 + SIGSYS);
}

int vmm_seccomp_apply(bool report, struct kr_err *err)
{
	scmp_filter_ctx ctx;

	if (report) {
		struct sigaction sa = { .sa_sigaction = report_sigsys, .sa_flags = SA_SIGINFO };

		sigaction(SIGSYS, &sa, NULL);
	}
	ctx = seccomp_init(report ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
	int rc;

	if (!ctx)
		return kr_err_set(err, KR_INTERNAL, "seccomp: seccomp_init failed");
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = add_rules(ctx);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		return kr_err_errno(err, -rc, "seccomp: cannot install the VMM's filter");
	return 0;
}
