/* KVM set-up and the vCPU run loop (vm.h).  The ioctl order follows
 * ../shared/specs/microvm.md section 2.1. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kr/log.h"
#include "layout.h"
#include "vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1
#define CPUID_MAX_ENTRIES 256

/* Capabilities the VMM cannot work without. */
static const struct { int cap; const char *name; } required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
	{ KVM_CAP_EXT_CPUID, "EXT_CPUID" },
	{ KVM_CAP_IRQCHIP, "IRQCHIP" },
	{ KVM_CAP_IRQFD, "IRQFD" },
	{ KVM_CAP_IOEVENTFD, "IOEVENTFD" },
	{ KVM_CAP_PIT2, "PIT2" },
	{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
};

static int open_kvm(struct vm *vm, const char *path, struct kr_err *err)
{
	int api;

	vm->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int e = errno;

		return kr_err_errno(err, e, "%s%s", path,
				    e == ENOENT || e == ENODEV ?
				    " (kata-vmm needs KVM: a host with hardware virtualization and the kvm module)" : "");
	}
	api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION)
		return kr_err_set(err, KR_FAILED_PRECONDITION,
				  "%s: KVM API version %d, expected %d", path, api,
				  KVM_API_VERSION);
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0)
			return kr_err_set(err, KR_FAILED_PRECONDITION,
					  "%s: KVM lacks KVM_CAP_%s", path,
					  required_caps[i].name);
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return kr_err_sys(err, "KVM_GET_VCPU_MMAP_SIZE");
	return 0;
}

static int create_vm(struct vm *vm, struct kr_err *err)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return kr_err_sys(err, "KVM_CREATE_VM");
	fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC);
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		return kr_err_sys(err, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return kr_err_sys(err, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return kr_err_sys(err, "KVM_CREATE_PIT2");
	return 0;
}

/* All RAM lives in one memfd (vhost-user backends map it): the part below
 * the MMIO hole at file offset 0, the rest above 4 GiB right after it. */
static int map_ram(struct vm *vm, uint64_t ram_size, struct kr_err *err)
{
	uint64_t low = ram_size < LAYOUT_MMIO_START ? ram_size : LAYOUT_MMIO_START;

	vm->mem_fd = memfd_create("kata-vmm-ram", MFD_CLOEXEC);
	if (vm->mem_fd < 0)
		return kr_err_sys(err, "memfd_create for guest RAM");
	if (ftruncate(vm->mem_fd, (off_t)ram_size) < 0)
		return kr_err_sys(err, "guest RAM: ftruncate to %" PRIu64 " bytes", ram_size);
	/* Nothing is touched here: pages appear as the guest uses them. */
	vm->mem = mmap(NULL, ram_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, vm->mem_fd, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return kr_err_sys(err, "guest RAM: mmap of %" PRIu64 " bytes", ram_size);
	}
	vm->mem_size = ram_size;
	vm->ram[0] = (struct vm_ram){ 0, low, 0, vm->mem };
	vm->nr_ram = 1;
	if (ram_size > low) {
		vm->ram[1] = (struct vm_ram){ LAYOUT_4G, ram_size - low, low, vm->mem + low };
		vm->nr_ram = 2;
	}
	gm_init(&vm->gm);
	for (unsigned i = 0; i < vm->nr_ram; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = vm->ram[i].gpa,
			.memory_size = vm->ram[i].size,
			.userspace_addr = (uintptr_t)vm->ram[i].host,
		};

		if (gm_add_region(&vm->gm, r.guest_phys_addr, r.memory_size,
				  vm->ram[i].host, err) < 0)
			return -1;
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return kr_err_sys(err, "KVM_SET_USER_MEMORY_REGION slot %u", i);
	}
	return 0;
}

/* ---- per-vCPU state ------------------------------------------------------ */

static struct kvm_cpuid2 *supported_cpuid(struct vm *vm, struct kr_err *err)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) +
				      CPUID_MAX_ENTRIES * sizeof(c->entries[0]));

	if (!c) {
		kr_err_set(err, KR_RESOURCE_EXHAUSTED, "CPUID table: out of memory");
		return NULL;
	}
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		kr_err_sys(err, "KVM_GET_SUPPORTED_CPUID");
		free(c);
		return NULL;
	}
	return c;
}

/* The edits of microvm.md 2.3: APIC ids, "hypervisor present", no PMU,
 * no power-management leaves. */
static void cpuid_for_vcpu(struct kvm_cpuid2 *c, unsigned id, unsigned n)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (id << 24) | (n << 16);
			e->ebx = (e->ebx & ~0xff00u) | (8u << 8);	/* CLFLUSH 64 bytes */
			e->ecx |= 1u << 31;		/* hypervisor */
			e->ecx &= ~(1u << 15);		/* PDCM */
			if (n > 1)
				e->edx |= 1u << 28;	/* HTT */
			break;
		case 6:
			e->ecx &= ~(1u << 3);		/* EPB */
			break;
		case 0xa:
			e->eax = e->ebx = e->ecx = e->edx = 0;	/* no PMU */
			break;
		case 0xb:
		case 0x1f:
			e->edx = id;			/* x2APIC id */
			break;
		default:
			break;
		}
	}
}

static int set_msrs(struct vcpu *v, struct kr_err *err)
{
	static const struct { uint32_t index; uint64_t data; } init[] = {
		{ 0x174, 0 }, { 0x175, 0 }, { 0x176, 0 },	/* SYSENTER_* */
		{ 0xc0000081, 0 }, { 0xc0000082, 0 },		/* STAR, LSTAR */
		{ 0xc0000083, 0 }, { 0xc0000084, 0 },		/* CSTAR, SFMASK */
		{ 0xc0000102, 0 },				/* KERNEL_GS_BASE */
		{ 0x10, 0 },					/* TSC */
		{ 0x1a0, 1 },					/* MISC_ENABLE: fast strings */
		{ 0x2ff, (1u << 11) | 6 },			/* MTRRdefType: on, write-back */
	};
	enum { N = sizeof(init) / sizeof(init[0]) };
	struct kvm_msrs *m = calloc(1, sizeof(*m) + N * sizeof(m->entries[0]));
	int set;

	if (!m)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED, "vCPU %u: MSR list: out of memory", v->id);
	m->nmsrs = N;
	for (unsigned i = 0; i < N; i++) {
		m->entries[i].index = init[i].index;
		m->entries[i].data = init[i].data;
	}
	set = ioctl(v->fd, KVM_SET_MSRS, m);
	free(m);
	if (set < 0)
		return kr_err_sys(err, "vCPU %u: KVM_SET_MSRS", v->id);
	if (set != N)
		kr_debug("vCPU %u: KVM took %d of %d MSRs (MSR 0x%x refused)", v->id,
			 set, N, init[set].index);
	return 0;
}

/* LINT0 = ExtINT (the PIC reaches the CPU), LINT1 = NMI. */
static int set_lint(struct vcpu *v, struct kr_err *err)
{
	struct kvm_lapic_state l;
	uint32_t r;

	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return kr_err_sys(err, "vCPU %u: KVM_GET_LAPIC", v->id);
	memcpy(&r, &l.regs[0x350], 4);
	r = (r & ~0x700u) | (7u << 8);
	memcpy(&l.regs[0x350], &r, 4);
	memcpy(&r, &l.regs[0x360], 4);
	r = (r & ~0x700u) | (4u << 8);
	memcpy(&l.regs[0x360], &r, 4);
	if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
		return kr_err_sys(err, "vCPU %u: KVM_SET_LAPIC", v->id);
	return 0;
}

static int create_vcpu(struct vm *vm, unsigned id, struct kvm_cpuid2 *cpuid,
		       struct kr_err *err)
{
	struct vcpu *v = &vm->vcpu[id];

	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return kr_err_sys(err, "KVM_CREATE_VCPU %u", id);
	fcntl(v->fd, F_SETFD, FD_CLOEXEC);
	v->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return kr_err_sys(err, "vCPU %u: mmap of kvm_run", id);
	}
	cpuid_for_vcpu(cpuid, id, vm->nr_vcpus);
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0)
		return kr_err_sys(err, "vCPU %u: KVM_SET_CPUID2", id);
	if (set_msrs(v, err) < 0 || set_lint(v, err) < 0)
		return -1;
	return 0;
}

int vm_open(struct vm *vm, const char *kvm_path, unsigned vcpus,
	    uint64_t ram_size, struct kr_err *err)
{
	struct kvm_cpuid2 *cpuid;
	int rc = -1;

	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->mem_fd = -1;
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++)
		vm->vcpu[i].fd = -1;
	atomic_init(&vm->end, VM_END_RUNNING);
	pthread_mutex_init(&vm->end_lock, NULL);
	pthread_cond_init(&vm->end_cond, NULL);
	if (vcpus == 0 || vcpus > VM_MAX_VCPUS)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "vcpus %u: must be 1..%u",
				  vcpus, VM_MAX_VCPUS);
	if (ram_size < (16ull << 20) || ram_size % 4096)
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "memory %" PRIu64 " bytes: at least 16 MiB, whole pages",
				  ram_size);
	vm->nr_vcpus = vcpus;
	if (open_kvm(vm, kvm_path ? kvm_path : "/dev/kvm", err) < 0 ||
	    create_vm(vm, err) < 0 || map_ram(vm, ram_size, err) < 0)
		return -1;
	cpuid = supported_cpuid(vm, err);
	if (!cpuid)
		return -1;
	for (unsigned i = 0; i < vcpus; i++)
		if (create_vcpu(vm, i, cpuid, err) < 0)
			goto out;
	rc = 0;
out:
	free(cpuid);
	return rc;
}

int vm_set_boot_state(struct vm *vm, const struct boot_cpu *cpu,
		      struct kr_err *err)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
		struct kvm_sregs sregs = cpu->sregs;

		/* Keep KVM's APIC base and interrupt bitmap from the vCPU's
		 * own reset state. */
		struct kvm_sregs cur;

		if (ioctl(vm->vcpu[i].fd, KVM_GET_SREGS, &cur) < 0)
			return kr_err_sys(err, "vCPU %u: KVM_GET_SREGS", i);
		sregs.apic_base = cur.apic_base;
		memcpy(sregs.interrupt_bitmap, cur.interrupt_bitmap,
		       sizeof(sregs.interrupt_bitmap));
		if (ioctl(vm->vcpu[i].fd, KVM_SET_SREGS, &sregs) < 0)
			return kr_err_sys(err, "vCPU %u: KVM_SET_SREGS", i);
		if (ioctl(vm->vcpu[i].fd, KVM_SET_REGS, &cpu->regs) < 0)
			return kr_err_sys(err, "vCPU %u: KVM_SET_REGS", i);
		if (ioctl(vm->vcpu[i].fd, KVM_SET_FPU, &fpu) < 0)
			return kr_err_sys(err, "vCPU %u: KVM_SET_FPU", i);
	}
	return 0;
}

int vm_irqfd(struct vm *vm, int fd, unsigned gsi, struct kr_err *err)
{
	struct kvm_irqfd r = { .fd = (uint32_t)fd, .gsi = gsi };

	if (ioctl(vm->vm_fd, KVM_IRQFD, &r) < 0)
		return kr_err_sys(err, "KVM_IRQFD gsi %u", gsi);
	return 0;
}

int vm_ioeventfd(void *ctx, uint64_t addr, uint32_t datamatch, int fd,
		 bool assign, struct kr_err *err)
{
	struct vm *vm = ctx;
	struct kvm_ioeventfd r = {
		.datamatch = datamatch,
		.addr = addr,
		.len = 4,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &r) < 0)
		return kr_err_sys(err, "KVM_IOEVENTFD 0x%" PRIx64 "=%u %s", addr,
				  datamatch, assign ? "assign" : "deassign");
	return 0;
}

/* ---- running ----------------------------------------------------------- */

static void kick_handler(int sig)
{
	(void)sig;	/* only interrupts KVM_RUN (EINTR) */
}

void vm_stop(struct vm *vm, int end)
{
	int expected = VM_END_RUNNING;

	if (!atomic_compare_exchange_strong(&vm->end, &expected, end))
		return;		/* the first end wins */
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpu[i];

		/* immediate_exit before the signal: a vCPU about to enter
		 * KVM_RUN returns at once instead of missing the kick. */
		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (v->started && !pthread_equal(v->thread, pthread_self()))
			pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
	pthread_mutex_lock(&vm->end_lock);
	pthread_cond_broadcast(&vm->end_cond);
	pthread_mutex_unlock(&vm->end_lock);
	if (vm->on_end)
		vm->on_end(vm->on_end_ctx, end);
	/* Only now may vm_wait() return and the caller tear down what this
	 * thread just used (the kvm_run mappings, the I/O loop). */
	pthread_mutex_lock(&vm->end_lock);
	vm->stop_done = true;
	pthread_cond_broadcast(&vm->end_cond);
	pthread_mutex_unlock(&vm->end_lock);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	unsigned size = r->io.size;

	/* data_offset/size/count come from the kernel, not the guest, but a
	 * bad value must still not walk off the mapping. */
	if (r->io.data_offset + (uint64_t)size * r->io.count > (uint64_t)v->vm->run_size)
		return;
	for (uint32_t i = 0; i < r->io.count; i++, data += size)
		bus_dispatch(&v->vm->pio, r->io.port, data, size,
			     r->io.direction == KVM_EXIT_IO_OUT);
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	unsigned len = r->mmio.len <= 8 ? r->mmio.len : 8;

	bus_dispatch(&v->vm->mmio, r->mmio.phys_addr, r->mmio.data, len,
		     r->mmio.is_write);
}

static void log_guest_error(struct vcpu *v, const char *what)
{
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		kr_warn("vCPU %u: %s at rip 0x%llx", v->id, what, regs.rip);
	else
		kr_warn("vCPU %u: %s", v->id, what);
}

/* One exit; returns the VM end it causes, or VM_END_RUNNING. */
static int handle_exit(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	char what[96];

	switch (r->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return VM_END_RUNNING;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return VM_END_RUNNING;
	case KVM_EXIT_SHUTDOWN:
		kr_info("vCPU %u: triple fault (KVM_EXIT_SHUTDOWN)", v->id);
		return VM_END_TRIPLE_FAULT;
	case KVM_EXIT_SYSTEM_EVENT:
		if (r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ||
		    r->system_event.type == KVM_SYSTEM_EVENT_RESET)
			return VM_END_RESET;
		log_guest_error(v, "system event crash");
		return VM_END_GUEST_ERROR;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel irqchip; with one, a HLT that
		 * reaches us means the guest stopped for good. */
		return VM_END_RESET;
	case KVM_EXIT_INTR:
		return VM_END_RUNNING;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed (reason 0x%llx)",
			 (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
		log_guest_error(v, what);
		return VM_END_GUEST_ERROR;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error (suberror %u)",
			 r->internal.suberror);
		log_guest_error(v, what);
		return VM_END_GUEST_ERROR;
	default:
		snprintf(what, sizeof(what), "unhandled exit reason %u", r->exit_reason);
		log_guest_error(v, what);
		return VM_END_GUEST_ERROR;
	}
}

/* Threads that have run vmm_thread_ready(). */
static atomic_uint threads_ready;

void vmm_thread_ready(void)
{
	/* A thread's first malloc sets up its cache and arena, which may
	 * read the CPU count: do it now, not in the thread's exit path. */
	free(malloc(64));
	atomic_fetch_add(&threads_ready, 1);
}

int vmm_threads_wait(unsigned n, struct kr_err *err)
{
	for (int i = 0; i < 5000; i++) {
		if (atomic_load(&threads_ready) >= n)
			return 0;
		usleep(1000);
	}
	return kr_err_set(err, KR_DEADLINE_EXCEEDED, "%u of %u VMM threads started within 5 s",
			  atomic_load(&threads_ready), n);
}

static void wait_for_go(struct vm *vm)
{
	pthread_mutex_lock(&vm->end_lock);
	while (!vm->go && atomic_load(&vm->end) == VM_END_RUNNING)
		pthread_cond_wait(&vm->end_cond, &vm->end_lock);
	pthread_mutex_unlock(&vm->end_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	vmm_thread_ready();
	wait_for_go(vm);
	while (atomic_load(&vm->end) == VM_END_RUNNING) {
		int end;

		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			kr_warn("vCPU %u: KVM_RUN: %s", v->id, strerror(errno));
			vm_stop(vm, VM_END_ERROR);
			break;
		}
		end = handle_exit(v);
		if (end != VM_END_RUNNING)
			vm_stop(vm, end);
	}
	return NULL;
}

int vm_start(struct vm *vm, struct kr_err *err)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigset_t set;

	/* No SA_RESTART: the signal must interrupt KVM_RUN.  Every thread
	 * but the vCPUs keeps it blocked, so that only vCPUs get it. */
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpu[i];
		int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);

		if (rc != 0) {
			vm_stop(vm, VM_END_ERROR);
			vm_wait(vm);
			return kr_err_errno(err, rc, "vCPU %u: pthread_create", i);
		}
		v->started = true;
	}
	return 0;
}

void vm_go(struct vm *vm)
{
	pthread_mutex_lock(&vm->end_lock);
	vm->go = true;
	pthread_cond_broadcast(&vm->end_cond);
	pthread_mutex_unlock(&vm->end_lock);
}

int vm_wait(struct vm *vm)
{
	pthread_mutex_lock(&vm->end_lock);
	while (!vm->stop_done)
		pthread_cond_wait(&vm->end_cond, &vm->end_lock);
	pthread_mutex_unlock(&vm->end_lock);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpu[i].started)
			pthread_join(vm->vcpu[i].thread, NULL);
		vm->vcpu[i].started = false;
	}
	return atomic_load(&vm->end);
}

void vm_close(struct vm *vm)
{
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu *v = &vm->vcpu[i];

		if (v->run)
			munmap(v->run, vm->run_size);
		if (v->fd >= 0)
			close(v->fd);
		v->run = NULL;
		v->fd = -1;
	}
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	vm->mem = NULL;
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->mem_fd = vm->vm_fd = vm->kvm_fd = -1;
}
