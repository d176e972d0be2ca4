/* Container root file system set-up (agent/rootfs.c, mounts.c, devices.c).
 *
 * Needs root.  Each test builds an image from the static busybox in a temp
 * dir and a struct oci_spec by hand (runc's default mounts plus binds of
 * host files), then runs rootfs_setup + rootfs_finalize in a container
 * init and lets it report what it sees as "key=value" lines on a pipe:
 *
 *   test ──fork──> sandbox: own mount ns with "/" made rshared, so that a
 *                  mount or unmount leaking out of the container would show
 *                  in its mount table (the host's mounts are private here,
 *                  so they would not show a leak)
 *          ──fork──> unshare(NEWNS | NEWPID)
 *             ──fork──> container init (pid 1): set-up, probes
 *
 * The sandbox compares its /proc/self/mountinfo before and after; the test
 * compares the host's and checks the temp dir is gone with no mount left. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>

#include "kr/error.h"
#include "kr/util.h"
#include "mounts.h"
#include "rootfs.h"
#include "spec.h"
#include "../lib/kr_test.h"

#define REPORT_MAX (64 * 1024)

static const char *const applets[] = {
	"sh", "cat", "ls", "mount", "stat", "touch", "echo", "test",
};

/* ---- fixture: an image, a state dir and host files to bind ---------------*/

struct fixture {
	char dir[PATH_MAX];	/* /tmp/kr-rootfs-XXXXXX */
	char lower[PATH_MAX];	/* the image */
	char state[PATH_MAX];	/* the container's state dir */
	char vol[PATH_MAX];	/* host dir bound at /data and /ro-data */
	char file[PATH_MAX];	/* host file bound at /etc/bound */
	char missing[PATH_MAX];	/* a bind source that does not exist */
	char *host_mounts;	/* host mountinfo when the test began */
};

static int put_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int rc;

	if (fd < 0)
		return -1;
	rc = kr_write_full(fd, text, strlen(text));
	close(fd);
	return rc;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char *buf = NULL;
	size_t len;
	int fd, rc;

	if (kr_read_file(from, 64u << 20, &buf, &len, NULL) < 0)
		return -1;
	fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	rc = fd < 0 ? -1 : kr_write_full(fd, buf, len);
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

static int pathf(char *buf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

static int make_image(struct fixture *fx)
{
	static const char *const dirs[] = { "bin", "etc", "tmp" };
	char p[PATH_MAX];

	for (size_t i = 0; i < KR_ARRAY_SIZE(dirs); i++)
		if (pathf(p, "%s/%s", fx->lower, dirs[i]) < 0 ||
		    mkdir(p, 0755) < 0)
			return -1;
	if (pathf(p, "%s/bin/busybox", fx->lower) < 0 ||
	    copy_file("/bin/busybox", p, 0755) < 0)
		return -1;
	for (size_t i = 0; i < KR_ARRAY_SIZE(applets); i++)
		if (pathf(p, "%s/bin/%s", fx->lower, applets[i]) < 0 ||
		    symlink("busybox", p) < 0)
			return -1;
	if (pathf(p, "%s/marker", fx->lower) < 0 ||
	    put_file(p, "image\n", 0644) < 0 ||
	    pathf(p, "%s/etc/hostname", fx->lower) < 0 ||
	    put_file(p, "rootfs\n", 0644) < 0)
		return -1;
	/* Destinations that try to leave the root. */
	if (pathf(p, "%s/evil", fx->lower) < 0 || symlink("/etc", p) < 0 ||
	    pathf(p, "%s/evil_rel", fx->lower) < 0 ||
	    symlink("../../../../../../../../../../tmp", p) < 0)
		return -1;
	return 0;
}

static int fixture_init(struct fixture *fx)
{
	char p[PATH_MAX];

	memset(fx, 0, sizeof(*fx));
	if (kr_read_file("/proc/self/mountinfo", 1u << 20, &fx->host_mounts,
			 NULL, NULL) < 0)
		return -1;
	strcpy(fx->dir, "/tmp/kr-rootfs-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	if (pathf(fx->lower, "%s/lower", fx->dir) < 0 ||
	    pathf(fx->state, "%s/state", fx->dir) < 0 ||
	    pathf(fx->vol, "%s/vol", fx->dir) < 0 ||
	    pathf(fx->file, "%s/hostfile", fx->dir) < 0 ||
	    pathf(fx->missing, "%s/no-such-dir", fx->dir) < 0)
		return -1;
	if (mkdir(fx->lower, 0755) < 0 || mkdir(fx->state, 0700) < 0 ||
	    mkdir(fx->vol, 0755) < 0)
		return -1;
	if (pathf(p, "%s/hello", fx->vol) < 0 ||
	    put_file(p, "from the host\n", 0644) < 0 ||
	    put_file(fx->file, "bound file\n", 0644) < 0)
		return -1;
	return make_image(fx);
}

static bool has_line(const char *text, const char *line, size_t len)
{
	for (const char *p = text; (p = memmem(p, strlen(p), line, len)); p++)
		if ((p == text || p[-1] == '\n') && (p[len] == '\n' || !p[len]))
			return true;
	return false;
}

/* Lines of a missing from b, each checked: one naming our temp dir or an
 * escape target is ours and fails; others are noted only, since other
 * programs on this host may mount things meanwhile.  (Leaks are caught
 * for certain by the sandbox's own comparison, see run_container.) */
static void check_mounts_kept(const char *a, const char *b, const char *dir,
			      const char *what)
{
	const char *l = a;

	while (*l) {
		size_t len = strcspn(l, "\n");
		char line[1024];

		if (!has_line(b, l, len)) {
			snprintf(line, sizeof(line), "%.*s", (int)len, l);
			if (strstr(line, dir) || strstr(line, "kr-escape"))
				CHECKF(0, "host mount %s: %s", what, line);
			else
				printf("# note: host mount %s by someone else: %s\n",
				       what, line);
		}
		l += len;
		if (*l)
			l++;
	}
}

/* Remove everything and check that nothing stayed mounted. */
static void fixture_done(struct fixture *fx)
{
	char *mi = NULL;
	struct kr_err err = { 0 };

	CHECKF(rootfs_cleanup(fx->state, &err) == 0, "%s", err.msg);
	CHECKF(kr_rm_rf(fx->dir, &err) == 0, "%s", err.msg);
	CHECK(access(fx->dir, F_OK) < 0 && errno == ENOENT);
	if (kr_read_file("/proc/self/mountinfo", 1u << 20, &mi, NULL,
			 NULL) == 0) {
		CHECKF(!strstr(mi, fx->dir), "a mount under %s is left", fx->dir);
		check_mounts_kept(mi, fx->host_mounts, fx->dir, "added");
		check_mounts_kept(fx->host_mounts, mi, fx->dir, "removed");
	}
	free(mi);
	free(fx->host_mounts);
	fx->host_mounts = NULL;
}

/* ---- spec built by hand ---------------------------------------------------*/

struct test_spec {
	struct oci_spec spec;
	struct oci_mount mounts[24];
	struct oci_device devices[4];
	char *masked[8];
	char *readonly[4];
};

static void add_mount(struct test_spec *ts, const char *dest, const char *type,
		      const char *source, unsigned long flags, const char *data)
{
	struct oci_mount *m = &ts->mounts[ts->spec.n_mounts++];

	REQUIRE(ts->spec.n_mounts <= KR_ARRAY_SIZE(ts->mounts));
	m->destination = (char *)dest;
	m->type = (char *)type;
	m->source = (char *)source;
	m->flags = flags;
	m->bind = (flags & MS_BIND) != 0;
	m->data = (char *)data;
	ts->spec.mounts = ts->mounts;
}

static void add_device(struct test_spec *ts, const char *path, char type,
		       int major, int minor, mode_t mode, uid_t uid, gid_t gid)
{
	struct oci_device *d = &ts->devices[ts->spec.n_devices++];

	d->path = (char *)path;
	d->type = type;
	d->major = major;
	d->minor = minor;
	d->has_mode = d->has_uid = d->has_gid = true;
	d->file_mode = mode;
	d->uid = uid;
	d->gid = gid;
	ts->spec.devices = ts->devices;
}

#define NSD (MS_NOSUID | MS_NOEXEC | MS_NODEV)

/* runc spec's default mounts (`runc spec`), in its order. */
static void default_mounts(struct test_spec *ts)
{
	add_mount(ts, "/proc", "proc", "proc", NSD, NULL);
	add_mount(ts, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
		  "mode=755,size=65536k");
	add_mount(ts, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620");
	add_mount(ts, "/dev/shm", "tmpfs", "shm", NSD, "mode=1777,size=65536k");
	add_mount(ts, "/dev/mqueue", "mqueue", "mqueue", NSD, NULL);
	add_mount(ts, "/sys", "sysfs", "sysfs", NSD | MS_RDONLY, NULL);
	add_mount(ts, "/sys/fs/cgroup", "cgroup", "cgroup",
		  NSD | MS_RELATIME | MS_RDONLY, NULL);
}

static void full_spec(struct test_spec *ts, const struct fixture *fx)
{
	static char *masked[] = {
		"/proc/kcore", "/proc/keys", "/proc/acpi", "/sys/firmware",
		"/proc/kr-no-such-file",
	};
	static char *readonly[] = {
		"/proc/sys", "/proc/sysrq-trigger", "/proc/kr-no-such-dir",
	};

	memset(ts, 0, sizeof(*ts));
	default_mounts(ts);
	add_mount(ts, "/data", NULL, fx->vol, MS_BIND | MS_REC, NULL);
	add_mount(ts, "/ro-data", "bind", fx->vol, MS_BIND | MS_RDONLY | NSD,
		  NULL);
	add_mount(ts, "/etc/bound", NULL, fx->file, MS_BIND, NULL);
	add_device(ts, "/dev/kr-null", 'c', 1, 3, 0600, 1000, 1001);
	add_device(ts, "/dev/kr/fifo", 'p', 0, 0, 0640, 0, 0);
	memcpy(ts->masked, masked, sizeof(masked));
	ts->spec.masked_paths = ts->masked;
	ts->spec.n_masked_paths = KR_ARRAY_SIZE(masked);
	memcpy(ts->readonly, readonly, sizeof(readonly));
	ts->spec.readonly_paths = ts->readonly;
	ts->spec.n_readonly_paths = KR_ARRAY_SIZE(readonly);
}

/* ---- running a container and reading its report ---------------------------*/

static void put(int out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(int out, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	kr_write_full(out, line, (size_t)n);
}

static const char *errname(int e)
{
	const char *n = e ? strerrorname_np(e) : "0";

	return n ? n : "?";
}

typedef void (*probe_fn)(int out);

#define RUN_USERNS 1u	/* the container gets a user namespace */
#define RUN_CGROUP2 2u	/* the sandbox mounts cgroup2 at /sys/fs/cgroup */

struct run {
	const struct fixture *fx;
	const struct oci_spec *spec;
	bool overlay;
	probe_fn probe;
	int out;
	unsigned flags;		/* RUN_* */
	int ready[2], mapped[2];	/* its handshake with the sandbox */
};

static void container_init(const struct run *r)
{
	struct rootfs_config cfg = {
		.spec = r->spec, .source = r->fx->lower,
		.overlay = r->overlay, .state_dir = r->fx->state,
	};
	struct kr_err err = { 0 };

	alarm(60);	/* a hang must not keep the test's pipe open forever */
	if (rootfs_setup(&cfg, &err) < 0) {
		put(r->out, "setup=%s", err.msg);
		_exit(1);
	}
	put(r->out, "setup=ok");
	if (rootfs_finalize(r->spec, &err) < 0) {
		put(r->out, "finalize=%s", err.msg);
		_exit(1);
	}
	put(r->out, "finalize=ok");
	if (r->probe)
		r->probe(r->out);
	_exit(0);
}

static int wait_exit(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A user namespace first (its maps are written from outside, as the agent
 * does), so that the mount, pid and ipc namespaces belong to it. */
static int enter_userns(const struct run *r)
{
	char c = 0;

	if (unshare(CLONE_NEWUSER) < 0 || write(r->ready[1], &c, 1) != 1 ||
	    read(r->mapped[0], &c, 1) != 1)
		return -1;
	return c == 'y' ? 0 : -1;
}

static int write_maps(const struct run *r, pid_t pid)
{
	char p[64], c;
	int ok;

	if (read(r->ready[0], &c, 1) != 1)
		return -1;
	ok = snprintf(p, sizeof(p), "/proc/%d/uid_map", (int)pid) > 0 &&
	     kr_write_file(p, "0 0 4294967295", NULL) == 0 &&
	     snprintf(p, sizeof(p), "/proc/%d/gid_map", (int)pid) > 0 &&
	     kr_write_file(p, "0 0 4294967295", NULL) == 0;
	c = ok ? 'y' : 'n';
	return write(r->mapped[1], &c, 1) == 1 && ok ? 0 : -1;
}

/* New mount and pid namespaces; the fork makes the init pid 1 in the new
 * pid namespace, so /proc mounted by it shows the container's pids. */
static void container_parent(const struct run *r)
{
	int flags = CLONE_NEWNS | CLONE_NEWPID;
	pid_t pid;

	if ((r->flags & RUN_USERNS) && enter_userns(r) < 0) {
		put(r->out, "setup=user namespace: %s", strerror(errno));
		_exit(1);
	}
	if (r->flags & RUN_USERNS)
		flags |= CLONE_NEWIPC;	/* mqueue needs an ipc ns it owns */
	if (unshare(flags) < 0) {
		put(r->out, "setup=unshare: %s", strerror(errno));
		_exit(1);
	}
	pid = fork();
	if (pid == 0)
		container_init(r);
	_exit(pid < 0 ? 1 : wait_exit(pid));
}

static void sandbox(struct run *r)
{
	char *before = NULL, *after = NULL;
	pid_t pid;

	alarm(60);
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL) < 0 ||
	    ((r->flags & RUN_CGROUP2) &&
	     mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL) < 0) ||
	    kr_read_file("/proc/self/mountinfo", 1u << 20, &before, NULL,
			 NULL) < 0) {
		put(r->out, "sandbox=%s", strerror(errno));
		_exit(1);
	}
	if ((r->flags & RUN_USERNS) && (pipe2(r->ready, O_CLOEXEC) < 0 ||
					pipe2(r->mapped, O_CLOEXEC) < 0))
		_exit(1);
	pid = fork();
	if (pid == 0)
		container_parent(r);
	if (pid > 0 && (r->flags & RUN_USERNS) && write_maps(r, pid) < 0)
		put(r->out, "sandbox=cannot write the uid/gid maps");
	put(r->out, "exit=%d", pid < 0 ? -1 : wait_exit(pid));
	if (kr_read_file("/proc/self/mountinfo", 1u << 20, &after, NULL,
			 NULL) < 0)
		_exit(1);
	put(r->out, "sandbox_mounts=%s", strcmp(before, after) ? "changed" : "same");
	if (strcmp(before, after))
		put(r->out, "sandbox_after=%s", after);
	_exit(0);
}

/* Run a container; returns its report (malloc'd) or NULL. */
static char *run_in(const struct fixture *fx, const struct oci_spec *spec,
		    bool overlay, probe_fn probe, unsigned flags)
{
	struct run r = { fx, spec, overlay, probe, -1, flags, { -1, -1 },
			 { -1, -1 } };
	char *buf = kr_xcalloc(1, REPORT_MAX + 1);
	int p[2];
	pid_t pid;
	ssize_t n;

	fflush(stdout);
	if (pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		r.out = p[1];
		sandbox(&r);
	}
	close(p[1]);
	n = pid < 0 ? -1 : kr_read_full(p[0], buf, REPORT_MAX);
	close(p[0]);
	if (pid < 0 || n < 0 || wait_exit(pid) != 0)
		goto fail;
	return buf;
fail:
	free(buf);
	return NULL;
}

static char *run_container(const struct fixture *fx, const struct oci_spec *spec,
			   bool overlay, probe_fn probe)
{
	return run_in(fx, spec, overlay, probe, 0);
}

/* The value of "key=" in a report, copied into a static buffer ("" if
 * the key is missing, so that CHECK_STREQ shows what came instead). */
static const char *kv(const char *rep, const char *key)
{
	static char val[4096];
	size_t kl = strlen(key);

	val[0] = '\0';
	for (const char *l = rep; l && *l; ) {
		if (!strncmp(l, key, kl) && l[kl] == '=') {
			size_t vl = strcspn(l + kl + 1, "\n");

			if (vl >= sizeof(val))
				vl = sizeof(val) - 1;
			memcpy(val, l + kl + 1, vl);
			val[vl] = '\0';
			break;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return val;
}

#define CHECK_KV(rep, key, want) CHECK_STREQ(kv(rep, key), want)

/* ---- probes: run as the container's init after set-up -----------------------*/

static const char *fs_name(const char *path)
{
	static const struct {
		long magic;
		const char *name;
	} names[] = {
		{ TMPFS_MAGIC, "tmpfs" }, { DEVPTS_SUPER_MAGIC, "devpts" },
		{ PROC_SUPER_MAGIC, "proc" }, { SYSFS_MAGIC, "sysfs" },
		{ CGROUP2_SUPER_MAGIC, "cgroup2" }, { OVERLAYFS_SUPER_MAGIC, "overlay" },
		{ 0x19800202, "mqueue" }, { EXT4_SUPER_MAGIC, "ext4" },
	};
	struct statfs sf;

	if (statfs(path, &sf) < 0)
		return errname(errno);
	for (size_t i = 0; i < KR_ARRAY_SIZE(names); i++)
		if (sf.f_type == names[i].magic)
			return names[i].name;
	return "other";
}

/* errno of creating (and writing) a file, "0" on success. */
static const char *create_errno(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return errname(errno);
	if (kr_write_full(fd, "written\n", 8) < 0) {
		close(fd);
		return errname(errno);
	}
	close(fd);
	return "0";
}

static const char *open_errno(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return errname(errno);
	close(fd);
	return "0";
}

static void put_file_kv(int out, const char *key, const char *path)
{
	char *s = NULL;
	size_t len;

	if (kr_read_file(path, 4096, &s, &len, NULL) < 0) {
		put(out, "%s=%s", key, errname(errno));
		return;
	}
	put(out, "%s=%zu:%.*s", key, len, (int)strcspn(s, "\n"), s);
	free(s);
}

static void put_link(int out, const char *path)
{
	char t[PATH_MAX];
	ssize_t n = readlink(path, t, sizeof(t) - 1);

	put(out, "link %s=%.*s", path, n < 0 ? 0 : (int)n, t);
}

static void put_node(int out, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		put(out, "node %s=%s", path, errname(errno));
		return;
	}
	put(out, "node %s=%c %u:%u %04o %u:%u", path,
	    S_ISCHR(st.st_mode) ? 'c' : S_ISFIFO(st.st_mode) ? 'p' : '?',
	    major(st.st_rdev), minor(st.st_rdev), st.st_mode & 07777,
	    st.st_uid, st.st_gid);
}

/* Run sh -c script from the image; its output with newlines as '|'. */
static void put_busybox(int out, const char *script)
{
	char buf[1024] = "";
	int p[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	n = kr_read_full(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	status = wait_exit(pid);
	buf[n > 0 ? n : 0] = '\0';
	for (char *c = buf; *c; c++)
		if (*c == '\n')
			*c = '|';
	put(out, "busybox=%d:%s", status, buf);
}

static void probe_devices(int out)
{
	static const char *const defaults[] = {
		"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
		"/dev/urandom", "/dev/tty", "/dev/kr-null", "/dev/kr/fifo",
		"/dev/fuse",
	};
	char buf[16], name[64];
	int fd;

	for (size_t i = 0; i < KR_ARRAY_SIZE(defaults); i++)
		put_node(out, defaults[i]);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	put(out, "devnull=%s", fd >= 0 && write(fd, "abc", 3) == 3 &&
	    read(fd, buf, sizeof(buf)) == 0 ? "ok" : errname(errno));
	if (fd >= 0)
		close(fd);
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	put(out, "urandom=%s", fd >= 0 && read(fd, buf, sizeof(buf)) == 16 ?
	    "ok" : errname(errno));
	if (fd >= 0)
		close(fd);
	put_link(out, "/dev/ptmx");
	put_link(out, "/dev/fd");
	put_link(out, "/dev/stdin");
	put_link(out, "/dev/stderr");
	/* A fresh devpts instance numbers its first pty 0. */
	fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	put(out, "ptmx=%s", fd < 0 ? errname(errno) :
	    ptsname_r(fd, name, sizeof(name)) ? "ptsname failed" : name);
	if (fd >= 0)
		close(fd);
	put(out, "fs /dev=%s", fs_name("/dev"));
	put(out, "fs /dev/pts=%s", fs_name("/dev/pts"));
	put(out, "fs /dev/shm=%s", fs_name("/dev/shm"));
	put(out, "fs /dev/mqueue=%s", fs_name("/dev/mqueue"));
}

static void probe_proc_sys(int out)
{
	struct stat st;
	DIR *d;
	int entries = 0;

	put(out, "pid=%d", (int)getpid());
	put_link(out, "/proc/self");
	put_file_kv(out, "kcore", "/proc/kcore");
	put_file_kv(out, "keys", "/proc/keys");
	put_node(out, "/proc/keys");
	put(out, "fs /proc/acpi=%s", fs_name("/proc/acpi"));
	d = opendir("/proc/acpi");
	while (d && readdir(d))
		entries++;
	if (d)
		closedir(d);
	put(out, "acpi_entries=%d", entries);	/* "." and ".." */
	put(out, "acpi_write=%s", create_errno("/proc/acpi/x"));
	put(out, "fs /sys/firmware=%s", fs_name("/sys/firmware"));
	put(out, "proc_sys_write=%s",
	    open_errno("/proc/sys/kernel/hostname", O_WRONLY));
	put(out, "proc_sys_read=%s",
	    open_errno("/proc/sys/kernel/hostname", O_RDONLY));
	put(out, "sysrq_write=%s", open_errno("/proc/sysrq-trigger", O_WRONLY));
	put(out, "fs /sys=%s", fs_name("/sys"));
	put(out, "sys_write=%s", mkdir("/sys/kr-test", 0755) < 0 ?
	    errname(errno) : "0");
	put(out, "fs /sys/fs/cgroup=%s", fs_name("/sys/fs/cgroup"));
	put(out, "proc_stat=%s", stat("/proc/1/status", &st) == 0 ? "ok" :
	    errname(errno));
}

static void probe_full(int out)
{
	char cwd[PATH_MAX];

	put(out, "cwd=%s", getcwd(cwd, sizeof(cwd)) ? cwd : errname(errno));
	put_file_kv(out, "marker", "/marker");
	put(out, "fs /=%s", fs_name("/"));
	put_busybox(out, "cat /marker; ls /bin/busybox; echo $$");
	probe_devices(out);
	probe_proc_sys(out);
	put_file_kv(out, "data", "/data/hello");
	put(out, "data_write=%s", create_errno("/data/from-container"));
	put_file_kv(out, "ro_data", "/ro-data/hello");
	put(out, "ro_data_write=%s", create_errno("/ro-data/x"));
	put_file_kv(out, "bound", "/etc/bound");
	put(out, "root_write=%s", create_errno("/newfile"));
}

/* What every container with the full spec must see. */
static void check_full(const char *rep, const char *root_fs)
{
	CHECK_KV(rep, "sandbox_mounts", "same");
	CHECK_KV(rep, "setup", "ok");
	CHECK_KV(rep, "finalize", "ok");
	CHECK_KV(rep, "exit", "0");
	if (strcmp(kv(rep, "finalize"), "ok"))
		return;		/* the rest would only repeat it */
	CHECK_KV(rep, "cwd", "/");
	CHECK_KV(rep, "marker", "6:image");
	CHECK_KV(rep, "fs /", root_fs);
	CHECK_KV(rep, "busybox", "0:image|/bin/busybox|2|");
	/* devices */
	CHECK_KV(rep, "node /dev/null", "c 1:3 0666 0:0");
	CHECK_KV(rep, "node /dev/zero", "c 1:5 0666 0:0");
	CHECK_KV(rep, "node /dev/full", "c 1:7 0666 0:0");
	CHECK_KV(rep, "node /dev/random", "c 1:8 0666 0:0");
	CHECK_KV(rep, "node /dev/urandom", "c 1:9 0666 0:0");
	CHECK_CONTAINS(kv(rep, "node /dev/tty"), "c 5:0 ");
	CHECK_KV(rep, "node /dev/kr-null", "c 1:3 0600 1000:1001");
	CHECK_KV(rep, "node /dev/kr/fifo", "p 0:0 0640 0:0");
	CHECK_KV(rep, "devnull", "ok");
	CHECK_KV(rep, "urandom", "ok");
	CHECK_KV(rep, "link /dev/ptmx", "pts/ptmx");
	CHECK_KV(rep, "link /dev/fd", "/proc/self/fd");
	CHECK_KV(rep, "link /dev/stdin", "/proc/self/fd/0");
	CHECK_KV(rep, "link /dev/stderr", "/proc/self/fd/2");
	CHECK_KV(rep, "ptmx", "/dev/pts/0");
	CHECK_KV(rep, "fs /dev", "tmpfs");
	CHECK_KV(rep, "fs /dev/pts", "devpts");
	CHECK_KV(rep, "fs /dev/shm", "tmpfs");
	CHECK_KV(rep, "fs /dev/mqueue", "mqueue");
	/* proc and sys, masked and read-only paths */
	CHECK_KV(rep, "pid", "1");
	CHECK_KV(rep, "link /proc/self", "1");
	CHECK_KV(rep, "proc_stat", "ok");
	/* This host's kernel has no /proc/kcore: absent or empty are fine. */
	if (strcmp(kv(rep, "kcore"), "ENOENT"))
		CHECK_KV(rep, "kcore", "0:");
	CHECK_KV(rep, "keys", "0:");
	CHECK_KV(rep, "node /proc/keys", "c 1:3 0666 0:0");
	CHECK_KV(rep, "fs /proc/acpi", "tmpfs");
	CHECK_KV(rep, "acpi_entries", "2");
	CHECK_KV(rep, "acpi_write", "EROFS");
	CHECK_KV(rep, "fs /sys/firmware", "tmpfs");
	CHECK_KV(rep, "proc_sys_write", "EROFS");
	CHECK_KV(rep, "proc_sys_read", "0");
	/* Not every kernel has it (this host's has not). */
	CHECK_KV(rep, "sysrq_write", access("/proc/sysrq-trigger", F_OK) ?
		 "ENOENT" : "EROFS");
	CHECK_KV(rep, "fs /sys", "sysfs");
	CHECK_KV(rep, "sys_write", "EROFS");
	/* "cgroup" mounts cgroup2 on a v2 host and is skipped on a v1 one. */
	CHECK_KV(rep, "fs /sys/fs/cgroup",
		 !strcmp(fs_name("/sys/fs/cgroup"), "cgroup2") ? "cgroup2" : "sysfs");
	/* binds */
	CHECK_KV(rep, "data", "14:from the host");
	CHECK_KV(rep, "data_write", "0");
	CHECK_KV(rep, "ro_data", "14:from the host");
	CHECK_KV(rep, "ro_data_write", "EROFS");
	CHECK_KV(rep, "bound", "11:bound file");
}

/* Whether fx->dir/rel exists on the host. */
static bool host_has(const struct fixture *fx, const char *rel)
{
	char p[PATH_MAX];

	return pathf(p, "%s/%s", fx->dir, rel) == 0 && access(p, F_OK) == 0;
}

/* ---- tests -----------------------------------------------------------------*/

static void test_overlay_readonly_root(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	full_spec(&ts, &fx);
	ts.spec.root_readonly = true;
	rep = run_container(&fx, &ts.spec, true, probe_full);
	CHECK(rep != NULL);
	if (rep) {
		check_full(rep, "overlay");
		CHECK_KV(rep, "root_write", "EROFS");
	}
	CHECK(host_has(&fx, "vol/from-container"));
	CHECK(!host_has(&fx, "lower/newfile"));
	CHECK(!host_has(&fx, "state/upper/newfile"));
	free(rep);
	fixture_done(&fx);
}

static void test_overlay_writable_root(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	full_spec(&ts, &fx);
	rep = run_container(&fx, &ts.spec, true, probe_full);
	CHECK(rep != NULL);
	if (rep) {
		check_full(rep, "overlay");
		CHECK_KV(rep, "root_write", "0");
	}
	/* The write went to the upper layer; the image is untouched, and so
	 * are the mount points the set-up created (proc, sys, dev, data). */
	CHECK(host_has(&fx, "state/upper/newfile"));
	CHECK(!host_has(&fx, "lower/newfile"));
	CHECK(host_has(&fx, "state/upper/proc"));
	CHECK(!host_has(&fx, "lower/proc"));
	CHECK(!host_has(&fx, "lower/data"));
	free(rep);
	fixture_done(&fx);
	CHECK(access(fx.state, F_OK) < 0);
}

static void test_bind_rootfs(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	full_spec(&ts, &fx);
	rep = run_container(&fx, &ts.spec, false, probe_full);
	CHECK(rep != NULL);
	if (rep) {
		check_full(rep, fs_name(fx.lower));
		CHECK_KV(rep, "root_write", "0");
	}
	/* Without overlay the container writes to the source itself. */
	CHECK(host_has(&fx, "lower/newfile"));
	CHECK(!host_has(&fx, "state/upper"));
	free(rep);
	fixture_done(&fx);
}

/* rootfs_cleanup removes upper/work/rootfs and nothing else. */
static void test_cleanup(void)
{
	struct fixture fx;
	struct test_spec ts;
	struct kr_err err = { 0 };
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	memset(&ts, 0, sizeof(ts));
	add_mount(&ts, "/proc", "proc", "proc", NSD, NULL);
	rep = run_container(&fx, &ts.spec, true, NULL);
	CHECK_KV(rep, "setup", "ok");
	CHECK(host_has(&fx, "state/upper"));
	CHECK(host_has(&fx, "state/work"));
	CHECK(host_has(&fx, "state/rootfs"));
	CHECKF(rootfs_cleanup(fx.state, &err) == 0, "%s", err.msg);
	CHECK(!host_has(&fx, "state/upper"));
	CHECK(!host_has(&fx, "state/work"));
	CHECK(!host_has(&fx, "state/rootfs"));
	CHECK(host_has(&fx, "state"));
	CHECK(host_has(&fx, "lower/marker"));
	/* Again: nothing to do is fine. */
	CHECKF(rootfs_cleanup(fx.state, &err) == 0, "%s", err.msg);
	free(rep);
	fixture_done(&fx);
}

/* A rootfs still mounted (in the caller's namespace) is refused rather
 * than emptied: emptying it would delete the image. */
static void test_cleanup_refuses_mounted(void)
{
	struct fixture fx;
	pid_t pid;

	REQUIRE(fixture_init(&fx) == 0);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct kr_err err = { 0 };
		char root[PATH_MAX];

		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
		    pathf(root, "%s/rootfs", fx.state) < 0 ||
		    mkdir(root, 0755) < 0 ||
		    mount(fx.lower, root, NULL, MS_BIND, NULL) < 0)
			_exit(2);
		if (rootfs_cleanup(fx.state, &err) == 0)
			_exit(3);
		if (err.errnum != EBUSY || !strstr(err.msg, "still mounted"))
			_exit(4);
		_exit(0);
	}
	CHECK(pid > 0 && wait_exit(pid) == 0);
	CHECK(host_has(&fx, "lower/marker"));
	CHECK(host_has(&fx, "lower/bin/busybox"));
	fixture_done(&fx);
}

static void test_missing_source(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	memset(&ts, 0, sizeof(ts));
	default_mounts(&ts);
	add_mount(&ts, "/data", NULL, fx.missing, MS_BIND | MS_REC, NULL);
	rep = run_container(&fx, &ts.spec, true, NULL);
	CHECK_KV(rep, "setup", "mount /data: No such file or directory");
	CHECK_KV(rep, "exit", "1");
	CHECK_KV(rep, "sandbox_mounts", "same");
	free(rep);
	fixture_done(&fx);
}

static void test_bad_type(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	memset(&ts, 0, sizeof(ts));
	add_mount(&ts, "/proc", "proc", "proc", NSD, NULL);
	add_mount(&ts, "/weird", "kr-no-such-fs", "none", 0, NULL);
	rep = run_container(&fx, &ts.spec, false, NULL);
	CHECK_KV(rep, "setup", "mount /weird: No such device");
	CHECK_KV(rep, "sandbox_mounts", "same");
	free(rep);
	fixture_done(&fx);
}

static void probe_escape(int out)
{
	put_file_kv(out, "etc_mount", "/etc/kr-escape/hello");
	put(out, "fs /escaped=%s", fs_name("/escaped"));
	put(out, "fs /tmp/x=%s", fs_name("/tmp/kr-escape"));
	put_file_kv(out, "etc_hostname", "/etc/hostname");
}

/* Destinations through symlinks and ".." stay inside the root. */
static void test_symlink_escape(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	REQUIRE(access("/etc/kr-escape", F_OK) < 0);
	REQUIRE(access("/tmp/kr-escape", F_OK) < 0);
	memset(&ts, 0, sizeof(ts));
	add_mount(&ts, "/proc", "proc", "proc", NSD, NULL);
	/* evil -> /etc: lands on the image's /etc */
	add_mount(&ts, "/evil/kr-escape", NULL, fx.vol, MS_BIND, NULL);
	add_mount(&ts, "/../../../escaped", "tmpfs", "tmpfs", 0, NULL);
	/* evil_rel -> ../../(...)/tmp: lands on the image's /tmp */
	add_mount(&ts, "/evil_rel/kr-escape", "tmpfs", "tmpfs", 0, NULL);
	rep = run_container(&fx, &ts.spec, true, probe_escape);
	CHECK_KV(rep, "setup", "ok");
	CHECK_KV(rep, "etc_mount", "14:from the host");
	CHECK_KV(rep, "etc_hostname", "7:rootfs");
	CHECK_KV(rep, "fs /escaped", "tmpfs");
	CHECK_KV(rep, "fs /tmp/x", "tmpfs");
	CHECK_KV(rep, "sandbox_mounts", "same");
	/* Nothing was created on the host, the mount points are in the
	 * container's upper layer. */
	CHECK(access("/etc/kr-escape", F_OK) < 0);
	CHECK(access("/tmp/kr-escape", F_OK) < 0);
	CHECK(host_has(&fx, "state/upper/etc/kr-escape"));
	CHECK(host_has(&fx, "state/upper/tmp/kr-escape"));
	CHECK(host_has(&fx, "state/upper/escaped"));
	free(rep);
	fixture_done(&fx);
}

static void probe_propagation(int out)
{
	char *mi = NULL;
	const char *root = NULL;

	if (kr_read_file("/proc/self/mountinfo", 1u << 20, &mi, NULL, NULL) == 0)
		root = strstr(mi, " / / ");
	put(out, "root_shared=%s", root && strstr(root, " shared:") &&
	    strstr(root, " shared:") < strchr(root, '\n') ? "yes" : "no");
	free(mi);
}

/* rootfsPropagation "rshared": the container's "/" is shared, and still
 * nothing of the set-up shows in the agent's namespace. */
static void test_rootfs_propagation(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	memset(&ts, 0, sizeof(ts));
	default_mounts(&ts);
	ts.spec.rootfs_propagation = (char *)"rshared";
	rep = run_container(&fx, &ts.spec, true, probe_propagation);
	CHECK_KV(rep, "setup", "ok");
	CHECK_KV(rep, "root_shared", "yes");
	CHECK_KV(rep, "sandbox_mounts", "same");
	ts.spec.rootfs_propagation = (char *)"bogus";
	free(rep);
	rep = run_container(&fx, &ts.spec, true, NULL);
	CHECK_KV(rep, "setup",
		 "linux.rootfsPropagation: unknown value \"bogus\"");
	free(rep);
	fixture_done(&fx);
}

/* In a user namespace (rootless-like, as with a spec's user namespace):
 * sysfs is refused without a network namespace and mknod without
 * CAP_MKNOD, so sysfs becomes a bind of /sys and devices binds. */
static void test_user_namespace(void)
{
	struct oci_namespace userns = { .type = CLONE_NEWUSER };
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	if (access("/dev/fuse", F_OK) < 0)
		SKIP("no /dev/fuse on this host to bind as a device");
	REQUIRE(fixture_init(&fx) == 0);
	full_spec(&ts, &fx);
	ts.spec.n_devices = 0;
	add_device(&ts, "/dev/fuse", 'c', 10, 229, 0600, 0, 0);
	add_device(&ts, "/dev/kr/fifo", 'p', 0, 0, 0640, 0, 0);
	ts.spec.root_readonly = true;
	ts.spec.namespaces = &userns;
	ts.spec.n_namespaces = 1;
	rep = run_in(&fx, &ts.spec, true, probe_full, RUN_USERNS);
	CHECK_KV(rep, "sandbox_mounts", "same");
	CHECK_KV(rep, "setup", "ok");
	CHECK_KV(rep, "finalize", "ok");
	CHECK_KV(rep, "busybox", "0:image|/bin/busybox|2|");
	CHECK_KV(rep, "fs /sys", "sysfs");
	CHECK_KV(rep, "sys_write", "EROFS");
	/* the bind is recursive: the agent's /sys/fs/cgroup mount came along */
	CHECK_KV(rep, "fs /sys/fs/cgroup", fs_name("/sys/fs/cgroup"));
	CHECK_KV(rep, "node /dev/null", "c 1:3 0666 0:0");
	CHECK_KV(rep, "devnull", "ok");
	CHECK_CONTAINS(kv(rep, "node /dev/fuse"), "c 10:229 ");
	CHECK_KV(rep, "node /dev/kr/fifo", "p 0:0 0640 0:0");
	CHECK_KV(rep, "ptmx", "/dev/pts/0");
	CHECK_KV(rep, "fs /dev/mqueue", "mqueue");
	CHECK_KV(rep, "keys", "0:");
	CHECK_KV(rep, "fs /proc/acpi", "tmpfs");
	CHECK_KV(rep, "proc_sys_write", "EROFS");
	CHECK_KV(rep, "ro_data_write", "EROFS");
	CHECK_KV(rep, "root_write", "EROFS");
	free(rep);
	fixture_done(&fx);
}

static void probe_cgroup(int out)
{
	put(out, "fs /sys/fs/cgroup=%s", fs_name("/sys/fs/cgroup"));
	put(out, "cgroup_controllers=%s",
	    access("/sys/fs/cgroup/cgroup.controllers", F_OK) ? "no" : "yes");
	put(out, "cgroup_write=%s", mkdir("/sys/fs/cgroup/kr-test", 0755) < 0 ?
	    errname(errno) : "0");
}

/* runc's "cgroup" mount becomes cgroup2 when the agent's cgroups are v2
 * (this host is a v1/v2 hybrid: the sandbox mounts cgroup2 to look v2). */
static void test_cgroup2(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	memset(&ts, 0, sizeof(ts));
	default_mounts(&ts);
	rep = run_in(&fx, &ts.spec, true, probe_cgroup, RUN_CGROUP2);
	CHECK_KV(rep, "setup", "ok");
	CHECK_KV(rep, "fs /sys/fs/cgroup", "cgroup2");
	CHECK_KV(rep, "cgroup_controllers", "yes");
	CHECK_KV(rep, "cgroup_write", "EROFS");
	CHECK_KV(rep, "sandbox_mounts", "same");
	free(rep);
	fixture_done(&fx);
}

/* A spec without a /dev mount still gets a tmpfs /dev with its devices. */
static void test_default_dev(void)
{
	struct fixture fx;
	struct test_spec ts;
	char *rep;

	REQUIRE(fixture_init(&fx) == 0);
	memset(&ts, 0, sizeof(ts));
	add_mount(&ts, "/proc", "proc", "proc", NSD, NULL);
	add_mount(&ts, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620");
	rep = run_container(&fx, &ts.spec, true, probe_devices);
	CHECK_KV(rep, "setup", "ok");
	CHECK_KV(rep, "fs /dev", "tmpfs");
	CHECK_KV(rep, "fs /dev/pts", "devpts");
	CHECK_KV(rep, "node /dev/null", "c 1:3 0666 0:0");
	CHECK_KV(rep, "devnull", "ok");
	CHECK_KV(rep, "ptmx", "/dev/pts/0");
	CHECK_KV(rep, "fs /dev/shm", "tmpfs");	/* a directory of /dev's tmpfs */
	CHECK_KV(rep, "sandbox_mounts", "same");
	free(rep);
	fixture_done(&fx);
}

/* ---- mounts_resolve, without namespaces ------------------------------------*/

/* Where fd points, relative to root ("" for root itself). */
static const char *fd_where(int fd, const char *root)
{
	static char buf[PATH_MAX];
	char fdp[MOUNTS_FD_PATH_MAX];
	ssize_t n;

	n = readlink(mounts_fd_path(fdp, fd), buf, sizeof(buf) - 1);
	buf[n < 0 ? 0 : n] = '\0';
	if (!strncmp(buf, root, strlen(root)))
		return buf + strlen(root);
	return buf;
}

static int resolve_errno(int rootfd, const char *path, enum mounts_create c)
{
	struct kr_err err = { 0 };
	int fd = mounts_resolve(rootfd, path, c, &err);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return err.errnum;
}

#define CHECK_RESOLVE(path, create, want)                                     \
	do {                                                                  \
		struct kr_err _e = { 0 };                                     \
		int _fd = mounts_resolve(rootfd, path, create, &_e);          \
		CHECKF(_fd >= 0, "%s: %s", path, _e.msg);                     \
		if (_fd >= 0) {                                               \
			CHECK_STREQ(fd_where(_fd, root), want);               \
			close(_fd);                                           \
		}                                                             \
	} while (0)

static void test_resolve(void)
{
	char root[] = "/tmp/kr-resolve-XXXXXX", p[PATH_MAX];
	struct kr_err err = { 0 };
	struct stat st;
	int rootfd;

	REQUIRE(mkdtemp(root));
	REQUIRE(pathf(p, "%s/a/b", root) == 0 && kr_mkdir_p(p, 0755, &err) == 0);
	REQUIRE(pathf(p, "%s/abs", root) == 0 && symlink("/a", p) == 0);
	REQUIRE(pathf(p, "%s/a/up", root) == 0 && symlink("../../../../..", p) == 0);
	REQUIRE(pathf(p, "%s/loop1", root) == 0 && symlink("loop2", p) == 0);
	REQUIRE(pathf(p, "%s/loop2", root) == 0 && symlink("/loop1", p) == 0);
	REQUIRE(pathf(p, "%s/dangling", root) == 0 && symlink("/made/here", p) == 0);
	REQUIRE(pathf(p, "%s/hosttmp", root) == 0 && symlink("/tmp", p) == 0);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(rootfd >= 0);

	CHECK_RESOLVE("/", MOUNTS_NO_CREATE, "");
	CHECK_RESOLVE("/a/b", MOUNTS_NO_CREATE, "/a/b");
	CHECK_RESOLVE("a//b/", MOUNTS_NO_CREATE, "/a/b");
	CHECK_RESOLVE("/abs/b", MOUNTS_NO_CREATE, "/a/b");
	CHECK_RESOLVE("/../../a/./../a/b", MOUNTS_NO_CREATE, "/a/b");
	CHECK_RESOLVE("/a/up/a", MOUNTS_NO_CREATE, "/a");
	CHECK_RESOLVE("/a/up", MOUNTS_NO_CREATE, "");
	CHECK(resolve_errno(rootfd, "/loop1", MOUNTS_NO_CREATE) == ELOOP);
	CHECK(resolve_errno(rootfd, "/loop1/x", MOUNTS_CREATE_DIR) == ELOOP);
	CHECK(resolve_errno(rootfd, "/a/b/c/d", MOUNTS_NO_CREATE) == ENOENT);
	/* /tmp of the root, never the host's */
	CHECK(resolve_errno(rootfd, "/hosttmp", MOUNTS_NO_CREATE) == ENOENT);
	CHECK_RESOLVE("/hosttmp/x", MOUNTS_CREATE_DIR, "/tmp/x");
	/* a dangling link is created at its target, inside the root */
	CHECK_RESOLVE("/dangling", MOUNTS_CREATE_DIR, "/made/here");
	CHECK(pathf(p, "%s/made/here", root) == 0 && stat(p, &st) == 0 &&
	      S_ISDIR(st.st_mode));
	CHECK_RESOLVE("/f/file", MOUNTS_CREATE_FILE, "/f/file");
	CHECK(pathf(p, "%s/f/file", root) == 0 && stat(p, &st) == 0 &&
	      S_ISREG(st.st_mode));
	CHECK(pathf(p, "%s/f", root) == 0 && stat(p, &st) == 0 &&
	      S_ISDIR(st.st_mode));
	CHECK(resolve_errno(rootfd, "/f/file/x", MOUNTS_CREATE_DIR) == ENOTDIR);
	CHECK(mounts_resolve(rootfd, "/loop1", MOUNTS_NO_CREATE, &err) < 0);
	CHECK_CONTAINS(err.msg, "Too many levels of symbolic links");

	close(rootfd);
	CHECK(kr_rm_rf(root, &err) == 0);
}

static void test_helpers(void)
{
	unsigned long f = 0;

	CHECK(mounts_path_eq("/dev", "/dev"));
	CHECK(mounts_path_eq("/dev/", "//dev"));
	CHECK(!mounts_path_eq("/dev", "/dev/pts"));
	CHECK(!mounts_path_eq("/de", "/dev"));
	CHECK(mounts_parse_propagation("rslave", &f) == 0 &&
	      f == (MS_SLAVE | MS_REC));
	CHECK(mounts_parse_propagation("shared", &f) == 0 && f == MS_SHARED);
	CHECK(mounts_parse_propagation("bogus", &f) < 0);
	CHECK(mounts_get_flags("/proc", &f) == 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	KR_TEST(test_helpers);
	KR_TEST(test_resolve);
	if (geteuid() != 0) {
		printf("# not root: the namespace tests are skipped\n");
		return kr_test_done();
	}
	KR_TEST(test_overlay_readonly_root);
	KR_TEST(test_overlay_writable_root);
	KR_TEST(test_bind_rootfs);
	KR_TEST(test_cleanup);
	KR_TEST(test_cleanup_refuses_mounted);
	KR_TEST(test_missing_source);
	KR_TEST(test_bad_type);
	KR_TEST(test_symlink_escape);
	KR_TEST(test_default_dev);
	KR_TEST(test_rootfs_propagation);
	KR_TEST(test_user_namespace);
	KR_TEST(test_cgroup2);
	return kr_test_done();
}
