/* The libvirt backend: QEMU (TCG or KVM) through the libvirt C API.
 *
 * Connection: by default each VM has its own embedded QEMU driver,
 * qemu:///embed?root=<state dir>/lv, which runs inside this process (no
 * libvirtd); QEMU and virtiofsd are this process's children and the domain
 * lives as long as this process keeps the connection (a shim does).  An
 * embedded driver needs an event loop: one thread runs libvirt's default
 * loop.  libvirt allows one embed root per process, so one process drives
 * one VM with the embed URI; cfg->uri = "qemu:///system" uses libvirtd
 * (scripts/libvirt-setup.sh starts it).
 *
 * The domain is transient (virDomainCreateXML): destroying it, or the guest
 * powering off (on_poweroff/on_reboot/on_crash = destroy), removes it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hypervisor.h"
#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"

struct lv_vm {
	char id[HV_ID_MAX + 1];
	char name[HV_ID_MAX + 16];
	char state_dir[PATH_MAX];
	char agent_sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char console_log[PATH_MAX];
	char uri[PATH_MAX + 64];
	char cmdline[2048];
	char *kernel, *initrd, *shared_dir, *virtiofsd;
	unsigned vcpus, memory_mib;
	enum hv_accel accel;
	bool embed;
	bool uri_given;
	bool made_state_dir;
	virConnectPtr conn;
	virDomainPtr dom;
};

static void lv_silent(void *opaque, virErrorPtr e) { (void)opaque; (void)e; }

static pthread_once_t lv_once = PTHREAD_ONCE_INIT;
static int lv_loop_ok;

static void *lv_loop(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			usleep(10000);
	return NULL;
}

static void lv_init(void)
{
	pthread_t t;
	pthread_attr_t a;

	/* Library code never prints: keep libvirt's default handler quiet;
	 * errors are read with virGetLastErrorMessage(). */
	virSetErrorFunc(NULL, lv_silent);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0)
		return;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, lv_loop, NULL) == 0)
		lv_loop_ok = 1;
	pthread_attr_destroy(&a);
}

static int lv_err(struct kr_err *err, const char *fmt, const char *arg)
{
	const char *m = virGetLastErrorMessage();

	return kr_err_set(err, KR_INTERNAL, "%s%s: %s", fmt, arg ? arg : "", m ? m : "unknown libvirt error");
}

static int lv_create(const struct hv_config *cfg, struct hv_vm **out, struct kr_err *err)
{
	struct lv_vm *vm;

	if (hv_config_validate(cfg, err) < 0)
		return kr_err_wrap(err, "libvirt: create VM %.64s", cfg && cfg->id ? cfg->id : "");
	vm = kr_xcalloc(1, sizeof(*vm));
	snprintf(vm->id, sizeof(vm->id), "%s", cfg->id);
	snprintf(vm->name, sizeof(vm->name), "kata-run-%s", cfg->id);
	vm->accel = cfg->accel == HV_ACCEL_AUTO ? hv_detect_accel(NULL, NULL) : cfg->accel;
	vm->vcpus = cfg->vcpus ? cfg->vcpus : 1;
	vm->memory_mib = cfg->memory_mib ? cfg->memory_mib : 512;
	vm->kernel = kr_xstrdup(cfg->kernel);
	vm->initrd = cfg->initrd ? kr_xstrdup(cfg->initrd) : NULL;
	vm->shared_dir = cfg->shared_dir ? kr_xstrdup(cfg->shared_dir) : NULL;
	vm->virtiofsd = kr_xstrdup(cfg->virtiofsd ? cfg->virtiofsd : HV_VIRTIOFSD);
	if (hv_cmdline(cfg, vm->cmdline, sizeof(vm->cmdline), err) < 0)
		goto fail;
	if (hv_state_dir_path(cfg, vm->state_dir, sizeof(vm->state_dir), err) < 0)
		goto fail;
	if (kr_snprintf(vm->console_log, sizeof(vm->console_log), "%s/console.log", vm->state_dir) < 0) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "state dir path too long");
		goto fail;
	}
	if (kr_snprintf(vm->agent_sock, sizeof(vm->agent_sock), "%s/agent.sock", vm->state_dir) < 0) {
		kr_err_set(err, KR_INVALID_ARGUMENT,
			   "state dir %s: too long for a Unix socket path (%zu bytes max)",
			   vm->state_dir, sizeof(vm->agent_sock) - 12);
		goto fail;
	}
	vm->uri_given = cfg->uri != NULL;
	vm->embed = !cfg->uri || strncmp(cfg->uri, "qemu:///embed", 13) == 0;
	if (cfg->uri && !vm->embed)
		snprintf(vm->uri, sizeof(vm->uri), "%s", cfg->uri);
	else if (cfg->uri)
		snprintf(vm->uri, sizeof(vm->uri), "%s", cfg->uri);
	else
		snprintf(vm->uri, sizeof(vm->uri), "qemu:///embed?root=%s/lv", vm->state_dir);

	if (hv_state_dir_claim(vm->id, vm->state_dir, err) < 0)
		goto fail;
	vm->made_state_dir = true;
	*out = (struct hv_vm *)vm;
	return 0;
fail:
	kr_err_wrap(err, "libvirt: create VM %s", vm->id);
	free(vm->kernel); free(vm->initrd); free(vm->shared_dir); free(vm->virtiofsd);
	free(vm);
	return -1;
}

/* The embedded driver reads <root>/etc/qemu.conf.  QEMU runs as root, as
 * this process does: Debian's default user (libvirt-qemu) need not exist,
 * and QEMU can create its sockets in the 0700 state dir; no chown of the
 * caller's kernel/initrd (dynamic_ownership off); QEMU writes the console
 * log itself (stdio_handler file: no virtlogd needed). */
static int lv_embed_conf(struct lv_vm *vm, struct kr_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX];

	if (kr_snprintf(dir, sizeof(dir), "%s/lv/etc", vm->state_dir) < 0 ||
	    kr_snprintf(path, sizeof(path), "%s/qemu.conf", dir) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "state dir path too long");
	if (kr_mkdir_p(dir, 0700, err) < 0)
		return -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return kr_err_sys(err, "create %s", path);
	static const char conf[] = "user = \"root\"\ngroup = \"root\"\n"
				   "dynamic_ownership = 0\nremember_owner = 0\n"
				   "stdio_handler = \"file\"\n";
	int r = kr_write_full(fd, conf, sizeof(conf) - 1);
	close(fd);
	return r < 0 ? kr_err_sys(err, "write %s", path) : 0;
}

/* Reaping QEMU and virtiofsd.  libvirt daemonizes them (double fork), so
 * they are orphans, reaped by init; libvirt then polls kill(pid, 0) every
 * 200 ms until they are gone, and a zombie still answers.  An init that
 * reaps late (seen: about 2 s on these machines) makes every VM stop that
 * slow.  So with the embedded driver this process is a child subreaper:
 * the orphans become our children, and this thread reaps exactly them
 * (libvirt reaps its other children itself, by pid). */
#define LV_MAX_ADOPTED 64
static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t adopted[LV_MAX_ADOPTED];

static bool take_adopted(pid_t pid)
{
	bool found = false;

	pthread_mutex_lock(&adopt_lock);
	for (unsigned i = 0; i < LV_MAX_ADOPTED; i++)
		if (adopted[i] == pid) {
			adopted[i] = 0;
			found = true;
		}
	pthread_mutex_unlock(&adopt_lock);
	return found;
}

/* libvirt reaps the children it spawned itself at once (virCommand
 * waits by pid).  A zombie that stays longer is an orphan adopted through
 * a helper that forked (virtiofsd's sandbox child outlives its parent,
 * the pid in the pid file): nobody else will reap it. */
#define LV_ORPHAN_GRACE_MS 500

static void *lv_reaper(void *arg)
{
	pid_t candidate = 0;
	uint64_t since = 0;

	(void)arg;
	for (;;) {
		siginfo_t si = { 0 };

		/* WNOWAIT: look without reaping; a child that is not ours
		 * to reap stays for libvirt's own waitpid. */
		if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) < 0 || si.si_pid <= 0) {
			usleep(50 * 1000);
			continue;
		}
		if (take_adopted(si.si_pid)) {
			waitpid(si.si_pid, NULL, 0);
			continue;
		}
		if (si.si_pid != candidate) {
			candidate = si.si_pid;
			since = kr_now_ms();
		} else if (kr_now_ms() - since >= LV_ORPHAN_GRACE_MS) {
			kr_debug("libvirt: reaping orphan %d", (int)candidate);
			waitpid(candidate, NULL, WNOHANG);
			candidate = 0;
			continue;
		}
		usleep(10 * 1000);
	}
	return NULL;
}

static pid_t parent_of(pid_t pid)
{
	char path[64];
	kr_cleanup_free char *status = NULL;
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (kr_read_file(path, 1 << 16, &status, NULL, NULL) < 0 || !(p = strstr(status, "\nPPid:")))
		return 0;
	return (pid_t)atoi(p + 6);
}

/* The pid in a libvirt pid file, 0 if none (or not a real process). */
static int read_pid_file(const char *path)
{
	kr_cleanup_free char *text = NULL;
	int pid;

	if (kr_read_file(path, 64, &text, NULL, NULL) < 0 || sscanf(text, "%d", &pid) != 1 || pid <= 1)
		return 0;
	return pid;
}

/* After a start: adopt the VM's helpers that became our children. */
static void lv_adopt_helpers(struct lv_vm *vm)
{
	char dir[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (kr_snprintf(dir, sizeof(dir), "%s/lv/run/qemu", vm->state_dir) < 0 || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		size_t n = strlen(e->d_name);
		int pid;

		if (n < 5 || strcmp(e->d_name + n - 4, ".pid") != 0 || strcmp(e->d_name, "driver.pid") == 0 ||
		    kr_snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < 0 ||
		    !(pid = read_pid_file(path)) || parent_of(pid) != getpid())
			continue;
		pthread_mutex_lock(&adopt_lock);
		for (unsigned i = 0; i < LV_MAX_ADOPTED; i++)
			if (!adopted[i]) {
				adopted[i] = pid;
				break;
			}
		pthread_mutex_unlock(&adopt_lock);
	}
	closedir(d);
}

static pthread_once_t reaper_once = PTHREAD_ONCE_INIT;

static void lv_start_reaper(void)
{
	pthread_t t;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		kr_debug("libvirt: PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		return;
	}
	if (pthread_create(&t, NULL, lv_reaper, NULL) == 0)
		pthread_detach(t);
}

/* The embedded driver probes QEMU's capabilities (seconds under load) into
 * <root>/cache/qemu/capabilities, and each VM has a fresh root.  Keep the
 * probe results across VMs: seed the root from a persistent cache and save
 * new results back.  libvirt re-probes by itself when a cached file no
 * longer matches the QEMU binary or libvirt version. */
static void caps_cache_dir(char *buf, size_t size)
{
	const char *root = getenv("KATA_RUN_CACHE");

	snprintf(buf, size, "%s/libvirt-caps", root && root[0] == '/' ? root : "/var/cache/kata-run");
}

/* Copy regular *.xml files from src to dst that dst lacks (temp + rename:
 * concurrent VMs may save the same file). */
static void copy_missing_xml(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char from[PATH_MAX], to[PATH_MAX], tmp[PATH_MAX];
		size_t n = strlen(e->d_name);
		kr_cleanup_free char *data = NULL;
		size_t len;
		int fd;

		if (n < 5 || strcmp(e->d_name + n - 4, ".xml") != 0 ||
		    kr_snprintf(from, sizeof(from), "%s/%s", src, e->d_name) < 0 ||
		    kr_snprintf(to, sizeof(to), "%s/%s", dst, e->d_name) < 0 ||
		    kr_snprintf(tmp, sizeof(tmp), "%s/.%s.%d", dst, e->d_name, (int)getpid()) < 0 ||
		    access(to, F_OK) == 0 || kr_read_file(from, 16 << 20, &data, &len, NULL) < 0)
			continue;
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			continue;
		if (kr_write_full(fd, data, len) < 0 || close(fd) < 0 || rename(tmp, to) < 0)
			unlink(tmp);
	}
	closedir(d);
}

static void lv_caps_cache(struct lv_vm *vm, bool save)
{
	char persistent[PATH_MAX], mine[PATH_MAX];

	caps_cache_dir(persistent, sizeof(persistent));
	if (kr_snprintf(mine, sizeof(mine), "%s/lv/cache/qemu/capabilities", vm->state_dir) < 0 ||
	    kr_mkdir_p(save ? persistent : mine, 0700, NULL) < 0)
		return;
	if (save)
		copy_missing_xml(mine, persistent);
	else
		copy_missing_xml(persistent, mine);
}

/* Whether something listens on libvirtd's socket (a stale socket file
 * stays behind a killed daemon). */
static bool libvirtd_answers(void)
{
	int fd = kr_unix_connect("/run/libvirt/libvirt-sock", NULL);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int lv_connect(struct lv_vm *vm, struct kr_err *err)
{
	pthread_once(&lv_once, lv_init);
	if (vm->embed && !vm->uri_given && lv_embed_conf(vm, err) < 0)
		return kr_err_wrap(err, "libvirt: embedded driver config");
	if (vm->embed && !vm->uri_given) {
		lv_caps_cache(vm, false);
		pthread_once(&reaper_once, lv_start_reaper);
	}
	if (!lv_loop_ok)
		return lv_err(err, "libvirt: initialize", NULL);
	vm->conn = virConnectOpen(vm->uri);
	if (vm->conn)
		return 0;
	if (!vm->embed && strstr(vm->uri, "qemu:///system") && !libvirtd_answers())
		return kr_err_set(err, KR_UNAVAILABLE,
				  "libvirt: connect %s: libvirtd is not running (start it with scripts/libvirt-setup.sh)",
				  vm->uri);
	return lv_err(err, "libvirt: connect ", vm->uri);
}

static int lv_start(struct hv_vm *v, struct kr_err *err)
{
	struct lv_vm *vm = (struct lv_vm *)v;
	struct hv_domain_desc d = {
		.name = vm->name, .accel = vm->accel, .vcpus = vm->vcpus,
		.memory_mib = vm->memory_mib, .kernel = vm->kernel, .initrd = vm->initrd,
		.cmdline = vm->cmdline, .agent_socket = vm->agent_sock,
		.console_log = vm->console_log, .shared_dir = vm->shared_dir,
		.virtiofsd = vm->virtiofsd,
	};
	char *xml;

	if (vm->dom)
		return kr_err_set(err, KR_FAILED_PRECONDITION, "libvirt: VM %s already started", vm->id);
	xml = hv_libvirt_xml(&d, err);
	if (!xml)
		return kr_err_wrap(err, "libvirt: start VM %s", vm->id);
	if (!vm->conn && lv_connect(vm, err) < 0) {
		free(xml);
		return kr_err_wrap(err, "start VM %s", vm->id);
	}
	kr_debug("libvirt: %s accel=%s uri=%s", vm->name, hv_accel_name(vm->accel), vm->uri);
	vm->dom = virDomainCreateXML(vm->conn, xml, 0);
	free(xml);
	if (!vm->dom)
		return lv_err(err, "libvirt: start VM ", vm->id);
	if (vm->embed && !vm->uri_given) {
		lv_caps_cache(vm, true);
		lv_adopt_helpers(vm);
	}
	return 0;
}

/* 1 = the domain is gone or shut off, 0 = running, -1 = error. */
static int lv_ended(struct lv_vm *vm, struct kr_err *err)
{
	int r, state = 0, reason = 0;

	if (!vm->dom)
		return 1;
	r = virDomainIsActive(vm->dom);
	if (r == 1)
		return 0;
	if (r == 0)
		return 1;
	if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
		return 1;	/* transient and gone */
	if (virDomainGetState(vm->dom, &state, &reason, 0) == 0)
		return state == VIR_DOMAIN_SHUTOFF ? 1 : 0;
	if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
		return 1;
	return lv_err(err, "libvirt: state of VM ", vm->id);
}

static int lv_wait(struct hv_vm *v, unsigned timeout_ms, struct kr_err *err)
{
	struct lv_vm *vm = (struct lv_vm *)v;
	uint64_t end = kr_now_ms() + timeout_ms;

	for (;;) {
		int r = lv_ended(vm, err);
		if (r != 0)
			return r;
		if (kr_now_ms() >= end)
			return 0;
		usleep(50 * 1000);
	}
}

/* virDomainDestroy sends QEMU SIGTERM and polls every 200 ms; QEMU then
 * stops its devices and vhost-user backends in order, which takes over a
 * second under TCG.  The guest is thrown away and the share is write-through
 * (cache=none): nothing is lost by SIGKILL first.  The pid comes from the
 * embedded driver's pid file and is checked to be this domain's QEMU. */
static int lv_pid(const struct hv_vm *v);

static void lv_kill_qemu(struct lv_vm *vm)
{
	char path[64], guest[HV_ID_MAX + 32];
	kr_cleanup_free char *cmdline = NULL;
	size_t len;
	int pid = lv_pid((struct hv_vm *)vm);

	if (!vm->embed || vm->uri_given || !pid)
		return;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	if (kr_read_file(path, 1 << 16, &cmdline, &len, NULL) < 0)
		return;
	snprintf(guest, sizeof(guest), "guest=%s,", vm->name);
	for (size_t i = 0; i < len; i += strlen(cmdline + i) + 1)
		if (strncmp(cmdline + i, guest, strlen(guest)) == 0) {
			kill(pid, SIGKILL);
			return;
		}
}

static int lv_destroy(struct hv_vm *v, struct kr_err *err)
{
	struct lv_vm *vm = (struct lv_vm *)v;
	int rc = 0;

	if (vm->dom) {
		if (lv_ended(vm, NULL) != 1)
			lv_kill_qemu(vm);
		kr_debug("libvirt: %s killed", vm->name);
		/* QEMU is gone: libvirt's event thread notices (monitor EOF) and
		 * stops the domain under its job lock; a virDomainDestroy now
		 * would wait for that lock, up to libvirt's 30 s job timeout
		 * when the machine is loaded.  Let it finish first. */
		for (int i = 0; i < 60 && lv_ended(vm, NULL) != 1; i++)
			usleep(50 * 1000);
		if (lv_ended(vm, NULL) != 1 && virDomainDestroy(vm->dom) < 0 &&
		    virGetLastErrorCode() != VIR_ERR_NO_DOMAIN && virGetLastErrorCode() != VIR_ERR_OPERATION_INVALID)
			rc = lv_err(err, "libvirt: destroy VM ", vm->id);
		if (rc == 0)
			virDomainFree(vm->dom), vm->dom = NULL;
	}
	if (rc < 0)
		return rc;
	kr_debug("libvirt: %s destroyed", vm->name);
	if (vm->conn) {
		virConnectClose(vm->conn);
		vm->conn = NULL;
		kr_debug("libvirt: %s connection closed", vm->name);
	}
	if (vm->made_state_dir) {
		struct kr_err e2;
		if (kr_rm_rf(vm->state_dir, &e2) < 0 && e2.errnum != ENOENT)
			return kr_err_set(err, e2.code, "libvirt: destroy VM %s: %s", vm->id, e2.msg);
		vm->made_state_dir = false;
	}
	return 0;
}

static int lv_cleanup(const struct hv_config *cfg, struct kr_err *err)
{
	struct lv_vm vm = { 0 };
	struct stat st;
	int rc = 0;

	if (!cfg || !hv_id_valid(cfg->id))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "libvirt: cleanup: invalid VM id");
	snprintf(vm.id, sizeof(vm.id), "%s", cfg->id);
	snprintf(vm.name, sizeof(vm.name), "kata-run-%s", cfg->id);
	if (hv_state_dir_path(cfg, vm.state_dir, sizeof(vm.state_dir), err) < 0)
		return -1;
	vm.uri_given = cfg->uri != NULL;
	vm.embed = !cfg->uri || strncmp(cfg->uri, "qemu:///embed", 13) == 0;
	if (cfg->uri)
		snprintf(vm.uri, sizeof(vm.uri), "%s", cfg->uri);
	else
		snprintf(vm.uri, sizeof(vm.uri), "qemu:///embed?root=%s/lv", vm.state_dir);
	if (stat(vm.state_dir, &st) != 0 && errno == ENOENT && vm.embed)
		return 0;	/* nothing was left */
	/* Reopening the embedded driver's root reconnects to a QEMU that
	 * outlived its owner; libvirtd keeps its domains anyway. */
	if (!vm.embed || stat(vm.state_dir, &st) == 0) {
		if (lv_connect(&vm, err) < 0)
			return kr_err_wrap(err, "cleanup VM %s", vm.id);
		vm.dom = virDomainLookupByName(vm.conn, vm.name);
		if (!vm.dom && virGetLastErrorCode() != VIR_ERR_NO_DOMAIN)
			rc = lv_err(err, "libvirt: cleanup: look up ", vm.name);
	}
	vm.made_state_dir = stat(vm.state_dir, &st) == 0;
	if (rc == 0)
		rc = lv_destroy((struct hv_vm *)&vm, err);
	if (vm.dom)
		virDomainFree(vm.dom);
	if (vm.conn)
		virConnectClose(vm.conn);
	return rc;
}

static void lv_free(struct hv_vm *v)
{
	struct lv_vm *vm = (struct lv_vm *)v;

	if (!vm)
		return;
	if (vm->dom)
		virDomainFree(vm->dom);
	if (vm->conn)
		virConnectClose(vm->conn);
	free(vm->kernel); free(vm->initrd); free(vm->shared_dir); free(vm->virtiofsd);
	free(vm);
}

static const char *lv_agent_socket(const struct hv_vm *v) { return ((const struct lv_vm *)v)->agent_sock; }
static const char *lv_console_log(const struct hv_vm *v) { return ((const struct lv_vm *)v)->console_log; }
static const char *lv_state_dir(const struct hv_vm *v) { return ((const struct lv_vm *)v)->state_dir; }

static int lv_pid(const struct hv_vm *v)
{
	const struct lv_vm *vm = (const struct lv_vm *)v;
	char path[PATH_MAX];

	if (!vm->dom)
		return 0;
	if ((vm->embed && !vm->uri_given
		     ? kr_snprintf(path, sizeof(path), "%s/lv/run/qemu/%s.pid", vm->state_dir, vm->name)
		     : kr_snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", vm->name)) < 0)
		return 0;
	return read_pid_file(path);
}

const struct hv_ops hv_libvirt_ops = {
	.name = "libvirt",
	.create = lv_create,
	.start = lv_start,
	.wait = lv_wait,
	.destroy = lv_destroy,
	.free = lv_free,
	.cleanup = lv_cleanup,
	.agent_socket = lv_agent_socket,
	.console_log = lv_console_log,
	.state_dir = lv_state_dir,
	.pid = lv_pid,
};
