/* Op handlers, one file per protocol module (ops/op_<module>.c). */
#ifndef ML_OPS_H
#define ML_OPS_H

#include "dispatch/ml_dispatch.h"

/* sys */
int ml_op_hello(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_echo(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_stats(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_free(struct ml_call *call, CborValue *args, CborEncoder *result);

/* hash */
int ml_op_hash_new(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hash_update(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hash_digest(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hash_copy(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hash_oneshot(struct ml_call *call, CborValue *args, CborEncoder *result);

/* hmac */
int ml_op_hmac_new(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hmac_update(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hmac_digest(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hmac_copy(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hmac_oneshot(struct ml_call *call, CborValue *args, CborEncoder *result);

/* hkdf */
int ml_op_hkdf_extract(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hkdf_expand(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hkdf(struct ml_call *call, CborValue *args, CborEncoder *result);

/* rng */
int ml_op_rng_bytes(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_rng_reseed(struct ml_call *call, CborValue *args, CborEncoder *result);

/* cipher */
int ml_op_cipher_new(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_update(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_finish(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_crypt(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_auth_encrypt(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_auth_decrypt(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_buf_new(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_buf_update(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_buf_finish(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_cipher_buf_read(struct ml_call *call, CborValue *args, CborEncoder *result);

/* key */
int ml_op_key_import(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_key_generate(struct ml_call *call, CborValue *args, CborEncoder *result);
/* The bytes of a device-held key object (ML_HT_SYMKEY); returns ML_STATUS_OK. */
int ml_symkey_bytes(const void *obj, const uint8_t **data, size_t *len);

/* mpi */
int ml_op_mpi_prime(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_mpi_random(struct ml_call *call, CborValue *args, CborEncoder *result);

/* pk */
int ml_op_pk_generate(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_import(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_info(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_export(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_sign(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_verify(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_encrypt(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_decrypt(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_check_pair(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_pk_curves(struct ml_call *call, CborValue *args, CborEncoder *result);

/* kex */
int ml_op_kex_new(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_kex_generate(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_kex_import(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_kex_secret(struct ml_call *call, CborValue *args, CborEncoder *result);
/* Creates a device-held key (ML_HT_SYMKEY) from bytes under a new handle
 * (key slots, key exchange); returns a status. */
int ml_symkey_create(struct ml_call *call, uint32_t handle, const uint8_t *key, size_t len);

/* slot (ops/op_slot.c) */
int ml_op_slot_store(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_slot_load(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_slot_list(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_slot_delete(struct ml_call *call, CborValue *args, CborEncoder *result);

/* Looks a hash_algs id up among the compiled-in digests (ops/op_hash.c):
 * unsupported_algorithm when absent. block_size (may be NULL) receives the
 * digest's input block size. */
struct mbedtls_md_info_t;
int ml_hash_lookup(struct ml_call *call, uint64_t alg, const struct mbedtls_md_info_t **info, size_t *block_size);

/* The hash algorithm ids (ids.json hash_algs) compiled into this firmware,
 * in id order; returns how many were written to out (at most cap). */
size_t ml_hash_list(uint32_t *out, size_t cap);

#endif /* ML_OPS_H */
