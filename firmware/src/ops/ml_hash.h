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

/* The hash algorithm ids (ids.json hash_algs) compiled into this firmware,
 * in id order; returns how many were written to out (at most cap). */
size_t ml_hash_list(uint32_t *out, size_t cap);

#endif /* ML_HASH_H */
