/* kata-vmm's seccomp allow-list (hypervisor/kvm/vmm_seccomp.c): in a child
 * process, calls on the list keep working and one off the list kills the
 * process with SIGSYS. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/kr_test.h"
#include "vmm_seccomp.h"

/* Run body in a child after applying the filter; return its wait status.
 * The child reports progress through the pipe (write is allowed). */
static int run_child(void (*body)(int fd), char *progress, size_t size)
{
	int p[2], status;
	pid_t pid;
	ssize_t n;

	if (pipe(p) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		struct kr_err err = { 0 };

		close(p[0]);
		if (vmm_seccomp_apply(false, &err) < 0) {
			dprintf(p[1], "apply failed: %s", err.msg);
			_exit(99);
		}
		body(p[1]);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], progress, size - 1);
	progress[n > 0 ? n : 0] = 0;
	close(p[0]);
	waitpid(pid, &status, 0);
	return status;
}

/* Sanitizer builds: LeakSanitizer's exit-time check stops the world with
 * clone and ptrace, which the seccomp filter refuses (SIGSYS at exit).
 * Ignored by normal builds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

static void allowed_calls(int fd)
{
	char *m = malloc(1 << 20);	/* mmap inside malloc */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(m, 1, 1 << 20);
	free(m);
	if (s >= 0)
		close(s);
	if (write(fd, "alive", 5) < 0)
		_exit(98);
}

static void open_file(int fd)
{
	if (write(fd, "before", 6) < 0)
		_exit(98);
	open("/etc/hostname", O_RDONLY);	/* not on the list */
	if (write(fd, "-after", 6) < 0)
		_exit(98);
}

static void exec_shell(int fd)
{
	char *argv[] = { "/bin/true", NULL };

	execv(argv[0], argv);
	if (write(fd, "exec returned", 13) < 0)
		_exit(98);
}

static void inet_socket(int fd)
{
	socket(AF_INET, SOCK_STREAM, 0);	/* only AF_UNIX is allowed */
	if (write(fd, "inet socket survived", 20) < 0)
		_exit(98);
}

static void test_allowed(void)
{
	char progress[128];
	int st = run_child(allowed_calls, progress, sizeof(progress));

	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "allowed calls: status 0x%x (%s)", st, progress);
	CHECKF(strcmp(progress, "alive") == 0, "allowed calls: progress '%s'", progress);
}

static void test_open_refused(void)
{
	char progress[128];
	int st = run_child(open_file, progress, sizeof(progress));

	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
	       "open() after the filter: status 0x%x, expected SIGSYS", st);
	CHECKF(strcmp(progress, "before") == 0,
	       "open() after the filter: progress '%s', expected 'before' only", progress);
}

static void test_exec_refused(void)
{
	char progress[128];
	int st = run_child(exec_shell, progress, sizeof(progress));

	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
	       "execve after the filter: status 0x%x, expected SIGSYS", st);
}

static void test_inet_socket_refused(void)
{
	char progress[128];
	int st = run_child(inet_socket, progress, sizeof(progress));

	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
	       "socket(AF_INET) after the filter: status 0x%x (%s)", st, progress);
}

int main(void)
{
	KR_TEST(test_allowed);
	KR_TEST(test_open_refused);
	KR_TEST(test_exec_refused);
	KR_TEST(test_inet_socket_refused);
	return kr_test_done();
}
