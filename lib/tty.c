/* Raw mode and window size of the user's terminal (include/kr/tty.h). */
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "kr/tty.h"

static struct termios saved;
static int saved_fd = -1;

void kr_tty_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSANOW, &saved);
		saved_fd = -1;
	}
}

bool kr_tty_raw(int fd)
{
	static bool registered;
	struct termios t;

	if (!isatty(fd) || tcgetattr(fd, &saved) < 0)
		return false;
	saved_fd = fd;
	if (!registered) {
		atexit(kr_tty_restore);
		registered = true;
	}
	t = saved;
	cfmakeraw(&t);	/* the container's TTY does the output processing */
	return tcsetattr(fd, TCSANOW, &t) == 0;
}

bool kr_tty_size(int fd, unsigned *rows, unsigned *cols)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col)
		return false;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return true;
}
