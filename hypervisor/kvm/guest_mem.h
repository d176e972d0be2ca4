/* Guest RAM as the VMM sees it: a few regions of guest physical addresses,
 * each backed by one contiguous host mapping (typically RAM below the 32-bit
 * PCI hole and RAM above 4 GiB).
 *
 * Every address that comes from the guest (ring addresses, descriptor
 * buffers) goes through gm_ptr(): it is hostile input, and a range that is
 * not entirely inside ONE region is refused.  A buffer straddling two
 * regions is refused even when they are adjacent in guest physical space,
 * so give physically contiguous RAM to gm_add_region() as one region.
 *
 * The regions must stay mapped and unchanged while any virtqueue uses them
 * (no memory hotplug). */
#ifndef KR_GUEST_MEM_H
#define KR_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "kr/error.h"

#define GM_MAX_REGIONS 8

struct gm_region {
	uint64_t gpa;		/* guest physical base */
	uint64_t size;		/* bytes, > 0; gpa + size does not wrap */
	uint8_t *host;		/* host address of gpa */
};

struct guest_mem {
	struct gm_region region[GM_MAX_REGIONS];
	unsigned nr;
};

void gm_init(struct guest_mem *gm);

/* Add [gpa, gpa + size) backed by host.  Refused: size 0, a range that wraps
 * 2^64 (in guest or host address space), an overlap with an existing
 * region, a full table, and a host address whose low 4 bits differ from
 * the gpa's: virtqueue code relies on guest alignment (up to 16) carrying
 * over to the host pointer for its atomic ring accesses. */
int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size,
		  void *host, struct kr_err *err);

/* Host pointer for [gpa, gpa + len), or NULL unless the whole range is in
 * one region.  len 0 is allowed when gpa itself is inside a region. */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy between guest memory and buf, with gm_ptr's checks; the error names
 * the range. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len,
	    struct kr_err *err);
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *buf,
	     size_t len, struct kr_err *err);

#endif
