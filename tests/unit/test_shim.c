/* Unit tests for the containerd shim's start, delete, rootfs and events
 * (shim/containerd/{start,delete,rootfs,events}.c).
 *
 * The mount tests need root; they run in a private mount namespace made at
 * the start of main (before any thread), so nothing leaks to the host.
 * The start tests let shim_start spawn "the daemon", which is this binary
 * again: main() recognises the daemon's arguments and acts as a fake
 * daemon that answers one connection on fd 3 with what it inherited. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kr/error.h"
#include "kr/log.h"
#include "kr/ttrpc.h"
#include "kr/util.h"
#include "../lib/kr_test.h"
#include "../../shim/containerd/shim.h"

static bool private_ns;		/* mount tests allowed */

/* ---- helpers ------------------------------------------------------------------ */

static char *mktmp(void)
{
	char *d = kr_xstrdup("/tmp/kr-shim-test.XXXXXX");

	if (!mkdtemp(d))
		abort();
	return d;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0 || kr_write_full(fd, text, strlen(text)) < 0)
		abort();
	close(fd);
}

static void rm_rf(const char *path)
{
	kr_rm_rf(path, NULL);
}

/* Run fn with stdout going to a file; returns what it wrote (malloc'd). */
static char *capture_stdout(int (*fn)(const struct shim_args *), const struct shim_args *a,
			    int *rc, size_t *len)
{
	char path[] = "/tmp/kr-shim-out.XXXXXX";
	int fd = mkstemp(path), saved, in_saved, null;
	char *text = NULL;

	if (fd < 0)
		abort();
	fflush(stdout);
	saved = dup(1);
	in_saved = dup(0);
	null = open("/dev/null", O_RDONLY);
	dup2(fd, 1);
	dup2(null, 0);		/* start drains stdin: give it nothing */
	*rc = fn(a);
	dup2(saved, 1);
	dup2(in_saved, 0);
	close(saved);
	close(in_saved);
	close(null);
	close(fd);
	kr_log_set_fd(2);	/* start moved logging away from stderr */
	if (kr_read_file(path, 1 << 20, &text, len, NULL) < 0)
		abort();
	unlink(path);
	return text;
}

static bool is_mountpoint(const char *path)
{
	char parent[PATH_MAX];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

/* Reap the fake daemons start spawned (ours: start does not wait). */
static void reap_children(void)
{
	uint64_t end = kr_now_ms() + 5000;

	while (kr_now_ms() < end) {
		pid_t p = waitpid(-1, NULL, WNOHANG);

		if (p < 0)
			return;		/* ECHILD: none left */
		if (p == 0)
			usleep(10000);
	}
}

/* ---- identifiers, socket path, sandbox id, group id ----------------------------- */

static void test_id_valid(void)
{
	char long_id[SHIM_ID_MAX + 2];

	CHECK(shim_id_valid("t1"));
	CHECK(shim_id_valid("default"));
	CHECK(shim_id_valid("k8s.io"));
	CHECK(shim_id_valid("a-b_c.d"));
	CHECK(!shim_id_valid(""));
	CHECK(!shim_id_valid(NULL));
	CHECK(!shim_id_valid(".hidden"));
	CHECK(!shim_id_valid("a..b"));
	CHECK(!shim_id_valid("a/b"));
	CHECK(!shim_id_valid("../x"));
	CHECK(!shim_id_valid("trailing-"));
	CHECK(!shim_id_valid("sp ace"));
	memset(long_id, 'a', sizeof(long_id));
	long_id[SHIM_ID_MAX] = '\0';
	CHECK(shim_id_valid(long_id));
	long_id[SHIM_ID_MAX] = 'a';
	long_id[SHIM_ID_MAX + 1] = '\0';
	CHECK(!shim_id_valid(long_id));
}

static void test_socket_path(void)
{
	struct shim_args a = { .namespace = "default", .address = "/run/containerd/containerd.sock" };
	char path[PATH_MAX], other[PATH_MAX];
	struct kr_err err = { 0 };

	/* The spec's test vector (containerd's runc shim names it so). */
	REQUIRE(shim_socket_path(&a, "t1", path, sizeof(path), &err) == 0);
	CHECK_STREQ(path, "/run/containerd/s/df6a0c5cd2e9a1a16d9a3f2447365d9fc6021bc1d3d9a4caa2f5b2c4f773758f");
	/* filepath.Join cleans: the same socket for a sloppy address. */
	a.address = "/run//containerd/./containerd.sock/";
	REQUIRE(shim_socket_path(&a, "t1", other, sizeof(other), &err) == 0);
	CHECK_STREQ(other, path);
	a.address = "/run/containerd/x/../containerd.sock";
	REQUIRE(shim_socket_path(&a, "t1", other, sizeof(other), &err) == 0);
	CHECK_STREQ(other, path);
	/* Another group, another socket. */
	REQUIRE(shim_socket_path(&a, "t2", other, sizeof(other), &err) == 0);
	CHECK(strcmp(other, path) != 0);
	CHECK(strlen(path) == strlen(SHIM_SOCKET_DIR) + 1 + 64);
	a.address = NULL;
	CHECK(shim_socket_path(&a, "t1", other, sizeof(other), &err) < 0);
	CHECK(err.code == KR_INVALID_ARGUMENT);
}

static void test_sandbox_id(void)
{
	char id[65], again[65], other[65];
	char cri[65];
	char long_id[SHIM_ID_MAX + 1];

	shim_sandbox_id("pod1", id, sizeof(id));
	CHECK_STREQ(id, "pod1");
	memset(cri, 'f', 64);
	cri[64] = '\0';		/* a CRI sandbox id: 64 hex digits */
	shim_sandbox_id(cri, id, sizeof(id));
	CHECK_STREQ(id, cri);

	memset(long_id, 'c', SHIM_ID_MAX);
	long_id[SHIM_ID_MAX] = '\0';
	shim_sandbox_id(long_id, id, sizeof(id));
	shim_sandbox_id(long_id, again, sizeof(again));
	CHECK(strlen(id) == 18);
	CHECK(strncmp(id, "kr", 2) == 0);
	CHECK(strspn(id + 2, "0123456789abcdef") == 16);
	CHECK_STREQ(id, again);		/* stable: start, daemon, delete agree */
	long_id[0] = 'd';
	shim_sandbox_id(long_id, other, sizeof(other));
	CHECK(strcmp(id, other) != 0);
	/* Not a file name: hashed too. */
	shim_sandbox_id(".x", other, sizeof(other));
	CHECK(strncmp(other, "kr", 2) == 0 && strlen(other) == 18);
}

static void test_group_id(void)
{
	char *b = mktmp(), g[SHIM_ID_MAX + 1];
	const char *ann = "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"pod-7\"}}";
	size_t big_len = (1u << 20) + 100;
	char *big = kr_xcalloc(1, big_len + 1);

	shim_group_id(b, "c1", g, sizeof(g));
	CHECK_STREQ(g, "c1");		/* no config.json */
	write_file(b, "config.json", "{\"ociVersion\":\"1.0.2\",\"annotations\":"
		   "{\"io.kubernetes.cri.sandbox-id\":\"pod-7\",\"x\":\"y\"}}");
	shim_group_id(b, "c1", g, sizeof(g));
	CHECK_STREQ(g, "pod-7");
	write_file(b, "config.json", "{\"ociVersion\":\"1.0.2\",\"annotations\":{\"x\":\"y\"}}");
	shim_group_id(b, "c1", g, sizeof(g));
	CHECK_STREQ(g, "c1");
	write_file(b, "config.json", "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":");
	shim_group_id(b, "c1", g, sizeof(g));
	CHECK_STREQ(g, "c1");		/* invalid JSON */
	write_file(b, "config.json", "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":42}}");
	shim_group_id(b, "c1", g, sizeof(g));
	CHECK_STREQ(g, "c1");
	write_file(b, "config.json", "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"../../etc\"}}");
	shim_group_id(b, "c1", g, sizeof(g));
	CHECK_STREQ(g, "c1");		/* not an id: must not merge pods */
	/* Over the 1 MiB cap. */
	memset(big, ' ', big_len);
	memcpy(big, ann, strlen(ann));
	write_file(b, "config.json", big);
	shim_group_id(b, "c1", g, sizeof(g));
	CHECK_STREQ(g, "c1");
	free(big);
	rm_rf(b);
	free(b);
}

/* ---- socket probe and start ------------------------------------------------------- */

static void test_socket_probe(void)
{
	char *d = mktmp(), path[PATH_MAX];
	struct kr_err err;
	int fd;

	snprintf(path, sizeof(path), "%s/s.sock", d);
	CHECK(kr_unix_probe(path) == 0);		/* no file */
	fd = kr_unix_listen(path, &err);
	REQUIRE(fd >= 0);
	CHECK(kr_unix_probe(path) == 1);
	close(fd);
	CHECK(kr_unix_probe(path) == 0);		/* stale */
	unlink(path);
	rm_rf(d);
	free(d);
}

/* Connect to path and read the fake daemon's report. */
static char *ask_daemon(const char *path)
{
	struct kr_err err;
	char buf[2048];
	int fd = kr_unix_connect(path, &err);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = kr_read_full(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return kr_xstrdup(buf);
}

static void test_start(void)
{
	char *b = mktmp(), sock[PATH_MAX], want[PATH_MAX + 8], *out, *addr = NULL, *rep;
	struct shim_args a = {
		.namespace = "ns1", .id = "c1", .address = "/run/containerd/containerd.sock",
		.publish_binary = "/usr/bin/containerd", .socket = sock,
	};
	struct kr_err err;
	struct stat st;
	size_t len;
	int rc, fd;

	snprintf(sock, sizeof(sock), "%s/s/shim.sock", b);
	snprintf(want, sizeof(want), "unix://%s", sock);
	write_file(b, "config.json", "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"pod1\"}}");
	REQUIRE(chdir(b) == 0);		/* cwd = the bundle, as containerd runs us */

	/* 1. New shim: socket, address file, daemon on fd 3. */
	out = capture_stdout(shim_start, &a, &rc, &len);
	CHECK(rc == 0);
	CHECK_STREQ(out, want);		/* exactly the address, no newline */
	free(out);
	CHECK(kr_read_file("address", 4096, &addr, NULL, NULL) == 0);
	CHECK_STREQ(addr, want);
	free(addr);
	CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
	rep = ask_daemon(sock);
	CHECK_CONTAINS(rep, "null012=1");
	CHECK_CONTAINS(rep, "extra=0");
	CHECK_CONTAINS(rep, "session=1");
	CHECK_CONTAINS(rep, "args=-namespace ns1 -id c1 -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd\n");
	free(rep);
	reap_children();

	/* 2. Stale socket (the fake daemon is gone): replaced, new daemon. */
	a.debug = true;
	out = capture_stdout(shim_start, &a, &rc, &len);
	CHECK(rc == 0);
	CHECK_STREQ(out, want);
	free(out);
	rep = ask_daemon(sock);
	CHECK_CONTAINS(rep, "-debug");
	free(rep);
	reap_children();

	/* 3. A live server there: join it, no new process. */
	unlink(sock);
	unlink("address");
	fd = kr_unix_listen(sock, &err);
	REQUIRE(fd >= 0);
	out = capture_stdout(shim_start, &a, &rc, &len);
	CHECK(rc == 0);
	CHECK_STREQ(out, want);
	free(out);
	CHECK(kr_read_file("address", 4096, &addr, NULL, NULL) == 0);
	CHECK_STREQ(addr, want);
	free(addr);
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	close(fd);

	/* 4. Not a socket there: an error on stdout, one line. */
	unlink(sock);
	write_file(b, "s/shim.sock", "x");
	out = capture_stdout(shim_start, &a, &rc, &len);
	CHECK(rc == 1);
	CHECK_CONTAINS(out, "not a socket");
	CHECK(len > 0 && out[len - 1] == '\n' && !memchr(out, '\n', len - 1));
	free(out);

	REQUIRE(chdir("/") == 0);
	rm_rf(b);
	free(b);
}

/* The daemon's half of test_start: report stdio, fd 3 and argv to the
 * first client, then exit. */
static int fake_daemon(int argc, char **argv)
{
	char rep[2048];
	struct stat st;
	int null012 = 1, extra = 0, c, n;
	DIR *d;
	struct dirent *e;

	for (int fd = 0; fd < 3; fd++)
		if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
			null012 = 0;
	d = opendir("/proc/self/fd");
	while (d && (e = readdir(d)))
		if (atoi(e->d_name) > 3 && atoi(e->d_name) != dirfd(d))
			extra++;
	if (d)
		closedir(d);
	c = accept(3, NULL, NULL);
	if (c < 0)
		return 1;
	n = snprintf(rep, sizeof(rep), "null012=%d extra=%d session=%d args=", null012, extra,
		     getsid(0) == getpid());
	for (int i = 1; i < argc && n < (int)sizeof(rep) - 2; i++)
		n += snprintf(rep + n, sizeof(rep) - (size_t)n, "%s%s", i > 1 ? " " : "", argv[i]);
	if (n < (int)sizeof(rep) - 1)
		rep[n++] = '\n';
	(void)!write(c, rep, (size_t)n);
	close(c);
	return 0;
}

/* ---- delete ------------------------------------------------------------------------- */

static unsigned long long start_time(pid_t pid)
{
	char path[64], *text = NULL, *p;
	unsigned long long t = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (kr_read_file(path, 4096, &text, NULL, NULL) < 0)
		return 0;
	p = strrchr(text, ')');
	if (p)
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t);
	free(text);
	return t;
}

static void test_delete(void)
{
	char *b = mktmp(), rootfs[PATH_MAX], cfgtext[PATH_MAX + 64], pod[PATH_MAX], owner[64];
	struct shim_args a = { .namespace = "ns1", .id = "c1",
			       .address = "/nonexistent/containerd.sock", .bundle = b };
	PB(DeleteResponse) *r;
	char *out;
	size_t len;
	int rc;
	pid_t child;

	/* Our own state root; the owner of pod1 alive (a child). */
	snprintf(cfgtext, sizeof(cfgtext), "state_root = \"%s/state\"\n", b);
	write_file(b, "config.toml", cfgtext);
	snprintf(pod, sizeof(pod), "%s/config.toml", b);
	setenv("KATA_RUN_CONFIG", pod, 1);
	write_file(b, "config.json", "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"pod1\"}}");
	snprintf(pod, sizeof(pod), "%s/state/pods/pod1", b);
	REQUIRE(kr_mkdir_p(pod, 0700, NULL) == 0);
	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	REQUIRE(child > 0);
	usleep(20000);
	snprintf(owner, sizeof(owner), "%d %llu\n", (int)child, start_time(child));
	write_file(pod, "owner", owner);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", b);
	REQUIRE(mkdir(rootfs, 0711) == 0);
	if (private_ns) {
		CHECK(mount("tmpfs", rootfs, "tmpfs", 0, "size=1m") == 0);
		CHECK(mount("tmpfs", rootfs, "tmpfs", 0, "size=1m") == 0);
		CHECK(is_mountpoint(rootfs));
	}

	out = capture_stdout(shim_delete, &a, &rc, &len);
	CHECK(rc == 0);
	r = (PB(DeleteResponse) *)protobuf_c_message_unpack(&PB_DESC(delete_response), NULL, len,
							    (const uint8_t *)out);
	REQUIRE(r);
	CHECK(r->pid == 0);
	CHECK(r->exit_status == 137);
	CHECK(r->exited_at && r->exited_at->seconds > 1600000000);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	free(out);
	CHECK(!is_mountpoint(rootfs));			/* both layers gone */
	CHECK(access(pod, F_OK) == 0);			/* live owner: left alone */

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	unsetenv("KATA_RUN_CONFIG");
	rm_rf(b);
	free(b);
}

/* ---- rootfs ------------------------------------------------------------------------- */

static void test_rootfs_options(void)
{
	char *opts1[] = { "index=off", "ro", "nosuid", "workdir=/w", "upperdir=/u", "lowerdir=/a:/b",
			  "nodev", "rw", "noexec", "", "relatime" };
	char *opts2[] = { "rbind", "ro", "rslave" };
	char *opts3[] = { "bind", "suid", "dev", "defaults", "private" };
	char *loop[] = { "loop", "ro" };
	char *many[300];
	struct rootfs_opts o;
	struct kr_err err;

	REQUIRE(rootfs_parse_options(opts1, KR_ARRAY_SIZE(opts1), &o, &err) == 0);
	CHECK(o.flags == (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME));	/* rw cleared ro */
	CHECK(o.propagation == 0);
	CHECK_STREQ(o.data, "index=off,workdir=/w,upperdir=/u,lowerdir=/a:/b");
	rootfs_opts_free(&o);

	REQUIRE(rootfs_parse_options(opts2, KR_ARRAY_SIZE(opts2), &o, &err) == 0);
	CHECK(o.flags == (MS_BIND | MS_REC | MS_RDONLY));
	CHECK(o.propagation == (MS_SLAVE | MS_REC));
	CHECK_STREQ(o.data, "");
	rootfs_opts_free(&o);

	REQUIRE(rootfs_parse_options(opts3, KR_ARRAY_SIZE(opts3), &o, &err) == 0);
	CHECK(o.flags == MS_BIND);
	CHECK(o.propagation == MS_PRIVATE);
	rootfs_opts_free(&o);

	REQUIRE(rootfs_parse_options(NULL, 0, &o, &err) == 0);
	CHECK(o.flags == 0 && o.data && !*o.data);
	rootfs_opts_free(&o);

	CHECK(rootfs_parse_options(loop, 2, &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "loop");
	for (size_t i = 0; i < KR_ARRAY_SIZE(many); i++)
		many[i] = "ro";
	CHECK(rootfs_parse_options(many, KR_ARRAY_SIZE(many), &o, &err) < 0);
	CHECK_CONTAINS(err.msg, "300 mount options");
}

/* "lowerdir=<root>/snapshots/N/fs:..." for N = n..1, plus upper and work. */
static char *overlay_data(const char *root, int n)
{
	size_t size = (size_t)n * (strlen(root) + 32) + 3 * PATH_MAX;
	char *d = kr_xcalloc(1, size);
	size_t len;

	len = (size_t)snprintf(d, size, "index=off,workdir=%s/snapshots/0/work,upperdir=%s/snapshots/0/fs,lowerdir=",
			       root, root);
	for (int i = n; i >= 1; i--)
		len += (size_t)snprintf(d + len, size - len, "%s%s/snapshots/%d/fs", i == n ? "" : ":", root, i);
	return d;
}

static void test_overlay_compact(void)
{
	const char *root = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs";
	char dir[PATH_MAX], *data = overlay_data(root, 100), *out = NULL, *want;
	struct kr_err err;

	CHECK(strlen(data) > 4095);
	REQUIRE(rootfs_overlay_compact(data, dir, &out, &err) == 0);
	CHECK_STREQ(dir, "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots");
	want = kr_xcalloc(1, 8192);
	snprintf(want, 8192, "index=off,workdir=%s/snapshots/0/work,upperdir=%s/snapshots/0/fs,lowerdir=", root, root);
	for (int i = 100; i >= 1; i--)
		snprintf(want + strlen(want), 8192 - strlen(want), "%s%d/fs", i == 100 ? "" : ":", i);
	CHECK_STREQ(out, want);
	free(out);
	free(want);
	free(data);

	/* lowerdir not last: the rest is kept. */
	REQUIRE(rootfs_overlay_compact("lowerdir=/x/s/1/fs:/x/s/12/fs,upperdir=/u", dir, &out, &err) == 0);
	CHECK_STREQ(dir, "/x/s");
	CHECK_STREQ(out, "lowerdir=1/fs:12/fs,upperdir=/u");
	free(out);

	/* No shared parent but "/". */
	CHECK(rootfs_overlay_compact("lowerdir=/a/1:/b/2", dir, &out, &err) < 0);
	CHECK_CONTAINS(err.msg, "share no parent");
	CHECK(rootfs_overlay_compact("upperdir=/u", dir, &out, &err) < 0);
	/* Even relative, too long. */
	data = overlay_data(root, 1000);
	CHECK(rootfs_overlay_compact(data, dir, &out, &err) < 0);
	CHECK_CONTAINS(err.msg, "too many layers");
	CHECK(out == NULL);
	free(data);
}

static PB(Mount) *mk_mount(const char *type, const char *source, char **opts, size_t n)
{
	PB(Mount) *m = kr_xcalloc(1, sizeof(*m));
	PB(Mount) init = PB_INIT(MOUNT);

	*m = init;
	m->type = (char *)type;
	m->source = (char *)source;
	m->options = opts;
	m->n_options = n;
	return m;
}

static void test_rootfs_mount(void)
{
	char *t, target[256], src[256], file[PATH_MAX];
	char *tmpfs_opts[] = { "size=1m", "nosuid", "mode=0755" };
	char *bind_opts[] = { "rbind", "ro" };
	PB(Mount) *ms[2];
	struct statvfs sv;
	struct kr_err err;

	if (!private_ns)
		SKIP("needs root (a private mount namespace)");
	t = mktmp();
	snprintf(target, sizeof(target), "%s/rootfs", t);
	snprintf(src, sizeof(src), "%s/src", t);
	REQUIRE(mkdir(target, 0755) == 0 && mkdir(src, 0755) == 0);
	write_file(src, "hello", "hi");

	ms[0] = mk_mount("tmpfs", "tmpfs", tmpfs_opts, 3);
	REQUIRE(rootfs_mount(ms, 1, target, &err) == 0);
	CHECK(statvfs(target, &sv) == 0 && (sv.f_flag & ST_NOSUID));
	CHECK(rootfs_unmount(target, &err) == 0);
	CHECK(!is_mountpoint(target));

	ms[1] = mk_mount("bind", src, bind_opts, 2);
	REQUIRE(rootfs_mount(ms + 1, 1, target, &err) == 0);
	snprintf(file, sizeof(file), "%s/hello", target);
	CHECK(access(file, F_OK) == 0);
	CHECK(statvfs(target, &sv) == 0 && (sv.f_flag & ST_RDONLY));
	CHECK(rootfs_unmount(target, &err) == 0);
	CHECK(!is_mountpoint(target));
	CHECK(rootfs_unmount(target, &err) == 0);	/* nothing there: fine */

	/* Failure partway: the first mount is undone. */
	ms[1]->source = "relative/dir";
	CHECK(rootfs_mount(ms, 2, target, &err) < 0);
	CHECK_CONTAINS(err.msg, "not an absolute path");
	CHECK_CONTAINS(err.msg, "2 of 2");
	CHECK(!is_mountpoint(target));

	ms[0]->type = "";
	CHECK(rootfs_mount(ms, 1, target, &err) < 0);
	CHECK(rootfs_mount(ms, 1, "", &err) < 0);
	CHECK(rootfs_mount(ms, 200, target, &err) < 0);
	free(ms[0]);
	free(ms[1]);
	rm_rf(t);
	free(t);
}

/* An overlay whose options exceed a page: mounted from the lowerdirs'
 * parent, without moving our cwd. */
static void test_rootfs_overlay_many_layers(void)
{
	char *t, root[256], target[256], p[PATH_MAX], cwd[PATH_MAX], *data;
	char *opts[4];
	PB(Mount) *m;
	struct kr_err err = { 0 };
	const int layers = 120;

	if (!private_ns)
		SKIP("needs root (a private mount namespace)");
	t = mktmp();
	/* A long root, as containerd's, to push the data over a page. */
	snprintf(root, sizeof(root), "%s/io.containerd.snapshotter.v1.overlayfs", t);
	for (int i = 0; i <= layers; i++) {
		snprintf(p, sizeof(p), "%s/snapshots/%d/fs", root, i);
		REQUIRE(kr_mkdir_p(p, 0755, NULL) == 0);
	}
	snprintf(p, sizeof(p), "%s/snapshots/0/work", root);
	REQUIRE(kr_mkdir_p(p, 0755, NULL) == 0);
	snprintf(p, sizeof(p), "%s/snapshots/%d/fs", root, 1);
	write_file(p, "bottom", "b");
	snprintf(target, sizeof(target), "%s/rootfs", t);
	REQUIRE(mkdir(target, 0755) == 0);

	data = overlay_data(root, layers);
	CHECK(strlen(data) > 4095);
	/* Split the data back into options, as containerd sends them. */
	opts[0] = strtok(data, ",");
	for (int i = 1; i < 4; i++)
		opts[i] = strtok(NULL, ",");
	m = mk_mount("overlay", "overlay", opts, 4);
	REQUIRE(getcwd(cwd, sizeof(cwd)));
	CHECK(rootfs_mount(&m, 1, target, &err) == 0);
	if (err.msg[0])
		printf("#   %s\n", err.msg);
	snprintf(p, sizeof(p), "%s/bottom", target);
	CHECK(access(p, F_OK) == 0);
	snprintf(p, sizeof(p), "%s", cwd);
	CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, p));
	CHECK(rootfs_unmount(target, &err) == 0);
	CHECK(!is_mountpoint(target));
	free(m);
	free(data);
	rm_rf(t);
	free(t);
}

/* ---- events ---------------------------------------------------------------------- */

static void test_events_encode(void)
{
	PB(TaskExit) ex = PB_INIT(TASK_EXIT);
	PB(Timestamp) at = PB_INIT(TIMESTAMP);
	struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 123456789 };
	PB(ForwardRequest) *req;
	PB(TaskExit) *got;
	uint8_t *buf;
	size_t len;

	ex.container_id = "c1";
	ex.id = "c1";
	ex.pid = 42;
	ex.exit_status = 3;
	at.seconds = 1700000001;
	ex.exited_at = &at;
	REQUIRE(events_encode("k8s.io", "/tasks/exit", "TaskExit", &ex.base, &ts, &buf, &len) == 0);
	req = (PB(ForwardRequest) *)protobuf_c_message_unpack(&PB_DESC(forward_request), NULL, len, buf);
	REQUIRE(req && req->envelope && req->envelope->event && req->envelope->timestamp);
	CHECK_STREQ(req->envelope->namespace_, "k8s.io");
	CHECK_STREQ(req->envelope->topic, "/tasks/exit");
	CHECK(req->envelope->timestamp->seconds == 1700000000);
	CHECK(req->envelope->timestamp->nanos == 123456789);
	CHECK_STREQ(req->envelope->event->type_url, "containerd.events.TaskExit");
	got = (PB(TaskExit) *)protobuf_c_message_unpack(&PB_DESC(task_exit), NULL,
							req->envelope->event->value.len,
							req->envelope->event->value.data);
	REQUIRE(got);
	CHECK_STREQ(got->container_id, "c1");
	CHECK(got->pid == 42 && got->exit_status == 3);
	CHECK(got->exited_at && got->exited_at->seconds == 1700000001);
	protobuf_c_message_free_unpacked(&got->base, NULL);
	protobuf_c_message_free_unpacked(&req->base, NULL);
	free(buf);

	/* An event without fields still has a (present, empty) value. */
	{
		PB(ContainerEvent) ce = PB_INIT(CONTAINER_EVENT);

		REQUIRE(events_encode("default", "/tasks/paused", "TaskPaused", &ce.base, &ts, &buf, &len) == 0);
		req = (PB(ForwardRequest) *)protobuf_c_message_unpack(&PB_DESC(forward_request), NULL, len, buf);
		REQUIRE(req);
		CHECK_STREQ(req->envelope->event->type_url, "containerd.events.TaskPaused");
		protobuf_c_message_free_unpacked(&req->base, NULL);
		free(buf);
	}
	CHECK(events_encode("default", "no-slash", "TaskPaused", &ex.base, &ts, &buf, &len) < 0);
	CHECK(events_encode("default", "/tasks/x", "", &ex.base, &ts, &buf, &len) < 0);
}

/* A fake containerd: records Forward payloads; the first call fails. */
static struct {
	pthread_mutex_t lock;
	int calls;
	char topics[8][32];
	int n;
	bool ns_ok, ts_ok;
} fc = { .lock = PTHREAD_MUTEX_INITIALIZER, .ns_ok = true, .ts_ok = true };

static int fake_forward(void *ctx, const uint8_t *req, size_t req_len, uint8_t **resp,
			size_t *resp_len, struct kr_err *err)
{
	PB(ForwardRequest) *r;
	int rc = 0;

	(void)ctx;
	*resp = NULL;
	*resp_len = 0;
	pthread_mutex_lock(&fc.lock);
	if (fc.calls++ == 0) {
		pthread_mutex_unlock(&fc.lock);
		return kr_err_set(err, KR_UNAVAILABLE, "try again");
	}
	r = (PB(ForwardRequest) *)protobuf_c_message_unpack(&PB_DESC(forward_request), NULL, req_len, req);
	if (!r || !r->envelope) {
		rc = kr_err_set(err, KR_INVALID_ARGUMENT, "bad request");
	} else if (fc.n < 8) {
		snprintf(fc.topics[fc.n++], sizeof(fc.topics[0]), "%s", r->envelope->topic);
		fc.ns_ok &= !strcmp(r->envelope->namespace_, "ns1");
		fc.ts_ok &= r->envelope->timestamp && r->envelope->timestamp->seconds > 0;
	}
	if (r)
		protobuf_c_message_free_unpacked(&r->base, NULL);
	pthread_mutex_unlock(&fc.lock);
	return rc;
}

struct serve {
	struct ttrpc_server *srv;
	int fd;
	struct kr_err err;
};

static void *serve_thread(void *arg)
{
	struct serve *s = arg;

	ttrpc_server_serve_listener(s->srv, s->fd, &s->err);
	return NULL;
}

static void test_events_publish(void)
{
	static const struct ttrpc_method methods[] = {
		{ "containerd.services.events.ttrpc.v1.Events", "Forward", fake_forward },
	};
	char *d = mktmp(), path[PATH_MAX], addr[PATH_MAX + 8];
	PB(ContainerEvent) ce = PB_INIT(CONTAINER_EVENT);
	struct serve s = { 0 };
	pthread_t t;
	uint64_t t0;

	snprintf(path, sizeof(path), "%s/containerd.sock.ttrpc", d);
	snprintf(addr, sizeof(addr), "unix://%s", path);
	s.srv = ttrpc_server_new(methods, 1, NULL, 0);
	REQUIRE(s.srv);
	s.fd = kr_unix_listen(path, &s.err);
	REQUIRE(s.fd >= 0);
	REQUIRE(pthread_create(&t, NULL, serve_thread, &s) == 0);

	events_init(addr, "ns1");
	ce.container_id = "c1";
	events_publish("/tasks/paused", "TaskPaused", &ce.base);
	events_publish("/tasks/resumed", "TaskResumed", &ce.base);
	events_publish("/tasks/oom", "TaskOOM", &ce.base);
	t0 = kr_now_ms();
	events_flush(8000);	/* the first call fails: one retry after 1 s */
	CHECK(kr_now_ms() - t0 < 6000);
	pthread_mutex_lock(&fc.lock);
	CHECK(fc.calls == 4);
	CHECK(fc.n == 3);
	CHECK_STREQ(fc.topics[0], "/tasks/paused");	/* order kept, retried first */
	CHECK_STREQ(fc.topics[1], "/tasks/resumed");
	CHECK_STREQ(fc.topics[2], "/tasks/oom");
	CHECK(fc.ns_ok && fc.ts_ok);
	pthread_mutex_unlock(&fc.lock);
	/* After the flush: dropped quietly, nothing blocks. */
	events_publish("/tasks/oom", "TaskOOM", &ce.base);

	ttrpc_server_shutdown(s.srv);
	pthread_join(t, NULL);
	ttrpc_server_free(s.srv);
	close(s.fd);
	rm_rf(d);
	free(d);
}

/* ---- main ---------------------------------------------------------------------------- */

/* Mounts made by the tests stay in a namespace of their own. */
static void enter_private_ns(void)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0)
		return;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return;
	private_ns = true;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "-namespace"))
		return fake_daemon(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	kr_log_init("test_shim", KR_LOG_WARN, 2);
	enter_private_ns();	/* before any thread */

	KR_TEST(test_id_valid);
	KR_TEST(test_socket_path);
	KR_TEST(test_sandbox_id);
	KR_TEST(test_group_id);
	KR_TEST(test_socket_probe);
	KR_TEST(test_start);
	KR_TEST(test_delete);
	KR_TEST(test_rootfs_options);
	KR_TEST(test_overlay_compact);
	KR_TEST(test_rootfs_mount);
	KR_TEST(test_rootfs_overlay_many_layers);
	KR_TEST(test_events_encode);
	KR_TEST(test_events_publish);
	return kr_test_done();
}
