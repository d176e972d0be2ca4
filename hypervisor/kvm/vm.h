/* A KVM virtual machine on raw ioctls: guest RAM in a memfd, the in-kernel
 * irqchip and PIT, vCPU threads and their exits dispatched to the PIO and
 * MMIO buses (../shared/specs/microvm.md section 2).
 *
 *	vm_open(&vm, vcpus, ram, &err);        /dev/kvm, VM, RAM, vCPUs
 *	... devices: bus_register(&vm.pio / &vm.mmio, ...), vm_irqfd() ...
 *	boot_load(&vm.gm, ...); vm_set_boot_state(&vm, &cpu, &err);
 *	vm_start(&vm, &err); vm_go(&vm);       vCPU threads, then run them
 *	vm_wait(&vm);                          until the guest ends or vm_stop()
 *	vm_close(&vm);
 */
#ifndef KR_VMM_VM_H
#define KR_VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kr/error.h"
#include "boot.h"
#include "bus.h"
#include "guest_mem.h"

#define VM_MAX_VCPUS 64

/* How the VM ended: kata-vmm's exit status (documented in main.c --help). */
enum vm_end {
	VM_END_RUNNING = -1,
	VM_END_RESET = 0,	/* the guest reset the machine (i8042, reboot=k): normal end */
	VM_END_STOPPED = 0,	/* vm_stop() from the host (signal) */
	VM_END_ERROR = 1,	/* VMM failure: KVM error, set-up failure */
	VM_END_TRIPLE_FAULT = 3,	/* KVM_EXIT_SHUTDOWN: the guest crashed */
	VM_END_GUEST_ERROR = 4,	/* entry failure, emulation failure, unknown exit */
};

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

/* One contiguous range of guest RAM and where it is in the memfd (vhost-user
 * backends map the memfd at these offsets). */
struct vm_ram {
	uint64_t gpa, size, file_offset;
	uint8_t *host;
};

struct vm {
	int kvm_fd, vm_fd;
	int run_size;
	int mem_fd;			/* memfd backing all guest RAM */
	uint8_t *mem;			/* its mapping */
	uint64_t mem_size;
	struct vm_ram ram[2];		/* below the MMIO hole, above 4 GiB */
	unsigned nr_ram;
	struct guest_mem gm;
	struct bus pio, mmio;
	struct vcpu vcpu[VM_MAX_VCPUS];
	unsigned nr_vcpus;
	atomic_int end;			/* enum vm_end; RUNNING until the first end */
	bool go;			/* vm_go() was called (under end_lock) */
	bool stop_done;			/* the first vm_stop() finished (under end_lock) */
	pthread_mutex_t end_lock;
	pthread_cond_t end_cond;
	/* Called once when the VM ends (any thread): the VMM stops its I/O
	 * loop there. */
	void (*on_end)(void *ctx, int end);
	void *on_end_ctx;
};

/* Open /dev/kvm (path: NULL = "/dev/kvm"), create the VM with ram_size bytes
 * and vcpus vCPUs.  Errors say which step failed and why (no /dev/kvm, old
 * API, missing capability). */
int vm_open(struct vm *vm, const char *kvm_path, unsigned vcpus,
	    uint64_t ram_size, struct kr_err *err);
/* Registers of every vCPU from the loader's boot state (APs wait for
 * INIT/SIPI in the kernel and are reset by it anyway). */
int vm_set_boot_state(struct vm *vm, const struct boot_cpu *cpu,
		      struct kr_err *err);
/* eventfd fd raises gsi (KVM_IRQFD). */
int vm_irqfd(struct vm *vm, int fd, unsigned gsi, struct kr_err *err);
/* virtio_mmio_hooks.ioeventfd for KVM_IOEVENTFD (ctx = struct vm). */
int vm_ioeventfd(void *ctx, uint64_t addr, uint32_t datamatch, int fd,
		 bool assign, struct kr_err *err);
/* Create the vCPU threads, held before their first KVM_RUN (so that the
 * seccomp filter can be applied to every thread, none created later). */
int vm_start(struct vm *vm, struct kr_err *err);
/* Let the vCPUs run. */
void vm_go(struct vm *vm);
/* Wait until the VM ends, join the vCPU threads; return enum vm_end. */
int vm_wait(struct vm *vm);
/* End the VM from any thread (a signal handler thread, a device): the
 * first end wins. */
void vm_stop(struct vm *vm, int end);
void vm_close(struct vm *vm);
/* The seccomp filter is applied to every thread at once (TSYNC); a thread
 * that has not finished starting then would make glibc's own start-up
 * calls (rseq registration) under the filter with every signal blocked,
 * and die silently.  So every VMM thread calls vmm_thread_ready() first
 * thing, and the main thread waits for all n of them before the filter. */
void vmm_thread_ready(void);
int vmm_threads_wait(unsigned n, struct kr_err *err);

#endif
