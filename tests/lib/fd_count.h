/* How many fds this process has open: tests compare it before and after to
 * catch leaks. */
#ifndef KR_TEST_FD_COUNT_H
#define KR_TEST_FD_COUNT_H

#include <dirent.h>

static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;		/* the DIR's own fd */
}

#endif
