/* Levelled logging: one write(2) per line, so lines from threads and from
 * forked children never interleave.  Format:
 *   2026-11-22T15:54:35.123Z level=info prog=kata-agent pid=1 msg="..."
 * (logfmt, as containerd's own logs, so shim logs read alike). */
#ifndef KR_LOG_H
#define KR_LOG_H

enum kr_log_level { KR_LOG_ERROR, KR_LOG_WARN, KR_LOG_INFO, KR_LOG_DEBUG };

/* fd < 0 keeps the current one (stderr by default). */
void kr_log_init(const char *prog, enum kr_log_level level, int fd);
void kr_log_set_level(enum kr_log_level level);
/* The fd lines go to (a forked child moves it out of its stdio's way). */
int kr_log_fd(void);
void kr_log_set_fd(int fd);
enum kr_log_level kr_log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 if unknown. */
int kr_log_level_parse(const char *name);

void kr_log(enum kr_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define kr_error(...) kr_log(KR_LOG_ERROR, __VA_ARGS__)
#define kr_warn(...) kr_log(KR_LOG_WARN, __VA_ARGS__)
#define kr_info(...) kr_log(KR_LOG_INFO, __VA_ARGS__)
#define kr_debug(...)                                        \
	do {                                                 \
		if (kr_log_get_level() >= KR_LOG_DEBUG)      \
			kr_log(KR_LOG_DEBUG, __VA_ARGS__);   \
	} while (0)

#endif
