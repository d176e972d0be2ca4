/* Containers: the table, and create / start / remove. */
#include <errno.h>
#include <sched.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "cgroup.h"
#include "kr/log.h"
#include "kr/util.h"
#include "launch.h"
#include "rootfs.h"
#include "security.h"

int agent_check_id(const char *id, const char *what, struct kr_err *err)
{
	size_t len = strlen(id);

	if (len == 0 || len > AGENT_ID_MAX)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s must be 1 to %d characters", what, AGENT_ID_MAX);
	if (id[0] == '.')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s \"%s\" must not start with '.'", what, id);
	for (const char *c = id; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.')
			continue;
		return kr_err_set(err, KR_INVALID_ARGUMENT, "%s \"%s\": only letters, digits, '-', '_' and '.' are allowed", what, id);
	}
	return 0;
}

/* include_removed: a container being removed still holds its id (and its
 * state dir) until it is unlinked. */
static struct container *lookup(struct agent *a, const char *id,
				bool include_removed)
{
	for (struct container *c = a->containers; c; c = c->next)
		if (strcmp(c->id, id) == 0 && (include_removed || !c->removed))
			return c;
	return NULL;
}

struct container *container_get(struct agent *a, const char *id,
				struct kr_err *err)
{
	struct container *c;

	pthread_mutex_lock(&a->lock);
	c = lookup(a, id, false);
	if (c)
		c->refs++;
	pthread_mutex_unlock(&a->lock);
	if (!c)
		kr_err_set(err, KR_NOT_FOUND, "container %s not found", id);
	return c;
}

static void container_free(struct agent *a, struct container *c)
{
	struct process *p, *next;

	pthread_mutex_lock(&a->lock);
	reaper_forget(a, c->init);
	for (p = c->execs; p; p = p->next)
		reaper_forget(a, p);
	pthread_mutex_unlock(&a->lock);
	for (p = c->execs; p; p = next) {
		next = p->next;
		process_free(p);
	}
	process_free(c->init);
	spec_free(c->spec);
	pthread_mutex_destroy(&c->cg_lock);
	free(c);
}

void container_put(struct agent *a, struct container *c)
{
	bool last;

	pthread_mutex_lock(&a->lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&a->lock);
	if (last)
		container_free(a, c);
}

struct process *container_find_process(struct container *c,
				       const char *exec_id)
{
	if (exec_id[0] == '\0')
		return c->init;
	for (struct process *p = c->execs; p; p = p->next)
		if (strcmp(p->exec_id, exec_id) == 0)
			return p;
	return NULL;
}

void container_unlink_exec(struct container *c, struct process *p)
{
	for (struct process **pp = &c->execs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			c->n_execs--;
			return;
		}
	}
}

/* Reserve the id in the table (refs: table + caller). */
static struct container *reserve(struct agent *a, const char *id,
				 struct kr_err *err)
{
	struct container *c;

	pthread_mutex_lock(&a->lock);
	if (lookup(a, id, true)) {
		pthread_mutex_unlock(&a->lock);
		kr_err_set(err, KR_ALREADY_EXISTS, "container %s already exists", id);
		return NULL;
	}
	if (a->n_containers >= AGENT_MAX_CONTAINERS || a->shutting_down) {
		pthread_mutex_unlock(&a->lock);
		kr_err_set(err, KR_RESOURCE_EXHAUSTED, a->shutting_down ?
			   "agent is shutting down" : "too many containers (%d)",
			   AGENT_MAX_CONTAINERS);
		return NULL;
	}
	c = kr_xcalloc(1, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->state = CT_CREATED;
	c->refs = 2;
	pthread_mutex_init(&c->cg_lock, NULL);
	c->init = process_new(c, "");
	c->next = a->containers;
	a->containers = c;
	a->n_containers++;
	pthread_mutex_unlock(&a->lock);
	return c;
}

static void unlink_container(struct agent *a, struct container *c)
{
	pthread_mutex_lock(&a->lock);
	for (struct container **pp = &a->containers; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			a->n_containers--;
			c->removed = true;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
}

/* Undo what a failed create did, then drop the table's reference. */
static void abandon(struct agent *a, struct container *c)
{
	struct kr_err err = { 0 };

	if (c->init->pid > 0)
		kill(c->init->pid, SIGKILL);
	pthread_mutex_lock(&c->cg_lock);
	if (c->cg) {
		oom_unwatch(a, c);
		if (cgroup_destroy(c->cg, &err) < 0)
			kr_warn("container %s: %s", c->id, err.msg);
		c->cg = NULL;
	}
	pthread_mutex_unlock(&c->cg_lock);
	if (c->state_dir[0] && (rootfs_cleanup(c->state_dir, &err) < 0 ||
				kr_rm_rf(c->state_dir, &err) < 0))
		kr_warn("container %s: %s", c->id, err.msg);
	unlink_container(a, c);
	container_put(a, c);
}

/* Host id that a user namespace maps container id 0 to (or 0). */
static uint32_t mapped_root(const struct oci_id_mapping *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].container_id == 0)
			return m[i].host_id;
	return 0;
}

/* The container's own dirs under its state dir.  With a new user
 * namespace the set-up runs as the mapped root, which may neither create
 * them in our dir nor write to root-owned ones: make them here and give
 * them to it. */
static int make_state_dirs(struct container *c, struct kr_err *err)
{
	static const char *const sub[] = { "rootfs", "upper", "work" };
	const struct oci_namespace *user = spec_namespace(c->spec, CLONE_NEWUSER);
	uid_t uid = 0;
	gid_t gid = 0;

	/* 0711: a user namespace's mapped root must traverse to its rootfs
	 * (search only; nobody else can list the containers). */
	if (kr_mkdir_p(c->state_dir, 0711, err) < 0)
		return -1;
	if (!user || user->path)
		return 0;
	uid = mapped_root(c->spec->uid_mappings, c->spec->n_uid_mappings);
	gid = mapped_root(c->spec->gid_mappings, c->spec->n_gid_mappings);
	for (size_t i = 0; i < KR_ARRAY_SIZE(sub); i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", c->state_dir, sub[i]);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return kr_err_sys(err, "mkdir %s", path);
		if (chown(path, uid, gid) < 0)
			return kr_err_sys(err, "chown %s to the user namespace's root", path);
	}
	return 0;
}

static int prepare(struct agent *a, struct container *c, const char *spec_json,
		   size_t spec_len, const char *rootfs, struct kr_err *err)
{
	struct cgroup_manager *cgm;

	if (spec_parse(spec_json, spec_len, &c->spec, err) < 0)
		return kr_err_wrap(err, "config.json");
	if (!c->spec->has_process)
		return kr_err_set(err, KR_INVALID_ARGUMENT, "config.json: no process to run");
	if (rootfs[0] != '/')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "rootfs path %s is not absolute", rootfs);
	if (access(rootfs, F_OK) < 0)
		return kr_err_sys(err, "rootfs %s", rootfs);
	if (c->spec->seccomp && seccomp_check(c->spec->seccomp, err) < 0)
		return kr_err_wrap(err, "seccomp profile");
	if (kr_snprintf(c->state_dir, sizeof(c->state_dir), "%s/containers/%s",
			a->cfg.state_dir, c->id) < 0)
		return kr_err_errno(err, ENAMETOOLONG, "state dir for %s", c->id);
	if (make_state_dirs(c, err) < 0)
		return -1;
	if (agent_cgroups(a, &cgm, err) < 0)
		return -1;
	c->cg = cgroup_create(cgm, c->id, &c->spec->resources, err);
	if (!c->cg)
		return kr_err_wrap(err, "cgroup");
	return oom_watch(a, c, err);
}

int container_create(struct agent *a, const char *id, const char *spec_json,
		     size_t spec_len, const char *rootfs, bool overlay,
		     pid_t *pid, struct kr_err *err)
{
	struct container *c;

	if (agent_check_id(id, "container id", err) < 0)
		return -1;
	c = reserve(a, id, err);
	if (!c)
		return -1;
	if (prepare(a, c, spec_json, spec_len, rootfs, err) < 0)
		goto fail;
	struct launch_config cfg = {
		.spec = c->spec, .proc = &c->spec->process,
		.rootfs_source = rootfs, .overlay = overlay,
		.state_dir = c->state_dir, .cg = c->cg,
		.timeout_ms = a->cfg.launch_timeout_ms,
	};
	if (process_launch(a, c->init, &cfg, err) < 0)
		goto fail;
	*pid = c->init->pid;
	kr_info("container %s created, init pid %d", id, (int)*pid);
	container_put(a, c);
	return 0;
fail:
	kr_err_wrap(err, "create container %s", id);
	abandon(a, c);
	container_put(a, c);
	return -1;
}

int container_start(struct agent *a, struct container *c, struct kr_err *err)
{
	int sync_fd;

	pthread_mutex_lock(&a->lock);
	if (c->state != CT_CREATED || c->init->sync_fd < 0) {
		pthread_mutex_unlock(&a->lock);
		return kr_err_set(err, KR_FAILED_PRECONDITION, "container %s is not in the created state", c->id);
	}
	sync_fd = kr_steal_fd(c->init->sync_fd);
	pthread_mutex_unlock(&a->lock);
	if (launch_start(sync_fd, a->cfg.launch_timeout_ms, err) < 0)
		return kr_err_wrap(err, "start container %s", c->id);
	pthread_mutex_lock(&a->lock);
	if (c->state == CT_CREATED)
		c->state = CT_RUNNING;
	if (c->init->state == PROC_CREATED)
		c->init->state = PROC_RUNNING;
	pthread_mutex_unlock(&a->lock);
	kr_info("container %s started", c->id);
	return 0;
}

/* SIGKILL everything in the container and wait (bounded) for init. */
static void kill_all(struct agent *a, struct container *c, unsigned timeout_ms)
{
	struct kr_err err = { 0 };

	if (c->state == CT_PAUSED && cgroup_freeze(c->cg, false, &err) < 0)
		kr_warn("container %s: %s", c->id, err.msg);
	if (timeout_ms && c->init->pid > 0) {
		kill(c->init->pid, SIGTERM);
		process_wait(a, c->init, timeout_ms);
	}
	if (cgroup_kill_all(c->cg, SIGKILL, &err) < 0)
		kr_warn("container %s: %s", c->id, err.msg);
	if (c->init->pid > 0) {
		kill(c->init->pid, SIGKILL);
		if (process_wait(a, c->init, 5000) < 0)
			kr_warn("container %s: init %d did not exit after SIGKILL",
				c->id, (int)c->init->pid);
	}
}

int container_remove(struct agent *a, struct container *c,
		     unsigned timeout_ms, struct kr_err *err)
{
	pthread_mutex_lock(&a->lock);
	if (c->removed) {
		pthread_mutex_unlock(&a->lock);
		return kr_err_set(err, KR_NOT_FOUND, "container %s not found", c->id);
	}
	c->removed = true;	/* claim the removal */
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_lock(&c->cg_lock);
	kill_all(a, c, timeout_ms);
	oom_unwatch(a, c);
	if (cgroup_destroy(c->cg, err) < 0)
		kr_warn("container %s: %s", c->id, err->msg);
	c->cg = NULL;
	pthread_mutex_unlock(&c->cg_lock);
	/* The container's mount namespace died with its last process, taking
	 * the overlay mount with it; only the upper/work dirs remain. */
	if (rootfs_cleanup(c->state_dir, err) < 0 || kr_rm_rf(c->state_dir, err) < 0)
		kr_warn("container %s: %s", c->id, err->msg);
	unlink_container(a, c);
	container_put(a, c);	/* the table's reference */
	kr_info("container %s removed", c->id);
	return 0;
}

int container_remove_exec(struct agent *a, struct container *c,
			  const char *exec_id, struct kr_err *err)
{
	struct process *p;

	if (exec_id[0] == '\0')
		return kr_err_set(err, KR_INVALID_ARGUMENT, "the init process goes with its container: remove the container");
	pthread_mutex_lock(&a->lock);
	p = container_find_process(c, exec_id);
	if (!p || p->state != PROC_EXITED) {
		pthread_mutex_unlock(&a->lock);
		return p ? kr_err_set(err, KR_FAILED_PRECONDITION, "exec %s in container %s is still running", exec_id, c->id)
			 : kr_err_set(err, KR_NOT_FOUND, "exec %s not found in container %s", exec_id, c->id);
	}
	container_unlink_exec(c, p);
	pthread_mutex_unlock(&a->lock);
	process_put(a, p);	/* the list's reference */
	return 0;
}

struct cgroup *container_cg_get(struct container *c, struct kr_err *err)
{
	pthread_mutex_lock(&c->cg_lock);
	if (!c->cg) {
		pthread_mutex_unlock(&c->cg_lock);
		kr_err_set(err, KR_NOT_FOUND, "container %s is being removed", c->id);
		return NULL;
	}
	return c->cg;
}

void container_cg_put(struct container *c)
{
	pthread_mutex_unlock(&c->cg_lock);
}

void container_remove_all(struct agent *a)
{
	for (;;) {
		struct container *c;
		struct kr_err err = { 0 };

		pthread_mutex_lock(&a->lock);
		for (c = a->containers; c && c->removed; c = c->next)
			;
		if (c)
			c->refs++;
		pthread_mutex_unlock(&a->lock);
		if (!c)
			return;
		container_remove(a, c, 0, &err);
		container_put(a, c);
	}
}
