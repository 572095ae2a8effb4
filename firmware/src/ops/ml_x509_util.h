/*
 * What the x509 op files share (ops/ml_x509_util.c): input that arrives in
 * pieces, the status of a parse failure, and the encoders of names, times,
 * digests and byte ranges (messages.cddl x509-name, x509-time, ...).
 */
#ifndef ML_X509_UTIL_H
#define ML_X509_UTIL_H

#include <mbedtls/x509_crt.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* Input of `total` bytes collected from pieces (x509_crt_parse / x509_crl_parse). */
struct ml_x509_input {
    uint8_t *buf; /* NULL when nothing is pending */
    size_t len;
    size_t total;
};

/* The certificate named by a handle at args position pos and its index in
 * the chain at pos+1 (op_x509_crt.c): bad_argument past the chain's end. */
int ml_x509_crt_args(struct ml_call *call, CborValue *args, unsigned pos, const mbedtls_x509_crt **out);

/* Takes one piece. *whole is the complete input once it is (the piece itself
 * when it is all of it), else NULL. bad_argument when the piece does not fit
 * what is pending (the pending input is then dropped), out_of_memory when
 * `total` bytes cannot be had. */
int ml_x509_input_take(struct ml_call *call, struct ml_x509_input *in, const uint8_t *data, size_t len, uint64_t total,
                       const uint8_t **whole, size_t *whole_len);
/* Frees (zeroised) what is pending. */
void ml_x509_input_drop(struct ml_x509_input *in);

/* An Mbed TLS parse error: out_of_memory for an allocation failure, else bad_certificate with its code. */
int ml_x509_fail(struct ml_call *call, int code, const char *what);

/* Mbed TLS's description of an object (mbedtls_x509_crt_info / _crl_info
 * through `info`, at most ML_X509_TEXT_MAX bytes, the Mbed TLS suite's
 * buffer) as a text string into result. */
#define ML_X509_TEXT_MAX 2000u
typedef int (*ml_x509_info_fn)(char *buf, size_t size, const void *obj);
int ml_x509_encode_text(struct ml_call *call, CborEncoder *result, ml_x509_info_fn info, const void *obj);

/* [* [name, value, tag]]: each attribute of a distinguished name in DER order
 * (name: Mbed TLS's short name, e.g. "CN", or the dotted OID; value: the raw
 * string bytes; tag: its ASN.1 string type). */
CborError ml_x509_encode_name(CborEncoder *enc, const mbedtls_x509_name *name);
/* [year, month, day, hour, minute, second] (UTC). */
CborError ml_x509_encode_time(CborEncoder *enc, const mbedtls_x509_time *t);
/* The hash_algs id of an Mbed TLS digest, or null. */
CborError ml_x509_encode_md(CborEncoder *enc, mbedtls_md_type_t md);
/* [offset, length] of `part` within `whole`. */
CborError ml_x509_encode_range(CborEncoder *enc, const mbedtls_x509_buf *whole, const mbedtls_x509_buf *part);

#endif /* ML_X509_UTIL_H */
