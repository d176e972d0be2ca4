/* The user's terminal while a container owns it: raw mode (so ^C, ^Z and
 * friends reach the container's TTY as bytes) and its window size.  Used by
 * kata-run and kr-agent-ctl. */
#ifndef KR_TTY_H
#define KR_TTY_H

#include <stdbool.h>

/* Put fd's terminal in raw mode, output processing included (the
 * container's TTY already turned "\n" into "\r\n").  Remembers the old settings and
 * restores them at exit too.  false if fd is not a terminal. */
bool kr_tty_raw(int fd);
/* Restore what kr_tty_raw changed (idempotent; async-signal-safe). */
void kr_tty_restore(void);
/* fd's window size; false if fd is not a terminal or the size is 0x0. */
bool kr_tty_size(int fd, unsigned *rows, unsigned *cols);

#endif
