/* The kvm backend: one kata-vmm process per VM (hypervisor/kvm/), plus a
 * virtiofsd for the shared dir.  The agent channel is the VMM's hybrid
 * vsock: the runtime connects to <state>/vsock.sock and sends
 * "CONNECT 1024\n" (agent_client_connect's "hvsock:" addresses).
 *
 * State dir (HV_STATE_ROOT/<id>): vsock.sock, vfs.sock, console.log,
 * vmm.log (the VMM's own messages), vmm.pid and virtiofsd.pid (for
 * cleanup after a SIGKILLed runtime). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hypervisor.h"
#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"

#define KVM_AGENT_PORT 1024
#define KVM_GUEST_CID 3
#define KVM_SOCKET_WAIT_MS 5000

struct kvm_vm {
	char id[HV_ID_MAX + 1];
	char state_dir[PATH_MAX];
	char console_log[PATH_MAX + 16];
	char vsock[108];		/* sun_path */
	char agent_addr[160];		/* hvsock:<vsock>:1024 */
	char vfs_sock[108];
	char cmdline[2048];
	char vmm[PATH_MAX];
	char *kernel, *initrd, *shared_dir, *virtiofsd;
	unsigned vcpus, memory_mib;
	pid_t vmm_pid, vfs_pid;
	bool made_state_dir, ended;
};

/* kata-vmm next to this program (build tree, `make install`), else in the
 * usual places. */
int hv_find_vmm(char *buf, size_t size)
{
	static const char *const fixed[] = {
		"/usr/local/bin/kata-vmm", "/usr/bin/kata-vmm", "/usr/libexec/kata-run/kata-vmm",
	};
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		char *slash;

		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			if (kr_snprintf(buf, size, "%s/kata-vmm", exe) >= 0 &&
			    access(buf, X_OK) == 0)
				return 0;
		}
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (access(fixed[i], X_OK) == 0)
			return kr_snprintf(buf, size, "%s", fixed[i]) < 0 ? -1 : 0;
	return -1;
}

static int kvm_paths(struct kvm_vm *vm, const struct hv_config *cfg, struct kr_err *err)
{
	if (hv_state_dir_path(cfg, vm->state_dir, sizeof(vm->state_dir), err) < 0)
		return -1;
	snprintf(vm->console_log, sizeof(vm->console_log), "%s/console.log", vm->state_dir);
	if (kr_snprintf(vm->vsock, sizeof(vm->vsock), "%s/vsock.sock", vm->state_dir) < 0 ||
	    kr_snprintf(vm->vfs_sock, sizeof(vm->vfs_sock), "%s/vfs.sock", vm->state_dir) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "state dir %s: too long for a Unix socket path", vm->state_dir);
	snprintf(vm->agent_addr, sizeof(vm->agent_addr), "hvsock:%s:%d", vm->vsock,
		 KVM_AGENT_PORT);
	return 0;
}

static void kvm_free(struct hv_vm *v)
{
	struct kvm_vm *vm = (struct kvm_vm *)v;

	if (!vm)
		return;
	free(vm->kernel);
	free(vm->initrd);
	free(vm->shared_dir);
	free(vm->virtiofsd);
	free(vm);
}

static int kvm_create(const struct hv_config *cfg, struct hv_vm **out, struct kr_err *err)
{
	struct kvm_vm *vm;
	char listen[32];

	if (hv_config_validate(cfg, err) < 0)
		return kr_err_wrap(err, "kvm: create VM %.64s", cfg && cfg->id ? cfg->id : "");
	if (!cfg->vmm && access("/dev/kvm", R_OK | W_OK) != 0)
		return kr_err_sys(err, "kvm: create VM %s: /dev/kvm (the kvm backend needs KVM, "
				  "i.e. hardware virtualization; hypervisor \"libvirt\" runs QEMU, "
				  "with TCG where KVM is missing)", cfg->id);
	vm = kr_xcalloc(1, sizeof(*vm));
	snprintf(vm->id, sizeof(vm->id), "%s", cfg->id);
	vm->vcpus = cfg->vcpus ? cfg->vcpus : 1;
	vm->memory_mib = cfg->memory_mib ? cfg->memory_mib : 512;
	vm->kernel = kr_xstrdup(cfg->kernel);
	vm->initrd = cfg->initrd ? kr_xstrdup(cfg->initrd) : NULL;
	vm->shared_dir = cfg->shared_dir ? kr_xstrdup(cfg->shared_dir) : NULL;
	vm->virtiofsd = kr_xstrdup(cfg->virtiofsd ? cfg->virtiofsd : HV_VIRTIOFSD);
	snprintf(listen, sizeof(listen), "vsock:%d", KVM_AGENT_PORT);
	if (kvm_paths(vm, cfg, err) < 0 ||
	    hv_cmdline_for(cfg, listen, HV_KVM_CMDLINE, vm->cmdline, sizeof(vm->cmdline), err) < 0)
		goto fail;
	if (cfg->vmm ? kr_snprintf(vm->vmm, sizeof(vm->vmm), "%s", cfg->vmm) < 0 ||
		       access(vm->vmm, X_OK) != 0
		     : hv_find_vmm(vm->vmm, sizeof(vm->vmm)) < 0) {
		if (cfg->vmm) {
			kr_err_sys(err, "kata-vmm %s", cfg->vmm);
			goto fail;
		}
		kr_err_set(err, KR_NOT_FOUND,
			   "kata-vmm not found next to this program nor in /usr/local/bin, /usr/bin "
			   "(make builds build/kata-vmm; make install installs it)");
		goto fail;
	}
	if (hv_state_dir_claim(vm->id, vm->state_dir, err) < 0)
		goto fail;
	vm->made_state_dir = true;
	*out = (struct hv_vm *)vm;
	return 0;
fail:
	kr_err_wrap(err, "kvm: create VM %s", vm->id);
	kvm_free((struct hv_vm *)vm);
	return -1;
}

/* fork + exec argv with stdin on /dev/null and stdout+stderr appended to
 * log, pass_fd (if >= 0) as fd 3; the child gets its own process group so
 * that a terminal's Ctrl-C reaches only the runtime, which then stops the
 * VM in order. */
static pid_t spawn(char *const argv[], const char *log, int pass_fd, struct kr_err *err)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	pid_t pid;

	if (fd < 0)
		return kr_err_sys(err, "open %s", log);
	pid = fork();
	if (pid < 0) {
		close(fd);
		return kr_err_sys(err, "fork for %s", argv[0]);
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
		if (null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		/* dup2 onto itself keeps FD_CLOEXEC: clear it explicitly. */
		if (pass_fd >= 0 && (pass_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(pass_fd, 3)) < 0)
			_exit(127);
		/* Nothing else of ours may reach the VMM or virtiofsd (the
		 * containerd shim's listening socket is an inherited fd 3). */
		close_range(pass_fd >= 0 ? 4 : 3, ~0U, 0);
		execv(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	return pid;
}

static int write_pid(const struct kvm_vm *vm, const char *name, pid_t pid, struct kr_err *err)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", vm->state_dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	/* With the start time: cleanup must not kill a process that merely
	 * got the same pid later. */
	if (fd < 0 || dprintf(fd, "%d %llu\n", (int)pid, kr_proc_start_time(pid)) < 0) {
		kr_err_sys(err, "write %s", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The helper's socket appears when it is ready; fail early if it died
 * (reaped here: *pid becomes 0 so that nobody kills a reused pid). */
static int wait_socket(const char *path, pid_t *pid, const char *what, struct kr_err *err)
{
	uint64_t deadline = kr_now_ms() + KVM_SOCKET_WAIT_MS;
	int status;

	while (access(path, F_OK) != 0) {
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			*pid = 0;
			return kr_err_set(err, KR_INTERNAL, "%s exited (status 0x%x) before creating %s",
					  what, status, path);
		}
		if (kr_now_ms() >= deadline)
			return kr_err_set(err, KR_DEADLINE_EXCEEDED, "%s did not create %s within %d ms",
					  what, path, KVM_SOCKET_WAIT_MS);
		usleep(2000);
	}
	return 0;
}

/* virtiofsd gets its listening socket ready-made (--fd): kata-vmm can
 * connect at once, and virtiofsd leaves no pid file in /run/virtiofsd. */
static int start_virtiofsd(struct kvm_vm *vm, struct kr_err *err)
{
	char src[PATH_MAX + 16], log[PATH_MAX + 16];
	char *argv[] = { vm->virtiofsd, "--fd=3", "-o", src, "-o", "cache=none",
			 "-o", "sandbox=chroot", NULL };
	int lfd = kr_unix_listen(vm->vfs_sock, err);

	if (lfd < 0)
		return kr_err_wrap(err, "virtiofsd socket");
	snprintf(src, sizeof(src), "source=%s", vm->shared_dir);
	snprintf(log, sizeof(log), "%s/virtiofsd.log", vm->state_dir);
	vm->vfs_pid = spawn(argv, log, lfd, err);
	close(lfd);
	if (vm->vfs_pid < 0) {
		vm->vfs_pid = 0;
		return -1;
	}
	return write_pid(vm, "virtiofsd.pid", vm->vfs_pid, err);
}

static int start_vmm(struct kvm_vm *vm, struct kr_err *err)
{
	char cpus[16], mem[24], vsock[160], fs[160], log[PATH_MAX + 16];
	char *argv[32];
	int n = 0;

	snprintf(cpus, sizeof(cpus), "%u", vm->vcpus);
	snprintf(mem, sizeof(mem), "%u", vm->memory_mib);
	snprintf(vsock, sizeof(vsock), "%d,%s", KVM_GUEST_CID, vm->vsock);
	snprintf(log, sizeof(log), "%s/vmm.log", vm->state_dir);
	argv[n++] = vm->vmm;
	argv[n++] = "--kernel"; argv[n++] = vm->kernel;
	if (vm->initrd) {
		argv[n++] = "--initrd";
		argv[n++] = vm->initrd;
	}
	argv[n++] = "--cmdline"; argv[n++] = vm->cmdline;
	argv[n++] = "--cpus"; argv[n++] = cpus;
	argv[n++] = "--memory"; argv[n++] = mem;
	argv[n++] = "--vsock"; argv[n++] = vsock;
	if (vm->shared_dir) {
		snprintf(fs, sizeof(fs), "%s,%s", vm->vfs_sock, HV_SHARE_TAG);
		argv[n++] = "--fs";
		argv[n++] = fs;
	}
	argv[n++] = "--rng";
	argv[n++] = "--console"; argv[n++] = vm->console_log;
	if (kr_log_get_level() >= KR_LOG_DEBUG) {
		argv[n++] = "--log-level";
		argv[n++] = "debug";
	}
	argv[n] = NULL;
	vm->vmm_pid = spawn(argv, log, -1, err);
	if (vm->vmm_pid < 0) {
		vm->vmm_pid = 0;
		return -1;
	}
	if (write_pid(vm, "vmm.pid", vm->vmm_pid, err) < 0)
		return -1;
	if (wait_socket(vm->vsock, &vm->vmm_pid, "kata-vmm", err) < 0) {
		vm->ended = vm->vmm_pid == 0;
		return -1;
	}
	return 0;
}

/* The last bytes of the VMM's log, one line (its own last words say why it
 * stopped: no KVM, a bad kernel, a refused syscall). */
static void vmm_log_tail(const struct kvm_vm *vm, char *tail, size_t size)
{
	char log[PATH_MAX + 16];
	ssize_t n;

	snprintf(log, sizeof(log), "%s/vmm.log", vm->state_dir);
	n = kr_read_tail(log, tail, size - 1);
	while (n > 0 && tail[n - 1] == '\n')
		n--;
	tail[n > 0 ? n : 0] = 0;
	for (char *p = tail; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

static int kvm_start(struct hv_vm *v, struct kr_err *err)
{
	struct kvm_vm *vm = (struct kvm_vm *)v;

	if (vm->vmm_pid)
		return kr_err_set(err, KR_FAILED_PRECONDITION, "kvm: VM %s already started", vm->id);
	if ((vm->shared_dir && start_virtiofsd(vm, err) < 0) || start_vmm(vm, err) < 0) {
		char log[PATH_MAX + 16], tail[512];

		snprintf(log, sizeof(log), "%s/vmm.log", vm->state_dir);
		vmm_log_tail(vm, tail, sizeof(tail));
		kr_err_wrap(err, "kvm: start VM %s (VMM log %s%s%s)", vm->id, log,
			    tail[0] ? ": " : "", tail);
		return -1;
	}
	kr_debug("kvm: VM %s: kata-vmm pid %d, virtiofsd pid %d", vm->id, (int)vm->vmm_pid,
		 (int)vm->vfs_pid);
	return 0;
}

/* 1 = kata-vmm has exited (reaped here), 0 = running. */
static int vmm_ended(struct kvm_vm *vm)
{
	int status;
	pid_t r;

	if (!vm->vmm_pid || vm->ended)
		return 1;
	r = waitpid(vm->vmm_pid, &status, WNOHANG);
	if (r == vm->vmm_pid || (r < 0 && errno == ECHILD)) {
		vm->ended = true;
		if (r == vm->vmm_pid && status != 0) {
			char tail[512];

			vmm_log_tail(vm, tail, sizeof(tail));
			kr_warn("kvm: VM %s: kata-vmm ended with status 0x%x: %s", vm->id,
				status, tail[0] ? tail : "(its log is empty)");
		} else if (r == vm->vmm_pid) {
			kr_debug("kvm: VM %s: kata-vmm ended", vm->id);
		}
		return 1;
	}
	return 0;
}

static int kvm_wait(struct hv_vm *v, unsigned timeout_ms, struct kr_err *err)
{
	struct kvm_vm *vm = (struct kvm_vm *)v;
	uint64_t end = kr_now_ms() + timeout_ms;

	(void)err;
	for (;;) {
		if (vmm_ended(vm))
			return 1;
		if (kr_now_ms() >= end)
			return 0;
		usleep(10 * 1000);
	}
}

/* SIGKILL and reap, waiting at most 3 s: a child stuck in the kernel (a
 * hung FUSE or NFS mount under the share) must not hang the stop. */
static void kill_reap(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		for (int i = 0; i < 300; i++) {
			pid_t r = waitpid(*pid, NULL, WNOHANG);

			if (r == *pid || (r < 0 && errno != EINTR))
				break;
			if (i == 299)
				kr_warn("kvm: pid %d did not die within 3 s of SIGKILL", (int)*pid);
			usleep(10 * 1000);
		}
	}
	*pid = 0;
}

static int kvm_destroy(struct hv_vm *v, struct kr_err *err)
{
	struct kvm_vm *vm = (struct kvm_vm *)v;

	/* The guest is thrown away: no need for an orderly stop. */
	if (!vm->ended)
		kill_reap(&vm->vmm_pid);
	vm->ended = true;
	kill_reap(&vm->vfs_pid);
	if (vm->made_state_dir) {
		struct kr_err e2;

		if (kr_rm_rf(vm->state_dir, &e2) < 0 && e2.errnum != ENOENT)
			return kr_err_set(err, e2.code, "kvm: destroy VM %s: %s", vm->id, e2.msg);
		vm->made_state_dir = false;
	}
	return 0;
}

/* Kill the process a pid file names if it still is that process (same
 * start time: pids are reused). */
static bool kill_if_ours(const char *state_dir, const char *pidfile)
{
	char path[PATH_MAX + 32];
	kr_cleanup_free char *text = NULL;
	unsigned long long start;
	size_t len;
	int pid;

	snprintf(path, sizeof(path), "%s/%s", state_dir, pidfile);
	if (kr_read_file(path, 64, &text, &len, NULL) < 0 ||
	    sscanf(text, "%d %llu", &pid, &start) != 2 || pid <= 1 || start == 0 ||
	    kr_proc_start_time(pid) != start)
		return false;
	kill(pid, SIGKILL);
	return true;
}

static int kvm_cleanup(const struct hv_config *cfg, struct kr_err *err)
{
	struct kvm_vm vm = { 0 };
	struct stat st;
	bool found;

	if (!cfg || !hv_id_valid(cfg->id))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "kvm: cleanup: invalid VM id");
	if (kvm_paths(&vm, cfg, err) < 0)
		return -1;
	found = stat(vm.state_dir, &st) == 0;
	if (!found)
		return 0;
	kill_if_ours(vm.state_dir, "vmm.pid");
	kill_if_ours(vm.state_dir, "virtiofsd.pid");
	if (kr_rm_rf(vm.state_dir, err) < 0)
		return kr_err_wrap(err, "kvm: cleanup VM %s", cfg->id);
	return 1;
}

static const char *kvm_agent_socket(const struct hv_vm *v) { return ((const struct kvm_vm *)v)->agent_addr; }
static const char *kvm_console_log(const struct hv_vm *v) { return ((const struct kvm_vm *)v)->console_log; }
static const char *kvm_state_dir(const struct hv_vm *v) { return ((const struct kvm_vm *)v)->state_dir; }
static int kvm_pid(const struct hv_vm *v)
{
	const struct kvm_vm *vm = (const struct kvm_vm *)v;

	return vm->ended ? 0 : vm->vmm_pid;
}

const struct hv_ops hv_kvm_ops = {
	.name = "kvm",
	.create = kvm_create,
	.start = kvm_start,
	.wait = kvm_wait,
	.destroy = kvm_destroy,
	.free = kvm_free,
	.cleanup = kvm_cleanup,
	.agent_socket = kvm_agent_socket,
	.console_log = kvm_console_log,
	.state_dir = kvm_state_dir,
	.pid = kvm_pid,
};
