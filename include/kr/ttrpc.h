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

/* ---- frame I/O used by the server and the client (and by tests) ---------
 *
 * Sockets are written with MSG_NOSIGNAL; other fds (a virtio-serial port, a
 * pipe) with plain write(2), which raises SIGPIPE when the reader is gone:
 * programs using ttrpc must ignore SIGPIPE (this library never changes
 * signal dispositions).  Blocking and non-blocking fds both work.  A data
 * length above TTRPC_MAX_DATA is refused (RESOURCE_EXHAUSTED). */

/* ttrpc_write_frame with a deadline on the kr_now_ns() clock (0: none).
 * Returns 0; -1 when nothing was sent (the stream is intact; a timeout gives
 * DEADLINE_EXCEEDED); -2 when part of the frame went out before the failure
 * (the stream is desynchronised: the connection must be dropped). */
int ttrpc_write_frame_deadline(int fd, uint32_t stream_id, uint8_t type,
			       const uint8_t *data, size_t len,
			       uint64_t deadline_ns, struct kr_err *err);
/* Read one frame.  Returns 1 with *h and *data (malloc'd, NULL when the
 * length is 0); 0 at end of stream, also in the middle of a frame (a
 * truncated last frame is dropped); -1 on error.  A length above
 * TTRPC_MAX_DATA gives -1 with RESOURCE_EXHAUSTED, *h filled and the data
 * left unread (nothing is allocated).  When wake_fd (-1: none) becomes
 * readable the read stops with -1 and code CANCELED. */
int ttrpc_read_frame(int fd, int wake_fd, struct ttrpc_hdr *h,
		     uint8_t **data, struct kr_err *err);
/* Read and drop len bytes in bounded chunks (an oversized frame's data).
 * Returns 1 when done, 0 at end of stream, -1 on error (as above). */
int ttrpc_discard(int fd, int wake_fd, uint64_t len, struct kr_err *err);

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
 * connection; a call beyond it gets RESOURCE_EXHAUSTED (0 means the default,
 * 64).  Returns NULL with errno set when the shutdown pipe cannot be made.
 * Request.timeout_nano > 0 does not interrupt a handler, but a handler that
 * returns after that deadline is answered DEADLINE_EXCEEDED. */
struct ttrpc_server *ttrpc_server_new(const struct ttrpc_method *methods,
				      size_t n_methods, void *ctx,
				      unsigned max_inflight);
/* Serve one already-connected stream fd until EOF or error (takes ownership
 * of fd, closes it).  Blocks; waits for the connection's handlers to finish
 * before returning.  Used for accepted sockets and for a virtio-serial port.
 * Returns 0 at EOF (a truncated last frame included) or after shutdown, -1
 * with errno on a read error. */
int ttrpc_server_serve_conn(struct ttrpc_server *srv, int fd);
/* Accept loop on a listening socket: one thread per connection.  Returns
 * when ttrpc_server_shutdown() is called or accept fails fatally. */
int ttrpc_server_serve_listener(struct ttrpc_server *srv, int listen_fd,
				struct kr_err *err);
/* Accept only peers with this process's uid and gid (SO_PEERCRED), as
 * containerd's servers do.  Call before serve_listener. */
void ttrpc_server_require_same_user(struct ttrpc_server *srv);
/* Make serve_listener return (safe from any thread, including a handler).
 * Every connection also stops reading new requests; calls in flight finish
 * and are answered, then the connection closes. */
void ttrpc_server_shutdown(struct ttrpc_server *srv);
/* Shuts down, then waits for every connection (serve_conn included) to end.
 * Call it after serve_listener has returned. */
void ttrpc_server_free(struct ttrpc_server *srv);

/* ---- client ------------------------------------------------------------ */

struct ttrpc_client;

/* Takes ownership of a connected stream fd and starts a reader thread.  The
 * fd is made O_NONBLOCK (sends honour the call's deadline); on failure it is
 * closed and NULL returned. */
struct ttrpc_client *ttrpc_client_new(int fd, struct kr_err *err);
/* One unary call.  timeout_ms > 0 is required: a hostile or hung peer must
 * never block the caller forever.  On a non-OK status returns -1 with
 * err->code = the status code and err->msg = the peer's message.  The
 * response payload (malloc'd, caller frees) is at most TTRPC_MAX_DATA; an
 * empty payload gives NULL and 0; resp may be NULL to drop it. */
int ttrpc_client_call(struct ttrpc_client *c, const char *service,
		      const char *method, const uint8_t *req, size_t req_len,
		      uint8_t **resp, size_t *resp_len, int timeout_ms,
		      struct kr_err *err);
/* Closes the connection; pending calls fail with UNAVAILABLE. */
void ttrpc_client_free(struct ttrpc_client *c);

/* Connect to a Unix socket path (helper for clients and tests). */
int kr_unix_connect(const char *path, struct kr_err *err);
/* Whether a server accepts connections at path, without blocking: 1 yes
 * (or its backlog is full), 0 no (refused, no file), -1 another error
 * (errno set). */
int kr_unix_probe(const char *path);
/* Bind+listen on a Unix socket path (unlinks a stale socket first; a live
 * server there is an EADDRINUSE error). */
int kr_unix_listen(const char *path, struct kr_err *err);

#endif
