/* kvm_probe: does /dev/kvm work here?  Run by tests/integration/
 * test_kvm_nested.sh inside the nested KVM host (tests/lib/kvm_nested.sh),
 * usable anywhere.  Static, no dependencies.
 *
 *   kvm_probe [DEVICE]      (default /dev/kvm)
 *
 * Two tiny VMs, each with 32 KiB of memory and one vCPU in real mode at
 * 0x1000 running
 *      mov al, 42 ; out 0xf4, al      -> KVM_EXIT_IO   (port 0xf4, out, 42)
 *      mov al, 43 ; mov [0x9000], al  -> KVM_EXIT_MMIO (0x9000 is outside the
 *                                        memory slot: write, 1 byte, 43)
 *      hlt                            -> KVM_EXIT_HLT
 * VM 1 has no in-kernel irqchip and must end with KVM_EXIT_HLT.  VM 2 first
 * makes what our VMM makes (KVM_SET_TSS_ADDR, KVM_CREATE_IRQCHIP,
 * KVM_CREATE_PIT2), then checks the IO and MMIO exits (with an in-kernel
 * local APIC, hlt waits in the kernel for an interrupt, so it is not run).
 * Also prints the API version and the capabilities the VMM relies on.
 *
 * Output: "kvm_probe: ..." lines; the last one is "kvm_probe: PASS" or
 * "kvm_probe: FAIL <why>".  Exit 0 pass, 1 fail, 2 no such device.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE 0x8000
#define CODE_AT 0x1000
#define MMIO_AT 0x9000

static const uint8_t code[] = {
	0xb0, 0x2a,		/* mov al, 42 */
	0xe6, 0xf4,		/* out 0xf4, al */
	0xb0, 0x2b,		/* mov al, 43 */
	0xa2, 0x00, 0x90,	/* mov [0x9000], al */
	0xf4,			/* hlt */
};

static int kvm = -1;

static int fail(const char *fmt, ...)
{
	va_list ap;

	printf("kvm_probe: FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return 1;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static const char *exit_name(uint32_t r)
{
	switch (r) {
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "?";
	}
}

/* One KVM_RUN; checks that it ended with exit reason `want`. */
static int run_expect(int vcpu, struct kvm_run *run, uint32_t want, const char *vm)
{
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("%s: KVM_RUN: %s", vm, strerror(errno));
	if (run->exit_reason != want) {
		if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
			return fail("%s: exit FAIL_ENTRY (hardware reason 0x%llx), wanted %s", vm,
				    (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
				    exit_name(want));
		return fail("%s: exit %u (%s), wanted %s", vm, run->exit_reason,
			    exit_name(run->exit_reason), exit_name(want));
	}
	return 0;
}

static int one_vm(int with_irqchip)
{
	const char *name = with_irqchip ? "vm2(irqchip+pit)" : "vm1(plain)";
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	uint8_t *mem;
	int vm, vcpu, mmap_size;
	double t0 = now_ms();

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("%s: KVM_CREATE_VM: %s", name, strerror(errno));
	if (with_irqchip) {
		struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

		if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
			return fail("%s: KVM_SET_TSS_ADDR: %s", name, strerror(errno));
		if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
			return fail("%s: KVM_CREATE_IRQCHIP: %s", name, strerror(errno));
		if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
			return fail("%s: KVM_CREATE_PIT2: %s", name, strerror(errno));
	}
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("%s: mmap: %s", name, strerror(errno));
	memcpy(mem + CODE_AT, code, sizeof(code));
	region = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("%s: KVM_SET_USER_MEMORY_REGION: %s", name, strerror(errno));
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("%s: KVM_CREATE_VCPU: %s", name, strerror(errno));
	mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(*run))
		return fail("%s: KVM_GET_VCPU_MMAP_SIZE: %d", name, mmap_size);
	run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return fail("%s: mmap vcpu: %s", name, strerror(errno));

	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return fail("%s: KVM_GET_SREGS: %s", name, strerror(errno));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return fail("%s: KVM_SET_SREGS: %s", name, strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_AT;
	regs.rflags = 2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return fail("%s: KVM_SET_REGS: %s", name, strerror(errno));

	if (run_expect(vcpu, run, KVM_EXIT_IO, name))
		return 1;
	{
		uint8_t v = *((uint8_t *)run + run->io.data_offset);

		if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != 0xf4 ||
		    run->io.size != 1 || v != 42)
			return fail("%s: IO exit dir %u port 0x%x size %u value %u, wanted out 0xf4 1 42",
				    name, run->io.direction, run->io.port, run->io.size, v);
	}
	if (run_expect(vcpu, run, KVM_EXIT_MMIO, name))
		return 1;
	if (!run->mmio.is_write || run->mmio.phys_addr != MMIO_AT || run->mmio.len != 1 ||
	    run->mmio.data[0] != 43)
		return fail("%s: MMIO exit write %u addr 0x%llx len %u data %u, wanted write 0x%x 1 43",
			    name, run->mmio.is_write, (unsigned long long)run->mmio.phys_addr,
			    run->mmio.len, run->mmio.data[0], MMIO_AT);
	if (!with_irqchip && run_expect(vcpu, run, KVM_EXIT_HLT, name))
		return 1;
	printf("kvm_probe: %s: exits IO(0xf4=42) MMIO(0x%x=43)%s in %.2f ms\n", name, MMIO_AT,
	       with_irqchip ? "" : " HLT", now_ms() - t0);
	munmap(run, mmap_size);
	munmap(mem, MEM_SIZE);
	close(vcpu);
	close(vm);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct { int cap; const char *name; } caps[] = {
		{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
		{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
		{ KVM_CAP_IRQCHIP, "IRQCHIP" },
		{ KVM_CAP_PIT2, "PIT2" },
		{ KVM_CAP_IRQFD, "IRQFD" },
		{ KVM_CAP_IOEVENTFD, "IOEVENTFD" },
		{ KVM_CAP_EXT_CPUID, "EXT_CPUID" },
		{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
	};
	const char *dev = argc > 1 ? argv[1] : "/dev/kvm";
	int api, missing = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		int e = errno;

		fail("open %s: %s", dev, strerror(e));
		return e == ENOENT || e == ENXIO || e == ENODEV ? 2 : 1;
	}
	api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		return fail("KVM_GET_API_VERSION: %d, wanted %d", api, KVM_API_VERSION);
	printf("kvm_probe: %s api %d; caps:", dev, api);
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int r = ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap);

		printf(" %s=%d", caps[i].name, r);
		if (r <= 0)
			missing++;
	}
	printf("\n");
	if (missing)
		return fail("%d capabilities missing (see above)", missing);
	if (one_vm(0) || one_vm(1))
		return 1;
	printf("kvm_probe: PASS\n");
	return 0;
}
