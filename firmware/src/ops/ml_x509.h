/*
 * X.509 objects (ops/op_x509_crt.c) as other modules use them: the chain
 * behind an ML_HT_X509_CRT handle (CSR signing, trust stores, certificates
 * in slots) and the CRL behind an ML_HT_X509_CRL handle (revocation in
 * chain verification).
 */
#ifndef ML_X509_H
#define ML_X509_H

#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* The object behind an ML_HT_X509_CRT handle: a chain, first certificate
 * first (never NULL; an empty chain has version 0 in its first entry).
 * bad_handle / wrong_handle_type. */
int ml_x509_crt_lookup(struct ml_call *call, uint32_t handle, mbedtls_x509_crt **chain);

/* Appends one DER certificate (bytes after it are ignored), or every
 * certificate of a PEM text ending in '\0' (those that fail are skipped when
 * others parse), to the chain of `handle`, creating the handle when it is not
 * live; the DER is copied. bad_certificate (with Mbed TLS's code) when
 * nothing parses; the chain is then unchanged and a handle created here is
 * freed again. */
int ml_x509_crt_add_der(struct ml_call *call, uint32_t handle, const uint8_t *der, size_t len);

/* The object behind an ML_HT_X509_CRL handle (possibly several CRLs chained
 * through `next`). bad_handle / wrong_handle_type. */
int ml_x509_crl_lookup(struct ml_call *call, uint32_t handle, mbedtls_x509_crl **crl);

/* Encodes a certificate's accessor map (the x509-crt-info map of
 * messages.cddl, the same map x509_crt_info answers) into map_parent — used
 * by slot_list too. */
int ml_x509_crt_encode_info(struct ml_call *call, const mbedtls_x509_crt *crt, CborEncoder *map_parent);

#endif /* ML_X509_H */
