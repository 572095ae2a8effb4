/*
 * hmac module: HMAC (RFC 2104) contexts and one-shot MACs.
 *
 * Mbed TLS's own HMAC state (mbedtls_md_hmac_*) keeps the key pads in the
 * md context, but mbedtls_md_clone() copies only the digest state, not the
 * pads, so a clone cannot be finished as an HMAC. We therefore build HMAC
 * from the public digest API: the object holds the inner digest context
 * (already fed K^ipad) and the outer pad K^opad. Finishing a clone of the
 * inner context and hashing opad || inner makes digest() non-destructive,
 * and copy() is a digest clone plus the pad. The key itself is not kept.
 */
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_hash.h"
#include "ops/ml_obj.h"
#include "ops/ml_ops.h"
#include "ops/ml_symkey.h"

struct hmac_obj {
    mbedtls_md_context_t inner;              /* H(K^ipad || data so far) */
    uint8_t opad[MBEDTLS_MD_MAX_BLOCK_SIZE]; /* K^opad, block_size bytes */
    size_t block_size;
};

static void hmac_dtor(void *obj)
{
    struct hmac_obj *h = obj;
    mbedtls_md_free(&h->inner);
    mbedtls_platform_zeroize(h->opad, sizeof h->opad);
}

/* Sets up `h` (inner context initialised by the caller) for `key`. */
static int hmac_setup(struct ml_call *call, struct hmac_obj *h, const mbedtls_md_info_t *info, size_t block,
                      const uint8_t *key, size_t key_len)
{
    uint8_t k[MBEDTLS_MD_MAX_BLOCK_SIZE] = {0};
    uint8_t ipad[MBEDTLS_MD_MAX_BLOCK_SIZE];
    int st = ML_STATUS_OK;
    if (key_len > block) {
        ML_CHK_TLS(call, mbedtls_md(info, key, key_len, k), "hmac setup"); /* long keys are hashed first */
    } else if (key_len > 0) {
        memcpy(k, key, key_len);
    }
    for (size_t i = 0; i < block; i++) {
        ipad[i] = (uint8_t)(k[i] ^ 0x36u);
        h->opad[i] = (uint8_t)(k[i] ^ 0x5cu);
    }
    h->block_size = block;
    ML_CHK_TLS(call, mbedtls_md_setup(&h->inner, info, 0), "hmac setup");
    ML_CHK_TLS(call, mbedtls_md_starts(&h->inner), "hmac setup");
    ML_CHK_TLS(call, mbedtls_md_update(&h->inner, ipad, block), "hmac setup");
cleanup:
    mbedtls_platform_zeroize(k, sizeof k);
    mbedtls_platform_zeroize(ipad, sizeof ipad);
    return st;
}

/* Writes the MAC of everything fed so far to out; `h` is unchanged. */
static int hmac_finish(struct ml_call *call, const struct hmac_obj *h, uint8_t *out)
{
    const mbedtls_md_info_t *info = mbedtls_md_info_from_ctx(&h->inner);
    uint8_t ih[MBEDTLS_MD_MAX_SIZE];
    mbedtls_md_context_t tmp;
    int st = ML_STATUS_OK;
    mbedtls_md_init(&tmp);
    ML_CHK_TLS(call, mbedtls_md_setup(&tmp, info, 0), "hmac finish");
    ML_CHK_TLS(call, mbedtls_md_clone(&tmp, &h->inner), "hmac finish");
    ML_CHK_TLS(call, mbedtls_md_finish(&tmp, ih), "hmac finish");
    ML_CHK_TLS(call, mbedtls_md_starts(&tmp), "hmac finish");
    ML_CHK_TLS(call, mbedtls_md_update(&tmp, h->opad, h->block_size), "hmac finish");
    ML_CHK_TLS(call, mbedtls_md_update(&tmp, ih, mbedtls_md_get_size(info)), "hmac finish");
    ML_CHK_TLS(call, mbedtls_md_finish(&tmp, out), "hmac finish");
cleanup:
    mbedtls_md_free(&tmp);
    mbedtls_platform_zeroize(ih, sizeof ih);
    return st;
}

static int create(struct ml_call *call, uint32_t handle, struct hmac_obj **out)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_create(call, handle, ML_HT_HMAC, sizeof(struct hmac_obj), hmac_dtor, &p));
    *out = p;
    mbedtls_md_init(&(*out)->inner);
cleanup:
    return st;
}

int ml_op_hmac_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t alg = 0;
    const uint8_t *key = NULL;
    size_t key_len = 0;
    size_t block = 0;
    const mbedtls_md_info_t *info = NULL;
    struct hmac_obj *h = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_uint(call, args, 2, &alg));
    ML_CHK(ml_arg_key(call, args, 3, &key, &key_len));
    ML_CHK(ml_hash_lookup(call, alg, &info, &block));
    ML_CHK(create(call, handle, &h));
    ML_CHK(hmac_setup(call, h, info, block, key, key_len));
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && h != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

int ml_op_hmac_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(ml_handle_get(call, handle, ML_HT_HMAC, &p));
    ML_CHK_TLS(call, mbedtls_md_update(&((struct hmac_obj *)p)->inner, data, len), "md_update");
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

int ml_op_hmac_digest(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    void *p = NULL;
    const struct hmac_obj *h = NULL;
    uint8_t mac[MBEDTLS_MD_MAX_SIZE];
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_handle_get(call, handle, ML_HT_HMAC, &p));
    h = p;
    ML_CHK(hmac_finish(call, h, mac));
    (void)cbor_encode_byte_string(result, mac, mbedtls_md_get_size(mbedtls_md_info_from_ctx(&h->inner)));
cleanup:
    mbedtls_platform_zeroize(mac, sizeof mac);
    return st;
}

int ml_op_hmac_copy(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t src_handle = 0;
    uint32_t dst_handle = 0;
    void *p = NULL;
    const struct hmac_obj *src = NULL;
    struct hmac_obj *dst = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &src_handle));
    ML_CHK(ml_arg_handle(call, args, 2, &dst_handle));
    ML_CHK(ml_handle_get(call, src_handle, ML_HT_HMAC, &p));
    src = p;
    ML_CHK(create(call, dst_handle, &dst));
    memcpy(dst->opad, src->opad, sizeof dst->opad);
    dst->block_size = src->block_size;
    ML_CHK_TLS(call, mbedtls_md_setup(&dst->inner, mbedtls_md_info_from_ctx(&src->inner), 0), "md_clone");
    ML_CHK_TLS(call, mbedtls_md_clone(&dst->inner, &src->inner), "md_clone");
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && dst != NULL) {
        (void)ml_handle_free(call, dst_handle);
    }
    return st;
}

int ml_op_hmac_oneshot(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t alg = 0;
    const uint8_t *key = NULL;
    const uint8_t *data = NULL;
    size_t key_len = 0;
    size_t len = 0;
    const mbedtls_md_info_t *info = NULL;
    uint8_t mac[MBEDTLS_MD_MAX_SIZE];
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, 1, &alg));
    ML_CHK(ml_arg_key(call, args, 2, &key, &key_len));
    ML_CHK(ml_arg_bytes(call, args, 3, &data, &len));
    ML_CHK(ml_hash_lookup(call, alg, &info, NULL));
    /* Mbed TLS's own HMAC here; the C tests check it against ours. */
    ML_CHK_TLS(call, mbedtls_md_hmac(info, key, key_len, data, len, mac), "md_hmac");
    (void)cbor_encode_byte_string(result, mac, mbedtls_md_get_size(info));
cleanup:
    mbedtls_platform_zeroize(mac, sizeof mac);
    return st;
}

/* ------------------------------------------------------------ swapping */

_Static_assert(ML_HMAC_STATE_MAX >= 1 + MBEDTLS_MD_MAX_BLOCK_SIZE + ML_MD_STATE_MAX, "ML_HMAC_STATE_MAX holds a state");

int ml_hmac_state_save(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len)
{
    const struct hmac_obj *h = obj;
    size_t inner_len = 0;
    int st = ML_STATUS_OK;
    if (cap < 1 + h->block_size) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "HMAC state does not fit %lu bytes", (unsigned long)cap);
    }
    buf[0] = (uint8_t)h->block_size;
    memcpy(buf + 1, h->opad, h->block_size);
    ML_CHK(ml_md_state_write(call, &h->inner, buf + 1 + h->block_size, cap - 1 - h->block_size, &inner_len));
    *len = 1 + h->block_size + inner_len;
cleanup:
    return st;
}

int ml_hmac_state_restore(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len)
{
    size_t block = len > 0 ? state[0] : 0;
    const mbedtls_md_info_t *info = NULL;
    struct hmac_obj *h = NULL;
    int st = ML_STATUS_OK;
    if (block == 0 || block > MBEDTLS_MD_MAX_BLOCK_SIZE || len < 1 + block) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "wrapped HMAC state does not parse");
    }
    ML_CHK(ml_md_state_info(call, state + 1 + block, len - 1 - block, &info));
    ML_CHK(create(call, handle, &h));
    memcpy(h->opad, state + 1, block);
    h->block_size = block;
    ML_CHK_TLS(call, mbedtls_md_setup(&h->inner, info, 0), "md_setup");
    ml_md_state_load(&h->inner, state + 1 + block);
cleanup:
    if (st != ML_STATUS_OK && h != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}
