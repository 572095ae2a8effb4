/* hkdf module: HKDF (RFC 5869) over mbedtls_hkdf_*. */
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <stdbool.h>

#include "core/ml_config.h"
#include "ops/ml_hash.h"
#include "ops/ml_ops.h"

/* The arguments of the three ops: [alg, bytes..., length?]. */
struct hkdf_args {
    const mbedtls_md_info_t *md;
    const uint8_t *bytes[3]; /* args 2, 3, ... */
    size_t len[3];
    size_t okm_len; /* the `length` argument after the byte strings, when read */
};

/* Reads the hash id (arg 1) and `nbytes` byte strings (args 2..), looks the
 * hash up and, when `with_length`, reads the output length that follows and
 * checks it against RFC 5869 (at most 255 blocks of the digest) and against
 * what one response frame can carry. */
static int read_args(struct ml_call *call, CborValue *args, unsigned nbytes, bool with_length, struct hkdf_args *a)
{
    uint64_t alg = 0, n = 0, rfc_max = 0;
    unsigned pos = nbytes + 2;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, 1, &alg));
    for (unsigned i = 0; i < nbytes; i++) {
        ML_CHK(ml_arg_bytes(call, args, i + 2, &a->bytes[i], &a->len[i]));
    }
    ML_CHK(ml_hash_lookup(call, alg, &a->md, NULL));
    if (with_length) {
        ML_CHK(ml_arg_uint(call, args, pos, &n));
        rfc_max = 255u * (uint64_t)mbedtls_md_get_size(a->md);
        if (n > rfc_max) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: length %llu exceeds 255 * digest size = %llu", pos,
                    (unsigned long long)n, (unsigned long long)rfc_max);
        }
        if (n > ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX) {
            ML_FAIL(call, ML_STATUS_TOO_LARGE, "arg %u: length %llu exceeds the MTU limit %u", pos,
                    (unsigned long long)n, (unsigned)(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX));
        }
        a->okm_len = (size_t)n;
    }
cleanup:
    return st;
}

/* Encodes okm_len bytes from expand(prk) (or extract-then-expand when salt
 * is non-NULL) into result. */
static int derive(struct ml_call *call, const struct hkdf_args *a, const uint8_t *salt, size_t salt_len,
                  const uint8_t *key, size_t key_len, const uint8_t *info, size_t info_len, CborEncoder *result)
{
    /* at least one byte even for an empty result: mbedtls_hkdf_expand rejects NULL */
    uint8_t *okm = ml_buf_alloc(a->okm_len);
    int st = ML_STATUS_OK;
    if (okm == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu output bytes", (unsigned long)a->okm_len);
    }
    ML_CHK_TLS(call,
               salt != NULL ? mbedtls_hkdf(a->md, salt, salt_len, key, key_len, info, info_len, okm, a->okm_len)
                            : mbedtls_hkdf_expand(a->md, key, key_len, info, info_len, okm, a->okm_len),
               "hkdf");
    (void)cbor_encode_byte_string(result, okm, a->okm_len);
cleanup:
    ml_buf_free(okm, a->okm_len);
    return st;
}

/* [alg, salt, ikm] -> prk */
int ml_op_hkdf_extract(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct hkdf_args a = {0};
    uint8_t prk[MBEDTLS_MD_MAX_SIZE];
    int st = ML_STATUS_OK;
    ML_CHK(read_args(call, args, 2, false, &a));
    ML_CHK_TLS(call, mbedtls_hkdf_extract(a.md, a.bytes[0], a.len[0], a.bytes[1], a.len[1], prk), "hkdf_extract");
    (void)cbor_encode_byte_string(result, prk, mbedtls_md_get_size(a.md));
cleanup:
    mbedtls_platform_zeroize(prk, sizeof prk);
    return st;
}

/* [alg, prk, info, length] -> okm */
int ml_op_hkdf_expand(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct hkdf_args a = {0};
    int st = ML_STATUS_OK;
    ML_CHK(read_args(call, args, 2, true, &a));
    if (a.len[0] < mbedtls_md_get_size(a.md)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: prk of %lu bytes is shorter than the digest (%u)",
                (unsigned long)a.len[0], (unsigned)mbedtls_md_get_size(a.md));
    }
    ML_CHK(derive(call, &a, NULL, 0, a.bytes[0], a.len[0], a.bytes[1], a.len[1], result));
cleanup:
    return st;
}

/* [alg, salt, ikm, info, length] -> okm */
int ml_op_hkdf(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    /* a non-NULL salt selects extract-then-expand; an empty one is fine */
    static const uint8_t empty[1] = {0};
    struct hkdf_args a = {0};
    int st = ML_STATUS_OK;
    ML_CHK(read_args(call, args, 3, true, &a));
    ML_CHK(derive(call, &a, a.bytes[0] != NULL ? a.bytes[0] : empty, a.len[0], a.bytes[1], a.len[1], a.bytes[2],
                  a.len[2], result));
cleanup:
    return st;
}
