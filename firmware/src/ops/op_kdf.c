/*
 * kdf module: PBKDF2 with HMAC (PKCS #5 v2.1, RFC 8018 section 5.2).
 *
 * mbedtls_pkcs5_pbkdf2_hmac_ext runs every iteration in one call, which
 * leaves no place to send busy events from, and pays four digest
 * compressions an iteration (HMAC reset re-hashes the key pad). The loop is
 * ours instead: the digest states after K^ipad and after K^opad are made
 * once, each iteration clones them (two compressions for a short input), and
 * every BUSY_EVERY iterations ml_busy_tick lets the host know the request is
 * alive. Iterations and output length are bounded (ids.json
 * pbkdf2_iterations_max, pbkdf2_length_max; the output is one response).
 */
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_config.h"
#include "ops/ml_hash.h"
#include "ops/ml_ops.h"

#define BUSY_EVERY 256u

/* HMAC under one key, as two precomputed digest states. */
struct prf {
    mbedtls_md_context_t pads[2]; /* [0]: fed K^ipad, [1]: fed K^opad */
    mbedtls_md_context_t work;
    size_t hlen;
};

static void prf_init(struct prf *p)
{
    mbedtls_md_init(&p->pads[0]);
    mbedtls_md_init(&p->pads[1]);
    mbedtls_md_init(&p->work);
}

static void prf_free(struct prf *p)
{
    mbedtls_md_free(&p->pads[0]); /* frees zeroise the states */
    mbedtls_md_free(&p->pads[1]);
    mbedtls_md_free(&p->work);
}

/* Keys the PRF with the password (hashed first when longer than a block). */
static int prf_setup(struct ml_call *call, struct prf *p, const mbedtls_md_info_t *info, size_t block,
                     const uint8_t *pw, size_t pw_len)
{
    static const uint8_t pad_byte[2] = {0x36, 0x5c};
    uint8_t key[MBEDTLS_MD_MAX_BLOCK_SIZE] = {0};
    uint8_t padded[MBEDTLS_MD_MAX_BLOCK_SIZE];
    int st = ML_STATUS_OK;
    p->hlen = mbedtls_md_get_size(info);
    if (pw_len <= block) {
        memcpy(key, pw, pw_len);
    } else {
        ML_CHK_TLS(call, mbedtls_md(info, pw, pw_len, key), "pbkdf2 key");
    }
    ML_CHK_TLS(call, mbedtls_md_setup(&p->work, info, 0), "md_setup");
    for (size_t r = 0; r < 2; r++) {
        for (size_t i = 0; i < block; i++) {
            padded[i] = (uint8_t)(key[i] ^ pad_byte[r]);
        }
        ML_CHK_TLS(call, mbedtls_md_setup(&p->pads[r], info, 0), "md_setup");
        ML_CHK_TLS(call, mbedtls_md_starts(&p->pads[r]), "md_starts");
        ML_CHK_TLS(call, mbedtls_md_update(&p->pads[r], padded, block), "md_update");
    }
cleanup:
    mbedtls_platform_zeroize(key, sizeof key);
    mbedtls_platform_zeroize(padded, sizeof padded);
    return st;
}

/* out = HMAC(password, a || b) (hlen bytes); out may be a. Returns an Mbed TLS code. */
static int prf_run(struct prf *p, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, uint8_t *out)
{
    int ret = mbedtls_md_clone(&p->work, &p->pads[0]);
    if (ret == 0) {
        ret = mbedtls_md_update(&p->work, a, a_len);
    }
    if (ret == 0 && b_len > 0) {
        ret = mbedtls_md_update(&p->work, b, b_len);
    }
    if (ret == 0) {
        ret = mbedtls_md_finish(&p->work, out);
    }
    if (ret == 0) {
        ret = mbedtls_md_clone(&p->work, &p->pads[1]);
    }
    if (ret == 0) {
        ret = mbedtls_md_update(&p->work, out, p->hlen);
    }
    if (ret == 0) {
        ret = mbedtls_md_finish(&p->work, out);
    }
    return ret;
}

/* T_i = U_1 ^ ... ^ U_c with U_1 = PRF(salt || INT(i)), U_j = PRF(U_{j-1}). */
static int pbkdf2_block(struct ml_call *call, struct prf *p, const uint8_t *salt, size_t salt_len, uint32_t index,
                        uint32_t iterations, uint8_t *t)
{
    uint8_t u[MBEDTLS_MD_MAX_SIZE];
    const uint8_t be[4] = {(uint8_t)(index >> 24), (uint8_t)(index >> 16), (uint8_t)(index >> 8), (uint8_t)index};
    int st = ML_STATUS_OK;
    ML_CHK_TLS(call, prf_run(p, salt, salt_len, be, sizeof be, u), "pbkdf2");
    memcpy(t, u, p->hlen);
    for (uint32_t j = 1; j < iterations; j++) {
        if (j % BUSY_EVERY == 0) {
            ml_busy_tick();
        }
        ML_CHK_TLS(call, prf_run(p, u, p->hlen, NULL, 0, u), "pbkdf2");
        for (size_t i = 0; i < p->hlen; i++) {
            t[i] ^= u[i];
        }
    }
cleanup:
    mbedtls_platform_zeroize(u, sizeof u);
    return st;
}

/* [alg, password, salt, iterations, length] -> derived key */
int ml_op_kdf_pbkdf2(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t alg = 0, iterations = 0, length = 0;
    const uint8_t *pw = NULL, *salt = NULL;
    size_t pw_len = 0, salt_len = 0, block = 0, n = 0;
    const mbedtls_md_info_t *info = NULL;
    uint8_t t[MBEDTLS_MD_MAX_SIZE];
    uint8_t *out = NULL;
    struct prf p;
    int st = ML_STATUS_OK;
    prf_init(&p);
    ML_CHK(ml_arg_uint(call, args, 1, &alg));
    ML_CHK(ml_arg_bytes(call, args, 2, &pw, &pw_len));
    ML_CHK(ml_arg_bytes(call, args, 3, &salt, &salt_len));
    ML_CHK(ml_arg_uint(call, args, 4, &iterations));
    ML_CHK(ml_arg_uint(call, args, 5, &length));
    ML_CHK(ml_hash_lookup(call, alg, &info, &block));
    if (iterations < 1 || iterations > ML_PBKDF2_ITERATIONS_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 4: iterations must be 1..%lu, got %llu",
                (unsigned long)ML_PBKDF2_ITERATIONS_MAX, (unsigned long long)iterations);
    }
    if (length > ML_PBKDF2_LENGTH_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 5: length must be 0..%u, got %llu", (unsigned)ML_PBKDF2_LENGTH_MAX,
                (unsigned long long)length);
    }
    if (length > ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "arg 5: length %llu exceeds the MTU limit %u", (unsigned long long)length,
                (unsigned)(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX));
    }
    out = ml_buf_alloc((size_t)length);
    if (out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu output bytes", (unsigned long)length);
    }
    ML_CHK(prf_setup(call, &p, info, block, pw, pw_len));
    for (size_t off = 0; off < length; off += n) {
        ML_CHK(pbkdf2_block(call, &p, salt, salt_len, (uint32_t)(off / p.hlen + 1), (uint32_t)iterations, t));
        n = (size_t)length - off < p.hlen ? (size_t)length - off : p.hlen;
        memcpy(out + off, t, n);
    }
    (void)cbor_encode_byte_string(result, out, (size_t)length);
cleanup:
    prf_free(&p);
    mbedtls_platform_zeroize(t, sizeof t);
    ml_buf_free(out, (size_t)length);
    return st;
}
