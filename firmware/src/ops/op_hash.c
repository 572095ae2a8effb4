/* hash module: digest contexts and one-shot digests over mbedtls_md. */
#include <mbedtls/md.h>
#include <mbedtls/md5.h>
#include <mbedtls/ripemd160.h>
#include <mbedtls/sha1.h>
#include <mbedtls/sha256.h>
#include <mbedtls/sha3.h>
#include <mbedtls/sha512.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_hash.h"
#include "ops/ml_obj.h"
#include "ops/ml_ops.h"

#if defined(MBEDTLS_MD5_ALT) || defined(MBEDTLS_SHA1_ALT) || defined(MBEDTLS_SHA256_ALT) || \
    defined(MBEDTLS_SHA512_ALT) || defined(MBEDTLS_RIPEMD160_ALT) || defined(MBEDTLS_MD_SOME_PSA)
#error "ml_md_state_write copies digest contexts by value: an _ALT or PSA context may hold pointers"
#endif

struct hash_obj {
    mbedtls_md_context_t md;
};

/* ids.json hash_algs (protocol_ids.h ML_HASH_ALG_TABLE); block: the
 * digest's input block size in bytes (Mbed TLS keeps it private). HMAC pads
 * keys to it. */
#define HASH_ROW(id, md_type, digest_size, block_size) {(id), (md_type), (block_size)},
static const struct {
    uint32_t id;
    mbedtls_md_type_t type;
    uint8_t block;
} algs[] = {ML_HASH_ALG_TABLE(HASH_ROW)};
#undef HASH_ROW

size_t ml_hash_list(uint32_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof algs / sizeof algs[0] && n < cap; i++) {
        if (mbedtls_md_info_from_type(algs[i].type) != NULL) {
            out[n++] = algs[i].id;
        }
    }
    return n;
}

int ml_hash_lookup(struct ml_call *call, uint64_t alg, const mbedtls_md_info_t **info, size_t *block_size)
{
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        if (algs[i].id == alg) {
            *info = mbedtls_md_info_from_type(algs[i].type);
            if (*info != NULL) {
                if (block_size != NULL) {
                    *block_size = algs[i].block;
                }
                return ML_STATUS_OK;
            }
        }
    }
    return ml_fail(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "hash algorithm %llu is not supported",
                   (unsigned long long)alg);
}

static void hash_dtor(void *obj) { mbedtls_md_free(&((struct hash_obj *)obj)->md); }

/* Creates a digest context of `info` under `handle` (set up, not started);
 * on failure the handle is free again. */
static int create(struct ml_call *call, uint32_t handle, const mbedtls_md_info_t *info, struct hash_obj **out)
{
    void *p = NULL;
    struct hash_obj *h = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_create(call, handle, ML_HT_HASH, sizeof(struct hash_obj), hash_dtor, &p));
    h = p;
    mbedtls_md_init(&h->md);
    ML_CHK_TLS(call, mbedtls_md_setup(&h->md, info, 0), "md_setup");
    *out = h;
cleanup:
    if (st != ML_STATUS_OK && h != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

int ml_op_hash_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t alg = 0;
    const mbedtls_md_info_t *info = NULL;
    struct hash_obj *h = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_uint(call, args, 2, &alg));
    ML_CHK(ml_hash_lookup(call, alg, &info, NULL));
    ML_CHK(create(call, handle, info, &h));
    ML_CHK_TLS(call, mbedtls_md_starts(&h->md), "md_starts");
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && h != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

int ml_op_hash_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(ml_handle_get(call, handle, ML_HT_HASH, &p));
    ML_CHK_TLS(call, mbedtls_md_update(&((struct hash_obj *)p)->md, data, len), "md_update");
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

int ml_op_hash_digest(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    void *p = NULL;
    const mbedtls_md_info_t *info = NULL;
    unsigned char digest[MBEDTLS_MD_MAX_SIZE];
    mbedtls_md_context_t tmp;
    int st = ML_STATUS_OK;
    mbedtls_md_init(&tmp);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_handle_get(call, handle, ML_HT_HASH, &p));
    /* Non-destructive: finish a clone, the context keeps going. */
    info = mbedtls_md_info_from_ctx(&((struct hash_obj *)p)->md);
    ML_CHK_TLS(call, mbedtls_md_setup(&tmp, info, 0), "md_finish");
    ML_CHK_TLS(call, mbedtls_md_clone(&tmp, &((struct hash_obj *)p)->md), "md_finish");
    ML_CHK_TLS(call, mbedtls_md_finish(&tmp, digest), "md_finish");
    (void)cbor_encode_byte_string(result, digest, mbedtls_md_get_size(info));
cleanup:
    mbedtls_md_free(&tmp);
    return st;
}

int ml_op_hash_copy(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t src_handle = 0;
    uint32_t dst_handle = 0;
    void *p = NULL;
    const mbedtls_md_context_t *src = NULL;
    struct hash_obj *dst = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &src_handle));
    ML_CHK(ml_arg_handle(call, args, 2, &dst_handle));
    ML_CHK(ml_handle_get(call, src_handle, ML_HT_HASH, &p));
    src = &((struct hash_obj *)p)->md;
    ML_CHK(create(call, dst_handle, mbedtls_md_info_from_ctx(src), &dst));
    ML_CHK_TLS(call, mbedtls_md_clone(&dst->md, src), "md_clone");
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && dst != NULL) {
        (void)ml_handle_free(call, dst_handle);
    }
    return st;
}

int ml_op_hash_oneshot(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t alg = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    const mbedtls_md_info_t *info = NULL;
    unsigned char digest[MBEDTLS_MD_MAX_SIZE];
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, 1, &alg));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(ml_hash_lookup(call, alg, &info, NULL));
    ML_CHK_TLS(call, mbedtls_md(info, data, len, digest), "md");
    (void)cbor_encode_byte_string(result, digest, mbedtls_md_get_size(info));
cleanup:
    return st;
}

/* ------------------------------------------------------------ swapping */

/* Bytes of the algorithm context mbedtls_md_setup allocates for `type`; 0 for none. */
static size_t md_ctx_size(mbedtls_md_type_t type)
{
    switch (type) {
    case MBEDTLS_MD_MD5:
        return sizeof(mbedtls_md5_context);
    case MBEDTLS_MD_SHA1:
        return sizeof(mbedtls_sha1_context);
    case MBEDTLS_MD_SHA224:
    case MBEDTLS_MD_SHA256:
        return sizeof(mbedtls_sha256_context);
    case MBEDTLS_MD_SHA384:
    case MBEDTLS_MD_SHA512:
        return sizeof(mbedtls_sha512_context);
    case MBEDTLS_MD_RIPEMD160:
        return sizeof(mbedtls_ripemd160_context);
    case MBEDTLS_MD_SHA3_224:
    case MBEDTLS_MD_SHA3_256:
    case MBEDTLS_MD_SHA3_384:
    case MBEDTLS_MD_SHA3_512:
        return sizeof(mbedtls_sha3_context);
    default:
        return 0;
    }
}
_Static_assert(1 + sizeof(mbedtls_sha512_context) <= ML_MD_STATE_MAX &&
                   1 + sizeof(mbedtls_sha3_context) <= ML_MD_STATE_MAX,
               "ML_MD_STATE_MAX holds the largest digest context");

int ml_md_state_write(struct ml_call *call, const mbedtls_md_context_t *md, uint8_t *buf, size_t cap, size_t *len)
{
    mbedtls_md_type_t type = mbedtls_md_get_type(mbedtls_md_info_from_ctx(md));
    size_t size = md_ctx_size(type);
    int st = ML_STATUS_OK;
    if (size == 0 || 1 + size > cap) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "digest state of md type %d does not fit %lu bytes", (int)type,
                (unsigned long)cap);
    }
    buf[0] = (uint8_t)type;
    memcpy(buf + 1, md->MBEDTLS_PRIVATE(md_ctx), size);
    *len = 1 + size;
cleanup:
    return st;
}

int ml_md_state_info(struct ml_call *call, const uint8_t *state, size_t len, const mbedtls_md_info_t **info)
{
    int st = ML_STATUS_OK;
    *info = len > 0 ? mbedtls_md_info_from_type((mbedtls_md_type_t)state[0]) : NULL;
    if (*info == NULL || len != 1 + md_ctx_size((mbedtls_md_type_t)state[0])) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "wrapped digest state does not parse");
    }
cleanup:
    return st;
}

void ml_md_state_load(mbedtls_md_context_t *md, const uint8_t *state)
{
    memcpy(md->MBEDTLS_PRIVATE(md_ctx), state + 1, md_ctx_size((mbedtls_md_type_t)state[0]));
}

int ml_hash_state_save(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len)
{
    return ml_md_state_write(call, &((struct hash_obj *)obj)->md, buf, cap, len);
}

int ml_hash_state_restore(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len)
{
    const mbedtls_md_info_t *info = NULL;
    struct hash_obj *h = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_md_state_info(call, state, len, &info));
    ML_CHK(create(call, handle, info, &h));
    ml_md_state_load(&h->md, state);
cleanup:
    return st;
}
