/* libFuzzer target for the ttrpc envelope: arbitrary bytes go through the
 * header decoder, the Request and Response decoders and the pbwire field
 * walker.  Besides memory safety (ASan/UBSan) it checks properties:
 * decoded pointers stay inside the input, and whatever decodes re-encodes
 * to something that decodes to the same values.
 *
 *   clang -D_GNU_SOURCE -Iinclude -std=gnu11 -g -O1 \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_ttrpc.c \
 *     lib/[a-z]*.c -pthread -o /tmp/fuzz_ttrpc
 *   mkdir /tmp/corpus && cp tests/fuzz/corpus/ttrpc/[a-z]* /tmp/corpus
 *   /tmp/fuzz_ttrpc -max_total_time=60 /tmp/corpus
 * (libFuzzer adds what it finds to the first corpus directory: keep the
 * seeds in the tree small and let it grow a copy.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kr/ttrpc.h"
#include "../../lib/pbwire.h"

#define ASSERT(c)                        \
	do {                             \
		if (!(c))                \
			__builtin_trap(); \
	} while (0)

static int inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *b = p;

	if (n == 0)
		return 1;	/* may point at the decoder's empty string */
	return b >= buf && n <= len && b - buf <= (ptrdiff_t)(len - n);
}

/* A NUL-terminated copy, or NULL when the string holds a NUL (the encoders
 * take C strings, so such a value cannot round-trip). */
static char *cstr(const char *s, size_t n)
{
	char *c;

	if (n && memchr(s, '\0', n))
		return NULL;
	c = malloc(n + 1);
	ASSERT(c);
	if (n)
		memcpy(c, s, n);
	c[n] = '\0';
	return c;
}

static void fuzz_header(const uint8_t *data, size_t size)
{
	struct ttrpc_hdr h;
	uint8_t out[TTRPC_HDR_LEN];

	if (size < TTRPC_HDR_LEN)
		return;
	ttrpc_hdr_decode(data, &h);
	ttrpc_hdr_encode(out, &h);
	ASSERT(memcmp(out, data, TTRPC_HDR_LEN) == 0);
}

static void fuzz_request(const uint8_t *data, size_t size)
{
	struct ttrpc_request req, again;
	struct kr_err err;
	char *svc, *method;
	uint8_t *buf;
	size_t len;

	if (ttrpc_request_decode(data, size, &req, &err) < 0) {
		ASSERT(err.code == KR_INVALID_ARGUMENT);
		return;
	}
	ASSERT(inside(req.service, req.service_len, data, size));
	ASSERT(inside(req.method, req.method_len, data, size));
	ASSERT(inside(req.payload, req.payload_len, data, size));
	svc = cstr(req.service, req.service_len);
	method = cstr(req.method, req.method_len);
	if (svc && method &&
	    ttrpc_request_encode(svc, method, req.payload, req.payload_len,
				 req.timeout_nano, &buf, &len, &err) == 0) {
		ASSERT(len <= size);	/* canonical form is never longer */
		ASSERT(ttrpc_request_decode(buf, len, &again, &err) == 0);
		ASSERT(again.service_len == req.service_len &&
		       !memcmp(again.service, svc, req.service_len));
		ASSERT(again.method_len == req.method_len &&
		       !memcmp(again.method, method, req.method_len));
		ASSERT(again.payload_len == req.payload_len &&
		       (!req.payload_len ||
			!memcmp(again.payload, req.payload, req.payload_len)));
		ASSERT(again.timeout_nano == req.timeout_nano);
		free(buf);
	}
	free(svc);
	free(method);
}

static void fuzz_response(const uint8_t *data, size_t size)
{
	struct ttrpc_response r, again;
	struct kr_err err;
	char *msg;
	uint8_t *buf;
	size_t len;

	if (ttrpc_response_decode(data, size, &r, &err) < 0) {
		ASSERT(err.code == KR_INVALID_ARGUMENT);
		return;
	}
	ASSERT(inside(r.message, r.message_len, data, size));
	ASSERT(inside(r.payload, r.payload_len, data, size));
	msg = cstr(r.message, r.message_len);
	if (msg && ttrpc_response_encode(r.code, msg, r.payload, r.payload_len,
					 &buf, &len, &err) == 0) {
		ASSERT(ttrpc_response_decode(buf, len, &again, &err) == 0);
		ASSERT(again.code == r.code);
		if (r.code) {
			ASSERT(again.payload_len == 0);
			ASSERT(again.message_len == r.message_len &&
			       !memcmp(again.message, msg, r.message_len));
		} else {
			ASSERT(again.payload_len == r.payload_len &&
			       (!r.payload_len ||
				!memcmp(again.payload, r.payload,
					r.payload_len)));
		}
		free(buf);
	}
	free(msg);
}

/* Walk every field; each step consumes input, so this ends. */
static void fuzz_fields(const uint8_t *data, size_t size)
{
	struct pb_reader r;

	pb_reader_init(&r, data, size);
	while (!pb_reader_eof(&r)) {
		const uint8_t *before = r.p;
		uint32_t field;
		unsigned wire;

		if (pb_read_tag(&r, &field, &wire) < 0 ||
		    pb_skip(&r, field, wire) < 0)
			break;
		ASSERT(r.p > before && r.p <= r.end);
		ASSERT(field >= 1 && field <= PB_FIELD_MAX);
	}
	ASSERT(r.p <= r.end);
}

static void fuzz_varint(const uint8_t *data, size_t size)
{
	uint8_t out[PB_VARINT_MAX];
	struct pb_writer w;
	struct pb_reader r;
	uint64_t v;

	pb_reader_init(&r, data, size);
	if (pb_read_varint(&r, &v) < 0)
		return;
	pb_writer_init(&w, out, sizeof(out));
	pb_write_varint(&w, v);
	ASSERT(!w.overflow);
	ASSERT((size_t)(w.p - out) == pb_varint_len(v));
	ASSERT((size_t)(w.p - out) <= (size_t)(r.p - data));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_header(data, size);
	fuzz_request(data, size);
	fuzz_response(data, size);
	fuzz_fields(data, size);
	fuzz_varint(data, size);
	/* The input as a whole frame: header, then the data as either type. */
	if (size >= TTRPC_HDR_LEN) {
		fuzz_request(data + TTRPC_HDR_LEN, size - TTRPC_HDR_LEN);
		fuzz_response(data + TTRPC_HDR_LEN, size - TTRPC_HDR_LEN);
	}
	return 0;
}
