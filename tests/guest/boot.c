/* Boot-state checks: the CPU state saved by entry.S, then the boot
 * information of either protocol (Linux boot_params or PVH start info):
 * memory map, command line, initrd.  ../../../shared/specs/microvm.md
 * sections 1.3-1.8 describe what the VMM provides. */
#include "guest.h"

#define CR0_PE (1ull << 0)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define RFLAGS_IF (1ull << 9)

#define E820_RAM 1
#define MAX_MEMMAP 128		/* entries accepted (e820 has room for 128) */
#define KEPT_MEMMAP 32		/* entries kept for the checks below */

static struct {
	uint64_t addr, size;
	uint32_t type;
} memmap[KEPT_MEMMAP];
static unsigned memmap_n;

static void memmap_add(uint64_t addr, uint64_t size, uint32_t type)
{
	report("memmap addr=0x%016lx size=0x%016lx type=%u", addr, size, type);
	if (memmap_n < KEPT_MEMMAP)
		memmap[memmap_n++] = (typeof(memmap[0])){ addr, size, type };
}

unsigned memmap_count(void)
{
	return memmap_n;
}

void memmap_get(unsigned i, uint64_t *addr, uint64_t *size, uint32_t *type)
{
	*addr = memmap[i].addr;
	*size = memmap[i].size;
	*type = memmap[i].type;
}

/* Bytes from addr to the end of its memory-map entry (of type `type`, or
 * of any type if type is 0) and below 4 GiB (the end of the guest's
 * mapping); 0 if no such entry holds addr.  Firmware (QEMU's qboot) puts
 * the PVH start info and command line in reserved or ACPI areas, so
 * "readable" means "in some entry"; the image and initrd must be RAM. */
static uint64_t mem_left(uint64_t addr, uint32_t type)
{
	if (addr >= LAYOUT_4G)
		return 0;
	for (unsigned i = 0; i < memmap_n; i++)
		if ((!type || memmap[i].type == type) && addr >= memmap[i].addr &&
		    addr - memmap[i].addr < memmap[i].size) {
			uint64_t left = memmap[i].size - (addr - memmap[i].addr);
			return left < LAYOUT_4G - addr ? left : LAYOUT_4G - addr;
		}
	return 0;
}

static bool in_ram(uint64_t addr, uint64_t size)
{
	uint64_t left = mem_left(addr, E820_RAM);

	return left && size <= left;
}

static bool readable(uint64_t addr, uint64_t size)
{
	uint64_t left = mem_left(addr, 0);

	return left && size <= left;
}

static void check_image_in_ram(void)
{
	uint64_t a = (uintptr_t)__image_start, e = (uintptr_t)__image_end;

	if (in_ram(a, e - a))
		report("image 0x%lx-0x%lx in RAM", a, e);
	else
		fail("image 0x%lx-0x%lx not inside one RAM entry", a, e);
}

/* The command line at addr: in RAM, NUL-terminated within
 * LAYOUT_CMDLINE_MAX bytes. */
static const char *cmdline_at(uint64_t addr)
{
	if (!addr) {
		report("cmdline none");
		return "";
	}
	uint64_t max = mem_left(addr, 0);
	if (max > LAYOUT_CMDLINE_MAX)
		max = LAYOUT_CMDLINE_MAX;
	const char *s = (const char *)(uintptr_t)addr;
	size_t n = strnlen(s, max);	/* reads nothing if max is 0 */
	if (n == max) {
		fail("cmdline at 0x%lx not NUL-terminated in memory", addr);
		return "";
	}
	serial_write("TESTGUEST: cmdline ", 19);
	print_quoted(s, n);
	serial_putc('\n');
	return s;
}

/* ---- CPU state at entry ---------------------------------------------------- */

/* The VMM's page tables at entry (Linux64): is va mapped to itself? */
static bool identity_mapped(uint64_t cr3, uint64_t va)
{
	uint64_t table = cr3 & 0x000ffffffffff000ull;

	for (int level = 3; level >= 0; level--) {
		if (table >= LAYOUT_4G)
			return false;
		uint64_t e = ((const uint64_t *)(uintptr_t)table)[(va >> (12 + 9 * level)) & 511];
		if (!(e & 1))
			return false;
		uint64_t pa = e & 0x000ffffffffff000ull;
		if (level == 0 || (level <= 2 && (e & 0x80))) {
			uint64_t page = 1ull << (12 + 9 * level);
			pa &= ~(page - 1);
			return pa + (va & (page - 1)) == va;
		}
		table = pa;
	}
	return false;
}

static void cpu_check(void)
{
	const struct boot_regs *r = &boot_regs;

	report("cpu cr0=0x%lx cr3=0x%lx cr4=0x%lx efer=0x%lx rflags=0x%lx",
	       r->cr0, r->cr3, r->cr4, r->efer, r->rflags);
	report("cpu cs=0x%lx ds=0x%lx ss=0x%lx rsp=0x%lx gdt=0x%lx/0x%x",
	       r->cs, r->ds, r->ss, r->rsp, r->gdtr_base, r->gdtr_limit);
	if (r->rflags & RFLAGS_IF)
		fail("interrupts enabled at entry");
	if (!(r->cr0 & CR0_PE))
		fail("CR0.PE clear at entry");
	if (r->proto == BOOT_PVH) {
		/* 32-bit protected mode, paging off (pvh.pandoc). */
		if (r->cr0 & CR0_PG)
			fail("PVH: CR0.PG set at entry");
		if (r->efer & (EFER_LME | EFER_LMA))
			fail("PVH: EFER.LME/LMA set at entry");
		if (r->cr4)
			fail("PVH: CR4=0x%lx at entry, expected 0", r->cr4);
		return;
	}
	/* Linux 64-bit boot protocol (boot.rst) plus the VMM's layout. */
	if (!(r->cr0 & CR0_PG) || !(r->cr4 & CR4_PAE) ||
	    (r->efer & (EFER_LME | EFER_LMA)) != (EFER_LME | EFER_LMA))
		fail("linux64: not in long mode at entry");
	if (r->info != LAYOUT_ZERO_PAGE)
		fail("linux64: RSI=0x%lx, expected 0x%llx", r->info, LAYOUT_ZERO_PAGE);
	if (r->rsp != LAYOUT_BOOT_STACK)
		fail("linux64: RSP=0x%lx, expected 0x%llx", r->rsp, LAYOUT_BOOT_STACK);
	static const uint64_t probe[] = { 0, LAYOUT_ZERO_PAGE, LAYOUT_CMDLINE,
					  LAYOUT_HIMEM_START, (1ull << 30) - 8 };
	for (unsigned i = 0; i < ARRAY_SIZE(probe); i++)
		if (!identity_mapped(r->cr3, probe[i])) {
			fail("linux64: 0x%lx not identity-mapped by CR3=0x%lx",
			     probe[i], r->cr3);
			break;
		}
}

/* ---- Linux boot_params (zero page) ---------------------------------------- */
static void linux64_info(struct boot_info *bi)
{
	const uint8_t *bp = (const uint8_t *)(uintptr_t)boot_regs.info;
#define BP(type, off) (*(const type *)(bp + (off)))

	if (boot_regs.info >= LAYOUT_4G - 4096) {
		fail("boot_params at 0x%lx not mapped", boot_regs.info);
		return;
	}
	uint16_t boot_flag = BP(uint16_t, 0x1fe);
	uint32_t header = BP(uint32_t, 0x202);
	uint8_t e820_entries = BP(uint8_t, 0x1e8);
	uint64_t cmdline = BP(uint32_t, 0x228) | (uint64_t)BP(uint32_t, 0x0c8) << 32;
	bi->initrd_addr = BP(uint32_t, 0x218) | (uint64_t)BP(uint32_t, 0x0c0) << 32;
	bi->initrd_size = BP(uint32_t, 0x21c) | (uint64_t)BP(uint32_t, 0x0c4) << 32;
	report("boot_params at 0x%lx: boot_flag=0x%x header=0x%x version=0x%x "
	       "type_of_loader=0x%x loadflags=0x%x cmd_line_ptr=0x%lx "
	       "ramdisk_image=0x%lx ramdisk_size=0x%lx e820_entries=%u",
	       boot_regs.info, boot_flag, header, BP(uint16_t, 0x206),
	       BP(uint8_t, 0x210), BP(uint8_t, 0x211), cmdline,
	       bi->initrd_addr, bi->initrd_size, e820_entries);
	if (boot_flag != 0xaa55)
		fail("boot_params: boot_flag 0x%x, expected 0xaa55", boot_flag);
	if (header != 0x53726448)	/* "HdrS" */
		fail("boot_params: header 0x%x, expected HdrS", header);
	if (BP(uint8_t, 0x1ef))
		fail("boot_params: sentinel (0x1ef) not zero");
	if (!BP(uint8_t, 0x210))
		fail("boot_params: type_of_loader is 0");
	if (!cmdline)
		fail("boot_params: cmd_line_ptr is 0");
	if (!e820_entries || e820_entries > 128)
		fail("boot_params: e820_entries=%u", e820_entries);
	for (unsigned i = 0; i < e820_entries && i < 128; i++) {
		const uint8_t *e = bp + 0x2d0 + 20 * i;
		memmap_add(*(const uint64_t *)e, *(const uint64_t *)(e + 8),
			   *(const uint32_t *)(e + 16));
	}
#undef BP
	check_image_in_ram();
	if (!in_ram(boot_regs.info, 4096))
		fail("boot_params page not in RAM");	/* the VMM's layout */
	bi->cmdline = cmdline_at(cmdline);
}

/* ---- PVH start info ----------------------------------------------------------- */
struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};
#define HVM_START_MAGIC 0x336ec578u

static void pvh_info(struct boot_info *bi)
{
	uint64_t a = boot_regs.info;
	const struct hvm_start_info *si = (const void *)(uintptr_t)a;

	if (!a || a >= LAYOUT_4G - sizeof(*si)) {
		fail("PVH: start info at 0x%lx not mapped", a);
		return;
	}
	report("pvh start_info at 0x%lx: magic=0x%x version=%u flags=0x%x "
	       "nr_modules=%u modlist=0x%lx cmdline=0x%lx rsdp=0x%lx "
	       "memmap=0x%lx memmap_entries=%u", a, si->magic, si->version,
	       si->flags, si->nr_modules, si->modlist_paddr, si->cmdline_paddr,
	       si->rsdp_paddr, si->memmap_paddr, si->memmap_entries);
	if (si->magic != HVM_START_MAGIC) {
		fail("PVH: magic 0x%x, expected 0x%x", si->magic, HVM_START_MAGIC);
		return;
	}
	if (si->version < 1 || !si->memmap_entries || si->memmap_entries > MAX_MEMMAP ||
	    si->memmap_paddr >= LAYOUT_4G - sizeof(struct hvm_memmap_entry) * MAX_MEMMAP) {
		fail("PVH: no usable memory map (version %u, %u entries at 0x%lx)",
		     si->version, si->memmap_entries, si->memmap_paddr);
	} else {
		const struct hvm_memmap_entry *m = (const void *)(uintptr_t)si->memmap_paddr;
		for (unsigned i = 0; i < si->memmap_entries; i++)
			memmap_add(m[i].addr, m[i].size, m[i].type);
		check_image_in_ram();
		if (!readable(a, sizeof(*si)))
			fail("PVH: start info not in the memory map");
	}
	if (si->nr_modules) {
		if (!readable(si->modlist_paddr, sizeof(struct hvm_modlist_entry))) {
			fail("PVH: module list at 0x%lx not in the memory map",
			     si->modlist_paddr);
		} else {
			const struct hvm_modlist_entry *mod =
				(const void *)(uintptr_t)si->modlist_paddr;
			bi->initrd_addr = mod->paddr;
			bi->initrd_size = mod->size;
			report("pvh module 0: paddr=0x%lx size=0x%lx cmdline=0x%lx",
			       mod->paddr, mod->size, mod->cmdline_paddr);
		}
	}
	bi->cmdline = cmdline_at(si->cmdline_paddr);
}

void boot_check(struct boot_info *bi)
{
	*bi = (struct boot_info){ .cmdline = "" };
	cpu_check();
	if (boot_regs.proto == BOOT_PVH)
		pvh_info(bi);
	else
		linux64_info(bi);
	if (bi->initrd_size && !in_ram(bi->initrd_addr, bi->initrd_size)) {
		fail("initrd 0x%lx+0x%lx not inside one RAM entry",
		     bi->initrd_addr, bi->initrd_size);
		bi->initrd_size = 0;
	}
}
