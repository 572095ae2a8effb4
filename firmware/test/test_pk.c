/* Public-key ops through the protocol: RSA and EC keys generated on the
 * device, sign/verify (PKCS#1 v1.5, PSS, ECDSA), OAEP, export/import round
 * trips and the exportable flag, checked against references nobody here
 * wrote: RFC 6979 A.2.5 (deterministic ECDSA P-256, SHA-256, "sample") and
 * an RSA-1024 key and PKCS#1 v1.5 signature made by the openssl CLI
 * (`openssl genpkey`, `openssl dgst -sha256 -sign`, `openssl pkcs8 -topk8
 * -v2 aes-256-cbc`). Also mpi_prime/mpi_random, ECDH and DH agreement, and
 * busy events during a slow call. */
#include <cbor.h>
#include <mbedtls/bignum.h>
#include <mbedtls/dhm.h>
#include <mbedtls/pem.h>
#include <mbedtls/platform.h>
#include <stdarg.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_config.h"
#include "core/ml_crc32.h"
#include "core/ml_handles.h"
#include "core/protocol_ids.h"
#include "link/ml_slip.h"
#include "ops/ml_pk.h"
#include "test_hal.h"
#include "test_util.h"

static uint8_t rx[70000];
static uint8_t buf[70000];
static struct th_reply r;

struct bytes {
    uint8_t b[4096];
    size_t n;
};

static struct bytes hx(const char *hex)
{
    struct bytes out;
    out.n = ml_unhex(hex, out.b, sizeof out.b);
    return out;
}

static const char RSA1024_PKCS8_PEM[] = "-----BEGIN PRIVATE KEY-----\n"
                                        "MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALh6liIsSEXcgiX0\n"
                                        "kCLepf2+9KhwgJjn9l0nNeskiAHn3mS5yL+Xd7BKLgIoUn2gg8NSW8E9LdP0+nJB\n"
                                        "iFvw1YjqCUchEW1X8a9t9ERRtwodcxnGoG29tRL0wh6bcpeZv/tJ1/4Jsv+65jD1\n"
                                        "TlwO//ezuPDxHLitzIbvcPsVg2dfAgMBAAECgYAXYhpznG9Qw6GPlA9NDDG4FyNF\n"
                                        "0nTKbOSSbCzucEP5Ed3joJTsjBN0ugJY7al/GQB6mo7c0JdlfXDdWKcjGETIjZqE\n"
                                        "koXf87q5g5i85G3sZD9YU4OoV9sNyqkyWayIV5MaITnXeilC1M8bLc1rzJSweMf+\n"
                                        "cb+Z1VbkYapC5T6NQQJBAPBc56EUGMk/0Ja2+suFBZZbjbXE7P8vggmB6Cod6u+L\n"
                                        "Pym3lgXg2o7PZsYy25MI5yvGjhWSv3tw0j1VakeQMSECQQDEevek5R+/pIzDobyf\n"
                                        "OYrqw3Wqe4q+eotZi+491qllGYg/7lZTXl1Rv/JfaRzCVkICXrPKvfmpKu428Q0b\n"
                                        "Mgh/AkB8fiIac+ZCliLbbPqI3uT98316X/zAT0Ly2a394nEEkQKuAMBbWxLYVOPO\n"
                                        "VBkWFs5lBfohglha/xxlWBAr8KsBAkBigvEFiSfI85zsPXyQLM689HFboAOpi1Gw\n"
                                        "/RrfgHCAUzPgMgSwWiDZ6y5/rfkQayU/gPIOVgAGVJMJkwSqPQTLAkEAz7t1Fmbn\n"
                                        "Lt60RxH8AzKlxF8LallrIrpaMlTlJDs8CZ39S2P3EOv0OaUphbDuERt/qRm4bMXw\n"
                                        "0HNCCLVXvaGkYw==\n"
                                        "-----END PRIVATE KEY-----\n";
static const char RSA1024_ENC_PEM[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
                                      "MIIC3TBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQIlnAzp1BscpICAggA\n"
                                      "MAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBCRqfj8yKOtfX4froNRdgA1BIIC\n"
                                      "gMYsOOxQ8wquZWiPU28A/mid6WjuAWdvr8PKncOJWspMCItj4ZkEoBQw0MKQXCNT\n"
                                      "aD8COdb0PV6NWlx2nZSNKeTM9iEHOYYO+ME2JSltP6hRZ/mouUyDqEFz7WN3T2ds\n"
                                      "4g1wbizvh9nnaT/5zhXCCpIe9QRRrb747GnO7p+Xypfkj6LOVXRlK+yVbVU5Q6V6\n"
                                      "1ZK7j16VjjcUGzDO1G/mVngv4bYn0S6V6avnQGyzmSxbCCjfwOdSX4nBekq/ys/m\n"
                                      "cpZPbzBJdu539xMNs+RWx2UcO03LeGxzjFSwfuz3MD+NXWa8JFsy09Q08LvnCF6r\n"
                                      "eMtWVQ7iU88iZtD4OPS71JLm8L+o314e9aeXbu3EoBHP/wGQa82BBczVUqD49vhS\n"
                                      "tTAJjZ3/kjUS23fly8TwXbRylEpD1N1YrY7kkAgGwBHbGmw4C8Hkt747kxMi0CQo\n"
                                      "M1eGdnjduYton95ONiLKd7JICF4NgIidF5sK9ZrlU4XxDKWsfCcj57p+gGqyFoBk\n"
                                      "8dvwoUFbUvTj3BkvQkKzM7WQSuADUKBGRifjY/veKpIx3G7bkg1DZLEkWcWlaHq6\n"
                                      "hQQo5yQfzvy4SEiTF2ChlrbnjEY2Nd63/ldKQn+BqDtZ1/shlm6FcXgugTtPg/tO\n"
                                      "dNv2cjIo+vC4ol/ihxievYzhIKFs23B3eTWUJzqtAW/1S8j5kMCe/Kbw5bmdcupQ\n"
                                      "KrdsLUHxBY3w89IbZhRURrgVqYrK3i61d+aD8qS1/ho32QFOzyrDCRML33hxPC35\n"
                                      "HRB2VaQV+wBTRKh8/bYFAz74op3t0aLJvlgAZbaa7PcdDiBPoBOpEj+2ZCatjDaD\n"
                                      "yQsLahc122UVUycfRJnBE/I=\n"
                                      "-----END ENCRYPTED PRIVATE KEY-----\n";
static const char RSA1024_LEGACY_PEM[] = "-----BEGIN RSA PRIVATE KEY-----\n"
                                         "Proc-Type: 4,ENCRYPTED\n"
                                         "DEK-Info: AES-128-CBC,85FD145862ECC93788756C4898CC15C9\n"
                                         "\n"
                                         "M0MS2ATY1epqQoYnT3LdQhq3Bdf42xgC3d7u+RsUArNc5frPuR9qN9ho5W/AlCNZ\n"
                                         "uHxSTx7lPmpzWpjUbnwc6qf2a3E/ofnvPS3zfY+7Z3TxaNPWRoJ9gyk1AK0EFQ4z\n"
                                         "QcoTIi8ynHWansTGal/oTGzpBk1145VCTQvCGobuBpr7ZWWztTDeHioLJhy4QbSE\n"
                                         "ELHFmjMt9kKSbi27mp56lSe7XDu1w+QR5G/Z8IEeOC+QSpNhai/W1DeSkGqG++dq\n"
                                         "QnIrOLC7/G2RCwLEOuWRRNv1zRS5YLZV+kcAVj3Ygjl2xgPnDXeVhdfmN1/P1lNn\n"
                                         "TYWIIeMzb7eL3fQZxL0m6WJ8cC3RDVmA/rATQ49bsJN6+HRD1a+7AHH952rvnYsm\n"
                                         "snJaGQRqhwyfkLzoZuXxlgkuHk309eOfi1qwG+q8q/7kLPTGI8AxQb3JxIXGmztz\n"
                                         "woGgr6WU4VrJDeF4/jAMOgEUpzBxwPjk24yH+VBQFeeQRm4Woi4vQshS/dYGgG6/\n"
                                         "Uzh70S7KBV3O3oAvy3HwwIxdpeA3bbmxbHMAkTvJ5/7FOoUXKRZIiKNeXVJ9Tn+E\n"
                                         "jNbAJLW4Y/nJSzqQ+neadQjJ7ZH/f7yLMaynnO/V6DJcf3BaWwwDXADWGQtPwXY5\n"
                                         "KqrZVmHfIpSjnYb8aWsKlPxnnAGxKDANRu1wM/Sa7z3rWKL3QhynPtSMu2XHCb2H\n"
                                         "SMsHnL6oIgSSzGammFb/OvHMsIX3iTvhbY9c9KU8kxzB7jT+JNRdM3JGjT6hl7N+\n"
                                         "/Mo1xRR6Y2y75kfz5YtA86SW3Otj0lDQYVgV+p+Hhk6nWdOMLFrmatxazOyTc6+c\n"
                                         "-----END RSA PRIVATE KEY-----\n";
/* Each request gets a new id: one repeated with the same id and bytes
 * would be a resend, answered from the record (spec.md §6). */
static uint32_t next_id = 1;

static size_t encode(unsigned op, const char *fmt, va_list ap)
{
    CborEncoder enc, arr;
    cbor_encoder_init(&enc, buf, sizeof buf, 0);
    (void)cbor_encoder_create_array(&enc, &arr, 2 + strlen(fmt));
    (void)cbor_encode_uint(&arr, next_id++);
    (void)cbor_encode_uint(&arr, op);
    for (const char *f = fmt; *f; f++) {
        switch (*f) {
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
        case 'A': { /* [bstr, bstr] */
            const struct bytes *p = va_arg(ap, const struct bytes *);
            const struct bytes *g = va_arg(ap, const struct bytes *);
            CborEncoder inner;
            (void)cbor_encoder_create_array(&arr, &inner, 2);
            (void)cbor_encode_byte_string(&inner, p->b, p->n);
            (void)cbor_encode_byte_string(&inner, g->b, g->n);
            (void)cbor_encoder_close_container(&arr, &inner);
            break;
        }
        case 'n':
            (void)cbor_encode_null(&arr);
            break;
        default: /* 'u' */
            (void)cbor_encode_uint(&arr, va_arg(ap, unsigned));
        }
    }
    (void)cbor_encoder_close_container(&enc, &arr);
    return cbor_encoder_get_buffer_size(&enc, buf);
}

static void send_frame(const uint8_t *cbor, size_t len);

/* Arguments: 'b' bytes (const struct bytes *), 'B' bytes (const uint8_t *,
 * size_t), 'A' [P, G] (two const struct bytes *), 'n' null, 'u' unsigned.
 * The reply is the last frame; any before it must be busy events (the fake
 * clock advances with every read, so a long op may send some). */
static bool call(unsigned op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t len = encode(op, fmt, ap);
    va_end(ap);
    send_frame(buf, len);
    size_t frames = th_frame_count();
    CHECK(frames >= 1);
    for (size_t i = 0; i + 1 < frames; i++) {
        size_t n = th_frame(i, rx, sizeof rx);
        CHECK(n != (size_t)-1 && th_parse(rx, n, &r) && r.is_event && r.status == ML_EVENT_BUSY);
    }
    size_t n = frames >= 1 ? th_frame(frames - 1, rx, sizeof rx) : (size_t)-1;
    CHECK(n != (size_t)-1);
    memset(&r, 0, sizeof r);
    r.status = 999;
    return n != (size_t)-1 && th_parse(rx, n, &r) && !r.is_event;
}

static void check_ok(void)
{
    if (r.status != 0) {
        fprintf(stderr, "  status %llu: %s\n", (unsigned long long)r.status, r.msg);
    }
    CHECK_EQ(r.status, 0);
}

static void check_fail(unsigned status, const char *msg_part)
{
    CHECK_EQ(r.status, status);
    if (strstr(r.msg, msg_part) == NULL) {
        fprintf(stderr, "  msg: \"%s\"\n  want a part: \"%s\"\n", r.msg, msg_part);
        ml_test_fail(__FILE__, __LINE__, "message matches");
    }
}

/* The ok result as a byte string. */
static struct bytes result_bytes(void)
{
    struct bytes out = {.n = 0};
    CHECK_EQ(r.status, 0);
    if (r.status != 0) {
        return out;
    }
    CborParser p;
    CborValue v;
    out.n = sizeof out.b;
    if (cbor_parser_init(r.result, r.result_len, 0, &p, &v) != CborNoError || !cbor_value_is_byte_string(&v) ||
        cbor_value_copy_byte_string(&v, out.b, &out.n, NULL) != CborNoError) {
        ml_test_fail(__FILE__, __LINE__, "result is a byte string");
        out.n = 0;
    }
    return out;
}

static bool result_bool(void)
{
    bool b = false;
    CHECK_EQ(r.status, 0);
    CHECK(r.result_len == 1 && (r.result[0] == 0xf4 || r.result[0] == 0xf5));
    if (r.status == 0 && r.result_len == 1) {
        b = r.result[0] == 0xf5;
    }
    return b;
}

static bool result_null(void) { return r.status == 0 && r.result_len == 1 && r.result[0] == 0xf6; }

/* A pk-info field: unsigned value, or 1/0 for booleans, -1 for null. */
static long long info_field(const char *key)
{
    CborParser p;
    CborValue v, el;
    CHECK_EQ(r.status, 0);
    size_t n = 0;
    if (r.status != 0 || cbor_parser_init(r.result, r.result_len, 0, &p, &v) != CborNoError || !cbor_value_is_map(&v) ||
        cbor_value_get_map_length(&v, &n) != CborNoError || n != 5 ||
        cbor_value_enter_container(&v, &el) != CborNoError) {
        ml_test_fail(__FILE__, __LINE__, "pk-info is a map of 5");
        return -2;
    }
    while (!cbor_value_at_end(&el)) {
        bool match = false;
        (void)cbor_value_text_string_equals(&el, key, &match);
        (void)cbor_value_advance(&el);
        if (match) {
            if (cbor_value_is_null(&el)) {
                return -1;
            }
            if (cbor_value_is_boolean(&el)) {
                bool b = false;
                (void)cbor_value_get_boolean(&el, &b);
                return b ? 1 : 0;
            }
            uint64_t u = 0;
            (void)cbor_value_get_uint64(&el, &u);
            return (long long)u;
        }
        (void)cbor_value_advance(&el);
    }
    ml_test_fail(__FILE__, __LINE__, key);
    return -2;
}

static void check_info(long long type, long long bits, long long curve, long long priv, long long exportable)
{
    CHECK_EQ(info_field("type"), type);
    CHECK_EQ(info_field("bits"), bits);
    CHECK_EQ(info_field("curve"), curve);
    CHECK_EQ(info_field("private"), priv);
    CHECK_EQ(info_field("exportable"), exportable);
}

static void check_bytes(const struct bytes *got, const char *want_hex)
{
    struct bytes want = hx(want_hex);
    CHECK_EQ(got->n, want.n);
    if (got->n == want.n && memcmp(got->b, want.b, want.n) != 0) {
        ml_print_hex("got ", got->b, got->n);
        fprintf(stderr, "  want: %s\n", want_hex);
        ml_test_fail(__FILE__, __LINE__, "bytes match");
    }
}

static bool same(const struct bytes *a, const struct bytes *b) { return a->n == b->n && memcmp(a->b, b->b, a->n) == 0; }

enum { RSA = 1, EC = 2, EXPORTABLE = 1 };
#define SHA256 ML_HASH_SHA256
/* SHA-256("sample") and SHA-256("abc") */
#define H_SAMPLE "af2bdbe1aa9b6ec1e2ade1d694f41fc71a831d0268e9891562113d8a62add1bf"
#define H_ABC    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void sign_verify_both_schemes(unsigned h, bool rsa)
{
    struct bytes hash = hx(H_ABC), other = hx(H_SAMPLE);
    for (unsigned scheme = 0; scheme < (rsa ? 2u : 1u); scheme++) {
        CHECK(call(ML_OP_PK_SIGN, "uubu", h, SHA256, &hash, scheme));
        struct bytes sig = result_bytes();
        CHECK(sig.n > 0);
        CHECK(call(ML_OP_PK_VERIFY, "uubbu", h, SHA256, &hash, &sig, scheme));
        CHECK(result_bool());
        CHECK(call(ML_OP_PK_VERIFY, "uubbu", h, SHA256, &other, &sig, scheme));
        CHECK(!result_bool());
        sig.b[sig.n / 2] ^= 1;
        CHECK(call(ML_OP_PK_VERIFY, "uubbu", h, SHA256, &hash, &sig, scheme));
        CHECK(!result_bool());
        sig.n -= 3; /* malformed: false, not an error */
        CHECK(call(ML_OP_PK_VERIFY, "uubbu", h, SHA256, &hash, &sig, scheme));
        CHECK(!result_bool());
    }
}

ML_TEST(rsa1024_generate_sign_verify)
{
    th_boot();
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 1, RSA, 1024, 65537, EXPORTABLE));
    check_ok();
    check_info(RSA, 1024, -1, 1, 1);
    sign_verify_both_schemes(1, true);
    /* a PSS signature is no v1.5 signature */
    struct bytes hash = hx(H_ABC);
    CHECK(call(ML_OP_PK_SIGN, "uubu", 1, SHA256, &hash, 1));
    struct bytes sig = result_bytes();
    CHECK_EQ(sig.n, 128);
    CHECK(call(ML_OP_PK_VERIFY, "uubbu", 1, SHA256, &hash, &sig, 0));
    CHECK(!result_bool());
    /* PSS is randomised: two signatures differ, both verify */
    CHECK(call(ML_OP_PK_SIGN, "uubu", 1, SHA256, &hash, 1));
    struct bytes sig2 = result_bytes();
    CHECK(!same(&sig, &sig2));
    CHECK(call(ML_OP_PK_INFO, "u", 1));
    check_info(RSA, 1024, -1, 1, 1);
}

ML_TEST(p256_generate_sign_verify_export_import)
{
    th_boot();
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 1, EC, ML_CURVE_SECP256R1, 0, EXPORTABLE));
    check_ok();
    check_info(EC, 256, ML_CURVE_SECP256R1, 1, 1);
    sign_verify_both_schemes(1, false);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 3));
    struct bytes raw_pub = result_bytes();
    CHECK_EQ(raw_pub.n, 65);
    CHECK_EQ(raw_pub.b[0], 4);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 4));
    CHECK_EQ(result_bytes().n, 32);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 1));
    struct bytes der = result_bytes();
    CHECK(der.n > 100 && der.b[0] == 0x30);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 2));
    struct bytes spki = result_bytes();
    /* round trip: the private DER signs, the original key verifies */
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 2, &der, 0));
    check_info(EC, 256, ML_CURVE_SECP256R1, 1, 0);
    struct bytes hash = hx(H_ABC);
    CHECK(call(ML_OP_PK_SIGN, "uubu", 2, SHA256, &hash, 0));
    struct bytes sig = result_bytes();
    CHECK(call(ML_OP_PK_VERIFY, "uubbu", 1, SHA256, &hash, &sig, 0));
    CHECK(result_bool());
    /* the public DER imports as a public-only key that verifies */
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 3, &spki, 0));
    check_info(EC, 256, ML_CURVE_SECP256R1, 0, 0);
    CHECK(call(ML_OP_PK_VERIFY, "uubbu", 3, SHA256, &hash, &sig, 0));
    CHECK(result_bool());
    CHECK(call(ML_OP_PK_EXPORT, "uu", 3, 2));
    struct bytes spki2 = result_bytes();
    CHECK(same(&spki, &spki2));
    CHECK(call(ML_OP_PK_CHECK_PAIR, "uu", 3, 1));
    CHECK(result_bool());
    CHECK(call(ML_OP_PK_CHECK_PAIR, "uu", 3, 2));
    CHECK(result_bool());
    /* public-only: no signing, no private export */
    CHECK(call(ML_OP_PK_SIGN, "uubu", 3, SHA256, &hash, 0));
    check_fail(ML_STATUS_BAD_ARGUMENT, "has no private part");
    CHECK(call(ML_OP_PK_EXPORT, "uu", 3, 1));
    check_fail(ML_STATUS_BAD_ARGUMENT, "has no private part");
    /* another key is no pair */
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 4, EC, ML_CURVE_SECP256R1, 0, 0));
    CHECK(call(ML_OP_PK_CHECK_PAIR, "uu", 3, 4));
    CHECK(!result_bool());
}

ML_TEST(non_exportable_keys_refuse_private_export_but_sign)
{
    th_boot();
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 1, EC, ML_CURVE_SECP384R1, 0, 0));
    check_info(EC, 384, ML_CURVE_SECP384R1, 1, 0);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 1));
    check_fail(ML_STATUS_NOT_EXPORTABLE, "not exportable");
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 4));
    check_fail(ML_STATUS_NOT_EXPORTABLE, "not exportable");
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 2));
    check_ok();
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 3));
    CHECK_EQ(result_bytes().n, 97);
    struct bytes hash = hx(H_ABC);
    CHECK(call(ML_OP_PK_SIGN, "uubu", 1, SHA256, &hash, 0));
    check_ok();
    /* imported keys keep the flags they were given */
    struct bytes pem = {.n = strlen(RSA1024_PKCS8_PEM)};
    memcpy(pem.b, RSA1024_PKCS8_PEM, pem.n);
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 2, &pem, 0));
    check_info(RSA, 1024, -1, 1, 0);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 2, 1));
    check_fail(ML_STATUS_NOT_EXPORTABLE, "not exportable");
    CHECK(call(ML_OP_PK_EXPORT, "uu", 2, 4));
    check_fail(ML_STATUS_NOT_EXPORTABLE, "not exportable");
    CHECK(call(ML_OP_PK_SIGN, "uubu", 2, SHA256, &hash, 1));
    check_ok();
    CHECK(call(ML_OP_PK_EXPORT, "uu", 2, 5));
    check_fail(ML_STATUS_BAD_ARGUMENT, "format");
}

/* RFC 6979 A.2.5: P-256, SHA-256, message "sample". */
ML_TEST(ecdsa_p256_rfc6979_vector)
{
    th_boot();
    /* SEC1 ECPrivateKey without the optional public key */
    struct bytes der = hx("30310201010420"
                          "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"
                          "a00a06082a8648ce3d030107");
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 1, &der, EXPORTABLE));
    check_info(EC, 256, ML_CURVE_SECP256R1, 1, 1);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 3));
    struct bytes pub = result_bytes();
    check_bytes(&pub, "04"
                      "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
                      "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299");
    struct bytes hash = hx(H_SAMPLE);
    CHECK(call(ML_OP_PK_SIGN, "uubu", 1, SHA256, &hash, 0));
    struct bytes sig = result_bytes();
    check_bytes(&sig, "3046"
                      "022100EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
                      "022100F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8");
    CHECK(call(ML_OP_PK_VERIFY, "uubbu", 1, SHA256, &hash, &sig, 0));
    CHECK(result_bool());
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 4));
    struct bytes d = result_bytes();
    check_bytes(&d, "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721");
}

/* openssl's PKCS#1 v1.5 SHA-256 signature of "abc" under RSA1024_PKCS8_PEM */
#define OPENSSL_SIG                                                                                                  \
    "26d380e7f2e3d994a5ef90eb84428e959895f784624340aab5cb37a461ce9410a1126088dc1535112adb879946ef7adc525b9680270fe1" \
    "2be01029dc289a6063fe3aa7f1bf82807b617c1428ec10073a467392deea1d69a3e591d32f524e7e8c17c681b1e19c111bc94ea91ceadb" \
    "94e4736d1f6d5ea3110846188632a6af8f34"
#define OPENSSL_SPKI                                                                                                 \
    "30819f300d06092a864886f70d010101050003818d0030818902818100b87a96222c4845dc8225f49022dea5fdbef4a8708098e7f65d27" \
    "35eb248801e7de64b9c8bf9777b04a2e0228527da083c3525bc13d2dd3f4fa7241885bf0d588ea094721116d57f1af6df44451b70a1d73" \
    "19c6a06dbdb512f4c21e9b729799bffb49d7fe09b2ffbae630f54e5c0efff7b3b8f0f11cb8adcc86ef70fb1583675f0203010001"

static struct bytes text(const char *s, bool nul)
{
    struct bytes b;
    b.n = strlen(s) + (nul ? 1 : 0);
    memcpy(b.b, s, b.n);
    return b;
}

ML_TEST(rsa_pkcs1_v15_matches_openssl)
{
    th_boot();
    struct bytes pem = text(RSA1024_PKCS8_PEM, false), hash = hx(H_ABC), spki = hx(OPENSSL_SPKI);
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 1, &pem, EXPORTABLE));
    check_info(RSA, 1024, -1, 1, 1);
    CHECK(call(ML_OP_PK_SIGN, "uubu", 1, SHA256, &hash, 0));
    struct bytes sig = result_bytes();
    check_bytes(&sig, OPENSSL_SIG);
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 2, &spki, 0));
    check_info(RSA, 1024, -1, 0, 0);
    struct bytes want = hx(OPENSSL_SIG);
    CHECK(call(ML_OP_PK_VERIFY, "uubbu", 2, SHA256, &hash, &want, 0));
    CHECK(result_bool());
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 2));
    struct bytes got_spki = result_bytes();
    check_bytes(&got_spki, OPENSSL_SPKI);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 2, 3));
    struct bytes n = result_bytes();
    CHECK_EQ(n.n, 128);
    CHECK(n.n == 128 && memcmp(n.b, spki.b + 29, 128) == 0); /* the modulus inside the SPKI */
    /* PEM with a trailing NUL parses too; so does the encrypted PKCS#8 */
    struct bytes pem0 = text(RSA1024_PKCS8_PEM, true);
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 3, &pem0, 0));
    check_ok();
    struct bytes enc = text(RSA1024_ENC_PEM, false), pw = text("secret", false), bad_pw = text("wrong", false);
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 4, &enc, 0));
    check_fail(ML_STATUS_BAD_ARGUMENT, "a password is required");
    CHECK(call(ML_OP_PK_IMPORT, "ubbu", 4, &enc, &bad_pw, 0));
    check_fail(ML_STATUS_BAD_ARGUMENT, "password");
    CHECK(call(ML_OP_PK_IMPORT, "ubbu", 4, &enc, &pw, 0));
    check_info(RSA, 1024, -1, 1, 0);
    CHECK(call(ML_OP_PK_SIGN, "uubu", 4, SHA256, &hash, 0));
    sig = result_bytes();
    check_bytes(&sig, OPENSSL_SIG);
    CHECK(call(ML_OP_PK_CHECK_PAIR, "uu", 2, 4));
    CHECK(result_bool());
    struct bytes legacy = text(RSA1024_LEGACY_PEM, false);
    CHECK(call(ML_OP_PK_IMPORT, "ubbu", 5, &legacy, &pw, 0));
    check_fail(ML_STATUS_UNSUPPORTED_ALGORITHM, "legacy encrypted PEM");
}

ML_TEST(rsa_encrypt_decrypt_v15_and_oaep)
{
    th_boot();
    struct bytes pem = text(RSA1024_PKCS8_PEM, false), spki = hx(OPENSSL_SPKI), msg = text("attack at dawn", false);
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 1, &pem, 0));
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 2, &spki, 0));
    for (unsigned scheme = 0; scheme < 2; scheme++) {
        unsigned alg = scheme == 1 ? SHA256 : 0;
        CHECK(call(ML_OP_PK_ENCRYPT, "ubuu", 2, &msg, scheme, alg));
        struct bytes ct = result_bytes();
        CHECK_EQ(ct.n, 128);
        CHECK(call(ML_OP_PK_ENCRYPT, "ubuu", 2, &msg, scheme, alg));
        struct bytes ct2 = result_bytes();
        CHECK(!same(&ct, &ct2)); /* randomised padding */
        CHECK(call(ML_OP_PK_DECRYPT, "ubuu", 1, &ct, scheme, alg));
        struct bytes pt = result_bytes();
        CHECK(same(&pt, &msg));
        ct.b[5] ^= 0x40;
        CHECK(call(ML_OP_PK_DECRYPT, "ubuu", 1, &ct, scheme, alg));
        CHECK_EQ(r.status, ML_STATUS_CRYPTO_ERROR);
        CHECK(call(ML_OP_PK_DECRYPT, "ubuu", 2, &ct2, scheme, alg));
        check_fail(ML_STATUS_BAD_ARGUMENT, "has no private part");
    }
    /* OAEP with SHA-256 fits 128 - 66 = 62 bytes into RSA-1024 */
    struct bytes big = {.n = 63};
    memset(big.b, 'x', big.n);
    CHECK(call(ML_OP_PK_ENCRYPT, "ubuu", 2, &big, 1, SHA256));
    check_fail(ML_STATUS_BAD_ARGUMENT, "at most 62 bytes");
    big.n = 62;
    CHECK(call(ML_OP_PK_ENCRYPT, "ubuu", 2, &big, 1, SHA256));
    check_ok();
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 3, EC, ML_CURVE_SECP256R1, 0, 0));
    CHECK(call(ML_OP_PK_ENCRYPT, "ubuu", 3, &msg, 0, 0));
    check_fail(ML_STATUS_UNSUPPORTED_ALGORITHM, "Mbed TLS offers no EC encryption");
}

ML_TEST(bad_inputs)
{
    th_boot();
    struct bytes junk = hx("3003020101"), hash = hx(H_ABC), short_hash = hx("0011");
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 1, &junk, 0));
    CHECK_EQ(r.status, ML_STATUS_BAD_ARGUMENT);
    CHECK(r.code != 0);
    struct bytes garbage = text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", false);
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 1, &garbage, 0));
    CHECK_EQ(r.status, ML_STATUS_BAD_ARGUMENT);
    CHECK(r.code != 0);
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 1, RSA, 1000, 65537, 0));
    check_fail(ML_STATUS_BAD_ARGUMENT, "RSA key size");
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 1, RSA, 1026, 65537, 0)); /* any even size */
    check_info(RSA, 1026, -1, 1, 0);
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 2, RSA, 1024, 65536, 0));
    check_fail(ML_STATUS_BAD_ARGUMENT, "exponent");
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 2, RSA, 1024, 1, 0));
    check_fail(ML_STATUS_BAD_ARGUMENT, "exponent");
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 2, EC, 99, 0, 0));
    check_fail(ML_STATUS_UNSUPPORTED_ALGORITHM, "curve 99");
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 2, 3, 256, 0, 0));
    check_fail(ML_STATUS_BAD_ARGUMENT, "key type");
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 2, EC, ML_CURVE_SECP256R1, 0, 2));
    check_fail(ML_STATUS_BAD_ARGUMENT, "flags");
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 2, EC, ML_CURVE_SECP256R1, 0, 0));
    check_ok();
    CHECK(call(ML_OP_PK_SIGN, "uubu", 2, SHA256, &short_hash, 0));
    check_fail(ML_STATUS_BAD_ARGUMENT, "digest is 32 bytes");
    CHECK(call(ML_OP_PK_SIGN, "uubu", 2, SHA256, &hash, 1));
    check_fail(ML_STATUS_BAD_ARGUMENT, "PSS needs an RSA key");
    CHECK(call(ML_OP_PK_SIGN, "uubu", 2, 99, &hash, 0));
    CHECK_EQ(r.status, ML_STATUS_UNSUPPORTED_ALGORITHM);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 4));
    check_fail(ML_STATUS_NOT_EXPORTABLE, "not exportable");
    CHECK(call(ML_OP_PK_INFO, "u", 77));
    CHECK_EQ(r.status, ML_STATUS_BAD_HANDLE);
    CHECK(call(ML_OP_KEY_GENERATE, "uu", 5, 16));
    CHECK(call(ML_OP_PK_INFO, "u", 5));
    CHECK_EQ(r.status, ML_STATUS_WRONG_HANDLE_TYPE);
    /* x25519: generate, export, but no signatures */
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 6, EC, ML_CURVE_X25519, 0, EXPORTABLE));
    check_info(EC, 255, ML_CURVE_X25519, 1, 1);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 6, 3));
    CHECK_EQ(result_bytes().n, 32);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 6, 1));
    struct bytes der = result_bytes();
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 7, &der, 0));
    check_info(EC, 255, ML_CURVE_X25519, 1, 0);
    CHECK(call(ML_OP_PK_SIGN, "uubu", 6, SHA256, &hash, 0));
    check_fail(ML_STATUS_UNSUPPORTED_ALGORITHM, "cannot sign");
    struct bytes sig = hx("3006020101020101");
    CHECK(call(ML_OP_PK_VERIFY, "uubbu", 6, SHA256, &hash, &sig, 0));
    CHECK_EQ(r.status, ML_STATUS_UNSUPPORTED_ALGORITHM);
}

ML_TEST(pk_curves_lists_every_curve)
{
    th_boot();
    CHECK(call(ML_OP_PK_CURVES, ""));
    check_ok();
    /* 13 curves in ids.json order: array head 0x8d then 1..13 */
    CHECK_EQ(r.result_len, 14);
    CHECK_EQ(r.result[0], 0x8d);
    for (unsigned i = 1; i < 14 && i < r.result_len; i++) {
        CHECK_EQ(r.result[i], i);
    }
    /* every curve generates, and each Weierstrass one signs */
    struct bytes hash = hx(H_ABC);
    for (unsigned c = 1; c <= 13; c++) {
        CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 100 + c, EC, c, 0, 0));
        check_ok();
        CHECK(call(ML_OP_PK_SIGN, "uubu", 100 + c, SHA256, &hash, 0));
        CHECK_EQ(r.status, c >= 12 ? ML_STATUS_UNSUPPORTED_ALGORITHM : ML_STATUS_OK);
    }
}

/* The C interface the key store uses (ml_pk.h). */
ML_TEST(serialise_and_recreate_for_the_key_store)
{
    th_boot();
    struct ml_call c;
    memset(&c, 0, sizeof c);
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 1, EC, ML_CURVE_SECP256K1, 0, 0));
    CHECK(call(ML_OP_PK_EXPORT, "uu", 1, 2));
    struct bytes spki = result_bytes();
    void *obj = NULL;
    CHECK_EQ(ml_pk_get(&c, 1, &obj), ML_STATUS_OK);
    CHECK(ml_pk_has_private(obj));
    CHECK_EQ(ml_pk_flags(obj), 0);
    CHECK(ml_pk_ctx(obj) != NULL);
    static uint8_t der[3000];
    size_t len = 0;
    CHECK_EQ(ml_pk_serialise(&c, obj, der, 20, &len), ML_STATUS_TOO_LARGE);
    CHECK_EQ(ml_pk_serialise(&c, obj, der, sizeof der, &len), ML_STATUS_OK);
    CHECK(len > 100 && der[0] == 0x30);
    void *copy = NULL;
    CHECK_EQ(ml_pk_create_from_der(&c, 2, der, len, 0, &copy), ML_STATUS_OK);
    CHECK(copy != NULL && ml_pk_has_private(copy));
    CHECK_EQ(ml_pk_create_from_der(&c, 2, der, len, 0, NULL), ML_STATUS_HANDLE_IN_USE);
    CHECK_EQ(ml_pk_create_from_der(&c, 3, der, 10, 0, NULL), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(ml_pk_write_public(&c, copy, der, sizeof der, &len), ML_STATUS_OK);
    CHECK(len == spki.n && memcmp(der, spki.b, len) == 0);
    CHECK(call(ML_OP_PK_INFO, "u", 2));
    check_info(EC, 256, ML_CURVE_SECP256K1, 1, 0);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 2, 1));
    check_fail(ML_STATUS_NOT_EXPORTABLE, "not exportable");
    CHECK(call(ML_OP_PK_CHECK_PAIR, "uu", 1, 2));
    CHECK(result_bool());
    /* a public-only key serialises as its SubjectPublicKeyInfo */
    CHECK(call(ML_OP_PK_IMPORT, "ubnu", 4, &spki, 0));
    CHECK_EQ(ml_pk_get(&c, 4, &obj), ML_STATUS_OK);
    CHECK_EQ(ml_pk_serialise(&c, obj, der, sizeof der, &len), ML_STATUS_OK);
    CHECK(len == spki.n && memcmp(der, spki.b, len) == 0);
    CHECK(call(ML_OP_KEY_GENERATE, "uu", 5, 16));
    CHECK_EQ(ml_pk_get(&c, 5, &obj), ML_STATUS_WRONG_HANDLE_TYPE);
}

static int test_rng(void *ctx, unsigned char *out, size_t len)
{
    static uint64_t state = 0x2545f4914f6cdd1du;
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out[i] = (uint8_t)(state >> 24);
    }
    return 0;
}

static bool is_prime(const struct bytes *b)
{
    mbedtls_mpi x;
    mbedtls_mpi_init(&x);
    bool ok = mbedtls_mpi_read_binary(&x, b->b, b->n) == 0 && mbedtls_mpi_is_prime_ext(&x, 40, test_rng, NULL) == 0;
    mbedtls_mpi_free(&x);
    return ok;
}

ML_TEST(mpi_prime_and_random)
{
    th_boot();
    CHECK(call(ML_OP_MPI_PRIME, "uu", 16, 0));
    struct bytes p = result_bytes();
    CHECK_EQ(p.n, 16);
    CHECK((p.b[0] & 0x80) != 0);
    CHECK(is_prime(&p));
    CHECK(call(ML_OP_MPI_PRIME, "uu", 8, 1));
    p = result_bytes();
    CHECK_EQ(p.n, 8);
    CHECK(is_prime(&p));
    /* safe: (p - 1) / 2 prime too */
    uint64_t v = 0;
    for (size_t i = 0; i < p.n; i++) {
        v = v << 8 | p.b[i];
    }
    struct bytes q = {.n = 8};
    for (size_t i = 0; i < 8; i++) {
        q.b[i] = (uint8_t)(((v - 1) / 2) >> (56 - 8 * i));
    }
    CHECK(is_prime(&q));
    CHECK(call(ML_OP_MPI_PRIME, "uu", 0, 0));
    CHECK_EQ(r.status, ML_STATUS_BAD_ARGUMENT);
    CHECK(call(ML_OP_MPI_PRIME, "uu", 513, 0));
    CHECK_EQ(r.status, ML_STATUS_BAD_ARGUMENT);
    CHECK(call(ML_OP_MPI_PRIME, "uu", 16, 4));
    CHECK_EQ(r.status, ML_STATUS_BAD_ARGUMENT);
    /* [min, max): 1000 draws of [5, 8) hit every value and nothing else */
    struct bytes max = hx("08");
    unsigned seen = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK(call(ML_OP_MPI_RANDOM, "ub", 5, &max));
        struct bytes x = result_bytes();
        CHECK_EQ(x.n, 1);
        CHECK(x.b[0] >= 5 && x.b[0] < 8);
        seen |= 1u << (x.b[0] & 7);
    }
    CHECK_EQ(seen, 0xe0);
    struct bytes big = hx("0100000000000000000000000000000000");
    CHECK(call(ML_OP_MPI_RANDOM, "ub", 0, &big));
    CHECK(result_bytes().n <= 17);
    CHECK(call(ML_OP_MPI_RANDOM, "ub", 8, &max));
    check_fail(ML_STATUS_BAD_ARGUMENT, "greater than min");
}

ML_TEST(ecdh_ephemeral_and_static_agree)
{
    th_boot();
    for (unsigned c = 1; c <= 13; c++) {
        CHECK(call(ML_OP_KEX_NEW, "uuuun", 1, 1, 1, c));
        check_ok();
        CHECK(call(ML_OP_KEX_NEW, "uuuun", 2, 1, 2, c));
        CHECK(call(ML_OP_KEX_GENERATE, "u", 1));
        struct bytes ske = result_bytes();
        CHECK(call(ML_OP_KEX_IMPORT, "ub", 2, &ske));
        check_ok();
        CHECK(call(ML_OP_KEX_GENERATE, "u", 2));
        struct bytes cke = result_bytes();
        CHECK(cke.n > 0 && cke.b[0] == cke.n - 1);
        CHECK(call(ML_OP_KEX_IMPORT, "ub", 1, &cke));
        check_ok();
        CHECK(call(ML_OP_KEX_SECRET, "un", 1));
        struct bytes s1 = result_bytes();
        CHECK(call(ML_OP_KEX_SECRET, "un", 2));
        struct bytes s2 = result_bytes();
        CHECK(s1.n > 0 && same(&s1, &s2));
        CHECK(call(ML_OP_FREE, "u", 1));
        CHECK(call(ML_OP_FREE, "u", 2));
    }
    /* static server key (non-exportable) against an ephemeral client */
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 10, EC, ML_CURVE_SECP256R1, 0, 0));
    CHECK(call(ML_OP_KEX_NEW, "uuuuu", 1, 1, 1, ML_CURVE_SECP256R1, 10));
    check_ok();
    CHECK(call(ML_OP_FREE, "u", 10)); /* the context holds its own copy */
    CHECK(call(ML_OP_KEX_NEW, "uuuun", 2, 1, 2, ML_CURVE_SECP256R1));
    CHECK(call(ML_OP_KEX_SECRET, "un", 1));
    check_fail(ML_STATUS_BAD_ARGUMENT, "out of order");
    CHECK(call(ML_OP_KEX_GENERATE, "u", 2));
    check_fail(ML_STATUS_BAD_ARGUMENT, "out of order");
    CHECK(call(ML_OP_KEX_GENERATE, "u", 1));
    struct bytes ske = result_bytes();
    CHECK_EQ(ske.n, 3 + 1 + 65);
    CHECK(call(ML_OP_KEX_GENERATE, "u", 1));
    check_fail(ML_STATUS_BAD_ARGUMENT, "out of order");
    struct bytes bad = ske;
    bad.b[10] ^= 1; /* no longer on the curve */
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 2, &bad));
    CHECK_EQ(r.status, ML_STATUS_BAD_ARGUMENT);
    CHECK(r.code != 0);
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 2, &ske));
    check_ok();
    CHECK(call(ML_OP_KEX_GENERATE, "u", 2));
    struct bytes cke = result_bytes();
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 1, &cke));
    CHECK(call(ML_OP_KEX_SECRET, "uu", 1, 20)); /* into a device-held key */
    CHECK(result_null());
    CHECK(call(ML_OP_KEX_SECRET, "un", 2));
    struct bytes s = result_bytes();
    CHECK_EQ(s.n, 32);
    /* both derive the same HMAC under the held key and the returned bytes */
    struct bytes data = text("x", false);
    CHECK(call(ML_OP_HMAC_ONESHOT, "uub", SHA256, 20, &data));
    struct bytes m1 = result_bytes();
    CHECK(call(ML_OP_HMAC_ONESHOT, "ubb", SHA256, &s, &data));
    struct bytes m2 = result_bytes();
    CHECK(same(&m1, &m2));
    /* static client key (x25519) against an ephemeral server */
    CHECK(call(ML_OP_PK_GENERATE, "uuuuu", 11, EC, ML_CURVE_X25519, 0, 0));
    CHECK(call(ML_OP_KEX_NEW, "uuuuu", 6, 1, 2, ML_CURVE_X25519, 11));
    check_ok();
    CHECK(call(ML_OP_KEX_NEW, "uuuun", 7, 1, 1, ML_CURVE_X25519));
    CHECK(call(ML_OP_KEX_GENERATE, "u", 7));
    ske = result_bytes();
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 6, &ske));
    check_ok();
    CHECK(call(ML_OP_KEX_GENERATE, "u", 6));
    cke = result_bytes();
    CHECK_EQ(cke.n, 33);
    CHECK(call(ML_OP_PK_EXPORT, "uu", 11, 3)); /* the static key's public u-coordinate */
    struct bytes u = result_bytes();
    CHECK(u.n == 32 && memcmp(cke.b + 1, u.b, 32) == 0);
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 7, &cke));
    CHECK(call(ML_OP_KEX_SECRET, "un", 6));
    struct bytes x1 = result_bytes();
    CHECK(call(ML_OP_KEX_SECRET, "un", 7));
    struct bytes x2 = result_bytes();
    CHECK(x1.n == 32 && same(&x1, &x2));
    /* a static key must be on the context's curve and private */
    CHECK(call(ML_OP_KEX_NEW, "uuuuu", 8, 1, 2, ML_CURVE_X448, 11));
    check_fail(ML_STATUS_BAD_ARGUMENT, "another curve");
    CHECK(call(ML_OP_KEY_GENERATE, "uu", 12, 16));
    CHECK(call(ML_OP_KEX_NEW, "uuuuu", 8, 1, 2, ML_CURVE_X25519, 12));
    CHECK_EQ(r.status, ML_STATUS_WRONG_HANDLE_TYPE);
    CHECK(call(ML_OP_KEX_GENERATE, "u", 12));
    CHECK_EQ(r.status, ML_STATUS_WRONG_HANDLE_TYPE);
    /* a P-521 secret (66 bytes) is too long for a device-held key */
    CHECK(call(ML_OP_KEX_NEW, "uuuun", 3, 1, 1, ML_CURVE_SECP521R1));
    CHECK(call(ML_OP_KEX_NEW, "uuuun", 4, 1, 2, ML_CURVE_SECP521R1));
    CHECK(call(ML_OP_KEX_GENERATE, "u", 3));
    ske = result_bytes();
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 4, &ske));
    CHECK(call(ML_OP_KEX_GENERATE, "u", 4));
    cke = result_bytes();
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 3, &cke));
    CHECK(call(ML_OP_KEX_SECRET, "uu", 3, 21));
    check_fail(ML_STATUS_BAD_ARGUMENT, "longer than a device-held key");
    /* a server on another curve */
    CHECK(call(ML_OP_KEX_NEW, "uuuun", 5, 1, 2, ML_CURVE_SECP384R1));
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 5, &ske));
    check_fail(ML_STATUS_BAD_ARGUMENT, "curve");
}

ML_TEST(dh_agree)
{
    th_boot();
    static const uint8_t p_bin[] = MBEDTLS_DHM_RFC7919_FFDHE2048_P_BIN;
    static const uint8_t g_bin[] = MBEDTLS_DHM_RFC7919_FFDHE2048_G_BIN;
    struct bytes p = {.n = sizeof p_bin}, g = {.n = sizeof g_bin};
    memcpy(p.b, p_bin, p.n);
    memcpy(g.b, g_bin, g.n);
    CHECK(call(ML_OP_KEX_NEW, "uuuAn", 1, 2, 1, &p, &g));
    check_ok();
    CHECK(call(ML_OP_KEX_NEW, "uuuAn", 2, 2, 2, &p, &g));
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 1, &p));
    check_fail(ML_STATUS_BAD_ARGUMENT, "out of order");
    CHECK(call(ML_OP_KEX_GENERATE, "u", 1));
    struct bytes ske = result_bytes();
    CHECK_EQ(ske.n, 2 + 256 + 2 + 1 + 2 + 256);
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 2, &ske));
    check_ok();
    CHECK(call(ML_OP_KEX_GENERATE, "u", 2));
    struct bytes cke = result_bytes();
    CHECK_EQ(cke.n, 256);
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 1, &cke));
    check_ok();
    CHECK(call(ML_OP_KEX_SECRET, "un", 1));
    struct bytes s1 = result_bytes();
    CHECK(call(ML_OP_KEX_SECRET, "un", 2));
    struct bytes s2 = result_bytes();
    CHECK_EQ(s1.n, 256);
    CHECK(same(&s1, &s2));
    /* small moduli and static keys are refused */
    struct bytes small = {.n = 63};
    memset(small.b, 0xff, small.n);
    CHECK(call(ML_OP_KEX_NEW, "uuuAn", 3, 2, 1, &small, &g));
    check_fail(ML_STATUS_BAD_ARGUMENT, "P must be");
    CHECK(call(ML_OP_KEX_NEW, "uuuAu", 3, 2, 1, &p, &g, 1));
    check_fail(ML_STATUS_BAD_ARGUMENT, "no static key");
    /* a peer value of 1 is out of range */
    CHECK(call(ML_OP_KEX_NEW, "uuuAn", 3, 2, 1, &p, &g));
    CHECK(call(ML_OP_KEX_GENERATE, "u", 3));
    struct bytes one = {.n = 256};
    memset(one.b, 0, one.n);
    one.b[255] = 1;
    CHECK(call(ML_OP_KEX_IMPORT, "ub", 3, &one));
    if (r.status == 0) {
        CHECK(call(ML_OP_KEX_SECRET, "un", 3));
    }
    CHECK_EQ(r.status, ML_STATUS_BAD_ARGUMENT);
}

/* `openssl ecparam -name prime256v1 -genkey -noout` (SEC1) */
static const char P256_SEC1_PEM[] = "-----BEGIN EC PRIVATE KEY-----\n"
                                    "MHcCAQEEIFxPamDgXD7ojBS/PdyiPo2O/HpI5tk5cl+TYfMo0p7woAoGCCqGSM49\n"
                                    "AwEHoUQDQgAEfiDz998mu7ipHqckBMCI9quOpMxoGCXXU2ZGcyaN2VRXFkBOX2IT\n"
                                    "NUicTW0ZNOOpYWAgA2/QJ692qlbt65lDkg==\n"
                                    "-----END EC PRIVATE KEY-----\n";

/* Blocks that hold all of the device heap but what heap_fill leaves. */
static void *fill[64];
static size_t fill_n;

/* The largest block the heap can give now (0: not even one byte). */
static size_t largest_block(void)
{
    size_t lo = 0, hi = ML_CFG_HEAP_SIZE;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        void *p = mbedtls_calloc(1, mid);
        if (p != NULL) {
            mbedtls_free(p);
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

/* Takes the whole heap except one free block of `leave` bytes. */
static void heap_fill(size_t leave)
{
    void *reserve = leave > 0 ? mbedtls_calloc(1, leave) : NULL;
    CHECK(leave == 0 || reserve != NULL);
    fill_n = 0;
    for (size_t n = largest_block(); n > 0 && fill_n < sizeof fill / sizeof fill[0]; n = largest_block()) {
        fill[fill_n++] = mbedtls_calloc(1, n);
    }
    CHECK_EQ(largest_block(), 0);
    mbedtls_free(reserve);
}

static void heap_release(void)
{
    while (fill_n > 0) {
        mbedtls_free(fill[--fill_n]);
    }
}

/* Imports a PEM key with ever more free heap, from none until it fits:
 * every attempt short of heap answers out_of_memory (some of them when the
 * PEM base64 decode cannot get its buffer) and leaves no handle and no heap
 * behind; then the key imports and signs. One exception, Mbed TLS's own:
 * pk_parse_key_sec1_der (pkparse.c) answers a failed read of the SEC1 public
 * point, an allocation failure included, with a bare
 * MBEDTLS_ERR_PK_KEY_INVALID_FORMAT, so that window is bad_argument. */
static void pem_import_short_of_heap(const char *pem_text, long long type, long long bits, long long curve)
{
    struct bytes pem = text(pem_text, true), hash = hx(H_ABC);
    size_t base = th_heap_used();
    bool pem_alloc_failed = false;
    for (size_t leave = 0; leave <= ML_CFG_HEAP_SIZE; leave += 8) {
        heap_fill(leave);
        CHECK(call(ML_OP_PK_IMPORT, "ubnu", 1, &pem, 0));
        heap_release();
        if (r.status == ML_STATUS_OK) {
            break;
        }
        if (type == EC && r.status == ML_STATUS_BAD_ARGUMENT && r.code == MBEDTLS_ERR_PK_KEY_INVALID_FORMAT) {
            /* not out_of_memory, through no fault of ours */
        } else if (r.status != ML_STATUS_OUT_OF_MEMORY) {
            fprintf(stderr, "  %zu bytes free: status %llu, code -0x%04llx: %s\n", leave, (unsigned long long)r.status,
                    (unsigned long long)-r.code, r.msg);
            CHECK_EQ(r.status, ML_STATUS_OUT_OF_MEMORY);
            return;
        }
        pem_alloc_failed = pem_alloc_failed || r.code == MBEDTLS_ERR_PEM_ALLOC_FAILED;
        CHECK_EQ(ml_handles_used(), 0);
        CHECK_EQ(th_heap_used(), base);
    }
    CHECK(pem_alloc_failed);
    check_info(type, bits, curve, 1, 0);
    CHECK(call(ML_OP_PK_SIGN, "uubu", 1, SHA256, &hash, 0));
    check_ok();
    CHECK(call(ML_OP_FREE, "u", 1));
    check_ok();
    CHECK_EQ(th_heap_used(), base);
}

ML_TEST(pem_import_out_of_heap_is_out_of_memory)
{
    th_boot();
    pem_import_short_of_heap(RSA1024_PKCS8_PEM, RSA, 1024, -1);
    pem_import_short_of_heap(P256_SEC1_PEM, EC, 256, ML_CURVE_SECP256R1);
}

static bool to_core(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    th_rx(data, len);
    return true;
}

/* Sends one request (CRC added, SLIP-framed); its output stays in th_out. */
static void send_frame(const uint8_t *cbor, size_t len)
{
    static uint8_t body[sizeof buf + 4];
    memcpy(body, cbor, len);
    uint32_t crc = ml_crc32(cbor, len);
    for (int i = 0; i < 4; i++) {
        body[len + (size_t)i] = (uint8_t)(crc >> (24 - 8 * i));
    }
    th_clear();
    (void)ml_slip_encode(body, len + 4, to_core, NULL);
}

/* A slow call (the fake clock advances 100 ms per read) sends busy events
 * for its request id before its response. */
ML_TEST(busy_events_during_rsa_keygen)
{
    th_boot();
    th_ms_step = 100;
    size_t len = 0;
    {
        CborEncoder enc, arr;
        cbor_encoder_init(&enc, buf, sizeof buf, 0);
        (void)cbor_encoder_create_array(&enc, &arr, 7);
        (void)cbor_encode_uint(&arr, 4242);
        (void)cbor_encode_uint(&arr, ML_OP_PK_GENERATE);
        (void)cbor_encode_uint(&arr, 1);
        (void)cbor_encode_uint(&arr, RSA);
        (void)cbor_encode_uint(&arr, 1024);
        (void)cbor_encode_uint(&arr, 65537);
        (void)cbor_encode_uint(&arr, 0);
        (void)cbor_encoder_close_container(&enc, &arr);
        len = cbor_encoder_get_buffer_size(&enc, buf);
    }
    uint32_t before = ml_busy_events_sent();
    send_frame(buf, len);
    th_ms_step = 1;
    size_t frames = th_frame_count();
    CHECK(frames >= 2);
    CHECK_EQ(ml_busy_events_sent() - before, frames - 1);
    uint64_t last_elapsed = 0;
    for (size_t i = 0; i + 1 < frames; i++) {
        size_t n = th_frame(i, rx, sizeof rx);
        CHECK(n != (size_t)-1 && th_parse(rx, n, &r));
        CHECK(r.is_event);
        CHECK_EQ(r.status, ML_EVENT_BUSY);
        CHECK_EQ(r.items, 4);
        /* [null, 3, id, elapsed] */
        CborParser p;
        CborValue v;
        uint64_t id = 0, elapsed = 0;
        CHECK(cbor_parser_init(r.result, r.result_len, 0, &p, &v) == CborNoError);
        CHECK(cbor_value_get_uint64(&v, &id) == CborNoError);
        CHECK_EQ(id, 4242);
        const uint8_t *next = r.result + r.result_len;
        CHECK(cbor_parser_init(next, (size_t)(rx + n - next), 0, &p, &v) == CborNoError);
        CHECK(cbor_value_get_uint64(&v, &elapsed) == CborNoError);
        CHECK(elapsed >= ML_BUSY_INTERVAL_MS && elapsed > last_elapsed);
        last_elapsed = elapsed;
    }
    size_t n = th_frame(frames - 1, rx, sizeof rx);
    CHECK(n != (size_t)-1 && th_parse(rx, n, &r));
    CHECK(!r.is_event);
    CHECK_EQ(r.id, 4242);
    check_info(RSA, 1024, -1, 1, 0);
    /* a quick op afterwards sends none */
    before = ml_busy_events_sent();
    CHECK(call(ML_OP_PK_INFO, "u", 1));
    CHECK_EQ(ml_busy_events_sent(), before);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(rsa1024_generate_sign_verify),
        ML_CASE(p256_generate_sign_verify_export_import),
        ML_CASE(non_exportable_keys_refuse_private_export_but_sign),
        ML_CASE(ecdsa_p256_rfc6979_vector),
        ML_CASE(rsa_pkcs1_v15_matches_openssl),
        ML_CASE(rsa_encrypt_decrypt_v15_and_oaep),
        ML_CASE(bad_inputs),
        ML_CASE(pk_curves_lists_every_curve),
        ML_CASE(serialise_and_recreate_for_the_key_store),
        ML_CASE(mpi_prime_and_random),
        ML_CASE(ecdh_ephemeral_and_static_agree),
        ML_CASE(dh_agree),
        ML_CASE(busy_events_during_rsa_keygen),
        ML_CASE(pem_import_out_of_heap_is_out_of_memory),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
