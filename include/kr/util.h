/* Small helpers used everywhere: scope-bound cleanup (crun style), EINTR-safe
 * I/O, bounded string copies, file read/write helpers. */
#ifndef KR_UTIL_H
#define KR_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#include "kr/error.h"

#define KR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void kr_freep(void *p);
void kr_closep(int *fd);
void kr_fclosep(void *f);
#define kr_cleanup_free __attribute__((cleanup(kr_freep)))
#define kr_cleanup_close __attribute__((cleanup(kr_closep)))
#define kr_cleanup_fclose __attribute__((cleanup(kr_fclosep)))

/* Ownership transfer out of a cleanup variable. */
#define kr_steal_ptr(p) ({ __typeof__(p) _t = (p); (p) = NULL; _t; })
#define kr_steal_fd(fd) ({ int _t = (fd); (fd) = -1; _t; })

/* Loop over short reads/writes and EINTR. read_full returns the number of
 * bytes read (< len only at EOF), -1 on error. */
ssize_t kr_read_full(int fd, void *buf, size_t len);
int kr_write_full(int fd, const void *buf, size_t len);

/* Read a whole file, at most max bytes (larger -> EFBIG error). The result is
 * NUL-terminated; *len (if not NULL) excludes the NUL. */
int kr_read_file(const char *path, size_t max, char **out, size_t *len,
		 struct kr_err *err);
/* Write a string to an existing file (cgroup and /proc files): one write(2). */
int kr_write_file(const char *path, const char *data, struct kr_err *err);
int kr_write_filef(struct kr_err *err, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* mkdir -p with mode; existing directories are fine. */
int kr_mkdir_p(const char *path, mode_t mode, struct kr_err *err);
/* rm -rf that stays on one file system and never follows symlinks. */
int kr_rm_rf(const char *path, struct kr_err *err);

/* snprintf that reports truncation as an error instead of cutting. */
int kr_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* *ts = now + ms on the given clock (for pthread_cond_timedwait). */
#include <time.h>
void kr_deadline_ms(struct timespec *ts, clockid_t clock, unsigned ms);

/* Monotonic clock in milliseconds / nanoseconds. */
uint64_t kr_now_ms(void);
/* The last size bytes of a file (all of it if shorter), without reading the
 * rest: bytes read, or -1 with errno. */
ssize_t kr_read_tail(const char *path, char *buf, size_t size);
/* Start time of a live process (field 22 of /proc/PID/stat), so that a
 * reused pid is not taken for the one recorded; 0 if it is gone, a zombie
 * or unreadable. */
unsigned long long kr_proc_start_time(pid_t pid);
uint64_t kr_now_ns(void);

/* calloc/strdup that abort on out-of-memory: a small allocation failing means
 * the process is beyond saving, and checking every one hides real errors. */
void *kr_xcalloc(size_t n, size_t size);
char *kr_xstrdup(const char *s);

#endif
