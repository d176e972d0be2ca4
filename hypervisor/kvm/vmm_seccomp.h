/* kata-vmm's seccomp allow-list, applied once the VM is built and before
 * the guest runs (DESIGN.md: the VMM needs /dev/kvm, its sockets and its
 * image files, nothing else).  A syscall outside the list kills the whole
 * VMM (SIGSYS): a guest that found a bug in a device model gains nothing
 * it could not have done by crashing its own VM. */
#ifndef KR_VMM_VMM_SECCOMP_H
#define KR_VMM_VMM_SECCOMP_H

#include <stdbool.h>

#include "kr/error.h"

/* report: instead of dying at once, print which syscall was refused (to
 * stderr) and exit 128 + SIGSYS (kata-vmm --log-level debug).
 * Apply the filter to every thread of the process (TSYNC).  No new threads,
 * files or mappings of files may be needed afterwards, except: connect() to
 * Unix sockets (vsock to host services), accept4() on the vsock listener,
 * anonymous memory (malloc). */
int vmm_seccomp_apply(bool report, struct kr_err *err);

#endif
