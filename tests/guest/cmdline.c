/* Command-line parameters (README.md lists them).  Words are separated by
 * spaces; words the guest does not know are ignored, except unknown or
 * malformed testguest.* and virtio_mmio.device= words, which fail the run. */
#include "guest.h"

#define DEFAULT_TIMEOUT_MS 10000

struct guest_params params = { .timeout_ms = DEFAULT_TIMEOUT_MS };

static bool word_is(const char *w, size_t n, const char *key, const char **val)
{
	size_t k = strlen(key);

	if (n < k || memcmp(w, key, k))
		return false;
	*val = w + k;
	return true;
}

/* A whole number filling [s, end). */
static bool number(const char *s, const char *end, uint64_t max, uint64_t *v)
{
	const char *e;

	return parse_u64(s, &e, v) && e == end && *v <= max;
}

static bool hex32(const char *s, const char *end, uint32_t *v)
{
	uint64_t x = 0;

	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (s == end || end - s > 8)
		return false;
	for (; s < end; s++) {
		char c = *s;
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		x = x << 4 | d;
	}
	*v = (uint32_t)x;
	return true;
}

/* <size>@<base>:<irq>[:<id>]; size takes a K/M/G suffix. */
static bool mmio_device(const char *s, const char *end, struct mmio_dev_spec *d)
{
	const char *p;
	uint64_t irq;

	if (!parse_u64(s, &p, &d->size))
		return false;
	unsigned shift = 0;
	if (p < end && (*p == 'K' || *p == 'k'))
		shift = 10;
	else if (p < end && (*p == 'M' || *p == 'm'))
		shift = 20;
	else if (p < end && (*p == 'G' || *p == 'g'))
		shift = 30;
	if (shift) {
		if (d->size > (UINT64_MAX >> shift))
			return false;
		d->size <<= shift;
		p++;
	}
	if (p >= end || *p++ != '@' || !parse_u64(p, &p, &d->base))
		return false;
	if (p >= end || *p++ != ':' || !parse_u64(p, &p, &irq) || irq > 0xffffffffu)
		return false;
	d->irq = (uint32_t)irq;
	if (p < end && *p == ':') {	/* platform device id: not used */
		uint64_t id;
		if (!parse_u64(p + 1, &p, &id))
			return false;
	}
	return p == end && d->size >= 0x100 && d->base % 4 == 0 &&
	       d->base < LAYOUT_4G && d->size <= LAYOUT_4G - d->base;
}

static bool need_list(const char *s, const char *end, unsigned *need)
{
	while (s < end) {
		const char *e = s;
		while (e < end && *e != ',')
			e++;
		if (e - s == 3 && !memcmp(s, "rng", 3))
			*need |= NEED_RNG;
		else if (e - s == 3 && !memcmp(s, "blk", 3))
			*need |= NEED_BLK;
		else if (e - s == 5 && !memcmp(s, "vsock", 5))
			*need |= NEED_VSOCK;
		else
			return false;
		s = e < end ? e + 1 : e;
	}
	return true;
}

static void word(const char *w, size_t n)
{
	const char *v, *end = w + n;
	uint64_t x;
	bool ok = true;

	if (word_is(w, n, "virtio_mmio.device=", &v)) {
		if (params.ndev == MAX_MMIO_DEVS) {
			fail("more than %u virtio_mmio.device= entries", MAX_MMIO_DEVS);
			return;
		}
		ok = mmio_device(v, end, &params.dev[params.ndev]);
		if (ok)
			params.ndev++;
	} else if (n < 10 || memcmp(w, "testguest.", 10)) {
		return;		/* someone else's parameter */
	} else if (word_is(w, n, "testguest.initrd_sum=", &v)) {
		ok = hex32(v, end, &params.initrd_sum);
		params.have_initrd_sum = ok;
	} else if (word_is(w, n, "testguest.vsock_port=", &v)) {
		ok = number(v, end, 0xffffffffu, &x) && x;
		params.vsock_port = (uint32_t)x;
	} else if (word_is(w, n, "testguest.vsock_listen=", &v)) {
		ok = number(v, end, 0xffffffffu, &x) && x;
		params.vsock_listen = (uint32_t)x;
	} else if (word_is(w, n, "testguest.need=", &v)) {
		ok = need_list(v, end, &params.need);
	} else if (word_is(w, n, "testguest.timeout_ms=", &v)) {
		ok = number(v, end, 3600000, &x) && x;
		params.timeout_ms = (uint32_t)x;
	} else if (word_is(w, n, "testguest.fault=", &v)) {
		ok = number(v, end, 1, &x);
		params.fault = x;
	} else if (word_is(w, n, "testguest.linux64_selftest=", &v)) {
		ok = number(v, end, 1, &x);
		params.linux64_selftest = x;
	} else if (word_is(w, n, "testguest.triple_fault=", &v)) {
		ok = number(v, end, 1, &x);
		params.triple_fault = x;
	} else if (word_is(w, n, "testguest.hang=", &v)) {
		ok = number(v, end, 1, &x);
		params.hang = x;
	} else {
		ok = false;
	}
	if (!ok) {
		char copy[64];
		size_t k = n < sizeof(copy) - 1 ? n : sizeof(copy) - 1;
		memcpy(copy, w, k);
		copy[k] = 0;
		fail("bad parameter %s", copy);
	}
}

void cmdline_parse(const char *s)
{
	/* In .data (used before the parse); a re-entry must start afresh. */
	params = (struct guest_params){ .timeout_ms = DEFAULT_TIMEOUT_MS };
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		const char *w = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n')
			s++;
		if (s > w)
			word(w, (size_t)(s - w));
	}
	for (unsigned i = 0; i < params.ndev; i++)
		report("virtio-mmio device %u: base=0x%lx size=0x%lx irq=%u", i,
		       params.dev[i].base, params.dev[i].size, params.dev[i].irq);
}
