/*
 * Public-key objects (ML_HT_PK, ops/op_pk.c) as other modules use them: the
 * key store serialises and re-creates them, static ECDH borrows the EC key,
 * and later x509/tls modules sign with them. A private part never leaves
 * through these functions except into the device's own key store.
 */
#ifndef ML_PK_H
#define ML_PK_H

#include <mbedtls/pk.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* The Mbed TLS context of a live ML_HT_PK object (never NULL). */
mbedtls_pk_context *ml_pk_ctx(void *obj);
/* The object's flags (ML_PK_FLAG_* of core/protocol_ids.h) and whether it holds a private part. */
uint32_t ml_pk_flags(const void *obj);
bool ml_pk_has_private(const void *obj);

/* Looks a handle up as a pk object: bad_handle / wrong_handle_type. */
int ml_pk_get(struct ml_call *call, uint32_t handle, void **obj);

/* Writes the key as DER into buf[0..cap): the private key (PKCS#1 /
 * SEC1 as mbedtls_pk_write_key_der) when it has one, else the public key
 * (SubjectPublicKeyInfo). The DER starts at buf; *len is its length.
 * For the key store only: it ignores the exportable flag. Returns a status
 * (too_large when cap is too small). */
int ml_pk_serialise(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len);

/* Writes the public key (SubjectPublicKeyInfo DER) the same way. */
int ml_pk_write_public(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len);

/* Creates a pk object under a new handle from DER written by
 * ml_pk_serialise (private or public), with the given flags. Returns a
 * status; *obj (may be NULL) receives the object. */
int ml_pk_create_from_der(struct ml_call *call, uint32_t handle, const uint8_t *der, size_t len, uint32_t flags,
                          void **obj);

/* Encodes the pk-info map (messages.cddl) of the object into enc. */
int ml_pk_encode_info(struct ml_call *call, void *obj, CborEncoder *enc);

/* Curves (ids.json curves) compiled into this firmware: the Mbed TLS group
 * of a curve id (unsupported_algorithm when absent), and the list of ids in
 * id order (returns how many were written to out, at most cap). */
int ml_curve_lookup(struct ml_call *call, uint64_t id, mbedtls_ecp_group_id *grp);
size_t ml_curve_list(uint32_t *out, size_t cap);

#endif /* ML_PK_H */
