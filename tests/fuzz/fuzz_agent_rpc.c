/* libFuzzer target: the agent's request decoders (nanopb, with the bounded
 * blob callbacks), exactly as the dispatcher runs them, for every method.
 * The first input byte picks the method.
 *
 * Build: make fuzz (build/fuzz/fuzz_agent_rpc). */
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct rpc_desc *d;

	if (size < 1)
		return 0;
	d = agent_rpc_descs[data[0] % agent_n_methods];
	rpc_decode_only(d, data + 1, size - 1, NULL);
	return 0;
}
