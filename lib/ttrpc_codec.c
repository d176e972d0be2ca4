/* ttrpc framing: the 10-byte header, the ttrpc.Request / ttrpc.Response
 * envelope (google.rpc.Status inside) and whole-frame I/O.  See
 * include/kr/ttrpc.h and specs/containerd-shim-v2.md section 1. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kr/ttrpc.h"
#include "kr/util.h"
#include "pbwire.h"

/* Absent strings and bytes decode to this, so users never see NULL. */
static const char empty_str[1];

/* ---- header ------------------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void ttrpc_hdr_encode(uint8_t out[TTRPC_HDR_LEN], const struct ttrpc_hdr *h)
{
	put_be32(out, h->length);
	put_be32(out + 4, h->stream_id);
	out[8] = h->type;
	out[9] = h->flags;
}

void ttrpc_hdr_decode(const uint8_t in[TTRPC_HDR_LEN], struct ttrpc_hdr *h)
{
	h->length = get_be32(in);
	h->stream_id = get_be32(in + 4);
	h->type = in[8];
	h->flags = in[9];
}

/* ---- decoding ---------------------------------------------------------- */

static int pb_fail(struct kr_err *err, const char *msg, uint32_t field, int rc)
{
	if (field)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "decode %s: field %u: %s",
				  msg, field, pb_strerror(rc));
	return kr_err_set(err, KR_INVALID_ARGUMENT, "decode %s: %s", msg,
			  pb_strerror(rc));
}

static int wire_fail(struct kr_err *err, const char *msg, uint32_t field,
		     unsigned wire, unsigned want)
{
	return kr_err_set(err, KR_INVALID_ARGUMENT,
			  "decode %s: field %u has wire type %u, expected %u",
			  msg, field, wire, want);
}

/* Read the value of a known length-delimited field. */
static int read_len_field(struct pb_reader *r, const char *msg, uint32_t field,
			  unsigned wire, const uint8_t **d, size_t *n,
			  struct kr_err *err)
{
	int rc;

	if (wire != PB_WT_LEN)
		return wire_fail(err, msg, field, wire, PB_WT_LEN);
	rc = pb_read_bytes(r, d, n);
	return rc < 0 ? pb_fail(err, msg, field, rc) : 0;
}

static int read_varint_field(struct pb_reader *r, const char *msg,
			     uint32_t field, unsigned wire, uint64_t *v,
			     struct kr_err *err)
{
	int rc;

	if (wire != PB_WT_VARINT)
		return wire_fail(err, msg, field, wire, PB_WT_VARINT);
	rc = pb_read_varint(r, v);
	return rc < 0 ? pb_fail(err, msg, field, rc) : 0;
}

/* The generic loop of every decoder here: read a tag, let the message's
 * field function take it (return 1 when it did not know the field), skip
 * unknown ones. */
typedef int (*field_fn)(void *obj, struct pb_reader *r, uint32_t field,
			unsigned wire, struct kr_err *err);

static int decode_message(const uint8_t *buf, size_t len, const char *msg,
			  field_fn fn, void *obj, struct kr_err *err)
{
	struct pb_reader r;

	pb_reader_init(&r, buf, len);
	while (!pb_reader_eof(&r)) {
		uint32_t field;
		unsigned wire;
		int rc = pb_read_tag(&r, &field, &wire);

		if (rc < 0)
			return pb_fail(err, msg, 0, rc);
		rc = fn(obj, &r, field, wire, err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			continue;
		rc = pb_skip(&r, field, wire);
		if (rc < 0)
			return pb_fail(err, msg, field, rc);
	}
	return 0;
}

/* ttrpc.KeyValue: validated (both strings well-formed), then dropped. */
static int keyvalue_field(void *obj, struct pb_reader *r, uint32_t field,
			  unsigned wire, struct kr_err *err)
{
	const uint8_t *d;
	size_t n;

	if (field != 1 && field != 2)
		return 1;
	return read_len_field(r, "ttrpc.KeyValue", field, wire, &d, &n, err);
}

static int request_field(void *obj, struct pb_reader *r, uint32_t field,
			 unsigned wire, struct kr_err *err)
{
	static const char msg[] = "ttrpc.Request";
	struct ttrpc_request *req = obj;
	const uint8_t *d;
	uint64_t v;
	size_t n;

	switch (field) {
	case 1:
	case 2:
	case 3:
		if (read_len_field(r, msg, field, wire, &d, &n, err) < 0)
			return -1;
		if (field == 1) {
			req->service = (const char *)d;
			req->service_len = n;
		} else if (field == 2) {
			req->method = (const char *)d;
			req->method_len = n;
		} else {
			req->payload = d;
			req->payload_len = n;
		}
		return 0;
	case 4:
		if (read_varint_field(r, msg, field, wire, &v, err) < 0)
			return -1;
		req->timeout_nano = (int64_t)v;	/* int64: two's complement */
		return 0;
	case 5:
		if (read_len_field(r, msg, field, wire, &d, &n, err) < 0)
			return -1;
		if (decode_message(d, n, "ttrpc.KeyValue", keyvalue_field,
				   NULL, err) < 0)
			return kr_err_wrap(err, "decode %s: metadata", msg);
		return 0;
	default:
		return 1;
	}
}

int ttrpc_request_decode(const uint8_t *buf, size_t len,
			 struct ttrpc_request *req, struct kr_err *err)
{
	req->service = empty_str;
	req->service_len = 0;
	req->method = empty_str;
	req->method_len = 0;
	req->payload = (const uint8_t *)empty_str;
	req->payload_len = 0;
	req->timeout_nano = 0;
	return decode_message(buf, len, "ttrpc.Request", request_field, req, err);
}

static int status_field(void *obj, struct pb_reader *r, uint32_t field,
			unsigned wire, struct kr_err *err)
{
	static const char msg[] = "google.rpc.Status";
	struct ttrpc_response *resp = obj;
	const uint8_t *d;
	uint64_t v;
	size_t n;

	switch (field) {
	case 1:
		if (read_varint_field(r, msg, field, wire, &v, err) < 0)
			return -1;
		/* int32 on the wire is a sign-extended varint: keep the low
		 * 32 bits, as protobuf does. */
		resp->code = (int32_t)(uint32_t)v;
		return 0;
	case 2:
		if (read_len_field(r, msg, field, wire, &d, &n, err) < 0)
			return -1;
		resp->message = (const char *)d;
		resp->message_len = n;
		return 0;
	case 3:		/* details: repeated Any, ignored as containerd does */
		return read_len_field(r, msg, field, wire, &d, &n, err);
	default:
		return 1;
	}
}

static int response_field(void *obj, struct pb_reader *r, uint32_t field,
			  unsigned wire, struct kr_err *err)
{
	static const char msg[] = "ttrpc.Response";
	struct ttrpc_response *resp = obj;
	const uint8_t *d;
	size_t n;

	switch (field) {
	case 1:
		if (read_len_field(r, msg, field, wire, &d, &n, err) < 0)
			return -1;
		/* A repeated embedded message merges into the previous one. */
		if (decode_message(d, n, "google.rpc.Status", status_field,
				   resp, err) < 0)
			return kr_err_wrap(err, "decode %s: status", msg);
		return 0;
	case 2:
		if (read_len_field(r, msg, field, wire, &d, &n, err) < 0)
			return -1;
		resp->payload = d;
		resp->payload_len = n;
		return 0;
	default:
		return 1;
	}
}

int ttrpc_response_decode(const uint8_t *buf, size_t len,
			  struct ttrpc_response *resp, struct kr_err *err)
{
	resp->code = 0;
	resp->message = empty_str;
	resp->message_len = 0;
	resp->payload = (const uint8_t *)empty_str;
	resp->payload_len = 0;
	return decode_message(buf, len, "ttrpc.Response", response_field, resp,
			      err);
}

/* ---- encoding ---------------------------------------------------------- */

static int too_big(struct kr_err *err, const char *what, size_t len)
{
	return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
			  "%s of %zu bytes exceeds the ttrpc limit of %u bytes",
			  what, len, TTRPC_MAX_DATA);
}

/* Allocate the exact size, let fill() write it, check the size matched. */
static int encode_alloc(size_t len, uint8_t **buf, struct pb_writer *w,
			struct kr_err *err)
{
	*buf = malloc(len ? len : 1);
	if (!*buf)
		return kr_err_errno(err, ENOMEM, "encode ttrpc message");
	pb_writer_init(w, *buf, len);
	return 0;
}

static int encode_finish(struct pb_writer *w, uint8_t *buf, size_t len,
			 uint8_t **out, size_t *out_len, struct kr_err *err)
{
	if (w->overflow || w->p != buf + len) {
		free(buf);
		return kr_err_set(err, KR_INTERNAL,
				  "encode ttrpc message: size mismatch");
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* Fields are written in number order and proto3 defaults (empty, 0) are
 * left out, which is exactly what the Go marshaller produces. */
int ttrpc_request_encode(const char *service, const char *method,
			 const uint8_t *payload, size_t payload_len,
			 int64_t timeout_nano, uint8_t **out, size_t *out_len,
			 struct kr_err *err)
{
	size_t sl = service ? strlen(service) : 0;
	size_t ml = method ? strlen(method) : 0;
	size_t len = 0;
	struct pb_writer w;
	uint8_t *buf;

	if (sl > TTRPC_MAX_DATA || ml > TTRPC_MAX_DATA ||
	    payload_len > TTRPC_MAX_DATA)
		return too_big(err, "request", sl + ml + payload_len);
	if (sl)
		len += pb_field_bytes_len(1, sl);
	if (ml)
		len += pb_field_bytes_len(2, ml);
	if (payload_len)
		len += pb_field_bytes_len(3, payload_len);
	if (timeout_nano)
		len += pb_field_varint_len(4, (uint64_t)timeout_nano);
	if (len > TTRPC_MAX_DATA)
		return too_big(err, "request", len);
	if (encode_alloc(len, &buf, &w, err) < 0)
		return -1;
	if (sl)
		pb_write_field_bytes(&w, 1, service, sl);
	if (ml)
		pb_write_field_bytes(&w, 2, method, ml);
	if (payload_len)
		pb_write_field_bytes(&w, 3, payload, payload_len);
	if (timeout_nano)
		pb_write_field_varint(&w, 4, (uint64_t)timeout_nano);
	return encode_finish(&w, buf, len, out, out_len, err);
}

int ttrpc_response_encode(int32_t code, const char *message,
			  const uint8_t *payload, size_t payload_len,
			  uint8_t **out, size_t *out_len, struct kr_err *err)
{
	size_t msg_len = message && code ? strlen(message) : 0;
	size_t status_len = 0, len = 0;
	struct pb_writer w;
	uint8_t *buf;

	if (code)
		payload_len = 0;	/* an error carries no payload */
	if (msg_len > TTRPC_MAX_DATA || payload_len > TTRPC_MAX_DATA)
		return too_big(err, "response", msg_len + payload_len);
	if (code) {
		/* int32 is sign-extended to 64 bits on the wire. */
		status_len = pb_field_varint_len(1, (uint64_t)(int64_t)code);
		if (msg_len)
			status_len += pb_field_bytes_len(2, msg_len);
		len += pb_field_bytes_len(1, status_len);
	}
	if (payload_len)
		len += pb_field_bytes_len(2, payload_len);
	if (len > TTRPC_MAX_DATA)
		return too_big(err, "response", len);
	if (encode_alloc(len, &buf, &w, err) < 0)
		return -1;
	if (code) {
		pb_write_tag(&w, 1, PB_WT_LEN);
		pb_write_varint(&w, status_len);
		pb_write_field_varint(&w, 1, (uint64_t)(int64_t)code);
		if (msg_len)
			pb_write_field_bytes(&w, 2, message, msg_len);
	}
	if (payload_len)
		pb_write_field_bytes(&w, 2, payload, payload_len);
	return encode_finish(&w, buf, len, out, out_len, err);
}

/* ---- frame I/O --------------------------------------------------------- */

/* Milliseconds left until deadline_ns for poll(2), rounded up; -1 = none. */
static int poll_timeout(uint64_t deadline_ns)
{
	uint64_t now, left;

	if (!deadline_ns)
		return -1;
	now = kr_now_ns();
	if (now >= deadline_ns)
		return 0;
	left = (deadline_ns - now + 999999) / 1000000;
	return left > 3600000 ? 3600000 : (int)left;
}

/* 0 when fd may be writable, -1 with errno ETIMEDOUT past the deadline. */
static int wait_writable(int fd, uint64_t deadline_ns)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	for (;;) {
		int rc = poll(&p, 1, poll_timeout(deadline_ns));

		if (rc > 0)
			return 0;	/* POLLERR/POLLHUP: the write reports it */
		if (rc == 0) {
			if (deadline_ns && kr_now_ns() >= deadline_ns) {
				errno = ETIMEDOUT;
				return -1;
			}
			continue;	/* the hour cap of poll_timeout ran out */
		}
		if (errno != EINTR)
			return -1;
	}
}

/* sendmsg with MSG_NOSIGNAL on sockets; plain writev on anything else. */
static ssize_t send_iov(int fd, struct iovec *iov, int cnt, int *is_sock)
{
	if (*is_sock) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (n >= 0 || errno != ENOTSOCK)
			return n;
		*is_sock = 0;
	}
	return writev(fd, iov, cnt);
}

static void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

int ttrpc_write_frame_deadline(int fd, uint32_t stream_id, uint8_t type,
			       const uint8_t *data, size_t len,
			       uint64_t deadline_ns, struct kr_err *err)
{
	struct ttrpc_hdr h = { .stream_id = stream_id, .type = type };
	uint8_t hb[TTRPC_HDR_LEN];
	struct iovec vec[2], *iov = vec;
	int cnt = len ? 2 : 1, is_sock = 1;
	size_t sent = 0, total = TTRPC_HDR_LEN + len;

	if (len > TTRPC_MAX_DATA)
		return too_big(err, "ttrpc frame", len);
	h.length = (uint32_t)len;
	ttrpc_hdr_encode(hb, &h);
	vec[0] = (struct iovec){ .iov_base = hb, .iov_len = sizeof(hb) };
	vec[1] = (struct iovec){ .iov_base = (void *)data, .iov_len = len };
	while (sent < total) {
		ssize_t n = send_iov(fd, iov, cnt, &is_sock);

		if (n > 0) {
			sent += (size_t)n;
			iov_advance(&iov, &cnt, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_writable(fd, deadline_ns) == 0)
			continue;
		if (n == 0)
			errno = EIO;
		kr_err_sys(err, "write ttrpc frame (stream %u)", stream_id);
		return sent ? -2 : -1;
	}
	return 0;
}

int ttrpc_write_frame(int fd, uint32_t stream_id, uint8_t type,
		      const uint8_t *data, size_t len, struct kr_err *err)
{
	return ttrpc_write_frame_deadline(fd, stream_id, type, data, len, 0,
					  err) < 0 ? -1 : 0;
}

/* Wait for fd to be readable, watching wake_fd too: a reader blocked in
 * read(2) could not notice a shutdown, and not every fd is a socket that
 * shutdown(2) could wake. */
static int wait_readable(int fd, int wake_fd, struct kr_err *err)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = wake_fd, .events = POLLIN },
	};

	for (;;) {
		int rc = poll(p, wake_fd >= 0 ? 2 : 1, -1);

		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return kr_err_sys(err, "poll ttrpc connection");
		if (wake_fd >= 0 && p[1].revents)
			return kr_err_set(err, KR_CANCELED,
					  "ttrpc connection shut down");
		return 0;	/* readable, or POLLHUP/POLLERR for read to report */
	}
}

/* Bytes read, fewer than len only at end of stream; -1 on error. */
static ssize_t read_upto(int fd, int wake_fd, void *buf, size_t len,
			 struct kr_err *err)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n;

		if (wait_readable(fd, wake_fd, err) < 0)
			return -1;
		n = read(fd, (char *)buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
		} else if (n == 0 || errno == ECONNRESET) {
			break;	/* a reset peer is a gone peer */
		} else if (errno != EINTR && errno != EAGAIN &&
			   errno != EWOULDBLOCK) {
			return kr_err_sys(err, "read ttrpc frame");
		}
	}
	return (ssize_t)done;
}

int ttrpc_read_frame(int fd, int wake_fd, struct ttrpc_hdr *h,
		     uint8_t **data, struct kr_err *err)
{
	uint8_t hb[TTRPC_HDR_LEN];
	uint8_t *buf;
	ssize_t n;

	*data = NULL;
	n = read_upto(fd, wake_fd, hb, sizeof(hb), err);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(hb))
		return 0;
	ttrpc_hdr_decode(hb, h);
	if (h->length > TTRPC_MAX_DATA)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
				  "message length %u exceeds maximum message size of %u",
				  h->length, TTRPC_MAX_DATA);
	if (!h->length)
		return 1;
	buf = malloc(h->length);
	if (!buf)
		return kr_err_errno(err, ENOMEM, "read ttrpc frame");
	n = read_upto(fd, wake_fd, buf, h->length, err);
	if (n < (ssize_t)h->length) {
		free(buf);
		return n < 0 ? -1 : 0;
	}
	*data = buf;
	return 1;
}

int ttrpc_discard(int fd, int wake_fd, uint64_t len, struct kr_err *err)
{
	uint8_t chunk[16384];

	while (len > 0) {
		size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
		ssize_t n = read_upto(fd, wake_fd, chunk, want, err);

		if (n < 0)
			return -1;
		if ((size_t)n < want)
			return 0;
		len -= want;
	}
	return 1;
}
