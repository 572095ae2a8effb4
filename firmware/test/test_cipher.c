/* Ciphers through the protocol against published vectors (NIST SP 800-38A
 * F.1.1 and F.2.1, the GCM paper's test cases 2 and 3 by McGrew and Viega,
 * RFC 8439 2.4.2 and 2.8.2), plus the streaming context, auth_failed without
 * plaintext, size checks and key zeroisation on free. */
#include <cbor.h>
#include <stdarg.h>
#include <string.h>

#include "core/ml_config.h"
#include "core/ml_handles.h"
#include "core/ml_heap.h"
#include "core/protocol_ids.h"
#include "test_hal.h"
#include "test_util.h"

static uint8_t rx[70000];
static uint8_t buf[70000];
static struct th_reply r;

struct bytes {
    uint8_t b[512];
    size_t n;
};

static struct bytes hx(const char *hex)
{
    struct bytes out;
    out.n = ml_unhex(hex, out.b, sizeof out.b);
    return out;
}

/* Each request gets a new id: one repeated with the same id and bytes
 * would be a resend, answered from the record (spec.md §6). */
static uint32_t next_id = 1;

/* Arguments: 't' text (const char *), 'b' bytes (const struct bytes *),
 * 'B' bytes (const uint8_t *, size_t), 'n' null, 'u' unsigned, 'T'/'F'
 * booleans. */
static bool call(unsigned op, const char *fmt, ...)
{
    CborEncoder enc, arr;
    cbor_encoder_init(&enc, buf, sizeof buf, 0);
    (void)cbor_encoder_create_array(&enc, &arr, 2 + strlen(fmt));
    (void)cbor_encode_uint(&arr, next_id++);
    (void)cbor_encode_uint(&arr, op);
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        switch (*f) {
        case 't':
            (void)cbor_encode_text_stringz(&arr, va_arg(ap, const char *));
            break;
        case 'b': {
            const struct bytes *b = va_arg(ap, const struct bytes *);
            (void)cbor_encode_byte_string(&arr, b->b, b->n);
            break;
        }
        case 'B': {
            const uint8_t *p = va_arg(ap, const uint8_t *);
            size_t n = va_arg(ap, size_t);
            (void)cbor_encode_byte_string(&arr, p, n);
            break;
        }
        case 'n':
            (void)cbor_encode_null(&arr);
            break;
        case 'u':
            (void)cbor_encode_uint(&arr, va_arg(ap, unsigned));
            break;
        default:
            (void)cbor_encode_boolean(&arr, *f == 'T');
        }
    }
    va_end(ap);
    (void)cbor_encoder_close_container(&enc, &arr);
    size_t n = th_call(buf, cbor_encoder_get_buffer_size(&enc, buf), rx, sizeof rx);
    CHECK(n != (size_t)-1);
    return n != (size_t)-1 && th_parse(rx, n, &r);
}

/* The byte string at p (a result item or an array element); NULL when not one. */
static const uint8_t *bstr_at(const uint8_t *p, size_t *len, const uint8_t **next)
{
    if ((p[0] & 0xe0) != 0x40) {
        return NULL;
    }
    size_t ai = p[0] & 0x1f, head = 1, n = ai;
    if (ai == 24) {
        n = p[1], head = 2;
    } else if (ai == 25) {
        n = (size_t)p[1] << 8 | p[2], head = 3;
    }
    *len = n;
    if (next) {
        *next = p + head + n;
    }
    return p + head;
}

static void check_bytes(const uint8_t *got, size_t got_len, const char *want_hex)
{
    struct bytes want = hx(want_hex);
    CHECK(got != NULL);
    CHECK_EQ(got_len, want.n);
    if (got != NULL && got_len == want.n && memcmp(got, want.b, want.n) != 0) {
        ml_print_hex("got ", got, got_len);
        fprintf(stderr, "  want: %s\n", want_hex);
        ml_test_fail(__FILE__, __LINE__, "bytes match");
    }
}

static void check_ok_bytes(const char *want_hex)
{
    CHECK_EQ(r.status, 0);
    size_t n = 0;
    const uint8_t *p = r.status == 0 ? bstr_at(r.result, &n, NULL) : NULL;
    check_bytes(p, n, want_hex);
}

static void check_fail(unsigned status, const char *msg)
{
    CHECK_EQ(r.status, status);
    if (strcmp(r.msg, msg) != 0) {
        fprintf(stderr, "  msg: \"%s\"\n  want: \"%s\"\n", r.msg, msg);
        ml_test_fail(__FILE__, __LINE__, "message matches");
    }
}

#define K128 "2b7e151628aed2a6abf7158809cf4f3c"
#define P1   "6bc1bee22e409f96e93d7e117393172a"

ML_TEST(aes_ecb_sp800_38a)
{
    th_boot();
    struct bytes key = hx(K128), none = hx(""), pt = hx(P1 "ae2d8a571e03ac9c9eb76fac45af8e51");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "AES", "ECB", &key, &none, &pt));
    check_ok_bytes("3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf");
    struct bytes ct = hx("3ad77bb40d7a3660a89ecaf32466ef97");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbFb", "AES", "ECB", &key, &none, &ct));
    check_ok_bytes(P1);
}

ML_TEST(aes_cbc_streaming_sp800_38a)
{
    th_boot();
    /* F.2.1 CBC-AES128.Encrypt, fed 1 + 20 + 11 bytes: each block comes out
     * as soon as it is complete; finish adds the PKCS#7 block. */
    struct bytes key = hx(K128), iv = hx("000102030405060708090a0b0c0d0e0f");
    struct bytes all = hx(P1 "ae2d8a571e03ac9c9eb76fac45af8e51");
    struct bytes a = {{0}, 1}, b = {{0}, 20}, c = {{0}, 11};
    memcpy(a.b, all.b, 1);
    memcpy(b.b, all.b + 1, 20);
    memcpy(c.b, all.b + 21, 11);
    CHECK(call(ML_OP_CIPHER_NEW, "uttbbT", 5u, "AES", "CBC", &key, &iv));
    CHECK_EQ(r.status, 0);
    CHECK(call(ML_OP_CIPHER_UPDATE, "ub", 5u, &a));
    check_ok_bytes("");
    CHECK(call(ML_OP_CIPHER_UPDATE, "ub", 5u, &b));
    check_ok_bytes("7649abac8119b246cee98e9b12e9197d");
    CHECK(call(ML_OP_CIPHER_UPDATE, "ub", 5u, &c));
    check_ok_bytes("5086cb9b507219ee95db113a917678b2");
    CHECK(call(ML_OP_CIPHER_FINISH, "u", 5u));
    CHECK_EQ(r.status, 0);
    size_t n = 0;
    (void)bstr_at(r.result, &n, NULL);
    CHECK_EQ(n, 16); /* the PKCS#7 padding block */
    CHECK(call(ML_OP_CIPHER_UPDATE, "ub", 5u, &a));
    check_fail(ML_STATUS_BAD_ARGUMENT, "cipher context 5 is finished");
    CHECK(call(ML_OP_FREE, "u", 5u));
    CHECK_EQ(r.status, 0);
}

ML_TEST(gcm_mcgrew_viega)
{
    th_boot();
    /* Test case 2: K = 0^128, IV = 0^96, P = 0^128. */
    struct bytes key = hx("00000000000000000000000000000000"), iv = hx("000000000000000000000000"), none = hx("");
    struct bytes pt = hx("00000000000000000000000000000000");
    CHECK(call(ML_OP_CIPHER_AUTH_ENCRYPT, "ttbbbbu", "AES", "GCM", &key, &iv, &none, &pt, 16u));
    CHECK_EQ(r.status, 0);
    size_t n = 0;
    const uint8_t *next = NULL;
    const uint8_t *ct = bstr_at(r.result + 1, &n, &next); /* skip the array head 0x82 */
    CHECK_EQ(r.result[0], 0x82);
    check_bytes(ct, n, "0388dace60b6a392f328c2b971b2fe78");
    const uint8_t *tag = bstr_at(next, &n, NULL);
    check_bytes(tag, n, "ab6e47d42cec13bdf53a67b21257bddf");
    struct bytes c = hx("0388dace60b6a392f328c2b971b2fe78"), t = hx("ab6e47d42cec13bdf53a67b21257bddf");
    CHECK(call(ML_OP_CIPHER_AUTH_DECRYPT, "ttbbbbb", "AES", "GCM", &key, &iv, &none, &c, &t));
    check_ok_bytes("00000000000000000000000000000000");
    /* a flipped tag bit: auth_failed, and the response carries no plaintext */
    t.b[15] ^= 1;
    CHECK(call(ML_OP_CIPHER_AUTH_DECRYPT, "ttbbbbb", "AES", "GCM", &key, &iv, &none, &c, &t));
    check_fail(ML_STATUS_AUTH_FAILED, "AES-128-GCM tag does not match: no plaintext released");
    CHECK_EQ(r.items, 4);
}

ML_TEST(chacha20_poly1305_rfc8439)
{
    th_boot();
    /* RFC 8439 2.8.2 */
    struct bytes key = hx("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    struct bytes nonce = hx("070000004041424344454647"), aad = hx("50515253c0c1c2c3c4c5c6c7");
    struct bytes pt = hx("4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a20"
                         "4966204920636f756c64206f6666657220796f75206f6e6c79206f6e652074697020666f7220746865"
                         "206675747572652c2073756e73637265656e20776f756c642062652069742e");
    CHECK(call(ML_OP_CIPHER_AUTH_ENCRYPT, "ttbbbbu", "CHACHA20", "CHACHAPOLY", &key, &nonce, &aad, &pt, 16u));
    CHECK_EQ(r.status, 0);
    size_t n = 0;
    const uint8_t *next = NULL;
    const uint8_t *ct = bstr_at(r.result + 1, &n, &next);
    check_bytes(ct, n,
                "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
                "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
                "3ff4def08e4b7a9de576d26586cec64b6116");
    const uint8_t *tag = bstr_at(next, &n, NULL);
    check_bytes(tag, n, "1ae10b594f09e26a7e902ecbd0600691");
}

ML_TEST(chacha20_rfc8439_counter0)
{
    th_boot();
    /* RFC 8439 2.4.2 uses counter 1: our counter-0 stream is the same after
     * 64 bytes of keystream, so encrypt 64 zero bytes plus the message. */
    struct bytes key = hx("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    struct bytes nonce = hx("000000000000004a00000000");
    struct bytes pt;
    memset(pt.b, 0, 64);
    struct bytes msg = hx("4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a20");
    memcpy(pt.b + 64, msg.b, msg.n);
    pt.n = 64 + msg.n;
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "CHACHA20", "STREAM", &key, &nonce, &pt));
    CHECK_EQ(r.status, 0);
    size_t n = 0;
    const uint8_t *p = bstr_at(r.result, &n, NULL);
    CHECK_EQ(n, pt.n);
    check_bytes(p + 64, n - 64, "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f59");
}

ML_TEST(names_and_sizes)
{
    th_boot();
    struct bytes k16 = hx(K128), k17 = hx(K128 "00"), iv16 = hx("000102030405060708090a0b0c0d0e0f"), d = hx(P1);
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "ARC4", "STREAM", &k16, &iv16, &d));
    check_fail(ML_STATUS_UNSUPPORTED_ALGORITHM, "ARC4 was removed from Mbed TLS 3");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "BLOWFISH", "CBC", &k16, &iv16, &d));
    check_fail(ML_STATUS_UNSUPPORTED_ALGORITHM, "BLOWFISH was removed from Mbed TLS 3");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "SERPENT", "CBC", &k16, &iv16, &d));
    check_fail(ML_STATUS_UNSUPPORTED_ALGORITHM, "unknown cipher \"SERPENT\"");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "ARIA", "XTS", &k16, &iv16, &d));
    check_fail(ML_STATUS_UNSUPPORTED_ALGORITHM, "ARIA has no XTS mode");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "AES", "CBC", &k17, &iv16, &d));
    check_fail(ML_STATUS_BAD_ARGUMENT, "AES-CBC key must be 16, 24 or 32 bytes, got 17");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "AES", "XTS", &k16, &iv16, &d));
    check_fail(ML_STATUS_BAD_ARGUMENT, "AES-XTS key must be 32 or 64 bytes, got 16");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "AES", "CTR", &k16, &k17, &d));
    check_fail(ML_STATUS_BAD_ARGUMENT, "AES-128-CTR IV must be 16 bytes, got 17");
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbub", "AES", "CTR", &k16, &iv16, 1u, &d));
    check_fail(ML_STATUS_BAD_REQUEST, "arg 5: expected a boolean");
    CHECK(call(ML_OP_CIPHER_CRYPT, "utbbTb", 1u, "CTR", &k16, &iv16, &d));
    check_fail(ML_STATUS_BAD_REQUEST, "arg 1: expected a text string");
    struct bytes k32 = hx(K128 K128);
    CHECK(call(ML_OP_CIPHER_NEW, "uttbbT", 9u, "AES", "XTS", &k32, &iv16));
    check_fail(ML_STATUS_BAD_ARGUMENT, "XTS encrypts one data unit at once: use cipher_crypt");
    CHECK(call(ML_OP_CIPHER_NEW, "uttbbT", 9u, "AES", "GCM", &k16, &iv16));
    check_fail(ML_STATUS_BAD_ARGUMENT, "GCM is an AEAD mode: use cipher_auth_encrypt/decrypt");
    CHECK_EQ(ml_handles_used(), 0);
}

static size_t zero_checked;
static void check_zero(const void *obj, size_t size);

/* The unsigned integer at p (a uint of up to 32 bits). */
static size_t uint_at(const uint8_t *p)
{
    size_t ai = p[0] & 0x1f;
    if (ai < 24) {
        return ai;
    }
    if (ai == 24) {
        return p[1];
    }
    if (ai == 25) {
        return (size_t)p[1] << 8 | p[2];
    }
    return (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
}

/* Reads a finished buffered context's whole output in 100-byte slices. */
static size_t buf_read_all(unsigned handle, uint8_t *out, size_t len)
{
    for (size_t off = 0; off < len; off += 100) {
        unsigned n = (unsigned)(len - off < 100 ? len - off : 100);
        CHECK(call(ML_OP_CIPHER_BUF_READ, "uuu", handle, (unsigned)off, n));
        CHECK_EQ(r.status, 0);
        size_t got = 0;
        const uint8_t *p = r.status == 0 ? bstr_at(r.result, &got, NULL) : NULL;
        CHECK_EQ(got, n);
        if (p == NULL || got != n) {
            return off;
        }
        memcpy(out + off, p, n);
    }
    return len;
}

/* Feeds data to a buffered context in 3 uneven pieces. */
static void buf_feed(unsigned handle, const uint8_t *data, size_t len)
{
    size_t cut1 = len / 3, cut2 = len / 3 + len / 5;
    CHECK(call(ML_OP_CIPHER_BUF_UPDATE, "uB", handle, data, cut1));
    CHECK_EQ(r.status, 0);
    CHECK(call(ML_OP_CIPHER_BUF_UPDATE, "uB", handle, data + cut1, cut2 - cut1));
    CHECK_EQ(r.status, 0);
    CHECK(call(ML_OP_CIPHER_BUF_UPDATE, "uB", handle, data + cut2, len - cut2));
    CHECK_EQ(r.status, 0);
}

ML_TEST(buffered_aead_matches_oneshot)
{
    th_boot();
    struct ml_heap_stats h0;
    ml_heap_get_stats(&h0);
    struct bytes key = hx(K128), iv = hx("cafebabefacedbaddecaf888"),
                 aad = hx("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    struct bytes pt = {{0}, 480};
    for (size_t i = 0; i < pt.n; i++) {
        pt.b[i] = (uint8_t)(i * 7 + 3);
    }
    const char *modes[] = {"GCM", "CCM"};
    for (size_t m = 0; m < 2; m++) {
        /* The one-shot op gives the reference ciphertext and tag. */
        CHECK(call(ML_OP_CIPHER_AUTH_ENCRYPT, "ttbbbbu", "AES", modes[m], &key, &iv, &aad, &pt, 12u));
        CHECK_EQ(r.status, 0);
        size_t n = 0;
        const uint8_t *next = NULL;
        struct bytes ct = {{0}, 0}, tag = {{0}, 0};
        const uint8_t *p = bstr_at(r.result + 1, &n, &next);
        memcpy(ct.b, p, n);
        ct.n = n;
        p = bstr_at(next, &n, NULL);
        memcpy(tag.b, p, n);
        tag.n = n;
        CHECK_EQ(ct.n, pt.n);
        CHECK_EQ(tag.n, 12);

        CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbTbuu", 20u, "AES", modes[m], &key, &iv, &aad, 12u, 0u));
        CHECK_EQ(r.status, 0);
        CHECK(call(ML_OP_CIPHER_BUF_READ, "uuu", 20u, 0u, 1u));
        check_fail(ML_STATUS_BAD_ARGUMENT, "buffered cipher 20 has no output before cipher_buf_finish");
        buf_feed(20, pt.b, pt.n);
        CHECK(call(ML_OP_CIPHER_BUF_FINISH, "u", 20u));
        CHECK_EQ(r.status, 0);
        CHECK_EQ(r.result[0], 0x82);
        CHECK_EQ(uint_at(r.result + 1), pt.n);
        const uint8_t *after_len = r.result + 1 + (pt.n < 24 ? 1 : pt.n < 256 ? 2 : 3);
        p = bstr_at(after_len, &n, NULL);
        CHECK(p != NULL && n == tag.n && memcmp(p, tag.b, n) == 0);
        uint8_t out[512];
        CHECK_EQ(buf_read_all(20, out, pt.n), pt.n);
        CHECK(memcmp(out, ct.b, ct.n) == 0);
        CHECK(call(ML_OP_CIPHER_BUF_READ, "uuu", 20u, 400u, 81u));
        check_fail(ML_STATUS_BAD_ARGUMENT, "read of 81 bytes at 400 is beyond the 480-byte output");
        CHECK(call(ML_OP_CIPHER_BUF_UPDATE, "ub", 20u, &pt));
        check_fail(ML_STATUS_BAD_ARGUMENT, "buffered cipher 20 is finished");
        CHECK(call(ML_OP_FREE, "u", 20u));
        CHECK_EQ(r.status, 0);

        /* Decrypt: the plaintext back, only after finish verified the tag. */
        CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbFbuu", 21u, "AES", modes[m], &key, &iv, &aad, 12u, (unsigned)ct.n));
        CHECK_EQ(r.status, 0);
        buf_feed(21, ct.b, ct.n);
        CHECK(call(ML_OP_CIPHER_BUF_FINISH, "ub", 21u, &tag));
        CHECK_EQ(r.status, 0);
        CHECK_EQ(uint_at(r.result + 1), pt.n);
        CHECK_EQ(buf_read_all(21, out, pt.n), pt.n);
        CHECK(memcmp(out, pt.b, pt.n) == 0);
        CHECK(call(ML_OP_FREE, "u", 21u));

        /* A flipped tag bit: auth_failed, and nothing can be read. */
        tag.b[0] ^= 1;
        CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbFbuu", 22u, "AES", modes[m], &key, &iv, &aad, 12u, 0u));
        buf_feed(22, ct.b, ct.n);
        CHECK(call(ML_OP_CIPHER_BUF_FINISH, "ub", 22u, &tag));
        CHECK_EQ(r.status, ML_STATUS_AUTH_FAILED);
        CHECK_EQ(r.items, 4);
        CHECK(call(ML_OP_CIPHER_BUF_READ, "uuu", 22u, 0u, 16u));
        check_fail(ML_STATUS_BAD_ARGUMENT, "buffered cipher 22 has no output (it failed)");
        CHECK(call(ML_OP_CIPHER_BUF_FINISH, "ub", 22u, &tag));
        check_fail(ML_STATUS_BAD_ARGUMENT, "buffered cipher 22 failed earlier: free it");
        CHECK(call(ML_OP_FREE, "u", 22u));
        CHECK_EQ(r.status, 0);
    }
    CHECK_EQ(ml_handles_used(), 0);
    struct ml_heap_stats h1;
    ml_heap_get_stats(&h1);
    CHECK_EQ(h1.used, h0.used);
    CHECK_EQ(h1.blocks, h0.blocks);
}

ML_TEST(buffered_xts_matches_crypt)
{
    th_boot();
    struct bytes key = hx(K128 K128 K128 K128), iv = hx("000102030405060708090a0b0c0d0e0f");
    struct bytes pt = {{0}, 333}; /* not a whole number of blocks: ciphertext stealing */
    for (size_t i = 0; i < pt.n; i++) {
        pt.b[i] = (uint8_t)(i ^ 0x5a);
    }
    CHECK(call(ML_OP_CIPHER_CRYPT, "ttbbTb", "AES", "XTS", &key, &iv, &pt));
    CHECK_EQ(r.status, 0);
    size_t n = 0;
    const uint8_t *p = bstr_at(r.result, &n, NULL);
    struct bytes ct = {{0}, n};
    memcpy(ct.b, p, n);
    CHECK_EQ(ct.n, pt.n);
    struct bytes none = hx("");
    CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbTbuu", 30u, "AES", "XTS", &key, &iv, &none, 16u, 0u));
    check_fail(ML_STATUS_BAD_ARGUMENT, "XTS takes no additional data and no tag");
    CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbTbuu", 30u, "AES", "XTS", &key, &iv, &none, 0u, (unsigned)pt.n));
    CHECK_EQ(r.status, 0);
    buf_feed(30, pt.b, pt.n);
    CHECK(call(ML_OP_CIPHER_BUF_FINISH, "un", 30u));
    CHECK_EQ(r.status, 0);
    CHECK_EQ(uint_at(r.result + 1), pt.n);
    uint8_t out[512];
    CHECK_EQ(buf_read_all(30, out, pt.n), pt.n);
    CHECK(memcmp(out, ct.b, ct.n) == 0);
    CHECK(call(ML_OP_FREE, "u", 30u));
    CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbFbuu", 31u, "AES", "XTS", &key, &iv, &none, 0u,
               100u)); /* more than announced: grows */
    buf_feed(31, ct.b, ct.n);
    CHECK(call(ML_OP_CIPHER_BUF_FINISH, "u", 31u));
    CHECK_EQ(r.status, 0);
    CHECK_EQ(buf_read_all(31, out, pt.n), pt.n);
    CHECK(memcmp(out, pt.b, pt.n) == 0);
    CHECK(call(ML_OP_FREE, "u", 31u));
    /* Streaming modes are not buffered. */
    struct bytes k16 = hx(K128);
    CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbTbuu", 32u, "AES", "CBC", &k16, &iv, &none, 0u, 0u));
    check_fail(ML_STATUS_BAD_ARGUMENT, "CBC streams: use cipher_new or cipher_crypt");
    CHECK_EQ(ml_handles_used(), 0);
}

ML_TEST(buffered_out_of_memory)
{
    th_boot();
    struct ml_heap_stats h0;
    ml_heap_get_stats(&h0);
    struct bytes key = hx(K128), iv = hx("cafebabefacedbaddecaf888"), none = hx("");
    static uint8_t chunk[ML_CFG_MTU];
    size_t cn = ML_CFG_MTU - 64;
    CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbTbuu", 40u, "AES", "GCM", &key, &iv, &none, 16u, 0u));
    CHECK_EQ(r.status, 0);
    struct ml_heap_stats hctx; /* the context alone, before any data */
    ml_heap_get_stats(&hctx);
    uint64_t st = 0;
    for (size_t i = 0; i < ML_CFG_HEAP_SIZE / cn + 2 && st == 0; i++) {
        CHECK(call(ML_OP_CIPHER_BUF_UPDATE, "uB", 40u, chunk, cn));
        st = r.status;
    }
    CHECK_EQ(st, ML_STATUS_OUT_OF_MEMORY);
    /* The buffer went back to the heap at once (the context's size depends on
     * the Mbed TLS config: compare with it, not a constant); it refuses more. */
    struct ml_heap_stats h1;
    ml_heap_get_stats(&h1);
    CHECK_EQ(h1.used, hctx.used);
    CHECK(call(ML_OP_CIPHER_BUF_UPDATE, "uB", 40u, chunk, (size_t)16));
    check_fail(ML_STATUS_BAD_ARGUMENT, "buffered cipher 40 failed earlier: free it");
    CHECK(call(ML_OP_CIPHER_BUF_FINISH, "u", 40u));
    check_fail(ML_STATUS_BAD_ARGUMENT, "buffered cipher 40 failed earlier: free it");
    CHECK(call(ML_OP_FREE, "u", 40u));
    CHECK_EQ(r.status, 0);
    ml_heap_get_stats(&h1);
    CHECK_EQ(h1.used, h0.used);
    /* Announced up front: refused before any data, and no handle remains. */
    CHECK(
        call(ML_OP_CIPHER_BUF_NEW, "uttbbTbuu", 42u, "AES", "GCM", &key, &iv, &none, 16u, (unsigned)ML_CFG_HEAP_SIZE));
    CHECK_EQ(r.status, ML_STATUS_OUT_OF_MEMORY);
    CHECK_EQ(ml_handles_used(), 0);
    ml_heap_get_stats(&h1);
    CHECK_EQ(h1.used, h0.used);
    /* The device keeps serving. */
    struct bytes pt = hx(P1);
    CHECK(call(ML_OP_CIPHER_AUTH_ENCRYPT, "ttbbbbu", "AES", "GCM", &key, &iv, &none, &pt, 16u));
    CHECK_EQ(r.status, 0);
}

ML_TEST(buffered_free_zeroises)
{
    th_boot();
    struct bytes key = hx(K128), iv = hx("cafebabefacedbaddecaf888"), aad = hx("feedface"), pt = hx(P1 P1);
    CHECK(call(ML_OP_CIPHER_BUF_NEW, "uttbbTbuu", 41u, "AES", "GCM", &key, &iv, &aad, 16u, 0u));
    CHECK(call(ML_OP_CIPHER_BUF_UPDATE, "ub", 41u, &pt));
    CHECK(call(ML_OP_CIPHER_BUF_FINISH, "u", 41u));
    CHECK_EQ(r.status, 0);
    size_t before = zero_checked;
    ml_handle_free_hook = check_zero;
    CHECK(call(ML_OP_FREE, "u", 41u));
    ml_handle_free_hook = NULL;
    CHECK_EQ(r.status, 0);
    CHECK_EQ(zero_checked, before + 1);
    CHECK_EQ(ml_handles_used(), 0);
}

static void check_zero(const void *obj, size_t size)
{
    const uint8_t *p = obj;
    for (size_t i = 0; i < size; i++) {
        CHECK_EQ(p[i], 0);
    }
    zero_checked++;
}

ML_TEST(free_zeroises)
{
    th_boot();
    struct bytes key = hx(K128), iv = hx("000102030405060708090a0b0c0d0e0f");
    CHECK(call(ML_OP_CIPHER_NEW, "uttbbT", 3u, "AES", "CBC", &key, &iv));
    CHECK_EQ(r.status, 0);
    ml_handle_free_hook = check_zero;
    CHECK(call(ML_OP_FREE, "u", 3u));
    ml_handle_free_hook = NULL;
    CHECK_EQ(r.status, 0);
    CHECK_EQ(zero_checked, 1);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(aes_ecb_sp800_38a),
        ML_CASE(aes_cbc_streaming_sp800_38a),
        ML_CASE(gcm_mcgrew_viega),
        ML_CASE(chacha20_poly1305_rfc8439),
        ML_CASE(chacha20_rfc8439_counter0),
        ML_CASE(names_and_sizes),
        ML_CASE(free_zeroises),
        ML_CASE(buffered_aead_matches_oneshot),
        ML_CASE(buffered_xts_matches_crypt),
        ML_CASE(buffered_out_of_memory),
        ML_CASE(buffered_free_zeroises),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
