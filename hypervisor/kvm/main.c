/* kata-vmm: the built-in microVM monitor, one process per pod VM.
 * docs/architecture.md ("The kvm backend") and hypervisor/kvm/README.md
 * describe the parts; this file only wires them together:
 *
 *   parse options -> open KVM, guest RAM, vCPUs (vm.c)
 *   -> legacy devices: COM1 8250 (serial.c), i8042 reset (i8042.c)
 *   -> virtio-mmio devices (virtio_*.c), announced on the command line
 *   -> kernel, initrd, boot structures (boot.c, mptable.c)
 *   -> vCPU threads held, I/O thread, seccomp allow-list (vmm_seccomp.c)
 *   -> run until the guest resets, triple-faults, or a signal stops it
 *   -> tear down: devices (removes the vsock socket), VM. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "evloop.h"
#include "i8042.h"
#include "kr/log.h"
#include "layout.h"
#include "vmm_seccomp.h"
#include "serial.h"
#include "virtio_blk.h"
#include "virtio_fs.h"
#include "virtio_mmio.h"
#include "virtio_net.h"
#include "virtio_rng.h"
#include "virtio_vsock.h"
#include "vm.h"

#define EXIT_USAGE 2
#define MAX_BLK 8

struct options {
	const char *kernel, *initrd, *cmdline, *kvm_path;
	unsigned vcpus;
	uint64_t memory_mib;
	enum boot_proto proto;
	const char *console_path;	/* NULL: stdout */
	int console_fd, console_in_fd;
	struct { const char *path; bool ro; } blk[MAX_BLK];
	unsigned nr_blk;
	const char *net_tap;
	uint8_t mac[6];
	bool have_mac;
	uint64_t vsock_cid;
	const char *vsock_path;
	const char *fs_socket, *fs_tag;
	bool rng, seccomp, timing;
};

/* Every device this VMM may have, and what tear-down must undo. */
struct vmm {
	struct options opt;
	struct vm vm;
	struct evloop *ev;
	pthread_t io_thread;
	bool io_started;
	struct serial *serial;
	struct i8042 *i8042;
	int console_fd;
	bool close_console;
	struct virtio_dev dev[LAYOUT_VIRTIO_MAX];
	void (*dev_destroy[LAYOUT_VIRTIO_MAX])(struct virtio_dev *d);
	int dev_irq[LAYOUT_VIRTIO_MAX];
	unsigned nr_dev;
	int serial_irq;
	char cmdline[LAYOUT_CMDLINE_MAX];
	uint64_t t0_ms;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: kata-vmm --kernel PATH [OPTIONS]\n"
"Run one microVM on /dev/kvm until the guest resets or a signal stops it.\n"
"\n"
"Guest:\n"
"  --kernel PATH        bzImage, or an ELF64 (vmlinux, PVH when it has the note)\n"
"  --initrd PATH        initramfs\n"
"  --cmdline STR        kernel command line (the virtio-mmio devices are added)\n"
"  --boot auto|linux64|pvh  entry protocol (default auto: PVH if the ELF offers it)\n"
"  --cpus N             vCPUs, 1..%u (default 1)\n"
"  --memory MIB         guest RAM in MiB (default 128)\n"
"Devices (virtio-mmio, in this order):\n"
"  --blk PATH[,ro]      a raw disk image; repeatable (first = /dev/vda)\n"
"  --net TAP[,MAC]      an existing tap device\n"
"  --vsock CID,PATH     vsock with guest CID (>= 3); host side on Unix socket PATH\n"
"                       (connect and send \"CONNECT <port>\\n\"; guest connections\n"
"                       to host port P go to PATH_P)\n"
"  --fs SOCKET,TAG      virtio-fs through a vhost-user backend (virtiofsd)\n"
"  --rng                an entropy device\n"
"Console and host:\n"
"  --console PATH       serial (COM1) output to a file (default: stdout)\n"
"  --console-fd N       serial output to fd N\n"
"  --console-in-fd N    serial input from fd N\n"
"  --kvm PATH           KVM device (default /dev/kvm)\n"
"  --no-seccomp         do not confine the VMM (debugging only)\n"
"  --timing             log milliseconds from start to each step\n"
"  --log-level LEVEL    error, warn, info (default) or debug\n"
"  -h, --help           this help;   --version\n"
"\n"
"Exit status: 0 the guest reset the machine (Linux reboot=k, i8042) or a\n"
"SIGTERM/SIGINT stopped it; 1 VMM failure; 2 usage error; 3 triple fault\n"
"(the guest crashed); 4 the guest could not run (entry failure, emulation\n"
"failure).\n", VM_MAX_VCPUS);
}

/* Sanitizer builds: LeakSanitizer's exit-time check stops the world with
 * clone and ptrace, which the seccomp filter refuses (SIGSYS at exit).
 * Ignored by normal builds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

/* ---- options ---------------------------------------------------------- */

static int parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max,
		      uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "kata-vmm: %s '%s': expected a number in %" PRIu64
			"..%" PRIu64 "\n", opt, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
		   &b[5], &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			return -1;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

/* "A,B" -> a = "A", b = "B" (in place). */
static char *split_comma(char *s)
{
	char *c = strchr(s, ',');

	if (!c)
		return NULL;
	*c = 0;
	return c + 1;
}

static int parse_device_opt(struct options *o, int c, char *arg)
{
	char *rest;
	uint64_t v;

	switch (c) {
	case 'b':
		if (o->nr_blk == MAX_BLK) {
			fprintf(stderr, "kata-vmm: --blk: at most %d disks\n", MAX_BLK);
			return -1;
		}
		rest = split_comma(arg);
		if (rest && strcmp(rest, "ro") != 0) {
			fprintf(stderr, "kata-vmm: --blk %s,%s: the only option is 'ro'\n", arg, rest);
			return -1;
		}
		o->blk[o->nr_blk].path = arg;
		o->blk[o->nr_blk++].ro = rest != NULL;
		return 0;
	case 'n':
		rest = split_comma(arg);
		o->net_tap = arg;
		if (rest) {
			if (parse_mac(rest, o->mac) < 0) {
				fprintf(stderr, "kata-vmm: --net: bad MAC address '%s'\n", rest);
				return -1;
			}
			o->have_mac = true;
		}
		return 0;
	case 'v':
		rest = split_comma(arg);
		if (!rest || !*rest) {
			fprintf(stderr, "kata-vmm: --vsock expects CID,PATH\n");
			return -1;
		}
		if (parse_uint("--vsock CID", arg, 3, UINT32_MAX - 1, &v) < 0)
			return -1;
		o->vsock_cid = v;
		o->vsock_path = rest;
		return 0;
	case 'f':
		rest = split_comma(arg);
		if (!rest || !*rest || !*arg) {
			fprintf(stderr, "kata-vmm: --fs expects SOCKET,TAG\n");
			return -1;
		}
		o->fs_socket = arg;
		o->fs_tag = rest;
		return 0;
	}
	return -1;
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "boot", required_argument, NULL, 'B' },
		{ "cpus", required_argument, NULL, 'C' },
		{ "memory", required_argument, NULL, 'm' },
		{ "blk", required_argument, NULL, 'b' },
		{ "net", required_argument, NULL, 'n' },
		{ "vsock", required_argument, NULL, 'v' },
		{ "fs", required_argument, NULL, 'f' },
		{ "rng", no_argument, NULL, 'r' },
		{ "console", required_argument, NULL, 'o' },
		{ "console-fd", required_argument, NULL, 'O' },
		{ "console-in-fd", required_argument, NULL, 'I' },
		{ "kvm", required_argument, NULL, 'K' },
		{ "no-seccomp", no_argument, NULL, 'S' },
		{ "timing", no_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	uint64_t v;
	int c;

	*o = (struct options){ .vcpus = 1, .memory_mib = 128, .console_fd = -1,
			       .console_in_fd = -1, .seccomp = true, .cmdline = "" };
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'c': o->cmdline = optarg; break;
		case 'B':
			if (strcmp(optarg, "auto") == 0) o->proto = BOOT_AUTO;
			else if (strcmp(optarg, "linux64") == 0) o->proto = BOOT_LINUX64;
			else if (strcmp(optarg, "pvh") == 0) o->proto = BOOT_PVH;
			else {
				fprintf(stderr, "kata-vmm: --boot '%s': expected auto, linux64 or pvh\n", optarg);
				return -1;
			}
			break;
		case 'C':
			if (parse_uint("--cpus", optarg, 1, VM_MAX_VCPUS, &v) < 0)
				return -1;
			o->vcpus = (unsigned)v;
			break;
		case 'm':
			if (parse_uint("--memory", optarg, 16, 1u << 20, &v) < 0)
				return -1;
			o->memory_mib = v;
			break;
		case 'b': case 'n': case 'v': case 'f':
			if (parse_device_opt(o, c, optarg) < 0)
				return -1;
			break;
		case 'r': o->rng = true; break;
		case 'o': o->console_path = optarg; break;
		case 'O': case 'I':
			if (parse_uint(c == 'O' ? "--console-fd" : "--console-in-fd",
				       optarg, 0, INT_MAX, &v) < 0)
				return -1;
			*(c == 'O' ? &o->console_fd : &o->console_in_fd) = (int)v;
			break;
		case 'K': o->kvm_path = optarg; break;
		case 'S': o->seccomp = false; break;
		case 't': o->timing = true; break;
		case 'l':
			if (kr_log_level_parse(optarg) < 0) {
				fprintf(stderr, "kata-vmm: --log-level '%s': expected error, warn, info or debug\n", optarg);
				return -1;
			}
			kr_log_set_level(kr_log_level_parse(optarg));
			break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("kata-vmm %s\n", KR_VERSION); exit(0);
		default:
			fprintf(stderr, "Try 'kata-vmm --help'.\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kata-vmm: unexpected argument '%s' (try --help)\n", argv[optind]);
		return -1;
	}
	if (!o->kernel) {
		fprintf(stderr, "kata-vmm: --kernel is required (try --help)\n");
		return -1;
	}
	return 0;
}

/* ---- set-up ------------------------------------------------------------ */

static void timing(struct vmm *m, const char *step)
{
	if (m->opt.timing)
		kr_info("timing: %s at %" PRIu64 " ms", step, now_ms() - m->t0_ms);
}

static int new_irq(struct vmm *m, unsigned gsi, struct kr_err *err)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	if (fd < 0)
		return kr_err_sys(err, "eventfd for GSI %u", gsi);
	if (vm_irqfd(&m->vm, fd, gsi, err) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int open_console(struct vmm *m, struct kr_err *err)
{
	const struct options *o = &m->opt;

	if (o->console_path) {
		m->console_fd = open(o->console_path,
				     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (m->console_fd < 0)
			return kr_err_sys(err, "console %s", o->console_path);
		m->close_console = true;
	} else {
		m->console_fd = o->console_fd >= 0 ? o->console_fd : STDOUT_FILENO;
	}
	return 0;
}

static void on_i8042_reset(void *ctx)
{
	struct vmm *m = ctx;

	kr_debug("guest reset through the i8042");
	vm_stop(&m->vm, VM_END_RESET);
}

/* COM1 and the i8042 on the port-I/O bus. */
static int setup_legacy(struct vmm *m, struct kr_err *err)
{
	if (open_console(m, err) < 0)
		return -1;
	m->serial_irq = new_irq(m, LAYOUT_COM1_GSI, err);
	if (m->serial_irq < 0)
		return -1;
	m->serial = serial_new(m->console_fd, m->opt.console_in_fd, m->serial_irq,
			       m->ev, err);
	if (!m->serial)
		return -1;
	if (bus_register(&m->vm.pio, LAYOUT_COM1, 8, serial_rw, m->serial, "com1", err) < 0)
		return -1;
	m->i8042 = i8042_new(on_i8042_reset, m, -1, err);
	if (!m->i8042)
		return -1;
	return i8042_register(m->i8042, &m->vm.pio, err);
}

/* The next virtio-mmio slot: window, GSI and interrupt eventfd. */
static struct virtio_dev *next_slot(struct vmm *m, uint64_t *base, unsigned *gsi,
				    int *irq, struct kr_err *err)
{
	unsigned n = m->nr_dev;

	if (n == LAYOUT_VIRTIO_MAX) {
		kr_err_set(err, KR_RESOURCE_EXHAUSTED, "more than %u virtio devices",
			   LAYOUT_VIRTIO_MAX);
		return NULL;
	}
	*base = LAYOUT_VIRTIO_BASE + n * LAYOUT_VIRTIO_STRIDE;
	*gsi = LAYOUT_VIRTIO_GSI + n;
	*irq = new_irq(m, *gsi, err);
	if (*irq < 0)
		return NULL;
	m->dev_irq[n] = *irq;
	return &m->dev[n];
}

/* After a device's create() succeeded: map its window, remember how to
 * destroy it. */
static int commit_slot(struct vmm *m, void (*destroy)(struct virtio_dev *),
		       struct kr_err *err)
{
	struct virtio_dev *d = &m->dev[m->nr_dev];

	m->dev_destroy[m->nr_dev++] = destroy;
	return bus_register(&m->vm.mmio, d->base, VIRTIO_MMIO_WINDOW, virtio_mmio_rw,
			    d, d->ops->name, err);
}

/* virtiofsd maps guest RAM from our memfd, region by region. */
static int setup_fs(struct vmm *m, struct virtio_dev *d, uint64_t base, unsigned gsi,
		    int irq, const struct virtio_mmio_hooks *hooks, struct kr_err *err)
{
	struct vu_mem_backing mem;
	struct virtio_fs_cfg cfg = {
		.socket_path = m->opt.fs_socket,
		.tag = m->opt.fs_tag,
		.mem = &mem,
	};

	memset(&mem, 0, sizeof(mem));
	for (unsigned i = 0; i < m->vm.nr_ram; i++) {
		mem.fd[i] = m->vm.mem_fd;
		mem.offset[i] = m->vm.ram[i].file_offset;
	}
	return virtio_fs_create(d, &cfg, &m->vm.gm, m->ev, base, gsi, irq, hooks, err);
}

static int setup_virtio(struct vmm *m, struct kr_err *err)
{
	const struct options *o = &m->opt;
	struct virtio_mmio_hooks hooks = { vm_ioeventfd, &m->vm };
	const struct guest_mem *gm = &m->vm.gm;
	struct virtio_dev *d;
	uint64_t base;
	unsigned gsi;
	int irq;

	/* Disks first: the first one becomes /dev/vda. */
	for (unsigned i = 0; i < o->nr_blk; i++) {
		struct virtio_blk_cfg cfg = { .path = o->blk[i].path, .read_only = o->blk[i].ro };

		if (!(d = next_slot(m, &base, &gsi, &irq, err)) ||
		    virtio_blk_create(d, m->ev, gm, base, gsi, irq, &hooks, &cfg, err) < 0 ||
		    commit_slot(m, virtio_blk_destroy, err) < 0)
			return -1;
	}
	if (o->net_tap) {
		static const uint8_t default_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

		if (!(d = next_slot(m, &base, &gsi, &irq, err)) ||
		    virtio_net_create(d, m->ev, gm, base, gsi, irq, &hooks, o->net_tap,
				      o->have_mac ? o->mac : default_mac, err) < 0 ||
		    commit_slot(m, virtio_net_destroy, err) < 0)
			return -1;
	}
	if (o->vsock_path) {
		if (!(d = next_slot(m, &base, &gsi, &irq, err)) ||
		    virtio_vsock_create(d, m->ev, gm, base, gsi, irq, &hooks,
					o->vsock_cid, o->vsock_path, err) < 0 ||
		    commit_slot(m, virtio_vsock_destroy, err) < 0)
			return -1;
	}
	if (o->fs_socket) {
		if (!(d = next_slot(m, &base, &gsi, &irq, err)) ||
		    setup_fs(m, d, base, gsi, irq, &hooks, err) < 0 ||
		    commit_slot(m, virtio_fs_destroy, err) < 0)
			return -1;
	}
	if (o->rng) {
		if (!(d = next_slot(m, &base, &gsi, &irq, err)) ||
		    virtio_rng_create(d, m->ev, gm, base, gsi, irq, &hooks, err) < 0 ||
		    commit_slot(m, virtio_rng_destroy, err) < 0)
			return -1;
	}
	return 0;
}

/* The guest's command line: the devices' virtio_mmio.device= entries first
 * (so that a " -- " in the user's line, which passes the rest to init,
 * cannot swallow them), then the user's line. */
static int build_cmdline(struct vmm *m, struct kr_err *err)
{
	size_t len = 0;

	m->cmdline[0] = 0;
	for (unsigned i = 0; i < m->nr_dev; i++) {
		char item[96];

		if (virtio_mmio_cmdline(&m->dev[i], item, sizeof(item)) < 0)
			return kr_err_set(err, KR_INTERNAL, "virtio-mmio command line entry");
		len += (size_t)snprintf(m->cmdline + len, sizeof(m->cmdline) - len, "%s ", item);
	}
	if (len + strlen(m->opt.cmdline) >= sizeof(m->cmdline))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "--cmdline: %zu bytes with the device entries, the limit is %u",
				  len + strlen(m->opt.cmdline), LAYOUT_CMDLINE_MAX - 1);
	strcpy(m->cmdline + len, m->opt.cmdline);
	return 0;
}

static int load_guest(struct vmm *m, struct kr_err *err)
{
	struct boot_args a = {
		.kernel = m->opt.kernel,
		.initrd = m->opt.initrd,
		.cmdline = m->cmdline,
		.ram_size = m->opt.memory_mib << 20,
		.vcpus = m->opt.vcpus,
		.proto = m->opt.proto,
	};
	struct boot_cpu cpu;

	/* boot_load writes the MP table too. */
	if (build_cmdline(m, err) < 0 || boot_load(&m->vm.gm, &a, &cpu, err) < 0 ||
	    vm_set_boot_state(&m->vm, &cpu, err) < 0)
		return -1;
	kr_debug("kernel %s (%s entry at 0x%llx), command line: %s", m->opt.kernel,
		 boot_proto_name(cpu.proto), cpu.regs.rip, m->cmdline);
	return 0;
}

/* ---- running ------------------------------------------------------------ */

static void *io_thread(void *arg)
{
	struct vmm *m = arg;

	vmm_thread_ready();
	ev_run(m->ev);
	return NULL;
}

static void on_vm_end(void *ctx, int end)
{
	struct vmm *m = ctx;

	(void)end;
	ev_stop(m->ev);
}

/* SIGTERM, SIGINT, SIGHUP: stop the VM (exit 0).  They are blocked in every
 * thread and taken here with sigwait, so no handler runs on a vCPU. */
static void *signal_thread(void *arg)
{
	struct vmm *m = arg;
	sigset_t set;
	int sig;

	vmm_thread_ready();
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigwait(&set, &sig) == 0) {
		kr_info("signal %d: stopping the VM", sig);
		vm_stop(&m->vm, VM_END_STOPPED);
	}
	return NULL;
}

static int run(struct vmm *m, struct kr_err *err)
{
	pthread_t sig_thread;
	int rc;

	m->vm.on_end = on_vm_end;
	m->vm.on_end_ctx = m;
	if (vm_start(&m->vm, err) < 0)
		return -1;
	rc = pthread_create(&m->io_thread, NULL, io_thread, m);
	if (rc == 0) {
		m->io_started = true;
		rc = pthread_create(&sig_thread, NULL, signal_thread, m);
		if (rc == 0)
			pthread_detach(sig_thread);
	}
	if (rc != 0) {
		vm_stop(&m->vm, VM_END_ERROR);
		vm_wait(&m->vm);
		return kr_err_errno(err, rc, "pthread_create");
	}
	/* vCPUs, the I/O thread and the signal thread (vm.h says why). */
	if (m->opt.seccomp && (vmm_threads_wait(m->vm.nr_vcpus + 2, err) < 0 ||
			       vmm_seccomp_apply(kr_log_get_level() >= KR_LOG_DEBUG, err) < 0)) {
		vm_stop(&m->vm, VM_END_ERROR);
		vm_wait(&m->vm);
		return -1;
	}
	timing(m, "guest starts");
	vm_go(&m->vm);
	return vm_wait(&m->vm);
}

static void teardown(struct vmm *m)
{
	if (m->io_started) {
		ev_stop(m->ev);
		pthread_join(m->io_thread, NULL);
	}
	for (unsigned i = m->nr_dev; i-- > 0;)
		m->dev_destroy[i](&m->dev[i]);
	for (unsigned i = 0; i < LAYOUT_VIRTIO_MAX; i++)
		if (m->dev_irq[i] >= 0)
			close(m->dev_irq[i]);
	serial_free(m->serial);
	i8042_free(m->i8042);
	if (m->serial_irq >= 0)
		close(m->serial_irq);
	if (m->close_console)
		close(m->console_fd);
	vm_close(&m->vm);
	ev_free(m->ev);
}

int main(int argc, char **argv)
{
	static struct vmm m;
	struct kr_err err = { 0 };
	sigset_t set;
	int end = VM_END_ERROR;

	m.t0_ms = now_ms();
	/* Log timestamps go through strftime, which loads the time zone the
	 * first time: with a file that would be an openat() after the
	 * seccomp filter (death by SIGSYS at the first log line).  A POSIX
	 * TZ string needs no file. */
	setenv("TZ", "UTC0", 1);
	tzset();
	kr_log_init("kata-vmm", KR_LOG_INFO, STDERR_FILENO);
	for (unsigned i = 0; i < LAYOUT_VIRTIO_MAX; i++)
		m.dev_irq[i] = -1;
	m.serial_irq = -1;
	if (parse_args(argc, argv, &m.opt) < 0)
		return EXIT_USAGE;
	/* Blocked before any thread exists: every thread inherits it and
	 * the signal thread takes them with sigwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (!(m.ev = ev_new(&err)) ||
	    vm_open(&m.vm, m.opt.kvm_path, m.opt.vcpus, m.opt.memory_mib << 20, &err) < 0) {
		kr_error("%s", err.msg);
		teardown(&m);
		return VM_END_ERROR;
	}
	timing(&m, "KVM VM created");
	if (setup_legacy(&m, &err) < 0 || setup_virtio(&m, &err) < 0 ||
	    load_guest(&m, &err) < 0) {
		kr_error("%s", err.msg);
		teardown(&m);
		return VM_END_ERROR;
	}
	timing(&m, "devices and guest loaded");
	end = run(&m, &err);
	if (end < 0) {
		kr_error("%s", err.msg);
		end = VM_END_ERROR;
	}
	timing(&m, "VM ended");
	teardown(&m);
	return end;
}
