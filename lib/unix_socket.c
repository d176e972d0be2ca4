/* Unix stream socket helpers for ttrpc endpoints: see include/kr/ttrpc.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kr/ttrpc.h"
#include "kr/util.h"

#define LISTEN_BACKLOG 128

/* sun_path is 108 bytes: a longer path would be silently cut by some
 * callers' copies, so refuse it by name. */
static int unix_addr(const char *path, struct sockaddr_un *sa,
		     struct kr_err *err)
{
	size_t n = strlen(path);

	if (n == 0)
		return kr_err_errno(err, EINVAL, "unix socket: empty path");
	if (n >= sizeof(sa->sun_path))
		return kr_err_errno(err, ENAMETOOLONG,
				    "unix socket %s: path is %zu bytes, the limit is %zu",
				    path, n, sizeof(sa->sun_path) - 1);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

static int unix_socket(const char *path, struct kr_err *err)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return kr_err_sys(err, "unix socket %s: socket", path);
	return fd;
}

static int connect_addr(int fd, const struct sockaddr_un *sa)
{
	int rc;

	do {
		rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	} while (rc < 0 && errno == EINTR);
	/* After EINTR the connection may have completed in the meantime. */
	if (rc < 0 && errno == EISCONN)
		rc = 0;
	return rc;
}

int kr_unix_connect(const char *path, struct kr_err *err)
{
	kr_cleanup_close int fd = -1;
	struct sockaddr_un sa;

	if (unix_addr(path, &sa, err) < 0)
		return -1;
	fd = unix_socket(path, err);
	if (fd < 0)
		return -1;
	if (connect_addr(fd, &sa) < 0)
		return kr_err_sys(err, "connect to %s", path);
	return kr_steal_fd(fd);
}

int kr_unix_probe(const char *path)
{
	kr_cleanup_close int fd = -1;
	struct sockaddr_un sa;
	int rc;

	if (unix_addr(path, &sa, NULL) < 0)
		return -1;
	/* Non-blocking: a hung server with a full backlog must not hang the
	 * prober (EAGAIN then means "someone is there"). */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	rc = connect_addr(fd, &sa);
	if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS)
		return 1;
	return errno == ECONNREFUSED || errno == ENOENT ? 0 : -1;
}

/* path is taken: unlink it if it is a socket that nobody serves.  A live
 * server or a file that is not a socket is left alone. */
static int remove_stale(const char *path, struct kr_err *err)
{
	struct stat st;
	int probe;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : kr_err_sys(err, "stat %s", path);
	if (!S_ISSOCK(st.st_mode))
		return kr_err_errno(err, EADDRINUSE,
				    "listen on %s: exists and is not a socket",
				    path);
	probe = kr_unix_probe(path);
	if (probe > 0)
		return kr_err_errno(err, EADDRINUSE,
				    "listen on %s: another server is listening there",
				    path);
	if (probe < 0)
		return kr_err_sys(err, "listen on %s: probe", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return kr_err_sys(err, "remove stale socket %s", path);
	return 0;
}

int kr_unix_listen(const char *path, struct kr_err *err)
{
	kr_cleanup_close int fd = -1;
	struct sockaddr_un sa;
	int rc;

	if (unix_addr(path, &sa, err) < 0)
		return -1;
	fd = unix_socket(path, err);
	if (fd < 0)
		return -1;
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc < 0 && errno == EADDRINUSE) {
		if (remove_stale(path, err) < 0)
			return -1;
		rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	if (rc < 0)
		return kr_err_sys(err, "bind %s", path);
	if (listen(fd, LISTEN_BACKLOG) < 0)
		return kr_err_sys(err, "listen on %s", path);
	return kr_steal_fd(fd);
}
