/*
 * Trust stores (ops/op_x509_trust.c): the limits of the CA certificates and
 * CRLs behind an ML_HT_X509_TRUST handle, which hello reports.
 */
#ifndef ML_X509_TRUST_H
#define ML_X509_TRUST_H

/* Most CA certificates, and most CRLs, one trust store holds (hello's
 * trust_cas_max / trust_crls_max); the heap may run out first. */
#ifndef ML_CFG_TRUST_CAS_MAX
#define ML_CFG_TRUST_CAS_MAX 16
#endif
#ifndef ML_CFG_TRUST_CRLS_MAX
#define ML_CFG_TRUST_CRLS_MAX 8
#endif

#endif /* ML_X509_TRUST_H */
