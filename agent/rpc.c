/* Generic RPC plumbing: see rpc.h. */
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "agent.h"
#include "kr/log.h"
#include "kr/util.h"
#include "rpc.h"

static bool blob_decode(pb_istream_t *s, const pb_field_t *f, void **arg)
{
	struct rpc_blob *b = *arg;
	size_t n = s->bytes_left;

	if (n > b->max)
		PB_RETURN_ERROR(s, "field too large");
	free(b->data);	/* a repeated occurrence replaces the first */
	b->data = malloc(n + 1);
	if (!b->data)
		PB_RETURN_ERROR(s, "out of memory");
	if (!pb_read(s, b->data, n))
		return false;
	b->data[n] = '\0';
	b->len = n;
	return true;
}

static bool blob_encode(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
	const struct rpc_blob *b = *arg;

	if (!b->len)
		return true;
	return pb_encode_tag_for_field(s, f) && pb_encode_string(s, b->data, b->len);
}

void rpc_blob_bind_decode(pb_callback_t *cb, struct rpc_blob *b, size_t max)
{
	b->max = max;
	cb->funcs.decode = blob_decode;
	cb->arg = b;
}

void rpc_blob_bind_encode(pb_callback_t *cb, struct rpc_blob *b)
{
	cb->funcs.encode = blob_encode;
	cb->arg = b;
}

static int encode_reply(const struct rpc_desc *d, void *resp, uint8_t **out,
			size_t *out_len, struct kr_err *err)
{
	size_t size = 0;
	pb_ostream_t os;

	if (!pb_get_encoded_size(&size, d->resp_desc, resp))
		return kr_err_set(err, KR_INTERNAL, "encode reply");
	*out = malloc(size ? size : 1);
	if (!*out)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED, "encode reply: out of memory");
	os = pb_ostream_from_buffer(*out, size);
	if (!pb_encode(&os, d->resp_desc, resp)) {
		free(*out);
		*out = NULL;
		return kr_err_set(err, KR_INTERNAL, "encode reply: %s", PB_GET_ERROR(&os));
	}
	*out_len = os.bytes_written;
	return 0;
}

int rpc_call(void *ctx, const uint8_t *in, size_t in_len, uint8_t **out,
	     size_t *out_len, struct kr_err *err, const struct rpc_desc *d)
{
	/* On the heap: handler threads have modest stacks. */
	void *req = kr_xcalloc(1, d->req_size), *resp = kr_xcalloc(1, d->resp_size);
	struct rpc_blob blob_in = { 0 }, blob_out = { 0 };
	pb_istream_t is = pb_istream_from_buffer(in, in_len);
	int rc = -1;

	if (d->prepare)
		d->prepare(req, resp, &blob_in, &blob_out);
	if (!pb_decode(&is, d->req_desc, req)) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "malformed request: %s", PB_GET_ERROR(&is));
		goto out;
	}
	if (d->impl(ctx, req, resp, err) < 0)
		goto out;
	rc = encode_reply(d, resp, out, out_len, err);
out:
	free(blob_in.data);
	free(blob_out.data);
	free(req);
	free(resp);
	return rc;
}

struct process *rpc_process_get(struct agent *a, const char *cid,
				const char *exec_id, struct container **c,
				struct kr_err *err)
{
	struct process *p;

	*c = container_get(a, cid, err);
	if (!*c)
		return NULL;
	pthread_mutex_lock(&a->lock);
	p = container_find_process(*c, exec_id);
	if (p)
		p->refs++;
	pthread_mutex_unlock(&a->lock);
	if (!p) {
		kr_err_set(err, KR_NOT_FOUND, "exec %s not found in container %s", exec_id, cid);
		container_put(a, *c);
		*c = NULL;
	}
	return p;
}

int rpc_decode_only(const struct rpc_desc *d, const uint8_t *in, size_t len,
		    struct kr_err *err)
{
	void *req = kr_xcalloc(1, d->req_size), *resp = kr_xcalloc(1, d->resp_size);
	struct rpc_blob blob_in = { 0 }, blob_out = { 0 };
	pb_istream_t is = pb_istream_from_buffer(in, len);
	int rc = 0;

	if (d->prepare)
		d->prepare(req, resp, &blob_in, &blob_out);
	if (!pb_decode(&is, d->req_desc, req))
		rc = kr_err_set(err, KR_INVALID_ARGUMENT, "malformed request: %s", PB_GET_ERROR(&is));
	free(blob_in.data);
	free(req);
	free(resp);
	return rc;
}

void rpc_process_put(struct agent *a, struct container *c, struct process *p)
{
	process_put(a, p);
	container_put(a, c);
}

#define M(name) { AGENT_SERVICE, #name, rpc_##name }
const struct ttrpc_method agent_methods[] = {
	M(CreateSandbox), M(DestroySandbox), M(GetGuestDetails), M(Check),
	M(CreateContainer), M(StartContainer), M(RemoveContainer),
	M(StatsContainer), M(PauseContainer), M(ResumeContainer),
	M(UpdateContainer), M(ListProcesses),
	M(ExecProcess), M(SignalProcess), M(WaitProcess),
	M(WriteStdin), M(CloseStdin), M(ReadStdout), M(ReadStderr),
	M(TtyWinResize), M(GetOOMEvent), M(RemoveProcess),
};
const size_t agent_n_methods = sizeof(agent_methods) / sizeof(agent_methods[0]);

#define D(name) &rpc_desc_##name
const struct rpc_desc *const agent_rpc_descs[] = {
	D(CreateSandbox), D(DestroySandbox), D(GetGuestDetails), D(Check),
	D(CreateContainer), D(StartContainer), D(RemoveContainer),
	D(StatsContainer), D(PauseContainer), D(ResumeContainer),
	D(UpdateContainer), D(ListProcesses),
	D(ExecProcess), D(SignalProcess), D(WaitProcess),
	D(WriteStdin), D(CloseStdin), D(ReadStdout), D(ReadStderr),
	D(TtyWinResize), D(GetOOMEvent), D(RemoveProcess),
};
_Static_assert(sizeof(agent_rpc_descs) / sizeof(agent_rpc_descs[0]) ==
	       sizeof(agent_methods) / sizeof(agent_methods[0]),
	       "every method has a descriptor");
