/* obj_wrap / obj_unwrap through the protocol: every swappable type is
 * wrapped, unwrapped under another handle and carries on exactly (digests
 * and MACs against Mbed TLS's one-piece results, keys sign and stay
 * non-exportable, a device-held key MACs as its bytes do); blobs altered in
 * any byte, truncated, from an earlier boot or relabelled as another type
 * fail closed; unswappable types and failures leave the handle live; the
 * handle table and the heap end at their baseline. Prints the blob sizes. */
#include <cbor.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <stdarg.h>
#include <string.h>

#include "core/ml_config.h"
#include "core/ml_device.h"
#include "core/ml_handles.h"
#include "core/ml_rng.h"
#include "core/protocol_ids.h"
#include "test_hal.h"
#include "test_util.h"

#define DAMAGED "wrapped state from another boot or damaged"

static uint8_t msg[ML_CFG_MTU];
static uint8_t frame[ML_CFG_MTU];
static struct th_reply r;
static uint32_t next_id = 1;

/* Runs op with arguments described by fmt: 'u' uint64_t, 'b' bytes
 * (const uint8_t *, size_t), 't' text, 'n' null, 'f' false. The reply is
 * in r (one frame: tests that generate keys stop the fake clock, so no
 * busy event comes first). */
static void op(uint32_t code, const char *fmt, ...)
{
    CborEncoder enc, arr;
    va_list ap;
    cbor_encoder_init(&enc, msg, sizeof msg, 0);
    CborError err = cbor_encoder_create_array(&enc, &arr, 2 + strlen(fmt));
    err |= cbor_encode_uint(&arr, next_id++);
    err |= cbor_encode_uint(&arr, code);
    va_start(ap, fmt);
    for (const char *f = fmt; *f != '\0'; f++) {
        if (*f == 'u') {
            err |= cbor_encode_uint(&arr, va_arg(ap, uint64_t));
        } else if (*f == 'b') {
            const uint8_t *p = va_arg(ap, const uint8_t *);
            err |= cbor_encode_byte_string(&arr, p, va_arg(ap, size_t));
        } else if (*f == 't') {
            err |= cbor_encode_text_stringz(&arr, va_arg(ap, const char *));
        } else if (*f == 'n') {
            err |= cbor_encode_null(&arr);
        } else {
            err |= cbor_encode_boolean(&arr, false);
        }
    }
    va_end(ap);
    err |= cbor_encoder_close_container(&enc, &arr);
    CHECK(err == CborNoError);
    size_t n = th_call(msg, cbor_encoder_get_buffer_size(&enc, msg), frame, sizeof frame);
    if (n == (size_t)-1 || !th_parse(frame, n, &r) || r.is_event) {
        fprintf(stderr, "  op %lu: no reply\n", (unsigned long)code);
        ml_test_fail(__FILE__, __LINE__, "one reply frame");
    }
}

/* The reply has `status` and, for errors, a message containing `part`. */
static void expect_fail(uint64_t status, const char *part)
{
    if (r.status != status || (status != 0 && strstr(r.msg, part) == NULL)) {
        fprintf(stderr, "  got %llu \"%s\", want %llu \"...%s...\"\n", (unsigned long long)r.status, r.msg,
                (unsigned long long)status, part);
        ml_test_fail(__FILE__, __LINE__, "status and message");
    }
}

static void expect_ok(void) { expect_fail(0, ""); }

static void free_ok(uint32_t handle)
{
    op(ML_OP_FREE, "u", (uint64_t)handle);
    expect_ok();
}

/* Copies the ok result, a byte string, into out; returns its length. */
static size_t result_bytes(uint8_t *out, size_t cap)
{
    CborParser p;
    CborValue v;
    size_t n = cap;
    expect_ok();
    if (cbor_parser_init(r.result, r.result_len, 0, &p, &v) != CborNoError || !cbor_value_is_byte_string(&v) ||
        cbor_value_copy_byte_string(&v, out, &n, NULL) != CborNoError) {
        ml_test_fail(__FILE__, __LINE__, "result is a byte string");
        return 0;
    }
    return n;
}

static void expect_bytes(const uint8_t *want, size_t len)
{
    uint8_t got[MBEDTLS_MD_MAX_SIZE];
    size_t n = result_bytes(got, sizeof got);
    if (n != len || memcmp(got, want, len) != 0) {
        ml_print_hex("got ", got, n);
        ml_print_hex("want", want, len);
        ml_test_fail(__FILE__, __LINE__, "bytes match");
    }
}

struct blob {
    uint8_t b[4096];
    size_t n;
};

/* Wraps handle into blob and checks the handle is gone. */
static void wrap(uint32_t handle, struct blob *blob)
{
    op(ML_OP_OBJ_WRAP, "u", (uint64_t)handle);
    blob->n = result_bytes(blob->b, sizeof blob->b);
    op(ML_OP_FREE, "u", (uint64_t)handle);
    expect_fail(ML_STATUS_BAD_HANDLE, "not live");
}

static void unwrap(uint32_t handle, const struct blob *blob)
{
    op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)handle, blob->b, blob->n);
    expect_ok();
}

/* Boots and returns the heap in use after boot. */
static size_t boot(void)
{
    th_boot();
    return th_heap_used();
}

static void expect_baseline(size_t heap)
{
    CHECK_EQ(ml_handles_used(), 0);
    CHECK_EQ(th_heap_used(), heap);
}

static uint8_t data[3000];

static void fill_data(void)
{
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(i * 31 + 7);
    }
}

/* Every hash_algs entry (protocol_ids.h). */
#define HASH_ROW(id, md_type, digest_size, block_size) {(id), (md_type), #md_type},
static const struct {
    uint32_t id;
    mbedtls_md_type_t type;
    const char *name;
} algs[] = {ML_HASH_ALG_TABLE(HASH_ROW)};
#undef HASH_ROW
#define NALGS (sizeof algs / sizeof algs[0])

/* Feeds 1000 bytes, swaps out and in (handle 1 -> 2), feeds the rest: the
 * digest equals the one-piece digest of all 3000 bytes. */
ML_TEST(hash_continues_after_swap)
{
    struct blob blob;
    fill_data();
    size_t heap = boot();
    for (size_t a = 0; a < NALGS; a++) {
        uint8_t want[MBEDTLS_MD_MAX_SIZE];
        const mbedtls_md_info_t *info = mbedtls_md_info_from_type(algs[a].type);
        CHECK(mbedtls_md(info, data, sizeof data, want) == 0);
        op(ML_OP_HASH_NEW, "uu", (uint64_t)1, (uint64_t)algs[a].id);
        expect_ok();
        op(ML_OP_HASH_UPDATE, "ub", (uint64_t)1, data, (size_t)1000);
        expect_ok();
        wrap(1, &blob);
        unwrap(2, &blob);
        op(ML_OP_HASH_UPDATE, "ub", (uint64_t)2, data + 1000, sizeof data - 1000);
        expect_ok();
        op(ML_OP_HASH_DIGEST, "u", (uint64_t)2);
        expect_bytes(want, mbedtls_md_get_size(info));
        free_ok(2);
    }
    expect_baseline(heap);
}

/* The same for HMAC contexts, keys shorter and longer than the block. */
ML_TEST(hmac_continues_after_swap)
{
    static const size_t key_lens[] = {0, 20, 200};
    struct blob blob;
    fill_data();
    size_t heap = boot();
    for (size_t a = 0; a < NALGS; a++) {
        for (size_t k = 0; k < sizeof key_lens / sizeof key_lens[0]; k++) {
            uint8_t want[MBEDTLS_MD_MAX_SIZE];
            const mbedtls_md_info_t *info = mbedtls_md_info_from_type(algs[a].type);
            const uint8_t *key = data + 2500;
            CHECK(mbedtls_md_hmac(info, key, key_lens[k], data, 2000, want) == 0);
            op(ML_OP_HMAC_NEW, "uub", (uint64_t)1, (uint64_t)algs[a].id, key, key_lens[k]);
            expect_ok();
            op(ML_OP_HMAC_UPDATE, "ub", (uint64_t)1, data, (size_t)700);
            expect_ok();
            wrap(1, &blob);
            unwrap(2, &blob);
            op(ML_OP_HMAC_UPDATE, "ub", (uint64_t)2, data + 700, (size_t)1300);
            expect_ok();
            op(ML_OP_HMAC_DIGEST, "u", (uint64_t)2);
            expect_bytes(want, mbedtls_md_get_size(info));
            free_ok(2);
        }
    }
    expect_baseline(heap);
}

/* A pk key under handle `h` signs a SHA-256 digest that pk_verify accepts. */
static void expect_signs(uint32_t h)
{
    uint8_t digest[32], sig[600];
    size_t sig_len = 0;
    CHECK(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data, 100, digest) == 0);
    op(ML_OP_PK_SIGN, "uubu", (uint64_t)h, (uint64_t)ML_HASH_SHA256, digest, sizeof digest, (uint64_t)0);
    sig_len = result_bytes(sig, sizeof sig);
    op(ML_OP_PK_VERIFY, "uubbu", (uint64_t)h, (uint64_t)ML_HASH_SHA256, digest, sizeof digest, sig, sig_len,
       (uint64_t)0);
    expect_ok();
    CHECK(r.result_len == 1 && r.result[0] == 0xf5); /* true */
}

/* Generates a key under handle 1, swaps it to handle 2 and checks it:
 * same public key, signs, exportable exactly as before. */
static void pk_round_trip(uint64_t type, uint64_t param, uint64_t flags, struct blob *blob)
{
    static uint8_t pub[1024], pub2[1024], priv[4096];
    size_t pub_len = 0;
    th_ms_step = 0; /* no busy events during generation */
    op(ML_OP_PK_GENERATE, "uuuuu", (uint64_t)1, type, param, (uint64_t)(type == ML_PK_TYPE_RSA ? 65537 : 0), flags);
    th_ms_step = 1;
    expect_ok();
    op(ML_OP_PK_EXPORT, "uu", (uint64_t)1, (uint64_t)ML_PK_EXPORT_FORMAT_PUBLIC_DER);
    pub_len = result_bytes(pub, sizeof pub);
    wrap(1, blob);
    unwrap(2, blob);
    op(ML_OP_PK_EXPORT, "uu", (uint64_t)2, (uint64_t)ML_PK_EXPORT_FORMAT_PUBLIC_DER);
    CHECK(result_bytes(pub2, sizeof pub2) == pub_len && memcmp(pub, pub2, pub_len) == 0);
    expect_signs(2);
    op(ML_OP_PK_EXPORT, "uu", (uint64_t)2, (uint64_t)ML_PK_EXPORT_FORMAT_PRIVATE_DER);
    if ((flags & ML_PK_FLAG_EXPORTABLE) != 0) {
        CHECK(result_bytes(priv, sizeof priv) > 0);
    } else {
        expect_fail(ML_STATUS_NOT_EXPORTABLE, "");
    }
}

ML_TEST(pk_keys_continue_after_swap)
{
    struct blob blob;
    fill_data();
    size_t heap = boot();
    pk_round_trip(ML_PK_TYPE_EC, ML_CURVE_SECP256R1, 0, &blob);
    fprintf(stderr, "  blob: EC P-256 private key %zu bytes\n", blob.n);
    free_ok(2);
    pk_round_trip(ML_PK_TYPE_EC, ML_CURVE_SECP384R1, ML_PK_FLAG_EXPORTABLE, &blob);
    free_ok(2);
    pk_round_trip(ML_PK_TYPE_RSA, 2048, 0, &blob);
    fprintf(stderr, "  blob: RSA-2048 private key %zu bytes\n", blob.n);
    /* a public-only key (imported from the public DER) swaps too */
    static uint8_t pub[1024];
    op(ML_OP_PK_EXPORT, "uu", (uint64_t)2, (uint64_t)ML_PK_EXPORT_FORMAT_PUBLIC_DER);
    size_t pub_len = result_bytes(pub, sizeof pub);
    op(ML_OP_PK_IMPORT, "ubnu", (uint64_t)3, pub, pub_len, (uint64_t)0);
    expect_ok();
    wrap(3, &blob);
    unwrap(4, &blob);
    op(ML_OP_PK_INFO, "u", (uint64_t)4);
    expect_ok();
    CborParser parser;
    CborValue map, priv;
    bool has_private = true;
    CHECK(cbor_parser_init(r.result, r.result_len, 0, &parser, &map) == CborNoError &&
          cbor_value_map_find_value(&map, "private", &priv) == CborNoError &&
          cbor_value_get_boolean(&priv, &has_private) == CborNoError);
    CHECK(!has_private);
    free_ok(4);
    free_ok(2);
    expect_baseline(heap);
}

/* A device-held key keeps its bytes: HMAC with the unwrapped handle equals
 * HMAC with the bytes. */
ML_TEST(symmetric_key_continues_after_swap)
{
    uint8_t want[32];
    struct blob blob;
    fill_data();
    size_t heap = boot();
    CHECK(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data, 32, data + 100, 500, want) == 0);
    op(ML_OP_KEY_IMPORT, "ub", (uint64_t)1, data, (size_t)32);
    expect_ok();
    wrap(1, &blob);
    fprintf(stderr, "  blob: 32-byte symmetric key %zu bytes\n", blob.n);
    unwrap(2, &blob);
    op(ML_OP_HMAC_ONESHOT, "uub", (uint64_t)ML_HASH_SHA256, (uint64_t)2, data + 100, (size_t)500);
    expect_bytes(want, sizeof want);
    free_ok(2);
    expect_baseline(heap);
}

/* Wraps a SHA-256 context fed 1000 bytes, made under `handle`. */
static void wrap_sha256(uint32_t handle, struct blob *blob)
{
    op(ML_OP_HASH_NEW, "uu", (uint64_t)handle, (uint64_t)ML_HASH_SHA256);
    expect_ok();
    op(ML_OP_HASH_UPDATE, "ub", (uint64_t)handle, data, (size_t)1000);
    expect_ok();
    wrap(handle, blob);
}

/* Flipping any bit of any byte, truncating, extending, or relabelling the
 * type fails closed; the table and heap are untouched and the intact blob
 * still unwraps afterwards. */
ML_TEST(altered_blobs_fail)
{
    struct blob blob, bad;
    fill_data();
    size_t heap = boot();
    wrap_sha256(1, &blob);
    for (size_t i = 0; i < blob.n; i++) {
        bad = blob;
        bad.b[i] ^= (uint8_t)(1u << (i % 8));
        op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)2, bad.b, bad.n);
        expect_fail(ML_STATUS_BAD_ARGUMENT, DAMAGED);
    }
    for (size_t n = 0; n < blob.n; n += 7) {
        op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)2, blob.b, n);
        expect_fail(ML_STATUS_BAD_ARGUMENT, DAMAGED);
    }
    bad = blob;
    bad.b[bad.n++] = 0;
    op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)2, bad.b, bad.n);
    expect_fail(ML_STATUS_BAD_ARGUMENT, DAMAGED);
    const uint8_t types[] = {ML_HT_HMAC, ML_HT_PK, ML_HT_SYMKEY, ML_HT_CIPHER, 0, 0xff};
    for (size_t t = 0; t < sizeof types; t++) {
        bad = blob;
        bad.b[0] = types[t];
        op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)2, bad.b, bad.n);
        expect_fail(ML_STATUS_BAD_ARGUMENT, DAMAGED);
    }
    CHECK_EQ(ml_handles_used(), 0);
    CHECK_EQ(th_heap_used(), heap);
    unwrap(2, &blob);
    free_ok(2);
    expect_baseline(heap);
}

/* A blob authenticated under this boot's key whose plaintext names another
 * type than its label (only a firmware bug could make one) fails closed. */
ML_TEST(type_inside_must_match_label)
{
    const uint8_t *key = NULL;
    uint8_t aad[9], pt[2 + 1 + sizeof(mbedtls_sha256_context)] = {ML_HT_HMAC, 1, MBEDTLS_MD_SHA256};
    struct blob forged = {.n = 1 + 12 + sizeof pt + 16};
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    size_t heap = boot();
    key = ml_rng_wrap_key();
    CHECK(key != NULL);
    memcpy(aad, ml_device.boot_id, 8);
    aad[8] = ML_HT_HASH;
    forged.b[0] = ML_HT_HASH;
    memset(forged.b + 1, 0x42, 12);
    CHECK(mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256) == 0);
    CHECK(mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, sizeof pt, forged.b + 1, 12, aad, sizeof aad, pt,
                                    forged.b + 13, 16, forged.b + 13 + sizeof pt) == 0);
    mbedtls_gcm_free(&gcm);
    op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)2, forged.b, forged.n);
    expect_fail(ML_STATUS_BAD_ARGUMENT, DAMAGED);
    /* the same plaintext labelled correctly authenticates: the test forges right */
    pt[0] = ML_HT_HASH;
    mbedtls_gcm_init(&gcm);
    CHECK(mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256) == 0);
    CHECK(mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, sizeof pt, forged.b + 1, 12, aad, sizeof aad, pt,
                                    forged.b + 13, 16, forged.b + 13 + sizeof pt) == 0);
    mbedtls_gcm_free(&gcm);
    op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)2, forged.b, forged.n);
    expect_ok();
    free_ok(2);
    expect_baseline(heap);
}

/* A blob from the previous boot fails; the wrap key is zeroised at
 * shutdown and a new one drawn at boot. */
ML_TEST(previous_boot_fails)
{
    struct blob blob;
    uint8_t old_key[ML_RNG_WRAP_KEY_SIZE];
    fill_data();
    (void)boot();
    wrap_sha256(1, &blob);
    const uint8_t *key = ml_rng_wrap_key();
    memcpy(old_key, key, sizeof old_key);
    th_shutdown();
    CHECK(ml_rng_wrap_key() == NULL);
    for (size_t i = 0; i < ML_RNG_WRAP_KEY_SIZE; i++) {
        CHECK_EQ(key[i], 0);
    }
    size_t heap = boot();
    CHECK(memcmp(ml_rng_wrap_key(), old_key, sizeof old_key) != 0);
    op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)1, blob.b, blob.n);
    expect_fail(ML_STATUS_BAD_ARGUMENT, DAMAGED);
    expect_baseline(heap);
}

/* Cipher and key-exchange contexts cannot swap; failures of obj_wrap
 * (unswappable, not live, too large for the MTU) leave the handle live. */
ML_TEST(wrap_failures_keep_the_handle)
{
    static const uint8_t key[16], iv[16];
    struct blob blob;
    fill_data();
    size_t heap = boot();
    op(ML_OP_CIPHER_NEW, "uttbbf", (uint64_t)1, "AES", "CBC", key, sizeof key, iv, sizeof iv);
    expect_ok();
    op(ML_OP_OBJ_WRAP, "u", (uint64_t)1);
    expect_fail(ML_STATUS_WRONG_HANDLE_TYPE, "cipher context: it cannot be swapped out");
    op(ML_OP_CIPHER_UPDATE, "ub", (uint64_t)1, data, (size_t)16);
    expect_ok();
    op(ML_OP_OBJ_WRAP, "u", (uint64_t)9);
    expect_fail(ML_STATUS_BAD_HANDLE, "not live");
    free_ok(1);
    th_shutdown();
    th_mtu = 256; /* a P-521 key's blob (~260 bytes) no longer fits */
    heap = boot();
    op(ML_OP_PK_GENERATE, "uuuuu", (uint64_t)1, (uint64_t)ML_PK_TYPE_EC, (uint64_t)ML_CURVE_SECP521R1, (uint64_t)0,
       (uint64_t)0);
    expect_ok();
    op(ML_OP_OBJ_WRAP, "u", (uint64_t)1);
    expect_fail(ML_STATUS_TOO_LARGE, "does not fit the MTU");
    expect_signs(1);
    op(ML_OP_HASH_NEW, "uu", (uint64_t)2, (uint64_t)ML_HASH_SHA256);
    expect_ok();
    wrap(2, &blob); /* a digest context still fits */
    free_ok(1);
    expect_baseline(heap);
}

/* unwrap onto a live handle is handle_in_use and changes nothing. A blob
 * may be unwrapped again in the same boot: each unwrap restores the state
 * it was made from, so an old blob brings back an older state. */
ML_TEST(unwrap_in_use_and_replay)
{
    struct blob blob, later;
    uint8_t want_a[32], want_ab[32];
    fill_data();
    size_t heap = boot();
    CHECK(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data, 1000, want_a) == 0);
    CHECK(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), data, 2000, want_ab) == 0);
    wrap_sha256(1, &blob);
    op(ML_OP_KEY_IMPORT, "ub", (uint64_t)5, data, (size_t)16);
    expect_ok();
    op(ML_OP_OBJ_UNWRAP, "ub", (uint64_t)5, blob.b, blob.n);
    expect_fail(ML_STATUS_HANDLE_IN_USE, "already live");
    free_ok(5);
    unwrap(2, &blob);
    op(ML_OP_HASH_UPDATE, "ub", (uint64_t)2, data + 1000, (size_t)1000);
    expect_ok();
    wrap(2, &later);
    /* same size, a fresh nonce */
    CHECK(later.n == blob.n && memcmp(later.b + 1, blob.b + 1, 12) != 0);
    unwrap(3, &blob); /* the older state */
    unwrap(4, &later);
    op(ML_OP_HASH_DIGEST, "u", (uint64_t)3);
    expect_bytes(want_a, sizeof want_a);
    op(ML_OP_HASH_DIGEST, "u", (uint64_t)4);
    expect_bytes(want_ab, sizeof want_ab);
    free_ok(3);
    free_ok(4);
    expect_baseline(heap);
}

/* Blob sizes per type (stderr), and their exact values for digests. */
ML_TEST(blob_sizes)
{
    struct blob blob;
    fill_data();
    size_t heap = boot();
    const uint64_t hashes[] = {ML_HASH_SHA256, ML_HASH_SHA512, ML_HASH_SHA3_256};
    for (size_t i = 0; i < 3; i++) {
        op(ML_OP_HASH_NEW, "uu", (uint64_t)1, hashes[i]);
        expect_ok();
        wrap(1, &blob);
        fprintf(stderr, "  blob: hash %llu %zu bytes\n", (unsigned long long)hashes[i], blob.n);
    }
    op(ML_OP_HMAC_NEW, "uub", (uint64_t)1, (uint64_t)ML_HASH_SHA256, data, (size_t)32);
    expect_ok();
    wrap(1, &blob);
    fprintf(stderr, "  blob: hmac-sha256 %zu bytes\n", blob.n);
    CHECK_EQ(blob.n, 31 + 1 + sizeof(mbedtls_sha256_context) + 1 + 64);
    expect_baseline(heap);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(hash_continues_after_swap),   ML_CASE(hmac_continues_after_swap),
        ML_CASE(pk_keys_continue_after_swap), ML_CASE(symmetric_key_continues_after_swap),
        ML_CASE(altered_blobs_fail),          ML_CASE(type_inside_must_match_label),
        ML_CASE(previous_boot_fails),         ML_CASE(wrap_failures_keep_the_handle),
        ML_CASE(unwrap_in_use_and_replay),    ML_CASE(blob_sizes),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
