/*
 * What certificate signing (ops/op_x509_write.c) uses of the CSR module
 * (ops/op_x509_csr.c): the CSR behind an ML_HT_X509_CSR handle, the
 * extensions it requests, and the x509-ext map (messages.cddl) both write
 * ops read their requested extensions from.
 */
#ifndef ML_X509_WRITE_H
#define ML_X509_WRITE_H

#include <mbedtls/asn1.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_csr.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* The parsed CSR behind a handle: bad_handle / wrong_handle_type, and
 * bad_argument while its DER is still arriving in chunks. */
int ml_x509_csr_get(struct ml_call *call, uint32_t handle, mbedtls_x509_csr **csr);

/* The private key of the pk handle at argument `pos`, for signing:
 * bad_argument when it has no private part. */
int ml_x509_signing_key(struct ml_call *call, CborValue *args, unsigned pos, mbedtls_pk_context **pk);

/* The status of a failed mbedtls_x509write_*_der: unsupported_algorithm
 * when no signature algorithm exists for the key and digest. */
int ml_x509_write_error(struct ml_call *call, int ret, const char *what);

/* Runs an mbedtls_x509write_*_der call into a heap buffer of *cap bytes
 * (doubled while too small, up to half the heap): *buf is the buffer (the
 * caller frees *cap bytes of it), *der and *len the DER at its end. */
typedef int (*ml_x509_der_writer)(void *wctx, unsigned char *buf, size_t size, mbedtls_f_rng_t *f_rng, void *p_rng);
int ml_x509_write_der(struct ml_call *call, ml_x509_der_writer write, void *wctx, uint8_t **buf, size_t *cap,
                      const uint8_t **der, size_t *len);

/* Encodes [length, DER or null]: the DER when it fits an answer (with
 * ML_X509_ANSWER_SLACK bytes around it), else null (x509_der_read). */
#define ML_X509_ANSWER_SLACK 48u
int ml_x509_encode_der(const uint8_t *der, size_t len, CborEncoder *result);

/* The extension `oid` (DER content bytes) a CSR requests (its PKCS#9
 * extensionRequest attribute): true with its value and critical flag, false
 * when absent. */
bool ml_x509_csr_ext_find(const mbedtls_x509_csr *csr, const char *oid, size_t oid_len, const uint8_t **val,
                          size_t *len, int *critical);

/* Sets one extension on a write context (mbedtls_x509write_csr_set_extension
 * or mbedtls_x509write_crt_set_extension behind a common shape). */
typedef int (*ml_x509_ext_setter)(void *wctx, const char *oid, size_t oid_len, int critical, const unsigned char *val,
                                  size_t val_len);

/* The extensions of an x509-ext map both CSRs and certificates carry:
 * "san", "ku", "eku". For each one the map names, `set` gets its DER value
 * (an empty list or 0 sets nothing); *named gets bit 0 for "san", 1 for
 * "ku", 2 for "eku" when the map names it. `map` is the map argument at
 * position `pos` (messages). bad_argument for malformed entries. */
#define ML_X509_EXT_SAN 1u
#define ML_X509_EXT_KU  2u
#define ML_X509_EXT_EKU 4u
int ml_x509_ext_apply(struct ml_call *call, const CborValue *map, unsigned pos, ml_x509_ext_setter set, void *wctx,
                      unsigned *named);

/* Checks that the argument at `pos` is a map with only the keys in `keys`
 * (NULL-terminated): bad_request otherwise. */
int ml_x509_ext_check_keys(struct ml_call *call, const CborValue *map, unsigned pos, const char *const *keys);

/* Copies a parsed name (first RDN first) into a list Mbed TLS's writers
 * take (last RDN first, each value its own RDN), for
 * mbedtls_x509write_*'s subject/issuer; the list is freed by
 * mbedtls_asn1_free_named_data_list (the write context's free). */
int ml_x509_name_copy(struct ml_call *call, const mbedtls_x509_name *src, mbedtls_asn1_named_data **dst);

#endif /* ML_X509_WRITE_H */
