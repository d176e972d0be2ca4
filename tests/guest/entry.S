/* Entry points of the test guest (README.md).
 *
 *  linux64_start  the ELF e_entry: Linux 64-bit boot protocol.  Long mode,
 *                 paging on (the VMM identity-maps the first 1 GiB),
 *                 RSI = boot_params, interrupts off.
 *  pvh_start      named by the Xen PVH note (XEN_ELFNOTE_PHYS32_ENTRY):
 *                 32-bit protected mode, paging off, EBX = hvm_start_info.
 *
 * Both print "T" on COM1 first (the exec -> first byte benchmark), save the
 * entry state in boot_regs for main.c to check, load our GDT and our page
 * tables (identity map of 0-4 GiB: the virtio-mmio windows live above
 * 3 GiB), zero .bss and call guest_main on our own stack. */

#define COM1		0x3f8		/* LAYOUT_COM1 */
#define LSR_THRE	0x20
#define MSR_EFER	0xc0000080
#define EFER_LME	0x100
#define CR0_PE		0x1
#define CR0_PG		0x80000000
#define CR0_CD_NW	0x60000000
#define CR4_PAE		0x20

#define SEL_CODE32	0x08
#define SEL_CODE64	0x10		/* __BOOT_CS of the Linux protocol */
#define SEL_DATA	0x18		/* __BOOT_DS */

#define BOOT_PVH	1
#define BOOT_LINUX64	2

/* struct boot_regs (guest.h) */
#define BR_PROTO	0
#define BR_INFO		8
#define BR_CR0		16
#define BR_CR3		24
#define BR_CR4		32
#define BR_EFER		40
#define BR_RFLAGS	48
#define BR_RSP		56
#define BR_CS		64
#define BR_DS		72
#define BR_SS		80
#define BR_GDTR		94		/* SGDT: limit at 94, base at 96 */

/* The PVH note: name "Xen", type 18, a 4-byte physical entry address.  The
 * note section stays 4-aligned so the PT_NOTE segment is too (QEMU finds
 * the descriptor at 12 + align_up(namesz, p_align)). */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz */
	.long 4			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long pvh_start

/* ------------------------------------------------------------------------ */
	.section .text.entry, "ax"

/* Wait (bounded) for LSR.THRE, then send one byte: clobbers eax, ecx, edx. */
.macro SERIAL_T
	movw $COM1 + 5, %dx
	movl $0x100000, %ecx
1:	inb %dx, %al
	testb $LSR_THRE, %al
	jnz 2f
	pause
	decl %ecx
	jnz 1b
2:	movw $COM1, %dx
	movb $'T', %al
	outb %al, %dx
.endm

	.code32
	.globl pvh_start
pvh_start:
	SERIAL_T
	movl $BOOT_PVH, boot_regs + BR_PROTO
	movl %ebx, boot_regs + BR_INFO
	movl %cr0, %eax
	movl %eax, boot_regs + BR_CR0
	movl %cr3, %eax
	movl %eax, boot_regs + BR_CR3
	movl %cr4, %eax
	movl %eax, boot_regs + BR_CR4
	movl $MSR_EFER, %ecx
	rdmsr
	movl %eax, boot_regs + BR_EFER
	movl %edx, boot_regs + BR_EFER + 4
	movl %esp, boot_regs + BR_RSP
	movw %cs, boot_regs + BR_CS
	movw %ds, boot_regs + BR_DS
	movw %ss, boot_regs + BR_SS
	sgdtl boot_regs + BR_GDTR

	/* The PVH ABI defines CS, DS and ES only: no stack use before our
	 * own SS (nothing here changes RFLAGS). */
	lgdtl gdt_desc
	ljmpl $SEL_CODE32, $1f
1:	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $stack_top, %esp
	pushfl
	popl %eax
	movl %eax, boot_regs + BR_RFLAGS
	cli
	cld

	/* Long mode: PAE, our PML4, EFER.LME, then PG (and caches on). */
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	andl $~CR0_CD_NW, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0
	ljmpl $SEL_CODE64, $common64

	.code64
	.globl linux64_start
linux64_start:
	SERIAL_T
	movl $BOOT_LINUX64, boot_regs + BR_PROTO(%rip)
	movq %rsi, boot_regs + BR_INFO(%rip)
	movq %rsp, boot_regs + BR_RSP(%rip)
	movq %cr0, %rax
	movq %rax, boot_regs + BR_CR0(%rip)
	movq %cr3, %rax
	movq %rax, boot_regs + BR_CR3(%rip)
	movq %cr4, %rax
	movq %rax, boot_regs + BR_CR4(%rip)
	movl $MSR_EFER, %ecx
	rdmsr
	movl %eax, boot_regs + BR_EFER(%rip)
	movl %edx, boot_regs + BR_EFER + 4(%rip)
	movw %cs, boot_regs + BR_CS(%rip)
	movw %ds, boot_regs + BR_DS(%rip)
	movw %ss, boot_regs + BR_SS(%rip)
	sgdt boot_regs + BR_GDTR(%rip)
	movq $stack_top, %rsp
	pushfq
	popq %rax
	movq %rax, boot_regs + BR_RFLAGS(%rip)
	cli
	cld

	lgdt gdt_desc(%rip)
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	pushq $SEL_CODE64
	leaq 1f(%rip), %rax
	pushq %rax
	lretq
1:	movq $pml4, %rax	/* ours maps 0-4 GiB; both map this code */
	movq %rax, %cr3

common64:
	movq $stack_top, %rsp
	leaq __bss_start(%rip), %rdi	/* both 8-aligned (guest.ld) */
	leaq __bss_end(%rip), %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	xorl %eax, %eax
	rep stosq
	xorl %ebp, %ebp
	call guest_main
	movl $1, %edi
	call vm_exit

/* selftest.c: what a VMM does for the Linux 64-bit entry (layout.h). */
	.globl linux64_jump
linux64_jump:
	cli
	lgdt boot_gdt_desc(%rip)
	lidt boot_idt_desc(%rip)
	movq $0x9000, %rax		/* LAYOUT_PML4 */
	movq %rax, %cr3
	movl $SEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $0x8ff0, %rsp		/* LAYOUT_BOOT_STACK */
	movq %rsp, %rbp
	movq $0x7000, %rsi		/* LAYOUT_ZERO_PAGE */
	xorl %eax, %eax
	pushq $SEL_CODE64
	pushq $linux64_start
	lretq

/* ---- exceptions: 32 stubs pushing (error code or 0, vector) ------------- */
.macro EXC vec, errcode
	.balign 16
exc_\vec:
	.if \errcode == 0
	pushq $0
	.endif
	pushq $\vec
	jmp exc_common
.endm
	EXC 0, 0
	EXC 1, 0
	EXC 2, 0
	EXC 3, 0
	EXC 4, 0
	EXC 5, 0
	EXC 6, 0
	EXC 7, 0
	EXC 8, 1
	EXC 9, 0
	EXC 10, 1
	EXC 11, 1
	EXC 12, 1
	EXC 13, 1
	EXC 14, 1
	EXC 15, 0
	EXC 16, 0
	EXC 17, 1
	EXC 18, 0
	EXC 19, 0
	EXC 20, 0
	EXC 21, 1
	EXC 22, 0
	EXC 23, 0
	EXC 24, 0
	EXC 25, 0
	EXC 26, 0
	EXC 27, 0
	EXC 28, 0
	EXC 29, 1
	EXC 30, 1
	EXC 31, 0

exc_common:			/* vector, error, rip, cs, rflags, rsp, ss */
	movq 0(%rsp), %rdi
	movq 8(%rsp), %rsi
	movq 16(%rsp), %rdx
	movq %cr2, %rcx
	andq $-16, %rsp
	call exception_report	/* does not return */
	ud2

	.section .rodata
	.balign 8
	.globl exc_stubs
exc_stubs:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad exc_\v
	.endr

/* ---- GDT and page tables -------------------------------------------------- */
	.data
	.balign 16
gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* 0x08: 32-bit code */
	.quad 0x00af9b000000ffff	/* 0x10: 64-bit code */
	.quad 0x00cf93000000ffff	/* 0x18: data */
gdt_end:
	.balign 8
	.word 0, 0, 0
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

	.balign 8
	.word 0, 0, 0
boot_gdt_desc:
	.word 31
	.quad 0x500			/* LAYOUT_GDT */
	.word 0, 0, 0
boot_idt_desc:
	.word 7
	.quad 0x520			/* LAYOUT_IDT */

	.globl boot_regs
	.balign 8
boot_regs:
	.fill 13, 8, 0

/* Identity map of 0-4 GiB with 2 MiB pages; 3-4 GiB (MMIO) uncached.
 * Static, so neither entry path spends instructions building it. */
	.section .data.pagetables, "aw"
	.balign 4096
pml4:
	.quad pdpt + 0x3
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0003
	.quad pd + 0x1003
	.quad pd + 0x2003
	.quad pd + 0x3003
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 2048
	.if i < 1536
	.quad (i << 21) | 0x83		/* present, writable, 2 MiB */
	.else
	.quad (i << 21) | 0x9b		/* + PWT, PCD */
	.endif
	.set i, i + 1
	.endr

/* The stack is not zeroed (it is not in .bss proper). */
	.section .bss.noinit.stack, "aw", @nobits
	.balign 16
stack:
	.skip 16384
stack_top:

	.section .note.GNU-stack, "", @progbits
