/* hash module: digest contexts and one-shot digests over mbedtls_md. */
#include <mbedtls/md.h>

#include "core/ml_handles.h"
#include "ops/ml_hash.h"
#include "ops/ml_ops.h"

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

static int arg_alg(struct ml_call *call, CborValue *args, unsigned pos, uint64_t *alg)
{
    return ml_arg_uint(call, args, pos, alg);
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

static int lookup_alg(struct ml_call *call, uint64_t alg, const mbedtls_md_info_t **info)
{
    return ml_hash_lookup(call, alg, info, NULL);
}

static void hash_dtor(void *obj) { mbedtls_md_free(&((struct hash_obj *)obj)->md); }

/* Creates an empty digest context of `info` under `handle`. */
static int create(struct ml_call *call, uint32_t handle, const mbedtls_md_info_t *info, struct hash_obj **out)
{
    void *p = NULL;
    int st = ml_handle_create(call, handle, ML_HT_HASH, sizeof(struct hash_obj), hash_dtor, &p);
    if (st != ML_STATUS_OK) {
        return st;
    }
    struct hash_obj *h = p;
    mbedtls_md_init(&h->md);
    int ret = mbedtls_md_setup(&h->md, info, 0);
    if (ret != 0) {
        (void)ml_handle_free(call, handle);
        return ml_fail_mbedtls(call, ret, "md_setup");
    }
    *out = h;
    return ML_STATUS_OK;
}

int ml_op_hash_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t alg = 0;
    const mbedtls_md_info_t *info = NULL;
    struct hash_obj *h = NULL;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = arg_alg(call, args, 2, &alg);
    }
    if (st == ML_STATUS_OK) {
        st = lookup_alg(call, alg, &info);
    }
    if (st == ML_STATUS_OK) {
        st = create(call, handle, info, &h);
    }
    if (st == ML_STATUS_OK) {
        int ret = mbedtls_md_starts(&h->md);
        if (ret != 0) {
            (void)ml_handle_free(call, handle);
            return ml_fail_mbedtls(call, ret, "md_starts");
        }
        (void)cbor_encode_null(result);
    }
    return st;
}

int ml_op_hash_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    void *p = NULL;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &data, &len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_handle_get(call, handle, ML_HT_HASH, &p);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    int ret = mbedtls_md_update(&((struct hash_obj *)p)->md, data, len);
    if (ret != 0) {
        return ml_fail_mbedtls(call, ret, "md_update");
    }
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

int ml_op_hash_digest(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    void *p = NULL;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = ml_handle_get(call, handle, ML_HT_HASH, &p);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    /* Non-destructive: finish a clone, the context keeps going. */
    const mbedtls_md_context_t *src = &((struct hash_obj *)p)->md;
    const mbedtls_md_info_t *info = mbedtls_md_info_from_ctx(src);
    unsigned char digest[MBEDTLS_MD_MAX_SIZE];
    mbedtls_md_context_t tmp;
    mbedtls_md_init(&tmp);
    int ret = mbedtls_md_setup(&tmp, info, 0);
    if (ret == 0) {
        ret = mbedtls_md_clone(&tmp, src);
    }
    if (ret == 0) {
        ret = mbedtls_md_finish(&tmp, digest);
    }
    mbedtls_md_free(&tmp);
    if (ret != 0) {
        return ml_fail_mbedtls(call, ret, "md_finish");
    }
    (void)cbor_encode_byte_string(result, digest, mbedtls_md_get_size(info));
    return ML_STATUS_OK;
}

int ml_op_hash_copy(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t src_handle = 0;
    uint32_t dst_handle = 0;
    void *p = NULL;
    struct hash_obj *dst = NULL;
    int st = ml_arg_handle(call, args, 1, &src_handle);
    if (st == ML_STATUS_OK) {
        st = ml_arg_handle(call, args, 2, &dst_handle);
    }
    if (st == ML_STATUS_OK) {
        st = ml_handle_get(call, src_handle, ML_HT_HASH, &p);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    const mbedtls_md_context_t *src = &((struct hash_obj *)p)->md;
    st = create(call, dst_handle, mbedtls_md_info_from_ctx(src), &dst);
    if (st != ML_STATUS_OK) {
        return st;
    }
    int ret = mbedtls_md_clone(&dst->md, src);
    if (ret != 0) {
        (void)ml_handle_free(call, dst_handle);
        return ml_fail_mbedtls(call, ret, "md_clone");
    }
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

int ml_op_hash_oneshot(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t alg = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    const mbedtls_md_info_t *info = NULL;
    int st = arg_alg(call, args, 1, &alg);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &data, &len);
    }
    if (st == ML_STATUS_OK) {
        st = lookup_alg(call, alg, &info);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    unsigned char digest[MBEDTLS_MD_MAX_SIZE];
    int ret = mbedtls_md(info, data, len, digest);
    if (ret != 0) {
        return ml_fail_mbedtls(call, ret, "md");
    }
    (void)cbor_encode_byte_string(result, digest, mbedtls_md_get_size(info));
    return ML_STATUS_OK;
}
