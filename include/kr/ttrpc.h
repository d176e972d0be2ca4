/* ttrpc: containerd's RPC framing, implemented once for both sides of
 * kata-run (the shim talking to containerd, the runtime talking to the guest
 * agent).  Wire format: ../../shared/specs/containerd-shim-v2.md section 1.
 *
 *   frame = be32 length | be32 stream_id | u8 type | u8 flags | data[length]
 *   data  = protobuf ttrpc.Request (type 1) or ttrpc.Response (type 2)
 *
 * Every byte read here may come from a hostile peer (a compromised guest):
 * lengths are capped at TTRPC_MAX_DATA, decoders never read past the buffer,
 * and every client call has a timeout. */
#ifndef KR_TTRPC_H
#define KR_TTRPC_H

#include <stddef.h>
#include <stdint.h>

#include "kr/error.h"

#define TTRPC_HDR_LEN 10
#define TTRPC_MAX_DATA (4u << 20)	/* 4 MiB, as ttrpc 1.1 */

enum ttrpc_type { TTRPC_REQUEST = 1, TTRPC_RESPONSE = 2, TTRPC_DATA = 3 };

struct ttrpc_hdr {
	uint32_t length;
	uint32_t stream_id;
	uint8_t type;
	uint8_t flags;
};

void ttrpc_hdr_encode(uint8_t out[TTRPC_HDR_LEN], const struct ttrpc_hdr *h);
void ttrpc_hdr_decode(const uint8_t in[TTRPC_HDR_LEN], struct ttrpc_hdr *h);

/* A decoded ttrpc.Request.  Strings and payload point into the decoded buffer
 * (not NUL-terminated: use the lengths).  Metadata is validated and skipped. */
struct ttrpc_request {
	const char *service;
	size_t service_len;
	const char *method;
	size_t method_len;
	const uint8_t *payload;
	size_t payload_len;
	int64_t timeout_nano;
};

/* Decoders: 0 on success, -1 with err (code INVALID_ARGUMENT) on malformed
 * input.  Unknown fields are skipped as protobuf requires. */
int ttrpc_request_decode(const uint8_t *buf, size_t len,
			 struct ttrpc_request *req, struct kr_err *err);

struct ttrpc_response {
	int32_t code;			/* 0 when status is absent */
	const char *message;		/* points into the buffer */
	size_t message_len;
	const uint8_t *payload;
	size_t payload_len;
};
int ttrpc_response_decode(const uint8_t *buf, size_t len,
			  struct ttrpc_response *resp, struct kr_err *err);

/* Encoders return a malloc'd buffer in *out (caller frees). */
int ttrpc_request_encode(const char *service, const char *method,
			 const uint8_t *payload, size_t payload_len,
			 int64_t timeout_nano, uint8_t **out, size_t *out_len,
			 struct kr_err *err);
/* code 0: status omitted (as the Go server does); else status{code,message}
 * and no payload. */
int ttrpc_response_encode(int32_t code, const char *message,
			  const uint8_t *payload, size_t payload_len,
			  uint8_t **out, size_t *out_len, struct kr_err *err);

/* Write one whole frame (header + data).  Callers serialise writers. */
int ttrpc_write_frame(int fd, uint32_t stream_id, uint8_t type,
		      const uint8_t *data, size_t len, struct kr_err *err);

/* ---- server ------------------------------------------------------------ */

/* A method handler gets the request payload and returns the response payload
 * (malloc'd, may be NULL with *resp_len 0 for an empty message).  On failure
 * it returns -1 and fills err; err->code becomes the response status.
 * Handlers run concurrently, each on its own thread, and may block (Wait). */
typedef int (*ttrpc_handler_fn)(void *ctx, const uint8_t *req, size_t req_len,
				uint8_t **resp, size_t *resp_len,
				struct kr_err *err);

struct ttrpc_method {
	const char *service;	/* "kata_run.agent.v1.Agent" */
	const char *method;	/* "CreateContainer" */
	ttrpc_handler_fn fn;
};

struct ttrpc_server;

/* methods must outlive the server.  max_inflight bounds concurrent calls per
 * connection; a call beyond it gets RESOURCE_EXHAUSTED. */
struct ttrpc_server *ttrpc_server_new(const struct ttrpc_method *methods,
				      size_t n_methods, void *ctx,
				      unsigned max_inflight);
/* Serve one already-connected stream fd until EOF or error (takes ownership
 * of fd, closes it).  Blocks; waits for the connection's handlers to finish
 * before returning.  Used for accepted sockets and for a virtio-serial port. */
int ttrpc_server_serve_conn(struct ttrpc_server *srv, int fd);
/* Accept loop on a listening socket: one thread per connection.  Returns
 * when ttrpc_server_shutdown() is called or accept fails fatally. */
int ttrpc_server_serve_listener(struct ttrpc_server *srv, int listen_fd,
				struct kr_err *err);
/* Make serve_listener return (safe from any thread, including a handler). */
void ttrpc_server_shutdown(struct ttrpc_server *srv);
void ttrpc_server_free(struct ttrpc_server *srv);

/* ---- client ------------------------------------------------------------ */

struct ttrpc_client;

/* Takes ownership of a connected stream fd and starts a reader thread. */
struct ttrpc_client *ttrpc_client_new(int fd, struct kr_err *err);
/* One unary call.  timeout_ms > 0 is required: a hostile or hung peer must
 * never block the caller forever.  On a non-OK status returns -1 with
 * err->code = the status code and err->msg = the peer's message.  The
 * response payload (malloc'd, caller frees) is at most TTRPC_MAX_DATA. */
int ttrpc_client_call(struct ttrpc_client *c, const char *service,
		      const char *method, const uint8_t *req, size_t req_len,
		      uint8_t **resp, size_t *resp_len, int timeout_ms,
		      struct kr_err *err);
/* Closes the connection; pending calls fail with UNAVAILABLE. */
void ttrpc_client_free(struct ttrpc_client *c);

/* Connect to a Unix socket path (helper for clients and tests). */
int kr_unix_connect(const char *path, struct kr_err *err);
/* Bind+listen on a Unix socket path (unlinks a stale socket first). */
int kr_unix_listen(const char *path, struct kr_err *err);

#endif
