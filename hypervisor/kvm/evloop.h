/* The VMM's I/O thread: one epoll loop for every host-side file descriptor
 * of every device (virtqueue kick eventfds, vsock Unix sockets, the tap
 * device, virtiofsd's call eventfds, the serial input).  vCPU threads never
 * wait on host I/O; they only signal eventfds.
 *
 * Handlers run on the loop's thread, one at a time.  ev_add/ev_mod/ev_del
 * may be called from any thread, including from a handler (a handler may
 * remove its own or another fd: the loop skips events of removed fds in the
 * same round). */
#ifndef KR_VMM_EVLOOP_H
#define KR_VMM_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "kr/error.h"

struct evloop;

/* events: EPOLLIN/EPOLLOUT/EPOLLHUP/EPOLLERR bits as epoll reported them. */
typedef void (*ev_fn)(void *opaque, int fd, uint32_t events);

struct evloop *ev_new(struct kr_err *err);
/* Closes the loop's own fds; not the registered ones. */
void ev_free(struct evloop *ev);

/* events: EPOLLIN and/or EPOLLOUT (level-triggered). One registration per
 * fd. */
int ev_add(struct evloop *ev, int fd, uint32_t events, ev_fn fn, void *opaque,
	   struct kr_err *err);
int ev_mod(struct evloop *ev, int fd, uint32_t events, struct kr_err *err);
/* Safe for an fd that is not registered. */
void ev_del(struct evloop *ev, int fd);

/* Run one round: wait up to timeout_ms (-1 forever) and run the handlers
 * of what is ready.  Returns the number of handlers run, -1 on error. */
int ev_run_once(struct evloop *ev, int timeout_ms);
/* Run until ev_stop() (from any thread or a handler). */
void ev_run(struct evloop *ev);
void ev_stop(struct evloop *ev);

#endif
