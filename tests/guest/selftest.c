/* testguest.linux64_selftest=1: QEMU boots this ELF only through its PVH
 * note, so to exercise the Linux 64-bit entry as well, a passing PVH run
 * plays the VMM's part of that protocol (microvm.md 1.3-1.6, with the
 * addresses of layout.h) and jumps to linux64_start, which runs everything
 * again and reports "boot protocol=linux64". */
#include "guest.h"

#define ZP(type, off) (*(type *)phys(LAYOUT_ZERO_PAGE + (off)))

/* entry.S: load the GDT at LAYOUT_GDT, CR3, selectors, RSP, RSI and
 * far-return to linux64_start with CS 0x10. */
__attribute__((noreturn)) void linux64_jump(void);

void linux64_reenter(const struct boot_info *bi)
{
	report("pvh run passed; re-entering through linux64_start (testguest.linux64_selftest=1)");

	/* Command line (copied before anything is overwritten). */
	size_t n = strnlen(bi->cmdline, LAYOUT_CMDLINE_MAX - 1);
	memcpy(phys(LAYOUT_CMDLINE), bi->cmdline, n);
	((char *)phys(LAYOUT_CMDLINE))[n] = 0;

	/* Zero page: the fields a VMM fills for a vmlinux (no setup header
	 * in the file, so one is synthesized), e820 from the PVH map. */
	memset(phys(LAYOUT_ZERO_PAGE), 0, 4096);
	ZP(uint16_t, 0x1fe) = 0xaa55;		/* boot_flag */
	ZP(uint32_t, 0x202) = 0x53726448;	/* "HdrS" */
	ZP(uint16_t, 0x206) = 0x020f;		/* version */
	ZP(uint8_t, 0x210) = 0xff;		/* type_of_loader */
	ZP(uint8_t, 0x211) = 0x01;		/* loadflags: LOADED_HIGH */
	ZP(uint32_t, 0x218) = (uint32_t)bi->initrd_addr;
	ZP(uint32_t, 0x21c) = (uint32_t)bi->initrd_size;
	ZP(uint32_t, 0x0c0) = (uint32_t)(bi->initrd_addr >> 32);
	ZP(uint32_t, 0x0c4) = (uint32_t)(bi->initrd_size >> 32);
	ZP(uint32_t, 0x228) = (uint32_t)LAYOUT_CMDLINE;
	ZP(uint32_t, 0x230) = 0x01000000;	/* kernel_alignment */
	ZP(uint32_t, 0x238) = LAYOUT_CMDLINE_MAX - 1;
	unsigned k = 0;
	for (unsigned i = 0; i < memmap_count() && k < 128; i++) {
		uint64_t a, s;
		uint32_t t;
		memmap_get(i, &a, &s, &t);
		if (!s)
			continue;
		uint8_t *e = phys(LAYOUT_ZERO_PAGE + 0x2d0 + 20 * k++);
		memcpy(e, &a, 8);
		memcpy(e + 8, &s, 8);
		memcpy(e + 16, &t, 4);
	}
	ZP(uint8_t, 0x1e8) = (uint8_t)k;

	/* Boot GDT (selectors 0x10 code, 0x18 data), a null IDT entry. */
	uint64_t *gdt = phys(LAYOUT_GDT);
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffull;
	gdt[3] = 0x00cf93000000ffffull;
	*(uint64_t *)phys(LAYOUT_IDT) = 0;

	/* Identity map of the first 1 GiB with 2 MiB pages. */
	uint64_t *pml4 = phys(LAYOUT_PML4);
	uint64_t *pdpt = phys(LAYOUT_PDPT);
	uint64_t *pd = phys(LAYOUT_PD);
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | 3;
	pdpt[0] = LAYOUT_PD | 3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = i << 21 | 0x83;

	linux64_jump();
}
