/* A sandbox: one pod VM, its agent connection and what it shares from the
 * host.  The runtime core under kata-run and the containerd shim.
 *
 *   kr_sandbox_new(cfg, id)            pod dir <state_root>/pods/<id>/
 *   kr_sandbox_share_rootfs(...)       bind rootfs into shared/<cid>/rootfs
 *   kr_sandbox_start(sb, cancel)       boot; wait until the agent answers
 *   ... agent calls through sb->agent (one multiplexed connection: a
 *       virtio-serial port is a single byte stream) ...
 *   kr_sandbox_stop(sb)                power off, destroy, unshare, remove
 *   kr_sandbox_free(sb)
 *
 * Host layout:
 *   <state_root>/pods/<id>/owner        pid of the process that owns the VM
 *   <state_root>/pods/<id>/shared/      the virtio-fs share (guest:
 *                                       /run/kata-run/shared)
 *   <state_root>/vm/<id>/               the hypervisor backend's state
 *
 * Mounts: with qemu:///embed, QEMU and virtiofsd are started by this
 * process and inherit its mount namespace, so kr_sandbox_private_mounts()
 * (before any thread) makes the share's bind mounts invisible to the host:
 * they vanish with the last process of the pod even after a SIGKILL. */
#ifndef KR_SHIM_SANDBOX_H
#define KR_SHIM_SANDBOX_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "kr/error.h"

#define KR_GUEST_SHARED "/run/kata-run/shared"
#define KR_SANDBOX_MAX_MOUNTS 128

struct agent_client;
struct hv_ops;
struct hv_vm;

/* Milliseconds since t0 (the caller's start) of each step; 0 = not reached. */
struct kr_timings {
	uint64_t t0_ms;			/* kr_now_ms() at the caller's start */
	uint64_t vm_created;		/* the backend started the VM */
	uint64_t init;			/* the guest kernel ran /init (derived) */
	uint64_t agent_ready;		/* the agent answered */
	uint64_t container_done;	/* the container exited, output flushed */
	uint64_t vm_gone;		/* VM destroyed, nothing left */
};

struct kr_sandbox {
	char id[65];
	const struct kr_config *cfg;
	char dir[PATH_MAX];		/* <state_root>/pods/<id> */
	char shared[PATH_MAX];		/* dir/shared */
	char vm_state[PATH_MAX];	/* <state_root>/vm/<id> */
	const struct hv_ops *ops;
	struct hv_vm *vm;
	struct agent_client *agent;
	char *mounts[KR_SANDBOX_MAX_MOUNTS];	/* mount points we made, in order */
	unsigned n_mounts;
	bool want_init_time;		/* ask the guest when /init ran */
	struct kr_timings t;
};

/* Enter a private mount namespace (slave of the host's) when the VM's
 * helpers will be our children (qemu:///embed).  Call before starting
 * threads.  Returns 1 if entered, 0 if not needed, -1 on error. */
int kr_sandbox_private_mounts(const struct kr_config *cfg, struct kr_err *err);

/* A fresh random id, "kr" + 12 hex digits. */
void kr_sandbox_new_id(char *buf, size_t size);
bool kr_sandbox_id_valid(const char *id);

/* Validate and claim the pod dir (fails if the id is in use).  t0_ms: the
 * caller's start, for timings.  On error nothing is left. */
int kr_sandbox_new(const struct kr_config *cfg, const char *id, uint64_t t0_ms,
		   struct kr_sandbox **out, struct kr_err *err);
/* Bind host_rootfs (recursively) at shared/<cid>/rootfs; guest (PATH_MAX)
 * gets its path in the guest.  Before start, or after if the share
 * propagates (a later issue). */
int kr_sandbox_share_rootfs(struct kr_sandbox *sb, const char *cid,
			    const char *host_rootfs, char *guest,
			    struct kr_err *err);
/* Bind one host file or directory at shared/<cid>/mounts/<index>. */
int kr_sandbox_share_path(struct kr_sandbox *sb, const char *cid,
			  const char *host_path, unsigned index, char *guest,
			  struct kr_err *err);
/* Undo the shares of container cid (its rootfs and bind sources): unmount,
 * then remove shared/<cid>.  After RemoveContainer. */
int kr_sandbox_unshare(struct kr_sandbox *sb, const char *cid, struct kr_err *err);
/* The host pid running the VM (QEMU), 0 if unknown. */
int kr_sandbox_vm_pid(struct kr_sandbox *sb);
/* Boot and wait for the agent (cfg->boot_timeout_s).  Gives up early when
 * *cancel becomes non-zero (a signal).  Errors include the tail of the
 * guest console. */
int kr_sandbox_start(struct kr_sandbox *sb, volatile sig_atomic_t *cancel,
		     struct kr_err *err);
/* Force the VM off, then remove mounts, the pod dir and the VM's state.
 * Idempotent; returns -1 if something could not be removed (named). */
int kr_sandbox_stop(struct kr_sandbox *sb, struct kr_err *err);
void kr_sandbox_free(struct kr_sandbox *sb);
/* Only force the VM off: agent calls in flight fail at once, the client
 * stays valid (kr_sandbox_stop frees it).  For owners whose threads must
 * see the end before the client goes. */
int kr_sandbox_kill(struct kr_sandbox *sb, struct kr_err *err);

/* Whether the VM is still running (a dead VM fails every agent call). */
bool kr_sandbox_vm_alive(struct kr_sandbox *sb);
/* The last lines of the guest console, control characters replaced (the
 * guest writes them: never send its escape sequences to a terminal).
 * Writes "" if there is no log. */
void kr_sandbox_console_tail(struct kr_sandbox *sb, unsigned lines, char *buf,
			     size_t size);

/* Remove what a killed owner left of sandbox id: the VM (QEMU, virtiofsd),
 * mounts, the pod and VM dirs.  Refuses (FAILED_PRECONDITION) while the
 * owner still runs.  0 = cleaned, 1 = nothing was there. */
int kr_sandbox_cleanup(const struct kr_config *cfg, const char *id,
		       struct kr_err *err);
/* Ids of every pod dir under cfg->state_root (malloc'd array of malloc'd
 * strings, NULL-terminated). */
char **kr_sandbox_list(const struct kr_config *cfg);

#endif
