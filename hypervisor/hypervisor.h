/* One VM interface, several backends (docs/architecture.md, hypervisor/).
 *
 *   const struct hv_ops *ops = hypervisor_open("auto", &err);
 *   struct hv_vm *vm;
 *   ops->create(&cfg, &vm, &err);     validate, prepare the state dir
 *   ops->start(vm, &err);             boot; the agent socket then exists
 *   ops->agent_socket(vm)             -> talk ttrpc to the agent
 *   ops->wait(vm, timeout_ms, &err);  1 = VM ended, 0 = still running
 *   ops->destroy(vm, &err);           stop it (if running) and leave nothing:
 *                                     no VM, no QEMU/virtiofsd, no sockets
 *   ops->free(vm);                    frees memory only (call after destroy)
 *
 * Every fallible call returns -1 and fills a struct kr_err; backends never
 * print (they may log at debug level). */
#ifndef KR_HYPERVISOR_H
#define KR_HYPERVISOR_H

#include <stdbool.h>

#include "kr/error.h"

/* The agent's virtio-serial port name and the virtio-fs tag the guest
 * agent expects (kata_run.agent.listen= / kata_run.agent.share=). */
#define HV_AGENT_PORT "agent.channel.0"
#define HV_SHARE_TAG "kataShared"
#define HV_VIRTIOFSD "/usr/lib/qemu/virtiofsd"
#define HV_STATE_ROOT "/run/kata-run/vm"

/* An id names the domain (kata-run-<id>) and the state dir: same rule as
 * the agent's container ids. */
#define HV_ID_MAX 64

enum hv_accel {
	HV_ACCEL_AUTO = 0,	/* detect: hv_detect_accel() */
	HV_ACCEL_TCG,		/* software emulation (libvirt type='qemu') */
	HV_ACCEL_KVM,
};

struct hv_config {
	const char *id;			/* required, [A-Za-z0-9_.-]{1,64} */
	const char *kernel;		/* required, must exist */
	const char *initrd;		/* optional, must exist if set */
	const char *cmdline_extra;	/* appended to the base command line */
	const char *shared_dir;		/* optional: virtio-fs share (tag kataShared) */
	unsigned vcpus;			/* 0 -> 1 */
	unsigned memory_mib;		/* 0 -> 512 */
	enum hv_accel accel;		/* AUTO -> detect */
	const char *state_dir;		/* NULL -> HV_STATE_ROOT/<id>; removed by destroy */
	const char *virtiofsd;		/* NULL -> HV_VIRTIOFSD */
	const char *uri;		/* libvirt only; NULL -> embed (see libvirt.c) */
	const char *vmm;		/* kvm only: kata-vmm; NULL -> hv_find_vmm() */
};

struct hv_vm;

struct hv_ops {
	const char *name;
	int (*create)(const struct hv_config *cfg, struct hv_vm **out, struct kr_err *err);
	int (*start)(struct hv_vm *vm, struct kr_err *err);
	/* Returns 1 once the VM has ended, 0 if timeout_ms passed first
	 * (timeout_ms 0 = poll), -1 on error. */
	int (*wait)(struct hv_vm *vm, unsigned timeout_ms, struct kr_err *err);
	/* Force the VM off (if running) and remove everything it made. Safe on
	 * a VM that never started or already ended; idempotent. */
	int (*destroy)(struct hv_vm *vm, struct kr_err *err);
	void (*free)(struct hv_vm *vm);
	/* Remove what a run of cfg->id left when its process died without
	 * destroy (SIGKILL): the domain, QEMU, virtiofsd, the state dir. Only
	 * cfg->id, cfg->state_dir and cfg->uri are used. 0 if nothing was left. */
	int (*cleanup)(const struct hv_config *cfg, struct kr_err *err);
	const char *(*agent_socket)(const struct hv_vm *vm);
	const char *(*console_log)(const struct hv_vm *vm);
	const char *(*state_dir)(const struct hv_vm *vm);
	/* The host process that runs the VM (QEMU): the "task pid" containerd
	 * shows for a VM runtime.  0 if unknown or not running. */
	int (*pid)(const struct hv_vm *vm);
};

/* "auto" (kvm where /dev/kvm runs a standard guest and kata-vmm is
 * installed, else libvirt), "libvirt", "kvm", "mock".  NULL or "" mean
 * "auto". */
const struct hv_ops *hypervisor_open(const char *name, struct kr_err *err);

/* Whether a standard guest kernel can use KVM here: not when /dev/kvm is
 * missing, nor on a PVM host (/sys/module/kvm_pvm), where a standard kernel
 * is emulated instruction by instruction.  root prefixes both paths (for
 * tests; NULL = "/").  *why (if not NULL) says why. Logs the choice. */
enum hv_accel hv_detect_accel(const char *root, const char **why);
const char *hv_accel_name(enum hv_accel a);

/* Checks shared by the backends: id syntax, kernel/initrd/shared dir exist,
 * vcpus/memory in range.  Errors name the bad field and path. */
int hv_config_validate(const struct hv_config *cfg, struct kr_err *err);
bool hv_id_valid(const char *id);

/* The full guest command line: the base line (console, panic), the
 * backend's own arguments, the agent's channel and share, then
 * cfg->cmdline_extra.  hv_cmdline: the libvirt backend's (agent on the
 * virtio-serial port). */
int hv_cmdline(const struct hv_config *cfg, char *buf, size_t size, struct kr_err *err);
int hv_cmdline_for(const struct hv_config *cfg, const char *agent_listen,
		   const char *backend_args, char *buf, size_t size, struct kr_err *err);
/* The kvm backend's kernel arguments: reboot through the i8042 (kata-vmm
 * ends the VM there); no PCI and no ACPI to probe. */
#define HV_KVM_CMDLINE "reboot=k pci=off acpi=off"
/* A VM's state dir: cfg->state_dir, else HV_STATE_ROOT/<id>. */
int hv_state_dir_path(const struct hv_config *cfg, char *buf, size_t size, struct kr_err *err);
/* Make dir (0700) for VM id; an existing one is an error (id in use). */
int hv_state_dir_claim(const char *id, const char *dir, struct kr_err *err);
/* Path of kata-vmm: next to this program, else /usr/local/bin, /usr/bin.
 * -1 if not found. */
int hv_find_vmm(char *buf, size_t size);

/* ---- backends -------------------------------------------------------- */
extern const struct hv_ops hv_libvirt_ops;
extern const struct hv_ops hv_mock_ops;
extern const struct hv_ops hv_kvm_ops;		/* kvm_backend.c: kata-vmm */

/* libvirt domain XML (libvirt_xml.c): a pure function for unit tests.
 * Paths are the resolved ones.  Returns a malloc'd string or NULL + err. */
struct hv_domain_desc {
	const char *name;		/* kata-run-<id> */
	enum hv_accel accel;		/* TCG or KVM */
	unsigned vcpus, memory_mib;
	const char *kernel, *initrd, *cmdline;
	const char *agent_socket;
	const char *console_log;
	const char *shared_dir;		/* NULL: no filesystem */
	const char *virtiofsd;
};
char *hv_libvirt_xml(const struct hv_domain_desc *d, struct kr_err *err);
/* XML-escape s (& < > " ') into a malloc'd string. */
char *hv_xml_escape(const char *s);

/* ---- mock backend (tests) --------------------------------------------- */
enum hv_mock_op { HV_MOCK_CREATE, HV_MOCK_START, HV_MOCK_WAIT, HV_MOCK_DESTROY, HV_MOCK_NOPS };
struct hv_mock_state {
	unsigned calls[HV_MOCK_NOPS];
	int fail_op;			/* -1 none, else enum hv_mock_op that fails */
	int fail_errno;			/* errno of the simulated failure */
	bool running;			/* between a start and a destroy/exit */
	bool exit_now;			/* wait() reports the VM ended */
	unsigned live_vms;		/* created and not yet freed */
	char last_id[HV_ID_MAX + 1];
};
/* The mock's process-wide record; hv_mock_reset() clears it. */
extern struct hv_mock_state hv_mock;
void hv_mock_reset(void);

#endif
