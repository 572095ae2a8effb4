/*
 * Trust stores (ops/op_x509_trust.c) as other modules use them: CA
 * certificates and CRLs behind an ML_HT_X509_TRUST handle (trust anchors
 * loaded from key slots go in through here).
 */
#ifndef ML_X509_TRUST_H
#define ML_X509_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* Most CA certificates, and most CRLs, one trust store holds (hello's
 * trust_cas_max / trust_crls_max); the heap may run out first. */
#ifndef ML_CFG_TRUST_CAS_MAX
#define ML_CFG_TRUST_CAS_MAX 16
#endif
#ifndef ML_CFG_TRUST_CRLS_MAX
#define ML_CFG_TRUST_CRLS_MAX 8
#endif

/* Adds one DER certificate to the trust store `handle`, creating the handle
 * when it is not live. too_large past ML_CFG_TRUST_CAS_MAX; a certificate
 * that does not parse fails with Mbed TLS's code (the store is unchanged, and
 * a handle created here is freed again). */
int ml_x509_trust_add_der(struct ml_call *call, uint32_t handle, const uint8_t *der, size_t len);

#endif /* ML_X509_TRUST_H */
