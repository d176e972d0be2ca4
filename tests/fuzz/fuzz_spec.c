/* libFuzzer target for agent/spec.c: the OCI config arrives from the host
 * as JSON bytes, so every parser entry point gets the same input.
 *
 *   clang -D_GNU_SOURCE -Iinclude -Iagent -std=gnu11 -g -O1 \
 *     -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_spec.c \
 *     agent/spec.c agent/spec_json.c agent/spec_linux.c agent/caps.c \
 *     lib/error.c lib/log.c lib/util.c \
 *     -ljson-c -pthread -o fuzz_spec
 *   ./fuzz_spec -max_total_time=60 tests/fuzz/corpus/spec */
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kr/error.h"
#include "spec.h"

/* Touch what the launch code reads, so ASan sees any bad pointer. */
static size_t walk(const struct oci_spec *s)
{
	size_t sum = strlen(s->root_path);

	for (size_t i = 0; i < s->process.n_args; i++)
		sum += strlen(s->process.args[i]);
	if (s->has_process)
		sum += strlen(s->process.cwd) + (s->process.env[s->process.n_env] == NULL);
	if (s->has_process && spec_getenv(s->process.env, "PATH"))
		sum++;
	for (size_t i = 0; i < s->n_mounts; i++)
		sum += strlen(s->mounts[i].destination) +
		       (s->mounts[i].data ? strlen(s->mounts[i].data) : 0);
	for (size_t i = 0; i < s->n_sysctls; i++)
		sum += strlen(s->sysctls[i].key) + strlen(s->sysctls[i].value);
	if (s->seccomp)
		for (size_t i = 0; i < s->seccomp->n_rules; i++)
			sum += strlen(s->seccomp->rules[i].names[0]);
	return sum + spec_has_namespace(s, CLONE_NEWPID);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kr_err err;
	struct oci_spec *spec = NULL;
	struct oci_process *proc = NULL;
	struct oci_resources res;
	volatile size_t sink;

	if (spec_parse((const char *)data, size, &spec, &err) == 0) {
		sink = walk(spec);
		(void)sink;
	}
	spec_free(spec);
	if (spec_parse_process((const char *)data, size, &proc, &err) == 0)
		sink = strlen(proc->args[0]) + strlen(proc->cwd);
	spec_process_free(proc);
	if (spec_parse_resources((const char *)data, size, &res, &err) == 0)
		spec_resources_release(&res);
	return 0;
}
