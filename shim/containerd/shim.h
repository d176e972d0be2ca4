/* containerd-shim-kata-run-v2: the containerd runtime v2 shim (the contract:
 * ../shared/specs/containerd-shim-v2.md; docs/architecture.md).
 *
 *   main.c      Go-style flags; actions start, delete, or the daemon
 *   start.c     `start`: socket (one per pod), address file, spawn the daemon
 *   delete.c    `delete`: clean up after a dead shim
 *   service.c   the daemon: ttrpc server, method table, Connect, Shutdown
 *   task.c      container objects: Create, Delete, Pids, Pause, Resume,
 *               Stats, Update
 *   process.c   process objects (init and execs): Start, State, Kill, Wait,
 *               Exec, ResizePty, CloseIO; the waiter threads
 *   io.c        stdio: containerd's FIFOs <-> the agent's streams
 *   rootfs.c    containerd's rootfs mounts at <bundle>/rootfs
 *   events.c    TaskCreate/Start/Exit/... to containerd (ttrpc Forward)
 *
 * One daemon per pod: containers whose config.json carries the annotation
 * io.kubernetes.cri.sandbox-id share its socket, its VM and this process;
 * a container without it gets its own.  The VM boots at the first Create.
 *
 * Locking: shim.lock guards the task list and every process's state
 * fields; agent calls are made without it (they block).  A process is
 * freed only by Delete, after its waiter thread is joined. */
#ifndef KR_SHIM_CONTAINERD_H
#define KR_SHIM_CONTAINERD_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "containerd.pb-c.h"
#include "config.h"
#include "kr/error.h"

#define SHIM_NAME "containerd-shim-kata-run-v2"
#define SHIM_SOCKET_DIR "/run/containerd/s"
#define TASK_SERVICE "containerd.task.v2.Task"
#define SANDBOX_ID_ANNOTATION "io.kubernetes.cri.sandbox-id"
#define SHIM_ID_MAX 76			/* containerd's identifier limit */

/* Short names for the generated protobuf-c types. */
#define PB(name) KataRun__Containerd__##name
#define PB_INIT(NAME) KATA_RUN__CONTAINERD__##NAME##__INIT
#define PB_DESC(name) kata_run__containerd__##name##__descriptor

struct shim_args {
	const char *namespace;
	const char *id;
	const char *address;		/* containerd's gRPC socket */
	const char *publish_binary;
	const char *bundle;		/* delete only */
	const char *socket;		/* optional: serve here instead of fd 3 */
	bool debug;
};

enum proc_status { PROC_CREATED = 1, PROC_RUNNING = 2, PROC_STOPPED = 3 };

struct shim_task;
struct agent_stdio;

struct shim_process {
	struct shim_task *task;
	char exec_id[SHIM_ID_MAX + 1];		/* "" = the init process */
	char *stdin_path, *stdout_path, *stderr_path;
	bool terminal;
	char *spec_json;			/* exec: OCI process, sent at Start */
	size_t spec_len;
	enum proc_status status;
	uint32_t exit_status;
	struct timespec exited_at;
	struct agent_stdio *io;
	int fds[3];				/* FIFOs, -1 = none */
	pthread_t waiter;
	bool waiter_started;
	struct shim_process *next;		/* task->execs */
};

struct shim_task {
	char id[SHIM_ID_MAX + 1];
	char bundle[PATH_MAX];
	bool rootfs_mounted;			/* by us, at bundle/rootfs */
	bool shared;				/* rootfs shared into the VM */
	bool paused;
	struct shim_process init;
	struct shim_process *execs;
	struct shim_task *next;
};

struct kr_sandbox;
struct ttrpc_server;

struct shim {
	struct shim_args args;
	struct kr_config cfg;
	char exe_dir[PATH_MAX];
	char socket_path[PATH_MAX];
	pthread_mutex_t lock;
	pthread_cond_t exited;			/* a process reached STOPPED */
	struct kr_sandbox *sb;			/* NULL until the first Create */
	bool sb_booted;				/* its agent answered once */
	char sandbox_id[65];
	struct shim_task *tasks;
	struct ttrpc_server *srv;
	bool exiting;
	pthread_mutex_t create_lock;		/* one Create at a time (VM boot) */
	pthread_t oom_thread;
	bool oom_started;
};

/* ---- main.c / start.c / delete.c ------------------------------------------ */
int shim_start(const struct shim_args *a);
int shim_delete(const struct shim_args *a);
int shim_daemon(const struct shim_args *a);

/* The pod a bundle belongs to: its sandbox-id annotation, else the
 * container id.  Reads bundle/config.json (bounded). */
void shim_group_id(const char *bundle, const char *id, char *out, size_t size);
/* A group id as a sandbox id ([A-Za-z0-9_.-]{1,64}): itself when valid,
 * else "kr" + 16 hex digits of its SHA-256. */
void shim_sandbox_id(const char *group, char *out, size_t size);
/* unix socket path for (address, namespace, group). */
int shim_socket_path(const struct shim_args *a, const char *group, char *out,
		     size_t size, struct kr_err *err);

/* ---- service.c ------------------------------------------------------------- */
extern struct shim *shim_global;
/* Request decoding and response encoding helpers for the handlers. */
int shim_reply(const ProtobufCMessage *m, uint8_t **resp, size_t *resp_len);
void shim_now(PB(Timestamp) *ts, const struct timespec *t);
/* Find a task / process (NOT_FOUND error); shim.lock held. */
struct shim_task *shim_find_task(struct shim *s, const char *id, struct kr_err *err);
struct shim_process *shim_find_process(struct shim *s, const char *id,
				       const char *exec_id, struct kr_err *err);
/* The host pid shown for every process: the VM's. */
uint32_t shim_task_pid(struct shim *s);
/* Start polling the agent for OOM kills (once the VM runs). */
void shim_start_oom_watch(struct shim *s);

/* ---- task.c / process.c (ttrpc handlers) -------------------------------------- */
#define SHIM_HANDLER(name)                                                         \
	int name(void *ctx, const uint8_t *req, size_t req_len, uint8_t **resp, \
		 size_t *resp_len, struct kr_err *err)
/* In a handler: decode the request into r (INVALID_ARGUMENT if it does not
 * decode); FREE_REQ() before returning. */
#define UNPACK(type, lower, what)                                                  \
	PB(type) *r = kata_run__containerd__##lower##__unpack(NULL, req_len, req); \
	if (!r)                                                                    \
		return kr_err_set(err, KR_INVALID_ARGUMENT, what ": malformed request")
#define FREE_REQ() protobuf_c_message_free_unpacked(&r->base, NULL)
SHIM_HANDLER(task_create);
SHIM_HANDLER(task_delete);
SHIM_HANDLER(task_pids);
SHIM_HANDLER(task_pause);
SHIM_HANDLER(task_resume);
SHIM_HANDLER(task_stats);
SHIM_HANDLER(task_update);
SHIM_HANDLER(process_start);
SHIM_HANDLER(process_state);
SHIM_HANDLER(process_kill);
SHIM_HANDLER(process_wait);
SHIM_HANDLER(process_exec);
SHIM_HANDLER(process_resize);
SHIM_HANDLER(process_close_io);

/* Start the thread that waits for p's exit (after Start). */
int process_watch(struct shim *s, struct shim_process *p, struct kr_err *err);
/* Mark p exited (status, now), wake Wait, publish TaskExit.  Lock held. */
void process_exited(struct shim *s, struct shim_process *p, uint32_t status);
/* Free what p holds (after its waiter is joined). */
void process_release(struct shim_process *p);

/* ---- io.c -------------------------------------------------------------------- */
/* Open the process's stdio (FIFOs or file://) and start pumping to and
 * from the agent.  Never blocks on a FIFO. */
int io_attach(struct shim *s, struct shim_process *p, struct kr_err *err);
/* Wait (bounded) until all output is delivered, then close everything. */
void io_detach(struct shim_process *p, int timeout_ms);

/* ---- rootfs.c ------------------------------------------------------------------- */
/* Mount containerd's rootfs mounts, in order, on target. */
int rootfs_mount(PB(Mount) **mounts, size_t n, const char *target, struct kr_err *err);
int rootfs_unmount(const char *target, struct kr_err *err);

/* ---- events.c -------------------------------------------------------------------- */
/* Start the publisher (TTRPC_ADDRESS); events queue until it connects. */
void events_init(const char *ttrpc_address, const char *namespace);
/* Queue one event: topic "/tasks/exit", type "TaskExit" (the URL gets
 * "containerd.events." in front), msg packed now.  Order is kept. */
void events_publish(const char *topic, const char *type, const ProtobufCMessage *msg);
/* Deliver what is queued, at most timeout_ms; then stop the publisher. */
void events_flush(int timeout_ms);

/* ---- start.c / delete.c / rootfs.c / events.c internals (unit tests) ----------- */
/* containerd's identifier rule (namespaces, container ids): 1..76 of
 * [A-Za-z0-9], single '.', '_' or '-' between them. */
bool shim_id_valid(const char *s);

/* rootfs.c internals: fstab-style options split as mount(8) does. */
struct rootfs_opts {
	unsigned long flags;		/* mount(2) flags to set */
	unsigned long propagation;	/* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE [|MS_REC] */
	char *data;			/* the other options joined with ',' (malloc'd) */
};
int rootfs_parse_options(char *const *options, size_t n, struct rootfs_opts *o,
			 struct kr_err *err);
void rootfs_opts_free(struct rootfs_opts *o);
/* overlay data over one page: lowerdirs relative to their common parent
 * (returned in dir, PATH_MAX), the new data string in *out (malloc'd). */
int rootfs_overlay_compact(const char *data, char *dir, char **out, struct kr_err *err);

/* events.c internals: the packed ForwardRequest for one event at time ts. */
int events_encode(const char *namespace, const char *topic, const char *type,
		  const ProtobufCMessage *msg, const struct timespec *ts,
		  uint8_t **out, size_t *out_len);

#endif
