/* hmac, hkdf and rng ops through the protocol: HMAC contexts against Mbed
 * TLS's own mbedtls_md_hmac for every digest and key-length class, RFC 4231
 * and RFC 5869 vectors, limits and statuses. */
#include <cbor.h>
#include <mbedtls/md.h>
#include <string.h>

#include "core/ml_config.h"
#include "core/ml_handles.h"
#include "core/protocol_ids.h"
#include "test_hal.h"
#include "test_util.h"

static uint8_t req_buf[8192];
static uint8_t rsp_buf[ML_CFG_MTU + 64];

/* Request builder: [id, op, args...] with args given as a small script. */
struct arg {
    int kind; /* 0 uint, 1 bytes */
    uint64_t u;
    const uint8_t *p;
    size_t n;
};
#define U(v)            \
    {                   \
        0, (v), NULL, 0 \
    }
#define B(ptr, len)        \
    {                      \
        1, 0, (ptr), (len) \
    }

static uint64_t next_id = 1;

static bool call(uint32_t op, const struct arg *args, size_t argc, struct th_reply *r)
{
    CborEncoder enc, arr;
    cbor_encoder_init(&enc, req_buf, sizeof req_buf, 0);
    CborError err = cbor_encoder_create_array(&enc, &arr, argc + 2);
    err |= cbor_encode_uint(&arr, next_id++);
    err |= cbor_encode_uint(&arr, op);
    for (size_t i = 0; i < argc; i++) {
        err |=
            args[i].kind == 0 ? cbor_encode_uint(&arr, args[i].u) : cbor_encode_byte_string(&arr, args[i].p, args[i].n);
    }
    err |= cbor_encoder_close_container(&enc, &arr);
    CHECK(err == CborNoError);
    size_t len = th_call(req_buf, cbor_encoder_get_buffer_size(&enc, req_buf), rsp_buf, sizeof rsp_buf);
    return len != (size_t)-1 && th_parse(rsp_buf, len, r);
}

/* The payload of a bstr result item. */
static size_t bstr_of(const struct th_reply *r, const uint8_t **p)
{
    CborParser parser;
    CborValue v;
    size_t n = 0;
    if (r->status != 0 || cbor_parser_init(r->result, r->result_len, 0, &parser, &v) != CborNoError ||
        !cbor_value_is_byte_string(&v) || cbor_value_get_string_length(&v, &n) != CborNoError) {
        return (size_t)-1;
    }
    /* definite, one chunk: the payload ends the item */
    *p = r->result + r->result_len - n;
    return n;
}

static void check_bytes(const struct th_reply *r, const uint8_t *want, size_t want_len, const char *what)
{
    const uint8_t *got = NULL;
    size_t n = bstr_of(r, &got);
    if (n != want_len || memcmp(got, want, want_len) != 0) {
        fprintf(stderr, "  %s (status %llu, %s)\n", what, (unsigned long long)r->status, r->msg);
        if (n != (size_t)-1) {
            ml_print_hex("got ", got, n);
        }
        ml_print_hex("want", want, want_len);
        ml_test_fail(__FILE__, __LINE__, "bytes match");
    }
}

/* Every hash_algs entry with its block size (protocol_ids.h). */
#define HASH_ROW(id, md_type, digest_size, block_size) {(id), (md_type), (block_size)},
static const struct {
    uint32_t id;
    mbedtls_md_type_t type;
    size_t block;
} algs[] = {ML_HASH_ALG_TABLE(HASH_ROW)};
#undef HASH_ROW

/* Our pad-based HMAC contexts equal mbedtls_md_hmac for every digest and
 * key-length class; digest is repeatable, update after digest and copy work. */
ML_TEST(contexts_match_mbedtls_md_hmac)
{
    static uint8_t key[300], msg[1000];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (uint8_t)(i * 7 + 3);
    }
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = (uint8_t)(i * 13 + 1);
    }
    struct th_reply r;
    th_boot();
    for (size_t a = 0; a < sizeof algs / sizeof algs[0]; a++) {
        const mbedtls_md_info_t *info = mbedtls_md_info_from_type(algs[a].type);
        size_t b = algs[a].block;
        const size_t key_lens[] = {0, 1, b - 1, b, b + 1, 200};
        for (size_t k = 0; k < sizeof key_lens / sizeof key_lens[0]; k++) {
            size_t kl = key_lens[k];
            uint8_t want[MBEDTLS_MD_MAX_SIZE], want_full[MBEDTLS_MD_MAX_SIZE], want_fork[MBEDTLS_MD_MAX_SIZE];
            size_t ds = mbedtls_md_get_size(info);
            CHECK(mbedtls_md_hmac(info, key, kl, msg, 300, want) == 0);
            CHECK(mbedtls_md_hmac(info, key, kl, msg, sizeof msg, want_full) == 0);
            /* fork: msg[0..300) then 5 bytes of the key as data */
            uint8_t fork_msg[305];
            memcpy(fork_msg, msg, 300);
            memcpy(fork_msg + 300, key, 5);
            CHECK(mbedtls_md_hmac(info, key, kl, fork_msg, sizeof fork_msg, want_fork) == 0);

            const struct arg new_args[] = {U(1), U(algs[a].id), B(key, kl)};
            CHECK(call(ML_OP_HMAC_NEW, new_args, 3, &r) && r.status == 0);
            const struct arg up1[] = {U(1), B(msg, 100)};
            const struct arg up2[] = {U(1), B(msg + 100, 200)};
            CHECK(call(ML_OP_HMAC_UPDATE, up1, 2, &r) && r.status == 0);
            CHECK(call(ML_OP_HMAC_UPDATE, up2, 2, &r) && r.status == 0);
            const struct arg dig[] = {U(1)};
            for (int twice = 0; twice < 2; twice++) {
                CHECK(call(ML_OP_HMAC_DIGEST, dig, 1, &r));
                check_bytes(&r, want, ds, "digest");
            }
            const struct arg cp[] = {U(1), U(2)};
            CHECK(call(ML_OP_HMAC_COPY, cp, 2, &r) && r.status == 0);
            const struct arg up3[] = {U(1), B(msg + 300, sizeof msg - 300)};
            CHECK(call(ML_OP_HMAC_UPDATE, up3, 2, &r) && r.status == 0);
            CHECK(call(ML_OP_HMAC_DIGEST, dig, 1, &r));
            check_bytes(&r, want_full, ds, "update after digest");
            const struct arg up4[] = {U(2), B(key, 5)};
            CHECK(call(ML_OP_HMAC_UPDATE, up4, 2, &r) && r.status == 0);
            const struct arg dig2[] = {U(2)};
            CHECK(call(ML_OP_HMAC_DIGEST, dig2, 1, &r));
            check_bytes(&r, want_fork, ds, "copy");
            const struct arg one[] = {U(algs[a].id), B(key, kl), B(msg, sizeof msg)};
            CHECK(call(ML_OP_HMAC_ONESHOT, one, 3, &r));
            check_bytes(&r, want_full, ds, "oneshot");
            const struct arg f1[] = {U(1)};
            const struct arg f2[] = {U(2)};
            CHECK(call(ML_OP_FREE, f1, 1, &r) && r.status == 0);
            CHECK(call(ML_OP_FREE, f2, 1, &r) && r.status == 0);
        }
    }
}

/* RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe"). */
ML_TEST(rfc4231_case2)
{
    uint8_t want[32];
    ml_unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, sizeof want);
    static const char data[] = "what do ya want for nothing?";
    struct th_reply r;
    th_boot();
    const struct arg one[] = {U(ML_HASH_SHA256), B((const uint8_t *)"Jefe", 4), B((const uint8_t *)data, 28)};
    CHECK(call(ML_OP_HMAC_ONESHOT, one, 3, &r));
    check_bytes(&r, want, sizeof want, "oneshot");
    const struct arg nw[] = {U(9), U(ML_HASH_SHA256), B((const uint8_t *)"Jefe", 4)};
    const struct arg up[] = {U(9), B((const uint8_t *)data, 28)};
    const struct arg dg[] = {U(9)};
    CHECK(call(ML_OP_HMAC_NEW, nw, 3, &r) && r.status == 0);
    CHECK(call(ML_OP_HMAC_UPDATE, up, 2, &r) && r.status == 0);
    CHECK(call(ML_OP_HMAC_DIGEST, dg, 1, &r));
    check_bytes(&r, want, sizeof want, "context");
    CHECK(call(ML_OP_FREE, dg, 1, &r) && r.status == 0);
}

ML_TEST(hmac_statuses)
{
    struct th_reply r;
    th_boot();
    const struct arg bad_alg[] = {U(1), U(99), B(NULL, 0)};
    CHECK(call(ML_OP_HMAC_NEW, bad_alg, 3, &r) && r.status == ML_STATUS_UNSUPPORTED_ALGORITHM);
    const struct arg hash_new[] = {U(1), U(ML_HASH_SHA1)};
    CHECK(call(ML_OP_HASH_NEW, hash_new, 2, &r) && r.status == 0);
    const struct arg dg[] = {U(1)};
    CHECK(call(ML_OP_HMAC_DIGEST, dg, 1, &r) && r.status == ML_STATUS_WRONG_HANDLE_TYPE);
    const struct arg nw[] = {U(1), U(ML_HASH_SHA1), B(NULL, 0)};
    CHECK(call(ML_OP_HMAC_NEW, nw, 3, &r) && r.status == ML_STATUS_HANDLE_IN_USE);
    const struct arg cp[] = {U(5), U(6)};
    CHECK(call(ML_OP_HMAC_COPY, cp, 2, &r) && r.status == ML_STATUS_BAD_HANDLE);
    CHECK(call(ML_OP_FREE, dg, 1, &r) && r.status == 0);
}

/* RFC 5869 test case 1 through all three hkdf ops, and the length limits. */
ML_TEST(hkdf_rfc5869_case1_and_limits)
{
    uint8_t ikm[22], salt[13], info[10], prk[32], okm[42];
    memset(ikm, 0x0b, sizeof ikm);
    ml_unhex("000102030405060708090a0b0c", salt, sizeof salt);
    ml_unhex("f0f1f2f3f4f5f6f7f8f9", info, sizeof info);
    ml_unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", prk, sizeof prk);
    ml_unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865", okm, sizeof okm);
    struct th_reply r;
    th_boot();
    const struct arg ex[] = {U(ML_HASH_SHA256), B(salt, sizeof salt), B(ikm, sizeof ikm)};
    CHECK(call(ML_OP_HKDF_EXTRACT, ex, 3, &r));
    check_bytes(&r, prk, sizeof prk, "extract");
    const struct arg exp[] = {U(ML_HASH_SHA256), B(prk, sizeof prk), B(info, sizeof info), U(42)};
    CHECK(call(ML_OP_HKDF_EXPAND, exp, 4, &r));
    check_bytes(&r, okm, sizeof okm, "expand");
    const struct arg all[] = {U(ML_HASH_SHA256), B(salt, sizeof salt), B(ikm, sizeof ikm), B(info, sizeof info), U(42)};
    CHECK(call(ML_OP_HKDF, all, 5, &r));
    check_bytes(&r, okm, sizeof okm, "hkdf");
    const struct arg zero[] = {U(ML_HASH_SHA256), B(salt, sizeof salt), B(ikm, sizeof ikm), B(info, 0), U(0)};
    CHECK(call(ML_OP_HKDF, zero, 5, &r));
    check_bytes(&r, okm, 0, "empty okm");
    const struct arg rfc_max[] = {U(ML_HASH_SHA256), B(prk, sizeof prk), B(info, 0), U(255 * 32 + 1)};
    CHECK(call(ML_OP_HKDF_EXPAND, rfc_max, 4, &r) && r.status == ML_STATUS_BAD_ARGUMENT);
    const struct arg short_prk[] = {U(ML_HASH_SHA256), B(prk, 31), B(info, 0), U(32)};
    CHECK(call(ML_OP_HKDF_EXPAND, short_prk, 4, &r) && r.status == ML_STATUS_BAD_ARGUMENT);
    const struct arg mtu[] = {U(ML_HASH_SHA512), B(prk, sizeof prk), B(info, 0),
                              U(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX + 1)};
    CHECK(call(ML_OP_HKDF_EXPAND, mtu, 4, &r) &&
          r.status ==
              (ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX + 1 > 255 * 64 ? ML_STATUS_BAD_ARGUMENT : ML_STATUS_TOO_LARGE));
}

ML_TEST(rng_bytes_and_reseed)
{
    static uint8_t seed[ML_RNG_RESEED_MAX + 1];
    struct th_reply r;
    const uint8_t *p = NULL;
    th_boot();
    const struct arg zero[] = {U(0)};
    CHECK(call(ML_OP_RNG_BYTES, zero, 1, &r) && bstr_of(&r, &p) == 0);
    const size_t max = ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX;
    const struct arg full[] = {U(max)};
    CHECK(call(ML_OP_RNG_BYTES, full, 1, &r) && bstr_of(&r, &p) == max);
    const struct arg over[] = {U(max + 1)};
    CHECK(call(ML_OP_RNG_BYTES, over, 1, &r) && r.status == ML_STATUS_TOO_LARGE);
    uint8_t a[32], b[32];
    const struct arg n32[] = {U(32)};
    CHECK(call(ML_OP_RNG_BYTES, n32, 1, &r) && bstr_of(&r, &p) == 32);
    memcpy(a, p, 32);
    const struct arg rs[] = {B(seed, ML_RNG_RESEED_MAX)};
    CHECK(call(ML_OP_RNG_RESEED, rs, 1, &r) && r.status == 0);
    const struct arg rs0[] = {B(seed, 0)};
    CHECK(call(ML_OP_RNG_RESEED, rs0, 1, &r) && r.status == 0);
    const struct arg rs_big[] = {B(seed, sizeof seed)};
    CHECK(call(ML_OP_RNG_RESEED, rs_big, 1, &r) && r.status == ML_STATUS_BAD_ARGUMENT);
    CHECK(call(ML_OP_RNG_BYTES, n32, 1, &r) && bstr_of(&r, &p) == 32);
    memcpy(b, p, 32);
    CHECK(memcmp(a, b, 32) != 0);
}

static bool freed_zero;
static void check_zeroised(const void *obj, size_t size)
{
    const uint8_t *b = obj;
    for (size_t i = 0; i < size; i++) {
        freed_zero = freed_zero && b[i] == 0;
    }
}

/* Device-held keys (key_import / key_generate) in place of key bytes:
 * ml_arg_key resolves the handle, with the usual handle statuses. */
ML_TEST(device_held_keys)
{
    uint8_t want[32];
    ml_unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, sizeof want);
    static const char data[] = "what do ya want for nothing?";
    struct th_reply r;
    th_boot();
    const struct arg imp[] = {U(7), B((const uint8_t *)"Jefe", 4)};
    CHECK(call(ML_OP_KEY_IMPORT, imp, 2, &r) && r.status == 0);
    const struct arg one[] = {U(ML_HASH_SHA256), U(7), B((const uint8_t *)data, 28)};
    CHECK(call(ML_OP_HMAC_ONESHOT, one, 3, &r));
    check_bytes(&r, want, sizeof want, "oneshot with a key handle");
    const struct arg nw[] = {U(9), U(ML_HASH_SHA256), U(7)};
    const struct arg up[] = {U(9), B((const uint8_t *)data, 28)};
    const struct arg dg[] = {U(9)};
    CHECK(call(ML_OP_HMAC_NEW, nw, 3, &r) && r.status == 0);
    CHECK(call(ML_OP_HMAC_UPDATE, up, 2, &r) && r.status == 0);
    CHECK(call(ML_OP_HMAC_DIGEST, dg, 1, &r));
    check_bytes(&r, want, sizeof want, "context with a key handle");
    /* a digest context is not a key; a freed key is gone (and was zeroised) */
    const struct arg as_key[] = {U(ML_HASH_SHA256), U(9), B(NULL, 0)};
    CHECK(call(ML_OP_HMAC_ONESHOT, as_key, 3, &r) && r.status == ML_STATUS_WRONG_HANDLE_TYPE);
    CHECK(strstr(r.msg, "symmetric key") != NULL);
    CHECK(call(ML_OP_FREE, dg, 1, &r) && r.status == 0);
    const struct arg k7[] = {U(7)};
    freed_zero = true;
    ml_handle_free_hook = check_zeroised;
    CHECK(call(ML_OP_FREE, k7, 1, &r) && r.status == 0);
    ml_handle_free_hook = NULL;
    CHECK(freed_zero);
    CHECK(call(ML_OP_HMAC_ONESHOT, one, 3, &r) && r.status == ML_STATUS_BAD_HANDLE);
    const struct arg zero[] = {U(ML_HASH_SHA256), U(0), B(NULL, 0)};
    CHECK(call(ML_OP_HMAC_ONESHOT, zero, 3, &r) && r.status == ML_STATUS_BAD_ARGUMENT);
    /* sizes */
    static const uint8_t big[ML_SYMKEY_MAX + 1];
    const struct arg imp_big[] = {U(10), B(big, sizeof big)};
    const struct arg imp_empty[] = {U(10), B(big, 0)};
    const struct arg gen0[] = {U(10), U(0)};
    const struct arg gen_big[] = {U(10), U(ML_SYMKEY_MAX + 1)};
    CHECK(call(ML_OP_KEY_IMPORT, imp_big, 2, &r) && r.status == ML_STATUS_BAD_ARGUMENT);
    CHECK(call(ML_OP_KEY_IMPORT, imp_empty, 2, &r) && r.status == ML_STATUS_BAD_ARGUMENT);
    CHECK(call(ML_OP_KEY_GENERATE, gen0, 2, &r) && r.status == ML_STATUS_BAD_ARGUMENT);
    CHECK(call(ML_OP_KEY_GENERATE, gen_big, 2, &r) && r.status == ML_STATUS_BAD_ARGUMENT);
    /* generated keys differ and MAC consistently */
    const struct arg gen_a[] = {U(11), U(32)};
    const struct arg gen_b[] = {U(12), U(32)};
    CHECK(call(ML_OP_KEY_GENERATE, gen_a, 2, &r) && r.status == 0);
    CHECK(call(ML_OP_KEY_GENERATE, gen_b, 2, &r) && r.status == 0);
    CHECK(call(ML_OP_KEY_GENERATE, gen_b, 2, &r) && r.status == ML_STATUS_HANDLE_IN_USE);
    uint8_t ma[32], mb[32];
    const uint8_t *p = NULL;
    const struct arg one_a[] = {U(ML_HASH_SHA256), U(11), B((const uint8_t *)data, 28)};
    const struct arg one_b[] = {U(ML_HASH_SHA256), U(12), B((const uint8_t *)data, 28)};
    CHECK(call(ML_OP_HMAC_ONESHOT, one_a, 3, &r) && bstr_of(&r, &p) == 32);
    memcpy(ma, p, 32);
    CHECK(call(ML_OP_HMAC_ONESHOT, one_a, 3, &r));
    check_bytes(&r, ma, 32, "same generated key, same MAC");
    CHECK(call(ML_OP_HMAC_ONESHOT, one_b, 3, &r) && bstr_of(&r, &p) == 32);
    memcpy(mb, p, 32);
    CHECK(memcmp(ma, mb, 32) != 0);
    const struct arg k11[] = {U(11)}, k12[] = {U(12)};
    CHECK(call(ML_OP_FREE, k11, 1, &r) && r.status == 0);
    CHECK(call(ML_OP_FREE, k12, 1, &r) && r.status == 0);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(contexts_match_mbedtls_md_hmac), ML_CASE(rfc4231_case2),        ML_CASE(hmac_statuses),
        ML_CASE(hkdf_rfc5869_case1_and_limits),  ML_CASE(rng_bytes_and_reseed), ML_CASE(device_held_keys),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
