/* probe: the static program put into test containers (after crun's
 * tests/init.c).  `probe VERB [ARGS]` prints what the container sees on
 * stdout and exits 0; on failure it prints "probe: VERB: why" on stderr and
 * exits 1 (2 for a usage error).  Output formats are meant to be identical
 * under every runtime, so differential tests can compare stdout byte for
 * byte.  `probe help` lists the verbs.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_LINES 4096

extern char **environ;

static const char *verb_name = "probe";

static const char *errno_name(int err)
{
	const char *n = strerrorname_np(err);
	static char buf[16];

	if (n)
		return n;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

/* Report errno (saved by the caller) with context and return the exit code. */
static int fail_errno(int err, const char *what)
{
	fprintf(stderr, "probe: %s: %s: %s (%s)\n", verb_name, what,
		strerror(err), errno_name(err));
	return 1;
}

static int fail_msg(const char *what)
{
	fprintf(stderr, "probe: %s: %s\n", verb_name, what);
	return 1;
}

static int parse_long(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return (errno || end == s || *end) ? -1 : 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy fd to stdout until EOF. */
static int copy_fd(int fd)
{
	char buf[65536];

	fflush(stdout);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			return -1;
	}
}

/* Read a whole (small) file into a NUL-terminated heap buffer. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap += 65536);

			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		int err = errno;

		free(buf);
		fclose(f);
		errno = err;
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* The value of "Key:" in /proc/self/status, whitespace-trimmed. */
static int status_field(const char *key, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[512];
	size_t klen = strlen(key);
	int found = -1;

	if (!f)
		return -1;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		char *v = line + klen + 1;

		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		snprintf(out, outlen, "%s", v);
		found = 0;
	}
	fclose(f);
	if (found < 0)
		errno = ENOENT;
	return found;
}

static int print_status_field(const char *key)
{
	char v[256];

	if (status_field(key, v, sizeof(v)) < 0)
		return fail_errno(errno, key);
	printf("%s\n", v);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_sorted(char **lines, size_t n)
{
	qsort(lines, n, sizeof(*lines), cmp_str);
	for (size_t i = 0; i < n; i++)
		printf("%s\n", lines[i]);
}

static int parse_signal(const char *s)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
		{ "ILL", SIGILL }, { "TRAP", SIGTRAP }, { "ABRT", SIGABRT },
		{ "BUS", SIGBUS }, { "FPE", SIGFPE }, { "KILL", SIGKILL },
		{ "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
		{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
		{ "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
		{ "TSTP", SIGTSTP }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
		{ "SYS", SIGSYS },
	};
	long n;

	if (parse_long(s, &n) == 0)
		return (n > 0 && n < NSIG) ? (int)n : -1;
	if (!strncmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (!strcmp(s, sigs[i].name))
			return sigs[i].sig;
	return -1;
}

/* ---- verbs --------------------------------------------------------------- */

static int do_cat(char **argv)
{
	int fd = open(argv[0], O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail_errno(errno, argv[0]);
	if (copy_fd(fd) < 0) {
		int err = errno;

		close(fd);
		return fail_errno(err, argv[0]);
	}
	close(fd);
	return 0;
}

/* On failure also prints the errno name on stdout, so the differential
 * tests can compare it. */
static int do_write(char **argv)
{
	int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err;

	if (fd >= 0 && write_all(fd, argv[1], strlen(argv[1])) == 0 &&
	    close(fd) == 0)
		return 0;
	err = errno;
	if (fd >= 0)
		close(fd);
	printf("%s\n", errno_name(err));
	return fail_errno(err, argv[0]);
}

static int do_ls(char **argv)
{
	DIR *d = opendir(argv[0]);
	char *names[MAX_LINES];
	size_t n = 0;
	struct dirent *e;

	if (!d)
		return fail_errno(errno, argv[0]);
	while ((e = readdir(d)) && n < MAX_LINES) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			names[n++] = strdup(e->d_name);
		if (n && !names[n - 1]) {
			closedir(d);
			return fail_errno(ENOMEM, argv[0]);
		}
	}
	closedir(d);
	print_sorted(names, n);
	return 0;
}

static int do_isatty(char **argv)
{
	long fd;

	if (parse_long(argv[0], &fd) < 0 || fd < 0 || fd > INT32_MAX)
		return fail_msg("FD must be a number");
	printf("%s\n", isatty((int)fd) ? "true" : "false");
	return 0;
}

static int do_id(char **argv)
{
	gid_t groups[NGROUPS_MAX];
	int n = getgroups(NGROUPS_MAX, groups);

	if (n < 0)
		return fail_errno(errno, "getgroups");
	printf("uid=%u gid=%u groups=", (unsigned)getuid(), (unsigned)getgid());
	for (int i = 0; i < n; i++)
		printf("%s%u", i ? "," : "", (unsigned)groups[i]);
	printf("\n");
	return 0;
}

static int do_caps(char **argv)
{
	static const char *const keys[] = { "CapEff", "CapPrm", "CapBnd",
					    "CapInh", "CapAmb" };
	char v[64];

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (status_field(keys[i], v, sizeof(v)) < 0)
			return fail_errno(errno, keys[i]);
		printf("%s=%s\n", keys[i], v);
	}
	return 0;
}

static int do_cwd(char **argv)
{
	char buf[4096];

	if (!getcwd(buf, sizeof(buf)))
		return fail_errno(errno, "getcwd");
	printf("%s\n", buf);
	return 0;
}

static int do_env(char **argv)
{
	size_t n = 0;
	char *lines[MAX_LINES];

	for (char **e = environ; *e && n < MAX_LINES; e++)
		lines[n++] = *e;
	print_sorted(lines, n);
	return 0;
}

static int do_hostname(char **argv)
{
	struct utsname u;

	if (uname(&u) < 0)
		return fail_errno(errno, "uname");
	printf("%s\n", u.nodename);
	return 0;
}

static int do_pid(char **argv)
{
	printf("%d\n", (int)getpid());
	return 0;
}

static int do_ppid(char **argv)
{
	printf("%d\n", (int)getppid());
	return 0;
}

/* mountinfo: "id parent maj:min root mountpoint opts [tags] - fstype src
 * superopts".  Prints "MOUNTPOINT FSTYPE ro|rw" per mount, sorted; the
 * mount point keeps the kernel's octal escapes so it has no spaces. */
static int do_mounts(char **argv)
{
	char *text = read_text("/proc/self/mountinfo");
	char *lines[MAX_LINES], *save = NULL;
	size_t n = 0;

	if (!text)
		return fail_errno(errno, "/proc/self/mountinfo");
	for (char *l = strtok_r(text, "\n", &save); l && n < MAX_LINES;
	     l = strtok_r(NULL, "\n", &save)) {
		char mnt[4096], opts[1024], fstype[256];
		const char *sep = strstr(l, " - ");

		if (!sep || sscanf(l, "%*s %*s %*s %*s %4095s %1023s", mnt,
				   opts) != 2 ||
		    sscanf(sep + 3, "%255s", fstype) != 1)
			continue;
		if (asprintf(&lines[n], "%s %s %s", mnt, fstype,
			     strncmp(opts, "ro", 2) ||
			     (opts[2] && opts[2] != ',') ? "rw" : "ro") < 0)
			return fail_errno(ENOMEM, "mounts");
		n++;
	}
	print_sorted(lines, n);
	return 0;
}

static int do_rlimit(char **argv)
{
	static const struct { const char *name; int res; } lims[] = {
		{ "AS", RLIMIT_AS }, { "CORE", RLIMIT_CORE },
		{ "CPU", RLIMIT_CPU }, { "DATA", RLIMIT_DATA },
		{ "FSIZE", RLIMIT_FSIZE }, { "LOCKS", RLIMIT_LOCKS },
		{ "MEMLOCK", RLIMIT_MEMLOCK }, { "MSGQUEUE", RLIMIT_MSGQUEUE },
		{ "NICE", RLIMIT_NICE }, { "NOFILE", RLIMIT_NOFILE },
		{ "NPROC", RLIMIT_NPROC }, { "RSS", RLIMIT_RSS },
		{ "RTPRIO", RLIMIT_RTPRIO }, { "RTTIME", RLIMIT_RTTIME },
		{ "SIGPENDING", RLIMIT_SIGPENDING }, { "STACK", RLIMIT_STACK },
	};
	const char *name = argv[0];
	struct rlimit rl;

	if (!strncmp(name, "RLIMIT_", 7))
		name += 7;
	for (size_t i = 0; i < ARRAY_SIZE(lims); i++) {
		if (strcmp(name, lims[i].name))
			continue;
		if (getrlimit(lims[i].res, &rl) < 0)
			return fail_errno(errno, argv[0]);
		if (rl.rlim_cur == RLIM_INFINITY)
			printf("unlimited ");
		else
			printf("%llu ", (unsigned long long)rl.rlim_cur);
		if (rl.rlim_max == RLIM_INFINITY)
			printf("unlimited\n");
		else
			printf("%llu\n", (unsigned long long)rl.rlim_max);
		return 0;
	}
	return fail_msg("unknown rlimit (NOFILE, RLIMIT_NPROC, ...)");
}

static int do_nnp(char **argv)
{
	return print_status_field("NoNewPrivs");
}

static int do_seccomp(char **argv)
{
	return print_status_field("Seccomp");
}

static int do_oom_score_adj(char **argv)
{
	char *v = read_text("/proc/self/oom_score_adj");

	if (!v)
		return fail_errno(errno, "/proc/self/oom_score_adj");
	v[strcspn(v, "\n")] = '\0';
	printf("%s\n", v);
	free(v);
	return 0;
}

/* Touch every page so the memory is really charged to the cgroup. */
static int do_memhog(char **argv)
{
	long mb;
	long page = sysconf(_SC_PAGESIZE);

	if (parse_long(argv[0], &mb) < 0 || mb < 0 || mb > (1L << 24))
		return fail_msg("MB must be a number of MiB");
	/* Keep our own text resident (best effort): under the memory limit the
	 * kernel would otherwise evict it, and re-reading it (e.g. from
	 * virtio-fs in a guest) is then what fails, not our allocation. */
	(void)mlockall(MCL_CURRENT);
	for (long i = 0; i < mb; i++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return fail_errno(errno, "mmap");
		for (long off = 0; off < (1 << 20); off += page)
			p[off] = 1;
	}
	printf("done\n");
	return 0;
}

/* Fork N sleeping children; prints "forked=K errno=NAME|none", then kills
 * and reaps them.  Children die with us (PDEATHSIG) if we are killed. */
static int do_forkbomb(char **argv)
{
	long want, got = 0;
	int first_err = 0;
	pid_t *pids;

	if (parse_long(argv[0], &want) < 0 || want < 0 || want > 100000)
		return fail_msg("N must be a number up to 100000");
	pids = calloc((size_t)want + 1, sizeof(*pids));
	if (!pids)
		return fail_errno(ENOMEM, "calloc");
	fflush(stdout);
	while (got < want) {
		pid_t p = fork();

		if (p < 0) {
			first_err = errno;
			break;
		}
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		pids[got++] = p;
	}
	for (long i = 0; i < got; i++)
		kill(pids[i], SIGKILL);
	for (long i = 0; i < got; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	free(pids);
	printf("forked=%ld errno=%s\n", got,
	       first_err ? errno_name(first_err) : "none");
	return 0;
}

/* On failure also prints the errno name ("EPERM") on stdout. */
static int do_mkdir(char **argv)
{
	if (mkdir(argv[0], 0755) < 0) {
		int err = errno;

		printf("%s\n", errno_name(err));
		return fail_errno(err, argv[0]);
	}
	printf("ok\n");
	return 0;
}

static int sleep_seconds(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s };

	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static int do_sleep(char **argv)
{
	char *end;
	double s = strtod(argv[0], &end);

	if (end == argv[0] || *end || s < 0 || s > 1e9)
		return fail_msg("SECONDS must be a number");
	if (sleep_seconds(s) < 0)
		return fail_errno(errno, "nanosleep");
	return 0;
}

/* No handler: as PID 1 of a PID namespace only SIGKILL from outside (or a
 * signal we have a handler for) ends us. */
static int do_pause(char **argv)
{
	fflush(stdout);
	for (;;)
		pause();
	return 0; /* not reached; gcc 12 -Wreturn-type wants it */
}

/* Creates READY_FILE, if given, once the handler is in place, so a test can
 * wait for it instead of sleeping. */
static void on_term(int sig)
{
	static const char msg[] = "got SIGTERM\n";

	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(0);
}

static int do_trap_term(char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		return fail_errno(errno, "sigaction");
	if (argv[0]) {
		int fd = open(argv[0], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0)
			return fail_errno(errno, argv[0]);
		close(fd);
	}
	return do_pause(argv);
}

static int do_exit(char **argv)
{
	long n;

	if (parse_long(argv[0], &n) < 0 || n < 0 || n > 255)
		return fail_msg("N must be 0..255");
	fflush(stdout);
	_exit((int)n);
}

/* The kernel drops handler-less signals sent to the PID 1 of a namespace
 * from inside it, even SIGKILL; faults are forced and do kill it, so for
 * the fault signals we really fault. */
static int do_kill_self(char **argv)
{
	int sig = parse_signal(argv[0]);
	sigset_t set;

	if (sig < 0)
		return fail_msg("unknown signal");
	fflush(stdout);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	kill(getpid(), sig);
	sleep_seconds(0.1);
	if (sig == SIGSEGV) {
		volatile int *volatile p = NULL;

		*p = 1;
	} else if (sig == SIGFPE) {
		volatile int zero = 0;

		return 1 / zero;
	} else if (sig == SIGILL) {
		__builtin_trap();
	} else if (sig == SIGTRAP) {
		__asm__ volatile("int3");
	}
	if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGCONT ||
	    sig == SIGCHLD)
		return 0;
	return fail_msg(getpid() == 1 ?
			"still alive: PID 1 of a PID namespace ignores "
			"signals it has no handler for (run under sh)" :
			"still alive after the signal");
}

static int do_echo(char **argv)
{
	for (int i = 0; argv[i]; i++)
		printf("%s%s", i ? " " : "", argv[i]);
	printf("\n");
	return 0;
}

static int do_stdin_cat(char **argv)
{
	if (copy_fd(STDIN_FILENO) < 0)
		return fail_errno(errno, "stdin");
	return 0;
}

static int do_winsize(char **argv)
{
	struct winsize ws;

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
		return fail_errno(errno, "TIOCGWINSZ on fd 0");
	printf("%u %u\n", ws.ws_row, ws.ws_col);
	return 0;
}

static int do_userns(char **argv)
{
	return do_cat((char *[]){ "/proc/self/uid_map", NULL });
}

/* NAME in dotted ("net.ipv4.ip_forward") or slashed form. */
static int do_sysctl(char **argv)
{
	char path[4096], *v;
	int n = snprintf(path, sizeof(path), "/proc/sys/%s", argv[0]);

	if (n < 0 || (size_t)n >= sizeof(path))
		return fail_msg("name too long");
	for (char *p = path + strlen("/proc/sys/"); *p; p++)
		if (*p == '.')
			*p = '/';
	v = read_text(path);
	if (!v)
		return fail_errno(errno, path);
	v[strcspn(v, "\n")] = '\0';
	printf("%s\n", v);
	free(v);
	return 0;
}

static int do_readonly(char **argv)
{
	struct statvfs st;

	if (statvfs(argv[0], &st) < 0)
		return fail_errno(errno, argv[0]);
	printf("%s\n", (st.f_flag & ST_RDONLY) ? "ro" : "rw");
	return 0;
}

static int do_help(char **argv);

static const struct verb {
	const char *name;
	int min_args, max_args; /* max -1: any number */
	int (*fn)(char **argv);
	const char *usage;
} verbs[] = {
	{ "cat", 1, 1, do_cat, "FILE" },
	{ "write", 2, 2, do_write, "FILE TEXT  (errno name on stdout on failure)" },
	{ "ls", 1, 1, do_ls, "DIR  (sorted, no . and ..)" },
	{ "isatty", 1, 1, do_isatty, "FD  (true|false)" },
	{ "id", 0, 0, do_id, " (uid=U gid=G groups=A,B)" },
	{ "caps", 0, 0, do_caps, " (CapEff=HEX ... CapAmb=HEX)" },
	{ "cwd", 0, 0, do_cwd, "" },
	{ "env", 0, 0, do_env, " (sorted)" },
	{ "hostname", 0, 0, do_hostname, "" },
	{ "pid", 0, 0, do_pid, "" },
	{ "ppid", 0, 0, do_ppid, "" },
	{ "mounts", 0, 0, do_mounts, " (MOUNTPOINT FSTYPE ro|rw, sorted)" },
	{ "rlimit", 1, 1, do_rlimit, "NAME  (SOFT HARD)" },
	{ "nnp", 0, 0, do_nnp, "" },
	{ "seccomp", 0, 0, do_seccomp, "" },
	{ "oom_score_adj", 0, 0, do_oom_score_adj, "" },
	{ "memhog", 1, 1, do_memhog, "MB  (then prints done)" },
	{ "forkbomb", 1, 1, do_forkbomb, "N  (forked=K errno=NAME|none)" },
	{ "mkdir", 1, 1, do_mkdir, "PATH  (ok, or the errno name)" },
	{ "sleep", 1, 1, do_sleep, "SECONDS" },
	{ "pause", 0, 0, do_pause, "" },
	{ "trap-term", 0, 1, do_trap_term, "[READY_FILE]" },
	{ "exit", 1, 1, do_exit, "N" },
	{ "kill-self", 1, 1, do_kill_self, "SIG" },
	{ "echo", 0, -1, do_echo, "ARGS..." },
	{ "stdin-cat", 0, 0, do_stdin_cat, "" },
	{ "winsize", 0, 0, do_winsize, " (ROWS COLS of fd 0)" },
	{ "userns", 0, 0, do_userns, " (/proc/self/uid_map)" },
	{ "sysctl", 1, 1, do_sysctl, "NAME" },
	{ "readonly", 1, 1, do_readonly, "PATH  (ro|rw)" },
	{ "help", 0, 0, do_help, "" },
};

static int do_help(char **argv)
{
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		printf("probe %s %s\n", verbs[i].name, verbs[i].usage);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: probe VERB [ARGS]  (probe help)\n");
		return 2;
	}
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
		const struct verb *v = &verbs[i];
		int nargs = argc - 2;
		int rc;

		if (strcmp(argv[1], v->name))
			continue;
		verb_name = v->name;
		if (nargs < v->min_args ||
		    (v->max_args >= 0 && nargs > v->max_args)) {
			fprintf(stderr, "usage: probe %s %s\n", v->name,
				v->usage);
			return 2;
		}
		rc = v->fn(argv + 2);
		if (fflush(stdout) == EOF && !rc)
			rc = fail_errno(errno, "stdout");
		return rc;
	}
	fprintf(stderr, "probe: unknown verb '%s' (probe help)\n", argv[1]);
	return 2;
}
