/* vsock_peer: the host side of kata-vmm's hybrid vsock, for tests (runs
 * inside the nested KVM host, so static and self-contained).
 *
 *   vsock_peer listen PATH_PORT LINE
 *       serve one guest-initiated connection on the Unix socket PATH_PORT
 *       (kata-vmm connects there when the guest connects to host port PORT):
 *       print what the guest sends up to its first newline as
 *       "peer: got <line>", send LINE + "\n", then read to EOF.
 *   vsock_peer connect PATH PORT DATA
 *       connect to the VM's socket PATH, "CONNECT PORT\n", expect
 *       "OK <n>\n", send DATA, shut down writing, print every byte received
 *       as "peer: echo <data>".
 * Exit 0 on success, 1 with a message on stderr otherwise; every wait is
 * bounded (10 s). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT_MS 10000

static int die(const char *what)
{
	fprintf(stderr, "vsock_peer: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

static void addr_of(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path)) {
		errno = ENAMETOOLONG;
		die(path);
	}
	strcpy(a->sun_path, path);
}

/* Read into buf up to size-1 bytes, stopping after a newline if line is
 * set; 0 at EOF. */
static ssize_t read_some(int fd, char *buf, size_t size, int line)
{
	size_t n = 0;

	while (n < size - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, TIMEOUT_MS) != 1) {
			errno = ETIMEDOUT;
			die("waiting for data");
		}
		r = read(fd, buf + n, line ? 1 : size - 1 - n);
		if (r < 0)
			die("read");
		if (r == 0)
			break;
		n += (size_t)r;
		if (line && buf[n - 1] == '\n')
			break;
	}
	buf[n] = 0;
	return (ssize_t)n;
}

static int do_listen(const char *path, const char *reply)
{
	struct sockaddr_un a;
	char buf[4096];
	int s = socket(AF_UNIX, SOCK_STREAM, 0), c;
	struct pollfd p;

	addr_of(path, &a);
	unlink(path);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)
		die(path);
	printf("peer: listening on %s\n", path);
	fflush(stdout);
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	if (poll(&p, 1, 3 * TIMEOUT_MS) != 1) {
		errno = ETIMEDOUT;
		die("waiting for the guest's connection");
	}
	c = accept(s, NULL, NULL);
	if (c < 0)
		die("accept");
	read_some(c, buf, sizeof(buf), 1);
	buf[strcspn(buf, "\n")] = 0;
	printf("peer: got %s\n", buf);
	snprintf(buf, sizeof(buf), "%s\n", reply);
	if (write(c, buf, strlen(buf)) != (ssize_t)strlen(buf))
		die("write");
	while (read_some(c, buf, sizeof(buf), 0) > 0)
		printf("peer: more %s\n", buf);
	printf("peer: guest closed\n");
	unlink(path);
	return 0;
}

static int do_connect(const char *path, const char *port, const char *data)
{
	struct sockaddr_un a;
	char buf[4096];
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	addr_of(path, &a);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		die(path);
	snprintf(buf, sizeof(buf), "CONNECT %s\n", port);
	if (write(s, buf, strlen(buf)) != (ssize_t)strlen(buf))
		die("write CONNECT");
	if (read_some(s, buf, sizeof(buf), 1) == 0 || strncmp(buf, "OK ", 3) != 0) {
		fprintf(stderr, "vsock_peer: CONNECT %s: answer \"%s\"\n", port, buf);
		return 1;
	}
	printf("peer: %s", buf);
	if (write(s, data, strlen(data)) != (ssize_t)strlen(data))
		die("write data");
	shutdown(s, SHUT_WR);
	while (read_some(s, buf, sizeof(buf), 0) > 0)
		printf("peer: echo %s\n", buf);
	printf("peer: closed\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "listen") == 0)
		return do_listen(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "connect") == 0)
		return do_connect(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: vsock_peer listen PATH_PORT LINE | connect PATH PORT DATA\n");
	return 2;
}
