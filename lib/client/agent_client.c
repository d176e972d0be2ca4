/* Host-side agent client: see include/kr/agent_client.h. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kr/agent_client.h"
#include "kr/ttrpc.h"
#include "kr/util.h"

#define AGENT_SERVICE "kata_run.agent.v1.Agent"

struct agent_client {
	struct ttrpc_client *rpc;
};

struct agent_client *agent_client_from_fd(int fd, struct kr_err *err)
{
	struct agent_client *c = kr_xcalloc(1, sizeof(*c));

	c->rpc = ttrpc_client_new(fd, err);
	if (!c->rpc) {
		free(c);
		return NULL;
	}
	return c;
}

/* The hybrid-vsock handshake on a connected socket: "CONNECT <port>\n",
 * answered "OK <host port>\n" once the guest accepted.  The VMM closes
 * the socket when nothing listens on the port (yet). */
static int hvsock_handshake(int fd, unsigned port, int timeout_ms, struct kr_err *err)
{
	char line[64];
	size_t n = 0;
	uint64_t deadline = kr_now_ms() + (uint64_t)timeout_ms;

	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (kr_write_full(fd, line, strlen(line)) < 0)
		return kr_err_sys(err, "hybrid vsock: send CONNECT %u", port);
	/* One byte at a time: what follows the line is the agent's stream. */
	while (n < sizeof(line) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(deadline - kr_now_ms());
		ssize_t r;
		int pr = left > 0 ? poll(&p, 1, (int)left) : 0;

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return kr_err_set(err, KR_DEADLINE_EXCEEDED,
					  "hybrid vsock: no answer to CONNECT %u", port);
		r = read(fd, line + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return kr_err_set(err, KR_UNAVAILABLE,
					  "hybrid vsock: nothing listens on guest port %u (yet)", port);
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	if (strncmp(line, "OK ", 3) != 0)
		return kr_err_set(err, KR_UNAVAILABLE, "hybrid vsock: unexpected answer \"%.32s\"", line);
	return 0;
}

/* "hvsock:PATH:PORT" -> a connected, handshaken fd. */
static int hvsock_connect(const char *addr, int timeout_ms, struct kr_err *err)
{
	const char *colon = strrchr(addr, ':');
	char path[108];
	unsigned long port;
	char *end;
	int fd;

	if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(path))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "agent address hvsock:%s: expected PATH:PORT", addr);
	port = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port > UINT32_MAX)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "agent address hvsock:%s: bad port", addr);
	memcpy(path, addr, (size_t)(colon - addr));
	path[colon - addr] = 0;
	fd = kr_unix_connect(path, err);
	if (fd < 0)
		return -1;
	if (hvsock_handshake(fd, (unsigned)port, timeout_ms, err) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct agent_client *agent_client_connect(const char *addr,
					  int connect_timeout_ms,
					  struct kr_err *err)
{
	const char *path = strncmp(addr, "unix:", 5) == 0 ? addr + 5 : addr;
	uint64_t deadline = kr_now_ms() + (uint64_t)connect_timeout_ms;
	int fd;

	bool hvsock = strncmp(addr, "hvsock:", 7) == 0;

	for (;;) {
		fd = hvsock ? hvsock_connect(addr + 7, connect_timeout_ms > 1000 ? 1000 : connect_timeout_ms, err)
			    : kr_unix_connect(path, err);
		if (fd >= 0)
			return agent_client_from_fd(fd, err);
		if (kr_now_ms() >= deadline)
			return NULL;
		usleep(10 * 1000);
	}
}

void agent_client_free(struct agent_client *c)
{
	if (!c)
		return;
	ttrpc_client_free(c->rpc);
	free(c);
}

int agent_call(struct agent_client *c, const char *method,
	       const ProtobufCMessage *req,
	       const ProtobufCMessageDescriptor *resp_desc,
	       ProtobufCMessage **resp, int timeout_ms, struct kr_err *err)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	kr_cleanup_free uint8_t *buf = malloc(len ? len : 1);
	kr_cleanup_free uint8_t *out = NULL;
	size_t out_len = 0;

	if (!buf)
		return kr_err_errno(err, ENOMEM, "%s", method);
	protobuf_c_message_pack(req, buf);
	if (ttrpc_client_call(c->rpc, AGENT_SERVICE, method, buf, len, &out,
			      &out_len, timeout_ms > 0 ? timeout_ms : AGENT_CALL_TIMEOUT_MS,
			      err) < 0)
		return -1;
	*resp = protobuf_c_message_unpack(resp_desc, NULL, out_len, out);
	if (!*resp)
		return kr_err_set(err, KR_INTERNAL, "%s: malformed reply from the agent", method);
	return 0;
}

/* Call and discard the reply. */
static int call_simple(struct agent_client *c, const char *method,
		       const ProtobufCMessage *req,
		       const ProtobufCMessageDescriptor *resp_desc,
		       int timeout_ms, struct kr_err *err)
{
	ProtobufCMessage *resp = NULL;

	if (agent_call(c, method, req, resp_desc, &resp, timeout_ms, err) < 0)
		return -1;
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

int agent_create_container(struct agent_client *c, const char *id,
			   const char *spec_json, size_t spec_len,
			   const char *rootfs, bool overlay, uint32_t *pid,
			   struct kr_err *err)
{
	KataRun__Agent__V1__CreateContainerRequest req =
		KATA_RUN__AGENT__V1__CREATE_CONTAINER_REQUEST__INIT;
	KataRun__Agent__V1__CreateContainerResponse *resp = NULL;

	req.container_id = (char *)id;
	req.oci_spec_json.data = (uint8_t *)spec_json;
	req.oci_spec_json.len = spec_len;
	req.rootfs_path = (char *)rootfs;
	req.rootfs_overlay = overlay;
	if (agent_call(c, "CreateContainer", &req.base,
		       &kata_run__agent__v1__create_container_response__descriptor,
		       (ProtobufCMessage **)&resp, 0, err) < 0)
		return -1;
	if (pid)
		*pid = resp->pid;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

int agent_container_op(struct agent_client *c, const char *method,
		       const char *id, struct kr_err *err)
{
	KataRun__Agent__V1__ContainerRequest req =
		KATA_RUN__AGENT__V1__CONTAINER_REQUEST__INIT;

	req.container_id = (char *)id;
	return call_simple(c, method, &req.base,
			   &kata_run__agent__v1__empty__descriptor, 0, err);
}

int agent_remove_container(struct agent_client *c, const char *id,
			   uint32_t timeout_ms, struct kr_err *err)
{
	KataRun__Agent__V1__RemoveContainerRequest req =
		KATA_RUN__AGENT__V1__REMOVE_CONTAINER_REQUEST__INIT;

	req.container_id = (char *)id;
	req.timeout_ms = timeout_ms;
	return call_simple(c, "RemoveContainer", &req.base,
			   &kata_run__agent__v1__empty__descriptor,
			   (int)timeout_ms + AGENT_CALL_TIMEOUT_MS, err);
}

int agent_signal(struct agent_client *c, const char *id, const char *exec_id,
		 int sig, bool all, struct kr_err *err)
{
	KataRun__Agent__V1__SignalProcessRequest req =
		KATA_RUN__AGENT__V1__SIGNAL_PROCESS_REQUEST__INIT;

	req.container_id = (char *)id;
	req.exec_id = (char *)(exec_id ? exec_id : "");
	req.signal = (uint32_t)sig;
	req.all = all;
	return call_simple(c, "SignalProcess", &req.base,
			   &kata_run__agent__v1__empty__descriptor, 0, err);
}

int agent_wait(struct agent_client *c, const char *id, const char *exec_id,
	       int *status, bool *oom_killed, struct kr_err *err)
{
	KataRun__Agent__V1__ProcessRequest req =
		KATA_RUN__AGENT__V1__PROCESS_REQUEST__INIT;
	KataRun__Agent__V1__WaitProcessResponse *resp = NULL;

	req.container_id = (char *)id;
	req.exec_id = (char *)(exec_id ? exec_id : "");
	for (;;) {
		/* The agent answers DEADLINE_EXCEEDED after its long poll. */
		if (agent_call(c, "WaitProcess", &req.base,
			       &kata_run__agent__v1__wait_process_response__descriptor,
			       (ProtobufCMessage **)&resp, AGENT_CALL_TIMEOUT_MS, err) == 0)
			break;
		if (err && err->code == KR_DEADLINE_EXCEEDED &&
		    strstr(err->msg, "still running"))
			continue;
		return -1;
	}
	if (status)
		*status = resp->exit_status;
	if (oom_killed)
		*oom_killed = resp->oom_killed;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

int agent_exec(struct agent_client *c, const char *id, const char *exec_id,
	       const char *process_json, size_t len, uint32_t *pid,
	       struct kr_err *err)
{
	KataRun__Agent__V1__ExecProcessRequest req =
		KATA_RUN__AGENT__V1__EXEC_PROCESS_REQUEST__INIT;
	KataRun__Agent__V1__ExecProcessResponse *resp = NULL;

	req.container_id = (char *)id;
	req.exec_id = (char *)exec_id;
	req.process_json.data = (uint8_t *)process_json;
	req.process_json.len = len;
	if (agent_call(c, "ExecProcess", &req.base,
		       &kata_run__agent__v1__exec_process_response__descriptor,
		       (ProtobufCMessage **)&resp, 0, err) < 0)
		return -1;
	if (pid)
		*pid = resp->pid;
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return 0;
}

int agent_remove_process(struct agent_client *c, const char *id,
			 const char *exec_id, struct kr_err *err)
{
	KataRun__Agent__V1__ProcessRequest req =
		KATA_RUN__AGENT__V1__PROCESS_REQUEST__INIT;

	req.container_id = (char *)id;
	req.exec_id = (char *)exec_id;
	return call_simple(c, "RemoveProcess", &req.base,
			   &kata_run__agent__v1__empty__descriptor, 0, err);
}

int agent_resize(struct agent_client *c, const char *id, const char *exec_id,
		 unsigned rows, unsigned cols, struct kr_err *err)
{
	KataRun__Agent__V1__TtyWinResizeRequest req =
		KATA_RUN__AGENT__V1__TTY_WIN_RESIZE_REQUEST__INIT;

	req.container_id = (char *)id;
	req.exec_id = (char *)(exec_id ? exec_id : "");
	req.rows = rows;
	req.cols = cols;
	return call_simple(c, "TtyWinResize", &req.base,
			   &kata_run__agent__v1__empty__descriptor, 0, err);
}
