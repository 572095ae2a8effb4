/* Digests through the protocol against published vectors (FIPS 180-4
 * examples, FIPS 202, RFC 1321, the RIPEMD-160 paper), plus hash_copy and
 * the non-destructive hash_digest. */
#include <string.h>

#include "core/protocol_ids.h"
#include "test_hal.h"
#include "test_util.h"

/* Strips the bstr head of a result item; returns the payload length. */
static size_t bstr_payload(const struct th_reply *r, const uint8_t **p)
{
    if (r->result_len == 0 || (r->result[0] & 0xe0) != 0x40) {
        return (size_t)-1;
    }
    size_t head = (r->result[0] & 0x1f) < 24 ? 1 : 2;
    *p = r->result + head;
    return r->result_len - head;
}

static void check_digest(const struct th_reply *r, const char *want_hex)
{
    uint8_t want[64];
    size_t want_len = ml_unhex(want_hex, want, sizeof want);
    const uint8_t *got = NULL;
    CHECK_EQ(r->status, 0);
    size_t got_len = bstr_payload(r, &got);
    CHECK_EQ(got_len, want_len);
    if (got_len == want_len && memcmp(got, want, want_len) != 0) {
        ml_print_hex("got ", got, got_len);
        fprintf(stderr, "  want: %s\n", want_hex);
        ml_test_fail(__FILE__, __LINE__, "digest matches");
    }
}

static void check_alg(unsigned alg, const char *empty_hex, const char *abc_hex)
{
    char req[128];
    struct th_reply r;
    th_boot();
    /* one-shot */
    snprintf(req, sizeof req, "84 01 14 %02x 40", alg);
    if (th_call_parse_hex(req, &r)) {
        check_digest(&r, empty_hex);
    }
    snprintf(req, sizeof req, "84 02 14 %02x 43 616263", alg);
    if (th_call_parse_hex(req, &r)) {
        check_digest(&r, abc_hex);
    }
    /* context: digest of nothing, then 'a' + 'bc' */
    snprintf(req, sizeof req, "84 03 10 05 %02x", alg);
    CHECK(th_call_parse_hex(req, &r) && r.status == 0);
    if (th_call_parse_hex("83 04 12 05", &r)) {
        check_digest(&r, empty_hex);
    }
    CHECK(th_call_parse_hex("84 05 11 05 41 61", &r) && r.status == 0);
    CHECK(th_call_parse_hex("84 06 11 05 42 6263", &r) && r.status == 0);
    if (th_call_parse_hex("83 07 12 05", &r)) {
        check_digest(&r, abc_hex);
    }
    CHECK(th_call_parse_hex("83 08 03 05", &r) && r.status == 0);
}

ML_TEST(md5) { check_alg(ML_HASH_MD5, "d41d8cd98f00b204e9800998ecf8427e", "900150983cd24fb0d6963f7d28e17f72"); }

ML_TEST(sha1)
{
    check_alg(ML_HASH_SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", "a9993e364706816aba3e25717850c26c9cd0d89d");
}

ML_TEST(sha224)
{
    check_alg(ML_HASH_SHA224, "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f",
              "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7");
}

ML_TEST(sha256)
{
    check_alg(ML_HASH_SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

ML_TEST(sha384)
{
    check_alg(ML_HASH_SHA384,
              "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
              "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
}

ML_TEST(sha512)
{
    check_alg(ML_HASH_SHA512,
              "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
              "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
              "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
              "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
}

ML_TEST(ripemd160)
{
    check_alg(ML_HASH_RIPEMD160, "9c1185a5c5e9fc54612808977ee8f548b2258d31",
              "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc");
}

ML_TEST(sha3_224)
{
    check_alg(ML_HASH_SHA3_224, "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7",
              "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf");
}

ML_TEST(sha3_256)
{
    check_alg(ML_HASH_SHA3_256, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a",
              "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
}

ML_TEST(sha3_384)
{
    check_alg(ML_HASH_SHA3_384,
              "0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2ac3713831264adb47fb6bd1e058d5f004",
              "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25");
}

ML_TEST(sha3_512)
{
    check_alg(ML_HASH_SHA3_512,
              "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a6"
              "15b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26",
              "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
              "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0");
}

/* hash_copy forks the state; hash_digest leaves both contexts usable. */
ML_TEST(copy_and_nondestructive_digest)
{
    struct th_reply r;
    th_boot();
    CHECK(th_call_parse_hex("84 01 10 01 04", &r) && r.status == 0);      /* new 1 sha256 */
    CHECK(th_call_parse_hex("84 02 11 01 42 6162", &r) && r.status == 0); /* 'ab' */
    CHECK(th_call_parse_hex("84 03 13 01 02", &r) && r.status == 0);      /* copy 1 -> 2 */
    CHECK(th_call_parse_hex("84 04 11 01 41 63", &r) && r.status == 0);   /* 1: 'c' */
    for (int i = 0; i < 2; i++) {                                         /* digest twice */
        if (th_call_parse_hex("83 05 12 01", &r)) {
            check_digest(&r, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        }
    }
    if (th_call_parse_hex("83 06 12 02", &r)) { /* the copy still has only 'ab' */
        check_digest(&r, "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603");
    }
    CHECK(th_call_parse_hex("84 07 11 02 41 63", &r) && r.status == 0);
    if (th_call_parse_hex("83 08 12 02", &r)) {
        check_digest(&r, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
    CHECK(th_call_parse_hex("84 09 13 01 02", &r) && r.status == ML_STATUS_HANDLE_IN_USE);
    CHECK(th_call_parse_hex("84 0a 13 09 03", &r) && r.status == ML_STATUS_BAD_HANDLE);
    CHECK(th_call_parse_hex("83 0b 03 01", &r) && r.status == 0);
    CHECK(th_call_parse_hex("83 0c 03 02", &r) && r.status == 0);
}

/* A large update split in chunks equals the one-shot digest. */
ML_TEST(chunked_update_matches_oneshot)
{
    static uint8_t msg[4200];
    uint8_t out1[128], out2[128];
    struct th_reply r;
    th_boot();
    CHECK(th_call_parse_hex("84 01 10 01 06", &r) && r.status == 0);
    /* [2, 17, 1, bstr(4000)] then [3, 20, 6, bstr(4000)] */
    size_t n = ml_unhex("84 02 11 01 59 0fa0", msg, sizeof msg);
    memset(msg + n, 0x5a, 4000);
    CHECK(th_call(msg, n + 4000, out1, sizeof out1) != (size_t)-1);
    CHECK(th_call_parse_hex("83 03 12 01", &r) && r.status == 0);
    size_t d1 = r.result_len;
    uint8_t digest1[80];
    memcpy(digest1, r.result, d1 < sizeof digest1 ? d1 : sizeof digest1);
    n = ml_unhex("84 04 14 06 59 0fa0", msg, sizeof msg);
    memset(msg + n, 0x5a, 4000);
    size_t len = th_call(msg, n + 4000, out2, sizeof out2);
    CHECK(len != (size_t)-1 && th_parse(out2, len, &r) && r.status == 0);
    CHECK(r.result_len == d1 && memcmp(r.result, digest1, d1) == 0);
    CHECK(th_call_parse_hex("83 05 03 01", &r) && r.status == 0);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(md5),
        ML_CASE(sha1),
        ML_CASE(sha224),
        ML_CASE(sha256),
        ML_CASE(sha384),
        ML_CASE(sha512),
        ML_CASE(ripemd160),
        ML_CASE(sha3_224),
        ML_CASE(sha3_256),
        ML_CASE(sha3_384),
        ML_CASE(sha3_512),
        ML_CASE(copy_and_nondestructive_digest),
        ML_CASE(chunked_update_matches_oneshot),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
