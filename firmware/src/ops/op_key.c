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
    if (len < 1 || len > ML_SYMKEY_MAX) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg %u: key must be 1..%u bytes, got %lu", pos,
                       (unsigned)ML_SYMKEY_MAX, (unsigned long)(len > 0xFFFFFFFFu ? 0xFFFFFFFFu : len));
    }
    return ML_STATUS_OK;
}

static int create(struct ml_call *call, uint32_t handle, struct symkey_obj **out)
{
    void *p = NULL;
    int st = ml_handle_create(call, handle, ML_HT_SYMKEY, sizeof(struct symkey_obj), symkey_dtor, &p);
    if (st == ML_STATUS_OK) {
        *out = p;
    }
    return st;
}

int ml_symkey_create(struct ml_call *call, uint32_t handle, const uint8_t *key, size_t len)
{
    struct symkey_obj *k = NULL;
    int st = check_len(call, 0, len);
    if (st == ML_STATUS_OK) {
        st = create(call, handle, &k);
    }
    if (st == ML_STATUS_OK) {
        memcpy(k->key, key, len);
        k->len = len;
    }
    return st;
}

int ml_op_key_import(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *key = NULL;
    size_t key_len = 0;
    struct symkey_obj *k = NULL;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &key, &key_len);
    }
    if (st == ML_STATUS_OK) {
        st = check_len(call, 2, key_len);
    }
    if (st == ML_STATUS_OK) {
        st = create(call, handle, &k);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    memcpy(k->key, key, key_len);
    k->len = key_len;
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

int ml_op_key_generate(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t len = 0;
    struct symkey_obj *k = NULL;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = ml_arg_uint(call, args, 2, &len);
    }
    if (st == ML_STATUS_OK) {
        st = check_len(call, 2, len);
    }
    if (st == ML_STATUS_OK) {
        st = create(call, handle, &k);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    int ret = ml_rng_random(NULL, k->key, (size_t)len);
    if (ret != 0) {
        (void)ml_handle_free(call, handle);
        return ml_fail_mbedtls(call, ret, "ctr_drbg_random");
    }
    k->len = (size_t)len;
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}
