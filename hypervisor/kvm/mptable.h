/* Intel MultiProcessor Specification 1.4 tables: how the guest learns its
 * CPUs, its IOAPIC and the ISA interrupt routing without ACPI
 * (../shared/specs/microvm.md 2.6; layout as Linux's
 * arch/x86/include/asm/mpspec_def.h).  Written at LAYOUT_MPTABLE, inside
 * the e820-reserved area below 1 MiB where Linux scans for "_MP_". */
#ifndef KR_VMM_MPTABLE_H
#define KR_VMM_MPTABLE_H

#include <stddef.h>

#include "guest_mem.h"
#include "kr/error.h"

/* APIC ids are 8 bits, 0xff means "all" and the IOAPIC takes vcpus + 1. */
#define MPTABLE_MAX_VCPUS	254u
#define MPTABLE_IRQS		24u	/* I/O interrupts: ISA irq i -> pin i */

/* Bytes written for vcpus CPUs (floating pointer + configuration table). */
size_t mptable_size(unsigned vcpus);

/* Write the floating pointer at LAYOUT_MPTABLE and the configuration table
 * right after it: one processor per vCPU (APIC id = index, BSP = 0), ISA bus
 * 0, the IOAPIC (id vcpus + 1) at LAYOUT_IOAPIC, ISA irqs 0..23 on pins
 * 0..23, ExtINT on LINT0 of the BSP and NMI on LINT1 of every CPU.  Refuses
 * vcpus 0 or > MPTABLE_MAX_VCPUS, and a table that would not fit below 1 MiB
 * or in guest memory. */
int mptable_write(const struct guest_mem *gm, unsigned vcpus,
		  struct kr_err *err);

#endif
