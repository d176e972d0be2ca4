/* Error objects: see include/kr/error.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kr/error.h"

int kr_code_from_errno(int errnum)
{
	switch (errnum) {
	case 0: return KR_UNKNOWN;
	case ENOENT: case ESRCH: return KR_NOT_FOUND;
	case EEXIST: return KR_ALREADY_EXISTS;
	case EINVAL: case E2BIG: case ENAMETOOLONG: return KR_INVALID_ARGUMENT;
	case ETIMEDOUT: return KR_DEADLINE_EXCEEDED;
	case EPERM: case EACCES: return KR_PERMISSION_DENIED;
	case ENOMEM: case ENOSPC: case EMFILE: case ENFILE: case EFBIG:
		return KR_RESOURCE_EXHAUSTED;
	case ENOSYS: case EOPNOTSUPP: return KR_UNIMPLEMENTED;
	case ECONNREFUSED: case ECONNRESET: case EPIPE: case ENOTCONN:
		return KR_UNAVAILABLE;
	case EBUSY: case EAGAIN: return KR_FAILED_PRECONDITION;
	case ECANCELED: return KR_CANCELED;
	default: return KR_UNKNOWN;
	}
}

const char *kr_code_name(int code)
{
	static const char *const names[] = {
		"ok", "canceled", "unknown", "invalid argument",
		"deadline exceeded", "not found", "already exists",
		"permission denied", "resource exhausted",
		"failed precondition", "aborted", "out of range",
		"not implemented", "internal", "unavailable",
	};
	if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0])))
		return "unknown";
	return names[code];
}

static void vset(struct kr_err *err, const char *fmt, va_list ap)
{
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int kr_err_set(struct kr_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	err->errnum = 0;
	err->code = code;
	va_start(ap, fmt);
	vset(err, fmt, ap);
	va_end(ap);
	return -1;
}

static int verrno(struct kr_err *err, int errnum, const char *fmt, va_list ap)
{
	size_t n;

	if (!err)
		return -1;
	err->errnum = errnum;
	err->code = kr_code_from_errno(errnum);
	vset(err, fmt, ap);
	n = strlen(err->msg);
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(errnum));
	return -1;
}

int kr_err_errno(struct kr_err *err, int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verrno(err, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int kr_err_sys(struct kr_err *err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	verrno(err, saved, fmt, ap);
	va_end(ap);
	errno = saved;
	return -1;
}

int kr_err_wrap(struct kr_err *err, const char *fmt, ...)
{
	char prefix[KR_ERR_MSG_MAX], old[KR_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	/* Context first; the root cause is cut if the whole does not fit. */
	size_t pl = strnlen(prefix, sizeof(err->msg) - 3);
	memcpy(err->msg, prefix, pl);
	memcpy(err->msg + pl, ": ", 2);
	size_t room = sizeof(err->msg) - pl - 3;
	size_t ol = strnlen(old, room);
	memcpy(err->msg + pl + 2, old, ol);
	err->msg[pl + 2 + ol] = '\0';
	return -1;
}

void kr_err_clear(struct kr_err *err)
{
	if (!err)
		return;
	err->errnum = 0;
	err->code = KR_OK;
	err->msg[0] = '\0';
}
