/* The VMM's two address spaces for device emulation: port I/O (x86 in/out)
 * and MMIO.  A vCPU exit (KVM_EXIT_IO / KVM_EXIT_MMIO) is dispatched to the
 * one device whose range contains the access; an access no device claims
 * reads as all-ones and its writes are dropped (an absent device), which is
 * what the guest kernel's probes expect.
 *
 * Handlers run on vCPU threads, possibly several at once: a device protects
 * its own state.  Ranges are registered before the vCPUs start and never
 * change afterwards, so dispatch takes no lock. */
#ifndef KR_VMM_BUS_H
#define KR_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "kr/error.h"

#define BUS_MAX_RANGES 32

/* offset: from the range's base.  data: len bytes (1, 2, 4 or 8; a read
 * fills them, little-endian).  The access lies entirely inside the range. */
typedef void (*bus_rw_fn)(void *opaque, uint64_t offset, uint8_t *data,
			  unsigned len, bool is_write);

struct bus_range {
	uint64_t base, len;
	bus_rw_fn rw;
	void *opaque;
	const char *name;
};

struct bus {
	struct bus_range range[BUS_MAX_RANGES];
	unsigned nr;
};

/* Refused: len 0, a wrapping range, an overlap, a full table. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_rw_fn rw,
		 void *opaque, const char *name, struct kr_err *err);
/* true if a device took the access; false: reads were filled with 0xff. */
bool bus_dispatch(const struct bus *b, uint64_t addr, uint8_t *data,
		  unsigned len, bool is_write);

#endif
