/* The host side of the agent API: a ttrpc client speaking protobuf-c
 * messages generated from proto/agent.proto.  Used by kata-run, the shim and
 * kr-agent-ctl.  Every call has a timeout; every reply is untrusted (it
 * comes from the guest) and is decoded with bounds by protobuf-c. */
#ifndef KR_AGENT_CLIENT_H
#define KR_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.pb-c.h"
#include "kr/error.h"

#define AGENT_CALL_TIMEOUT_MS 30000	/* default per call */

struct agent_client;

/* addr: "unix:PATH", a plain socket path, or "hvsock:PATH:PORT" (kata-vmm's
 * hybrid vsock: connect to PATH, send "CONNECT PORT\n", expect "OK ...\n",
 * then the stream reaches the guest's vsock port).  Retries until the agent
 * accepts or connect_timeout_ms passes (it may still be starting). */
struct agent_client *agent_client_connect(const char *addr,
					  int connect_timeout_ms,
					  struct kr_err *err);
/* Wrap a connected stream (a virtio-serial socket, a vsock bridge). */
struct agent_client *agent_client_from_fd(int fd, struct kr_err *err);
void agent_client_free(struct agent_client *c);

/* One RPC: method is the bare name ("CreateContainer").  *resp is unpacked
 * with resp_desc; free it with protobuf_c_message_free_unpacked(). */
int agent_call(struct agent_client *c, const char *method,
	       const ProtobufCMessage *req,
	       const ProtobufCMessageDescriptor *resp_desc,
	       ProtobufCMessage **resp, int timeout_ms, struct kr_err *err);

/* Convenience wrappers for the calls every front end makes. */
int agent_create_container(struct agent_client *c, const char *id,
			   const char *spec_json, size_t spec_len,
			   const char *rootfs, bool overlay, uint32_t *pid,
			   struct kr_err *err);
int agent_container_op(struct agent_client *c, const char *method,
		       const char *id, struct kr_err *err);
int agent_remove_container(struct agent_client *c, const char *id,
			   uint32_t timeout_ms, struct kr_err *err);
int agent_signal(struct agent_client *c, const char *id, const char *exec_id,
		 int sig, bool all, struct kr_err *err);
/* Wait until the process exits (repeating the agent's long polls); fails
 * only if the agent is unreachable or the process unknown. */
int agent_wait(struct agent_client *c, const char *id, const char *exec_id,
	       int *status, bool *oom_killed, struct kr_err *err);
int agent_exec(struct agent_client *c, const char *id, const char *exec_id,
	       const char *process_json, size_t len, uint32_t *pid,
	       struct kr_err *err);
/* Forget an exited exec'd process (its id can be used again). */
int agent_remove_process(struct agent_client *c, const char *id,
			 const char *exec_id, struct kr_err *err);
int agent_resize(struct agent_client *c, const char *id, const char *exec_id,
		 unsigned rows, unsigned cols, struct kr_err *err);

/* ---- stdio streaming (stdio_pump.c) ------------------------------------- */

/* Copies in_fd -> WriteStdin (CloseStdin at EOF), ReadStdout -> out_fd and
 * ReadStderr -> err_fd (not in tty mode), each on its own thread. */
struct agent_stdio;
struct agent_stdio *agent_stdio_start(struct agent_client *c, const char *id,
				      const char *exec_id, int in_fd,
				      int out_fd, int err_fd, bool tty,
				      struct kr_err *err);
/* Call fn(ctx) once, on a pump thread, when writing an output fails with
 * EPIPE (its reader went away; output is dropped from then on). */
void agent_stdio_on_broken(struct agent_stdio *s, void (*fn)(void *ctx), void *ctx);
/* Wait for stdout/stderr to reach EOF (all output delivered), at most
 * timeout_ms; stops the stdin pump; frees s. */
void agent_stdio_finish(struct agent_stdio *s, int timeout_ms);

#endif
