/* Cgroup module tests.
 *
 * The v1 tests run against this host's real v1 hierarchies (root needed):
 * limits, freeze, OOM kill and notification, the pids limit, kill and
 * destroy.  The v2 backend cannot run for real here (the host's cgroup2
 * mount has no controllers), so its file writing, stats parsing and OOM
 * watch run against a fake tree of ordinary files.  After every test: no
 * cgroup directory and no child process may be left. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/kr_test.h"
#include "cgroup_internal.h"
#include "kr/util.h"

#define MiB (1024 * 1024)
#define CG_ROOT "/sys/fs/cgroup"

static char prefix[64];
static char fake_root[128];
static const char *const v1_ctrls[] = {
	"memory", "pids", "freezer", "cpu", "cpuacct", "cpuset"
};

/* ---- helpers --------------------------------------------------------- */

static bool path_exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static const char *rd(const char *dir, const char *file, char *buf,
		      size_t len)
{
	char p[512];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	buf[0] = '\0';
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return buf;
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';	/* first line only */
	return buf;
}

static void put(const char *dir, const char *file, const char *data)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		printf("#   put %s failed\n", p);
	if (fd >= 0)
		close(fd);
}

/* Wait (bounded) for one child; -1 if it did not end. */
static int wait_child(pid_t pid, int *status)
{
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0)
			return -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

/* A child that blocks on a pipe; alarm() bounds its life if we crash. */
static pid_t spawn_waiter(int *wfd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char c;

		close(p[1]);
		alarm(30);
		if (read(p[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(p[0]);
	*wfd = p[1];
	return pid;
}

/* v1 dirs of our own cgroups: <mount>/<own path>/<prefix>. */
static void v1_prefix_dir(const char *ctrl, char *buf, size_t len)
{
	kr_cleanup_free char *self = NULL;
	kr_cleanup_free char *own = NULL;

	if (kr_read_file("/proc/self/cgroup", 65536, &self, NULL, NULL) < 0 ||
	    cg_v1_own_path(self, ctrl, &own) < 0)
		own = kr_xstrdup("/");
	snprintf(buf, len, "%s/%s%s%s", CG_ROOT, ctrl,
		 strcmp(own, "/") ? own : "", "/");
	strncat(buf, prefix, len - strlen(buf) - 1);
}

/* Every test ends here: children reaped (orphaned grandchildren come to us
 * as subreaper), no cgroup directory, no fake tree. */
static void check_leftovers(void)
{
	char dir[512];
	int status, left = 0;

	for (int i = 0; i < 200; i++) {
		pid_t r = waitpid(-1, &status, WNOHANG);

		if (r < 0 && errno == ECHILD)
			break;
		if (r == 0)
			usleep(10000);
		left = r == 0;
	}
	CHECKF(!left, "child processes left behind");
	for (size_t i = 0; i < KR_ARRAY_SIZE(v1_ctrls); i++) {
		v1_prefix_dir(v1_ctrls[i], dir, sizeof(dir));
		CHECKF(!path_exists(dir), "%s left behind", dir);
		if (path_exists(dir))
			cg_rmdir(dir, NULL);
	}
	CHECKF(!path_exists(fake_root), "%s left behind", fake_root);
	kr_rm_rf(fake_root, NULL);
}

#define CHECKED(fn)                                   \
	static void fn##_(void)                       \
	{                                             \
		fn();                                 \
		if (!kr_t_cur_skipped)                \
			check_leftovers();            \
	}

static bool have_v1(void)
{
	char p[64];

	snprintf(p, sizeof(p), "%s/memory/memory.limit_in_bytes", CG_ROOT);
	return geteuid() == 0 && path_exists(p);
}

/* ---- pure functions -------------------------------------------------- */

/* Mount point of ctrl's hierarchy ("" if none), into a static buffer. */
static const char *find_mnt(const char *mi, const char *root, const char *ctrl)
{
	static char buf[256];
	char *mnt = NULL, *mroot = NULL;

	buf[0] = '\0';
	if (cg_v1_find_mount(mi, root, ctrl, &mnt, &mroot) == 0)
		snprintf(buf, sizeof(buf), "%s", mnt);
	free(mnt);
	free(mroot);
	return buf;
}

static void test_v1_mount_parsing(void)
{
	const char *mi =
		"30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
		"31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
		"34 30 0:31 /ns/root /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		"35 30 0:32 / /elsewhere/pids rw - cgroup cgroup rw,pids\n"
		"36 30 0:33 / /sys/fs/cgroup/my\\040freezer rw - cgroup cgroup rw,freezer\n"
		"40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
	const char *self =
		"9:name=systemd:/\n"
		"4:memory:/ns/root/process_api/abc\n"
		"2:cpu,cpuacct:/x\n"
		"0::/\n";
	kr_cleanup_free char *mnt = NULL;
	kr_cleanup_free char *root = NULL;
	kr_cleanup_free char *own = NULL;
	kr_cleanup_free char *dir = NULL;
	kr_cleanup_free char *own2 = NULL;
	kr_cleanup_free char *dir2 = NULL;

	CHECK_STREQ(find_mnt(mi, "/sys/fs/cgroup/", "cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
	CHECK_STREQ(find_mnt(mi, "/sys/fs/cgroup", "cpu"), "/sys/fs/cgroup/cpu,cpuacct");
	CHECK_STREQ(find_mnt(mi, "/sys/fs/cgroup", "freezer"), "/sys/fs/cgroup/my freezer");
	CHECK_STREQ(find_mnt(mi, "/sys/fs/cgroup", "pids"), "");	/* not under root */
	CHECK_STREQ(find_mnt(mi, "/sys/fs/cgroup", "cpuset"), "");
	/* A mount of a sub-tree (cgroup namespace): its root is stripped. */
	REQUIRE(cg_v1_find_mount(mi, "/sys/fs/cgroup", "memory", &mnt, &root) == 0);
	CHECK_STREQ(root, "/ns/root");
	REQUIRE(cg_v1_own_path(self, "memory", &own) == 0);
	CHECK_STREQ(own, "/ns/root/process_api/abc");
	dir = cg_v1_parent_dir(mnt, root, own);
	CHECK_STREQ(dir, "/sys/fs/cgroup/memory/process_api/abc");
	REQUIRE(cg_v1_own_path(self, "cpuacct", &own2) == 0);
	CHECK_STREQ(own2, "/x");
	CHECK(cg_v1_own_path(self, "systemd", &own2) < 0);
	dir2 = cg_v1_parent_dir("/m", "/", "/");
	CHECK_STREQ(dir2, "/m");
}

static void test_v2_conversions(void)
{
	struct oci_resources r;
	struct kr_err err = { 0 };
	bool set;
	int64_t v;

	CHECK(cg_v2_shares_to_weight(2) == 1);
	CHECK(cg_v2_shares_to_weight(1024) == 39);
	CHECK(cg_v2_shares_to_weight(262144) == 10000);
	CHECK(cg_v2_shares_to_weight(1) == 1);		/* clamped, no wrap */
	CHECK(cg_v2_shares_to_weight(1 << 30) == 10000);

	memset(&r, 0, sizeof(r));
	r.has_memory_limit = r.has_memory_swap = true;
	r.memory_limit = 32 * MiB;
	r.memory_swap = 64 * MiB;
	CHECK(cg_v2_swap_value(&r, &set, &v, &err) == 0 && set && v == 32 * MiB);
	r.memory_swap = 32 * MiB;	/* memory == memory+swap: no swap */
	CHECK(cg_v2_swap_value(&r, &set, &v, &err) == 0 && set && v == 0);
	r.memory_swap = -1;
	CHECK(cg_v2_swap_value(&r, &set, &v, &err) == 0 && set && v == -1);
	r.memory_swap = 16 * MiB;
	CHECK(cg_v2_swap_value(&r, &set, &v, &err) < 0);
	CHECK_CONTAINS(err.msg, "below the memory limit");
	r.has_memory_swap = false;
	CHECK(cg_v2_swap_value(&r, &set, &v, &err) == 0 && !set);
	r.memory_limit = -1;	/* unlimited memory: unlimited swap too */
	CHECK(cg_v2_swap_value(&r, &set, &v, &err) == 0 && set && v == -1);
	r.has_memory_limit = false;
	r.has_memory_swap = true;
	r.memory_swap = 64 * MiB;
	CHECK(cg_v2_swap_value(&r, &set, &v, &err) < 0);
	CHECK(err.errnum == EINVAL);
}

static void test_bad_names(void)
{
	struct kr_err err = { 0 };

	CHECK(!cgroup_manager_new(CG_ROOT, "/abs", &err));
	CHECK_CONTAINS(err.msg, "relative path");
	CHECK(!cgroup_manager_new(CG_ROOT, "a/../b", &err));
	CHECK(!cgroup_manager_new(CG_ROOT, "a//b", &err));
	CHECK(!cgroup_manager_new(CG_ROOT, "", &err));
	CHECK(!cgroup_manager_new("/nonexistent-root", "x", &err));
	CHECK_CONTAINS(err.msg, "statfs /nonexistent-root");
	/* v1 without the required controllers: named in the error. */
	CHECK(!cg_manager_new_ops(&cg_v1_ops, "/tmp", "x", &err));
	CHECK_STREQ(err.msg, "cgroup v1 under /tmp: the freezer controller (cgroup v1) is not mounted under /tmp: No such file or directory");
}

/* ---- v2 against a fake tree ------------------------------------------ */

static void fake_cgroup_dir(const char *dir, const char *controllers)
{
	static const char *const files[] = {
		"cgroup.procs", "cgroup.subtree_control", "cgroup.freeze",
		"memory.max", "memory.low", "memory.swap.max", "memory.events",
		"cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems",
		"pids.max",
	};

	mkdir(dir, 0755);
	put(dir, "cgroup.controllers", controllers);
	for (size_t i = 0; i < KR_ARRAY_SIZE(files); i++)
		put(dir, files[i], "");
	put(dir, "cgroup.events", "populated 0\nfrozen 0\n");
}

static struct cgroup_manager *fake_v2_manager(char *kdir, char *c1,
					      size_t len)
{
	struct kr_err err = { 0 };
	struct cgroup_manager *m;

	snprintf(fake_root, sizeof(fake_root), "/tmp/kr-test-cgv2-%d", (int)getpid());
	fake_cgroup_dir(fake_root, "cpu io memory pids\n");
	snprintf(kdir, len, "%s/kata-run", fake_root);
	fake_cgroup_dir(kdir, "cpuset cpu io memory hugetlb pids\n");
	snprintf(c1, len, "%s/c1", kdir);
	fake_cgroup_dir(c1, "cpuset cpu io memory hugetlb pids\n");
	m = cg_manager_new_ops(&cg_v2_ops, fake_root, "kata-run", &err);
	if (!m)
		printf("#   %s\n", err.msg);
	return m;
}

static void test_v2_fake_resources(void)
{
	struct kr_err err = { 0 };
	struct oci_resources r = {
		.has_memory_limit = true, .memory_limit = 32 * MiB,
		.has_memory_swap = true, .memory_swap = 48 * MiB,
		.has_memory_reservation = true, .memory_reservation = 16 * MiB,
		.has_cpu_shares = true, .cpu_shares = 1024,
		.has_cpu_quota = true, .cpu_quota = 50000,
		.has_cpu_period = true, .cpu_period = 100000,
		.cpuset_cpus = "0-1", .cpuset_mems = "0",
		.has_pids_limit = true, .pids_limit = -1,
	};
	char kdir[256], c1[256], b[128];
	struct cgroup_manager *m = fake_v2_manager(kdir, c1, sizeof(kdir));
	struct cgroup *cg;

	REQUIRE(m);
	CHECK(cgroup_manager_is_v2(m));
	CHECK_STREQ(rd(fake_root, "cgroup.subtree_control", b, sizeof(b)), "+memory +pids +cpu");
	CHECK_STREQ(rd(kdir, "cgroup.subtree_control", b, sizeof(b)),
		    "+memory +pids +cpu +cpuset");
	cg = cgroup_create(m, "c1", &r, &err);
	if (!cg)
		printf("#   %s\n", err.msg);
	REQUIRE(cg);
	CHECK_STREQ(rd(c1, "memory.max", b, sizeof(b)), "33554432");
	CHECK_STREQ(rd(c1, "memory.swap.max", b, sizeof(b)), "16777216");
	CHECK_STREQ(rd(c1, "memory.low", b, sizeof(b)), "16777216");
	CHECK_STREQ(rd(c1, "cpu.weight", b, sizeof(b)), "39");
	CHECK_STREQ(rd(c1, "cpu.max", b, sizeof(b)), "50000 100000");
	CHECK_STREQ(rd(c1, "cpuset.cpus", b, sizeof(b)), "0-1");
	CHECK_STREQ(rd(c1, "cpuset.mems", b, sizeof(b)), "0");
	CHECK_STREQ(rd(c1, "pids.max", b, sizeof(b)), "max");

	/* Update: only the fields given are written (files truncated first:
	 * these are ordinary files, not cgroupfs). */
	put(c1, "memory.max", "");
	put(c1, "cpu.max", "");
	memset(&r, 0, sizeof(r));
	r.has_memory_limit = true;
	r.memory_limit = -1;
	r.has_cpu_quota = true;
	r.cpu_quota = -1;
	r.has_pids_limit = true;
	r.pids_limit = 100;
	put(c1, "pids.max", "");
	put(c1, "memory.swap.max", "");
	CHECK(cgroup_update(cg, &r, &err) == 0);
	CHECK_STREQ(rd(c1, "memory.max", b, sizeof(b)), "max");
	CHECK_STREQ(rd(c1, "memory.swap.max", b, sizeof(b)), "max");
	CHECK_STREQ(rd(c1, "cpu.max", b, sizeof(b)), "max");
	CHECK_STREQ(rd(c1, "pids.max", b, sizeof(b)), "100");
	/* A lone period keeps the current quota. */
	memset(&r, 0, sizeof(r));
	r.has_cpu_period = true;
	r.cpu_period = 250000;	/* same length: the fake file is not truncated */
	put(c1, "cpu.max", "30000 100000\n");
	CHECK(cgroup_update(cg, &r, &err) == 0);
	CHECK_STREQ(rd(c1, "cpu.max", b, sizeof(b)), "30000 250000");

	/* Errors name the file: /dev/full fails every write. */
	{
		char p[512];

		snprintf(p, sizeof(p), "%s/memory.max", c1);
		unlink(p);
		CHECK(symlink("/dev/full", p) == 0);
		memset(&r, 0, sizeof(r));
		r.has_memory_limit = true;
		r.memory_limit = 100 * MiB;
		CHECK(cgroup_update(cg, &r, &err) < 0);
		snprintf(p, sizeof(p), "cgroup c1: update: write 104857600 to %s/memory.max: No space left on device", c1);
		CHECK_STREQ(err.msg, p);
	}

	CHECK(cgroup_add_pid(cg, 4242, &err) == 0);
	CHECK_STREQ(rd(c1, "cgroup.procs", b, sizeof(b)), "4242");
	put(c1, "cgroup.procs", "");

	/* Destroy: rmdir of this fake dir fails (it holds ordinary files) and
	 * the error names it. */
	CHECK(cgroup_destroy(cg, &err) < 0);
	CHECK_CONTAINS(err.msg, "rmdir");
	CHECK_CONTAINS(err.msg, c1);
	cgroup_manager_free(m);
	CHECK(path_exists(kdir));	/* not ours: it existed before */
	kr_rm_rf(fake_root, NULL);
}

static void test_v2_fake_create_errors(void)
{
	struct kr_err err = { 0 };
	struct oci_resources r = { .has_pids_limit = true, .pids_limit = 5 };
	char kdir[256], c1[256], p[512];
	struct cgroup_manager *m = fake_v2_manager(kdir, c1, sizeof(kdir));

	REQUIRE(m);
	/* c2 is made by cgroup_create, as an empty dir: no pids.max. */
	CHECK(!cgroup_create(m, "c2", &r, &err));
	snprintf(p, sizeof(p), "create cgroup c2: open %s/c2/pids.max: No such file or directory", kdir);
	CHECK_STREQ(err.msg, p);
	CHECK(err.errnum == ENOENT);
	snprintf(p, sizeof(p), "%s/c2", kdir);
	CHECK(!path_exists(p));		/* undone */
	CHECK(!cgroup_create(m, "..", NULL, &err));
	CHECK(!cgroup_create(m, "a/b", NULL, &err));
	CHECK(err.errnum == EINVAL);
	cgroup_manager_free(m);

	/* A new prefix level without cgroup.controllers (not cgroupfs): the
	 * manager fails and removes the levels it made. */
	CHECK(!cg_manager_new_ops(&cg_v2_ops, fake_root, "new/deeper", &err));
	CHECK_CONTAINS(err.msg, "new/cgroup.controllers");
	snprintf(p, sizeof(p), "%s/new", fake_root);
	CHECK(!path_exists(p));
	kr_rm_rf(fake_root, NULL);
}

static void test_v2_fake_freeze_stats_oom(void)
{
	struct kr_err err = { 0 };
	char kdir[256], c1[256], b[64];
	struct cgroup_manager *m = fake_v2_manager(kdir, c1, sizeof(kdir));
	struct cgroup *cg;
	struct cgroup_stats st;
	struct pollfd pfd;
	uint64_t kills = 99;

	REQUIRE(m);
	put(c1, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\n");
	cg = cgroup_create(m, "c1", NULL, &err);
	REQUIRE(cg);

	put(c1, "cgroup.events", "populated 1\nfrozen 1\n");
	CHECK(cgroup_freeze(cg, true, &err) == 0);
	CHECK_STREQ(rd(c1, "cgroup.freeze", b, sizeof(b)), "1");
	put(c1, "cgroup.events", "populated 1\nfrozen 0\n");
	CHECK(cgroup_freeze(cg, false, &err) == 0);
	CHECK_STREQ(rd(c1, "cgroup.freeze", b, sizeof(b)), "0");
	CHECK(cgroup_freeze(cg, true, &err) < 0);	/* never frozen: bounded */
	CHECK(err.errnum == ETIMEDOUT);
	CHECK_CONTAINS(err.msg, "cgroup.events");

	put(c1, "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
	    "core_sched.force_idle_usec 0\nnr_periods 7\nnr_throttled 3\n"
	    "throttled_usec 250\nnr_bursts 0\nburst_usec 0\n");
	put(c1, "memory.current", "1048576\n");
	put(c1, "memory.peak", "2097152\n");
	put(c1, "memory.max", "max\n");
	put(c1, "memory.swap.current", "4096\n");
	put(c1, "memory.stat", "anon 65536\nfile 131072\nkernel 8192\nanon_thp 0\nfile_mapped 4096\n");
	put(c1, "pids.current", "3\n");
	put(c1, "pids.max", "max\n");
	CHECK(cgroup_stats(cg, &st, &err) == 0);
	CHECK(st.cpu_usage_ns == 1500000 && st.cpu_user_ns == 1000000 &&
	      st.cpu_system_ns == 500000);
	CHECK(st.cpu_nr_periods == 7 && st.cpu_nr_throttled == 3 &&
	      st.cpu_throttled_ns == 250000);
	CHECK(st.memory_usage == 1048576 && st.memory_max_usage == 2097152);
	CHECK(st.memory_limit == UINT64_MAX);
	CHECK(st.memory_rss == 65536 && st.memory_cache == 131072);
	CHECK(st.memory_swap == 4096 && st.memory_oom_kills == 1);
	CHECK(st.pids_current == 3 && st.pids_limit == 0);
	put(c1, "pids.max", "16\n");
	put(c1, "memory.max", "33554432\n");
	CHECK(cgroup_stats(cg, &st, &err) == 0);
	CHECK(st.pids_limit == 16 && st.memory_limit == 32 * MiB);
	put(c1, "pids.current", "banana\n");
	CHECK(cgroup_stats(cg, &st, &err) < 0);
	CHECK_CONTAINS(err.msg, "pids.current");

	/* OOM: the inotify watch fires on a change of memory.events. */
	pfd.fd = cgroup_oom_fd(cg);
	pfd.events = POLLIN;
	REQUIRE(pfd.fd >= 0);
	CHECK(poll(&pfd, 1, 0) == 0);
	CHECK(cgroup_oom_check(cg, &kills, &err) == 0 && kills == 0);
	put(c1, "memory.events", "low 0\nhigh 0\nmax 4\noom 3\noom_kill 3\n");
	CHECK(poll(&pfd, 1, 2000) == 1);
	CHECK(cgroup_oom_check(cg, &kills, &err) == 0 && kills == 2);
	CHECK(poll(&pfd, 1, 0) == 0);	/* consumed */
	CHECK(cgroup_oom_check(cg, &kills, &err) == 0 && kills == 0);

	put(c1, "cgroup.events", "populated 0\nfrozen 0\n");
	CHECK(cgroup_destroy(cg, &err) < 0);	/* fake dir: not empty */
	cgroup_manager_free(m);
	kr_rm_rf(fake_root, NULL);
}

/* Signals go to the pids listed in cgroup.procs; SIGKILL uses cgroup.kill
 * when the kernel has it. */
static void test_v2_fake_kill(void)
{
	struct kr_err err = { 0 };
	char kdir[256], c1[256], b[64];
	struct cgroup_manager *m = fake_v2_manager(kdir, c1, sizeof(kdir));
	struct cgroup *cg;
	pid_t pid, *pids = NULL;
	size_t n = 0;
	int wfd = -1, status = 0;

	REQUIRE(m);
	cg = cgroup_create(m, "c1", NULL, &err);
	REQUIRE(cg);
	pid = spawn_waiter(&wfd);
	REQUIRE(pid > 0);
	snprintf(b, sizeof(b), "%d\n", (int)pid);
	put(c1, "cgroup.procs", b);
	CHECK(cgroup_pids(cg, &pids, &n, &err) == 0 && n == 1 && pids[0] == pid);
	free(pids);
	CHECK(cgroup_kill_all(cg, SIGTERM, &err) == 0);
	CHECK(wait_child(pid, &status) == 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	close(wfd);
	put(c1, "cgroup.procs", "");
	put(c1, "cgroup.kill", "");
	CHECK(cgroup_kill_all(cg, SIGKILL, &err) == 0);
	CHECK_STREQ(rd(c1, "cgroup.kill", b, sizeof(b)), "1");
	put(c1, "cgroup.procs", "12\nx\n");
	CHECK(cgroup_pids(cg, &pids, &n, &err) < 0);
	CHECK_CONTAINS(err.msg, "bad pid");
	CHECK(cgroup_destroy(cg, &err) < 0);
	cgroup_manager_free(m);
	kr_rm_rf(fake_root, NULL);
}

/* ---- v1 on the real host --------------------------------------------- */

static struct cgroup_manager *v1_manager(void)
{
	struct kr_err err = { 0 };
	struct cgroup_manager *m = cgroup_manager_new(CG_ROOT, prefix, &err);

	if (!m)
		printf("#   manager: %s\n", err.msg);
	return m;
}

static void test_v1_limits_pids_kill(void)
{
	struct kr_err err = { 0 };
	struct oci_resources r = {
		.has_memory_limit = true, .memory_limit = 32 * MiB,
		.has_pids_limit = true, .pids_limit = 16,
		.has_cpu_quota = true, .cpu_quota = 50000,
		.has_cpu_period = true, .cpu_period = 100000,
		.has_cpu_shares = true, .cpu_shares = 512,
	};
	struct cgroup_manager *m;
	struct cgroup *cg;
	struct cgroup_stats st;
	pid_t pid, *pids = NULL;
	size_t n = 0;
	int wfd, status = 0;
	char b[128], cgline[512], bases[CG_NR][512];
	kr_cleanup_free char *procfile = NULL;

	if (!have_v1())
		SKIP("needs root and cgroup v1 memory controller");
	m = v1_manager();
	REQUIRE(m);
	CHECK(!cgroup_manager_is_v2(m));
	cg = cgroup_create(m, "c1", &r, &err);
	if (!cg)
		printf("#   %s\n", err.msg);
	REQUIRE(cg);
	CHECK_STREQ(rd(cg->path[CG_MEMORY], "memory.limit_in_bytes", b, sizeof(b)), "33554432");
	CHECK_STREQ(rd(cg->path[CG_PIDS], "pids.max", b, sizeof(b)), "16");
	CHECK_STREQ(rd(cg->path[CG_CPU], "cpu.cfs_quota_us", b, sizeof(b)), "50000");
	CHECK_STREQ(rd(cg->path[CG_CPU], "cpu.cfs_period_us", b, sizeof(b)), "100000");
	CHECK_STREQ(rd(cg->path[CG_CPU], "cpu.shares", b, sizeof(b)), "512");
	CHECK(rd(cg->path[CG_CPUSET], "cpuset.cpus", b, sizeof(b))[0] != '\0');

	pid = spawn_waiter(&wfd);
	REQUIRE(pid > 0);
	CHECK(cgroup_add_pid(cg, pid, &err) == 0);
	CHECK(cgroup_pids(cg, &pids, &n, &err) == 0 && n == 1 && pids && pids[0] == pid);
	free(pids);
	snprintf(b, sizeof(b), "/proc/%d/cgroup", (int)pid);
	CHECK(kr_read_file(b, 65536, &procfile, NULL, &err) == 0);
	CHECK_CONTAINS(procfile, prefix);

	CHECK(cgroup_stats(cg, &st, &err) == 0);
	CHECK(st.memory_limit == 32 * MiB);
	CHECK(st.pids_current >= 1 && st.pids_limit == 16);
	CHECK(st.memory_oom_kills == 0);

	memset(&r, 0, sizeof(r));
	r.has_memory_limit = true;
	r.memory_limit = 48 * MiB;
	CHECK(cgroup_update(cg, &r, &err) == 0);
	CHECK(cgroup_stats(cg, &st, &err) == 0 && st.memory_limit == 48 * MiB);
	r.memory_limit = -1;
	CHECK(cgroup_update(cg, &r, &err) == 0);
	CHECK(cgroup_stats(cg, &st, &err) == 0 && st.memory_limit == UINT64_MAX);

	/* Errors name the file and keep the kernel's errno. */
	memset(&r, 0, sizeof(r));
	r.cpuset_cpus = "abc";
	CHECK(cgroup_update(cg, &r, &err) < 0);
	snprintf(cgline, sizeof(cgline), "cgroup c1: update: write abc to %s/cpuset.cpus: Invalid argument",
		 cg->path[CG_CPUSET]);
	CHECK_STREQ(err.msg, cgline);

	CHECK(cgroup_kill_all(cg, SIGKILL, &err) == 0);
	CHECK(wait_child(pid, &status) == 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(wfd);
	CHECK(cgroup_destroy(cg, &err) == 0);
	/* The prefix exists in every hierarchy until the manager goes. */
	for (int c = 0; c < CG_NR; c++) {
		snprintf(bases[c], sizeof(bases[c]), "%s",
			 m->hier[c].base ? m->hier[c].base : "");
		CHECK(!bases[c][0] || path_exists(bases[c]));
	}
	cgroup_manager_free(m);
	for (int c = 0; c < CG_NR; c++)
		CHECKF(!bases[c][0] || !path_exists(bases[c]), "%s left", bases[c]);
}

/* cgroup_destroy alone kills what is left and removes every directory. */
static void test_v1_destroy_kills(void)
{
	struct kr_err err = { 0 };
	struct cgroup_manager *m;
	struct cgroup *cg;
	char paths[CG_NR][512];
	pid_t pid;
	int wfd, status = 0;

	if (!have_v1())
		SKIP("needs root and cgroup v1");
	m = v1_manager();
	REQUIRE(m);
	cg = cgroup_create(m, "c-destroy", NULL, &err);
	REQUIRE(cg);
	for (int c = 0; c < CG_NR; c++)
		snprintf(paths[c], sizeof(paths[c]), "%s", cg->path[c] ? cg->path[c] : "");
	pid = spawn_waiter(&wfd);
	REQUIRE(pid > 0);
	CHECK(cgroup_add_pid(cg, pid, &err) == 0);
	CHECK(cgroup_destroy(cg, &err) == 0);
	CHECK(wait_child(pid, &status) == 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(wfd);
	for (int c = 0; c < CG_NR; c++) {
		CHECKF(!paths[c][0] || !path_exists(paths[c]), "%s still there", paths[c]);
		CHECK(c == CG_CPUSET || c == CG_CPU || c == CG_CPUACCT || paths[c][0]);
	}
	cgroup_manager_free(m);
}

static void test_v1_freeze(void)
{
	struct kr_err err = { 0 };
	struct cgroup_manager *m;
	struct cgroup *cg;
	struct cgroup_stats st;
	volatile uint64_t *shm;
	uint64_t a, b2;
	pid_t pid;
	int status = 0;
	char b[64];

	if (!have_v1())
		SKIP("needs root and cgroup v1");
	shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	REQUIRE(shm != MAP_FAILED);
	m = v1_manager();
	REQUIRE(m);
	cg = cgroup_create(m, "c-freeze", NULL, &err);
	REQUIRE(cg);
	pid = fork();
	if (pid == 0) {
		time_t end = time(NULL) + 20;

		/* shm[0]: progress; shm[1]: stop request. */
		while (!shm[1] && time(NULL) < end)
			for (int i = 0; i < 100000; i++)
				shm[0]++;
		_exit(0);
	}
	REQUIRE(pid > 0);
	CHECK(cgroup_add_pid(cg, pid, &err) == 0);
	usleep(50000);
	CHECK(cgroup_freeze(cg, true, &err) == 0);
	CHECK_STREQ(rd(cg->path[CG_FREEZER], "freezer.state", b, sizeof(b)), "FROZEN");
	a = shm[0];
	usleep(200000);
	b2 = shm[0];
	CHECKF(a == b2, "frozen child progressed: %llu -> %llu",
	       (unsigned long long)a, (unsigned long long)b2);
	CHECK(cgroup_freeze(cg, false, &err) == 0);
	CHECK_STREQ(rd(cg->path[CG_FREEZER], "freezer.state", b, sizeof(b)), "THAWED");
	usleep(100000);
	CHECK(shm[0] > b2);
	CHECK(cgroup_stats(cg, &st, &err) == 0);
	CHECK(st.cpu_usage_ns > 0 && st.cpu_user_ns + st.cpu_system_ns > 0);
	/* A paused container stays paused when signalled, and a thawed
	 * SIGKILL ends it. */
	CHECK(cgroup_freeze(cg, true, &err) == 0);
	CHECK(cgroup_kill_all(cg, SIGCONT, &err) == 0);
	CHECK_STREQ(rd(cg->path[CG_FREEZER], "freezer.state", b, sizeof(b)), "FROZEN");
	CHECK(cgroup_kill_all(cg, SIGKILL, &err) == 0);
	CHECK(wait_child(pid, &status) == 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK(cgroup_destroy(cg, &err) == 0);
	cgroup_manager_free(m);
	munmap((void *)shm, 4096);
}

static void test_v1_oom(void)
{
	struct kr_err err = { 0 };
	struct oci_resources r = {
		.has_memory_limit = true, .memory_limit = 16 * MiB,
		.has_memory_swap = true, .memory_swap = 16 * MiB,
	};
	struct cgroup_manager *m;
	struct cgroup *cg;
	struct cgroup_stats st;
	struct pollfd pfd;
	uint64_t kills = 0;
	pid_t pid;
	int p[2], status = 0;

	if (!have_v1())
		SKIP("needs root and cgroup v1");
	m = v1_manager();
	REQUIRE(m);
	cg = cgroup_create(m, "c-oom", &r, &err);
	if (!cg)
		printf("#   %s\n", err.msg);
	REQUIRE(cg);
	pfd.fd = cgroup_oom_fd(cg);
	pfd.events = POLLIN;
	REQUIRE(pfd.fd >= 0);
	CHECK(poll(&pfd, 1, 0) == 0);
	REQUIRE(pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		size_t len = 64 * MiB;
		char c, *mem;

		close(p[1]);
		alarm(30);
		if (read(p[0], &c, 1) != 1)	/* wait until moved in */
			_exit(2);
		mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			_exit(3);
		for (size_t i = 0; i < len; i += 4096)
			mem[i] = 1;
		_exit(0);
	}
	REQUIRE(pid > 0);
	close(p[0]);
	CHECK(cgroup_add_pid(cg, pid, &err) == 0);
	CHECK(write(p[1], "g", 1) == 1);
	close(p[1]);
	CHECK(wait_child(pid, &status) == 0);
	CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	       "status 0x%x", status);
	CHECK(poll(&pfd, 1, 5000) == 1);
	CHECK(cgroup_oom_check(cg, &kills, &err) == 0);
	CHECKF(kills >= 1, "kills %llu", (unsigned long long)kills);
	CHECK(cgroup_oom_check(cg, &kills, &err) == 0 && kills == 0);
	CHECK(cgroup_stats(cg, &st, &err) == 0);
	CHECK(st.memory_oom_kills >= 1 && st.memory_limit == 16 * MiB);
	CHECK(st.memory_max_usage >= 15 * MiB);
	CHECK(cgroup_destroy(cg, &err) == 0);
	cgroup_manager_free(m);
}

/* The child forks until the pids limit (4, itself included) stops it. */
static void test_v1_pids_limit(void)
{
	struct kr_err err = { 0 };
	struct oci_resources r = { .has_pids_limit = true, .pids_limit = 4 };
	struct cgroup_manager *m;
	struct cgroup *cg;
	struct cgroup_stats st;
	int go[2], rep[2], msg[2] = { -1, -1 }, status = 0;
	pid_t pid;

	if (!have_v1())
		SKIP("needs root and cgroup v1");
	m = v1_manager();
	REQUIRE(m);
	cg = cgroup_create(m, "c-pids", &r, &err);
	REQUIRE(cg);
	REQUIRE(pipe(go) == 0 && pipe(rep) == 0);
	pid = fork();
	if (pid == 0) {
		int res[2] = { 0, 0 };
		char c;

		alarm(30);
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		for (int i = 0; i < 8; i++) {
			pid_t g = fork();

			if (g == 0) {
				alarm(30);
				pause();
				_exit(0);
			}
			if (g < 0) {
				res[1] = errno;
				break;
			}
			res[0]++;
		}
		if (write(rep[1], res, sizeof(res)) < 0)
			_exit(3);
		if (read(go[0], &c, 1) < 0)	/* until killed */
			_exit(4);
		_exit(0);
	}
	REQUIRE(pid > 0);
	close(go[0]);
	close(rep[1]);
	CHECK(cgroup_add_pid(cg, pid, &err) == 0);
	CHECK(write(go[1], "g", 1) == 1);
	CHECK(read(rep[0], msg, sizeof(msg)) == sizeof(msg));
	CHECKF(msg[0] == 3 && msg[1] == EAGAIN, "forked %d, errno %d", msg[0], msg[1]);
	CHECK(cgroup_stats(cg, &st, &err) == 0 && st.pids_current == 4);
	CHECK(cgroup_kill_all(cg, SIGKILL, &err) == 0);
	CHECK(wait_child(pid, &status) == 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(go[1]);
	close(rep[0]);
	CHECK(cgroup_destroy(cg, &err) == 0);
	cgroup_manager_free(m);
}

CHECKED(test_v1_mount_parsing)
CHECKED(test_v2_conversions)
CHECKED(test_bad_names)
CHECKED(test_v2_fake_resources)
CHECKED(test_v2_fake_create_errors)
CHECKED(test_v2_fake_freeze_stats_oom)
CHECKED(test_v2_fake_kill)
CHECKED(test_v1_limits_pids_kill)
CHECKED(test_v1_destroy_kills)
CHECKED(test_v1_freeze)
CHECKED(test_v1_oom)
CHECKED(test_v1_pids_limit)

int main(void)
{
	snprintf(prefix, sizeof(prefix), "kr-test-%d", (int)getpid());
	snprintf(fake_root, sizeof(fake_root), "/tmp/kr-test-cgv2-%d", (int)getpid());
	/* Grandchildren orphaned by a killed child come back to us to reap. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	kr_test_run(test_v1_mount_parsing_, "v1_mount_parsing");
	kr_test_run(test_v2_conversions_, "v2_conversions");
	kr_test_run(test_bad_names_, "bad_names");
	kr_test_run(test_v2_fake_resources_, "v2_fake_resources");
	kr_test_run(test_v2_fake_create_errors_, "v2_fake_create_errors");
	kr_test_run(test_v2_fake_freeze_stats_oom_, "v2_fake_freeze_stats_oom");
	kr_test_run(test_v2_fake_kill_, "v2_fake_kill");
	kr_test_run(test_v1_limits_pids_kill_, "v1_limits_pids_kill");
	kr_test_run(test_v1_destroy_kills_, "v1_destroy_kills");
	kr_test_run(test_v1_freeze_, "v1_freeze");
	kr_test_run(test_v1_oom_, "v1_oom");
	kr_test_run(test_v1_pids_limit_, "v1_pids_limit");
	return kr_test_done();
}
