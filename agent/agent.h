/* The agent's state: the sandbox, its containers and their processes.
 *
 * Locking: one mutex (agent.lock) guards the container and process tables
 * and every process's state fields; one condvar (agent.exited) is broadcast
 * whenever a process exits.  RPC handlers run concurrently (one thread per
 * call), hold the lock only briefly, and pin the objects they use with a
 * reference so that a concurrent RemoveContainer cannot free them. */
#ifndef KR_AGENT_AGENT_H
#define KR_AGENT_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kr/error.h"
#include "spec.h"

#define AGENT_ID_MAX 128
#define AGENT_MAX_CONTAINERS 256
#define AGENT_MAX_PROCESSES 1024	/* execs per container */

struct cgroup;
struct cgroup_manager;
struct container;

enum process_state { PROC_CREATED, PROC_RUNNING, PROC_EXITED };

struct process {
	struct container *c;		/* owner (not a reference) */
	char exec_id[AGENT_ID_MAX + 1];	/* "" for the container's init */
	pid_t pid;
	bool terminal;
	int stdin_fd;			/* agent's end, -1 once closed */
	int stdout_fd, stderr_fd;	/* -1 in terminal mode (pty_fd) */
	int pty_fd;
	int sync_fd;			/* launch channel until started */
	enum process_state state;
	int exit_status;		/* 128+N for signal N */
	bool oom_killed;
	uint64_t exited_at_ns;		/* CLOCK_REALTIME */
	pthread_mutex_t io_lock;	/* serialises stdin writes */
	int refs;			/* owner's list + in-flight calls (agent.lock) */
	struct process *next;		/* in c->execs */
};

enum container_state { CT_CREATED, CT_RUNNING, CT_PAUSED, CT_STOPPED };

struct container {
	char id[AGENT_ID_MAX + 1];
	struct oci_spec *spec;
	char state_dir[256];
	/* cg is used under cg_lock and set to NULL by removal, so a call that
	 * races with RemoveContainer never touches a freed cgroup.  Lock order:
	 * cg_lock before agent.lock. */
	pthread_mutex_t cg_lock;
	struct cgroup *cg;
	enum container_state state;
	struct process *init;
	struct process *execs;		/* list */
	size_t n_execs;
	uint64_t oom_kills;
	int refs;			/* table + in-flight calls */
	bool removed;			/* gone from the table, freed at refs 0 */
	struct container *next;
};

struct agent_config {
	const char *state_dir;		/* /run/kata-agent */
	const char *cgroup_root;	/* /sys/fs/cgroup */
	const char *cgroup_prefix;	/* kata-run */
	unsigned launch_timeout_ms;	/* container set-up before "ready" */
};

struct agent {
	struct agent_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t exited;
	struct container *containers;
	size_t n_containers;
	struct cgroup_manager *cgm;	/* NULL until the first container */
	char sandbox_id[AGENT_ID_MAX + 1];
	bool is_pid1;
	bool shutting_down;
	uint64_t init_started_ms;	/* guest CLOCK_BOOTTIME when /init first ran (0: not init) */
};

extern struct agent *agent_global;

/* ---- containers (container.c) ------------------------------------------- */
/* Validate an id: 1..128 chars of [A-Za-z0-9_.-], not starting with '.'. */
int agent_check_id(const char *id, const char *what, struct kr_err *err);
/* Find and pin a container (NOT_FOUND error if absent). */
struct container *container_get(struct agent *a, const char *id,
				struct kr_err *err);
void container_put(struct agent *a, struct container *c);
int container_create(struct agent *a, const char *id, const char *spec_json,
		     size_t spec_len, const char *rootfs, bool overlay,
		     pid_t *pid, struct kr_err *err);
int container_start(struct agent *a, struct container *c, struct kr_err *err);
int container_remove(struct agent *a, struct container *c,
		     unsigned timeout_ms, struct kr_err *err);
/* Kill and remove every container (sandbox destroy, agent exit). */
void container_remove_all(struct agent *a);
/* Lock and return the container's cgroup, or NULL (NOT_FOUND error) if the
 * container is being removed.  Release with container_cg_put(). */
struct cgroup *container_cg_get(struct container *c, struct kr_err *err);
void container_cg_put(struct container *c);
/* Find a process of a pinned container; exec_id "" is init. Caller holds
 * a->lock. */
struct process *container_find_process(struct container *c,
				       const char *exec_id);

/* Remove p from c->execs (a->lock held). */
void container_unlink_exec(struct container *c, struct process *p);
/* Unlink an exited exec and drop the list's reference (RemoveProcess). */
int container_remove_exec(struct agent *a, struct container *c,
			  const char *exec_id, struct kr_err *err);
/* Drop a reference to an exec process; frees it at zero. */
void process_put(struct agent *a, struct process *p);

/* ---- processes (process.c) ---------------------------------------------- */
struct process *process_new(struct container *c, const char *exec_id);
void process_free(struct process *p);
/* Record an exit reported by the reaper (called with a->lock held). */
void process_exited(struct agent *a, struct process *p, int wstatus);
/* Block until p exits (or timeout_ms, 0 = forever); 0 when exited. */
int process_wait(struct agent *a, struct process *p, unsigned timeout_ms);
struct launch_config;
int process_launch(struct agent *a, struct process *p,
		   const struct launch_config *cfg, struct kr_err *err);
int process_exec(struct agent *a, struct container *c, const char *exec_id,
		 const char *process_json, size_t len, pid_t *pid,
		 struct kr_err *err);
int process_signal(struct process *p, int sig, struct kr_err *err);

/* ---- reaper (reaper.c) -------------------------------------------------- */
/* Blocks SIGCHLD (and SIGTERM/SIGINT) in the calling thread; call before any
 * other thread starts so that every thread inherits the mask. */
void reaper_block_signals(void);
int reaper_start(struct agent *a, struct kr_err *err);
/* Tell the reaper that pid belongs to p (it may have exited already). */
void reaper_register(struct agent *a, struct process *p);
/* Drop pointers to p before it is freed (a->lock held). */
void reaper_forget(struct agent *a, struct process *p);
/* Discard pid's exit (an intermediate launch process). */
void reaper_ignore(pid_t pid);
/* Restore default signal mask and dispositions in a forked child. */
void reaper_child_reset_signals(void);

/* ---- OOM events (oom.c) ------------------------------------------------- */
int oom_start(struct agent *a, struct kr_err *err);
int oom_watch(struct agent *a, struct container *c, struct kr_err *err);
void oom_unwatch(struct agent *a, struct container *c);
/* Wait up to timeout_ms for an OOM event; id[0] == 0 if none. */
void oom_next_event(struct agent *a, char id[AGENT_ID_MAX + 1],
		    unsigned timeout_ms);

/* ---- sandbox / lifecycle (sandbox.c, pid1.c) ---------------------------- */
int agent_cgroups(struct agent *a, struct cgroup_manager **out,
		  struct kr_err *err);
void agent_shutdown(struct agent *a, bool power_off);
/* As init on an initramfs: move to a tmpfs root and re-exec (returns only
 * on error, or 0 when there is nothing to do). */
int pid1_switch_root(char **argv, struct kr_err *err);
int pid1_setup(struct kr_err *err);
/* Where the host's shared directory (virtio-fs) appears in the guest. */
#define AGENT_SHARED_DIR "/run/kata-run/shared"
int pid1_mount_share(const char *tag, const char *dir, struct kr_err *err);
void pid1_power_off(void);

#endif
