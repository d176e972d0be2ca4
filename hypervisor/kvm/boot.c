/* Kernel loader (../shared/specs/microvm.md section 1).
 *
 * Two image formats:
 *   bzImage  64-bit boot protocol: the protected-mode part at 1 MiB, entry
 *            at +0x200, the setup header copied from the file into the zero
 *            page (1.2, 1.3);
 *   ELF64    PT_LOAD segments at p_paddr; the PVH entry when the Xen note is
 *            present (1.8), else the 64-bit protocol with a synthesized
 *            setup header (1.7).
 *
 * The files are untrusted: every size and offset read from them is checked
 * against the file size and guest RAM with overflow-safe arithmetic (a
 * comparison against "limit - start", never "start + size"), file data is
 * read with pread straight into a gm_ptr()-checked range, and the boot
 * structures are built in host memory and copied in with gm_write(). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot.h"
#include "layout.h"
#include "mptable.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "boot structures are written in host byte order: little-endian only"
#endif

#define PAGE_SIZE		0x1000ull
#define IDENT_MAP_END		0x40000000ull	/* boot page tables map this */

/* bzImage setup header (boot.rst). */
#define BZ_HDR_OFF		0x1f1u		/* file and zero page alike */
#define BZ_BOOT_FLAG_OFF	0x1feu
#define BZ_JUMP_LEN_OFF		0x201u		/* header end = 0x202 + it */
#define BZ_MAGIC_OFF		0x202u
#define BZ_VERSION_OFF		0x206u
#define BZ_HDR_AREA_END		0x290u		/* edd_mbr_sig_buffer follows */
#define BZ_BOOT_FLAG		0xaa55u
#define BZ_MAGIC		0x53726448u	/* "HdrS" */
#define BZ_MIN_VERSION		0x020cu		/* 2.12: xloadflags */
#define BZ_SECTOR		512u
#define BZ_ENTRY64_OFF		0x200u		/* startup_64 - load address */
#define BZ_HEAP_END		0xfe00u		/* kvmtool; 16-bit path only */
#define LOADER_UNDEFINED	0xffu		/* type_of_loader "undefined" */

/* Synthesized header for an ELF kernel (Firecracker's values). */
#define ELF_BOOT_VERSION	0x020fu
#define ELF_KERNEL_ALIGN	0x01000000u	/* FC: must be non-zero */

/* Header end, in the zero page, that protocol 2.12 guarantees: through
 * init_size, which the loader needs. */
#define BZ_HDR_MIN_END	(offsetof(struct boot_params, hdr.init_size) + 4)

/* A note area bigger than this is bogus. */
#define MAX_NOTE_BYTES		(1u << 20)

/* Boot GDTs (specs/microvm.md 1.6 and 1.8): null, code, data, TSS at
 * selectors 0x00, 0x08, 0x10, 0x18, as Firecracker lays them out. */
#define SEL_CODE		0x08
#define SEL_DATA		0x10
#define SEL_TSS			0x18
#define GDT_ENTRIES		4
static const uint64_t gdt_linux64[GDT_ENTRIES] = {
	0, 0x00af9b000000ffffull, 0x00cf93000000ffffull, 0x008f8b000000ffffull,
};
static const uint64_t gdt_pvh[GDT_ENTRIES] = {
	0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull, 0x00008b0000000067ull,
};

#define X86_CR0_PE		0x1ull
#define X86_CR0_ET		0x10ull
#define X86_CR0_PG		0x80000000ull
#define X86_CR4_PAE		0x20ull
#define EFER_LME		0x100ull
#define EFER_LMA		0x400ull
#define APIC_BASE_BSP		0x100ull
#define APIC_BASE_ENABLE	0x800ull
#define RFLAGS_RESERVED		0x2ull		/* bit 1 always set; IF clear */
#define PTE_PRESENT		0x1ull
#define PTE_WRITE		0x2ull
#define PTE_PS			0x80ull		/* 2 MiB page in a PD entry */

/* An open image file, named in every message about it. */
struct kfile {
	int fd;
	const char *what;	/* "kernel" or "initrd" */
	const char *path;
	uint64_t size;
};

/* Loader state shared by the steps of boot_load. */
struct loader {
	const struct guest_mem *gm;
	const struct boot_args *a;
	struct boot_cpu *out;
	struct kfile kernel;
	uint64_t low_end;	/* end of RAM below the MMIO hole */
	uint64_t entry;		/* guest-physical entry point */
	int bzimage;
	/* bzImage: the setup header bytes [BZ_HDR_OFF, hdr_end) of the file,
	 * at their zero-page offsets. */
	uint8_t setup[BZ_HDR_AREA_END];
	unsigned hdr_end;
	uint64_t cmdline_max;	/* longest command line, without the NUL */
	uint64_t initrd_top;	/* the initrd must end at or below this */
};

const char *boot_proto_name(enum boot_proto proto)
{
	switch (proto) {
	case BOOT_AUTO:
		return "auto";
	case BOOT_LINUX64:
		return "linux64";
	case BOOT_PVH:
		return "pvh";
	}
	return "invalid";
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* ---- files ---- */

static int kfile_open(struct kfile *f, const char *what, const char *path,
		      struct kr_err *err)
{
	struct stat st;

	f->what = what;
	f->path = path;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return kr_err_sys(err, "%s %s: open", what, path);
	if (fstat(f->fd, &st) < 0)
		return kr_err_sys(err, "%s %s: fstat", what, path);
	/* A device or FIFO has no size to check reads against. */
	if (!S_ISREG(st.st_mode))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s %s: not a regular file", what, path);
	f->size = (uint64_t)st.st_size;
	return 0;
}

static void kfile_close(struct kfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* [off, off + len) must lie inside the file; field names the culprit. */
static int kfile_range(const struct kfile *f, uint64_t off, uint64_t len,
		       const char *field, struct kr_err *err)
{
	if (off > f->size || len > f->size - off)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s %s: %s (bytes 0x%" PRIx64 "+0x%" PRIx64
				  ") runs past the end of the file (%" PRIu64
				  " bytes)", f->what, f->path, field, off, len,
				  f->size);
	return 0;
}

static int kfile_read(const struct kfile *f, uint64_t off, void *buf,
		      uint64_t len, const char *field, struct kr_err *err)
{
	uint8_t *p = buf;

	if (kfile_range(f, off, len, field, err) < 0)
		return -1;
	while (len) {
		/* pread moves at most ~2 GiB per call anyway. */
		size_t chunk = (size_t)min_u64(len, 1u << 30);
		ssize_t n = pread(f->fd, p, chunk, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kr_err_sys(err, "%s %s: read %s at 0x%" PRIx64,
					  f->what, f->path, field, off);
		if (n == 0)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "%s %s: file shrank while reading %s"
					  " (end of file at 0x%" PRIx64 ")",
					  f->what, f->path, field, off);
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Copy file bytes [off, off + len) to guest memory at gpa. */
static int kfile_load(const struct guest_mem *gm, const struct kfile *f,
		      uint64_t off, uint64_t gpa, uint64_t len,
		      const char *field, struct kr_err *err)
{
	void *dst = gm_ptr(gm, gpa, len);

	if (!dst)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "%s %s: %s: guest range 0x%" PRIx64 "+0x%"
				  PRIx64 " is outside guest memory", f->what,
				  f->path, field, gpa, len);
	return kfile_read(f, off, dst, len, field, err);
}

/* ---- e820 ---- */

static void e820_add(struct boot_e820_entry *e, unsigned *n, uint64_t addr,
		     uint64_t size, uint32_t type)
{
	if (size == 0)
		return;
	e[*n].addr = addr;
	e[*n].size = size;
	e[*n].type = type;
	(*n)++;
}

unsigned boot_e820(uint64_t ram_size, struct boot_e820_entry e[BOOT_E820_MAX])
{
	uint64_t low = min_u64(ram_size, LAYOUT_MMIO_START);
	unsigned n = 0;

	e820_add(e, &n, 0, min_u64(low, LAYOUT_EBDA_START), BOOT_E820_RAM);
	/* Reserved even when RAM ends earlier: the MP table lives there. */
	e820_add(e, &n, LAYOUT_EBDA_START,
		 LAYOUT_HIMEM_START - LAYOUT_EBDA_START, BOOT_E820_RESERVED);
	if (low > LAYOUT_HIMEM_START)
		e820_add(e, &n, LAYOUT_HIMEM_START, low - LAYOUT_HIMEM_START,
			 BOOT_E820_RAM);
	if (ram_size > LAYOUT_MMIO_START)
		e820_add(e, &n, LAYOUT_4G, ram_size - LAYOUT_MMIO_START,
			 BOOT_E820_RAM);
	return n;
}

/* ---- bzImage ---- */

static uint16_t setup16(const struct loader *l, unsigned off)
{
	uint16_t v;

	memcpy(&v, l->setup + off, 2);
	return v;
}

static uint32_t setup32(const struct loader *l, unsigned off)
{
	uint32_t v;

	memcpy(&v, l->setup + off, 4);
	return v;
}

static uint64_t setup64(const struct loader *l, unsigned off)
{
	uint64_t v;

	memcpy(&v, l->setup + off, 8);
	return v;
}

#define HDR(field) (offsetof(struct boot_params, hdr.field))

/* Read and check the setup header: magic numbers, protocol version, the
 * header's own length, the 64-bit entry flag. */
static int bz_read_header(struct loader *l, struct kr_err *err)
{
	const struct kfile *f = &l->kernel;
	uint16_t version;

	if (f->size < BZ_VERSION_OFF + 2)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: %" PRIu64 " bytes is too short"
				  " for a bzImage setup header (or an ELF"
				  " header)",
				  f->path, f->size);
	if (kfile_read(f, 0, l->setup,
		       min_u64(f->size, sizeof(l->setup)), "setup header",
		       err) < 0)
		return -1;
	if (setup16(l, BZ_BOOT_FLAG_OFF) != BZ_BOOT_FLAG)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: boot_flag 0x%04x at 0x1fe is not"
				  " 0xaa55: neither a bzImage nor an ELF file",
				  f->path, setup16(l, BZ_BOOT_FLAG_OFF));
	if (setup32(l, BZ_MAGIC_OFF) != BZ_MAGIC)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: no \"HdrS\" magic at 0x202 (found"
				  " 0x%08x): not a bzImage with a boot"
				  " protocol >= 2.00", f->path,
				  setup32(l, BZ_MAGIC_OFF));
	version = setup16(l, BZ_VERSION_OFF);
	if (version < BZ_MIN_VERSION)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: boot protocol %u.%02u is older"
				  " than 2.12, which the 64-bit entry needs",
				  f->path, version >> 8, version & 0xff);
	l->hdr_end = BZ_MAGIC_OFF + l->setup[BZ_JUMP_LEN_OFF];
	if (l->hdr_end > BZ_HDR_AREA_END)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: setup header length byte 0x%02x"
				  " (at 0x201) puts its end at 0x%x, past the"
				  " header area of the zero page (0x%x)",
				  f->path, l->setup[BZ_JUMP_LEN_OFF],
				  l->hdr_end, BZ_HDR_AREA_END);
	if (l->hdr_end < BZ_HDR_MIN_END)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: setup header ends at 0x%x,"
				  " before init_size (0x%zx) which protocol"
				  " %u.%02u has",
				  f->path, l->hdr_end, (size_t)BZ_HDR_MIN_END,
				  version >> 8, version & 0xff);
	if (kfile_range(f, 0, l->hdr_end, "setup header", err) < 0)
		return -1;
	/* Only the header counts: the bytes read past it are not ours. */
	memset(l->setup + l->hdr_end, 0, sizeof(l->setup) - l->hdr_end);
	if (!(setup16(l, HDR(xloadflags)) & XLF_KERNEL_64))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: xloadflags 0x%04x lacks"
				  " XLF_KERNEL_64: no 64-bit entry point",
				  f->path, setup16(l, HDR(xloadflags)));
	return 0;
}

/* Where the kernel runs after decompressing itself: the decompressor
 * (arch/x86/boot/compressed/head_64.S) uses the load address rounded up to
 * kernel_alignment when relocatable, never below LOAD_PHYSICAL_ADDR (which
 * the header publishes as pref_address). */
static int bz_run_address(const struct loader *l, uint64_t load,
			  uint64_t *run, struct kr_err *err)
{
	uint32_t align = setup32(l, HDR(kernel_alignment));

	*run = load;
	if (l->setup[HDR(relocatable_kernel)]) {
		if (align == 0 || (align & (align - 1)))
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "kernel %s: kernel_alignment 0x%x is"
					  " not a power of two",
					  l->kernel.path, align);
		*run = (load + align - 1) & ~((uint64_t)align - 1);
	}
	*run = max_u64(*run, setup64(l, HDR(pref_address)));
	return 0;
}

/* Check that the protected-mode code and the decompressed kernel fit in
 * low RAM and in the identity map, then load the code at 1 MiB. */
static int bz_load(struct loader *l, struct kr_err *err)
{
	const struct kfile *f = &l->kernel;
	const uint64_t load = LAYOUT_HIMEM_START;
	unsigned sects;
	uint64_t setup_size, pm_size, run, init_size, need;

	if (bz_read_header(l, err) < 0)
		return -1;
	sects = l->setup[HDR(setup_sects)];
	if (sects == 0)		/* boot.rst: 0 means 4 */
		sects = 4;
	setup_size = (sects + 1ull) * BZ_SECTOR;
	if (setup_size > f->size)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: setup_sects %u runs past the end"
				  " of the file (%" PRIu64 " bytes)", f->path,
				  sects, f->size);
	pm_size = f->size - setup_size;
	if (pm_size <= BZ_ENTRY64_OFF)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: %" PRIu64 " bytes of"
				  " protected-mode code after setup_sects %u,"
				  " too few to hold the 64-bit entry at +0x%x",
				  f->path, pm_size, sects, BZ_ENTRY64_OFF);
	if (pm_size > l->low_end - load)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
				  "kernel %s: %" PRIu64 " bytes of"
				  " protected-mode code at 0x%" PRIx64 " do not"
				  " fit in guest RAM below 0x%" PRIx64,
				  f->path, pm_size, load, l->low_end);
	if (bz_run_address(l, load, &run, err) < 0)
		return -1;
	init_size = setup32(l, HDR(init_size));
	if (run > l->low_end || init_size > l->low_end - run)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
				  "kernel %s: runs at 0x%" PRIx64 " and needs"
				  " init_size 0x%" PRIx64 " bytes there, but"
				  " guest RAM below the MMIO hole ends at 0x%"
				  PRIx64, f->path, run, init_size, l->low_end);
	need = run + init_size;
	/* boot.rst: init_size from the run address must be identity-mapped. */
	if (need > IDENT_MAP_END)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: needs memory up to 0x%" PRIx64
				  " (pref_address/alignment + init_size), past"
				  " the 1 GiB the boot page tables map",
				  f->path, need);
	if (kfile_load(l->gm, f, setup_size, load, pm_size,
		       "protected-mode code", err) < 0)
		return -1;
	l->entry = load + BZ_ENTRY64_OFF;
	l->out->kernel_start = load;
	l->out->kernel_end = max_u64(load + pm_size, need);
	l->cmdline_max = min_u64(setup32(l, HDR(cmdline_size)),
				 LAYOUT_CMDLINE_MAX - 1);
	/* initrd_addr_max is the highest byte the initrd may occupy. */
	l->initrd_top = min_u64(l->low_end,
				(uint64_t)setup32(l, HDR(initrd_addr_max)) + 1);
	return 0;
}

/* ---- ELF ---- */

static int elf_check_header(const struct loader *l, const Elf64_Ehdr *eh,
			    struct kr_err *err)
{
	const char *path = l->kernel.path;
	const char *why = NULL;

	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		why = "not ELF64 (EI_CLASS)";
	else if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		why = "not little-endian (EI_DATA)";
	else if (eh->e_ident[EI_VERSION] != EV_CURRENT)
		why = "unknown ELF version (EI_VERSION)";
	else if (eh->e_machine != EM_X86_64)
		why = "not an x86-64 executable (e_machine)";
	else if (eh->e_type != ET_EXEC)
		why = "not a static executable (e_type is not ET_EXEC)";
	else if (eh->e_phentsize != sizeof(Elf64_Phdr))
		why = "e_phentsize is not 56";
	else if (eh->e_phnum == 0)
		why = "no program headers (e_phnum 0)";
	else if (eh->e_phnum == PN_XNUM)
		why = "extended program header numbering is not supported";
	if (why)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "kernel %s: %s",
				  path, why);
	return 0;
}

/* Read a table of n entries of size entsize at off: phdrs or shdrs. */
static void *elf_read_table(const struct kfile *f, uint64_t off, unsigned n,
			    size_t entsize, const char *field,
			    struct kr_err *err)
{
	uint64_t len = (uint64_t)n * entsize;	/* n < 2^16: no overflow */
	void *t;

	if (kfile_range(f, off, len, field, err) < 0)
		return NULL;
	t = malloc(len);
	if (!t) {
		kr_err_errno(err, ENOMEM, "kernel %s: %s", f->path, field);
		return NULL;
	}
	if (kfile_read(f, off, t, len, field, err) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

/* Check one PT_LOAD against the file and low RAM, copy it in and zero its
 * tail (guest RAM may not be fresh). */
static int elf_load_segment(struct loader *l, const Elf64_Phdr *ph,
			    unsigned i, struct kr_err *err)
{
	const struct kfile *f = &l->kernel;
	char field[64];
	uint8_t *dst;

	if (ph->p_filesz > ph->p_memsz)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: segment %u: p_filesz 0x%" PRIx64
				  " is larger than p_memsz 0x%" PRIx64,
				  f->path, i, ph->p_filesz, ph->p_memsz);
	snprintf(field, sizeof(field), "segment %u (p_offset, p_filesz)", i);
	if (kfile_range(f, ph->p_offset, ph->p_filesz, field, err) < 0)
		return -1;
	/* Below 1 MiB live the boot structures, which would overwrite it. */
	if (ph->p_paddr < LAYOUT_HIMEM_START || ph->p_paddr > l->low_end ||
	    ph->p_memsz > l->low_end - ph->p_paddr)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED,
				  "kernel %s: segment %u (p_paddr 0x%" PRIx64
				  ", p_memsz 0x%" PRIx64 ") is outside guest"
				  " RAM [0x%llx, 0x%" PRIx64 ")", f->path, i,
				  ph->p_paddr, ph->p_memsz, LAYOUT_HIMEM_START,
				  l->low_end);
	dst = gm_ptr(l->gm, ph->p_paddr, ph->p_memsz);
	if (!dst)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: segment %u: guest range 0x%"
				  PRIx64 "+0x%" PRIx64 " is outside guest"
				  " memory",
				  f->path, i, ph->p_paddr, ph->p_memsz);
	if (kfile_read(f, ph->p_offset, dst, ph->p_filesz, field, err) < 0)
		return -1;
	memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	return 0;
}

static int elf_load_segments(struct loader *l, const Elf64_Phdr *ph,
			     unsigned n, struct kr_err *err)
{
	uint64_t start = UINT64_MAX, end = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		if (elf_load_segment(l, &ph[i], i, err) < 0)
			return -1;
		start = min_u64(start, ph[i].p_paddr);
		end = max_u64(end, ph[i].p_paddr + ph[i].p_memsz);
	}
	if (end == 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: no non-empty PT_LOAD segment",
				  l->kernel.path);
	l->out->kernel_start = start;
	l->out->kernel_end = end;
	return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* The descriptor of the PVH note: the 32-bit physical entry point. */
static int pvh_note_entry(const struct kfile *f, const uint8_t *desc,
			  uint32_t size, const char *where, uint64_t *entry,
			  struct kr_err *err)
{
	uint32_t e32;

	/* 4 bytes from 32-bit Linux builds, 8 from 64-bit ones. */
	if (size == 8) {
		memcpy(entry, desc, 8);
	} else if (size == 4) {
		memcpy(&e32, desc, 4);
		*entry = e32;
	} else {
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: %s: PVH entry note has a %u-byte"
				  " descriptor, not 4 or 8", f->path, where,
				  size);
	}
	return 1;
}

/* Walk a note area (ELF gABI: namesz, descsz, type, then the name and the
 * descriptor, each starting at a multiple of the area's alignment, 4 or 8).
 * Returns 1 with *entry set when the PVH entry note is there, 0 if not, -1
 * if malformed.  len is at most MAX_NOTE_BYTES and the sizes are 32-bit:
 * the 64-bit sums below cannot overflow. */
static int find_pvh_note(const struct kfile *f, const uint8_t *p,
			 uint64_t len, uint64_t align, const char *where,
			 uint64_t *entry, struct kr_err *err)
{
	uint64_t off = 0;

	align = align == 8 ? 8 : 4;
	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name = off + sizeof(nh), desc;

		memcpy(&nh, p + off, sizeof(nh));
		desc = align_up(name + nh.n_namesz, align);
		if (nh.n_namesz > len - name || desc > len ||
		    nh.n_descsz > len - desc)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "kernel %s: %s: note at +0x%" PRIx64
					  " (namesz %u, descsz %u) runs past"
					  " the end of the %" PRIu64 " bytes",
					  f->path, where, off, nh.n_namesz,
					  nh.n_descsz, len);
		if (nh.n_type == BOOT_XEN_ELFNOTE_PHYS32_ENTRY &&
		    nh.n_namesz == 4 && memcmp(p + name, "Xen", 4) == 0)
			return pvh_note_entry(f, p + desc, nh.n_descsz, where,
					      entry, err);
		/* The last note's padding may be missing. */
		off = min_u64(align_up(desc + nh.n_descsz, align), len);
	}
	return 0;
}

/* Read one note area from the file and look for the PVH note in it. */
static int scan_notes(const struct kfile *f, uint64_t off, uint64_t len,
		      uint64_t align, const char *where, uint64_t *entry,
		      struct kr_err *err)
{
	uint8_t *buf;
	int ret;

	if (kfile_range(f, off, len, where, err) < 0)
		return -1;
	if (len > MAX_NOTE_BYTES)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: %s is %" PRIu64 " bytes, more"
				  " than %u", f->path, where, len,
				  MAX_NOTE_BYTES);
	buf = malloc(len ? len : 1);
	if (!buf)
		return kr_err_errno(err, ENOMEM, "kernel %s: %s", f->path,
				    where);
	ret = kfile_read(f, off, buf, len, where, err);
	if (ret == 0)
		ret = find_pvh_note(f, buf, len, align, where, entry, err);
	free(buf);
	return ret;
}

/* PT_NOTE segments first; a file without one may still carry the note in
 * an SHT_NOTE section. */
static int elf_find_pvh(const struct loader *l, const Elf64_Ehdr *eh,
			const Elf64_Phdr *ph, uint64_t *entry,
			struct kr_err *err)
{
	const struct kfile *f = &l->kernel;
	Elf64_Shdr *sh;
	char where[64];
	unsigned i;
	int ret = 0;

	for (i = 0; i < eh->e_phnum && ret == 0; i++) {
		if (ph[i].p_type != PT_NOTE)
			continue;
		snprintf(where, sizeof(where), "PT_NOTE segment %u", i);
		ret = scan_notes(f, ph[i].p_offset, ph[i].p_filesz,
				 ph[i].p_align, where, entry, err);
	}
	if (ret != 0 || eh->e_shoff == 0 || eh->e_shnum == 0)
		return ret;
	if (eh->e_shentsize != sizeof(Elf64_Shdr))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: e_shentsize %u is not %zu",
				  f->path, eh->e_shentsize, sizeof(Elf64_Shdr));
	sh = elf_read_table(f, eh->e_shoff, eh->e_shnum, sizeof(*sh),
			    "section header table (e_shoff, e_shnum)", err);
	if (!sh)
		return -1;
	for (i = 0; i < eh->e_shnum && ret == 0; i++) {
		if (sh[i].sh_type != SHT_NOTE)
			continue;
		snprintf(where, sizeof(where), "SHT_NOTE section %u", i);
		ret = scan_notes(f, sh[i].sh_offset, sh[i].sh_size,
				 sh[i].sh_addralign, where, entry, err);
	}
	free(sh);
	return ret;
}

/* The physical entry of the 64-bit protocol: e_entry as is when a segment
 * holds it at its physical address, else translated from the kernel's
 * virtual mapping of the segment that holds it (vmlinux links e_entry
 * physical, other ELF kernels may not). */
static int elf_entry64(const struct loader *l, const Elf64_Ehdr *eh,
		       const Elf64_Phdr *ph, uint64_t *entry,
		       struct kr_err *err)
{
	uint64_t e = eh->e_entry;
	unsigned i;

	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && e >= ph[i].p_paddr &&
		    e - ph[i].p_paddr < ph[i].p_memsz) {
			*entry = e;
			return 0;
		}
	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && e >= ph[i].p_vaddr &&
		    e - ph[i].p_vaddr < ph[i].p_memsz) {
			*entry = e - ph[i].p_vaddr + ph[i].p_paddr;
			return 0;
		}
	return kr_err_set(err, KR_INVALID_ARGUMENT,
			  "kernel %s: e_entry 0x%" PRIx64 " is in no PT_LOAD"
			  " segment (physical or virtual)", l->kernel.path, e);
}

/* The PVH entry is a physical address; it must be inside loaded code. */
static int elf_check_pvh_entry(const struct loader *l, const Elf64_Ehdr *eh,
			       const Elf64_Phdr *ph, uint64_t e,
			       struct kr_err *err)
{
	unsigned i;

	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && e >= ph[i].p_paddr &&
		    e - ph[i].p_paddr < ph[i].p_memsz)
			return 0;
	return kr_err_set(err, KR_INVALID_ARGUMENT,
			  "kernel %s: PVH entry 0x%" PRIx64 " (Xen note type"
			  " 18) is in no PT_LOAD segment", l->kernel.path, e);
}

/* Which protocol, given what was asked and whether the PVH note exists. */
static int elf_choose_proto(struct loader *l, int has_pvh,
			    struct kr_err *err)
{
	switch (l->a->proto) {
	case BOOT_AUTO:
		l->out->proto = has_pvh ? BOOT_PVH : BOOT_LINUX64;
		return 0;
	case BOOT_LINUX64:
		l->out->proto = BOOT_LINUX64;
		return 0;
	case BOOT_PVH:
		if (!has_pvh)
			return kr_err_set(err, KR_INVALID_ARGUMENT,
					  "kernel %s: PVH boot asked for, but"
					  " the ELF has no Xen PVH entry note"
					  " (XEN_ELFNOTE_PHYS32_ENTRY)",
					  l->kernel.path);
		l->out->proto = BOOT_PVH;
		return 0;
	}
	return kr_err_set(err, KR_INVALID_ARGUMENT, "boot: bad protocol %d",
			  (int)l->a->proto);
}

static int elf_load_phdrs(struct loader *l, const Elf64_Ehdr *eh,
			  const Elf64_Phdr *ph, struct kr_err *err)
{
	uint64_t pvh_entry = 0;
	int has_pvh;

	if (elf_load_segments(l, ph, eh->e_phnum, err) < 0)
		return -1;
	has_pvh = elf_find_pvh(l, eh, ph, &pvh_entry, err);
	if (has_pvh < 0 || elf_choose_proto(l, has_pvh, err) < 0)
		return -1;
	if (l->out->proto == BOOT_PVH) {
		l->entry = pvh_entry;
		return elf_check_pvh_entry(l, eh, ph, pvh_entry, err);
	}
	if (elf_entry64(l, eh, ph, &l->entry, err) < 0)
		return -1;
	if (l->out->kernel_end > IDENT_MAP_END)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: ends at 0x%" PRIx64 ", past the"
				  " 1 GiB the boot page tables map",
				  l->kernel.path, l->out->kernel_end);
	return 0;
}

static int elf_load(struct loader *l, struct kr_err *err)
{
	const struct kfile *f = &l->kernel;
	Elf64_Ehdr eh;
	Elf64_Phdr *ph;
	int ret;

	if (kfile_read(f, 0, &eh, sizeof(eh), "ELF header", err) < 0 ||
	    elf_check_header(l, &eh, err) < 0)
		return -1;
	ph = elf_read_table(f, eh.e_phoff, eh.e_phnum, sizeof(*ph),
			    "program header table (e_phoff, e_phnum)", err);
	if (!ph)
		return -1;
	ret = elf_load_phdrs(l, &eh, ph, err);
	free(ph);
	l->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	l->initrd_top = l->low_end;
	return ret;
}

/* ---- kernel, initrd, command line ---- */

static int load_kernel(struct loader *l, struct kr_err *err)
{
	uint8_t magic[SELFMAG] = { 0 };

	if (kfile_open(&l->kernel, "kernel", l->a->kernel, err) < 0)
		return -1;
	if (l->kernel.size >= SELFMAG &&
	    kfile_read(&l->kernel, 0, magic, SELFMAG, "magic", err) < 0)
		return -1;
	if (memcmp(magic, ELFMAG, SELFMAG) == 0)
		return elf_load(l, err);
	if (l->a->proto == BOOT_PVH)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "kernel %s: PVH boot asked for, but the file"
				  " is not ELF (a bzImage has no PVH entry: use"
				  " vmlinux)", l->kernel.path);
	l->bzimage = 1;
	l->out->proto = BOOT_LINUX64;
	return bz_load(l, err);
}

/* Page-aligned, as high as allowed in low RAM, above the kernel. */
static int load_initrd(struct loader *l, struct kr_err *err)
{
	const char *top = l->bzimage ? "end of RAM or initrd_addr_max" :
				       "end of RAM";
	uint64_t lowest = align_up(l->out->kernel_end, PAGE_SIZE), addr;
	struct kfile f = { .fd = -1 };
	int ret = -1;

	if (!l->a->initrd)
		return 0;
	if (kfile_open(&f, "initrd", l->a->initrd, err) < 0)
		goto out;
	if (f.size == 0) {
		kr_err_set(err, KR_INVALID_ARGUMENT, "initrd %s: empty file",
			   f.path);
		goto out;
	}
	if (f.size > l->initrd_top ||
	    ((l->initrd_top - f.size) & ~(PAGE_SIZE - 1)) < lowest) {
		kr_err_set(err, KR_RESOURCE_EXHAUSTED,
			   "initrd %s: %" PRIu64 " bytes do not fit in guest"
			   " RAM between the kernel's end (0x%" PRIx64 ")"
			   " and the %s (0x%" PRIx64 ")", f.path, f.size,
			   lowest, top, l->initrd_top);
		goto out;
	}
	addr = (l->initrd_top - f.size) & ~(PAGE_SIZE - 1);
	if (kfile_load(l->gm, &f, 0, addr, f.size, "contents", err) < 0)
		goto out;
	l->out->initrd_start = addr;
	l->out->initrd_size = f.size;
	ret = 0;
out:
	kfile_close(&f);
	return ret;
}

/* The whole LAYOUT_CMDLINE_MAX area is written: Linux copies
 * COMMAND_LINE_SIZE bytes from cmd_line_ptr whatever the string length. */
static int write_cmdline(struct loader *l, struct kr_err *err)
{
	const char *c = l->a->cmdline ? l->a->cmdline : "";
	char buf[LAYOUT_CMDLINE_MAX] = { 0 };
	size_t n = strlen(c);

	if (n > LAYOUT_CMDLINE_MAX - 1)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "command line is %zu bytes, more than the %u"
				  " the VMM has room for", n,
				  LAYOUT_CMDLINE_MAX - 1);
	if (n > l->cmdline_max)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "command line is %zu bytes, more than kernel"
				  " %s accepts (cmdline_size %" PRIu64 ")", n,
				  l->kernel.path, l->cmdline_max);
	memcpy(buf, c, n);
	return gm_write(l->gm, LAYOUT_CMDLINE, buf, sizeof(buf), err);
}

/* ---- zero page, PVH start info ---- */

/* Fields common to both kinds of zero page. */
static void zero_page_common(const struct loader *l, struct boot_params *bp)
{
	const struct boot_cpu *o = l->out;

	bp->hdr.type_of_loader = LOADER_UNDEFINED;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
	bp->hdr.ramdisk_image = (uint32_t)o->initrd_start;
	bp->ext_ramdisk_image = (uint32_t)(o->initrd_start >> 32);
	bp->hdr.ramdisk_size = (uint32_t)o->initrd_size;
	bp->ext_ramdisk_size = (uint32_t)(o->initrd_size >> 32);
	bp->e820_entries = (uint8_t)boot_e820(l->a->ram_size, bp->e820_table);
}

static int write_zero_page(const struct loader *l, struct kr_err *err)
{
	struct boot_params *bp;
	int ret;

	_Static_assert(sizeof(*bp) == PAGE_SIZE, "boot_params is a page");
	bp = calloc(1, sizeof(*bp));
	if (!bp)
		return kr_err_errno(err, ENOMEM, "zero page");
	if (l->bzimage) {
		/* The header only: copying from below 0x1f1 would carry the
		 * file's 0xff sentinel over (specs/microvm.md 1.3). */
		memcpy((uint8_t *)bp + BZ_HDR_OFF, l->setup + BZ_HDR_OFF,
		       l->hdr_end - BZ_HDR_OFF);
		bp->hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
		bp->hdr.heap_end_ptr = BZ_HEAP_END;
		bp->hdr.setup_data = 0;		/* we pass none */
	} else {
		bp->hdr.boot_flag = BZ_BOOT_FLAG;
		bp->hdr.header = BZ_MAGIC;
		bp->hdr.version = ELF_BOOT_VERSION;
		bp->hdr.kernel_alignment = ELF_KERNEL_ALIGN;
		bp->hdr.cmdline_size = (uint32_t)strlen(l->a->cmdline ?
							l->a->cmdline : "");
	}
	zero_page_common(l, bp);
	ret = gm_write(l->gm, LAYOUT_ZERO_PAGE, bp, sizeof(*bp), err);
	free(bp);
	return ret;
}

static int write_pvh_info(const struct loader *l, struct kr_err *err)
{
	const struct boot_cpu *o = l->out;
	struct boot_e820_entry e[BOOT_E820_MAX];
	struct boot_hvm_memmap_entry map[BOOT_E820_MAX] = { { 0 } };
	struct boot_hvm_start_info si = {
		.magic = BOOT_HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.memmap_paddr = LAYOUT_ZERO_PAGE,
	};
	unsigned n = boot_e820(l->a->ram_size, e), i;

	for (i = 0; i < n; i++) {
		map[i].addr = e[i].addr;
		map[i].size = e[i].size;
		map[i].type = e[i].type;
	}
	si.memmap_entries = n;
	if (o->initrd_size) {
		struct boot_hvm_modlist_entry mod = {
			.paddr = o->initrd_start,
			.size = o->initrd_size,
		};

		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_PVH_MODLIST;
		if (gm_write(l->gm, LAYOUT_PVH_MODLIST, &mod, sizeof(mod),
			     err) < 0)
			return -1;
	}
	if (gm_write(l->gm, LAYOUT_ZERO_PAGE, map, n * sizeof(map[0]),
		     err) < 0)
		return -1;
	return gm_write(l->gm, LAYOUT_PVH_INFO, &si, sizeof(si), err);
}

/* ---- CPU state ---- */

/* The hidden segment state KVM needs, decoded from the GDT entry the
 * selector points at so that the two cannot disagree. */
static struct kvm_segment seg_from_gdt(const uint64_t *gdt, uint16_t sel)
{
	uint64_t d = gdt[sel >> 3];
	struct kvm_segment s = {
		.base = ((d >> 16) & 0xffffff) | ((d >> 56) & 0xff) << 24,
		.limit = (uint32_t)((d & 0xffff) | ((d >> 48) & 0xf) << 16),
		.selector = sel,
		.type = (d >> 40) & 0xf,
		.s = (d >> 44) & 1,
		.dpl = (d >> 45) & 3,
		.present = (d >> 47) & 1,
		.avl = (d >> 52) & 1,
		.l = (d >> 53) & 1,
		.db = (d >> 54) & 1,
		.g = (d >> 55) & 1,
	};

	if (s.g)	/* KVM takes the limit in bytes */
		s.limit = (s.limit << 12) | 0xfff;
	return s;
}

static void set_segments(struct kvm_sregs *sr, const uint64_t *gdt)
{
	sr->cs = seg_from_gdt(gdt, SEL_CODE);
	sr->ds = seg_from_gdt(gdt, SEL_DATA);
	sr->es = sr->ds;
	sr->fs = sr->ds;
	sr->gs = sr->ds;
	sr->ss = sr->ds;
	sr->tr = seg_from_gdt(gdt, SEL_TSS);
	/* What a vCPU reset leaves (Intel SDM 9.1.1): an empty LDT. */
	sr->ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2,
					.present = 1 };
	sr->gdt.base = LAYOUT_GDT;
	sr->gdt.limit = GDT_ENTRIES * 8 - 1;
	sr->idt.base = LAYOUT_IDT;
	sr->idt.limit = 7;
	sr->apic_base = LAYOUT_LAPIC | APIC_BASE_ENABLE | APIC_BASE_BSP;
}

static int write_tables(const struct loader *l, const uint64_t *gdt,
			struct kr_err *err)
{
	uint64_t idt = 0;

	if (gm_write(l->gm, LAYOUT_GDT, gdt, GDT_ENTRIES * 8, err) < 0)
		return -1;
	return gm_write(l->gm, LAYOUT_IDT, &idt, sizeof(idt), err);
}

/* Identity map of the first 1 GiB with 2 MiB pages: PML4[0] -> PDPT[0] ->
 * one PD.  Whole pages are written: guest RAM may hold old data. */
static int write_page_tables(const struct loader *l, struct kr_err *err)
{
	uint64_t *pt = calloc(3, PAGE_SIZE);
	uint64_t *pml4 = pt, *pdpt = pt + 512, *pd = pt + 1024;
	unsigned i;
	int ret;

	if (!pt)
		return kr_err_errno(err, ENOMEM, "boot page tables");
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITE;
	pdpt[0] = LAYOUT_PD | PTE_PRESENT | PTE_WRITE;
	for (i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | PTE_PRESENT | PTE_WRITE | PTE_PS;
	ret = gm_write(l->gm, LAYOUT_PML4, pml4, PAGE_SIZE, err);
	if (ret == 0)
		ret = gm_write(l->gm, LAYOUT_PDPT, pdpt, PAGE_SIZE, err);
	if (ret == 0)
		ret = gm_write(l->gm, LAYOUT_PD, pd, PAGE_SIZE, err);
	free(pt);
	return ret;
}

/* 64-bit mode, paging on (specs/microvm.md 1.6). */
static int setup_cpu_linux64(struct loader *l, struct kr_err *err)
{
	struct boot_cpu *o = l->out;

	if (write_page_tables(l, err) < 0 ||
	    write_tables(l, gdt_linux64, err) < 0 ||
	    write_zero_page(l, err) < 0)
		return -1;
	set_segments(&o->sregs, gdt_linux64);
	/* CD/NW clear: the decompressor should not run with caches off. */
	o->sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
	o->sregs.cr3 = LAYOUT_PML4;
	o->sregs.cr4 = X86_CR4_PAE;
	o->sregs.efer = EFER_LME | EFER_LMA;
	o->regs.rip = l->entry;
	o->regs.rsi = LAYOUT_ZERO_PAGE;
	o->regs.rsp = LAYOUT_BOOT_STACK;
	o->regs.rbp = LAYOUT_BOOT_STACK;
	o->regs.rflags = RFLAGS_RESERVED;
	return 0;
}

/* 32-bit protected mode, paging off, EBX = start info (the PVH ABI). */
static int setup_cpu_pvh(struct loader *l, struct kr_err *err)
{
	struct boot_cpu *o = l->out;

	if (write_tables(l, gdt_pvh, err) < 0 ||
	    write_pvh_info(l, err) < 0)
		return -1;
	set_segments(&o->sregs, gdt_pvh);
	o->sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
	o->regs.rip = l->entry;
	o->regs.rbx = LAYOUT_PVH_INFO;
	o->regs.rflags = RFLAGS_RESERVED;
	return 0;
}

static int check_args(const struct guest_mem *gm, const struct boot_args *a,
		      struct boot_cpu *out, struct kr_err *err)
{
	if (!gm || !a || !out || !a->kernel)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "boot: missing guest memory, arguments or"
				  " kernel path");
	/* Checked here too so that nothing is loaded for nothing. */
	if (a->vcpus == 0 || a->vcpus > MPTABLE_MAX_VCPUS)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "boot: %u vCPUs, must be 1..%u", a->vcpus,
				  MPTABLE_MAX_VCPUS);
	if (a->proto != BOOT_AUTO && a->proto != BOOT_LINUX64 &&
	    a->proto != BOOT_PVH)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "boot: bad protocol %d", (int)a->proto);
	/* The boot structures sit below 1 MiB, every kernel above it. */
	if (a->ram_size <= LAYOUT_HIMEM_START)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "boot: %" PRIu64 " bytes of RAM, need more"
				  " than 1 MiB", a->ram_size);
	return 0;
}

int boot_load(const struct guest_mem *gm, const struct boot_args *a,
	      struct boot_cpu *out, struct kr_err *err)
{
	struct loader *l;
	int ret = -1;

	if (out)
		memset(out, 0, sizeof(*out));
	if (check_args(gm, a, out, err) < 0)
		return -1;
	/* Heap: the loader carries a copy of the setup header. */
	l = calloc(1, sizeof(*l));
	if (!l)
		return kr_err_errno(err, ENOMEM, "boot");
	l->gm = gm;
	l->a = a;
	l->out = out;
	l->kernel.fd = -1;
	l->low_end = min_u64(a->ram_size, LAYOUT_MMIO_START);

	if (load_kernel(l, err) < 0 || write_cmdline(l, err) < 0 ||
	    load_initrd(l, err) < 0)
		goto out;
	if (out->proto == BOOT_PVH)
		ret = setup_cpu_pvh(l, err);
	else
		ret = setup_cpu_linux64(l, err);
	if (ret == 0)
		ret = mptable_write(gm, a->vcpus, err);
out:
	kfile_close(&l->kernel);
	free(l);
	return ret;
}
