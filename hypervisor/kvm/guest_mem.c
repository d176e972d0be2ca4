/* Guest memory regions and checked guest-physical -> host translation.  All
 * arithmetic is done as offsets from a region's base so that nothing a guest
 * passes in can overflow. */
#include <inttypes.h>
#include <string.h>

#include "guest_mem.h"

void gm_init(struct guest_mem *gm)
{
	memset(gm, 0, sizeof(*gm));
}

/* Inclusive last addresses avoid the 2^64 end a region could touch. */
static int overlaps(const struct gm_region *r, uint64_t gpa, uint64_t size)
{
	return gpa <= r->gpa + (r->size - 1) && r->gpa <= gpa + (size - 1);
}

int gm_add_region(struct guest_mem *gm, uint64_t gpa, uint64_t size,
		  void *host, struct kr_err *err)
{
	unsigned i;

	if (size == 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "guest region at 0x%" PRIx64 ": size 0", gpa);
	if (size - 1 > UINT64_MAX - gpa)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "guest region 0x%" PRIx64 "+0x%" PRIx64
				  " wraps the address space", gpa, size);
	if (!host || size - 1 > UINTPTR_MAX - (uintptr_t)host)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "guest region 0x%" PRIx64 "+0x%" PRIx64
				  ": bad host mapping %p", gpa, size, host);
	if (((uintptr_t)host ^ gpa) & 15)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "guest region 0x%" PRIx64 ": host address %p"
				  " not congruent to it modulo 16", gpa, host);
	for (i = 0; i < gm->nr; i++)
		if (overlaps(&gm->region[i], gpa, size))
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "guest region 0x%" PRIx64 "+0x%" PRIx64
					  " overlaps 0x%" PRIx64 "+0x%" PRIx64,
					  gpa, size, gm->region[i].gpa,
					  gm->region[i].size);
	if (gm->nr == GM_MAX_REGIONS)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
				  "guest region 0x%" PRIx64 ": more than %d"
				  " regions", gpa, GM_MAX_REGIONS);
	gm->region[gm->nr++] = (struct gm_region){ gpa, size, host };
	return 0;
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	unsigned i;

	for (i = 0; i < gm->nr; i++) {
		const struct gm_region *r = &gm->region[i];
		uint64_t off;

		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		off = gpa - r->gpa;
		/* Regions do not overlap: no other one can hold gpa. */
		if (len > r->size - off)
			return NULL;
		return r->host + off;
	}
	return NULL;
}

static void *checked(const struct guest_mem *gm, uint64_t gpa, size_t len,
		     struct kr_err *err)
{
	void *p = gm_ptr(gm, gpa, len);

	if (!p)
		kr_err_set(err, KR_INVALID_ARGUMENT,
			   "guest range 0x%" PRIx64 "+0x%zx is outside guest"
			   " memory", gpa, len);
	return p;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len,
	    struct kr_err *err)
{
	void *p = checked(gm, gpa, len, err);

	if (!p)
		return -1;
	if (len)
		memcpy(buf, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *buf,
	     size_t len, struct kr_err *err)
{
	void *p = checked(gm, gpa, len, err);

	if (!p)
		return -1;
	if (len)
		memcpy(p, buf, len);
	return 0;
}
