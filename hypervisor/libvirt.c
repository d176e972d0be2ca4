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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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
	struct stat st;

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
	if ((cfg->state_dir ? kr_snprintf(vm->state_dir, sizeof(vm->state_dir), "%s", cfg->state_dir)
			    : kr_snprintf(vm->state_dir, sizeof(vm->state_dir), "%s/%s", HV_STATE_ROOT, cfg->id)) < 0 ||
	    kr_snprintf(vm->console_log, sizeof(vm->console_log), "%s/console.log", vm->state_dir) < 0) {
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

	/* The state dir is ours alone: an existing one means the id is in use
	 * (or a crashed run left it; destroy removes it). */
	if (stat(vm->state_dir, &st) == 0) {
		kr_err_set(err, KR_ALREADY_EXISTS,
			   "VM %s: state dir %s already exists (the VM runs, or a killed run left it: cleanup removes it)",
			   vm->id, vm->state_dir);
		goto fail;
	}
	if (kr_mkdir_p(vm->state_dir, 0700, err) < 0)
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

static int lv_connect(struct lv_vm *vm, struct kr_err *err)
{
	pthread_once(&lv_once, lv_init);
	if (vm->embed && !vm->uri_given && lv_embed_conf(vm, err) < 0)
		return kr_err_wrap(err, "libvirt: embedded driver config");
	if (!lv_loop_ok)
		return lv_err(err, "libvirt: initialize", NULL);
	vm->conn = virConnectOpen(vm->uri);
	if (vm->conn)
		return 0;
	if (!vm->embed && strstr(vm->uri, "qemu:///system") &&
	    access("/run/libvirt/libvirt-sock", F_OK) != 0)
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

static int lv_destroy(struct hv_vm *v, struct kr_err *err)
{
	struct lv_vm *vm = (struct lv_vm *)v;
	int rc = 0;

	if (vm->dom) {
		if (lv_ended(vm, NULL) != 1 && virDomainDestroy(vm->dom) < 0 &&
		    virGetLastErrorCode() != VIR_ERR_NO_DOMAIN && virGetLastErrorCode() != VIR_ERR_OPERATION_INVALID)
			rc = lv_err(err, "libvirt: destroy VM ", vm->id);
		if (rc == 0)
			virDomainFree(vm->dom), vm->dom = NULL;
	}
	if (rc < 0)
		return rc;
	if (vm->conn) {
		virConnectClose(vm->conn);
		vm->conn = NULL;
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
	if ((cfg->state_dir ? kr_snprintf(vm.state_dir, sizeof(vm.state_dir), "%s", cfg->state_dir)
			    : kr_snprintf(vm.state_dir, sizeof(vm.state_dir), "%s/%s", HV_STATE_ROOT, cfg->id)) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "state dir path too long");
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
};
