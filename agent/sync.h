/* The launch channel between the agent and a container process being set
 * up (see launch.h).  SOCK_SEQPACKET keeps message boundaries, so every
 * message is one fixed-size struct. */
#ifndef KR_AGENT_SYNC_H
#define KR_AGENT_SYNC_H

#include <stdint.h>

#include "kr/error.h"

enum sync_type {
	SYNC_USERNS_READY = 1,	/* child -> agent: write my uid/gid maps */
	SYNC_USERNS_MAPPED,	/* agent -> child */
	SYNC_PID,		/* child -> agent: the process that will exec */
	SYNC_CGROUP_DONE,	/* agent -> child: you are in the cgroup */
	SYNC_PTY,		/* child -> agent: pty master (SCM_RIGHTS) */
	SYNC_READY,		/* child -> agent: set up, waiting for START */
	SYNC_START,		/* agent -> child: exec now */
	SYNC_ERROR,		/* child -> agent: errnum + message, then exit */
};

struct sync_msg {
	uint32_t type;
	int32_t pid;
	int32_t errnum;
	char msg[KR_ERR_MSG_MAX];
};

int sync_send(int fd, uint32_t type, int32_t pid);
int sync_send_fd(int fd, uint32_t type, int passfd);
/* Child side: report err and exit(status).  Never returns. */
void sync_fail(int fd, const struct kr_err *err, int status)
	__attribute__((noreturn));
/* Receive one message, waiting until deadline_ms (kr_now_ms clock; 0 =
 * forever).  Returns 1 for a message, 0 on EOF, -1 on error/timeout (err
 * set, DEADLINE_EXCEEDED on timeout).  *passfd gets a passed fd or -1. */
int sync_recv(int fd, struct sync_msg *m, int *passfd, uint64_t deadline_ms,
	      struct kr_err *err);

#endif
