/* A small vhost-user front-end: the VMM's side of the Unix socket to a
 * vhost-user back-end such as virtiofsd (../shared/specs/microvm.md
 * section 7, QEMU docs/interop/vhost-user.rst).
 *
 * The back-end is a separate process that may die or misbehave at any time,
 * so every exchange is bounded: each request (send + reply) has a deadline
 * of timeout_ms, a reply must carry exactly the request id, the reply flag,
 * version 1 and the payload size the request expects (checked before a
 * byte of payload is read), and replies may not carry file descriptors.
 * Any such failure, a timeout or a lost connection leaves the byte stream in
 * an unknown state: the connection is then "broken" and every later call
 * fails at once with the original reason.  Sends use MSG_NOSIGNAL, so a dead
 * back-end is an EPIPE error, never a SIGPIPE.
 *
 * Not thread-safe: one request at a time per connection (the device's lock
 * serialises them).  Blocking: a call waits up to timeout_ms.
 *
 * Typical session (what virtio_fs.c does):
 *
 *	vu = vu_connect(path, 5000, err);
 *	vu_handshake(vu, VU_PROTO_WANTED, err);	 // features, protocol, owner
 *	... at the guest's DRIVER_OK:
 *	vu_set_features(vu, acked | (vu_features(vu) & VHOST_USER_F_PROTOCOL_FEATURES_MASK), err);
 *	vu_set_mem_table(vu, regions, n, err);
 *	vu_setup_vring(vu, &ring, err);		// per ready queue
 *	... at the guest's reset:
 *	vu_stop_vring(vu, idx, &base, err);
 */
#ifndef KR_VMM_VHOST_USER_H
#define KR_VMM_VHOST_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "kr/error.h"
#include "guest_mem.h"

/* Request ids (front-end to back-end). */
enum vu_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
};

/* Header flags. */
#define VHOST_USER_VERSION		1u
#define VHOST_USER_VERSION_MASK		3u
#define VHOST_USER_FLAG_REPLY		(1u << 2)
#define VHOST_USER_FLAG_NEED_REPLY	(1u << 3)
#define VHOST_USER_HDR_SIZE		12u
/* Largest payload this front-end accepts in a reply; every reply it
 * expects is far smaller (8 bytes), so this only shapes the error. */
#define VHOST_USER_MAX_PAYLOAD		4096u
/* SET_VRING_KICK/CALL payload: bits 0-7 ring index, bit 8 = no fd. */
#define VHOST_USER_VRING_NOFD		(1ull << 8)

/* Virtio-level feature bits that only mean something to vhost-user. */
#define VHOST_F_LOG_ALL				26
#define VHOST_USER_F_PROTOCOL_FEATURES		30
#define VHOST_USER_F_PROTOCOL_FEATURES_MASK	(1ull << VHOST_USER_F_PROTOCOL_FEATURES)

/* Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
#define VU_PROTO_F_MQ			0
#define VU_PROTO_F_REPLY_ACK		3
#define VU_PROTO_F_CONFIG		9
/* What this front-end implements: REPLY_ACK (every SET gets a status, so a
 * back-end failure surfaces at the message that caused it) and MQ (to ask
 * GET_QUEUE_NUM).  Not CONFIG: the VMM serves config space itself. */
#define VU_PROTO_WANTED	((1ull << VU_PROTO_F_MQ) | (1ull << VU_PROTO_F_REPLY_ACK))

#define VU_MAX_REGIONS 8		/* SET_MEM_TABLE limit (one fd each) */
#define VU_DEFAULT_TIMEOUT_MS 5000

struct vhost_user;

/* One guest memory region as the back-end must map it: it mmap()s fd and
 * finds gpa at offset mmap_offset; hva is where the front-end has it (the
 * address space ring addresses are given in). */
struct vu_mem_region {
	uint64_t gpa;
	uint64_t size;
	void *hva;
	int fd;			/* not owned; shared memory (memfd) */
	uint64_t mmap_offset;
};

/* Where each region of a struct guest_mem lives in shared-memory files:
 * region i of gm is file fd[i] from offset[i] on (one memfd for all of
 * RAM: the same fd everywhere, offsets = where each region starts in it).
 * The fds are not owned and must stay open while the device exists. */
struct vu_mem_backing {
	int fd[GM_MAX_REGIONS];
	uint64_t offset[GM_MAX_REGIONS];
};

/* One ring to hand over.  Ring addresses are the FRONT-END's host virtual
 * addresses of the guest's descriptor table, available and used rings
 * (vhost-user translates them through the memory table's hva column).
 * kick_fd: the back-end polls it for the guest's notifications; call_fd:
 * the back-end signals it when it used buffers; -1 sends "no fd". */
struct vu_vring {
	unsigned index;
	unsigned num;		/* ring size, a power of 2 */
	void *desc, *avail, *used;
	uint16_t base;		/* next avail index to process (0 when fresh) */
	int kick_fd;
	int call_fd;
};

/* Connect to the back-end's listening socket.  A missing or refused socket
 * fails at once; only a full accept backlog is retried until timeout_ms.
 * timeout_ms also becomes the per-request timeout (<= 0: the default). */
struct vhost_user *vu_connect(const char *path, int timeout_ms,
			      struct kr_err *err);
/* Take over an already connected stream socket (socketpair, inherited fd);
 * fd is closed by vu_close, also when this fails. */
struct vhost_user *vu_attach(int fd, int timeout_ms, struct kr_err *err);
void vu_close(struct vhost_user *vu);

int vu_fd(const struct vhost_user *vu);
bool vu_broken(const struct vhost_user *vu);
void vu_set_timeout(struct vhost_user *vu, int timeout_ms);
/* Between requests the back-end has nothing to say: readable data or EOF
 * on the socket means it misbehaved or died.  For an event loop watching
 * the socket: 0 = nothing wrong (no data, or a spurious wake-up), -1 = the
 * connection is lost or broken (now marked broken; err says why). */
int vu_check_alive(struct vhost_user *vu, struct kr_err *err);

/* GET_FEATURES, (if bit 30 offered) GET/SET_PROTOCOL_FEATURES with
 * offered & want_protocol, SET_OWNER.  Afterwards vu_features() is the
 * back-end's offer and vu_protocol_features() the negotiated set. */
int vu_handshake(struct vhost_user *vu, uint64_t want_protocol,
		 struct kr_err *err);
uint64_t vu_features(const struct vhost_user *vu);
uint64_t vu_protocol_features(const struct vhost_user *vu);

/* The individual requests.  SET requests ask for an acknowledgement when
 * REPLY_ACK was negotiated; a non-zero status is an error (the connection
 * stays usable). */
int vu_get_features(struct vhost_user *vu, uint64_t *features,
		    struct kr_err *err);
int vu_set_features(struct vhost_user *vu, uint64_t features,
		    struct kr_err *err);
int vu_get_protocol_features(struct vhost_user *vu, uint64_t *features,
			     struct kr_err *err);
int vu_set_protocol_features(struct vhost_user *vu, uint64_t features,
			     struct kr_err *err);
/* Needs protocol feature MQ. */
int vu_get_queue_num(struct vhost_user *vu, uint64_t *num, struct kr_err *err);
int vu_set_owner(struct vhost_user *vu, struct kr_err *err);
/* 1..VU_MAX_REGIONS regions, each with its fd (sent as SCM_RIGHTS). */
int vu_set_mem_table(struct vhost_user *vu, const struct vu_mem_region *r,
		     unsigned n, struct kr_err *err);
/* Build the table for gm from its backing: out[] gets gm->nr entries. */
int vu_mem_regions(const struct guest_mem *gm, const struct vu_mem_backing *mem,
		   struct vu_mem_region out[VU_MAX_REGIONS], unsigned *n,
		   struct kr_err *err);

/* Start one ring: SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR,
 * SET_VRING_CALL, SET_VRING_KICK (which starts the ring in the back-end:
 * everything it needs is set by then), and SET_VRING_ENABLE(1) when the
 * last SET_FEATURES included VHOST_USER_F_PROTOCOL_FEATURES (rings start
 * disabled then). */
int vu_setup_vring(struct vhost_user *vu, const struct vu_vring *ring,
		   struct kr_err *err);
int vu_enable_vring(struct vhost_user *vu, unsigned index, bool enable,
		    struct kr_err *err);
/* GET_VRING_BASE: the back-end stops the ring, drops its kick and call
 * fds and reports the next avail index it would have processed. */
int vu_stop_vring(struct vhost_user *vu, unsigned index, uint16_t *base,
		  struct kr_err *err);

/* "GET_FEATURES"; "UNKNOWN" for ids this front-end never sends. */
const char *vu_request_name(uint32_t req);

#endif
