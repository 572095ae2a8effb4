/*
 * Digests (ops/op_hash.c) as the other op modules use them: HMAC, HKDF and
 * pk look a hash_algs id up, hello lists the compiled-in ones.
 */
#ifndef ML_HASH_H
#define ML_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* Looks a hash_algs id up among the compiled-in digests (ops/op_hash.c):
 * unsupported_algorithm when absent. block_size (may be NULL) receives the
 * digest's input block size. */
struct mbedtls_md_info_t;
int ml_hash_lookup(struct ml_call *call, uint64_t alg, const struct mbedtls_md_info_t **info, size_t *block_size);

/* A digest context's state as bytes, for objects swapped out to the host
 * (ops/op_obj.c): the md type (1 byte), then the algorithm context
 * (mbedtls_sha256_context, ...) copied by value; those contexts are plain
 * data (op_hash.c refuses _ALT builds), and only this firmware in this boot
 * reads the bytes back (they are wrapped under a per-boot key). At most
 * ML_MD_STATE_MAX bytes. */
#define ML_MD_STATE_MAX 256u
struct mbedtls_md_context_t;
/* Writes the state of a set-up context into buf[0..cap): internal_error when cap is too small. */
int ml_md_state_write(struct ml_call *call, const struct mbedtls_md_context_t *md, uint8_t *buf, size_t cap,
                      size_t *len);
/* The digest of state bytes: internal_error unless they are exactly one context of a compiled-in digest. */
int ml_md_state_info(struct ml_call *call, const uint8_t *state, size_t len, const struct mbedtls_md_info_t **info);
/* Copies checked state bytes into a context set up with the digest ml_md_state_info gave. */
void ml_md_state_load(struct mbedtls_md_context_t *md, const uint8_t *state);

/* The hash algorithm ids (ids.json hash_algs) compiled into this firmware,
 * in id order; returns how many were written to out (at most cap). */
size_t ml_hash_list(uint32_t *out, size_t cap);

#endif /* ML_HASH_H */
