/* cmac and kdf ops through the protocol: CMAC contexts against Mbed TLS's
 * one-shot mbedtls_cipher_cmac (digest repeatable, update after digest,
 * copy, a mid-block state swapped out and back), the CMAC statuses, and
 * PBKDF2 against Mbed TLS's mbedtls_pkcs5_pbkdf2_hmac_ext for every digest,
 * with busy events on a long run and the bounds. */
#include <cbor.h>
#include <mbedtls/cmac.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <stdarg.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_config.h"
#include "core/protocol_ids.h"
#include "test_hal.h"
#include "test_util.h"

static uint8_t msg_buf[ML_CFG_MTU];
static uint8_t reply_buf[ML_CFG_MTU + 64];
static struct th_reply r;
static uint32_t req_id = 100;

/* Sends [id, op, args...]; `kinds` names each argument: 'u' uint64_t,
 * 't' text (const char *), 'b' bytes (const uint8_t *, size_t). Returns
 * the status of the answer (the last frame: busy events may come first). */
static uint64_t req(uint32_t op, const char *kinds, ...)
{
    CborEncoder top, items;
    va_list ap;
    va_start(ap, kinds);
    cbor_encoder_init(&top, msg_buf, sizeof msg_buf, 0);
    CHECK(cbor_encoder_create_array(&top, &items, 2 + strlen(kinds)) == CborNoError);
    (void)cbor_encode_uint(&items, req_id++);
    (void)cbor_encode_uint(&items, op);
    for (const char *k = kinds; *k != '\0'; k++) {
        if (*k == 't') {
            (void)cbor_encode_text_stringz(&items, va_arg(ap, const char *));
        } else if (*k == 'b') {
            const uint8_t *p = va_arg(ap, const uint8_t *);
            (void)cbor_encode_byte_string(&items, p, va_arg(ap, size_t));
        } else {
            (void)cbor_encode_uint(&items, va_arg(ap, uint64_t));
        }
    }
    va_end(ap);
    CHECK(cbor_encoder_close_container(&top, &items) == CborNoError);
    (void)th_call(msg_buf, cbor_encoder_get_buffer_size(&top, msg_buf), reply_buf, sizeof reply_buf);
    size_t n = th_frame_count() > 0 ? th_frame(th_frame_count() - 1, reply_buf, sizeof reply_buf) : (size_t)-1;
    CHECK(n != (size_t)-1 && th_parse(reply_buf, n, &r) && !r.is_event);
    return r.status;
}

/* The answer's byte string equals want[0..len). */
static void expect_bytes(const uint8_t *want, size_t len, const char *what)
{
    CborParser parser;
    CborValue v;
    size_t n = 0;
    CHECK_EQ(r.status, ML_STATUS_OK);
    CHECK(cbor_parser_init(r.result, r.result_len, 0, &parser, &v) == CborNoError && cbor_value_is_byte_string(&v));
    CHECK(cbor_value_get_string_length(&v, &n) == CborNoError);
    if (n != len || memcmp(r.result + r.result_len - n, want, len) != 0) {
        ml_print_hex("got ", r.result + r.result_len - n, n);
        ml_print_hex("want", want, len);
        ml_test_fail(__FILE__, __LINE__, what);
    }
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(i * seed + 7u);
    }
}

/* Each cipher and key length: contexts equal the one-shot reference over
 * pieces of every alignment; digest twice, update after digest, copy, and
 * obj_wrap/obj_unwrap of a state holding a partial block. */
ML_TEST(cmac_contexts_match_mbedtls)
{
    static const struct {
        const char *name;
        size_t key_len;
        mbedtls_cipher_type_t type;
    } ciphers[] = {{"AES", 16, MBEDTLS_CIPHER_AES_128_ECB},
                   {"AES", 24, MBEDTLS_CIPHER_AES_192_ECB},
                   {"AES", 32, MBEDTLS_CIPHER_AES_256_ECB},
                   {"DES3", 24, MBEDTLS_CIPHER_DES_EDE3_ECB}};
    static uint8_t data[700], blob[256];
    uint8_t key[32], want[16], want_all[16], want_fork[16];
    th_boot();
    fill(data, sizeof data, 13);
    for (size_t c = 0; c < sizeof ciphers / sizeof ciphers[0]; c++) {
        const mbedtls_cipher_info_t *info = mbedtls_cipher_info_from_type(ciphers[c].type);
        size_t kl = ciphers[c].key_len, bs = mbedtls_cipher_info_get_block_size(info);
        fill(key, kl, (unsigned)(c + 3));
        for (size_t cut = 0; cut <= 3 * bs + 1; cut++) {
            CHECK(mbedtls_cipher_cmac(info, key, kl * 8, data, cut, want) == 0);
            CHECK(mbedtls_cipher_cmac(info, key, kl * 8, data, sizeof data, want_all) == 0);
            CHECK_EQ(req(ML_OP_CMAC_NEW, "utb", (uint64_t)1, ciphers[c].name, key, kl), 0);
            CHECK_EQ(req(ML_OP_CMAC_UPDATE, "ub", (uint64_t)1, data, cut / 2), 0);
            CHECK_EQ(req(ML_OP_CMAC_UPDATE, "ub", (uint64_t)1, data + cut / 2, cut - cut / 2), 0);
            for (int again = 0; again < 2; again++) {
                CHECK_EQ(req(ML_OP_CMAC_DIGEST, "u", (uint64_t)1), 0);
                expect_bytes(want, bs, "digest");
            }
            /* swapped out and back mid-message, then copied */
            CHECK_EQ(req(ML_OP_OBJ_WRAP, "u", (uint64_t)1), 0);
            size_t blob_len = r.result_len;
            CHECK(blob_len <= sizeof blob);
            memcpy(blob, r.result, blob_len);
            CborParser parser;
            CborValue v;
            size_t n = sizeof blob;
            static uint8_t raw[256];
            CHECK(cbor_parser_init(blob, blob_len, 0, &parser, &v) == CborNoError);
            CHECK(cbor_value_copy_byte_string(&v, raw, &n, NULL) == CborNoError);
            CHECK_EQ(req(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)2, raw, n), 0);
            CHECK_EQ(req(ML_OP_CMAC_COPY, "uu", (uint64_t)2, (uint64_t)3), 0);
            CHECK_EQ(req(ML_OP_CMAC_UPDATE, "ub", (uint64_t)2, data + cut, sizeof data - cut), 0);
            CHECK_EQ(req(ML_OP_CMAC_DIGEST, "u", (uint64_t)2), 0);
            expect_bytes(want_all, bs, "after unwrap");
            CHECK_EQ(req(ML_OP_CMAC_UPDATE, "ub", (uint64_t)3, key, (size_t)5), 0);
            uint8_t forked[sizeof data + 5];
            memcpy(forked, data, cut);
            memcpy(forked + cut, key, 5);
            CHECK(mbedtls_cipher_cmac(info, key, kl * 8, forked, cut + 5, want_fork) == 0);
            CHECK_EQ(req(ML_OP_CMAC_DIGEST, "u", (uint64_t)3), 0);
            expect_bytes(want_fork, bs, "copy");
            CHECK_EQ(req(ML_OP_CMAC_ONESHOT, "tbb", ciphers[c].name, key, kl, data, cut), 0);
            expect_bytes(want, bs, "oneshot");
            CHECK_EQ(req(ML_OP_FREE, "u", (uint64_t)2), 0);
            CHECK_EQ(req(ML_OP_FREE, "u", (uint64_t)3), 0);
        }
    }
}

ML_TEST(cmac_statuses)
{
    uint8_t key[32] = {0};
    th_boot();
    CHECK_EQ(req(ML_OP_CMAC_ONESHOT, "tbb", "CAMELLIA", key, (size_t)16, key, (size_t)1),
             ML_STATUS_UNSUPPORTED_ALGORITHM);
    CHECK_EQ(req(ML_OP_CMAC_ONESHOT, "tbb", "ARIA", key, (size_t)16, key, (size_t)1), ML_STATUS_UNSUPPORTED_ALGORITHM);
    CHECK_EQ(req(ML_OP_CMAC_ONESHOT, "tbb", "SEED", key, (size_t)16, key, (size_t)1), ML_STATUS_UNSUPPORTED_ALGORITHM);
    CHECK_EQ(req(ML_OP_CMAC_ONESHOT, "tbb", "AES-CMAC-WITH-A-LONG-NAME", key, (size_t)16, key, (size_t)1),
             ML_STATUS_UNSUPPORTED_ALGORITHM);
    CHECK_EQ(req(ML_OP_CMAC_ONESHOT, "ubb", (uint64_t)1, key, (size_t)16, key, (size_t)1), ML_STATUS_BAD_REQUEST);
    CHECK_EQ(req(ML_OP_CMAC_NEW, "utb", (uint64_t)1, "AES", key, (size_t)20), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(req(ML_OP_CMAC_NEW, "utb", (uint64_t)1, "DES3", key, (size_t)16), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(req(ML_OP_CMAC_DIGEST, "u", (uint64_t)1), ML_STATUS_BAD_HANDLE); /* the failed new left nothing */
    CHECK_EQ(req(ML_OP_HASH_NEW, "uu", (uint64_t)1, (uint64_t)ML_HASH_SHA256), 0);
    CHECK_EQ(req(ML_OP_CMAC_UPDATE, "ub", (uint64_t)1, key, (size_t)3), ML_STATUS_WRONG_HANDLE_TYPE);
    CHECK_EQ(req(ML_OP_CMAC_COPY, "uu", (uint64_t)1, (uint64_t)2), ML_STATUS_WRONG_HANDLE_TYPE);
    CHECK_EQ(req(ML_OP_CMAC_NEW, "utb", (uint64_t)1, "AES", key, (size_t)16), ML_STATUS_HANDLE_IN_USE);
    CHECK_EQ(req(ML_OP_FREE, "u", (uint64_t)1), 0);
}

/* Every digest, outputs of 0..3 blocks and a partial one, against Mbed TLS's PBKDF2. */
ML_TEST(pbkdf2_matches_mbedtls)
{
    static const mbedtls_md_type_t types[] = {MBEDTLS_MD_MD5,    MBEDTLS_MD_SHA1,   MBEDTLS_MD_SHA224,
                                              MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA512};
    static const uint64_t ids[] = {ML_HASH_MD5,    ML_HASH_SHA1,   ML_HASH_SHA224,
                                   ML_HASH_SHA256, ML_HASH_SHA384, ML_HASH_SHA512};
    static uint8_t pw[200], salt[40], want[300];
    th_boot();
    fill(pw, sizeof pw, 5);
    fill(salt, sizeof salt, 11);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t hl = mbedtls_md_get_size(mbedtls_md_info_from_type(types[t]));
        const size_t lens[] = {0, 1, hl - 1, hl, hl + 1, 3 * hl + 3};
        const size_t pw_lens[] = {0, 8, 200}; /* 200: longer than a block, hashed first */
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            size_t pl = pw_lens[i % 3];
            uint32_t c = (uint32_t)(1 + 97 * i);
            CHECK(mbedtls_pkcs5_pbkdf2_hmac_ext(types[t], pw, pl, salt, sizeof salt, c, (uint32_t)lens[i], want) == 0);
            CHECK_EQ(req(ML_OP_KDF_PBKDF2, "ubbuu", ids[t], pw, pl, salt, sizeof salt, (uint64_t)c, (uint64_t)lens[i]),
                     0);
            expect_bytes(want, lens[i], "pbkdf2");
        }
    }
}

/* A long run sends busy events before its answer; the bounds are bad_argument. */
ML_TEST(pbkdf2_busy_and_bounds)
{
    uint8_t want[32];
    th_boot();
    th_ms_step = 20; /* the fake clock: 20 ms per tick read */
    uint32_t before = ml_busy_events_sent();
    CHECK_EQ(req(ML_OP_KDF_PBKDF2, "ubbuu", (uint64_t)ML_HASH_SHA256, (const uint8_t *)"pw", (size_t)2,
                 (const uint8_t *)"salt", (size_t)4, (uint64_t)20000, (uint64_t)32),
             0);
    th_ms_step = 1;
    CHECK(ml_busy_events_sent() - before >= 2);
    CHECK_EQ(th_frame_count(), 1 + (ml_busy_events_sent() - before));
    CHECK(mbedtls_pkcs5_pbkdf2_hmac_ext(MBEDTLS_MD_SHA256, (const uint8_t *)"pw", 2, (const uint8_t *)"salt", 4, 20000,
                                        32, want) == 0);
    expect_bytes(want, sizeof want, "long run");
    const uint64_t bad[][2] = {{0, 32}, {ML_PBKDF2_ITERATIONS_MAX + 1ull, 32}, {1, ML_PBKDF2_LENGTH_MAX + 1ull}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(req(ML_OP_KDF_PBKDF2, "ubbuu", (uint64_t)ML_HASH_SHA1, want, (size_t)1, want, (size_t)1, bad[i][0],
                     bad[i][1]),
                 ML_STATUS_BAD_ARGUMENT);
    }
    CHECK_EQ(req(ML_OP_KDF_PBKDF2, "ubbuu", (uint64_t)99, want, (size_t)1, want, (size_t)1, (uint64_t)1, (uint64_t)1),
             ML_STATUS_UNSUPPORTED_ALGORITHM);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(cmac_contexts_match_mbedtls),
        ML_CASE(cmac_statuses),
        ML_CASE(pbkdf2_matches_mbedtls),
        ML_CASE(pbkdf2_busy_and_bounds),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
