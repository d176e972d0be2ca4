/* Levelled logfmt logging: see include/kr/log.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kr/log.h"
#include "kr/util.h"

static const char *log_prog = "kata-run";
static int log_fd = STDERR_FILENO;
static volatile int log_level = KR_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void kr_log_init(const char *prog, enum kr_log_level level, int fd)
{
	if (prog)
		log_prog = prog;
	if (fd >= 0)
		log_fd = fd;
	log_level = level;
}

void kr_log_set_level(enum kr_log_level level) { log_level = level; }
int kr_log_fd(void) { return log_fd; }
void kr_log_set_fd(int fd) { log_fd = fd; }
enum kr_log_level kr_log_get_level(void) { return log_level; }

int kr_log_level_parse(const char *name)
{
	for (size_t i = 0; i < KR_ARRAY_SIZE(level_names); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	if (strcmp(name, "warning") == 0)
		return KR_LOG_WARN;
	return -1;
}

/* Quote the message as logfmt does: escape '"', '\\' and control bytes. */
static size_t quote(char *out, size_t size, const char *msg)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)msg;
	     *p && o + 5 < size; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (*p < 0x20) {
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o] = '\0';
	return o;
}

void kr_log(enum kr_log_level level, const char *fmt, ...)
{
	char msg[2048], line[4608], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int saved = errno, n;

	if ((int)level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "time=%s.%03ldZ level=%s prog=%s pid=%d msg=\"",
		     ts, now.tv_nsec / 1000000, level_names[level], log_prog,
		     (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	n += (int)quote(line + n, sizeof(line) - (size_t)n - 2, msg);
	line[n++] = '"';
	line[n++] = '\n';
	/* One write so that concurrent lines never interleave. */
	(void)!write(log_fd, line, (size_t)n);
	errno = saved;
}
