#include "core/ml_call.h"

#include <mbedtls/asn1.h>
#include <mbedtls/bignum.h>
#include <mbedtls/cipher.h>
#include <mbedtls/dhm.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/lms.h>
#include <mbedtls/md.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/pkcs7.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509.h>
#include <stdarg.h>
#include <stdio.h>

int ml_fail(struct ml_call *call, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(call->detail, sizeof call->detail, fmt, ap);
    va_end(ap);
    return status;
}

static bool is_one_of(int code, const int *codes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (code == codes[i]) {
            return true;
        }
    }
    return false;
}

/* Whether an Mbed TLS error (high-level part, low-level part, or the two
 * added up as MBEDTLS_ERROR_ADD does) is one of Mbed TLS 3.6's
 * *_ALLOC_FAILED codes. */
static bool is_alloc_failure(int code)
{
    static const int high_level[] = {
        MBEDTLS_ERR_CIPHER_ALLOC_FAILED, MBEDTLS_ERR_DHM_ALLOC_FAILED, MBEDTLS_ERR_ECP_ALLOC_FAILED,
        MBEDTLS_ERR_MD_ALLOC_FAILED,     MBEDTLS_ERR_PEM_ALLOC_FAILED, MBEDTLS_ERR_PK_ALLOC_FAILED,
        MBEDTLS_ERR_PKCS7_ALLOC_FAILED,  MBEDTLS_ERR_SSL_ALLOC_FAILED, MBEDTLS_ERR_X509_ALLOC_FAILED,
    };
    static const int low_level[] = {
        MBEDTLS_ERR_ASN1_ALLOC_FAILED,
        MBEDTLS_ERR_LMS_ALLOC_FAILED,
        MBEDTLS_ERR_MPI_ALLOC_FAILED,
    };
    int high = -((-code) & 0xFF80);
    int low = -((-code) & 0x007F);
    return is_one_of(high, high_level, sizeof high_level / sizeof high_level[0]) ||
           is_one_of(low, low_level, sizeof low_level / sizeof low_level[0]);
}

int ml_fail_mbedtls(struct ml_call *call, int code, const char *what)
{
    call->mbedtls_code = code;
    int n = snprintf(call->detail, sizeof call->detail, "%s: ", what);
    if (n > 0 && (size_t)n < sizeof call->detail) {
        mbedtls_strerror(code, call->detail + n, sizeof call->detail - (size_t)n);
    }
    return is_alloc_failure(code) ? ML_STATUS_OUT_OF_MEMORY : ML_STATUS_CRYPTO_ERROR;
}

void *ml_buf_alloc(size_t len) { return mbedtls_calloc(1, len > 0 ? len : 1); }

void ml_buf_free(void *p, size_t len)
{
    if (p != NULL) {
        mbedtls_platform_zeroize(p, len > 0 ? len : 1);
        mbedtls_free(p);
    }
}

int ml_arg_uint(struct ml_call *call, CborValue *args, unsigned pos, uint64_t *out)
{
    if (!cbor_value_is_unsigned_integer(args)) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: expected an unsigned integer", pos);
    }
    (void)cbor_value_get_uint64(args, out);
    (void)cbor_value_advance_fixed(args);
    return ML_STATUS_OK;
}

int ml_arg_bool(struct ml_call *call, CborValue *args, unsigned pos, bool *out)
{
    if (!cbor_value_is_boolean(args)) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a boolean", pos);
    }
    (void)cbor_value_get_boolean(args, out);
    (void)cbor_value_advance_fixed(args);
    return ML_STATUS_OK;
}

int ml_arg_handle(struct ml_call *call, CborValue *args, unsigned pos, uint32_t *out)
{
    uint64_t v = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, pos, &v));
    if (v == 0 || v > ML_HANDLE_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: handle must be 1..%lu", pos, (unsigned long)ML_HANDLE_MAX);
    }
    *out = (uint32_t)v;
cleanup:
    return st;
}

int ml_arg_bytes(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **data, size_t *len)
{
    if (!cbor_value_is_byte_string(args)) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a byte string", pos);
    }
    if (!cbor_value_is_length_known(args)) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: chunked byte strings are not supported", pos);
    }
    /* Zero copy: the definite string is one chunk inside the rx buffer. */
    CborValue next = *args;
    CborError err = cbor_value_begin_string_iteration(&next);
    if (err == CborNoError) {
        err = cbor_value_get_byte_string_chunk(&next, data, len, &next);
    }
    if (err == CborNoError) {
        size_t dummy = 0;
        const uint8_t *end = NULL;
        /* no further chunk in a definite string */
        err = cbor_value_get_byte_string_chunk(&next, &end, &dummy, &next);
        err = err == CborErrorNoMoreStringChunks ? cbor_value_finish_string_iteration(&next) : CborErrorIllegalType;
    }
    if (err != CborNoError) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: bad byte string (%s)", pos, cbor_error_string(err));
    }
    *args = next;
    return ML_STATUS_OK;
}
