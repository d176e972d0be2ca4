/* SHA-256 (FIPS 180-4): the containerd shim names its socket after the
 * hash of "<address>/<namespace>/<group>", as containerd's shims do. */
#ifndef KR_SHA256_H
#define KR_SHA256_H

#include <stddef.h>
#include <stdint.h>

void kr_sha256(const void *data, size_t len, uint8_t out[32]);
/* 64 lowercase hex digits and a NUL. */
void kr_sha256_hex(const void *data, size_t len, char out[65]);

#endif
