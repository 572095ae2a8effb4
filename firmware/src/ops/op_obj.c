/*
 * obj module: swapping an object's state out to the host and back
 * (spec.md 7.6), so a host can keep more objects than the handle table
 * holds. obj_wrap serialises a digest, HMAC, CMAC, pk or symmetric key
 * object, wraps it and frees the handle; obj_unwrap re-creates it under a new handle.
 *
 *   blob      = type (1, in the clear) || nonce (12) || ciphertext || tag (16)
 *   AAD       = boot id (8) || type (1)
 *   plaintext = type (1) || format version (1) || state
 *
 * AES-256-GCM under the per-boot key core/ml_rng draws at boot (never sent,
 * zeroised at reboot), a fresh DRBG nonce per wrap. The state is the owning
 * module's (ml_obj.h for digests and HMAC); pk keys are their flags (4 bytes,
 * little-endian) and DER (ml_pk_serialise: private when they have one), so
 * a non-exportable key stays non-exportable; symmetric keys are a flags byte
 * (0: none defined) and the key bytes. Any blob that does not authenticate
 * fails closed with one message. Buffers holding state are zeroised.
 */
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_device.h"
#include "core/ml_handles.h"
#include "core/ml_rng.h"
#include "ops/ml_cmac.h"
#include "ops/ml_obj.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_symkey.h"

#define TYPE_LEN       1u
#define NONCE_LEN      12u
#define TAG_LEN        16u
#define PT_HDR         2u /* type, format version */
#define FORMAT_VERSION 1u
#define OVERHEAD       (TYPE_LEN + NONCE_LEN + PT_HDR + TAG_LEN)
#define PK_FLAGS_LEN   4u
#define DAMAGED        "wrapped state from another boot or damaged"

_Static_assert(sizeof ml_device.boot_id == 8, "AAD is boot id || type");

/* ------------------------------------------------------------ pk and symmetric keys */

static int pk_save(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len)
{
    uint32_t flags = ml_pk_flags(obj);
    size_t der_len = 0;
    int st = ML_STATUS_OK;
    for (size_t i = 0; i < PK_FLAGS_LEN; i++) {
        buf[i] = (uint8_t)(flags >> (8 * i));
    }
    st = ml_pk_serialise(call, obj, buf + PK_FLAGS_LEN, cap - PK_FLAGS_LEN, &der_len);
    if (st == ML_STATUS_TOO_LARGE) {
        ML_FAIL(call, st, "the key's DER is larger than %u bytes (slot_record_max)", (unsigned)ML_SLOT_RECORD_MAX);
    }
    ML_CHK(st);
    *len = PK_FLAGS_LEN + der_len;
cleanup:
    return st;
}

static int pk_restore(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len)
{
    uint32_t flags = 0;
    int st = ML_STATUS_OK;
    if (len <= PK_FLAGS_LEN) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "wrapped key state does not parse");
    }
    for (size_t i = 0; i < PK_FLAGS_LEN; i++) {
        flags |= (uint32_t)state[i] << (8 * i);
    }
    ML_CHK(ml_pk_create_from_der(call, handle, state + PK_FLAGS_LEN, len - PK_FLAGS_LEN, flags, NULL));
cleanup:
    return st;
}

static int symkey_save(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len)
{
    const uint8_t *key = NULL;
    size_t key_len = 0;
    int st = ML_STATUS_OK;
    (void)ml_symkey_bytes(obj, &key, &key_len);
    if (1 + key_len > cap) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "symmetric key state does not fit %lu bytes", (unsigned long)cap);
    }
    buf[0] = 0; /* flags: none defined for symmetric keys */
    memcpy(buf + 1, key, key_len);
    *len = 1 + key_len;
cleanup:
    return st;
}

static int symkey_restore(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len)
{
    int st = ML_STATUS_OK;
    if (len < 2 || state[0] != 0) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "wrapped symmetric key state does not parse");
    }
    ML_CHK(ml_symkey_create(call, handle, state + 1, len - 1));
cleanup:
    return st;
}

/* ------------------------------------------------------------ types */

static const struct kind {
    uint8_t type;
    size_t cap; /* most state bytes */
    ml_obj_save_fn save;
    ml_obj_restore_fn restore;
} kinds[] = {
    {ML_HT_HASH, ML_MD_STATE_MAX, ml_hash_state_save, ml_hash_state_restore},
    {ML_HT_HMAC, ML_HMAC_STATE_MAX, ml_hmac_state_save, ml_hmac_state_restore},
    {ML_HT_CMAC, ML_CMAC_STATE_MAX, ml_cmac_state_save, ml_cmac_state_restore},
    {ML_HT_PK, PK_FLAGS_LEN + ML_SLOT_RECORD_MAX, pk_save, pk_restore},
    {ML_HT_SYMKEY, 1 + ML_SYMKEY_MAX, symkey_save, symkey_restore},
};

static const struct kind *kind_of(uint8_t type)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (kinds[i].type == type) {
            return &kinds[i];
        }
    }
    return NULL;
}

/* A GCM context keyed with the per-boot key, and the AAD for `type`. */
static int wrap_cipher(struct ml_call *call, mbedtls_gcm_context *gcm, uint8_t type, uint8_t aad[9])
{
    const uint8_t *key = ml_rng_wrap_key();
    int st = ML_STATUS_OK;
    if (key == NULL) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "no wrap key: the DRBG failed to seed at boot");
    }
    ML_CHK_TLS(call, mbedtls_gcm_setkey(gcm, MBEDTLS_CIPHER_ID_AES, key, ML_RNG_WRAP_KEY_SIZE * 8), "gcm_setkey");
    memcpy(aad, ml_device.boot_id, sizeof ml_device.boot_id);
    aad[sizeof ml_device.boot_id] = type;
cleanup:
    return st;
}

/* ------------------------------------------------------------ ops */

int ml_op_obj_wrap(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint8_t type = ML_HT_NONE, aad[9];
    void *obj = NULL;
    const struct kind *k = NULL;
    uint8_t *buf = NULL, *pt = NULL;
    size_t cap = 0, state_len = 0, pt_len = 0;
    mbedtls_gcm_context gcm;
    int st = ML_STATUS_OK;
    mbedtls_gcm_init(&gcm);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_handle_lookup(call, handle, &type, &obj));
    k = kind_of(type);
    if (k == NULL) {
        ML_FAIL(call, ML_STATUS_WRONG_HANDLE_TYPE,
                "handle %lu is a %s: it cannot be swapped out (digest, HMAC, pk and symmetric key objects can)",
                (unsigned long)handle, ml_handle_type_name(type));
    }
    cap = OVERHEAD + k->cap;
    buf = ml_buf_alloc(cap);
    if (buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte wrapped state", (unsigned long)cap);
    }
    pt = buf + TYPE_LEN + NONCE_LEN;
    ML_CHK(k->save(call, obj, pt + PT_HDR, k->cap, &state_len));
    buf[0] = type;
    pt[0] = type;
    pt[1] = FORMAT_VERSION;
    pt_len = PT_HDR + state_len;
    ML_CHK_TLS(call, ml_rng_random(NULL, buf + TYPE_LEN, NONCE_LEN), "ctr_drbg_random");
    ML_CHK(wrap_cipher(call, &gcm, type, aad));
    ML_CHK_TLS(call,
               mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, pt_len, buf + TYPE_LEN, NONCE_LEN, aad, sizeof aad,
                                         pt, pt, TAG_LEN, pt + pt_len),
               "gcm_crypt_and_tag");
    if (cbor_encode_byte_string(result, buf, TYPE_LEN + NONCE_LEN + pt_len + TAG_LEN) != CborNoError) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "the wrapped state (%lu bytes) does not fit the MTU",
                (unsigned long)(TYPE_LEN + NONCE_LEN + pt_len + TAG_LEN));
    }
    ML_CHK(ml_handle_free(call, handle)); /* only once the answer holds the blob */
cleanup:
    mbedtls_gcm_free(&gcm);
    ml_buf_free(buf, cap);
    return st;
}

int ml_op_obj_unwrap(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *blob = NULL;
    size_t len = 0, pt_len = 0;
    const struct kind *k = NULL;
    uint8_t *pt = NULL, aad[9];
    mbedtls_gcm_context gcm;
    int ret = 0;
    int st = ML_STATUS_OK;
    mbedtls_gcm_init(&gcm);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &blob, &len));
    k = len >= OVERHEAD ? kind_of(blob[0]) : NULL;
    if (k == NULL || len - OVERHEAD > k->cap) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, DAMAGED);
    }
    pt_len = len - TYPE_LEN - NONCE_LEN - TAG_LEN;
    pt = ml_buf_alloc(pt_len);
    if (pt == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte wrapped state", (unsigned long)pt_len);
    }
    ML_CHK(wrap_cipher(call, &gcm, blob[0], aad));
    ret = mbedtls_gcm_auth_decrypt(&gcm, pt_len, blob + TYPE_LEN, NONCE_LEN, aad, sizeof aad, blob + len - TAG_LEN,
                                   TAG_LEN, blob + TYPE_LEN + NONCE_LEN, pt);
    if (ret == MBEDTLS_ERR_GCM_AUTH_FAILED || (ret == 0 && (pt[0] != blob[0] || pt[1] != FORMAT_VERSION))) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, DAMAGED);
    }
    ML_CHK_TLS(call, ret, "gcm_auth_decrypt");
    ML_CHK(k->restore(call, handle, pt + PT_HDR, pt_len - PT_HDR));
    (void)cbor_encode_null(result);
cleanup:
    mbedtls_gcm_free(&gcm);
    ml_buf_free(pt, pt_len);
    return st;
}
