/* hkdf module: HKDF (RFC 5869) over mbedtls_hkdf_*. */
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>

#include "core/ml_config.h"
#include "ops/ml_hash.h"
#include "ops/ml_ops.h"

/* Reads the `length` argument and checks it against RFC 5869 (at most 255
 * blocks of the digest) and against what one response frame can carry. */
static int arg_length(struct ml_call *call, CborValue *args, unsigned pos, const mbedtls_md_info_t *info, size_t *out)
{
    uint64_t n = 0;
    int st = ml_arg_uint(call, args, pos, &n);
    if (st != ML_STATUS_OK) {
        return st;
    }
    uint64_t rfc_max = 255u * (uint64_t)mbedtls_md_get_size(info);
    if (n > rfc_max) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg %u: length %llu exceeds 255 * digest size = %llu", pos,
                       (unsigned long long)n, (unsigned long long)rfc_max);
    }
    if (n > ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX) {
        return ml_fail(call, ML_STATUS_TOO_LARGE, "arg %u: length %llu exceeds the MTU limit %u", pos,
                       (unsigned long long)n, (unsigned)(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX));
    }
    *out = (size_t)n;
    return ML_STATUS_OK;
}

/* Encodes okm_len bytes from expand(prk) (or extract-then-expand when salt
 * is non-NULL) into result. */
static int derive(struct ml_call *call, const mbedtls_md_info_t *info, const uint8_t *salt, size_t salt_len,
                  const uint8_t *key, size_t key_len, const uint8_t *info_bytes, size_t info_len, size_t okm_len,
                  CborEncoder *result)
{
    /* calloc(1) even for an empty result: mbedtls_hkdf_expand rejects NULL. */
    uint8_t *okm = mbedtls_calloc(1, okm_len > 0 ? okm_len : 1);
    if (okm == NULL) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu output bytes", (unsigned long)okm_len);
    }
    int ret = salt != NULL ? mbedtls_hkdf(info, salt, salt_len, key, key_len, info_bytes, info_len, okm, okm_len)
                           : mbedtls_hkdf_expand(info, key, key_len, info_bytes, info_len, okm, okm_len);
    if (ret == 0) {
        (void)cbor_encode_byte_string(result, okm, okm_len);
    }
    mbedtls_platform_zeroize(okm, okm_len > 0 ? okm_len : 1);
    mbedtls_free(okm);
    return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "hkdf");
}

int ml_op_hkdf_extract(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t alg = 0;
    const uint8_t *salt = NULL;
    const uint8_t *ikm = NULL;
    size_t salt_len = 0;
    size_t ikm_len = 0;
    const mbedtls_md_info_t *info = NULL;
    int st = ml_arg_uint(call, args, 1, &alg);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &salt, &salt_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 3, &ikm, &ikm_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_hash_lookup(call, alg, &info, NULL);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    uint8_t prk[MBEDTLS_MD_MAX_SIZE];
    int ret = mbedtls_hkdf_extract(info, salt, salt_len, ikm, ikm_len, prk);
    if (ret == 0) {
        (void)cbor_encode_byte_string(result, prk, mbedtls_md_get_size(info));
    }
    mbedtls_platform_zeroize(prk, sizeof prk);
    return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "hkdf_extract");
}

int ml_op_hkdf_expand(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t alg = 0;
    const uint8_t *prk = NULL;
    const uint8_t *info_bytes = NULL;
    size_t prk_len = 0;
    size_t info_len = 0;
    size_t okm_len = 0;
    const mbedtls_md_info_t *info = NULL;
    int st = ml_arg_uint(call, args, 1, &alg);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &prk, &prk_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 3, &info_bytes, &info_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_hash_lookup(call, alg, &info, NULL);
    }
    if (st == ML_STATUS_OK) {
        st = arg_length(call, args, 4, info, &okm_len);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (prk_len < mbedtls_md_get_size(info)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 2: prk of %lu bytes is shorter than the digest (%u)",
                       (unsigned long)prk_len, (unsigned)mbedtls_md_get_size(info));
    }
    return derive(call, info, NULL, 0, prk, prk_len, info_bytes, info_len, okm_len, result);
}

int ml_op_hkdf(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t alg = 0;
    const uint8_t *salt = NULL;
    const uint8_t *ikm = NULL;
    const uint8_t *info_bytes = NULL;
    size_t salt_len = 0;
    size_t ikm_len = 0;
    size_t info_len = 0;
    size_t okm_len = 0;
    const mbedtls_md_info_t *info = NULL;
    int st = ml_arg_uint(call, args, 1, &alg);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &salt, &salt_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 3, &ikm, &ikm_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 4, &info_bytes, &info_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_hash_lookup(call, alg, &info, NULL);
    }
    if (st == ML_STATUS_OK) {
        st = arg_length(call, args, 5, info, &okm_len);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    /* a non-NULL salt selects extract-then-expand; an empty one is fine */
    static const uint8_t empty[1] = {0};
    return derive(call, info, salt != NULL ? salt : empty, salt_len, ikm, ikm_len, info_bytes, info_len, okm_len,
                  result);
}
