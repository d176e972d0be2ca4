/* Processes: a container's init and its exec'd processes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cgroup.h"
#include "kr/log.h"
#include "kr/util.h"
#include "launch.h"

struct process *process_new(struct container *c, const char *exec_id)
{
	struct process *p = kr_xcalloc(1, sizeof(*p));

	p->c = c;
	snprintf(p->exec_id, sizeof(p->exec_id), "%s", exec_id);
	p->pid = -1;
	p->stdin_fd = p->stdout_fd = p->stderr_fd = p->pty_fd = p->sync_fd = -1;
	p->state = PROC_CREATED;
	p->refs = 1;
	pthread_mutex_init(&p->io_lock, NULL);
	return p;
}

void process_free(struct process *p)
{
	int *fds[] = { &p->stdin_fd, &p->stdout_fd, &p->stderr_fd,
		       &p->pty_fd, &p->sync_fd };

	if (!p)
		return;
	for (size_t i = 0; i < KR_ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
	pthread_mutex_destroy(&p->io_lock);
	free(p);
}

void process_exited(struct agent *a, struct process *p, int wstatus)
{
	struct timespec now;

	if (p->state == PROC_EXITED)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	p->exited_at_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	if (WIFEXITED(wstatus))
		p->exit_status = WEXITSTATUS(wstatus);
	else if (WIFSIGNALED(wstatus))
		p->exit_status = 128 + WTERMSIG(wstatus);
	else
		p->exit_status = 255;
	p->state = PROC_EXITED;
	if (p == p->c->init)
		p->c->state = CT_STOPPED;
	kr_info("container %s process %d (exec \"%s\") exited with status %d",
		p->c->id, (int)p->pid, p->exec_id, p->exit_status);
	pthread_cond_broadcast(&a->exited);
}

int process_wait(struct agent *a, struct process *p, unsigned timeout_ms)
{
	struct timespec deadline;
	int rc = 0;

	kr_deadline_ms(&deadline, CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&a->lock);
	while (p->state != PROC_EXITED && rc == 0) {
		if (timeout_ms)
			rc = pthread_cond_timedwait(&a->exited, &a->lock, &deadline);
		else
			rc = pthread_cond_wait(&a->exited, &a->lock);
	}
	rc = p->state == PROC_EXITED ? 0 : -1;
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void process_put(struct agent *a, struct process *p)
{
	bool last;

	pthread_mutex_lock(&a->lock);
	last = --p->refs == 0;
	if (last)
		reaper_forget(a, p);
	pthread_mutex_unlock(&a->lock);
	if (last)
		process_free(p);
}

int process_signal(struct process *p, int sig, struct kr_err *err)
{
	if (p->pid <= 0 || p->state == PROC_EXITED)
		return kr_err_set(err, KR_NOT_FOUND, "process has exited");
	if (kill(p->pid, sig) < 0)
		return kr_err_sys(err, "kill %d with signal %d", (int)p->pid, sig);
	return 0;
}

static void process_take_fds(struct process *p, struct launch_result *res)
{
	p->pid = res->pid;
	p->stdin_fd = kr_steal_fd(res->stdin_fd);
	p->stdout_fd = kr_steal_fd(res->stdout_fd);
	p->stderr_fd = kr_steal_fd(res->stderr_fd);
	p->pty_fd = kr_steal_fd(res->pty_fd);
	p->sync_fd = kr_steal_fd(res->sync_fd);
}

/* Launch p (init or exec) and register it with the reaper. */
int process_launch(struct agent *a, struct process *p,
		   const struct launch_config *cfg, struct kr_err *err)
{
	struct launch_result res;

	p->terminal = cfg->proc->terminal;
	if (launch_create(cfg, &res, err) < 0)
		return -1;
	process_take_fds(p, &res);
	reaper_register(a, p);
	return 0;
}

int process_exec(struct agent *a, struct container *c, const char *exec_id,
		 const char *process_json, size_t len, pid_t *pid,
		 struct kr_err *err)
{
	struct oci_process *op = NULL;
	struct process *p;
	pid_t target;

	if (agent_check_id(exec_id, "exec id", err) < 0)
		return -1;
	if (spec_parse_process(process_json, len, &op, err) < 0)
		return kr_err_wrap(err, "exec %s in container %s", exec_id, c->id);
	pthread_mutex_lock(&a->lock);
	if (container_find_process(c, exec_id)) {
		pthread_mutex_unlock(&a->lock);
		spec_process_free(op);
		return kr_err_set(err, KR_ALREADY_EXISTS, "exec %s already exists in container %s", exec_id, c->id);
	}
	if (c->state != CT_RUNNING || c->n_execs >= AGENT_MAX_PROCESSES) {
		int running = c->state == CT_RUNNING;

		pthread_mutex_unlock(&a->lock);
		spec_process_free(op);
		return kr_err_set(err, KR_FAILED_PRECONDITION, running ?
				  "container %s has too many exec processes" :
				  "container %s is not running", c->id);
	}
	/* Reserve the id now so a concurrent exec with the same id fails. */
	p = process_new(c, exec_id);
	p->next = c->execs;
	c->execs = p;
	c->n_execs++;
	target = c->init->pid;
	pthread_mutex_unlock(&a->lock);

	struct cgroup *cg = container_cg_get(c, err);
	int rc = -1;
	if (cg) {
		struct launch_config cfg = {
			.spec = c->spec, .proc = op, .is_exec = true,
			.target_pid = target, .cg = cg,
			.timeout_ms = a->cfg.launch_timeout_ms,
		};
		rc = process_launch(a, p, &cfg, err);
		container_cg_put(c);
	}
	spec_process_free(op);
	if (rc < 0) {
		/* A concurrent call may have found the reserved id: unlink, and
		 * free only with the last reference. */
		pthread_mutex_lock(&a->lock);
		container_unlink_exec(c, p);
		pthread_mutex_unlock(&a->lock);
		process_put(a, p);
		return kr_err_wrap(err, "exec %s in container %s", exec_id, c->id);
	}
	pthread_mutex_lock(&a->lock);
	if (p->state == PROC_CREATED)
		p->state = PROC_RUNNING;
	pthread_mutex_unlock(&a->lock);
	*pid = p->pid;
	return 0;
}
