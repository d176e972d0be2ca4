/* A long-mode IDT for the 32 exception vectors: an unexpected exception
 * prints "TESTGUEST: FAIL exception <n> ..." and ends the VM.  Interrupts
 * stay disabled throughout (devices are polled). */
#include "guest.h"

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} PACKED;

extern const uint64_t exc_stubs[32];	/* entry.S */
static struct idt_gate idt[32] __attribute__((aligned(16)));

void idt_setup(void)
{
	for (unsigned v = 0; v < ARRAY_SIZE(idt); v++) {
		uint64_t a = exc_stubs[v];
		idt[v] = (struct idt_gate){
			.off_lo = (uint16_t)a, .sel = 0x10, .type = 0x8e,
			.off_mid = (uint16_t)(a >> 16), .off_hi = (uint32_t)(a >> 32),
		};
	}
	struct {
		uint16_t limit;
		uint64_t base;
	} PACKED idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ __volatile__("lidt %0" : : "m"(idtr));
}

__attribute__((noreturn)) void exception_report(uint64_t vec, uint64_t err,
						uint64_t rip, uint64_t cr2);
void exception_report(uint64_t vec, uint64_t err, uint64_t rip, uint64_t cr2)
{
	static bool nested;

	if (nested) {		/* faulted while reporting: give up */
		vm_exit(1);
	}
	nested = true;
	if (vec == 6 && params.fault)
		report("exception 6 (#UD) from testguest.fault=1 at rip=0x%lx", rip);
	fail("exception %lu err=0x%lx rip=0x%lx cr2=0x%lx", vec, err, rip, cr2);
	finish();
}
