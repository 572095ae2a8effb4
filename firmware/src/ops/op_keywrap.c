/*
 * keywrap module: NIST key wrap (SP 800-38F) KW and KWP, RFC 3394 and
 * RFC 5649, over mbedtls_nist_kw_* (spec.md 7.7).
 *
 * The KEK is an AES-128/192/256 key: its bytes, or the handle of a
 * device-held key (ml_arg_key). keywrap_unwrap answers the unwrapped bytes;
 * keywrap_unwrap_key and keywrap_unwrap_pk keep them on the device under a
 * new handle (a symmetric key, or a private pk key parsed from the unwrapped
 * DER), so the key never crosses the line in clear. A wrap whose integrity
 * check fails (a wrong KEK, an altered byte) is auth_failed; the unwrap
 * buffer is zeroised before the answer, whatever it is.
 */
#include <mbedtls/nist_kw.h>
#include <mbedtls/platform_util.h>

#include "core/ml_config.h"
#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_symkey.h"

#define SEMIBLOCK 8u
/* The most bytes a wrap or unwrap answers: what one response frame carries. */
#define OUT_MAX (ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX)

/* [kek, mode, data] as read from the request, and the output buffer. */
struct kw_job {
    const uint8_t *kek;
    size_t kek_len;
    uint64_t mode;
    const uint8_t *in;
    size_t in_len;
    uint8_t *out; /* heap, zeroised when freed */
    size_t cap;
    size_t out_len;
};

/* Reads [kek, mode, data] at positions pos.. and checks them against
 * SP 800-38F's lengths for the direction. */
static int read_job(struct ml_call *call, CborValue *args, unsigned pos, bool wrap, struct kw_job *j)
{
    bool kwp = false;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_key(call, args, pos, &j->kek, &j->kek_len));
    ML_CHK(ml_arg_uint(call, args, pos + 1, &j->mode));
    ML_CHK(ml_arg_bytes(call, args, pos + 2, &j->in, &j->in_len));
    if (j->kek_len != 16 && j->kek_len != 24 && j->kek_len != 32) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: the KEK must be an AES key of 16, 24 or 32 bytes, got %lu", pos,
                (unsigned long)j->kek_len);
    }
    if (j->mode != ML_KEYWRAP_MODE_KW && j->mode != ML_KEYWRAP_MODE_KWP) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: mode must be %u (KW) or %u (KWP)", pos + 1,
                (unsigned)ML_KEYWRAP_MODE_KW, (unsigned)ML_KEYWRAP_MODE_KWP);
    }
    kwp = j->mode == ML_KEYWRAP_MODE_KWP;
    if (wrap && !kwp && (j->in_len < 2 * SEMIBLOCK || j->in_len % SEMIBLOCK != 0)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: KW wraps a multiple of 8 bytes, at least 16, got %lu", pos + 2,
                (unsigned long)j->in_len);
    }
    if (wrap && kwp && j->in_len < 1) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: KWP wraps at least 1 byte", pos + 2);
    }
    if (!wrap && (j->in_len < (kwp ? 2 : 3) * SEMIBLOCK || j->in_len % SEMIBLOCK != 0)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: a %s wrap is a multiple of 8 bytes, at least %u, got %lu",
                pos + 2, kwp ? "KWP" : "KW", (unsigned)((kwp ? 2 : 3) * SEMIBLOCK), (unsigned long)j->in_len);
    }
    /* a wrap adds the ICV semiblock (and KWP pads to a semiblock) */
    j->cap = wrap ? (j->in_len + SEMIBLOCK - 1) / SEMIBLOCK * SEMIBLOCK + SEMIBLOCK : j->in_len;
    if (wrap && j->cap > OUT_MAX) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "arg %u: the wrap of %lu bytes would not fit a response (at most %u)",
                pos + 2, (unsigned long)j->in_len, (unsigned)OUT_MAX);
    }
cleanup:
    return st;
}

/* Wraps or unwraps j->in into a new heap buffer j->out (the caller frees it
 * with ml_buf_free(j->out, j->cap) whatever this returns). */
static int run_job(struct ml_call *call, bool wrap, struct kw_job *j)
{
    mbedtls_nist_kw_mode_t mode = j->mode == ML_KEYWRAP_MODE_KWP ? MBEDTLS_KW_MODE_KWP : MBEDTLS_KW_MODE_KW;
    mbedtls_nist_kw_context kw;
    int ret = 0;
    int st = ML_STATUS_OK;
    mbedtls_nist_kw_init(&kw);
    j->out = ml_buf_alloc(j->cap);
    if (j->out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu output bytes", (unsigned long)j->cap);
    }
    ML_CHK_TLS(call,
               mbedtls_nist_kw_setkey(&kw, MBEDTLS_CIPHER_ID_AES, j->kek, (unsigned)(j->kek_len * 8u), wrap ? 1 : 0),
               "nist_kw_setkey");
    ret = wrap ? mbedtls_nist_kw_wrap(&kw, mode, j->in, j->in_len, j->out, &j->out_len, j->cap)
               : mbedtls_nist_kw_unwrap(&kw, mode, j->in, j->in_len, j->out, &j->out_len, j->cap);
    if (ret == MBEDTLS_ERR_CIPHER_AUTH_FAILED) {
        call->mbedtls_code = ret;
        ML_FAIL(call, ML_STATUS_AUTH_FAILED, "the wrapped key failed its integrity check (wrong KEK, mode or altered)");
    }
    ML_CHK_TLS(call, ret, wrap ? "nist_kw_wrap" : "nist_kw_unwrap");
cleanup:
    mbedtls_nist_kw_free(&kw);
    return st;
}

/* [kek, mode, data] -> wrapped, or [kek, mode, wrapped] -> data */
static int crypt_op(struct ml_call *call, CborValue *args, CborEncoder *result, bool wrap)
{
    struct kw_job j = {0};
    int st = ML_STATUS_OK;
    ML_CHK(read_job(call, args, 1, wrap, &j));
    ML_CHK(run_job(call, wrap, &j));
    (void)cbor_encode_byte_string(result, j.out, j.out_len);
cleanup:
    ml_buf_free(j.out, j.cap);
    return st;
}

int ml_op_keywrap_wrap(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    return crypt_op(call, args, result, true);
}

int ml_op_keywrap_unwrap(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    return crypt_op(call, args, result, false);
}

/* [handle, kek, mode, wrapped] -> the new key's length */
int ml_op_keywrap_unwrap_key(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct kw_job j = {0};
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(read_job(call, args, 2, false, &j));
    ML_CHK(run_job(call, false, &j));
    if (j.out_len < 1 || j.out_len > ML_SYMKEY_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the unwrapped key is %lu bytes; a device key holds 1..%u",
                (unsigned long)j.out_len, (unsigned)ML_SYMKEY_MAX);
    }
    ML_CHK(ml_symkey_create(call, handle, j.out, j.out_len));
    (void)cbor_encode_uint(result, j.out_len);
cleanup:
    ml_buf_free(j.out, j.cap);
    return st;
}

/* [handle, kek, mode, wrapped, flags] -> pk-info of the private key the
 * wrapped DER (PKCS#8, SEC1 or PKCS#1) holds */
int ml_op_keywrap_unwrap_pk(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t flags = 0;
    void *obj = NULL;
    struct kw_job j = {0};
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(read_job(call, args, 2, false, &j));
    ML_CHK(ml_arg_uint(call, args, 5, &flags));
    if ((flags & ~(uint64_t)ML_PK_FLAGS_MASK) != 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 5: unknown pk flag bits 0x%llx",
                (unsigned long long)(flags & ~(uint64_t)ML_PK_FLAGS_MASK));
    }
    ML_CHK(run_job(call, false, &j));
    ML_CHK(ml_pk_create_from_der(call, handle, j.out, j.out_len, (uint32_t)flags, &obj));
    if (!ml_pk_has_private(obj)) {
        (void)ml_handle_free(call, handle);
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the unwrapped key is a public key: a private key DER was expected");
    }
    ML_CHK(ml_pk_encode_info(call, obj, result));
cleanup:
    ml_buf_free(j.out, j.cap);
    return st;
}
