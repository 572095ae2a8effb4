/*
 * x509 module, certificates made on the device (spec.md 7.11):
 * x509_crt_sign issues a certificate for a CSR (ML_HT_X509_CSR handle),
 * signed by a device key (mbedtls_x509write_crt, so a non-exportable key
 * or one loaded from a slot works), either self-signed or under an issuer
 * certificate (ML_HT_X509_CRT handle, ops/ml_x509.h) whose subject becomes
 * the issuer name. The certificate lands under a new ML_HT_X509_CRT handle
 * and, when it fits, in the answer; x509_der_read reads the DER of a CSR or
 * certificate handle in pieces.
 */
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_config.h"
#include "core/ml_handles.h"
#include "ops/ml_hash.h"
#include "ops/ml_ops.h"
#include "ops/ml_x509.h"
#include "ops/ml_x509_write.h"

/* Seconds from 1970 to 9999-12-31T23:59:59Z, the last time X.509 can write. */
#define TIME_MAX 253402300799u

/* "YYYYMMDDhhmmss" of a time in seconds since 1970 (UTC), as
 * mbedtls_x509write_crt_set_validity takes it (civil-from-days, H. Hinnant). */
static void time_text(uint64_t secs, char out[32])
{
    uint64_t z = secs / 86400 + 719468, rem = secs % 86400;
    uint64_t era = z / 146097, doe = z - era * 146097;
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    uint64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    uint64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
    (void)snprintf(out, 32, "%04u%02u%02u%02u%02u%02u", (unsigned)(y % 10000), (unsigned)(m % 100), (unsigned)(d % 100),
                   (unsigned)(rem / 3600 % 100), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60));
}

static int crt_set_ext(void *wctx, const char *oid, size_t oid_len, int critical, const unsigned char *val,
                       size_t val_len)
{
    return mbedtls_x509write_crt_set_extension(wctx, oid, oid_len, critical, val, val_len);
}

static int optional_bool(struct ml_call *call, const CborValue *map, const char *key, unsigned pos, bool *out)
{
    CborValue v;
    int st = ML_STATUS_OK;
    *out = false;
    if (cbor_value_map_find_value(map, key, &v) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: malformed map", pos);
    }
    if (cbor_value_is_valid(&v)) {
        ML_CHK(ml_arg_bool(call, &v, pos, out));
    }
cleanup:
    return st;
}

/* "bc": [ca: bool, pathlen: int (-1: none)]. */
static int basic_constraints(struct ml_call *call, const CborValue *map, unsigned pos, mbedtls_x509write_cert *w)
{
    CborValue v, in;
    bool ca = false;
    int64_t pathlen = -1;
    int st = ML_STATUS_OK;
    if (cbor_value_map_find_value(map, "bc", &v) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: malformed map", pos);
    }
    if (!cbor_value_is_valid(&v)) {
        goto cleanup;
    }
    if (!cbor_value_is_array(&v) || cbor_value_enter_container(&v, &in) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: \"bc\" is [ca, pathlen]", pos);
    }
    ML_CHK(ml_arg_bool(call, &in, pos, &ca));
    if (!cbor_value_is_integer(&in) || cbor_value_get_int64_checked(&in, &pathlen) != CborNoError ||
        cbor_value_advance_fixed(&in) != CborNoError || !cbor_value_at_end(&in)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: \"bc\" is [ca, pathlen]", pos);
    }
    if (pathlen < -1 || pathlen > 127 || (!ca && pathlen != -1)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: path length %lld (0..127, -1 for none; CAs only)", pos,
                (long long)pathlen);
    }
    ML_CHK_TLS(call, mbedtls_x509write_crt_set_basic_constraints(w, ca ? 1 : 0, (int)pathlen), "basic_constraints");
cleanup:
    return st;
}

/* AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] }: the issuer
 * certificate's own subject key identifier when it has one, else the SHA-1
 * of the signing key (as Mbed TLS computes it). */
static int authority_key_id(struct ml_call *call, const mbedtls_x509_crt *issuer, mbedtls_x509write_cert *w)
{
    uint8_t aki[4 + 64];
    int st = ML_STATUS_OK;
    size_t n = issuer != NULL ? issuer->subject_key_id.len : 0;
    if (n == 0 || n > 64) {
        ML_CHK_TLS(call, mbedtls_x509write_crt_set_authority_key_identifier(w), "authority_key_identifier");
        goto cleanup;
    }
    aki[0] = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;
    aki[1] = (uint8_t)(n + 2);
    aki[2] = MBEDTLS_ASN1_CONTEXT_SPECIFIC;
    aki[3] = (uint8_t)n;
    memcpy(aki + 4, issuer->subject_key_id.p, n);
    ML_CHK_TLS(call,
               mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER,
                                                   MBEDTLS_OID_SIZE(MBEDTLS_OID_AUTHORITY_KEY_IDENTIFIER), 0, aki,
                                                   n + 4),
               "authority_key_identifier");
cleanup:
    return st;
}

static int crt_der(void *wctx, unsigned char *buf, size_t size, mbedtls_f_rng_t *f_rng, void *p_rng)
{
    return mbedtls_x509write_crt_der(wctx, buf, size, f_rng, p_rng);
}

/* The extensions a CSR requests that the map does not name: copied as they are. */
static int copy_requested(struct ml_call *call, const mbedtls_x509_csr *csr, unsigned named, mbedtls_x509write_cert *w)
{
    static const struct {
        unsigned bit;
        const char *oid;
        size_t len;
    } exts[] = {
        {ML_X509_EXT_SAN, MBEDTLS_OID_SUBJECT_ALT_NAME, MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME)},
        {ML_X509_EXT_KU, MBEDTLS_OID_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_KEY_USAGE)},
        {ML_X509_EXT_EKU, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE)},
    };
    int st = ML_STATUS_OK;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        const uint8_t *val = NULL;
        size_t len = 0;
        int critical = 0;
        if ((named & exts[i].bit) == 0 && ml_x509_csr_ext_find(csr, exts[i].oid, exts[i].len, &val, &len, &critical)) {
            ML_CHK_TLS(call, mbedtls_x509write_crt_set_extension(w, exts[i].oid, exts[i].len, critical, val, len),
                       "set_extension");
        }
    }
cleanup:
    return st;
}

/* Validity, serial and digest: arguments 5 to 8. */
static int validity_serial_digest(struct ml_call *call, CborValue *args, const mbedtls_x509_csr *csr,
                                  mbedtls_x509write_cert *w)
{
    uint64_t not_before = 0, not_after = 0, alg = 0;
    const uint8_t *serial = NULL;
    size_t serial_len = 0;
    const mbedtls_md_info_t *info = NULL;
    char nb[32], na[32];
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, 5, &not_before));
    ML_CHK(ml_arg_uint(call, args, 6, &not_after));
    if (not_before > TIME_MAX || not_after > TIME_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "validity: after 9999-12-31T23:59:59Z");
    }
    if (not_after < not_before) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "validity: notAfter is before notBefore");
    }
    ML_CHK(ml_arg_bytes(call, args, 7, &serial, &serial_len));
    while (serial_len > 0 && serial[0] == 0) {
        serial++;
        serial_len--;
    }
    if (serial_len == 0 || serial_len > MBEDTLS_X509_RFC5280_MAX_SERIAL_LEN) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 7: the serial number must be 1..20 bytes and not zero");
    }
    if (cbor_value_is_null(args)) {
        (void)cbor_value_advance_fixed(args);
        info = mbedtls_md_info_from_type(csr->MBEDTLS_PRIVATE(sig_md));
        if (info == NULL) {
            ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "the CSR's digest is not compiled in: name one");
        }
    } else {
        ML_CHK(ml_arg_uint(call, args, 8, &alg));
        ML_CHK(ml_hash_lookup(call, alg, &info, NULL));
    }
    time_text(not_before, nb);
    time_text(not_after, na);
    ML_CHK_TLS(call, mbedtls_x509write_crt_set_validity(w, nb, na), "set_validity");
    ML_CHK_TLS(call, mbedtls_x509write_crt_set_serial_raw(w, (unsigned char *)(uintptr_t)serial, serial_len),
               "set_serial");
    mbedtls_x509write_crt_set_md_alg(w, mbedtls_md_get_type(info));
cleanup:
    return st;
}

int ml_op_x509_crt_sign(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    static const char *const keys[] = {"san", "ku", "eku", "bc", "ski", "aki", NULL};
    mbedtls_x509write_cert w;
    uint32_t dst = 0, csr_handle = 0, issuer_handle = 0;
    mbedtls_x509_csr *csr = NULL;
    mbedtls_x509_crt *issuer = NULL;
    mbedtls_pk_context *key = NULL;
    uint8_t *buf = NULL;
    const uint8_t *der = NULL;
    size_t cap = 0, der_len = 0;
    unsigned named = 0;
    bool ski = false, aki = false;
    void *live = NULL;
    uint8_t live_type = 0;
    int ret = 0;
    int st = ML_STATUS_OK;
    mbedtls_x509write_crt_init(&w);
    ML_CHK(ml_arg_handle(call, args, 1, &dst));
    if (ml_handle_lookup(call, dst, &live_type, &live) == ML_STATUS_OK) {
        ML_FAIL(call, ML_STATUS_HANDLE_IN_USE, "handle %lu is in use", (unsigned long)dst);
    }
    call->detail[0] = '\0';
    ML_CHK(ml_arg_handle(call, args, 2, &csr_handle));
    ML_CHK(ml_x509_csr_get(call, csr_handle, &csr));
    ML_CHK(ml_x509_signing_key(call, args, 3, &key));
    if (cbor_value_is_null(args)) {
        (void)cbor_value_advance_fixed(args);
    } else {
        ML_CHK(ml_arg_handle(call, args, 4, &issuer_handle));
        ML_CHK(ml_x509_crt_lookup(call, issuer_handle, &issuer));
        if (issuer->version == 0) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 4: the issuer chain is empty");
        }
    }
    ML_CHK(validity_serial_digest(call, args, csr, &w));
    ML_CHK(ml_x509_ext_check_keys(call, args, 9, keys));
    ML_CHK(optional_bool(call, args, "ski", 9, &ski));
    ML_CHK(optional_bool(call, args, "aki", 9, &aki));
    /* The signing key must be the issuer's (the CSR's own when self-signing). */
    ret = mbedtls_pk_check_pair(issuer != NULL ? &issuer->pk : &csr->pk, key, ml_busy_rng, NULL);
    if (ret != 0) {
        call->mbedtls_code = ret;
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: the key is not the %s",
                issuer != NULL ? "issuer certificate's key" : "CSR's key (self-signing)");
    }
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_subject_key(&w, &csr->pk);
    mbedtls_x509write_crt_set_issuer_key(&w, key);
    ML_CHK(ml_x509_name_copy(call, &csr->subject, &w.MBEDTLS_PRIVATE(subject)));
    ML_CHK(ml_x509_name_copy(call, issuer != NULL ? &issuer->subject : &csr->subject, &w.MBEDTLS_PRIVATE(issuer)));
    ML_CHK(basic_constraints(call, args, 9, &w));
    if (ski) {
        ML_CHK_TLS(call, mbedtls_x509write_crt_set_subject_key_identifier(&w), "subject_key_identifier");
    }
    if (aki) {
        ML_CHK(authority_key_id(call, issuer, &w));
    }
    ML_CHK(ml_x509_ext_apply(call, args, 9, crt_set_ext, &w, &named));
    ML_CHK(copy_requested(call, csr, named, &w));
    /* The CSR holds the subject, its key, its extensions and a signature;
     * add the issuer's name, the extensions named here and one signature. */
    cap = csr->raw.len + (issuer != NULL ? issuer->subject_raw.len : csr->subject_raw.len) +
          MBEDTLS_PK_SIGNATURE_MAX_SIZE + 512;
    ML_CHK(ml_x509_write_der(call, crt_der, &w, &buf, &cap, &der, &der_len));
    ML_CHK(ml_x509_crt_add_der(call, dst, der, der_len));
    ML_CHK(ml_x509_encode_der(der, der_len, result));
cleanup:
    mbedtls_x509write_crt_free(&w);
    ml_buf_free(buf, cap);
    return st;
}

int ml_op_x509_der_read(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t offset = 0, len = 0;
    void *obj = NULL;
    uint8_t type = 0;
    const mbedtls_x509_buf *raw = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_uint(call, args, 2, &offset));
    ML_CHK(ml_arg_uint(call, args, 3, &len));
    ML_CHK(ml_handle_lookup(call, handle, &type, &obj));
    if (type == ML_HT_X509_CSR) {
        mbedtls_x509_csr *csr = NULL;
        ML_CHK(ml_x509_csr_get(call, handle, &csr));
        raw = &csr->raw;
    } else {
        mbedtls_x509_crt *crt = NULL;
        ML_CHK(ml_x509_crt_lookup(call, handle, &crt)); /* wrong_handle_type for other types */
        raw = &crt->raw;
    }
    if (len > ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "arg 3: at most %u bytes per read",
                (unsigned)(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX));
    }
    if (offset > raw->len || len > raw->len - offset) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "bytes %llu..%llu are past the %lu-byte DER", (unsigned long long)offset,
                (unsigned long long)(offset + len), (unsigned long)raw->len);
    }
    (void)cbor_encode_byte_string(result, raw->p + offset, (size_t)len);
cleanup:
    return st;
}
