/* The little of libc the guest needs, the memory arena and time. */
#include "guest.h"

/* String instructions: one instruction each, whatever the length (the
 * guest counts instructions on slow hosts). */
void *memset(void *d, int c, size_t n)
{
	void *p = d;

	__asm__ __volatile__("rep stosb" : "+D"(p), "+c"(n) : "a"(c) : "memory");
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *p = d;

	__asm__ __volatile__("rep movsb" : "+D"(p), "+S"(s), "+c"(n) : : "memory");
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

size_t strlen(const char *s)
{
	return strnlen(s, SIZE_MAX);
}

bool parse_u64(const char *s, const char **end, uint64_t *v)
{
	unsigned base = 10;
	uint64_t x = 0;
	const char *p = s;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	const char *digits = p;
	for (;; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			break;
		if (x > (UINT64_MAX - d) / base)
			return false;
		x = x * base + d;
	}
	if (p == digits)
		return false;
	*end = p;
	*v = x;
	return true;
}

/* FNV-1a, 32 bits: h = 0x811c9dc5; for each byte: h ^= b; h *= 0x01000193. */
uint32_t fnv1a32(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t h = 0x811c9dc5u;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x01000193u;
	}
	return h;
}

/* Device memory (rings, buffers): never freed; the devices are reset before
 * the VM ends.  Outside .bss so that entry.S does not zero it all. */
static char arena[512 * 1024] __attribute__((aligned(4096), section(".bss.noinit.arena")));
static size_t arena_used;

void *arena_alloc(size_t size, size_t align)
{
	size_t off = (arena_used + align - 1) & ~(align - 1);

	if (off > sizeof(arena) || size > sizeof(arena) - off) {
		fail("arena exhausted (%zu bytes more)", size);
		finish();
	}
	arena_used = off + size;
	return memset(arena + off, 0, size);
}

uint64_t deadline_after_ms(uint64_t ms)
{
	return rdtsc() + ms * (TSC_PER_SECOND / 1000);
}

bool deadline_passed(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) > 0;
}
