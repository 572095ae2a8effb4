/*
 * key module: symmetric keys held on the device under a handle, so cipher
 * and HMAC calls can name the key instead of carrying its bytes
 * (ml_arg_key resolves the handle).
 *
 * key_generate draws the bytes from the device DRBG; no op returns a key's
 * bytes, so a generated key never leaves the device. The object is freed by
 * `free` (or a reset) and zeroised by the handle table.
 */
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "core/ml_rng.h"
#include "ops/ml_ops.h"
#include "ops/ml_symkey.h"

struct symkey_obj {
    size_t len;
    uint8_t key[ML_SYMKEY_MAX];
};

static void symkey_dtor(void *obj)
{
    struct symkey_obj *k = obj;
    mbedtls_platform_zeroize(k->key, sizeof k->key);
    k->len = 0;
}

int ml_symkey_bytes(const void *obj, const uint8_t **data, size_t *len)
{
    const struct symkey_obj *k = obj;
    *data = k->key;
    *len = k->len;
    return ML_STATUS_OK;
}

int ml_arg_key(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **data, size_t *len)
{
    int st = ML_STATUS_OK;
    uint32_t handle = 0;
    void *obj = NULL;
    if (cbor_value_is_byte_string(args)) {
        ML_CHK(ml_arg_bytes(call, args, pos, data, len));
    } else if (cbor_value_is_unsigned_integer(args)) {
        ML_CHK(ml_arg_handle(call, args, pos, &handle));
        ML_CHK(ml_handle_get(call, handle, ML_HT_SYMKEY, &obj));
        ML_CHK(ml_symkey_bytes(obj, data, len));
    } else {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a key (byte string or key handle)", pos);
    }
cleanup:
    return st;
}

static int check_len(struct ml_call *call, unsigned pos, uint64_t len)
{
    int st = ML_STATUS_OK;
    if (len < 1 || len > ML_SYMKEY_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: key must be 1..%u bytes, got %lu", pos, (unsigned)ML_SYMKEY_MAX,
                (unsigned long)(len > 0xFFFFFFFFu ? 0xFFFFFFFFu : len));
    }
cleanup:
    return st;
}

/* A key object under `handle` holding `len` bytes (checked by the caller):
 * key[0..len), or zeros to be filled in when key is NULL. */
static int create(struct ml_call *call, uint32_t handle, const uint8_t *key, size_t len, struct symkey_obj **out)
{
    void *p = NULL;
    struct symkey_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_create(call, handle, ML_HT_SYMKEY, sizeof(struct symkey_obj), symkey_dtor, &p));
    k = p;
    if (key != NULL) {
        memcpy(k->key, key, len);
    }
    k->len = len;
    *out = k;
cleanup:
    return st;
}

int ml_symkey_create(struct ml_call *call, uint32_t handle, const uint8_t *key, size_t len)
{
    struct symkey_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(check_len(call, 0, len));
    ML_CHK(create(call, handle, key, len, &k));
cleanup:
    return st;
}

int ml_op_key_import(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *key = NULL;
    size_t key_len = 0;
    struct symkey_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &key, &key_len));
    ML_CHK(check_len(call, 2, key_len));
    ML_CHK(create(call, handle, key, key_len, &k));
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

int ml_op_key_generate(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t len = 0;
    struct symkey_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_uint(call, args, 2, &len));
    ML_CHK(check_len(call, 2, len));
    ML_CHK(create(call, handle, NULL, (size_t)len, &k));
    ML_CHK_TLS(call, ml_rng_random(NULL, k->key, k->len), "ctr_drbg_random");
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && k != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}
