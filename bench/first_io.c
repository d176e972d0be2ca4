/* first_io: run a VMM command, report the time from starting it (fork, exec) to the guest's
 * first byte on the VMM's stdout (the serial console), the VMM's resident
 * memory outside guest RAM, and the total run time.  Build it static
 * (gcc -static -O2) to run it on a bare initramfs host.
 *
 *   first_io [--until STR] [--hold-ms N] [--kill] [--maps N] -- COMMAND [ARGS...]
 *
 * Guest RAM is taken to be the VMM's largest mapping (128 MiB or more; its
 * size and name are reported so the caller can check that).  The RSS
 * outside it is sampled after the first byte, or after STR has appeared on
 * stdout with --until (e.g. the guest's verdict line: the VMM has done its
 * work), then after --hold-ms N more ms (the guest keeps running).  Two
 * ways, the first that works:
 *   smaps    the sum of Rss over /proc/PID/smaps minus the largest
 *            mapping's Rss;
 *   mincore  for kernels without CONFIG_PROC_PAGE_MONITOR (no smaps, no
 *            pagemap): VmRSS of /proc/PID/status minus the resident pages
 *            of the file behind the largest mapping (memfd guest RAM),
 *            opened through /proc/PID/map_files (root) and counted with
 *            mincore(); anonymous guest RAM cannot be measured this way.
 *            Before Linux 6.2 VmRSS of a live process lags: each thread
 *            folds its counts in every 64 page faults (SPLIT_RSS_COUNTING),
 *            so it can read low by what the last few dozen faults of each
 *            thread mapped.
 * --kill sends SIGKILL once the sample is taken (for a guest that keeps
 * running).  SIGKILL rather than SIGTERM: the VMM frees nothing first, and
 * every thread folds its counts in as it exits, so the child's ru_maxrss
 * (maxrss_kib) is exact: max(RSS at the kill, earlier peaks).
 * maxrss_kib - ram_kib is thus an upper bound on the RSS outside guest
 * RAM where rss_kib (mincore method) may be a lower one.
 * --maps N prints the N largest mappings to stderr.
 * Output, one line:
 *   first_io_ms=F rss_kib=R total_ms=T status=S largest_kib=L until_ms=U
 *   method=smaps|mincore ram_kib=G maxrss_kib=M largest=NAME
 * (-1: not measured; status 128+SIG for a signal; ram_kib: guest RAM
 * resident; maxrss_kib: the child's ru_maxrss, whole process; NAME: the
 * largest mapping, spaces as _).
 * Exit status 0 when a first byte came (and STR with --until), else 1; 2
 * for usage errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct mapping {
	unsigned long lo, hi, off;
	long size_kib, rss_kib; /* rss_kib -1: unknown (no smaps) */
	char perms[8], name[96];
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int by_size_desc(const void *a, const void *b)
{
	const struct mapping *x = a, *y = b;

	return (x->size_kib < y->size_kib) - (x->size_kib > y->size_kib);
}

/* The mappings of PID from /proc/PID/FILE (smaps or maps), sorted by size,
 * largest first; returns their number, or -1 when FILE cannot be read. */
static int read_mappings(pid_t pid, const char *file, struct mapping **out)
{
	char path[64], line[512];
	struct mapping *m = NULL;
	int n = 0, cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off;
		char perms[8];
		long kib;
		int name_at = 0;

		/* A mapping's header: "lo-hi perms offset dev inode [name]";
		 * smaps field lines ("Rss:   12 kB") have no '-' before the first space. */
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') &&
		    sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &lo, &hi, perms, &off, &name_at) == 4) {
			if (n == cap) {
				struct mapping *bigger;

				cap = cap ? 2 * cap : 256;
				bigger = realloc(m, cap * sizeof(*m));
				if (!bigger)
					break;
				m = bigger;
			}
			m[n].lo = lo;
			m[n].hi = hi;
			m[n].off = off;
			m[n].size_kib = (long)((hi - lo) >> 10);
			m[n].rss_kib = -1;
			snprintf(m[n].perms, sizeof(m[n].perms), "%s", perms);
			snprintf(m[n].name, sizeof(m[n].name), "%s",
				 name_at && line[name_at] && line[name_at] != '\n' ? line + name_at : "(anonymous)");
			m[n].name[strcspn(m[n].name, "\n")] = '\0';
			n++;
		} else if (n > 0 && sscanf(line, "Rss: %ld kB", &kib) == 1) {
			m[n - 1].rss_kib = kib;
		}
	}
	fclose(f);
	qsort(m, n, sizeof(*m), by_size_desc);
	*out = m;
	return n;
}

/* VmRSS of PID in KiB, -1 if unknown. */
static long vm_rss(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Resident KiB of the file range behind mapping M of PID (memfd guest RAM),
 * -1 when it cannot be opened (anonymous memory, not root). */
static long file_resident_kib(pid_t pid, const struct mapping *m)
{
	long page = sysconf(_SC_PAGESIZE), pages, i, resident = 0;
	unsigned char *vec;
	char path[96];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", (int)pid, m->lo, m->hi);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	p = mmap(NULL, m->hi - m->lo, PROT_READ, MAP_SHARED, fd, (off_t)m->off);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	pages = (long)((m->hi - m->lo) / page);
	vec = malloc(pages);
	if (vec && mincore(p, m->hi - m->lo, vec) == 0) {
		for (i = 0; i < pages; i++)
			resident += vec[i] & 1;
	} else {
		resident = -1;
	}
	free(vec);
	munmap(p, m->hi - m->lo);
	return resident < 0 ? -1 : resident * (page / 1024);
}

/* RSS of PID outside its largest mapping (KiB, -1 if unknown); sets the
 * largest mapping's size and name, and the method used.  Prints the SHOW
 * largest mappings to stderr. */
static long rss_outside_largest(pid_t pid, int show, long *largest, char *largest_name,
				size_t name_size, const char **method, long *ram)
{
	struct mapping *m = NULL;
	long total = 0, rss = -1;
	int n, i;

	*method = "smaps";
	n = read_mappings(pid, "smaps", &m);
	if (n < 0) {
		*method = "mincore";
		n = read_mappings(pid, "maps", &m);
	}
	if (n <= 0) {
		free(m);
		return -1;
	}
	*largest = m[0].size_kib;
	snprintf(largest_name, name_size, "%s", m[0].name);
	if (m[0].rss_kib >= 0) {
		for (i = 0; i < n; i++)
			total += m[i].rss_kib;
		*ram = m[0].rss_kib;
	} else {
		total = vm_rss(pid);
		*ram = file_resident_kib(pid, &m[0]);
	}
	if (total >= 0 && *ram >= 0)
		rss = total - *ram;
	if (show > 0) {
		fprintf(stderr, "first_io: %d mappings of pid %d, the %d largest (the first is taken as guest RAM):\n",
			n, (int)pid, show < n ? show : n);
		fprintf(stderr, "  %10s %8s %5s  %s\n", "size_kib", "rss_kib", "perms", "name");
		for (i = 0; i < n && i < show; i++) {
			if (m[i].rss_kib >= 0)
				fprintf(stderr, "  %10ld %8ld %5s  %s\n", m[i].size_kib, m[i].rss_kib, m[i].perms, m[i].name);
			else
				fprintf(stderr, "  %10ld %8s %5s  %s\n", m[i].size_kib, "?", m[i].perms, m[i].name);
		}
		fprintf(stderr, "  method %s: total rss %ld kib, guest RAM resident %ld kib, outside %ld kib\n",
			*method, total, *ram, rss);
	}
	free(m);
	return rss;
}

static int usage(void)
{
	fprintf(stderr, "usage: first_io [--until STR] [--hold-ms N] [--kill] [--maps N] -- COMMAND [ARGS...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int p[2], status = 0, i = 1, kill_it = 0, maps = 0, ok;
	long hold = 0, rss = -1, largest = -1, ram = -1;
	struct rusage ru = { 0 };
	const char *until = NULL, *method = "-";
	char buf[65536], name[96] = "-";
	double t0, first = -1, until_ms = -1;
	size_t have = 0;
	ssize_t r;
	pid_t pid;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2]; i++) {
		if (strcmp(argv[i], "--hold-ms") == 0 && i + 1 < argc)
			hold = atol(argv[++i]);
		else if (strcmp(argv[i], "--until") == 0 && i + 1 < argc && argv[i + 1][0])
			until = argv[++i];
		else if (strcmp(argv[i], "--maps") == 0 && i + 1 < argc)
			maps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--kill") == 0)
			kill_it = 1;
		else
			return usage();
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc || hold < 0 || maps < 0)
		return usage();
	if (pipe(p) < 0)
		return perror("pipe"), 1;
	t0 = now_ms();
	pid = fork();
	if (pid < 0)
		return perror("fork"), 1;
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		execvp(argv[i], argv + i);
		fprintf(stderr, "first_io: exec %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if (read(p[0], buf, 1) == 1) {
		first = now_ms() - t0;
		have = 1;
		/* Read on until STR shows (the window keeps the last 32 KiB). */
		while (until && until_ms < 0) {
			if (have > sizeof(buf) / 2) {
				memmove(buf, buf + have - sizeof(buf) / 2, sizeof(buf) / 2);
				have = sizeof(buf) / 2;
			}
			r = read(p[0], buf + have, sizeof(buf) - have);
			if (r <= 0)
				break;
			have += (size_t)r;
			if (memmem(buf, have, until, strlen(until)))
				until_ms = now_ms() - t0;
		}
		if (!until || until_ms >= 0) {
			if (hold > 0)
				usleep((useconds_t)hold * 1000);
			rss = rss_outside_largest(pid, maps, &largest, name, sizeof(name), &method, &ram);
		}
		if (kill_it)
			kill(pid, SIGKILL);
	}
	/* Drain the rest so the VMM never blocks on a full pipe. */
	while (read(p[0], buf, sizeof(buf)) > 0)
		;
	if (wait4(pid, &status, 0, &ru) < 0)
		ru.ru_maxrss = -1;
	for (i = 0; name[i]; i++)
		if (name[i] == ' ')
			name[i] = '_';
	printf("first_io_ms=%.2f rss_kib=%ld total_ms=%.2f status=%d largest_kib=%ld until_ms=%.2f "
	       "method=%s ram_kib=%ld maxrss_kib=%ld largest=%s\n",
	       first, rss, now_ms() - t0,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), largest, until_ms,
	       method, ram, (long)ru.ru_maxrss, name);
	ok = first >= 0 && (!until || until_ms >= 0);
	return !ok;
}
