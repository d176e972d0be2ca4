/* Child reaping.  The agent is PID 1 in the guest (and a child subreaper on
 * the host), so every orphan of every container lands here.  One thread
 * waits for SIGCHLD with sigwaitinfo() and reaps everything; exits of known
 * processes are recorded, others are kept briefly in case their owner has
 * not registered them yet (a container init can exit before the launch code
 * learns its pid).  SIGTERM/SIGINT end the agent cleanly. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "kr/log.h"
#include "kr/util.h"

#define REAPER_SLOTS 512
#define UNCLAIMED_TTL_MS 10000

/* A registered pid (p == NULL: ignore its exit) or an unclaimed exit. */
struct reap_slot {
	pid_t pid;
	bool used, exited;
	int wstatus;
	uint64_t at_ms;
	struct process *p;
};

static struct reap_slot slots[REAPER_SLOTS];

static struct reap_slot *slot_find(pid_t pid)
{
	for (size_t i = 0; i < REAPER_SLOTS; i++)
		if (slots[i].used && slots[i].pid == pid)
			return &slots[i];
	return NULL;
}

/* A free slot, else the oldest unclaimed exit (bounded memory). */
static struct reap_slot *slot_alloc(void)
{
	struct reap_slot *oldest = NULL;
	uint64_t now = kr_now_ms();

	for (size_t i = 0; i < REAPER_SLOTS; i++) {
		struct reap_slot *s = &slots[i];

		if (s->used && s->exited && now - s->at_ms > UNCLAIMED_TTL_MS)
			s->used = false;
		if (!s->used)
			return s;
		if (s->exited && (!oldest || s->at_ms < oldest->at_ms))
			oldest = s;
	}
	if (oldest)
		oldest->used = false;
	return oldest;
}

static void record(struct agent *a, pid_t pid, int wstatus)
{
	struct reap_slot *s = slot_find(pid);

	if (s && !s->exited) {
		if (s->p)
			process_exited(a, s->p, wstatus);
		s->used = false;
		return;
	}
	if (!s)	/* else: a stale unclaimed exit of a reused pid */
		s = slot_alloc();
	if (!s)
		return;
	*s = (struct reap_slot){ .pid = pid, .used = true, .exited = true,
				 .wstatus = wstatus, .at_ms = kr_now_ms() };
}

static void expect(struct agent *a, pid_t pid, struct process *p)
{
	struct reap_slot *s;

	pthread_mutex_lock(&a->lock);
	s = slot_find(pid);
	if (s && s->exited) {
		if (p)
			process_exited(a, p, s->wstatus);
		s->used = false;
	} else if (!s) {
		s = slot_alloc();
		if (s)
			*s = (struct reap_slot){ .pid = pid, .used = true, .p = p };
		else
			kr_warn("reaper: no slot to track pid %d", (int)pid);
	} else {
		s->p = p;
	}
	pthread_mutex_unlock(&a->lock);
}

void reaper_register(struct agent *a, struct process *p)
{
	expect(a, p->pid, p);
}

void reaper_ignore(pid_t pid)
{
	expect(agent_global, pid, NULL);
}

/* Detach a process that is being freed, so a late exit finds no pointer. */
void reaper_forget(struct agent *a, struct process *p)
{
	for (size_t i = 0; i < REAPER_SLOTS; i++)
		if (slots[i].used && slots[i].p == p)
			slots[i].p = NULL;
}

static void reap_all(struct agent *a)
{
	for (;;) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG | __WALL);

		if (pid <= 0)
			return;
		pthread_mutex_lock(&a->lock);
		record(a, pid, wstatus);
		pthread_mutex_unlock(&a->lock);
	}
}

static sigset_t reaper_set(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	return set;
}

void reaper_block_signals(void)
{
	sigset_t set = reaper_set();

	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* Writes to a peer that went away must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
}

void reaper_child_reset_signals(void)
{
	sigset_t all;

	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

static void *reaper_main(void *arg)
{
	struct agent *a = arg;
	sigset_t set = reaper_set();

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);

		if (sig < 0)
			continue;
		if (sig == SIGCHLD) {
			reap_all(a);
			continue;
		}
		kr_info("received signal %d: shutting down", sig);
		agent_shutdown(a, a->is_pid1);
	}
	return NULL;
}

int reaper_start(struct agent *a, struct kr_err *err)
{
	pthread_t t;
	int rc;

	if (!a->is_pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return kr_err_sys(err, "become child subreaper");
	rc = pthread_create(&t, NULL, reaper_main, a);
	if (rc)
		return kr_err_errno(err, rc, "start reaper thread");
	pthread_detach(t);
	/* Children that exited before the thread ran. */
	reap_all(a);
	return 0;
}
