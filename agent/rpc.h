/* The agent's RPC layer: ttrpc method table -> nanopb decode -> handler ->
 * nanopb encode.  Handlers live in one file per object of the API
 * (rpc_sandbox.c, rpc_container.c, rpc_process.c, rpc_stream.c). */
#ifndef KR_AGENT_RPC_H
#define KR_AGENT_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <pb.h>

#include "agent.pb.h"
#include "kr/error.h"
#include "kr/ttrpc.h"

#define AGENT_SERVICE "kata_run.agent.v1.Agent"

/* How long a blocking call (WaitProcess, ReadStdout, GetOOMEvent) waits
 * before answering "nothing yet": shorter than any sane client timeout, so
 * the host's deadlines only fire when the agent is really stuck. */
#define RPC_LONG_POLL_MS 10000

/* Caps on the large byte fields (nanopb callbacks, see agent.options). */
#define RPC_BLOB_SPEC_MAX (1u << 20)
#define RPC_BLOB_PROCESS_MAX (256u << 10)
#define RPC_BLOB_RESOURCES_MAX (64u << 10)
#define RPC_BLOB_STDIN_MAX (1u << 20)
#define RPC_STREAM_CHUNK (64u << 10)

/* A large bytes field: decoded into (or encoded from) a heap buffer.  The
 * decoded data is NUL-terminated (JSON parsers want a string). */
struct rpc_blob {
	uint8_t *data;
	size_t len;
	size_t max;
};

typedef int (*rpc_impl)(struct agent *a, const void *req, void *resp,
			struct kr_err *err);
/* Point a message's callback fields at the call's blobs before decoding. */
typedef void (*rpc_prepare)(void *req, void *resp, struct rpc_blob *in,
			    struct rpc_blob *out);

struct rpc_desc {
	const pb_msgdesc_t *req_desc, *resp_desc;
	size_t req_size, resp_size;
	rpc_impl impl;
	rpc_prepare prepare;	/* may be NULL */
};

int rpc_call(void *ctx, const uint8_t *in, size_t in_len, uint8_t **out,
	     size_t *out_len, struct kr_err *err, const struct rpc_desc *d);
void rpc_blob_bind_decode(pb_callback_t *cb, struct rpc_blob *b, size_t max);
void rpc_blob_bind_encode(pb_callback_t *cb, struct rpc_blob *b);

/* Define the ttrpc handler rpc_<Name> for impl(). */
#define RPC_DEFINE_WITH(Name, ReqT, RespT, impl_fn, prepare_fn)               \
	const struct rpc_desc rpc_desc_##Name = {                             \
		.req_desc = kata_run_agent_v1_##ReqT##_fields,                \
		.resp_desc = kata_run_agent_v1_##RespT##_fields,              \
		.req_size = sizeof(kata_run_agent_v1_##ReqT),                 \
		.resp_size = sizeof(kata_run_agent_v1_##RespT),               \
		.impl = impl_fn, .prepare = prepare_fn,                       \
	};                                                                    \
	int rpc_##Name(void *ctx, const uint8_t *in, size_t in_len,           \
		       uint8_t **out, size_t *out_len, struct kr_err *err)    \
	{                                                                     \
		return rpc_call(ctx, in, in_len, out, out_len, err,           \
				&rpc_desc_##Name);                            \
	}
#define RPC_DEFINE(Name, ReqT, RespT, impl_fn)                                \
	RPC_DEFINE_WITH(Name, ReqT, RespT, impl_fn, NULL)

#define RPC_DECLARE(Name)                                                     \
	extern const struct rpc_desc rpc_desc_##Name;                         \
	int rpc_##Name(void *ctx, const uint8_t *in, size_t in_len,           \
		       uint8_t **out, size_t *out_len, struct kr_err *err)

RPC_DECLARE(CreateSandbox); RPC_DECLARE(DestroySandbox);
RPC_DECLARE(GetGuestDetails); RPC_DECLARE(Check);
RPC_DECLARE(CreateContainer); RPC_DECLARE(StartContainer);
RPC_DECLARE(RemoveContainer); RPC_DECLARE(StatsContainer);
RPC_DECLARE(PauseContainer); RPC_DECLARE(ResumeContainer);
RPC_DECLARE(UpdateContainer); RPC_DECLARE(ListProcesses);
RPC_DECLARE(ExecProcess); RPC_DECLARE(SignalProcess);
RPC_DECLARE(WaitProcess); RPC_DECLARE(WriteStdin); RPC_DECLARE(CloseStdin);
RPC_DECLARE(ReadStdout); RPC_DECLARE(ReadStderr); RPC_DECLARE(TtyWinResize);
RPC_DECLARE(GetOOMEvent); RPC_DECLARE(RemoveProcess);

extern const struct ttrpc_method agent_methods[];
extern const size_t agent_n_methods;
/* The same methods' descriptors (fuzzing and tests decode with them). */
extern const struct rpc_desc *const agent_rpc_descs[];

/* Decode a request as the dispatcher would, without running the handler:
 * 0 or -1 with err.  Frees what it decoded. */
int rpc_decode_only(const struct rpc_desc *d, const uint8_t *in, size_t len,
		    struct kr_err *err);

/* Pin a container and one of its processes (NOT_FOUND errors); release
 * both with rpc_process_put(). */
struct container;
struct process;
struct process *rpc_process_get(struct agent *a, const char *cid,
				const char *exec_id, struct container **c,
				struct kr_err *err);
void rpc_process_put(struct agent *a, struct container *c, struct process *p);

#endif
