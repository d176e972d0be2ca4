/* Kernel loader: puts a Linux kernel (bzImage, or an ELF64 such as vmlinux
 * or the test guest), its initrd and command line into guest RAM, writes
 * the boot structures (zero page or PVH start info, e820 map, MP table,
 * page tables, GDT) and computes the boot vCPU's registers.
 * ../shared/specs/microvm.md section 1 has the protocols; every address
 * comes from layout.h.
 *
 * Nothing here touches /dev/kvm: the result is plain data in guest memory
 * plus struct kvm_regs/kvm_sregs values for KVM_SET_REGS/KVM_SET_SREGS.
 * The image files are untrusted input: every offset and size read from them
 * is checked (overflow-safe) against the file size and against guest RAM,
 * and every guest write goes through gm_ptr()/gm_write(). */
#ifndef KR_VMM_BOOT_H
#define KR_VMM_BOOT_H

#include <stdint.h>

#include <asm/bootparam.h>
#include <linux/kvm.h>

#include "guest_mem.h"
#include "kr/error.h"

enum boot_proto {
	BOOT_AUTO = 0,	/* PVH if the ELF has the Xen PVH note, else LINUX64 */
	BOOT_LINUX64,	/* Linux 64-bit boot protocol (zero page, paging on) */
	BOOT_PVH,	/* Xen PVH direct boot (32-bit, paging off) */
};

struct boot_args {
	/* path: bzImage, or an ELF64 (vmlinux or our test guest) */
	const char *kernel;
	const char *initrd;	/* path or NULL */
	const char *cmdline;	/* full command line, may be "" (NULL = "") */
	/* bytes of guest RAM: [0, min(ram, LAYOUT_MMIO_START)) + the rest
	 * from 4 GiB */
	uint64_t ram_size;
	unsigned vcpus;		/* for the MP table: 1..MPTABLE_MAX_VCPUS */
	enum boot_proto proto;
};

/* Initial state of the boot vCPU, in KVM UAPI structs (linux/kvm.h).  sregs
 * is complete and can be given to KVM_SET_SREGS as is: apic_base holds the
 * BSP's reset value (LAPIC at LAYOUT_LAPIC, enabled, BSP flag), cr2/cr8 and
 * the interrupt bitmap are 0, LDT is what a vCPU reset gives it. */
struct boot_cpu {
	enum boot_proto proto;	/* what was used: BOOT_LINUX64 or BOOT_PVH */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	/* GPAs, for logs and tests.  kernel_end includes the room a bzImage
	 * needs to decompress itself (init_size from its run address). */
	uint64_t kernel_start, kernel_end, initrd_start, initrd_size;
};

/* Load everything described by a into gm and fill *out.  gm must cover
 * [0, min(ram_size, LAYOUT_MMIO_START)) as one region (the loader writes
 * below 1 MiB, at the kernel's addresses and at the top of low RAM).
 * Fails (-1, err names the file, the field and why) on a malformed or
 * unsupported image, anything that does not fit, a command line longer
 * than the kernel accepts, or an unreadable file; guest memory may then be
 * partly written. */
int boot_load(const struct guest_mem *gm, const struct boot_args *a,
	      struct boot_cpu *out, struct kr_err *err);

const char *boot_proto_name(enum boot_proto proto);

/* The e820 map of a guest with ram_size bytes (specs/microvm.md 1.4):
 *   [0, LAYOUT_EBDA_START)             RAM
 *   [LAYOUT_EBDA_START, 1 MiB)         reserved (MP table)
 *   [1 MiB, min(ram, MMIO_START))      RAM
 *   [4 GiB, 4 GiB + ram - MMIO_START)  RAM, if ram > MMIO_START
 * Empty RAM ranges are left out.  Fills e[] and returns the count. */
#define BOOT_E820_MAX		4
#define BOOT_E820_RAM		1
#define BOOT_E820_RESERVED	2
unsigned boot_e820(uint64_t ram_size, struct boot_e820_entry e[BOOT_E820_MAX]);

/* PVH structures (Xen public/arch-x86/hvm/start_info.h; the UAPI lacks
 * them).  Little-endian, as the guest reads them. */
#define BOOT_HVM_START_MAGIC	0x336ec578u
#define BOOT_XEN_ELFNOTE_PHYS32_ENTRY 18

struct boot_hvm_start_info {
	uint32_t magic;
	uint32_t version;		/* 1: the memory map fields exist */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
} __attribute__((packed));

struct boot_hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
} __attribute__((packed));

struct boot_hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;			/* e820 numbering */
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct boot_hvm_start_info) == 56, "hvm_start_info");
_Static_assert(sizeof(struct boot_hvm_modlist_entry) == 32, "hvm_modlist");
_Static_assert(sizeof(struct boot_hvm_memmap_entry) == 24, "hvm_memmap_entry");

#endif
