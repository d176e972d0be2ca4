/* The pod VM: pod dir, virtio-fs share, boot, agent, teardown (sandbox.h). */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../hypervisor/hypervisor.h"
#include "kr/agent_client.h"
#include "kr/log.h"
#include "kr/util.h"
#include "sandbox.h"

#define CHECK_INTERVAL_MS 500	/* one Check per interval while booting */

/* ---- ids, paths, owner ---------------------------------------------------- */

void kr_sandbox_new_id(char *buf, size_t size)
{
	unsigned char r[6] = { 0 };

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		uint64_t x = kr_now_ns() ^ (uint64_t)getpid() << 32;
		memcpy(r, &x, sizeof(r));
	}
	snprintf(buf, size, "kr%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
}

bool kr_sandbox_id_valid(const char *id)
{
	return hv_id_valid(id) && id[0] != '.';
}

static int sandbox_paths(const struct kr_config *cfg, const char *id, char *dir,
			 char *vm_state, struct kr_err *err)
{
	if (!kr_sandbox_id_valid(id))
		return kr_err_set(err, KR_INVALID_ARGUMENT,
				  "invalid id \"%.80s\": 1 to %d of A-Z a-z 0-9 _ . - (not starting with .)",
				  id ? id : "", HV_ID_MAX);
	if (kr_snprintf(dir, PATH_MAX, "%s/pods/%s", cfg->state_root, id) < 0 ||
	    kr_snprintf(vm_state, PATH_MAX, "%s/vm/%s", cfg->state_root, id) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "state_root %s", cfg->state_root);
	return 0;
}

static int write_owner(const char *dir, struct kr_err *err)
{
	char path[PATH_MAX], line[64];
	int fd, r;

	if (kr_snprintf(path, sizeof(path), "%s/owner", dir) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "%s/owner", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return kr_err_sys(err, "create %s", path);
	snprintf(line, sizeof(line), "%d %llu\n", (int)getpid(), kr_proc_start_time(getpid()));
	r = kr_write_full(fd, line, strlen(line));
	close(fd);
	return r < 0 ? kr_err_sys(err, "write %s", path) : 0;
}

/* The pid of a live owner of dir, or 0. */
static pid_t live_owner(const char *dir)
{
	char path[PATH_MAX];
	kr_cleanup_free char *text = NULL;
	unsigned long long start, now;
	int pid;

	if (kr_snprintf(path, sizeof(path), "%s/owner", dir) < 0 ||
	    kr_read_file(path, 256, &text, NULL, NULL) < 0 ||
	    sscanf(text, "%d %llu", &pid, &start) != 2 || pid <= 0)
		return 0;
	now = pid == getpid() ? 0 : kr_proc_start_time(pid);
	return now && now == start ? pid : 0;
}

/* ---- mounts ---------------------------------------------------------------- */

int kr_sandbox_private_mounts(const struct kr_config *cfg, struct kr_err *err)
{
	/* With libvirtd (qemu:///system) virtiofsd is libvirtd's child, in
	 * the host's namespace: our mounts must be there to be shared. */
	if (cfg->libvirt_uri[0] && strncmp(cfg->libvirt_uri, "qemu:///embed", 13) != 0)
		return 0;
	if (unshare(CLONE_NEWNS) < 0)
		return kr_err_sys(err, "private mount namespace: unshare");
	/* Slave: host mounts still reach us, ours never reach the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return kr_err_sys(err, "private mount namespace: make / a slave");
	return 1;
}

static int record_mount(struct kr_sandbox *sb, const char *target, struct kr_err *err)
{
	if (sb->n_mounts >= KR_SANDBOX_MAX_MOUNTS)
		return kr_err_set(err, KR_RESOURCE_EXHAUSTED, "more than %d shared paths", KR_SANDBOX_MAX_MOUNTS);
	sb->mounts[sb->n_mounts++] = kr_xstrdup(target);
	return 0;
}

static int bind(struct kr_sandbox *sb, const char *src, const char *target,
		struct kr_err *err)
{
	if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0)
		return kr_err_sys(err, "share %s: bind mount on %s", src, target);
	return record_mount(sb, target, err);
}

static int container_dir(struct kr_sandbox *sb, const char *cid, const char *sub,
			 char *path, struct kr_err *err)
{
	if (!kr_sandbox_id_valid(cid))
		return kr_err_set(err, KR_INVALID_ARGUMENT, "invalid container id \"%.80s\"", cid);
	if (kr_snprintf(path, PATH_MAX, "%s/%s%s%s", sb->shared, cid, sub ? "/" : "", sub ? sub : "") < 0)
		return kr_err_errno(err, ENAMETOOLONG, "share for %s", cid);
	/* 0711: users other than root in the guest traverse to their rootfs. */
	return kr_mkdir_p(path, 0711, err);
}

int kr_sandbox_share_rootfs(struct kr_sandbox *sb, const char *cid,
			    const char *host_rootfs, char *guest,
			    struct kr_err *err)
{
	char target[PATH_MAX];

	if (container_dir(sb, cid, NULL, target, err) < 0 ||
	    kr_snprintf(target + strlen(target), PATH_MAX - strlen(target), "/rootfs") < 0)
		return kr_err_wrap(err, "share rootfs");
	if (mkdir(target, 0755) < 0)
		return kr_err_sys(err, "share rootfs: mkdir %s", target);
	if (bind(sb, host_rootfs, target, err) < 0) {
		rmdir(target);
		return -1;
	}
	snprintf(guest, PATH_MAX, "%s/%s/rootfs", KR_GUEST_SHARED, cid);
	return 0;
}

int kr_sandbox_share_path(struct kr_sandbox *sb, const char *cid,
			  const char *host_path, unsigned index, char *guest,
			  struct kr_err *err)
{
	char target[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	int fd;

	if (stat(host_path, &st) < 0)
		return kr_err_sys(err, "share %s", host_path);
	if (container_dir(sb, cid, "mounts", dir, err) < 0)
		return -1;
	if (kr_snprintf(target, sizeof(target), "%s/%u", dir, index) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "share %s", host_path);
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(target, 0755) < 0)
			return kr_err_sys(err, "share %s: mkdir %s", host_path, target);
	} else {
		fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return kr_err_sys(err, "share %s: create %s", host_path, target);
		close(fd);
	}
	if (bind(sb, host_path, target, err) < 0) {
		S_ISDIR(st.st_mode) ? rmdir(target) : unlink(target);
		return -1;
	}
	snprintf(guest, PATH_MAX, "%s/%s/mounts/%u", KR_GUEST_SHARED, cid, index);
	return 0;
}

/* Unmount everything at or under dir listed in our mountinfo (a stale pod
 * shared from the host namespace), deepest first. */
static void umount_under(const char *dir)
{
	kr_cleanup_free char *info = NULL;
	char *save = NULL, *line, *paths[KR_SANDBOX_MAX_MOUNTS];
	size_t dlen = strlen(dir);
	unsigned n = 0;

	if (kr_read_file("/proc/self/mountinfo", 4 << 20, &info, NULL, NULL) < 0)
		return;
	for (line = strtok_r(info, "\n", &save); line && n < KR_SANDBOX_MAX_MOUNTS;
	     line = strtok_r(NULL, "\n", &save)) {
		char mp[PATH_MAX];

		/* id parent major:minor root mount-point ... (octal escapes
		 * only matter for paths we did not make) */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 &&
		    strncmp(mp, dir, dlen) == 0 && (mp[dlen] == '/' || !mp[dlen]))
			paths[n++] = kr_xstrdup(mp);
	}
	while (n--) {
		if (umount2(paths[n], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			kr_warn("umount %s: %s", paths[n], strerror(errno));
		free(paths[n]);
	}
}

/* ---- removing the pod dir ---------------------------------------------------- */

/* Only what we created is removed, by name and kind: mount points with
 * rmdir (a dir) or unlink (an empty file).  Both fail with EBUSY on a
 * mount point that is still mounted, so a failed unmount can never turn
 * into deleting the user's files. */
static int remove_mount_point(int dfd, const char *name, const char *where, struct kr_err *err)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : kr_err_sys(err, "%s/%s", where, name);
	if (S_ISDIR(st.st_mode) ? unlinkat(dfd, name, AT_REMOVEDIR) == 0
				: S_ISREG(st.st_mode) && st.st_size == 0 && unlinkat(dfd, name, 0) == 0)
		return 0;
	if (!S_ISDIR(st.st_mode) && !(S_ISREG(st.st_mode) && st.st_size == 0))
		return kr_err_set(err, KR_FAILED_PRECONDITION, "%s/%s: not ours (left in place)", where, name);
	return kr_err_sys(err, "remove %s/%s (still mounted?)", where, name);
}

static int remove_dir_entries(const char *path, bool is_mounts, struct kr_err *err);

static int remove_container_dir(const char *path, struct kr_err *err)
{
	kr_cleanup_close int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char mounts[PATH_MAX];

	if (dfd < 0)
		return errno == ENOENT ? 0 : kr_err_sys(err, "open %s", path);
	if (remove_mount_point(dfd, "rootfs", path, err) < 0)
		return -1;
	if (kr_snprintf(mounts, sizeof(mounts), "%s/mounts", path) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "%s", path);
	if (remove_dir_entries(mounts, true, err) < 0)
		return -1;
	if (rmdir(path) < 0 && errno != ENOENT)
		return kr_err_sys(err, "rmdir %s", path);
	return 0;
}

/* shared/ holds container dirs; shared/<cid>/mounts holds mount points. */
static int remove_dir_entries(const char *path, bool is_mounts, struct kr_err *err)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : kr_err_sys(err, "open %s", path);
	while (rc == 0 && (e = readdir(d))) {
		char sub[PATH_MAX];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (is_mounts)
			rc = remove_mount_point(dirfd(d), e->d_name, path, err);
		else if (kr_snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < 0)
			rc = kr_err_errno(err, ENAMETOOLONG, "%s", path);
		else
			rc = remove_container_dir(sub, err);
	}
	closedir(d);
	if (rc == 0 && rmdir(path) < 0 && errno != ENOENT)
		rc = kr_err_sys(err, "rmdir %s", path);
	return rc;
}

static int remove_pod_dir(const char *dir, struct kr_err *err)
{
	char path[PATH_MAX];

	if (kr_snprintf(path, sizeof(path), "%s/shared", dir) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "%s", dir);
	if (remove_dir_entries(path, false, err) < 0)
		return -1;
	if (kr_snprintf(path, sizeof(path), "%s/owner", dir) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "%s", dir);
	if (unlink(path) < 0 && errno != ENOENT)
		return kr_err_sys(err, "remove %s", path);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return kr_err_sys(err, "rmdir %s", dir);
	return 0;
}

/* ---- life cycle ------------------------------------------------------------- */

/* A container added after the VM started (the second of a pod) is bind
 * mounted under shared/ while virtiofsd already serves it from its own
 * mount namespace.  Making shared/ a shared mount point first puts
 * virtiofsd's copy in its peer group (as a slave), so later mounts reach
 * it. */
static int make_share_propagate(struct kr_sandbox *sb, struct kr_err *err)
{
	if (mount(sb->shared, sb->shared, NULL, MS_BIND, NULL) < 0)
		return kr_err_sys(err, "bind %s on itself", sb->shared);
	if (record_mount(sb, sb->shared, err) < 0)
		return -1;
	if (mount(NULL, sb->shared, NULL, MS_SHARED, NULL) < 0)
		return kr_err_sys(err, "make %s a shared mount", sb->shared);
	return 0;
}

static void unmount_all(struct kr_sandbox *sb)
{
	while (sb->n_mounts) {
		char *m = sb->mounts[--sb->n_mounts];

		if (umount2(m, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			kr_warn("umount %s: %s", m, strerror(errno));
		free(m);
	}
}

int kr_sandbox_unshare(struct kr_sandbox *sb, const char *cid, struct kr_err *err)
{
	char prefix[PATH_MAX];
	size_t plen;
	unsigned kept = 0;

	if (!kr_sandbox_id_valid(cid) || kr_snprintf(prefix, sizeof(prefix), "%s/%s/", sb->shared, cid) < 0)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "invalid container id \"%.80s\"", cid);
	plen = strlen(prefix);
	/* Deepest (latest) first; keep the others in order. */
	for (unsigned i = sb->n_mounts; i-- > 0;) {
		char *m = sb->mounts[i];

		if (strncmp(m, prefix, plen) != 0)
			continue;
		if (umount2(m, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
			kr_warn("umount %s: %s", m, strerror(errno));
		free(m);
		sb->mounts[i] = NULL;
	}
	for (unsigned i = 0; i < sb->n_mounts; i++)
		if (sb->mounts[i])
			sb->mounts[kept++] = sb->mounts[i];
	sb->n_mounts = kept;
	prefix[plen - 1] = '\0';
	if (remove_container_dir(prefix, err) < 0)
		return kr_err_wrap(err, "unshare %s", cid);
	return 0;
}

int kr_sandbox_vm_pid(struct kr_sandbox *sb)
{
	return sb->vm && sb->ops->pid ? sb->ops->pid(sb->vm) : 0;
}

static void fill_hv_config(const struct kr_sandbox *sb, struct hv_config *hc)
{
	const struct kr_config *cfg = sb->cfg;

	*hc = (struct hv_config){
		.id = sb->id, .kernel = cfg->kernel, .initrd = cfg->initrd[0] ? cfg->initrd : NULL,
		.cmdline_extra = cfg->kernel_params[0] ? cfg->kernel_params : NULL,
		.shared_dir = sb->shared, .vcpus = cfg->vcpus, .memory_mib = cfg->memory_mib,
		.state_dir = sb->vm_state, .virtiofsd = cfg->virtiofsd,
		.uri = cfg->libvirt_uri[0] ? cfg->libvirt_uri : NULL,
	};
}

int kr_sandbox_new(const struct kr_config *cfg, const char *id, uint64_t t0_ms,
		   struct kr_sandbox **out, struct kr_err *err)
{
	struct kr_sandbox *sb = kr_xcalloc(1, sizeof(*sb));
	struct hv_config hc;
	char pods[PATH_MAX];
	struct kr_err e2;

	sb->cfg = cfg;
	sb->t.t0_ms = t0_ms;
	if (sandbox_paths(cfg, id, sb->dir, sb->vm_state, err) < 0)
		goto fail_free;
	snprintf(sb->id, sizeof(sb->id), "%s", id);
	sb->ops = hypervisor_open(cfg->hypervisor, err);
	if (!sb->ops)
		goto fail_free;
	if (kr_snprintf(pods, sizeof(pods), "%s/pods", cfg->state_root) < 0 ||
	    kr_snprintf(sb->shared, sizeof(sb->shared), "%s/shared", sb->dir) < 0) {
		kr_err_errno(err, ENAMETOOLONG, "state_root %s", cfg->state_root);
		goto fail_free;
	}
	if (kr_mkdir_p(pods, 0711, err) < 0)
		goto fail_free;
	if (mkdir(sb->dir, 0711) < 0) {
		if (errno == EEXIST)
			kr_err_set(err, KR_ALREADY_EXISTS,
				   "sandbox %s already exists (in use, or left by a killed run: kata-run cleanup %s)",
				   id, id);
		else
			kr_err_sys(err, "mkdir %s", sb->dir);
		goto fail_free;
	}
	if (write_owner(sb->dir, err) < 0 || mkdir(sb->shared, 0711) < 0) {
		if (!err->msg[0])
			kr_err_sys(err, "mkdir %s", sb->shared);
		goto fail_dir;
	}
	if (make_share_propagate(sb, err) < 0)
		goto fail_dir;
	fill_hv_config(sb, &hc);
	if (sb->ops->create(&hc, &sb->vm, err) < 0)
		goto fail_mounts;
	*out = sb;
	return 0;
fail_mounts:
	unmount_all(sb);
fail_dir:
	remove_pod_dir(sb->dir, &e2);
fail_free:
	free(sb);
	return kr_err_wrap(err, "sandbox %.64s", id ? id : "");
}

static uint64_t since(const struct kr_sandbox *sb)
{
	return kr_now_ms() - sb->t.t0_ms;
}

bool kr_sandbox_vm_alive(struct kr_sandbox *sb)
{
	return sb->vm && sb->ops->wait(sb->vm, 0, NULL) == 0;
}

/* When did the guest run /init, in our clock: now - (uptime - init). */
static void guest_init_time(struct kr_sandbox *sb)
{
	KataRun__Agent__V1__Empty req = KATA_RUN__AGENT__V1__EMPTY__INIT;
	KataRun__Agent__V1__GuestDetailsResponse *d = NULL;
	uint64_t now = since(sb);

	if (agent_call(sb->agent, "GetGuestDetails", &req.base,
		       &kata_run__agent__v1__guest_details_response__descriptor,
		       (ProtobufCMessage **)&d, (int)sb->cfg->call_timeout_s * 1000, NULL) < 0)
		return;
	if (d->init_started_ms && d->uptime_ms >= d->init_started_ms &&
	    d->uptime_ms - d->init_started_ms < now)
		sb->t.init = now - (d->uptime_ms - d->init_started_ms);
	protobuf_c_message_free_unpacked(&d->base, NULL);
}

static int boot_error(struct kr_sandbox *sb, struct kr_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int boot_error(struct kr_sandbox *sb, struct kr_err *err, const char *fmt, ...)
{
	char why[512], tail[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	kr_sandbox_console_tail(sb, 10, tail, sizeof(tail));
	return kr_err_set(err, KR_DEADLINE_EXCEEDED, "%s; last lines of the guest console (%s):\n%s", why,
			  sb->ops->console_log(sb->vm),
			  tail[0] ? tail
				  : "(empty: the kernel boots with `quiet`; kernel_params = \"loglevel=7\" in the "
				    "configuration shows its messages)");
}

/* Between tries while the VM boots: -1 (err set) when a signal cancelled
 * the boot or the VM is gone. */
static int boot_stopped(struct kr_sandbox *sb, volatile sig_atomic_t *cancel, struct kr_err *err)
{
	if (cancel && *cancel)
		return kr_err_set(err, KR_CANCELED, "interrupted by signal %d while the VM booted",
				  (int)*cancel);
	if (!kr_sandbox_vm_alive(sb))
		return boot_error(sb, err, "the VM stopped before its agent answered");
	return 0;
}

/* Ask Check until the agent answers.  Requests written before the guest
 * opens its port wait in the port (QEMU stops reading the socket), and
 * late answers to timed-out Checks are dropped by the client. */
static int wait_for_agent(struct kr_sandbox *sb, volatile sig_atomic_t *cancel, struct kr_err *err)
{
	uint64_t deadline = kr_now_ms() + (uint64_t)sb->cfg->boot_timeout_s * 1000;
	KataRun__Agent__V1__Empty req = KATA_RUN__AGENT__V1__EMPTY__INIT;

	/* The channel may only open once the guest listens (kvm backend's
	 * hybrid vsock): keep trying, but stay cancellable. */
	for (;;) {
		struct kr_err e = { 0 };

		sb->agent = agent_client_connect(sb->ops->agent_socket(sb->vm), 200, &e);
		if (sb->agent)
			break;
		if (boot_stopped(sb, cancel, err) < 0)
			return -1;
		if (kr_now_ms() >= deadline)
			return boot_error(sb, err, "connect to the agent channel: %s", e.msg);
	}
	for (;;) {
		ProtobufCMessage *resp = NULL;
		struct kr_err e = { 0 };

		if (agent_call(sb->agent, "Check", &req.base, &kata_run__agent__v1__empty__descriptor,
			       &resp, CHECK_INTERVAL_MS, &e) == 0) {
			protobuf_c_message_free_unpacked(resp, NULL);
			return 0;
		}
		if (e.code != KR_DEADLINE_EXCEEDED)
			return boot_error(sb, err, "the agent failed: %s", e.msg);
		if (boot_stopped(sb, cancel, err) < 0)
			return -1;
		if (kr_now_ms() >= deadline)
			return boot_error(sb, err, "the agent did not answer within %u s (boot_timeout_s)",
					  sb->cfg->boot_timeout_s);
	}
}

int kr_sandbox_start(struct kr_sandbox *sb, volatile sig_atomic_t *cancel,
		     struct kr_err *err)
{
	if (cancel && *cancel)
		return kr_err_set(err, KR_CANCELED, "interrupted by signal %d", (int)*cancel);
	if (sb->ops->start(sb->vm, err) < 0)
		return kr_err_wrap(err, "sandbox %s", sb->id);
	sb->t.vm_created = since(sb);
	kr_info("sandbox %s: VM started (%s), waiting for the agent", sb->id, sb->ops->name);
	if (wait_for_agent(sb, cancel, err) < 0)
		return kr_err_wrap(err, "sandbox %s", sb->id);
	sb->t.agent_ready = since(sb);
	if (sb->want_init_time)
		guest_init_time(sb);
	kr_info("sandbox %s: agent ready after %llu ms", sb->id, (unsigned long long)sb->t.agent_ready);
	return 0;
}

int kr_sandbox_kill(struct kr_sandbox *sb, struct kr_err *err)
{
	if (sb->vm && sb->ops->destroy(sb->vm, err) < 0)
		return kr_err_wrap(err, "sandbox %s", sb->id);
	return 0;
}

int kr_sandbox_stop(struct kr_sandbox *sb, struct kr_err *err)
{
	struct kr_err e = { 0 };
	int rc = 0;

	/* No clean power-off first: the guest is thrown away, and what the
	 * container wrote to the share went through to the host as it wrote
	 * (virtio-fs cache=none).  A forced stop takes ~0.2 s, a guest
	 * power-off under TCG ~1.5 s. */
	if (sb->vm && sb->ops->destroy(sb->vm, &e) < 0) {
		kr_err_set(err, e.code, "sandbox %s: %s", sb->id, e.msg);
		rc = -1;
	}
	/* After the VM: its end is what makes pending calls fail fast. */
	agent_client_free(sb->agent);
	sb->agent = NULL;
	unmount_all(sb);
	if (remove_pod_dir(sb->dir, &e) < 0 && rc == 0) {
		kr_err_set(err, e.code, "sandbox %s: %s", sb->id, e.msg);
		rc = -1;
	}
	sb->t.vm_gone = since(sb);
	return rc;
}

void kr_sandbox_free(struct kr_sandbox *sb)
{
	if (!sb)
		return;
	agent_client_free(sb->agent);
	if (sb->vm)
		sb->ops->free(sb->vm);
	while (sb->n_mounts)
		free(sb->mounts[--sb->n_mounts]);
	free(sb);
}

void kr_sandbox_console_tail(struct kr_sandbox *sb, unsigned lines, char *buf, size_t size)
{
	const char *path = sb->vm ? sb->ops->console_log(sb->vm) : NULL;
	char tail[4096];
	ssize_t n;
	size_t i, j = 0;
	unsigned seen = 0;

	buf[0] = '\0';
	n = path ? kr_read_tail(path, tail, sizeof(tail)) : -1;
	if (n <= 0)
		return;
	/* Back up over `lines` line ends (a trailing one does not count). */
	for (i = (size_t)n; i > 0; i--)
		if (tail[i - 1] == '\n' && i != (size_t)n && ++seen == lines)
			break;
	for (; i < (size_t)n && j + 1 < size; i++) {
		unsigned char c = (unsigned char)tail[i];

		if (c == '\r')
			continue;
		buf[j++] = c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	while (j && buf[j - 1] == '\n')
		j--;
	buf[j] = '\0';
}

/* ---- cleanup of what a killed owner left -------------------------------------- */

int kr_sandbox_cleanup(const struct kr_config *cfg, const char *id, struct kr_err *err)
{
	char dir[PATH_MAX], vm_state[PATH_MAX];
	const struct hv_ops *ops;
	struct hv_config hc = { 0 };
	struct stat st;
	pid_t owner;
	bool had_dir, had_vm;

	if (sandbox_paths(cfg, id, dir, vm_state, err) < 0)
		return -1;
	had_dir = stat(dir, &st) == 0;
	had_vm = stat(vm_state, &st) == 0;
	if (!had_dir && !had_vm)
		return 1;
	owner = live_owner(dir);
	if (owner)
		return kr_err_set(err, KR_FAILED_PRECONDITION, "sandbox %s is in use by pid %d", id, (int)owner);
	ops = hypervisor_open(cfg->hypervisor, err);
	if (!ops)
		return -1;
	hc.id = id;
	hc.state_dir = vm_state;
	hc.uri = cfg->libvirt_uri[0] ? cfg->libvirt_uri : NULL;
	if (ops->cleanup(&hc, err) < 0)
		return kr_err_wrap(err, "clean up sandbox %s", id);
	umount_under(dir);
	if (remove_pod_dir(dir, err) < 0)
		return kr_err_wrap(err, "clean up sandbox %s", id);
	return 0;
}

char **kr_sandbox_list(const struct kr_config *cfg)
{
	char pods[PATH_MAX];
	char **ids = kr_xcalloc(1, sizeof(char *));
	size_t n = 0;
	struct dirent *e;
	DIR *d;

	if (kr_snprintf(pods, sizeof(pods), "%s/pods", cfg->state_root) < 0 || !(d = opendir(pods)))
		return ids;
	while ((e = readdir(d))) {
		char **grown;

		if (!kr_sandbox_id_valid(e->d_name))
			continue;
		grown = realloc(ids, (n + 2) * sizeof(char *));
		if (!grown)
			break;
		ids = grown;
		ids[n++] = kr_xstrdup(e->d_name);
		ids[n] = NULL;
	}
	closedir(d);
	return ids;
}
