/* Shared between launch.c (agent side) and launch_child.c (child side). */
#ifndef KR_AGENT_LAUNCH_INTERNAL_H
#define KR_AGENT_LAUNCH_INTERNAL_H

#include "launch.h"

/* The child's ends of the stdio pipes (-1: none, e.g. terminal mode). */
struct launch_child_fds {
	int stdin_r, stdout_w, stderr_w;
};

void launch_child(const struct launch_config *cfg, int sync_fd,
		  const struct launch_child_fds *fds) __attribute__((noreturn));

#endif
