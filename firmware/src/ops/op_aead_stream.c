/*
 * cipher module, AEAD streams (see ml_cipher.h): aead_new / aead_update /
 * aead_finish run GCM, CCM and ChaCha20-Poly1305 over messages of any
 * length in constant device memory, through Mbed TLS's incremental calls
 * (mbedtls_gcm_*, mbedtls_ccm_* with the lengths set first,
 * mbedtls_chachapoly_*), with the block cipher (AES, ARIA, Camellia) picked
 * by its id. Each update answers with its output; aead_finish gives the tag
 * (encryption) or compares the expected tag in constant time (decryption:
 * auth_failed when it differs, so the host drops the plaintext it holds).
 * Heap per stream: the object and the block cipher's key schedule, plus
 * one update's output while it runs.
 */
#include <mbedtls/ccm.h>
#include <mbedtls/chachapoly.h>
#include <mbedtls/constant_time.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_cipher.h"
#include "ops/ml_ops.h"

enum stream_state {
    STREAM_OPEN,   /* accepting aead_update */
    STREAM_DONE,   /* aead_finish succeeded */
    STREAM_FAILED, /* an update or the finish failed: only free is left */
};

struct aead_stream {
    uint8_t kind;  /* ML_CIPHER_OBJ_STREAM (ml_cipher.h) */
    uint8_t mode;  /* MBEDTLS_MODE_GCM, _CCM or _CHACHAPOLY */
    uint8_t state; /* enum stream_state */
    uint8_t tag_len;
    bool encrypt;
    const char *name; /* Mbed TLS's name of the cipher (static) */
    uint64_t length;  /* announced data bytes */
    uint64_t done;    /* data bytes fed so far */
    union {
        mbedtls_gcm_context gcm;
        mbedtls_ccm_context ccm;
        mbedtls_chachapoly_context chachapoly;
    } u;
};

static void stream_dtor(void *obj)
{
    struct aead_stream *s = obj;
    if (s->mode == MBEDTLS_MODE_GCM) {
        mbedtls_gcm_free(&s->u.gcm);
    } else if (s->mode == MBEDTLS_MODE_CCM) {
        mbedtls_ccm_free(&s->u.ccm);
    } else {
        mbedtls_chachapoly_free(&s->u.chachapoly);
    }
}

/* Keys the stream's context and feeds it the IV and the additional data. */
static int stream_start(struct ml_call *call, struct aead_stream *s, const struct ml_cipher_args *a, const uint8_t *ad,
                        size_t ad_len)
{
    unsigned bits = (unsigned)(a->key_len * 8);
    int st = ML_STATUS_OK;
    if (s->mode == MBEDTLS_MODE_GCM) {
        mbedtls_gcm_init(&s->u.gcm);
        ML_CHK_TLS(call, mbedtls_gcm_setkey(&s->u.gcm, a->block, a->key, bits), "gcm_setkey");
        ML_CHK_TLS(
            call,
            mbedtls_gcm_starts(&s->u.gcm, a->encrypt ? MBEDTLS_GCM_ENCRYPT : MBEDTLS_GCM_DECRYPT, a->iv, a->iv_len),
            "gcm_starts");
        ML_CHK_TLS(call, mbedtls_gcm_update_ad(&s->u.gcm, ad, ad_len), "gcm_update_ad");
    } else if (s->mode == MBEDTLS_MODE_CCM) {
        mbedtls_ccm_init(&s->u.ccm);
        if (s->length > SIZE_MAX) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "CCM message of %llu bytes is too long",
                    (unsigned long long)s->length);
        }
        ML_CHK_TLS(call, mbedtls_ccm_setkey(&s->u.ccm, a->block, a->key, bits), "ccm_setkey");
        ML_CHK_TLS(
            call,
            mbedtls_ccm_starts(&s->u.ccm, a->encrypt ? MBEDTLS_CCM_ENCRYPT : MBEDTLS_CCM_DECRYPT, a->iv, a->iv_len),
            "ccm_starts");
        ML_CHK_TLS(call, mbedtls_ccm_set_lengths(&s->u.ccm, ad_len, (size_t)s->length, s->tag_len), "ccm_set_lengths");
        ML_CHK_TLS(call, mbedtls_ccm_update_ad(&s->u.ccm, ad, ad_len), "ccm_update_ad");
    } else {
        mbedtls_chachapoly_init(&s->u.chachapoly);
        ML_CHK_TLS(call, mbedtls_chachapoly_setkey(&s->u.chachapoly, a->key), "chachapoly_setkey");
        ML_CHK_TLS(call,
                   mbedtls_chachapoly_starts(&s->u.chachapoly, a->iv,
                                             a->encrypt ? MBEDTLS_CHACHAPOLY_ENCRYPT : MBEDTLS_CHACHAPOLY_DECRYPT),
                   "chachapoly_starts");
        ML_CHK_TLS(call, mbedtls_chachapoly_update_aad(&s->u.chachapoly, ad, ad_len), "chachapoly_update_aad");
    }
cleanup:
    return st;
}

/* [handle, cipher, mode, key, iv, encrypt, aad, tag_len, length] -> null */
int ml_op_aead_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct ml_cipher tmp;
    struct ml_cipher_args a;
    const uint8_t *ad = NULL;
    size_t ad_len = 0;
    uint64_t tag_len = 0, length = 0;
    void *p = NULL;
    struct aead_stream *s = NULL;
    int st = ML_STATUS_OK;
    ml_cipher_init(&tmp);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    /* Checks names, key, IV and mode exactly as cipher_auth_encrypt does. */
    ML_CHK(ml_cipher_open(call, args, 2, ML_CIPHER_AEAD, ML_CIPHER_DIR_ARG, &tmp, &a));
    ML_CHK(ml_arg_bytes(call, args, 7, &ad, &ad_len));
    ML_CHK(ml_arg_uint(call, args, 8, &tag_len));
    ML_CHK(ml_arg_uint(call, args, 9, &length));
    ML_CHK(ml_cipher_check_tag_len(call, &tmp.ctx, tag_len > 255 ? 255 : (size_t)tag_len));
    ML_CHK(ml_handle_create(call, handle, ML_HT_CIPHER_BUF, sizeof(struct aead_stream), stream_dtor, &p));
    s = p;
    s->kind = ML_CIPHER_OBJ_STREAM;
    s->mode = (uint8_t)mbedtls_cipher_get_cipher_mode(&tmp.ctx);
    s->state = STREAM_OPEN;
    s->tag_len = (uint8_t)tag_len;
    s->encrypt = a.encrypt;
    s->name = mbedtls_cipher_get_name(&tmp.ctx);
    s->length = length;
    /* The one-shot context only checked the arguments: free it first. */
    ml_cipher_free(&tmp);
    ML_CHK(stream_start(call, s, &a, ad, ad_len));
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && s != NULL) {
        (void)ml_handle_free(call, handle);
    }
    ml_cipher_free(&tmp);
    return st;
}

/* A stream still accepting data; a failed check fails the stream, so the
 * requests pipelined behind the failure cannot produce a wrong result. */
static int get_open(struct ml_call *call, CborValue *args, uint32_t *handle, struct aead_stream **s)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_cipher_obj_get(call, args, ML_CIPHER_OBJ_STREAM, handle, &p));
    *s = p;
    if ((*s)->state != STREAM_OPEN) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "AEAD stream %lu %s", (unsigned long)*handle,
                (*s)->state == STREAM_DONE ? "is finished" : "failed earlier: free it");
    }
cleanup:
    return st;
}

/* [handle, data] -> output bytes (as many as data) */
int ml_op_aead_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct aead_stream *s = NULL;
    const uint8_t *data = NULL;
    size_t len = 0, olen = 0;
    uint8_t *out = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(get_open(call, args, &handle, &s));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    if (len > s->length - s->done) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "AEAD stream %lu: %llu + %u bytes exceed the announced %llu",
                (unsigned long)handle, (unsigned long long)s->done, (unsigned)len, (unsigned long long)s->length);
    }
    out = ml_buf_alloc(len);
    if (out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of output", (unsigned)len);
    }
    olen = len;
    if (s->mode == MBEDTLS_MODE_GCM) {
        ML_CHK_TLS(call, mbedtls_gcm_update(&s->u.gcm, data, len, out, len, &olen), "gcm_update");
    } else if (s->mode == MBEDTLS_MODE_CCM) {
        ML_CHK_TLS(call, mbedtls_ccm_update(&s->u.ccm, data, len, out, len, &olen), "ccm_update");
    } else {
        ML_CHK_TLS(call, mbedtls_chachapoly_update(&s->u.chachapoly, len, data, out), "chachapoly_update");
    }
    if (olen != len) {
        ML_FAIL(call, ML_STATUS_CRYPTO_ERROR, "AEAD update gave %u bytes for %u", (unsigned)olen, (unsigned)len);
    }
    s->done += len;
    (void)cbor_encode_byte_string(result, out, len);
cleanup:
    if (st != ML_STATUS_OK && s != NULL && s->state == STREAM_OPEN) {
        s->state = STREAM_FAILED;
    }
    ml_buf_free(out, len);
    return st;
}

/* [handle, ?tag] -> tag (encryption) or null (decryption: the tag verified) */
int ml_op_aead_finish(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct aead_stream *s = NULL;
    const uint8_t *tag = NULL;
    size_t tag_len = 0, olen = 0;
    uint8_t calc[16];
    int st = ML_STATUS_OK;
    ML_CHK(get_open(call, args, &handle, &s));
    if (call->argc >= 2 && !cbor_value_is_null(args)) {
        ML_CHK(ml_arg_bytes(call, args, 2, &tag, &tag_len));
    }
    if (s->encrypt ? tag != NULL : tag_len != s->tag_len) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s", s->encrypt ? "encryption takes no tag" : "wrong tag length");
    }
    if (s->done != s->length) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "AEAD stream %lu got %llu of the announced %llu bytes",
                (unsigned long)handle, (unsigned long long)s->done, (unsigned long long)s->length);
    }
    if (s->mode == MBEDTLS_MODE_GCM) {
        ML_CHK_TLS(call, mbedtls_gcm_finish(&s->u.gcm, NULL, 0, &olen, calc, s->tag_len), "gcm_finish");
    } else if (s->mode == MBEDTLS_MODE_CCM) {
        ML_CHK_TLS(call, mbedtls_ccm_finish(&s->u.ccm, calc, s->tag_len), "ccm_finish");
    } else {
        ML_CHK_TLS(call, mbedtls_chachapoly_finish(&s->u.chachapoly, calc), "chachapoly_finish");
    }
    if (s->encrypt) {
        (void)cbor_encode_byte_string(result, calc, s->tag_len);
    } else if (mbedtls_ct_memcmp(calc, tag, s->tag_len) != 0) {
        call->mbedtls_code = MBEDTLS_ERR_CIPHER_AUTH_FAILED;
        ML_FAIL(call, ML_STATUS_AUTH_FAILED, "%s tag does not match: the plaintext is not authentic", s->name);
    } else {
        (void)cbor_encode_null(result);
    }
cleanup:
    if (s != NULL && s->state == STREAM_OPEN) {
        s->state = st == ML_STATUS_OK ? STREAM_DONE : STREAM_FAILED;
    }
    mbedtls_platform_zeroize(calc, sizeof calc);
    return st;
}
