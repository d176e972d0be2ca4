/* Integration tests of the agent API on the host: a real kata-agent on a
 * Unix socket, driven through the host client library.  Covers bad input
 * (every bad request gets a clear error and leaves nothing behind), error
 * messages that name the cause, concurrency, stdio and clean shutdown.
 * Container behaviour (namespaces, limits, seccomp...) is covered by the
 * differential shell tests (tests/integration/test_containers.sh). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/agent_harness.h"
#include "../lib/kr_test.h"
#include "kr/agent_client.h"
#include "kr/ttrpc.h"
#include "kr/util.h"

static struct harness H;
static struct agent_client *C;

static char *bundle(const char *name, const char *args, const char *proc_extra,
		    const char *linux_extra, const char *top_extra)
{
	static char dir[512];

	snprintf(dir, sizeof(dir), "%s/%s", H.dir, name);
	if (harness_bundle(dir, args, false, proc_extra, linux_extra, top_extra) < 0)
		return NULL;
	return dir;
}

static char *read_config(const char *dir, size_t *len)
{
	char path[600], *json = NULL;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	kr_read_file(path, 1 << 20, &json, len, NULL);
	return json;
}

static int create(const char *id, const char *dir, struct kr_err *err)
{
	char rootfs[600];
	size_t len = 0;
	char *json = read_config(dir, &len);
	int rc;

	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
	rc = agent_create_container(C, id, json, len, rootfs, true, NULL, err);
	free(json);
	return rc;
}

static unsigned container_count(void)
{
	KataRun__Agent__V1__Empty e = KATA_RUN__AGENT__V1__EMPTY__INIT;
	KataRun__Agent__V1__GuestDetailsResponse *r = NULL;
	struct kr_err err = { 0 };
	unsigned n;

	if (agent_call(C, "GetGuestDetails", &e.base,
		       &kata_run__agent__v1__guest_details_response__descriptor,
		       (ProtobufCMessage **)&r, 5000, &err) < 0)
		return 9999;
	n = r->container_count;
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return n;
}

/* Nothing of any container is left: table, state dirs, cgroups. */
static void check_no_leftovers(void)
{
	char path[400];
	struct stat st;

	CHECK(container_count() == 0);
	snprintf(path, sizeof(path), "%s/containers", H.state);
	/* The state dir lives in the agent's private mount ns: look there. */
	char proc_path[512];
	snprintf(proc_path, sizeof(proc_path), "/proc/%d/root%s", (int)H.agent_pid, path);
	if (stat(proc_path, &st) == 0) {
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s)\"", proc_path);
		CHECKF(system(cmd) == 0, "container state dirs left in %s", path);
	}
	/* Only the prefix dir may remain while the agent runs. */
	char cg[128];
	snprintf(cg, sizeof(cg), "%s/*", H.prefix);
	CHECK(harness_count_cgroups(cg) == 0);
	CHECK(harness_count_mounts(H.dir) == 0);
}

static void test_details_and_check(void)
{
	KataRun__Agent__V1__Empty e = KATA_RUN__AGENT__V1__EMPTY__INIT;
	KataRun__Agent__V1__GuestDetailsResponse *r = NULL;
	struct kr_err err = { 0 };

	REQUIRE(agent_call(C, "GetGuestDetails", &e.base,
			   &kata_run__agent__v1__guest_details_response__descriptor,
			   (ProtobufCMessage **)&r, 5000, &err) == 0);
	CHECK(strlen(r->agent_version) > 0);
	CHECK(strlen(r->kernel_release) > 0);
	CHECK(!r->is_pid1);
	CHECK(r->online_cpus >= 1);
	CHECK(r->mem_total_bytes > 0);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Raw ttrpc calls for requests the typed client cannot make. */
static int raw_call(const char *method, const uint8_t *payload, size_t len,
		    struct kr_err *err)
{
	struct kr_err e2 = { 0 };
	int fd = kr_unix_connect(H.sock, &e2);
	struct ttrpc_client *t;
	uint8_t *resp = NULL;
	size_t resp_len = 0;
	int rc;

	if (fd < 0)
		return kr_err_set(err, KR_UNAVAILABLE, "connect");
	t = ttrpc_client_new(fd, err);
	if (!t)
		return -1;
	rc = ttrpc_client_call(t, "kata_run.agent.v1.Agent", method, payload, len,
			       &resp, &resp_len, 5000, err);
	free(resp);
	ttrpc_client_free(t);
	return rc;
}

static void test_unknown_rpc(void)
{
	struct kr_err err = { 0 };

	CHECK(raw_call("NoSuchMethod", NULL, 0, &err) < 0);
	CHECK(err.code == KR_UNIMPLEMENTED);
	CHECK_CONTAINS(err.msg, "NoSuchMethod");
}

static void test_malformed_protobuf(void)
{
	/* Field 1, length-delimited, claims 100 bytes but has 2. */
	static const uint8_t bad[] = { 0x0a, 0x64, 'a', 'b' };
	struct kr_err err = { 0 };

	CHECK(raw_call("StartContainer", bad, sizeof(bad), &err) < 0);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	CHECK(container_count() == 0);
}

static void test_oversized_and_truncated_frames(void)
{
	struct kr_err err = { 0 };
	uint8_t hdr[TTRPC_HDR_LEN];
	struct ttrpc_hdr h = { .length = TTRPC_MAX_DATA + 1, .stream_id = 1, .type = TTRPC_REQUEST };
	int fd = kr_unix_connect(H.sock, &err);

	REQUIRE(fd >= 0);
	/* Header of an oversized frame, then half a header, then hang up. */
	ttrpc_hdr_encode(hdr, &h);
	CHECK(write(fd, hdr, sizeof(hdr)) == (ssize_t)sizeof(hdr));
	CHECK(write(fd, hdr, 5) == 5);
	close(fd);
	/* The agent is still up and serving. */
	CHECK(agent_container_op(C, "Check", "x", &err) == 0 || err.code != KR_UNAVAILABLE);
	CHECK(container_count() == 0);
}

static void test_bad_json(void)
{
	struct kr_err err = { 0 };
	char rootfs[600];
	const char *dir = bundle("badjson", "[\"true\"]", NULL, NULL, NULL);
	static const char json[] = "{\"ociVersion\": \"1.0.2\", \"process\": {";

	REQUIRE(dir);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", dir);
	CHECK(agent_create_container(C, "badjson", json, sizeof(json) - 1, rootfs, true, NULL, &err) < 0);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	CHECK_CONTAINS(err.msg, "JSON");
	check_no_leftovers();
}

static void test_missing_rootfs(void)
{
	struct kr_err err = { 0 };
	const char *dir = bundle("norootfs", "[\"true\"]", NULL, NULL, NULL);
	size_t len = 0;
	char *json = read_config(dir, &len);

	REQUIRE(json);
	CHECK(agent_create_container(C, "norootfs", json, len, "/nonexistent/rootfs", true, NULL, &err) < 0);
	CHECK(err.code == KR_NOT_FOUND);
	CHECK_CONTAINS(err.msg, "/nonexistent/rootfs");
	free(json);
	check_no_leftovers();
}

static void test_bad_ids(void)
{
	struct kr_err err = { 0 };
	const char *dir = bundle("ids", "[\"sleep\",\"30\"]", NULL, NULL, NULL);

	REQUIRE(dir);
	CHECK(create("../evil", dir, &err) < 0);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	CHECK(agent_container_op(C, "StartContainer", "nope", &err) < 0);
	CHECK(err.code == KR_NOT_FOUND);
	CHECK_CONTAINS(err.msg, "nope");
	CHECK(agent_wait(C, "nope", "", NULL, NULL, &err) < 0);
	CHECK(err.code == KR_NOT_FOUND);
	CHECK(agent_remove_container(C, "nope", 0, &err) < 0);
	CHECK(err.code == KR_NOT_FOUND);
	/* Duplicate id. */
	REQUIRE(create("dup", dir, &err) == 0);
	CHECK(create("dup", dir, &err) < 0);
	CHECK(err.code == KR_ALREADY_EXISTS);
	CHECK(container_count() == 1);
	/* Exec into a created (not started) container is refused. */
	static const char proc[] = "{\"args\":[\"true\"],\"cwd\":\"/\"}";
	CHECK(agent_exec(C, "dup", "e1", proc, sizeof(proc) - 1, NULL, &err) < 0);
	CHECK(err.code == KR_FAILED_PRECONDITION);
	CHECK(agent_remove_container(C, "dup", 0, &err) == 0);
	check_no_leftovers();
}

static void test_exec_not_found_message(void)
{
	struct kr_err err = { 0 };
	const char *dir = bundle("nope", "[\"/bin/nope\"]", NULL, NULL, NULL);

	REQUIRE(dir);
	CHECK(create("nope", dir, &err) < 0);
	CHECK_CONTAINS(err.msg, "exec /bin/nope: No such file or directory");
	check_no_leftovers();
}

static void test_mount_error_message(void)
{
	struct kr_err err = { 0 };
	const char *dir;

	harness_extra_mounts = ",{\"destination\":\"/data\",\"type\":\"bind\","
			       "\"source\":\"/nonexistent/data\",\"options\":[\"rbind\"]}";
	dir = bundle("mnt", "[\"true\"]", NULL, NULL, NULL);
	harness_extra_mounts = "";
	REQUIRE(dir);
	CHECK(create("mnt", dir, &err) < 0);
	CHECK_CONTAINS(err.msg, "mount /data: No such file or directory");
	check_no_leftovers();
}

struct waiter {
	int status;
	int rc;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	struct kr_err err = { 0 };

	w->rc = agent_wait(C, "conc", "", &w->status, NULL, &err);
	return NULL;
}

static void test_concurrent_calls(void)
{
	struct kr_err err = { 0 };
	struct waiter w = { .rc = -2 };
	pthread_t t;
	const char *dir = bundle("conc", "[\"sleep\",\"2\"]", NULL, NULL, NULL);

	REQUIRE(dir);
	REQUIRE(create("conc", dir, &err) == 0);
	REQUIRE(agent_container_op(C, "StartContainer", "conc", &err) == 0);
	REQUIRE(pthread_create(&t, NULL, wait_thread, &w) == 0);
	usleep(100000);
	/* While Wait blocks on the same connection, other calls answer fast. */
	uint64_t t0 = kr_now_ms();
	for (int i = 0; i < 20; i++)
		CHECK(container_count() == 1);
	CHECK(kr_now_ms() - t0 < 1000);
	CHECK(w.rc == -2);	/* still waiting */
	pthread_join(t, NULL);
	CHECK(w.rc == 0);
	CHECK(w.status == 0);
	CHECK(agent_remove_container(C, "conc", 0, &err) == 0);
	check_no_leftovers();
}

/* Run a bundle through the agent with in_data on stdin; capture stdout
 * (into a file: a pipe would need a concurrent reader). */
static int run_capture(const char *id, const char *dir, const char *in_data,
		       char **out, size_t *out_len, int *status)
{
	struct kr_err err = { 0 };
	char path[600];
	int inp[2], outfd;
	struct agent_stdio *s;

	snprintf(path, sizeof(path), "%s/%s.out", H.dir, id);
	outfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (outfd < 0 || pipe(inp) < 0)
		return -1;
	if (create(id, dir, &err) < 0) {
		printf("# %s\n", err.msg);
		return -1;
	}
	s = agent_stdio_start(C, id, "", inp[0], outfd, -1, false, &err);
	if (!s)
		return -1;
	if (in_data)
		(void)!write(inp[1], in_data, strlen(in_data));
	close(inp[1]);
	if (agent_container_op(C, "StartContainer", id, &err) < 0 ||
	    agent_wait(C, id, "", status, NULL, &err) < 0) {
		printf("# %s\n", err.msg);
		agent_stdio_finish(s, 0);
		return -1;
	}
	agent_stdio_finish(s, 10000);
	close(inp[0]);
	close(outfd);
	if (kr_read_file(path, 64 << 20, out, out_len, &err) < 0)
		return -1;
	return agent_remove_container(C, id, 0, &err);
}

static void test_large_output_intact(void)
{
	/* 4 MiB of output, more than any buffer on the way. */
	const char *dir = bundle("big", "[\"sh\",\"-c\",\"dd if=/dev/zero bs=65536 count=64 2>/dev/null | "
				 "tr '\\\\000' x; echo END\"]", NULL, NULL, NULL);
	char *out = NULL;
	size_t len = 0;
	int status = -1;

	REQUIRE(dir);
	REQUIRE(run_capture("big", dir, NULL, &out, &len, &status) == 0);
	CHECK(status == 0);
	CHECKF(len == 4 * 1024 * 1024 + 4, "got %zu bytes", len);
	CHECK(len > 4 && memcmp(out + len - 4, "END\n", 4) == 0);
	free(out);
	check_no_leftovers();
}

static void test_stdin_piping(void)
{
	const char *dir = bundle("stdin", "[\"sh\",\"-c\",\"wc -c; cat\"]", NULL, NULL, NULL);
	char *out = NULL;
	size_t len = 0;
	int status = -1;

	REQUIRE(dir);
	REQUIRE(run_capture("stdin", dir, "hello stdin\n", &out, &len, &status) == 0);
	CHECK(status == 0);
	CHECK(len >= 3 && strncmp(out, "12\n", 3) == 0);
	free(out);
	check_no_leftovers();
}

static void test_remove_exec_frees_its_id(void)
{
	static const char quick[] = "{\"args\":[\"true\"],\"cwd\":\"/\"}";
	static const char slow[] = "{\"args\":[\"sleep\",\"30\"],\"cwd\":\"/\"}";
	struct kr_err err = { 0 };
	const char *dir = bundle("execrm", "[\"sleep\",\"60\"]", NULL, NULL, NULL);
	int status = -1;

	REQUIRE(dir);
	REQUIRE(create("execrm", dir, &err) == 0);
	REQUIRE(agent_container_op(C, "StartContainer", "execrm", &err) == 0);
	/* The same exec id, again and again: each removal frees it. */
	for (int i = 0; i < 20; i++) {
		REQUIRE(agent_exec(C, "execrm", "probe", quick, sizeof(quick) - 1, NULL, &err) == 0);
		CHECK(agent_wait(C, "execrm", "probe", &status, NULL, &err) == 0 && status == 0);
		CHECK(agent_remove_process(C, "execrm", "probe", &err) == 0);
	}
	/* Gone means gone. */
	CHECK(agent_wait(C, "execrm", "probe", NULL, NULL, &err) < 0);
	CHECK(err.code == KR_NOT_FOUND);
	/* A running exec and the init cannot be removed this way. */
	REQUIRE(agent_exec(C, "execrm", "slow", slow, sizeof(slow) - 1, NULL, &err) == 0);
	CHECK(agent_remove_process(C, "execrm", "slow", &err) < 0);
	CHECK(err.code == KR_FAILED_PRECONDITION);
	CHECK(agent_remove_process(C, "execrm", "", &err) < 0);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	CHECK(agent_remove_container(C, "execrm", 0, &err) == 0);
	check_no_leftovers();
}

static void test_shutdown_leaves_nothing(void)
{
	struct kr_err err = { 0 };
	const char *dir = bundle("left", "[\"sleep\",\"100\"]", NULL, NULL, NULL);

	REQUIRE(dir);
	REQUIRE(create("left", dir, &err) == 0);
	REQUIRE(agent_container_op(C, "StartContainer", "left", &err) == 0);
	/* Destroy the sandbox with a running container in it. */
	agent_client_free(C);
	C = NULL;
	pid_t agent = H.agent_pid;
	harness_stop(&H);
	CHECK(harness_count_children(agent) == 0);
	CHECK(harness_count_cgroups(H.prefix) == 0);
	CHECK(harness_count_mounts("kr-itest") == 0);
}

int main(void)
{
	struct kr_err err = { 0 };

	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root\n0 passed, 0 failed, 1 skipped\n");
		return 0;
	}
	if (harness_start(&H) < 0) {
		printf("Bail out! cannot start the agent\n0 passed, 1 failed, 0 skipped\n");
		return 1;
	}
	C = agent_client_connect(H.sock, 5000, &err);
	if (!C) {
		printf("Bail out! %s\n0 passed, 1 failed, 0 skipped\n", err.msg);
		harness_stop(&H);
		return 1;
	}
	KR_TEST(test_details_and_check);
	KR_TEST(test_unknown_rpc);
	KR_TEST(test_malformed_protobuf);
	KR_TEST(test_oversized_and_truncated_frames);
	KR_TEST(test_bad_json);
	KR_TEST(test_missing_rootfs);
	KR_TEST(test_bad_ids);
	KR_TEST(test_exec_not_found_message);
	KR_TEST(test_mount_error_message);
	KR_TEST(test_concurrent_calls);
	KR_TEST(test_large_output_intact);
	KR_TEST(test_stdin_piping);
	KR_TEST(test_remove_exec_frees_its_id);
	KR_TEST(test_shutdown_leaves_nothing);
	if (C)
		agent_client_free(C);
	harness_stop(&H);
	return kr_test_done();
}
