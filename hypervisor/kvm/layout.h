/* The guest-physical and I/O-port layout of a kata-vmm VM (x86-64).
 * ../shared/specs/microvm.md section 0 has the reasoning; it mirrors
 * Firecracker's so that a guest kernel that boots there boots here.
 * The test guest (tests/guest/) relies on these values too. */
#ifndef KR_VMM_LAYOUT_H
#define KR_VMM_LAYOUT_H

/* Boot structures in low RAM (all below 1 MiB, all usable RAM in e820
 * except the MP-table area). */
#define LAYOUT_GDT		0x0500ull	/* 4 x 8-byte boot GDT */
#define LAYOUT_IDT		0x0520ull	/* one zero entry */
#define LAYOUT_PVH_INFO		0x6000ull	/* struct hvm_start_info */
#define LAYOUT_PVH_MODLIST	0x6040ull	/* initrd module entry */
#define LAYOUT_ZERO_PAGE	0x7000ull	/* boot_params, or the PVH memory map */
#define LAYOUT_BOOT_STACK	0x8ff0ull	/* initial RSP/RBP */
#define LAYOUT_PML4		0x9000ull	/* identity map of the first 1 GiB */
#define LAYOUT_PDPT		0xa000ull
#define LAYOUT_PD		0xb000ull
#define LAYOUT_CMDLINE		0x20000ull
#define LAYOUT_CMDLINE_MAX	4096u		/* bytes including the NUL */
#define LAYOUT_EBDA_START	0x9fc00ull	/* e820-reserved from here to 1 MiB: */
#define LAYOUT_MPTABLE		0x9fc00ull	/* the MP table lives here */
#define LAYOUT_HIMEM_START	0x100000ull	/* bzImage protected-mode code */

/* RAM: [0, min(size, MMIO_START)) and, for bigger guests, the rest from
 * 4 GiB up. */
#define LAYOUT_MMIO_START	0xc0000000ull	/* 1 GiB hole below 4 GiB */
#define LAYOUT_4G		0x100000000ull

/* virtio-mmio windows: device n at VIRTIO_BASE + n * VIRTIO_STRIDE with
 * interrupt GSI VIRTIO_GSI + n (announced with virtio_mmio.device= on the
 * kernel command line). */
#define LAYOUT_VIRTIO_BASE	0xd0000000ull
#define LAYOUT_VIRTIO_STRIDE	0x1000ull
#define LAYOUT_VIRTIO_GSI	5u
#define LAYOUT_VIRTIO_MAX	16u

#define LAYOUT_IOAPIC		0xfec00000ull
#define LAYOUT_LAPIC		0xfee00000ull
#define LAYOUT_KVM_IDMAP	0xfffbc000ull	/* 1 page, outside memslots */
#define LAYOUT_KVM_TSS		0xfffbd000ull	/* 3 pages, outside memslots */

/* Legacy ports. */
#define LAYOUT_COM1		0x3f8u		/* 8 ports, GSI 4 */
#define LAYOUT_COM1_GSI		4u
#define LAYOUT_I8042_DATA	0x60u
#define LAYOUT_I8042_CMD	0x64u		/* write 0xfe = reset: the VM ends */

#endif
