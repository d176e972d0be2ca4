/* Port-I/O and MMIO dispatch (bus.h). */
#include <string.h>

#include "bus.h"

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_rw_fn rw,
		 void *opaque, const char *name, struct kr_err *err)
{
	/* Compare last bytes, not ends: a range may end exactly at 2^64
	 * (base + len == 0) without wrapping. */
	uint64_t last = base + len - 1;

	if (len == 0 || last < base) {
		kr_err_set(err, KR_INVALID_ARGUMENT,
			   "bus: %s: bad range 0x%llx+0x%llx", name,
			   (unsigned long long)base, (unsigned long long)len);
		return -1;
	}
	if (b->nr == BUS_MAX_RANGES) {
		kr_err_set(err, KR_RESOURCE_EXHAUSTED, "bus: %s: more than %u devices",
			   name, BUS_MAX_RANGES);
		return -1;
	}
	for (unsigned i = 0; i < b->nr; i++) {
		const struct bus_range *r = &b->range[i];

		if (base <= r->base + (r->len - 1) && r->base <= last) {
			kr_err_set(err, KR_INVALID_ARGUMENT,
				   "bus: %s at 0x%llx+0x%llx overlaps %s at 0x%llx+0x%llx",
				   name, (unsigned long long)base, (unsigned long long)len,
				   r->name, (unsigned long long)r->base,
				   (unsigned long long)r->len);
			return -1;
		}
	}
	b->range[b->nr++] = (struct bus_range){ base, len, rw, opaque, name };
	return 0;
}

bool bus_dispatch(const struct bus *b, uint64_t addr, uint8_t *data,
		  unsigned len, bool is_write)
{
	for (unsigned i = 0; i < b->nr; i++) {
		const struct bus_range *r = &b->range[i];
		uint64_t off = addr - r->base;

		/* Offsets, not addr + len: no overflow whatever the guest
		 * puts in addr. */
		if (addr < r->base || off >= r->len || len > r->len - off)
			continue;
		r->rw(r->opaque, off, data, len, is_write);
		return true;
	}
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}
