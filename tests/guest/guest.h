/* The freestanding test guest (README.md): shared declarations.
 *
 * Memory is identity-mapped (virtual = physical) over the first 4 GiB with
 * 2 MiB pages (entry.S), so a guest-physical address is a pointer. */
#ifndef TESTGUEST_H
#define TESTGUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"	/* hypervisor/kvm/layout.h: the VMM's layout */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define barrier() __asm__ __volatile__("" ::: "memory")
#define PACKED __attribute__((packed))

/* A pointer to guest-physical address a (identity-mapped).  The asm hides
 * the constant from GCC, which otherwise takes a store to, say, 0x500 for
 * an access through a null pointer (-Warray-bounds). */
static inline void *phys(uint64_t a)
{
	void *p;

	__asm__("" : "=r"(p) : "0"(a));
	return p;
}

/* ---- port and MMIO access ------------------------------------------------ */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ __volatile__("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
/* One plain mov per access (a VMM decodes the faulting instruction). */
static inline uint32_t mmio_read32(uint64_t addr)
{
	uint32_t v;
	__asm__ __volatile__("movl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
	return v;
}
static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	__asm__ __volatile__("movl %0, (%1)" : : "r"(v), "r"(addr) : "memory");
}
static inline uint16_t mmio_read16(uint64_t addr)
{
	uint16_t v;
	__asm__ __volatile__("movw (%1), %0" : "=r"(v) : "r"(addr) : "memory");
	return v;
}
static inline uint8_t mmio_read8(uint64_t addr)
{
	uint8_t v;
	__asm__ __volatile__("movb (%1), %0" : "=q"(v) : "r"(addr) : "memory");
	return v;
}
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}
static inline void cpu_relax(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

/* ---- time: the TSC, assumed to tick at about TSC_PER_SECOND ------------- */
#define TSC_PER_SECOND 3000000000ull	/* timeouts are "about" seconds */
uint64_t deadline_after_ms(uint64_t ms);
bool deadline_passed(uint64_t deadline);

/* ---- state saved by entry.S at the entry point --------------------------- */
enum boot_proto { BOOT_PVH = 1, BOOT_LINUX64 = 2 };
struct boot_regs {
	uint64_t proto;		/* enum boot_proto */
	uint64_t info;		/* EBX (PVH start info) or RSI (boot_params) */
	uint64_t cr0, cr3, cr4, efer, rflags, rsp;
	uint64_t cs, ds, ss;
	uint8_t gdtr_pad[6];	/* SGDT stores at gdtr_limit: limit, then base */
	uint16_t gdtr_limit;
	uint64_t gdtr_base;	/* 32 bits only from the PVH entry */
};
_Static_assert(sizeof(struct boot_regs) == 104, "entry.S offsets");
extern struct boot_regs boot_regs;
extern char __image_start[], __image_end[];

/* ---- serial.c: COM1 output and the end of the VM -------------------------- */
void serial_putc(char c);
void serial_write(const char *s, size_t n);
void gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "TESTGUEST: " + message + "\n" */
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print bytes as a C-ish quoted string ("abc\n" -> "abc\n" escaped). */
void print_quoted(const char *s, size_t n);
/* Record a failure (the first one is the reason in the final FAIL line)
 * and print "TESTGUEST: check failed: <reason>". */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool failed(void);
unsigned fail_count(void);	/* fail() calls so far */
/* Print PASS or FAIL <reason> and end the VM (isa-debug-exit, i8042 reset,
 * triple fault). */
__attribute__((noreturn)) void finish(void);
__attribute__((noreturn)) void vm_exit(int failure);

/* ---- lib.c --------------------------------------------------------------- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strnlen(const char *s, size_t max);
size_t strlen(const char *s);
/* Parse an unsigned number (0x.. hex or decimal); *end after it.  False if
 * no digit or overflow. */
bool parse_u64(const char *s, const char **end, uint64_t *v);
uint32_t fnv1a32(const void *p, size_t n);
void *arena_alloc(size_t size, size_t align);	/* zeroed; fails the run */

/* ---- trap.c -------------------------------------------------------------- */
void idt_setup(void);

/* ---- boot.c: boot protocol checks ---------------------------------------- */
struct boot_info {
	const char *cmdline;	/* NUL-terminated, or "" */
	uint64_t initrd_addr, initrd_size;
};
void boot_check(struct boot_info *bi);
unsigned memmap_count(void);
void memmap_get(unsigned i, uint64_t *addr, uint64_t *size, uint32_t *type);

/* ---- selftest.c ---------------------------------------------------------- */
__attribute__((noreturn)) void linux64_reenter(const struct boot_info *bi);

/* ---- cmdline.c ----------------------------------------------------------- */
#define MAX_MMIO_DEVS 16
struct mmio_dev_spec {
	uint64_t base, size;
	uint32_t irq;
};
struct guest_params {
	struct mmio_dev_spec dev[MAX_MMIO_DEVS];
	unsigned ndev;
	bool have_initrd_sum;
	uint32_t initrd_sum;
	uint32_t vsock_port;	/* 0: no guest-initiated connection */
	uint32_t vsock_listen;	/* 0: no host-initiated connection */
	unsigned need;		/* NEED_* bits: device types that must be present */
	uint32_t timeout_ms;	/* per wait; default 10 s */
	bool fault;		/* testguest.fault=1: execute ud2 at the end */
	bool hang;		/* testguest.hang=1: spin instead of exiting */
	bool triple_fault;	/* testguest.triple_fault=1: end with a triple fault only */
	bool linux64_selftest;	/* re-enter through linux64_start (selftest.c) */
};
#define NEED_RNG 1u
#define NEED_BLK 2u
#define NEED_VSOCK 4u
extern struct guest_params params;
void cmdline_parse(const char *cmdline);

/* ---- devices --------------------------------------------------------------- */
struct virtio_dev;
void rng_test(struct virtio_dev *d);
void blk_test(struct virtio_dev *d);
void vsock_test(struct virtio_dev *d);

#endif
