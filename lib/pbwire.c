/* Minimal protobuf wire reader/writer: see lib/pbwire.h. */
#include <string.h>

#include "pbwire.h"

const char *pb_strerror(int rc)
{
	switch (rc) {
	case 0: return "ok";
	case PB_ETRUNC: return "truncated field";
	case PB_EVARINT: return "malformed varint";
	case PB_ETAG: return "invalid field number";
	case PB_EWIRE: return "invalid wire type";
	case PB_EGROUP: return "unbalanced or too deeply nested group";
	default: return "malformed protobuf";
	}
}

void pb_reader_init(struct pb_reader *r, const uint8_t *buf, size_t len)
{
	/* An empty message may come as NULL; NULL + 0 is still undefined. */
	static const uint8_t empty[1];

	if (!buf) {
		buf = empty;
		len = 0;
	}
	r->p = buf;
	r->end = buf + len;
}

static size_t reader_left(const struct pb_reader *r)
{
	return (size_t)(r->end - r->p);
}

int pb_read_varint(struct pb_reader *r, uint64_t *v)
{
	uint64_t val = 0;

	for (unsigned i = 0; i < PB_VARINT_MAX; i++) {
		uint8_t b;

		if (r->p >= r->end)
			return PB_ETRUNC;
		b = *r->p++;
		/* The 10th byte holds bit 63 only: more would overflow 64 bits. */
		if (i == PB_VARINT_MAX - 1 && b > 1)
			return PB_EVARINT;
		val |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = val;
			return 0;
		}
	}
	return PB_EVARINT;
}

int pb_read_fixed32(struct pb_reader *r, uint32_t *v)
{
	uint32_t val = 0;

	if (reader_left(r) < 4)
		return PB_ETRUNC;
	for (unsigned i = 0; i < 4; i++)
		val |= (uint32_t)r->p[i] << (8 * i);
	r->p += 4;
	*v = val;
	return 0;
}

int pb_read_fixed64(struct pb_reader *r, uint64_t *v)
{
	uint64_t val = 0;

	if (reader_left(r) < 8)
		return PB_ETRUNC;
	for (unsigned i = 0; i < 8; i++)
		val |= (uint64_t)r->p[i] << (8 * i);
	r->p += 8;
	*v = val;
	return 0;
}

int pb_read_bytes(struct pb_reader *r, const uint8_t **data, size_t *len)
{
	uint64_t n;
	int rc = pb_read_varint(r, &n);

	if (rc < 0)
		return rc;
	/* Compare before converting: n may exceed SIZE_MAX on 32-bit. */
	if (n > reader_left(r))
		return PB_ETRUNC;
	*data = r->p;
	*len = (size_t)n;
	r->p += n;
	return 0;
}

int pb_read_tag(struct pb_reader *r, uint32_t *field, unsigned *wire)
{
	uint64_t t;
	int rc = pb_read_varint(r, &t);

	if (rc < 0)
		return rc;
	if (t > UINT32_MAX || (t >> 3) == 0)
		return PB_ETAG;
	if ((t & 7) > PB_WT_I32)
		return PB_EWIRE;
	*field = (uint32_t)(t >> 3);
	*wire = (unsigned)(t & 7);
	return 0;
}

static int skip_scalar(struct pb_reader *r, unsigned wire)
{
	const uint8_t *d;
	uint64_t v64;
	uint32_t v32;
	size_t n;

	switch (wire) {
	case PB_WT_VARINT: return pb_read_varint(r, &v64);
	case PB_WT_I64: return pb_read_fixed64(r, &v64);
	case PB_WT_LEN: return pb_read_bytes(r, &d, &n);
	case PB_WT_I32: return pb_read_fixed32(r, &v32);
	default: return PB_EWIRE;
	}
}

/* Groups nest; keep an explicit stack rather than recursing so that a
 * hostile message cannot grow the C stack.  Each turn consumes at least one
 * byte, so the loop ends with the buffer. */
static int skip_group(struct pb_reader *r, uint32_t field)
{
	uint32_t stack[PB_GROUP_DEPTH_MAX];
	unsigned depth = 0;

	stack[depth++] = field;
	while (depth > 0) {
		uint32_t f;
		unsigned w;
		int rc = pb_read_tag(r, &f, &w);

		if (rc < 0)
			return rc;
		if (w == PB_WT_EGROUP) {
			if (f != stack[depth - 1])
				return PB_EGROUP;
			depth--;
		} else if (w == PB_WT_SGROUP) {
			if (depth == PB_GROUP_DEPTH_MAX)
				return PB_EGROUP;
			stack[depth++] = f;
		} else {
			rc = skip_scalar(r, w);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int pb_skip(struct pb_reader *r, uint32_t field, unsigned wire)
{
	if (wire == PB_WT_SGROUP)
		return skip_group(r, field);
	if (wire == PB_WT_EGROUP)
		return PB_EWIRE;
	return skip_scalar(r, wire);
}

/* ---- writer ------------------------------------------------------------ */

size_t pb_varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t pb_field_varint_len(uint32_t field, uint64_t v)
{
	return pb_varint_len((uint64_t)field << 3) + pb_varint_len(v);
}

size_t pb_field_bytes_len(uint32_t field, size_t len)
{
	return pb_varint_len((uint64_t)field << 3) + pb_varint_len(len) + len;
}

void pb_writer_init(struct pb_writer *w, uint8_t *buf, size_t len)
{
	w->p = buf;
	w->end = buf + len;
	w->overflow = false;
}

static void write_raw(struct pb_writer *w, const void *data, size_t len)
{
	if (w->overflow || len > (size_t)(w->end - w->p)) {
		w->overflow = true;
		return;
	}
	if (len)
		memcpy(w->p, data, len);
	w->p += len;
}

void pb_write_varint(struct pb_writer *w, uint64_t v)
{
	uint8_t buf[PB_VARINT_MAX];
	size_t n = 0;

	while (v >= 0x80) {
		buf[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	buf[n++] = (uint8_t)v;
	write_raw(w, buf, n);
}

void pb_write_tag(struct pb_writer *w, uint32_t field, unsigned wire)
{
	pb_write_varint(w, ((uint64_t)field << 3) | (wire & 7));
}

void pb_write_field_varint(struct pb_writer *w, uint32_t field, uint64_t v)
{
	pb_write_tag(w, field, PB_WT_VARINT);
	pb_write_varint(w, v);
}

void pb_write_field_bytes(struct pb_writer *w, uint32_t field,
			  const void *data, size_t len)
{
	pb_write_tag(w, field, PB_WT_LEN);
	pb_write_varint(w, len);
	write_raw(w, data, len);
}
