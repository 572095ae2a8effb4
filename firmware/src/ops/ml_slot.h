/*
 * Certificates in the key store (ops/op_slot.c, spec.md 7.4) as other
 * modules use them: a slot's certificate chain (leaf first; the leaf
 * certifies the slot's key) is what TLS presents with that key, and the
 * trust-anchor set is what a trust store starts from.
 */
#ifndef ML_SLOT_H
#define ML_SLOT_H

#include <mbedtls/x509_crt.h>
#include <stdint.h>

#include "core/ml_call.h"

/* Appends slot `slot`'s chain (leaf first) / the trust anchors to `chain`
 * (mbedtls_x509_crt_parse_der: copies); *count is how many were added.
 * slot_empty when there are none, bad_argument for a slot out of range,
 * storage_error, out_of_memory; on failure `chain` may hold a part (the
 * caller frees it as usual). */
int ml_slot_chain_parse(struct ml_call *call, uint32_t slot, mbedtls_x509_crt *chain, uint32_t *count);
int ml_slot_trust_parse(struct ml_call *call, mbedtls_x509_crt *chain, uint32_t *count);

/* The same into a new ML_HT_X509_CRT handle (handle_in_use when live; the
 * handle is not left behind on failure): the slot_chain_load and
 * slot_trust_load ops. */
int ml_slot_load_chain(struct ml_call *call, uint32_t slot, uint32_t handle, uint32_t *count);
int ml_slot_load_trust(struct ml_call *call, uint32_t handle, uint32_t *count);

#endif /* ML_SLOT_H */
