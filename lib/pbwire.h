/* pbwire: the protobuf wire format, just enough for the ttrpc envelope
 * (ttrpc.Request, ttrpc.Response, google.rpc.Status).  Kept apart from
 * protobuf-c and nanopb so that the framing library has no dependency and
 * the same code runs on the host and in the static agent.
 *
 * Readers work on untrusted bytes: every read is bounds-checked, varints are
 * at most 10 bytes, and a failed read leaves the reader unusable (the caller
 * rejects the whole message).  Writers write into a buffer sized beforehand
 * with the pb_*_len() helpers; running past its end is flagged, not done. */
#ifndef KR_PBWIRE_H
#define KR_PBWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pb_wire_type {
	PB_WT_VARINT = 0,
	PB_WT_I64 = 1,
	PB_WT_LEN = 2,
	PB_WT_SGROUP = 3,	/* deprecated groups: skipped, never produced */
	PB_WT_EGROUP = 4,
	PB_WT_I32 = 5,
};

#define PB_VARINT_MAX 10
#define PB_FIELD_MAX ((1u << 29) - 1)
#define PB_GROUP_DEPTH_MAX 32

/* Reader results: 0, or one of these (all < 0). */
enum pb_error {
	PB_ETRUNC = -1,		/* the field runs past the end of the buffer */
	PB_EVARINT = -2,	/* varint longer than 10 bytes or above 2^64 */
	PB_ETAG = -3,		/* field number 0 or above 2^29-1 */
	PB_EWIRE = -4,		/* wire type 6 or 7, or a stray end-group */
	PB_EGROUP = -5,		/* unbalanced or too deeply nested group */
};

const char *pb_strerror(int rc);

struct pb_reader {
	const uint8_t *p;
	const uint8_t *end;
};

void pb_reader_init(struct pb_reader *r, const uint8_t *buf, size_t len);

static inline bool pb_reader_eof(const struct pb_reader *r)
{
	return r->p >= r->end;
}

int pb_read_varint(struct pb_reader *r, uint64_t *v);
int pb_read_fixed32(struct pb_reader *r, uint32_t *v);
int pb_read_fixed64(struct pb_reader *r, uint64_t *v);
/* A length-delimited value; *data points into the reader's buffer. */
int pb_read_bytes(struct pb_reader *r, const uint8_t **data, size_t *len);
int pb_read_tag(struct pb_reader *r, uint32_t *field, unsigned *wire);
/* Skip the value of a field whose tag was just read (any wire type,
 * including nested groups up to PB_GROUP_DEPTH_MAX). */
int pb_skip(struct pb_reader *r, uint32_t field, unsigned wire);

struct pb_writer {
	uint8_t *p;
	uint8_t *end;
	bool overflow;
};

size_t pb_varint_len(uint64_t v);
size_t pb_field_varint_len(uint32_t field, uint64_t v);
size_t pb_field_bytes_len(uint32_t field, size_t len);

void pb_writer_init(struct pb_writer *w, uint8_t *buf, size_t len);
void pb_write_varint(struct pb_writer *w, uint64_t v);
void pb_write_tag(struct pb_writer *w, uint32_t field, unsigned wire);
void pb_write_field_varint(struct pb_writer *w, uint32_t field, uint64_t v);
/* tag, length, then len bytes of data (data may be NULL when len is 0). */
void pb_write_field_bytes(struct pb_writer *w, uint32_t field,
			  const void *data, size_t len);

#endif
