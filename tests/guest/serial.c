/* COM1 output (polled: LSR.THRE before each byte), a small printf, the
 * failure record and the end of the VM. */
#include <stdarg.h>

#include "guest.h"

#define COM1_THR (LAYOUT_COM1 + 0)
#define COM1_LSR (LAYOUT_COM1 + 5)
#define LSR_THRE 0x20

void serial_putc(char c)
{
	/* Bounded: a missing UART reads 0xff (THRE set) anyway. */
	for (unsigned i = 0; i < 1000000; i++) {
		if (inb(COM1_LSR) & LSR_THRE)
			break;
		cpu_relax();
	}
	outb(COM1_THR, (uint8_t)c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		serial_putc(s[i]);
}

/* ---- printf subset: %[0][width][l|ll|z](d|u|x|s|c|p) and %% --------------
 * Output goes to a sink: the serial port, or a buffer (the FAIL reason). */
struct sink {
	char *buf;		/* NULL: serial */
	size_t len, cap;
};

static void sink_putc(struct sink *o, char c)
{
	if (!o->buf)
		serial_putc(c);
	else if (o->len + 1 < o->cap)
		o->buf[o->len++] = c;
}

static void put_num(struct sink *o, uint64_t v, unsigned base, bool neg,
		    unsigned width, char pad)
{
	char buf[24];
	unsigned n = 0;

	do {
		unsigned d = (unsigned)(v % base);
		buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	if (neg)
		buf[n++] = '-';
	while (width > n) {
		sink_putc(o, pad);
		width--;
	}
	while (n)
		sink_putc(o, buf[--n]);
}

static void vformat(struct sink *o, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sink_putc(o, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		unsigned width = 0, lng = 0;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned)(*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			put_num(o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			put_num(o, v, *fmt == 'u' ? 10 : 16, false, width, pad);
			break;
		}
		case 'p':
			sink_putc(o, '0');
			sink_putc(o, 'x');
			put_num(o, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, false, width, pad);
			break;
		case 's':
			for (const char *s = va_arg(ap, const char *); *s; s++)
				sink_putc(o, *s);
			break;
		case 'c':
			sink_putc(o, (char)va_arg(ap, int));
			break;
		case '%':
			sink_putc(o, '%');
			break;
		default:		/* not used */
			sink_putc(o, '?');
			if (!*fmt)
				return;
		}
	}
}

static void vgprintf(const char *fmt, va_list ap)
{
	struct sink o = { 0 };

	vformat(&o, fmt, ap);
}

void gprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vgprintf(fmt, ap);
	va_end(ap);
}

void report(const char *fmt, ...)
{
	va_list ap;

	serial_write("TESTGUEST: ", 11);
	va_start(ap, fmt);
	vgprintf(fmt, ap);
	va_end(ap);
	serial_putc('\n');
}

void print_quoted(const char *s, size_t n)
{
	serial_putc('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			serial_write("\\n", 2);
		else if (c == '"' || c == '\\') {
			serial_putc('\\');
			serial_putc((char)c);
		} else if (c < 0x20 || c >= 0x7f)
			gprintf("\\x%02x", c);
		else
			serial_putc((char)c);
	}
	serial_putc('"');
}

/* ---- the result ------------------------------------------------------------ */
static char fail_reason[160];
static bool have_failed;
static unsigned nfailures;

void fail(const char *fmt, ...)
{
	va_list ap;

	serial_write("TESTGUEST: check failed: ", 25);
	va_start(ap, fmt);
	vgprintf(fmt, ap);
	va_end(ap);
	serial_putc('\n');
	nfailures++;
	if (have_failed)
		return;
	have_failed = true;
	struct sink o = { fail_reason, 0, sizeof(fail_reason) };
	va_start(ap, fmt);
	vformat(&o, fmt, ap);
	va_end(ap);
	fail_reason[o.len] = 0;
}

bool failed(void)
{
	return have_failed;
}

unsigned fail_count(void)
{
	return nfailures;
}

void finish(void)
{
	if (have_failed)
		report("FAIL %s", fail_reason);
	else
		report("PASS");
	if (params.hang) {
		report("hanging (testguest.hang=1)");
		for (;;)
			__asm__ __volatile__("cli; hlt");
	}
	vm_exit(have_failed);
}

/* QEMU's isa-debug-exit (exit status (v << 1) | 1), then the i8042 reset
 * line (the kata-vmm ends the VM on it), then a triple fault. */
void vm_exit(int failure)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} PACKED null_idt = { 0, 0 };

	if (params.triple_fault) {
		/* The VMM must end the VM on the triple fault alone. */
		report("ending with a triple fault (testguest.triple_fault=1)");
		goto triple;
	}
	outb(0xf4, failure ? 1 : 0);
	for (unsigned i = 0; i < 100000 && (inb(LAYOUT_I8042_CMD) & 2); i++)
		cpu_relax();
	outb(LAYOUT_I8042_CMD, 0xfe);
triple:
	__asm__ __volatile__("lidt %0; int3" : : "m"(null_idt));
	for (;;)
		__asm__ __volatile__("cli; hlt");
}
