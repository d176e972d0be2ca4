/* Small helpers: see include/kr/util.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kr/util.h"

void kr_freep(void *p)
{
	free(*(void **)p);
}

void kr_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
	}
	*fd = -1;
}

void kr_fclosep(void *f)
{
	FILE **fp = f;

	if (*fp)
		fclose(*fp);
}

ssize_t kr_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int kr_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

int kr_read_file(const char *path, size_t max, char **out, size_t *len,
		 struct kr_err *err)
{
	kr_cleanup_close int fd = -1;
	kr_cleanup_free char *buf = NULL;
	size_t cap = 4096, used = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kr_err_sys(err, "open %s", path);
	buf = malloc(cap + 1);
	if (!buf)
		return kr_err_errno(err, ENOMEM, "read %s", path);
	for (;;) {
		ssize_t n;

		if (used == cap) {
			char *nb;

			if (cap >= max)
				return kr_err_errno(err, EFBIG, "read %s: larger than %zu bytes", path, max);
			cap = cap * 2 > max ? max : cap * 2;
			nb = realloc(buf, cap + 1);
			if (!nb)
				return kr_err_errno(err, ENOMEM, "read %s", path);
			buf = nb;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kr_err_sys(err, "read %s", path);
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	if (len)
		*len = used;
	*out = kr_steal_ptr(buf);
	return 0;
}

int kr_write_file(const char *path, const char *data, struct kr_err *err)
{
	kr_cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(data);
	ssize_t n;

	if (fd < 0)
		return kr_err_sys(err, "open %s", path);
	do {
		n = write(fd, data, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return kr_err_sys(err, "write %s to %s", data, path);
	if ((size_t)n != len)
		return kr_err_errno(err, EIO, "short write to %s", path);
	return 0;
}

int kr_write_filef(struct kr_err *err, const char *path, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return kr_err_errno(err, E2BIG, "write %s", path);
	return kr_write_file(path, buf, err);
}

int kr_mkdir_p(const char *path, mode_t mode, struct kr_err *err)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return kr_err_errno(err, ENAMETOOLONG, "mkdir %s", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, mode) < 0 && errno != EEXIST)
				return kr_err_sys(err, "mkdir %s", buf);
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return 0;
}

static int rm_at(int dirfd, const char *name, dev_t dev, int depth,
		 struct kr_err *err)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd, rc = 0;

	if (depth > 256)
		return kr_err_errno(err, ELOOP, "remove %s: too deep", name);
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : kr_err_sys(err, "stat %s", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return kr_err_sys(err, "unlink %s", name);
		return 0;
	}
	if (st.st_dev != dev)	/* a mount point: never descend into it */
		return kr_err_errno(err, EBUSY, "remove %s: a file system is mounted there", name);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return kr_err_sys(err, "open %s", name);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return kr_err_sys(err, "opendir %s", name);
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rm_at(fd, de->d_name, dev, depth + 1, err) < 0) {
			rc = -1;
			break;
		}
	}
	closedir(d);
	if (rc < 0)
		return kr_err_wrap(err, "%s", name);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return kr_err_sys(err, "rmdir %s", name);
	return 0;
}

int kr_rm_rf(const char *path, struct kr_err *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : kr_err_sys(err, "stat %s", path);
	return rm_at(AT_FDCWD, path, st.st_dev, 0, err);
}

int kr_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return n;
}

void kr_deadline_ms(struct timespec *ts, clockid_t clock, unsigned ms)
{
	clock_gettime(clock, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

uint64_t kr_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t kr_now_ms(void)
{
	return kr_now_ns() / 1000000ull;
}

void *kr_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		abort();
	return p;
}

char *kr_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		abort();
	return p;
}

/* A process's start time (field 22 of /proc/PID/stat, so that a reused
 * pid is not taken for the owner) and whether it is gone: a killed owner
 * stays a zombie until its parent (often init, which may reap late)
 * collects it, and counts as dead.  Returns the start time, 0 if the
 * process is gone or unreadable. */
unsigned long long kr_proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p, state;
	unsigned long long start = 0;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command name may hold spaces */
	if (!p || sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &state, &start) != 2 || state == 'Z' || state == 'X' || state == 'x')
		return 0;
	return start;
}

ssize_t kr_read_tail(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;

	if (fd < 0)
		return -1;
	end = lseek(fd, 0, SEEK_END);
	n = end < 0 ? -1 : pread(fd, buf, size, end > (off_t)size ? end - (off_t)size : 0);
	close(fd);
	return n;
}
