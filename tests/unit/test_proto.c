/* Protobuf round trips between the two generated sides of the agent API:
 * protobuf-c (host) and nanopb (agent, with the bounded blob callbacks of
 * agent/rpc.c).  Both are generated from proto/agent.proto; these tests
 * check they agree on the wire and that the agent's bounds hold. */
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "../lib/kr_test.h"
#include "agent.h"
#include "agent.pb-c.h"
#include "rpc.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(*len ? *len : 1);
	protobuf_c_message_pack(m, buf);
	return buf;
}

static void test_create_request_host_to_agent(void)
{
	KataRun__Agent__V1__CreateContainerRequest h =
		KATA_RUN__AGENT__V1__CREATE_CONTAINER_REQUEST__INIT;
	kata_run_agent_v1_CreateContainerRequest a = { 0 };
	struct rpc_blob blob = { 0 };
	size_t json_len = 300 * 1024, len;	/* beyond nanopb's 64 KiB static limit */
	char *json = malloc(json_len);
	uint8_t *buf;

	memset(json, 'j', json_len);
	h.container_id = "c1";
	h.oci_spec_json.data = (uint8_t *)json;
	h.oci_spec_json.len = json_len;
	h.rootfs_path = "/run/kata-run/shared/c1/rootfs";
	h.rootfs_overlay = 1;
	buf = pack(&h.base, &len);
	rpc_blob_bind_decode(&a.oci_spec_json, &blob, RPC_BLOB_SPEC_MAX);
	pb_istream_t is = pb_istream_from_buffer(buf, len);
	CHECK(pb_decode(&is, kata_run_agent_v1_CreateContainerRequest_fields, &a));
	CHECK_STREQ(a.container_id, "c1");
	CHECK_STREQ(a.rootfs_path, "/run/kata-run/shared/c1/rootfs");
	CHECK(a.rootfs_overlay);
	CHECK(blob.len == json_len);
	CHECK(blob.data && memcmp(blob.data, json, json_len) == 0);
	CHECK(blob.data && blob.data[json_len] == '\0');	/* ready for a JSON parser */
	free(blob.data);
	free(buf);
	free(json);
}

static void test_blob_over_cap_refused(void)
{
	KataRun__Agent__V1__CreateContainerRequest h =
		KATA_RUN__AGENT__V1__CREATE_CONTAINER_REQUEST__INIT;
	struct kr_err err = { 0 };
	size_t json_len = RPC_BLOB_SPEC_MAX + 1, len;
	char *json = calloc(1, json_len);
	uint8_t *buf;

	h.container_id = "c1";
	h.oci_spec_json.data = (uint8_t *)json;
	h.oci_spec_json.len = json_len;
	buf = pack(&h.base, &len);
	CHECK(rpc_decode_only(&rpc_desc_CreateContainer, buf, len, &err) < 0);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	CHECK_CONTAINS(err.msg, "too large");
	free(buf);
	free(json);
}

static void test_string_over_max_size_refused(void)
{
	KataRun__Agent__V1__ContainerRequest h = KATA_RUN__AGENT__V1__CONTAINER_REQUEST__INIT;
	struct kr_err err = { 0 };
	char id[300];
	uint8_t *buf;
	size_t len;

	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	h.container_id = id;
	buf = pack(&h.base, &len);
	CHECK(rpc_decode_only(&rpc_desc_StartContainer, buf, len, &err) < 0);
	CHECK(err.code == KR_INVALID_ARGUMENT);
	free(buf);
	/* 128 characters fit exactly. */
	id[128] = '\0';
	buf = pack(&h.base, &len);
	CHECK(rpc_decode_only(&rpc_desc_StartContainer, buf, len, &err) == 0);
	free(buf);
}

static void test_unknown_fields_skipped(void)
{
	KataRun__Agent__V1__ContainerRequest h = KATA_RUN__AGENT__V1__CONTAINER_REQUEST__INIT;
	kata_run_agent_v1_ContainerRequest a = { 0 };
	uint8_t buf[64];
	size_t len;

	h.container_id = "abc";
	len = protobuf_c_message_get_packed_size(&h.base);
	protobuf_c_message_pack(&h.base, buf);
	/* A newer peer's field 99 (varint) and field 100 (bytes). */
	buf[len++] = 0x98; buf[len++] = 0x06; buf[len++] = 0x96; buf[len++] = 0x01;
	buf[len++] = 0xa2; buf[len++] = 0x06; buf[len++] = 2; buf[len++] = 'h'; buf[len++] = 'i';
	pb_istream_t is = pb_istream_from_buffer(buf, len);
	CHECK(pb_decode(&is, kata_run_agent_v1_ContainerRequest_fields, &a));
	CHECK_STREQ(a.container_id, "abc");
}

static void test_read_stream_agent_to_host(void)
{
	kata_run_agent_v1_ReadStreamResponse a = { 0 };
	struct rpc_blob blob = { 0 };
	KataRun__Agent__V1__ReadStreamResponse *h;
	size_t size = 0;
	uint8_t *buf;

	blob.len = RPC_STREAM_CHUNK;	/* a full 64 KiB chunk */
	blob.data = malloc(blob.len);
	for (size_t i = 0; i < blob.len; i++)
		blob.data[i] = (uint8_t)(i * 7);
	rpc_blob_bind_encode(&a.data, &blob);
	a.eof = false;
	REQUIRE(pb_get_encoded_size(&size, kata_run_agent_v1_ReadStreamResponse_fields, &a));
	buf = malloc(size);
	pb_ostream_t os = pb_ostream_from_buffer(buf, size);
	REQUIRE(pb_encode(&os, kata_run_agent_v1_ReadStreamResponse_fields, &a));
	h = kata_run__agent__v1__read_stream_response__unpack(NULL, os.bytes_written, buf);
	REQUIRE(h);
	CHECK(h->data.len == blob.len);
	CHECK(memcmp(h->data.data, blob.data, blob.len) == 0);
	CHECK(!h->eof);
	kata_run__agent__v1__read_stream_response__free_unpacked(h, NULL);
	free(buf);
	free(blob.data);
}

static void test_replies_agent_to_host(void)
{
	kata_run_agent_v1_WaitProcessResponse w = { .exit_status = -1, .oom_killed = true,
						     .exited_at_ns = 1763800000123456789ull };
	kata_run_agent_v1_ListProcessesResponse l = { 0 };
	uint8_t buf[32768];
	pb_ostream_t os;

	os = pb_ostream_from_buffer(buf, sizeof(buf));
	REQUIRE(pb_encode(&os, kata_run_agent_v1_WaitProcessResponse_fields, &w));
	KataRun__Agent__V1__WaitProcessResponse *hw =
		kata_run__agent__v1__wait_process_response__unpack(NULL, os.bytes_written, buf);
	REQUIRE(hw);
	CHECK(hw->exit_status == -1);
	CHECK(hw->oom_killed);
	CHECK(hw->exited_at_ns == 1763800000123456789ull);
	kata_run__agent__v1__wait_process_response__free_unpacked(hw, NULL);

	for (l.pids_count = 0; l.pids_count < 4096; l.pids_count++)
		l.pids[l.pids_count] = 4194304u - l.pids_count;	/* pid_max sized */
	os = pb_ostream_from_buffer(buf, sizeof(buf));
	REQUIRE(pb_encode(&os, kata_run_agent_v1_ListProcessesResponse_fields, &l));
	KataRun__Agent__V1__ListProcessesResponse *hl =
		kata_run__agent__v1__list_processes_response__unpack(NULL, os.bytes_written, buf);
	REQUIRE(hl);
	CHECK(hl->n_pids == 4096);
	CHECK(hl->n_pids == 4096 && hl->pids[0] == 4194304u && hl->pids[4095] == 4194304u - 4095);
	kata_run__agent__v1__list_processes_response__free_unpacked(hl, NULL);
}

static void test_every_method_decodes_empty(void)
{
	/* An empty payload is a valid proto3 message of every type. */
	for (size_t i = 0; i < agent_n_methods; i++) {
		struct kr_err err = { 0 };

		CHECKF(rpc_decode_only(agent_rpc_descs[i], NULL, 0, &err) == 0,
		       "%s: %s", agent_methods[i].method, err.msg);
	}
}

int main(void)
{
	KR_TEST(test_create_request_host_to_agent);
	KR_TEST(test_blob_over_cap_refused);
	KR_TEST(test_string_over_max_size_refused);
	KR_TEST(test_unknown_fields_skipped);
	KR_TEST(test_read_stream_agent_to_host);
	KR_TEST(test_replies_agent_to_host);
	KR_TEST(test_every_method_decodes_empty);
	return kr_test_done();
}
