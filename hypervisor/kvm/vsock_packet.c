/* virtio-vsock header codec and tx packet checks (vsock_packet.h). */
#include <endian.h>
#include <inttypes.h>
#include <string.h>

#include "vsock_packet.h"

/* Field offsets of struct virtio_vsock_hdr (spec 5.2). */
#define OFF_SRC_CID 0
#define OFF_DST_CID 8
#define OFF_SRC_PORT 16
#define OFF_DST_PORT 20
#define OFF_LEN 24
#define OFF_TYPE 28
#define OFF_OP 30
#define OFF_FLAGS 32
#define OFF_BUF_ALLOC 36
#define OFF_FWD_CNT 40

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_SIZE], struct vsock_hdr *h)
{
	h->src_cid = get64(raw + OFF_SRC_CID);
	h->dst_cid = get64(raw + OFF_DST_CID);
	h->src_port = get32(raw + OFF_SRC_PORT);
	h->dst_port = get32(raw + OFF_DST_PORT);
	h->len = get32(raw + OFF_LEN);
	h->type = get16(raw + OFF_TYPE);
	h->op = get16(raw + OFF_OP);
	h->flags = get32(raw + OFF_FLAGS);
	h->buf_alloc = get32(raw + OFF_BUF_ALLOC);
	h->fwd_cnt = get32(raw + OFF_FWD_CNT);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE])
{
	put64(raw + OFF_SRC_CID, h->src_cid);
	put64(raw + OFF_DST_CID, h->dst_cid);
	put32(raw + OFF_SRC_PORT, h->src_port);
	put32(raw + OFF_DST_PORT, h->dst_port);
	put32(raw + OFF_LEN, h->len);
	put16(raw + OFF_TYPE, h->type);
	put16(raw + OFF_OP, h->op);
	put32(raw + OFF_FLAGS, h->flags);
	put32(raw + OFF_BUF_ALLOC, h->buf_alloc);
	put32(raw + OFF_FWD_CNT, h->fwd_cnt);
}

const char *vsock_op_name(uint16_t op)
{
	static const char *const names[] = {
		"INVALID", "REQUEST", "RESPONSE", "RST", "SHUTDOWN", "RW",
		"CREDIT_UPDATE", "CREDIT_REQUEST",
	};

	return op <= VSOCK_OP_MAX ? names[op] : "unknown op";
}

/* Checks after the header is known to come from the guest.  Returns the
 * verdict for a packet that fails one; an RST is never answered, whatever
 * is wrong with it. */
static enum vsock_verdict reject(const struct vsock_hdr *h)
{
	return h->op == VSOCK_OP_RST ? VSOCK_DROP : VSOCK_REPLY_RST;
}

static enum vsock_verdict check_addressed(const struct vsock_hdr *h,
					  uint32_t present, struct kr_err *why)
{
	if (h->dst_cid != VSOCK_HOST_CID) {
		kr_err_set(why, KR_INVALID_ARGUMENT, "%s to cid %" PRIu64
			   ": only the host (cid 2) is reachable",
			   vsock_op_name(h->op), h->dst_cid);
		return reject(h);
	}
	if (h->type != VSOCK_TYPE_STREAM) {
		kr_err_set(why, KR_UNIMPLEMENTED, "%s of socket type %u: only"
			   " STREAM (1) is supported", vsock_op_name(h->op),
			   h->type);
		return reject(h);
	}
	if (h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_MAX) {
		kr_err_set(why, KR_INVALID_ARGUMENT, "op %u is not a vsock"
			   " operation (1..%u)", h->op, VSOCK_OP_MAX);
		return reject(h);
	}
	if (h->len > VSOCK_MAX_PAYLOAD) {
		kr_err_set(why, KR_INVALID_ARGUMENT, "%s with len %u: the"
			   " limit is %u", vsock_op_name(h->op), h->len,
			   VSOCK_MAX_PAYLOAD);
		return reject(h);
	}
	if (h->len > present) {
		kr_err_set(why, KR_INVALID_ARGUMENT, "%s with len %u, but the"
			   " chain holds %u bytes after the header",
			   vsock_op_name(h->op), h->len, present);
		return reject(h);
	}
	return VSOCK_ACCEPT;
}

enum vsock_verdict vsock_tx_parse(const struct vq_chain *c, uint64_t guest_cid,
				  struct vsock_hdr *h, struct kr_err *why)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	size_t n;

	memset(raw, 0, sizeof(raw));
	n = vq_chain_read(c, 0, raw, sizeof(raw));
	vsock_hdr_decode(raw, h);
	if (n < VSOCK_HDR_SIZE) {
		/* Not even a header: nobody to answer. */
		kr_err_set(why, KR_INVALID_ARGUMENT, "tx chain of %u readable"
			   " bytes is shorter than the %u-byte header",
			   c->read_len, VSOCK_HDR_SIZE);
		return VSOCK_DROP;
	}
	if (h->src_cid != guest_cid) {
		/* Answering a spoofed source would only help the spoofing. */
		kr_err_set(why, KR_PERMISSION_DENIED, "%s from cid %" PRIu64
			   ", but the guest is cid %" PRIu64,
			   vsock_op_name(h->op), h->src_cid, guest_cid);
		return VSOCK_DROP;
	}
	/* read_len >= 44 here: vq_chain_read returned 44. */
	return check_addressed(h, c->read_len - VSOCK_HDR_SIZE, why);
}

void vsock_rst_for(const struct vsock_hdr *h, struct vsock_hdr *rst)
{
	memset(rst, 0, sizeof(*rst));
	rst->src_cid = h->dst_cid;
	rst->dst_cid = h->src_cid;
	rst->src_port = h->dst_port;
	rst->dst_port = h->src_port;
	rst->type = VSOCK_TYPE_STREAM;
	rst->op = VSOCK_OP_RST;
}

uint32_t vsock_credit_free(uint32_t buf_alloc, uint32_t fwd_cnt,
			   uint32_t tx_cnt)
{
	uint32_t in_flight = tx_cnt - fwd_cnt;	/* wraps like the counters */

	return in_flight > buf_alloc ? 0 : buf_alloc - in_flight;
}

static bool keyword_is(const char *s, const char *kw, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (ch != kw[i])
			return false;
	}
	return true;
}

int vsock_connect_line_parse(const char *line, size_t len, uint32_t *port,
			     struct kr_err *why)
{
	static const char kw[] = "CONNECT ";
	const size_t kwlen = sizeof(kw) - 1;
	uint64_t v = 0;
	size_t i, digits;

	if (len > VSOCK_CONNECT_LINE_MAX)
		return kr_err_set(why, KR_INVALID_ARGUMENT, "CONNECT line of"
				  " %zu bytes (at most %u)", len,
				  VSOCK_CONNECT_LINE_MAX);
	if (len == 0 || line[len - 1] != '\n')
		return kr_err_set(why, KR_INVALID_ARGUMENT,
				  "CONNECT line does not end in a newline");
	if (len < kwlen || !keyword_is(line, kw, kwlen))
		return kr_err_set(why, KR_INVALID_ARGUMENT, "expected"
				  " \"CONNECT <port>\\n\" from the host client");
	for (i = kwlen; i < len - 1; i++) {
		if (line[i] < '0' || line[i] > '9')
			return kr_err_set(why, KR_INVALID_ARGUMENT, "CONNECT"
					  " line: byte 0x%02x at %zu is not a"
					  " digit", (unsigned char)line[i], i);
		/* 10 digits cannot overflow u64; the value is checked
		 * below. */
		if (i - kwlen >= 10)
			return kr_err_set(why, KR_INVALID_ARGUMENT, "CONNECT"
					  " line: port has more than 10 digits");
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	digits = len - 1 - kwlen;
	if (digits == 0)
		return kr_err_set(why, KR_INVALID_ARGUMENT,
				  "CONNECT line without a port");
	if (v > UINT32_MAX)
		return kr_err_set(why, KR_OUT_OF_RANGE, "CONNECT port %" PRIu64
				  " is above %u", v, UINT32_MAX);
	*port = (uint32_t)v;
	return 0;
}
