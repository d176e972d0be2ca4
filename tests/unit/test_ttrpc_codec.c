/* ttrpc framing and envelope codec, pbwire, and error objects. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/ttrpc.h"
#include "../../lib/pbwire.h"
#include "../lib/kr_test.h"

/* ---- spec section 1.7 worked examples ---------------------------------- */

static const uint8_t ex_req_frame[] = {
	0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x03, 0x01, 0x00,
	0x0a, 0x17, 'c', 'o', 'n', 't', 'a', 'i', 'n', 'e', 'r', 'd', '.',
	't', 'a', 's', 'k', '.', 'v', '2', '.', 'T', 'a', 's', 'k',
	0x12, 0x07, 'C', 'o', 'n', 'n', 'e', 'c', 't',
	0x1a, 0x04, 0x0a, 0x02, 't', '1',
};
static const uint8_t ex_ok_frame[] = {
	0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0x02, 0x00,
	0x12, 0x06, 0x08, 0x8a, 0x4d, 0x10, 0x92, 0x21,
};
static const uint8_t ex_err_frame[] = {
	0x00, 0x00, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x2d, 0x02, 0x00,
	0x0a, 0x0d, 0x08, 0x05, 0x12, 0x09,
	'n', 'o', 't', ' ', 'f', 'o', 'u', 'n', 'd',
};
static const uint8_t ex_connect_payload[] = { 0x0a, 0x02, 't', '1' };

#define DATA(f) ((f) + TTRPC_HDR_LEN)
#define DLEN(f) (sizeof(f) - TTRPC_HDR_LEN)

static int streq_n(const char *s, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(s, want, n) == 0;
}

static void test_hdr_examples(void)
{
	struct ttrpc_hdr h;
	uint8_t out[TTRPC_HDR_LEN];

	ttrpc_hdr_decode(ex_req_frame, &h);
	CHECK(h.length == 40 && h.stream_id == 3);
	CHECK(h.type == TTRPC_REQUEST && h.flags == 0);
	ttrpc_hdr_encode(out, &h);
	CHECK(memcmp(out, ex_req_frame, TTRPC_HDR_LEN) == 0);

	ttrpc_hdr_decode(ex_err_frame, &h);
	CHECK(h.length == 15 && h.stream_id == 45 && h.type == TTRPC_RESPONSE);

	h = (struct ttrpc_hdr){ .length = 0x01020304, .stream_id = 0xfffffffe,
				.type = 3, .flags = 0x81 };
	ttrpc_hdr_encode(out, &h);
	CHECK(out[0] == 1 && out[3] == 4 && out[4] == 0xff && out[7] == 0xfe);
	CHECK(out[8] == 3 && out[9] == 0x81);
}

static void test_request_example(void)
{
	struct ttrpc_request req;
	struct kr_err err;
	uint8_t *buf = NULL;
	size_t len = 0;

	REQUIRE(ttrpc_request_decode(DATA(ex_req_frame), DLEN(ex_req_frame),
				     &req, &err) == 0);
	CHECK(streq_n(req.service, req.service_len, "containerd.task.v2.Task"));
	CHECK(streq_n(req.method, req.method_len, "Connect"));
	CHECK(req.payload_len == 4 &&
	      memcmp(req.payload, ex_connect_payload, 4) == 0);
	CHECK(req.timeout_nano == 0);

	REQUIRE(ttrpc_request_encode("containerd.task.v2.Task", "Connect",
				     ex_connect_payload, 4, 0, &buf, &len,
				     &err) == 0);
	CHECK(len == DLEN(ex_req_frame));
	CHECK(len == DLEN(ex_req_frame) &&
	      memcmp(buf, DATA(ex_req_frame), len) == 0);
	free(buf);
}

static void test_response_examples(void)
{
	struct ttrpc_response r;
	struct kr_err err;
	uint8_t *buf = NULL;
	size_t len = 0;

	REQUIRE(ttrpc_response_decode(DATA(ex_ok_frame), DLEN(ex_ok_frame),
				      &r, &err) == 0);
	CHECK(r.code == 0 && r.message_len == 0);
	CHECK(r.payload_len == 6 &&
	      memcmp(r.payload, DATA(ex_ok_frame) + 2, 6) == 0);
	REQUIRE(ttrpc_response_encode(0, NULL, r.payload, r.payload_len, &buf,
				      &len, &err) == 0);
	CHECK(len == DLEN(ex_ok_frame) &&
	      memcmp(buf, DATA(ex_ok_frame), len) == 0);
	free(buf);

	REQUIRE(ttrpc_response_decode(DATA(ex_err_frame), DLEN(ex_err_frame),
				      &r, &err) == 0);
	CHECK(r.code == KR_NOT_FOUND);
	CHECK(streq_n(r.message, r.message_len, "not found"));
	CHECK(r.payload_len == 0);
	REQUIRE(ttrpc_response_encode(KR_NOT_FOUND, "not found", NULL, 0, &buf,
				      &len, &err) == 0);
	CHECK(len == DLEN(ex_err_frame) &&
	      memcmp(buf, DATA(ex_err_frame), len) == 0);
	free(buf);
}

/* Whole frames through ttrpc_write_frame, byte for byte. */
static void test_write_frame_examples(void)
{
	uint8_t got[128];
	struct kr_err err;
	int p[2];

	REQUIRE(pipe(p) == 0);
	CHECK(ttrpc_write_frame(p[1], 3, TTRPC_REQUEST, DATA(ex_req_frame),
				DLEN(ex_req_frame), &err) == 0);
	CHECK(ttrpc_write_frame(p[1], 45, TTRPC_RESPONSE, DATA(ex_err_frame),
				DLEN(ex_err_frame), &err) == 0);
	close(p[1]);
	CHECK(read(p[0], got, sizeof(got)) ==
	      (ssize_t)(sizeof(ex_req_frame) + sizeof(ex_err_frame)));
	CHECK(memcmp(got, ex_req_frame, sizeof(ex_req_frame)) == 0);
	CHECK(memcmp(got + sizeof(ex_req_frame), ex_err_frame,
		     sizeof(ex_err_frame)) == 0);
	close(p[0]);
}

/* ---- pbwire ------------------------------------------------------------ */

static int varint_of(const uint8_t *b, size_t n, uint64_t *v)
{
	struct pb_reader r;

	pb_reader_init(&r, b, n);
	return pb_read_varint(&r, v);
}

static void test_varints(void)
{
	static const uint8_t max[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff, 0x01 };
	static const uint8_t over[] = { 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0xff, 0xff, 0x02 };
	static const uint8_t eleven[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					  0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t trunc[] = { 0x80, 0x80 };
	uint8_t buf[PB_VARINT_MAX];
	struct pb_writer w;
	uint64_t v = 0;

	CHECK(varint_of((const uint8_t *)"\x00", 1, &v) == 0 && v == 0);
	CHECK(varint_of((const uint8_t *)"\xac\x02", 2, &v) == 0 && v == 300);
	CHECK(varint_of(max, sizeof(max), &v) == 0 && v == UINT64_MAX);
	CHECK(varint_of(over, sizeof(over), &v) == PB_EVARINT);
	CHECK(varint_of(eleven, sizeof(eleven), &v) == PB_EVARINT);
	CHECK(varint_of(trunc, sizeof(trunc), &v) == PB_ETRUNC);
	CHECK(varint_of(NULL, 0, &v) == PB_ETRUNC);

	CHECK(pb_varint_len(0) == 1 && pb_varint_len(127) == 1);
	CHECK(pb_varint_len(128) == 2 && pb_varint_len(UINT64_MAX) == 10);
	pb_writer_init(&w, buf, sizeof(buf));
	pb_write_varint(&w, UINT64_MAX);
	CHECK(!w.overflow && w.p == buf + 10 && memcmp(buf, max, 10) == 0);
	pb_write_varint(&w, 1);		/* no room left */
	CHECK(w.overflow && w.p == buf + 10);
}

static void test_fixed_and_tags(void)
{
	static const uint8_t f32[] = { 0x78, 0x56, 0x34, 0x12 };
	static const uint8_t f64[] = { 1, 2, 3, 4, 5, 6, 7, 0x80 };
	struct pb_reader r;
	uint32_t v32, field;
	uint64_t v64;
	unsigned wire;

	pb_reader_init(&r, f32, 4);
	CHECK(pb_read_fixed32(&r, &v32) == 0 && v32 == 0x12345678);
	CHECK(pb_reader_eof(&r));
	pb_reader_init(&r, f32, 3);
	CHECK(pb_read_fixed32(&r, &v32) == PB_ETRUNC);
	pb_reader_init(&r, f64, 8);
	CHECK(pb_read_fixed64(&r, &v64) == 0 && v64 == 0x8007060504030201ull);
	pb_reader_init(&r, f64, 7);
	CHECK(pb_read_fixed64(&r, &v64) == PB_ETRUNC);

	pb_reader_init(&r, (const uint8_t *)"\x0a", 1);
	CHECK(pb_read_tag(&r, &field, &wire) == 0 && field == 1 && wire == 2);
	pb_reader_init(&r, (const uint8_t *)"\x02", 1);	/* field 0 */
	CHECK(pb_read_tag(&r, &field, &wire) == PB_ETAG);
	pb_reader_init(&r, (const uint8_t *)"\x0e", 1);	/* wire type 6 */
	CHECK(pb_read_tag(&r, &field, &wire) == PB_EWIRE);
	pb_reader_init(&r, (const uint8_t *)"\x0f", 1);	/* wire type 7 */
	CHECK(pb_read_tag(&r, &field, &wire) == PB_EWIRE);
	/* A tag above 32 bits. */
	pb_reader_init(&r, (const uint8_t *)"\x88\x80\x80\x80\x80\x01", 6);
	CHECK(pb_read_tag(&r, &field, &wire) == PB_ETAG);
	/* The largest field number, 2^29-1. */
	pb_reader_init(&r, (const uint8_t *)"\xf8\xff\xff\xff\x0f", 5);
	CHECK(pb_read_tag(&r, &field, &wire) == 0 && field == PB_FIELD_MAX);
}

static void test_bytes_bounds(void)
{
	static const uint8_t past[] = { 0x05, 'a', 'b' };
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff, 0xff, 0xff, 0x01, 'a' };
	struct pb_reader r;
	const uint8_t *d;
	size_t n;

	pb_reader_init(&r, past, sizeof(past));
	CHECK(pb_read_bytes(&r, &d, &n) == PB_ETRUNC);
	pb_reader_init(&r, huge, sizeof(huge));
	CHECK(pb_read_bytes(&r, &d, &n) == PB_ETRUNC);
	pb_reader_init(&r, (const uint8_t *)"\x02xy", 3);
	CHECK(pb_read_bytes(&r, &d, &n) == 0 && n == 2 && d[0] == 'x');
	CHECK(pb_reader_eof(&r));
	pb_reader_init(&r, (const uint8_t *)"\x00", 1);
	CHECK(pb_read_bytes(&r, &d, &n) == 0 && n == 0);
}

static void test_groups(void)
{
	/* field 9 group { field 1 varint 5; field 2 group {} ; field 3 i32 } */
	static const uint8_t ok[] = { 0x4b, 0x08, 0x05, 0x13, 0x14,
				      0x1d, 1, 2, 3, 4, 0x4c, 0x08, 0x01 };
	static const uint8_t mismatch[] = { 0x4b, 0x08, 0x05, 0x54 };
	static const uint8_t unterminated[] = { 0x4b, 0x08, 0x05 };
	uint8_t deep[2 * (PB_GROUP_DEPTH_MAX + 2)];
	struct pb_reader r;
	uint32_t field;
	unsigned wire;

	pb_reader_init(&r, ok, sizeof(ok));
	REQUIRE(pb_read_tag(&r, &field, &wire) == 0 && wire == PB_WT_SGROUP);
	CHECK(pb_skip(&r, field, wire) == 0);
	CHECK(r.p == ok + 11);	/* stops right after the end-group tag */

	pb_reader_init(&r, mismatch, sizeof(mismatch));
	REQUIRE(pb_read_tag(&r, &field, &wire) == 0);
	CHECK(pb_skip(&r, field, wire) == PB_EGROUP);
	pb_reader_init(&r, unterminated, sizeof(unterminated));
	REQUIRE(pb_read_tag(&r, &field, &wire) == 0);
	CHECK(pb_skip(&r, field, wire) == PB_ETRUNC);

	/* A stray end-group is not a value that can be skipped. */
	pb_reader_init(&r, (const uint8_t *)"\x0c", 1);
	REQUIRE(pb_read_tag(&r, &field, &wire) == 0 && wire == PB_WT_EGROUP);
	CHECK(pb_skip(&r, field, wire) == PB_EWIRE);

	/* Nesting deeper than PB_GROUP_DEPTH_MAX is refused, not recursed. */
	for (size_t i = 0; i < sizeof(deep) / 2; i++)
		deep[i] = 0x0b;				/* start group 1 */
	for (size_t i = sizeof(deep) / 2; i < sizeof(deep); i++)
		deep[i] = 0x0c;				/* end group 1 */
	pb_reader_init(&r, deep, sizeof(deep));
	REQUIRE(pb_read_tag(&r, &field, &wire) == 0);
	CHECK(pb_skip(&r, field, wire) == PB_EGROUP);
}

/* ---- envelope edge cases ----------------------------------------------- */

/* Every cut of the example Request inside a field fails; cuts at field
 * boundaries are shorter valid messages. */
static void test_request_prefixes(void)
{
	const uint8_t *d = DATA(ex_req_frame);

	for (size_t n = 0; n <= DLEN(ex_req_frame); n++) {
		struct ttrpc_request req;
		struct kr_err err = { 0 };
		int boundary = n == 0 || n == 25 || n == 34 || n == 40;
		int rc = ttrpc_request_decode(d, n, &req, &err);

		CHECKF(boundary ? rc == 0 : rc < 0, "prefix %zu", n);
		if (rc < 0) {
			CHECK(err.code == KR_INVALID_ARGUMENT);
			CHECK_CONTAINS(err.msg, "ttrpc.Request");
		}
	}
}

static void test_request_bad(void)
{
	static const struct { const char *name; const uint8_t *b; size_t n; } bad[] = {
		{ "tag only", (const uint8_t *)"\x0a", 1 },
		{ "length past buffer", (const uint8_t *)"\x0a\x05" "ab", 4 },
		{ "huge length", (const uint8_t *)"\x12\xff\xff\xff\xff\x0f", 6 },
		{ "truncated varint tag", (const uint8_t *)"\x80", 1 },
		{ "service as varint", (const uint8_t *)"\x08\x01", 2 },
		{ "timeout as bytes", (const uint8_t *)"\x22\x00", 2 },
		{ "truncated timeout", (const uint8_t *)"\x20\x80\x80", 3 },
		{ "field 0", (const uint8_t *)"\x02\x00", 2 },
		{ "wire type 7", (const uint8_t *)"\x37", 1 },
		{ "bad metadata", (const uint8_t *)"\x2a\x02\x08\x01", 4 },
		{ "truncated metadata", (const uint8_t *)"\x2a\x02\x0a\x05", 4 },
		{ "unknown i64 cut", (const uint8_t *)"\x31\x01\x02", 3 },
		{ "unknown i32 cut", (const uint8_t *)"\x35\x01", 2 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ttrpc_request req;
		struct kr_err err = { 0 };

		CHECKF(ttrpc_request_decode(bad[i].b, bad[i].n, &req, &err) < 0,
		       "%s", bad[i].name);
		CHECKF(err.code == KR_INVALID_ARGUMENT, "%s", bad[i].name);
	}
}

/* Unknown fields of each wire type, between and after the known ones. */
static void test_request_unknown_fields(void)
{
	static const uint8_t msg[] = {
		0x30, 0xff, 0x01,				/* 6 varint */
		0x0a, 0x01, 'S',				/* 1 service */
		0x39, 1, 2, 3, 4, 5, 6, 7, 8,			/* 7 fixed64 */
		0x12, 0x01, 'M',				/* 2 method */
		0x42, 0x03, 'x', 'y', 'z',			/* 8 bytes */
		0x4b, 0x08, 0x01, 0x4c,				/* 9 group */
		0x55, 1, 2, 3, 4,				/* 10 fixed32 */
		0x2a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v',	/* metadata */
		0x2a, 0x02, 0x18, 0x01,				/* kv, unknown 3 */
		0x1a, 0x02, 'p', 'q',				/* 3 payload */
		0x20, 0x07,					/* 4 timeout */
		0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00,		/* field 2^29-1 */
	};
	struct ttrpc_request req;
	struct kr_err err;

	REQUIRE(ttrpc_request_decode(msg, sizeof(msg), &req, &err) == 0);
	CHECK(streq_n(req.service, req.service_len, "S"));
	CHECK(streq_n(req.method, req.method_len, "M"));
	CHECK(req.payload_len == 2 && memcmp(req.payload, "pq", 2) == 0);
	CHECK(req.timeout_nano == 7);
}

static void test_empty_messages(void)
{
	struct ttrpc_request req;
	struct ttrpc_response r;
	struct kr_err err;
	uint8_t *buf = (uint8_t *)"x";
	size_t len = 99;

	REQUIRE(ttrpc_request_decode(NULL, 0, &req, &err) == 0);
	CHECK(req.service && req.service_len == 0);
	CHECK(req.method && req.method_len == 0);
	CHECK(req.payload && req.payload_len == 0 && req.timeout_nano == 0);
	REQUIRE(ttrpc_response_decode(NULL, 0, &r, &err) == 0);
	CHECK(r.code == 0 && r.message && r.message_len == 0);
	CHECK(r.payload && r.payload_len == 0);

	/* Success with google.protobuf.Empty: an empty Response. */
	REQUIRE(ttrpc_response_encode(0, NULL, NULL, 0, &buf, &len, &err) == 0);
	CHECK(len == 0);
	free(buf);
	REQUIRE(ttrpc_request_encode("", "", NULL, 0, 0, &buf, &len, &err) == 0);
	CHECK(len == 0);
	free(buf);
}

static void test_status_absent_vs_zero(void)
{
	static const uint8_t absent[] = { 0x12, 0x01, 'p' };
	static const uint8_t empty_status[] = { 0x0a, 0x00, 0x12, 0x01, 'p' };
	static const uint8_t zero_code[] = { 0x0a, 0x02, 0x08, 0x00 };
	/* status { code 5, details { Any }, unknown i32 } merged with a second
	 * status { message "m" }: protobuf merges repeated messages. */
	static const uint8_t merged[] = {
		0x0a, 0x0b, 0x08, 0x05, 0x1a, 0x02, 0x0a, 0x00,
		0x25, 1, 2, 3, 4,
		0x0a, 0x03, 0x12, 0x01, 'm',
	};
	struct ttrpc_response r;
	struct kr_err err;

	REQUIRE(ttrpc_response_decode(absent, sizeof(absent), &r, &err) == 0);
	CHECK(r.code == 0 && r.payload_len == 1);
	REQUIRE(ttrpc_response_decode(empty_status, sizeof(empty_status), &r,
				      &err) == 0);
	CHECK(r.code == 0 && r.payload_len == 1);
	REQUIRE(ttrpc_response_decode(zero_code, sizeof(zero_code), &r,
				      &err) == 0);
	CHECK(r.code == 0 && r.payload_len == 0);
	REQUIRE(ttrpc_response_decode(merged, sizeof(merged), &r, &err) == 0);
	CHECK(r.code == 5 && streq_n(r.message, r.message_len, "m"));

	/* A bad status fails the Response and says where. */
	CHECK(ttrpc_response_decode((const uint8_t *)"\x0a\x02\x08\x80", 4, &r,
				    &err) < 0);
	CHECK_CONTAINS(err.msg, "status");
	CHECK(ttrpc_response_decode((const uint8_t *)"\x12\x05", 2, &r,
				    &err) < 0);
}

static void test_negative_code(void)
{
	struct ttrpc_response r;
	struct kr_err err;
	uint8_t *buf;
	size_t len;

	REQUIRE(ttrpc_response_encode(-1, "neg", NULL, 0, &buf, &len, &err) == 0);
	/* 0a 10 | 08 + 10-byte varint | 12 03 "neg" */
	CHECK(len == 18 && buf[1] == 16 && buf[3] == 0xff && buf[12] == 0x01);
	REQUIRE(ttrpc_response_decode(buf, len, &r, &err) == 0);
	CHECK(r.code == -1 && streq_n(r.message, r.message_len, "neg"));
	free(buf);

	/* An error drops the payload; message "" is left out. */
	REQUIRE(ttrpc_response_encode(KR_INTERNAL, "", (const uint8_t *)"pp", 2,
				      &buf, &len, &err) == 0);
	CHECK(len == 4 && memcmp(buf, "\x0a\x02\x08\x0d", 4) == 0);
	free(buf);
}

static void test_timeout_64bit(void)
{
	static const int64_t vals[] = { 1, 5000000000ll, INT64_MAX, -1,
					INT64_MIN };
	struct ttrpc_request req;
	struct kr_err err;
	uint8_t *buf;
	size_t len;

	REQUIRE(ttrpc_request_encode("s", "m", NULL, 0, 5000000000ll, &buf,
				     &len, &err) == 0);
	CHECK(len == 12 &&
	      memcmp(buf + 6, "\x20\x80\xe4\x97\xd0\x12", 6) == 0);
	free(buf);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		REQUIRE(ttrpc_request_encode("s", "m", NULL, 0, vals[i], &buf,
					     &len, &err) == 0);
		REQUIRE(ttrpc_request_decode(buf, len, &req, &err) == 0);
		CHECKF(req.timeout_nano == vals[i], "value %lld",
		       (long long)vals[i]);
		free(buf);
	}
}

static void test_encode_limits(void)
{
	size_t big = TTRPC_MAX_DATA;
	uint8_t *payload = calloc(1, big + 1);
	struct kr_err err;
	uint8_t *buf = NULL;
	size_t len;

	REQUIRE(payload);
	/* The payload alone fits, the envelope around it does not. */
	CHECK(ttrpc_request_encode("s", "m", payload, big, 0, &buf, &len,
				   &err) < 0);
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	CHECK(ttrpc_response_encode(0, NULL, payload, big + 1, &buf, &len,
				    &err) < 0);
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	CHECK(ttrpc_response_encode(0, NULL, payload, big - 5, &buf, &len,
				    &err) == 0 && len == big);
	free(buf);
	CHECK(ttrpc_write_frame(-1, 1, TTRPC_REQUEST, payload, big + 1,
				&err) < 0);
	CHECK(err.code == KR_RESOURCE_EXHAUSTED);
	free(payload);
}

/* ---- frame reading ----------------------------------------------------- */

static void test_read_frame(void)
{
	static const uint8_t big_hdr[] = { 0x00, 0x40, 0x00, 0x01, 0, 0, 0, 7,
					   1, 0 };
	static const uint8_t empty_hdr[] = { 0, 0, 0, 0, 0, 0, 0, 9, 2, 0 };
	struct ttrpc_hdr h;
	struct kr_err err;
	uint8_t *data = (uint8_t *)"x";
	int p[2];

	REQUIRE(pipe(p) == 0);
	/* Oversized: refused before any allocation, the data left unread. */
	CHECK(write(p[1], big_hdr, 10) == 10);
	CHECK(write(p[1], "abc", 3) == 3);
	CHECK(ttrpc_read_frame(p[0], -1, &h, &data, &err) == -1);
	CHECK(err.code == KR_RESOURCE_EXHAUSTED && data == NULL);
	CHECK(h.length == TTRPC_MAX_DATA + 1 && h.stream_id == 7);
	CHECK(ttrpc_discard(p[0], -1, 3, &err) == 1);
	/* An empty frame. */
	CHECK(write(p[1], empty_hdr, 10) == 10);
	CHECK(ttrpc_read_frame(p[0], -1, &h, &data, &err) == 1);
	CHECK(data == NULL && h.length == 0 && h.stream_id == 9);
	/* A whole frame, then one cut off by EOF. */
	CHECK(write(p[1], ex_ok_frame, sizeof(ex_ok_frame)) ==
	      (ssize_t)sizeof(ex_ok_frame));
	CHECK(write(p[1], ex_err_frame, 14) == 14);
	close(p[1]);
	CHECK(ttrpc_read_frame(p[0], -1, &h, &data, &err) == 1);
	CHECK(data && h.length == 8 && memcmp(data, DATA(ex_ok_frame), 8) == 0);
	free(data);
	CHECK(ttrpc_read_frame(p[0], -1, &h, &data, &err) == 0 && !data);
	CHECK(ttrpc_read_frame(p[0], -1, &h, &data, &err) == 0);
	CHECK(ttrpc_discard(p[0], -1, 5, &err) == 0);
	close(p[0]);
}

static void test_read_frame_wake(void)
{
	struct ttrpc_hdr h;
	struct kr_err err;
	uint8_t *data;
	int p[2], w[2];

	REQUIRE(pipe(p) == 0 && pipe(w) == 0);
	CHECK(write(w[1], "", 1) == 1);
	CHECK(ttrpc_read_frame(p[0], w[0], &h, &data, &err) == -1);
	CHECK(err.code == KR_CANCELED);
	close(p[0]);
	close(p[1]);
	close(w[0]);
	close(w[1]);
}

/* ---- error objects ----------------------------------------------------- */

static void test_err_wrap_chain(void)
{
	struct kr_err err;

	CHECK(kr_err_errno(&err, ENOENT, "open %s", "/x") == -1);
	CHECK_STREQ(err.msg, "open /x: No such file or directory");
	CHECK(err.code == KR_NOT_FOUND && err.errnum == ENOENT);
	kr_err_wrap(&err, "mount %s", "/proc");
	kr_err_wrap(&err, "create container %s", "abc");
	CHECK_STREQ(err.msg, "create container abc: mount /proc: open /x: "
			     "No such file or directory");
	CHECK(err.code == KR_NOT_FOUND && err.errnum == ENOENT);

	errno = EACCES;
	kr_err_sys(&err, "write");
	CHECK(err.code == KR_PERMISSION_DENIED && errno == EACCES);
	CHECK_CONTAINS(err.msg, "Permission denied");
	kr_err_set(&err, KR_UNIMPLEMENTED, "unknown method %s", "x/y");
	CHECK(err.errnum == 0 && err.code == KR_UNIMPLEMENTED);
	kr_err_clear(&err);
	CHECK(err.code == KR_OK && err.msg[0] == '\0');
	CHECK(kr_err_set(NULL, 1, "dropped") == -1);
	CHECK(kr_err_wrap(NULL, "dropped") == -1);
}

static void test_err_truncation(void)
{
	char big[3000];
	struct kr_err err;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kr_err_set(&err, KR_INTERNAL, "%s", big);
	CHECK(strlen(err.msg) == KR_ERR_MSG_MAX - 1);
	/* The context survives whole, the root cause is cut to fit. */
	kr_err_set(&err, KR_INTERNAL, "root cause");
	kr_err_wrap(&err, "%.1015s", big);
	CHECK(strlen(err.msg) == KR_ERR_MSG_MAX - 1);
	CHECK(memcmp(err.msg + 1015, ": root c", 8) == 0);
	/* A context longer than the buffer leaves room for ": " only. */
	kr_err_wrap(&err, "%s", big);
	CHECK(strlen(err.msg) == KR_ERR_MSG_MAX - 1);
	CHECK(memcmp(err.msg + KR_ERR_MSG_MAX - 3, ": ", 2) == 0);
	CHECK(err.code == KR_INTERNAL);
}

static void test_err_codes(void)
{
	CHECK(kr_code_from_errno(ENOENT) == KR_NOT_FOUND);
	CHECK(kr_code_from_errno(EEXIST) == KR_ALREADY_EXISTS);
	CHECK(kr_code_from_errno(EINVAL) == KR_INVALID_ARGUMENT);
	CHECK(kr_code_from_errno(ETIMEDOUT) == KR_DEADLINE_EXCEEDED);
	CHECK(kr_code_from_errno(EPIPE) == KR_UNAVAILABLE);
	CHECK(kr_code_from_errno(ECONNRESET) == KR_UNAVAILABLE);
	CHECK(kr_code_from_errno(ENOMEM) == KR_RESOURCE_EXHAUSTED);
	CHECK(kr_code_from_errno(ENOSYS) == KR_UNIMPLEMENTED);
	CHECK(kr_code_from_errno(0) == KR_UNKNOWN);
	CHECK(kr_code_from_errno(EXDEV) == KR_UNKNOWN);
	CHECK_STREQ(kr_code_name(KR_UNIMPLEMENTED), "not implemented");
	CHECK_STREQ(kr_code_name(KR_NOT_FOUND), "not found");
	CHECK_STREQ(kr_code_name(-1), "unknown");
	CHECK_STREQ(kr_code_name(99), "unknown");
}

int main(void)
{
	KR_TEST(test_hdr_examples);
	KR_TEST(test_request_example);
	KR_TEST(test_response_examples);
	KR_TEST(test_write_frame_examples);
	KR_TEST(test_varints);
	KR_TEST(test_fixed_and_tags);
	KR_TEST(test_bytes_bounds);
	KR_TEST(test_groups);
	KR_TEST(test_request_prefixes);
	KR_TEST(test_request_bad);
	KR_TEST(test_request_unknown_fields);
	KR_TEST(test_empty_messages);
	KR_TEST(test_status_absent_vs_zero);
	KR_TEST(test_negative_code);
	KR_TEST(test_timeout_64bit);
	KR_TEST(test_encode_limits);
	KR_TEST(test_read_frame);
	KR_TEST(test_read_frame_wake);
	KR_TEST(test_err_wrap_chain);
	KR_TEST(test_err_truncation);
	KR_TEST(test_err_codes);
	return kr_test_done();
}
