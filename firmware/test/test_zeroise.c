/*
 * Zeroisation, checked in memory: secrets handed to the device (symmetric
 * keys, HMAC keys, an EC private key, buffered plaintext) and secrets it
 * made (an ECDH shared secret) are used, every object is freed, and then
 * the whole Mbed TLS heap is searched for any 8-byte piece of them, in
 * either byte order (Mbed TLS keeps big numbers as little-endian limbs).
 * A context that went back to the heap without mbedtls_platform_zeroize /
 * the *_free functions' wiping would leave its key schedule, pads, scalar
 * or buffers behind.
 */
#include <cbor.h>
#include <mbedtls/memory_buffer_alloc.h>
#include <stdarg.h>
#include <string.h>

#include "core/ml_config.h"
#include "core/ml_crc32.h"
#include "core/ml_handles.h"
#include "core/ml_heap.h"
#include "core/protocol_ids.h"
#include "link/ml_slip.h"
#include "test_hal.h"
#include "test_util.h"

/* This file's stand-in for src/core/ml_heap.c (the same three functions; with
 * them defined here the linker never takes ml_heap.c.o from the core
 * library): the same Mbed TLS buffer allocator over a buffer the test can
 * read. */
static _Alignas(16) unsigned char heap[ML_CFG_HEAP_SIZE];

void ml_heap_init(void) { mbedtls_memory_buffer_alloc_init(heap, sizeof heap); }

void ml_heap_deinit(void) { mbedtls_memory_buffer_alloc_free(); }

void ml_heap_get_stats(struct ml_heap_stats *s)
{
    size_t peak_blocks = 0;
    s->size = sizeof heap;
    mbedtls_memory_buffer_alloc_cur_get(&s->used, &s->blocks);
    mbedtls_memory_buffer_alloc_max_get(&s->peak, &peak_blocks);
}

static size_t boot_heap;

static void boot(void)
{
    th_boot();
    boot_heap = th_heap_used(); /* what boot itself keeps (the key store's state) */
}

/* Request builder: rq_begin(op, nargs), then one rq_* per argument, then
 * rq_send() runs it and returns the reply. */
static uint8_t req[ML_CFG_MTU];
static CborEncoder enc, arr;
static uint32_t next_id = 1;

static void rq_begin(uint32_t op, size_t nargs)
{
    cbor_encoder_init(&enc, req, sizeof req, 0);
    CHECK(cbor_encoder_create_array(&enc, &arr, 2 + nargs) == CborNoError);
    CHECK(cbor_encode_uint(&arr, next_id++) == CborNoError);
    CHECK(cbor_encode_uint(&arr, op) == CborNoError);
}
static void rq_uint(uint64_t v) { CHECK(cbor_encode_uint(&arr, v) == CborNoError); }
static void rq_bytes(const uint8_t *p, size_t n) { CHECK(cbor_encode_byte_string(&arr, p, n) == CborNoError); }
static void rq_text(const char *s) { CHECK(cbor_encode_text_stringz(&arr, s) == CborNoError); }
static void rq_bool(bool b) { CHECK(cbor_encode_boolean(&arr, b) == CborNoError); }
static void rq_null(void) { CHECK(cbor_encode_null(&arr) == CborNoError); }

static uint8_t reply[ML_CFG_MTU];
static struct th_reply r;

static bool to_device(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    th_rx(data, len);
    return true;
}

/* Sends the request; checks it succeeded; r.result is the result item. */
static void rq_ok(void)
{
    CHECK(cbor_encoder_close_container(&enc, &arr) == CborNoError);
    size_t len = cbor_encoder_get_buffer_size(&enc, req);
    static uint8_t body[ML_CFG_MTU + ML_CRC_SIZE];
    memcpy(body, req, len);
    uint32_t crc = ml_crc32(req, len);
    for (size_t i = 0; i < ML_CRC_SIZE; i++) {
        body[len + i] = (uint8_t)(crc >> (24 - 8 * i));
    }
    th_clear();
    CHECK(ml_slip_encode(body, len + ML_CRC_SIZE, to_device, NULL));
    /* The response is the one frame that is not an event (long operations
     * send busy events before it). */
    bool found = false;
    for (size_t i = 0; i < th_frame_count() && !found; i++) {
        size_t n = th_frame(i, reply, sizeof reply);
        found = n <= sizeof reply && th_parse(reply, n, &r) && !r.is_event;
    }
    CHECK(found);
    if (r.status != 0) {
        fprintf(stderr, "  op failed: status %llu: %s\n", (unsigned long long)r.status, r.msg);
        ml_test_fail(__FILE__, __LINE__, "request succeeds");
    }
}

/* The byte-string result of the last reply. */
static size_t result_bytes(uint8_t *out, size_t cap)
{
    CborParser p;
    CborValue v;
    size_t n = cap;
    CHECK(cbor_parser_init(r.result, r.result_len, 0, &p, &v) == CborNoError);
    CHECK(cbor_value_is_byte_string(&v));
    CHECK(cbor_value_copy_byte_string(&v, out, &n, NULL) == CborNoError);
    return n;
}

static void free_handle(uint32_t h)
{
    rq_begin(ML_OP_FREE, 1);
    rq_uint(h);
    rq_ok();
}

/* Fails when any 8-byte window of secret (as is, or reversed) is in the heap. */
static void expect_gone(const char *what, const uint8_t *secret, size_t len)
{
    enum { W = 8 };
    uint8_t rev[512];
    CHECK(len >= W && len <= sizeof rev);
    for (size_t i = 0; i < len; i++) {
        rev[i] = secret[len - 1 - i];
    }
    size_t found = 0;
    for (size_t off = 0; off + W <= len; off++) {
        for (size_t at = 0; at + W <= sizeof heap; at++) {
            if (memcmp(heap + at, secret + off, W) == 0 || memcmp(heap + at, rev + off, W) == 0) {
                found++;
                if (found == 1) {
                    fprintf(stderr, "  %s: bytes %zu..%zu found at heap offset %zu\n", what, off, off + W, at);
                }
            }
        }
    }
    if (found != 0) {
        ml_test_fail(__FILE__, __LINE__, what);
    }
}

/* Sanity: the scan sees a secret while it is live (else it proves nothing). */
static void expect_present(const char *what, const uint8_t *secret, size_t len)
{
    for (size_t at = 0; at + len <= sizeof heap; at++) {
        if (memcmp(heap + at, secret, len) == 0) {
            return;
        }
    }
    fprintf(stderr, "  %s not found while live\n", what);
    ml_test_fail(__FILE__, __LINE__, what);
}

static const uint8_t key32[32] = {0x5a, 0x3c, 0x96, 0x0f, 0xe1, 0x72, 0x4b, 0xd8, 0x27, 0x9e, 0x63,
                                  0xb0, 0x14, 0xcd, 0x85, 0x3f, 0xa2, 0x59, 0x0e, 0xf7, 0x6b, 0x31,
                                  0xc4, 0x98, 0x2d, 0x87, 0x50, 0xeb, 0x16, 0xaf, 0x79, 0x42};
static const uint8_t iv16[16] = {0};

ML_TEST(symmetric_objects)
{
    boot();
    uint8_t plain[64];
    for (size_t i = 0; i < sizeof plain; i++) {
        plain[i] = (uint8_t)(0xa5 ^ (i * 37));
    }
    /* 1: device-held key; 2: AES-256-CBC context keyed by it */
    rq_begin(ML_OP_KEY_IMPORT, 2);
    rq_uint(1);
    rq_bytes(key32, sizeof key32);
    rq_ok();
    expect_present("imported key", key32, sizeof key32);
    rq_begin(ML_OP_CIPHER_NEW, 6);
    rq_uint(2);
    rq_text("AES");
    rq_text("CBC");
    rq_uint(1);
    rq_bytes(iv16, sizeof iv16);
    rq_bool(true);
    rq_ok();
    rq_begin(ML_OP_CIPHER_UPDATE, 2);
    rq_uint(2);
    rq_bytes(plain, 40); /* leaves 8 bytes of plaintext buffered in the context */
    rq_ok();
    /* 3: HMAC-SHA256 under the same key (the context keeps its pads) */
    rq_begin(ML_OP_HMAC_NEW, 3);
    rq_uint(3);
    rq_uint(ML_HASH_SHA256);
    rq_bytes(key32, sizeof key32);
    rq_ok();
    rq_begin(ML_OP_HMAC_UPDATE, 2);
    rq_uint(3);
    rq_bytes(plain, sizeof plain);
    rq_ok();
    /* 4: buffered AES-GCM context holding the whole plaintext */
    rq_begin(ML_OP_CIPHER_BUF_NEW, 9);
    rq_uint(4);
    rq_text("AES");
    rq_text("GCM");
    rq_bytes(key32, sizeof key32);
    rq_bytes(iv16, 12);
    rq_bool(true);
    rq_bytes(plain, 8);
    rq_uint(16);
    rq_uint(sizeof plain);
    rq_ok();
    rq_begin(ML_OP_CIPHER_BUF_UPDATE, 2);
    rq_uint(4);
    rq_bytes(plain, sizeof plain);
    rq_ok();
    expect_present("buffered plaintext", plain, sizeof plain);
    /* 5: a generated key (its bytes are unknown here, so only its slot is checked by the free hook) */
    rq_begin(ML_OP_KEY_GENERATE, 2);
    rq_uint(5);
    rq_uint(32);
    rq_ok();

    for (uint32_t h = 1; h <= 5; h++) {
        free_handle(h);
    }
    CHECK_EQ(th_heap_used(), boot_heap);
    uint8_t ipad[32], opad[32];
    for (size_t i = 0; i < sizeof key32; i++) {
        ipad[i] = key32[i] ^ 0x36;
        opad[i] = key32[i] ^ 0x5c;
    }
    expect_gone("symmetric key (or AES key schedule)", key32, sizeof key32);
    expect_gone("HMAC inner pad", ipad, sizeof ipad);
    expect_gone("HMAC outer pad", opad, sizeof opad);
    expect_gone("buffered plaintext", plain, sizeof plain);
}

/* A P-256 test key (SEC1 DER) and its private scalar d. */
static const char ec_der_hex[] =
    "3077020101042084e7ffe27f95d96a524a3a106a8fc8a0e20d17fb55c5a9db14043b79541a34e3a00a06082a8648ce3d030107a144"
    "03420004deb19da485f30a65ea1460588365f0b17139aeeccc44b4a098e852410d2ee3a1e78b1f7f667e0778777da9334564f04fe4"
    "44d527ae77224fa3943bd3dda3bac5";
static const char ec_d_hex[] = "84e7ffe27f95d96a524a3a106a8fc8a0e20d17fb55c5a9db14043b79541a34e3";

ML_TEST(pk_and_kex_objects)
{
    boot();
    uint8_t der[160], d[32], hash[32], ske[200], cke[200], secret[66];
    size_t der_len = ml_unhex(ec_der_hex, der, sizeof der);
    CHECK_EQ(ml_unhex(ec_d_hex, d, sizeof d), 32);
    memset(hash, 0x11, sizeof hash);

    /* 1: the EC key, non-exportable; it signs */
    rq_begin(ML_OP_PK_IMPORT, 4);
    rq_uint(1);
    rq_bytes(der, der_len);
    rq_null();
    rq_uint(0);
    rq_ok();
    rq_begin(ML_OP_PK_SIGN, 4);
    rq_uint(1);
    rq_uint(ML_HASH_SHA256);
    rq_bytes(hash, sizeof hash);
    rq_uint(0);
    rq_ok();
    /* 2: static ECDH server on that key; 3: ephemeral client; 4: the
     * client's secret kept as a symmetric key; the server's returned */
    rq_begin(ML_OP_KEX_NEW, 5);
    rq_uint(2);
    rq_uint(1);
    rq_uint(1);
    rq_uint(3);
    rq_uint(1);
    rq_ok();
    rq_begin(ML_OP_KEX_NEW, 5);
    rq_uint(3);
    rq_uint(1);
    rq_uint(2);
    rq_uint(3);
    rq_null();
    rq_ok();
    rq_begin(ML_OP_KEX_GENERATE, 1);
    rq_uint(2);
    rq_ok();
    size_t ske_len = result_bytes(ske, sizeof ske);
    rq_begin(ML_OP_KEX_IMPORT, 2);
    rq_uint(3);
    rq_bytes(ske, ske_len);
    rq_ok();
    rq_begin(ML_OP_KEX_GENERATE, 1);
    rq_uint(3);
    rq_ok();
    size_t cke_len = result_bytes(cke, sizeof cke);
    rq_begin(ML_OP_KEX_IMPORT, 2);
    rq_uint(2);
    rq_bytes(cke, cke_len);
    rq_ok();
    rq_begin(ML_OP_KEX_SECRET, 2);
    rq_uint(2);
    rq_null();
    rq_ok();
    size_t secret_len = result_bytes(secret, sizeof secret);
    CHECK_EQ(secret_len, 32);
    rq_begin(ML_OP_KEX_SECRET, 2);
    rq_uint(3);
    rq_uint(4);
    rq_ok();
    expect_present("shared secret kept as a key", secret, secret_len);

    for (uint32_t h = 1; h <= 4; h++) {
        free_handle(h);
    }
    CHECK_EQ(th_heap_used(), boot_heap);
    expect_gone("EC private scalar", d, sizeof d);
    expect_gone("ECDH shared secret", secret, secret_len);
}

/* Reads the next DER INTEGER at *p (tag 02, definite length); returns its
 * value without leading zero bytes, or NULL. */
static const uint8_t *der_integer(const uint8_t **p, const uint8_t *end, size_t *len)
{
    if (end - *p < 2 || (*p)[0] != 0x02) {
        return NULL;
    }
    size_t n = (*p)[1];
    const uint8_t *v = *p + 2;
    if (n & 0x80) {
        size_t k = n & 0x7f;
        if (k == 0 || k > 2 || (size_t)(end - v) < k) {
            return NULL;
        }
        n = 0;
        for (size_t i = 0; i < k; i++) {
            n = n << 8 | v[i];
        }
        v += k;
    }
    if ((size_t)(end - v) < n) {
        return NULL;
    }
    *p = v + n;
    while (n > 1 && *v == 0) {
        v++;
        n--;
    }
    *len = n;
    return v;
}

/* A 2048-bit MODP group (RFC 3526 group 14) prime, generator 2. */
static const char modp14_hex[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF";

ML_TEST(rsa_and_dh_objects)
{
    boot();
    static uint8_t der[2400];
    uint8_t hash[32], prime[256], two[1] = {2}, ske[800], cke[300], secret[256];
    memset(hash, 0x22, sizeof hash);
    /* 1: RSA-1024 generated on the device, exportable so the test learns d and p */
    rq_begin(ML_OP_PK_GENERATE, 5);
    rq_uint(1);
    rq_uint(1);
    rq_uint(1024);
    rq_uint(65537);
    rq_uint(1);
    rq_ok();
    rq_begin(ML_OP_PK_SIGN, 4);
    rq_uint(1);
    rq_uint(ML_HASH_SHA256);
    rq_bytes(hash, sizeof hash);
    rq_uint(1);
    rq_ok();
    rq_begin(ML_OP_PK_EXPORT, 2);
    rq_uint(1);
    rq_uint(1); /* private DER: PKCS#1 RSAPrivateKey */
    rq_ok();
    size_t der_len = result_bytes(der, sizeof der);
    /* SEQUENCE { version, n, e, d, p, q, ... } */
    const uint8_t *p = der, *end = der + der_len;
    CHECK(der_len > 4 && der[0] == 0x30 && der[1] == 0x82);
    p += 4;
    size_t n_len = 0, d_len = 0, p_len = 0, unused = 0;
    CHECK(der_integer(&p, end, &unused) != NULL);
    CHECK(der_integer(&p, end, &n_len) != NULL);
    CHECK(der_integer(&p, end, &unused) != NULL);
    const uint8_t *d = der_integer(&p, end, &d_len);
    const uint8_t *pp = der_integer(&p, end, &p_len);
    CHECK(d != NULL && pp != NULL && n_len == 128 && p_len == 64);

    /* 2, 3: a DH exchange in group 14; the server's secret is returned */
    size_t prime_len = ml_unhex(modp14_hex, prime, sizeof prime);
    for (uint32_t h = 2; h <= 3; h++) {
        rq_begin(ML_OP_KEX_NEW, 5);
        rq_uint(h);
        rq_uint(2);
        rq_uint(h == 2 ? 1 : 2);
        CborEncoder pair;
        CHECK(cbor_encoder_create_array(&arr, &pair, 2) == CborNoError);
        CHECK(cbor_encode_byte_string(&pair, prime, prime_len) == CborNoError);
        CHECK(cbor_encode_byte_string(&pair, two, sizeof two) == CborNoError);
        CHECK(cbor_encoder_close_container(&arr, &pair) == CborNoError);
        rq_null();
        rq_ok();
    }
    rq_begin(ML_OP_KEX_GENERATE, 1);
    rq_uint(2);
    rq_ok();
    size_t ske_len = result_bytes(ske, sizeof ske);
    rq_begin(ML_OP_KEX_IMPORT, 2);
    rq_uint(3);
    rq_bytes(ske, ske_len);
    rq_ok();
    rq_begin(ML_OP_KEX_GENERATE, 1);
    rq_uint(3);
    rq_ok();
    size_t cke_len = result_bytes(cke, sizeof cke);
    rq_begin(ML_OP_KEX_IMPORT, 2);
    rq_uint(2);
    rq_bytes(cke, cke_len);
    rq_ok();
    rq_begin(ML_OP_KEX_SECRET, 2);
    rq_uint(2);
    rq_null();
    rq_ok();
    size_t secret_len = result_bytes(secret, sizeof secret);
    CHECK_EQ(secret_len, prime_len);

    for (uint32_t h = 1; h <= 3; h++) {
        free_handle(h);
    }
    CHECK_EQ(th_heap_used(), boot_heap);
    expect_gone("RSA private exponent d", d, d_len);
    expect_gone("RSA prime p", pp, p_len);
    expect_gone("DH shared secret", secret, secret_len);
}

ML_TEST(keywrap_unwrapped_keys)
{
    /* Keys unwrapped (KWP, under a device-held KEK) into a symmetric key, to
     * bytes, and into an EC private key leave nothing once freed: the unwrap
     * buffers are zeroised, the objects wiped. */
    boot();
    uint8_t secret[24], der[160], wrapped[200];
    for (size_t i = 0; i < sizeof secret; i++) {
        secret[i] = (uint8_t)(0x3c ^ (i * 53));
    }
    size_t der_len = ml_unhex(ec_der_hex, der, sizeof der);
    uint8_t d[32];
    CHECK_EQ(ml_unhex(ec_d_hex, d, sizeof d), sizeof d);
    rq_begin(ML_OP_KEY_IMPORT, 2); /* 1: the KEK */
    rq_uint(1);
    rq_bytes(key32, sizeof key32);
    rq_ok();
    rq_begin(ML_OP_KEYWRAP_WRAP, 3);
    rq_uint(1);
    rq_uint(ML_KEYWRAP_MODE_KWP);
    rq_bytes(secret, sizeof secret);
    rq_ok();
    size_t wrapped_len = result_bytes(wrapped, sizeof wrapped);
    rq_begin(ML_OP_KEYWRAP_UNWRAP_KEY, 4); /* 2: the unwrapped key */
    rq_uint(2);
    rq_uint(1);
    rq_uint(ML_KEYWRAP_MODE_KWP);
    rq_bytes(wrapped, wrapped_len);
    rq_ok();
    expect_present("unwrapped key", secret, sizeof secret);
    free_handle(2);
    expect_gone("key unwrapped into a device key", secret, sizeof secret);
    rq_begin(ML_OP_KEYWRAP_UNWRAP, 3);
    rq_uint(1);
    rq_uint(ML_KEYWRAP_MODE_KWP);
    rq_bytes(wrapped, wrapped_len);
    rq_ok();
    expect_gone("key unwrapped to bytes", secret, sizeof secret);
    rq_begin(ML_OP_KEYWRAP_WRAP, 3);
    rq_uint(1);
    rq_uint(ML_KEYWRAP_MODE_KWP);
    rq_bytes(der, der_len);
    rq_ok();
    wrapped_len = result_bytes(wrapped, sizeof wrapped);
    rq_begin(ML_OP_KEYWRAP_UNWRAP_PK, 5); /* 3: the unwrapped EC key */
    rq_uint(3);
    rq_uint(1);
    rq_uint(ML_KEYWRAP_MODE_KWP);
    rq_bytes(wrapped, wrapped_len);
    rq_uint(0);
    rq_ok();
    free_handle(3);
    free_handle(1);
    CHECK_EQ(th_heap_used(), boot_heap);
    expect_gone("unwrapped EC private scalar", d, sizeof d);
}

static size_t hook_calls, hook_nonzero;

static void check_zero(const void *obj, size_t size)
{
    const uint8_t *p = obj;
    hook_calls++;
    for (size_t i = 0; i < size; i++) {
        hook_nonzero += p[i] != 0;
    }
}

ML_TEST(every_object_type_zeroised_on_free)
{
    /* The handle table's own guarantee, for each type of object: the
     * object's memory is all zero before it goes back to the heap. */
    boot();
    uint8_t der[160];
    size_t der_len = ml_unhex(ec_der_hex, der, sizeof der);
    hook_calls = hook_nonzero = 0;
    ml_handle_free_hook = check_zero;
    rq_begin(ML_OP_HASH_NEW, 2); /* ML_HT_HASH */
    rq_uint(1);
    rq_uint(ML_HASH_SHA512);
    rq_ok();
    rq_begin(ML_OP_HMAC_NEW, 3); /* ML_HT_HMAC */
    rq_uint(2);
    rq_uint(ML_HASH_SHA1);
    rq_bytes(key32, 20);
    rq_ok();
    rq_begin(ML_OP_CIPHER_NEW, 6); /* ML_HT_CIPHER */
    rq_uint(3);
    rq_text("CHACHA20");
    rq_text("STREAM");
    rq_bytes(key32, 32);
    rq_bytes(iv16, 12);
    rq_bool(false);
    rq_ok();
    rq_begin(ML_OP_KEY_IMPORT, 2); /* ML_HT_SYMKEY */
    rq_uint(4);
    rq_bytes(key32, 16);
    rq_ok();
    rq_begin(ML_OP_CIPHER_BUF_NEW, 9); /* ML_HT_CIPHER_BUF */
    rq_uint(5);
    rq_text("AES");
    rq_text("XTS");
    rq_bytes(key32, 32);
    rq_bytes(iv16, 16);
    rq_bool(true);
    rq_bytes(iv16, 0);
    rq_uint(0);
    rq_uint(32);
    rq_ok();
    rq_begin(ML_OP_PK_IMPORT, 4); /* ML_HT_PK */
    rq_uint(6);
    rq_bytes(der, der_len);
    rq_null();
    rq_uint(1);
    rq_ok();
    rq_begin(ML_OP_KEX_NEW, 5); /* ML_HT_KEX */
    rq_uint(7);
    rq_uint(1);
    rq_uint(1);
    rq_uint(12);
    rq_null();
    rq_ok();
    rq_begin(ML_OP_KEX_GENERATE, 1);
    rq_uint(7);
    rq_ok();
    for (uint32_t h = 1; h <= 7; h++) {
        free_handle(h);
    }
    ml_handle_free_hook = NULL;
    CHECK_EQ(hook_calls, 7);
    CHECK_EQ(hook_nonzero, 0);
    CHECK_EQ(th_heap_used(), boot_heap);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(symmetric_objects),      ML_CASE(pk_and_kex_objects),
        ML_CASE(rsa_and_dh_objects),     ML_CASE(every_object_type_zeroised_on_free),
        ML_CASE(keywrap_unwrapped_keys),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
