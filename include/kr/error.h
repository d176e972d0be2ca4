/* Error objects shared by every kata-run program.
 *
 * Library code never prints and exits (see docs/architecture.md): a fallible
 * function returns < 0 and fills a caller-provided struct kr_err with the
 * errno and a message; callers add context with kr_err_wrap() as the error
 * travels up ("create container abc: mount /proc: Permission denied"), and
 * only a program's entry point reports it.  The struct lives on the caller's
 * stack so that error paths never allocate. */
#ifndef KR_ERROR_H
#define KR_ERROR_H

#include <stddef.h>

/* gRPC status codes, used as ttrpc response status (containerd's errdefs map
 * 3, 5, 6, 9, 12 and 14 to its error classes). */
enum kr_code {
	KR_OK = 0,
	KR_CANCELED = 1,
	KR_UNKNOWN = 2,
	KR_INVALID_ARGUMENT = 3,
	KR_DEADLINE_EXCEEDED = 4,
	KR_NOT_FOUND = 5,
	KR_ALREADY_EXISTS = 6,
	KR_PERMISSION_DENIED = 7,
	KR_RESOURCE_EXHAUSTED = 8,
	KR_FAILED_PRECONDITION = 9,
	KR_ABORTED = 10,
	KR_OUT_OF_RANGE = 11,
	KR_UNIMPLEMENTED = 12,
	KR_INTERNAL = 13,
	KR_UNAVAILABLE = 14,
};

#define KR_ERR_MSG_MAX 1024

struct kr_err {
	int errnum;		/* errno of the root cause, 0 if none */
	int code;		/* enum kr_code; KR_UNKNOWN unless a setter says otherwise */
	char msg[KR_ERR_MSG_MAX];
};

/* All setters return -1 so that "return kr_err_set(...)" reads naturally.
 * err may be NULL: the error is then dropped. */

/* msg = formatted text; no errno appended. */
int kr_err_set(struct kr_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* msg = "<formatted>: strerror(errnum)"; code derived from errnum
 * (ENOENT -> NOT_FOUND, EEXIST -> ALREADY_EXISTS, EINVAL -> INVALID_ARGUMENT,
 * ETIMEDOUT -> DEADLINE_EXCEEDED, EPERM/EACCES -> PERMISSION_DENIED, ...). */
int kr_err_errno(struct kr_err *err, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same with the current errno. */
int kr_err_sys(struct kr_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prefix context: msg = "<formatted>: <old msg>". Keeps errnum and code. */
int kr_err_wrap(struct kr_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void kr_err_clear(struct kr_err *err);
/* Map an errno to a kr_code. */
int kr_code_from_errno(int errnum);
const char *kr_code_name(int code);

#endif
