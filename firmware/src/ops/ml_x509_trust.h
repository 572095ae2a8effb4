/*
 * Trust stores (ops/op_x509_trust.c): the limits of the CA certificates and
 * CRLs behind an ML_HT_X509_TRUST handle, which hello reports.
 */
#ifndef ML_X509_TRUST_H
#define ML_X509_TRUST_H

#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "core/ml_call.h"

/* Most CA certificates, and most CRLs, one trust store holds (hello's
 * trust_cas_max / trust_crls_max); the heap may run out first. */
#ifndef ML_CFG_TRUST_CAS_MAX
#define ML_CFG_TRUST_CAS_MAX 16
#endif
#ifndef ML_CFG_TRUST_CRLS_MAX
#define ML_CFG_TRUST_CRLS_MAX 8
#endif

/* The CA certificates and CRLs of the store behind an ML_HT_X509_TRUST
 * handle (lists whose first entry has version 0 while empty), for the TLS
 * configurations that copy them: bad_handle / wrong_handle_type. */
int ml_x509_trust_lookup(struct ml_call *call, uint32_t handle, const mbedtls_x509_crt **cas,
                         const mbedtls_x509_crl **crls);

#endif /* ML_X509_TRUST_H */
