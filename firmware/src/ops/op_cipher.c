/*
 * cipher module, unauthenticated modes (see ml_cipher.h): streaming
 * contexts (cipher_new / cipher_update / cipher_finish) and cipher_crypt,
 * one frame in one call.
 */
#include <mbedtls/platform_util.h>

#include "core/ml_handles.h"
#include "ops/ml_cipher.h"
#include "ops/ml_ops.h"

static void cipher_dtor(void *obj) { ml_cipher_free(obj); }

/* [handle, cipher, mode, key, iv, encrypt] -> null */
int ml_op_cipher_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct ml_cipher tmp;
    struct ml_cipher_args a;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ml_cipher_init(&tmp);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_cipher_open(call, args, 2, ML_CIPHER_PLAIN, ML_CIPHER_DIR_ARG, &tmp, &a));
    if (mbedtls_cipher_get_cipher_mode(&tmp.ctx) == MBEDTLS_MODE_XTS) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "XTS encrypts one data unit at once: use cipher_crypt");
    }
    ML_CHK(ml_handle_create(call, handle, ML_HT_CIPHER, sizeof(struct ml_cipher), cipher_dtor, &p));
    ml_cipher_move(p, &tmp);
    (void)cbor_encode_null(result);
cleanup:
    ml_cipher_free(&tmp);
    return st;
}

/* The live streaming context `handle`, unless cipher_finish ended it. */
static int get_open(struct ml_call *call, uint32_t handle, struct ml_cipher **c)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_get(call, handle, ML_HT_CIPHER, &p));
    *c = p;
    if ((*c)->finished) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "cipher context %lu is finished", (unsigned long)handle);
    }
cleanup:
    return st;
}

/* [handle, data] -> bytes */
int ml_op_cipher_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0, cap = 0, olen = 0;
    struct ml_cipher *c = NULL;
    uint8_t *out = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(get_open(call, handle, &c));
    cap = len + MBEDTLS_MAX_BLOCK_LENGTH;
    out = ml_buf_alloc(cap);
    if (out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of output", (unsigned)cap);
    }
    ML_CHK(ml_cipher_update(call, c, data, len, out, &olen));
    (void)cbor_encode_byte_string(result, out, olen);
cleanup:
    ml_buf_free(out, cap);
    return st;
}

/* [handle] -> bytes */
int ml_op_cipher_finish(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct ml_cipher *c = NULL;
    uint8_t out[MBEDTLS_MAX_BLOCK_LENGTH];
    size_t olen = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(get_open(call, handle, &c));
    ML_CHK(ml_cipher_finish(call, c, out, &olen));
    (void)cbor_encode_byte_string(result, out, olen);
cleanup:
    mbedtls_platform_zeroize(out, sizeof out);
    return st;
}

/* [cipher, mode, key, iv, encrypt, data] -> bytes */
int ml_op_cipher_crypt(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct ml_cipher c;
    struct ml_cipher_args a;
    const uint8_t *data = NULL;
    size_t len = 0, cap = 0, olen = 0;
    uint8_t *out = NULL;
    int st = ML_STATUS_OK;
    ml_cipher_init(&c);
    ML_CHK(ml_cipher_open(call, args, 1, ML_CIPHER_PLAIN, ML_CIPHER_DIR_ARG, &c, &a));
    ML_CHK(ml_arg_bytes(call, args, 6, &data, &len));
    ML_CHK(ml_cipher_check_xts(call, &c, len));
    cap = len + 2 * MBEDTLS_MAX_BLOCK_LENGTH;
    out = ml_buf_alloc(cap);
    if (out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of output", (unsigned)cap);
    }
    ML_CHK(ml_cipher_crypt_all(call, &c, data, len, out, &olen));
    (void)cbor_encode_byte_string(result, out, olen);
cleanup:
    ml_buf_free(out, cap);
    ml_cipher_free(&c);
    return st;
}
