/* virtio-vsock packets, the pure part (no sockets, no device state): the
 * 44-byte header, the checks a packet from the guest's tx queue must pass,
 * credit arithmetic, and the "CONNECT <port>\n" line of Firecracker's
 * hybrid scheme.  ../shared/specs/microvm.md section 5.
 *
 * Everything the guest put in a tx chain is hostile.  vsock_tx_parse()
 * reads the chain as a byte stream (vq_chain_read), whatever its
 * descriptor split (spec section 5.6: the header may share a descriptor
 * with the payload, or be cut anywhere), copies the header once and
 * validates only the copy. */
#ifndef KR_VMM_VSOCK_PACKET_H
#define KR_VMM_VSOCK_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kr/error.h"
#include "virtqueue.h"

#define VSOCK_HDR_SIZE 44u
#define VSOCK_HOST_CID 2u

#define VSOCK_TYPE_STREAM 1u
#define VSOCK_TYPE_SEQPACKET 2u

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
#define VSOCK_OP_MAX VSOCK_OP_CREDIT_REQUEST

/* SHUTDOWN flags (UAPI values, not bit numbers). */
#define VSOCK_SHUTDOWN_RCV 1u	/* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2u	/* the sender will send no more */
#define VSOCK_SHUTDOWN_BOTH 3u

/* Largest payload of one packet, either way (Firecracker's limit; Linux
 * guests send at most 64 KiB per packet too). */
#define VSOCK_MAX_PAYLOAD (64u << 10)

/* "CONNECT <port>\n": at most this many bytes, newline included. */
#define VSOCK_CONNECT_LINE_MAX 32u

/* struct virtio_vsock_hdr in host byte order, unpacked. */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

/* Wire format: packed little-endian at the offsets of spec 5.2. */
void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_SIZE], struct vsock_hdr *h);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE]);

enum vsock_verdict {
	VSOCK_ACCEPT,		/* well-formed: act on it */
	VSOCK_REPLY_RST,	/* malformed but addressed: answer with an RST */
	VSOCK_DROP,		/* drop silently (no header, spoofed source,
				 * or an RST: an RST is never answered) */
};

/* Read and check the packet in the readable part of tx chain c, sent by
 * the guest with CID guest_cid.  h gets the header (as far as present) and
 * why, for anything but VSOCK_ACCEPT, says what was wrong.  Accepted:
 * at least 44 bytes; src_cid == guest_cid; dst_cid == VSOCK_HOST_CID;
 * type STREAM; op in 1..7; len <= VSOCK_MAX_PAYLOAD and len <= the bytes
 * after the header in the chain.  The payload is then at stream offset
 * VSOCK_HDR_SIZE (vq_chain_read). */
enum vsock_verdict vsock_tx_parse(const struct vq_chain *c, uint64_t guest_cid,
				  struct vsock_hdr *h, struct kr_err *why);

/* The RST answering h: source and destination swapped, type STREAM, no
 * payload, no credit. */
void vsock_rst_for(const struct vsock_hdr *h, struct vsock_hdr *rst);

/* Free space at a peer that advertised buf_alloc and fwd_cnt, after we
 * sent tx_cnt bytes in all: buf_alloc - (tx_cnt - fwd_cnt) in wrapping u32
 * arithmetic, clamped to 0 when the peer claims to hold more than
 * buf_alloc (or to have consumed more than we sent: the difference wraps
 * to a huge number, and a lying peer gets no credit rather than 4 GiB). */
uint32_t vsock_credit_free(uint32_t buf_alloc, uint32_t fwd_cnt,
			   uint32_t tx_cnt);

/* Parse the host client's first line, exactly len bytes, newline
 * included: "CONNECT <port>\n", the keyword case-insensitive, one space,
 * 1-10 decimal digits with a value <= UINT32_MAX, nothing else (no sign,
 * no "\r", no trailing blanks).  0 and *port set, or -1 with why. */
int vsock_connect_line_parse(const char *line, size_t len, uint32_t *port,
			     struct kr_err *why);

const char *vsock_op_name(uint16_t op);

#endif
