/* The record of answers (link/ml_record.h, spec.md §6), through the real
 * link and dispatcher: a request repeated with the same id and bytes is a
 * resend, answered byte for byte from the record without running again. */
#include <cbor.h>
#include <string.h>

#include "app/ml_core.h"
#include "core/ml_config.h"
#include "core/protocol_ids.h"
#include "link/ml_record.h"
#include "test_hal.h"
#include "test_util.h"

#define R ML_RECORD_ENTRIES

/* A request `[id, op, args...]`: each arg a uint (<2^32) or, when the
 * matching `data` is non-NULL, a byte string of that uint's length. */
struct req {
    uint8_t buf[128];
    size_t len;
};

static struct req build(uint32_t id, uint32_t op, size_t nargs, const uint32_t *args, const uint8_t *const *data)
{
    struct req q;
    CborEncoder enc, arr;
    cbor_encoder_init(&enc, q.buf, sizeof q.buf, 0);
    CborError err = cbor_encoder_create_array(&enc, &arr, 2 + nargs);
    err |= cbor_encode_uint(&arr, id);
    err |= cbor_encode_uint(&arr, op);
    for (size_t i = 0; i < nargs; i++) {
        err |= data != NULL && data[i] != NULL ? cbor_encode_byte_string(&arr, data[i], args[i])
                                               : cbor_encode_uint(&arr, args[i]);
    }
    err |= cbor_encoder_close_container(&enc, &arr);
    CHECK(err == CborNoError);
    q.len = cbor_encoder_get_buffer_size(&enc, q.buf);
    return q;
}

/* The answer to one request: its CBOR. */
struct answer {
    uint8_t buf[ML_CFG_MTU];
    size_t len;
};

static struct answer call(const struct req *q)
{
    struct answer a;
    a.len = th_call(q->buf, q->len, a.buf, sizeof a.buf);
    CHECK(a.len <= sizeof a.buf);
    return a;
}

static bool same(const struct answer *a, const struct answer *b)
{
    return a->len == b->len && memcmp(a->buf, b->buf, a->len) == 0;
}

static struct req rng_bytes(uint32_t id, uint32_t n) { return build(id, ML_OP_RNG_BYTES, 1, &n, NULL); }

static struct req echo(uint32_t id, const char *text)
{
    const uint32_t n = (uint32_t)strlen(text);
    const uint8_t *data[] = {(const uint8_t *)text};
    return build(id, ML_OP_ECHO, 1, &n, data);
}

static struct req hash_new(uint32_t id, uint32_t handle)
{
    const uint32_t args[] = {handle, ML_HASH_SHA256};
    return build(id, ML_OP_HASH_NEW, 2, args, NULL);
}

static struct req hash_update(uint32_t id, uint32_t handle, const char *text)
{
    const uint32_t args[] = {handle, (uint32_t)strlen(text)};
    const uint8_t *data[] = {NULL, (const uint8_t *)text};
    return build(id, ML_OP_HASH_UPDATE, 2, args, data);
}

static struct req hash_digest(uint32_t id, uint32_t handle) { return build(id, ML_OP_HASH_DIGEST, 1, &handle, NULL); }

/* The answer `[id, 0, h'<hex>']`. */
static void expect_bytes(const struct answer *a, uint32_t id, const char *hex)
{
    uint8_t want[80];
    size_t n = ml_unhex(hex, want, sizeof want);
    struct th_reply r;
    CHECK(th_parse(a->buf, a->len, &r));
    CHECK_EQ(r.id, id);
    CHECK_EQ(r.status, 0);
    uint8_t head[2] = {0x58, (uint8_t)n}; /* bstr, length in one more byte */
    size_t h = n < 24 ? 1 : 2;
    if (n < 24) {
        head[0] = (uint8_t)(0x40 + n);
    }
    CHECK(r.result_len == h + n && memcmp(r.result, head, h) == 0 && memcmp(r.result + h, want, n) == 0);
}

static uint64_t stat(const char *key)
{
    static uint32_t id = 0xFFFFFF00u; /* ids of its own, never repeated */
    const struct req q = build(id++, ML_OP_STATS, 0, NULL, NULL);
    struct answer a = call(&q);
    struct th_reply r;
    CborParser p;
    CborValue it, m;
    uint64_t value = UINT64_MAX;
    CHECK(th_parse(a.buf, a.len, &r) && r.status == 0);
    CHECK(cbor_parser_init(r.result, r.result_len, 0, &p, &it) == CborNoError && cbor_value_is_map(&it));
    CHECK(cbor_value_enter_container(&it, &m) == CborNoError);
    while (!cbor_value_at_end(&m)) {
        bool match = false;
        CHECK(cbor_value_text_string_equals(&m, key, &match) == CborNoError);
        CHECK(cbor_value_advance(&m) == CborNoError);
        if (match) {
            CHECK(cbor_value_get_uint64(&m, &value) == CborNoError);
        }
        CHECK(cbor_value_advance(&m) == CborNoError);
    }
    return value;
}

#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* A resent hash_update is not fed twice: the digest is the one of a single
 * update; the resend's answer is the first one's, byte for byte. */
ML_TEST(resent_update_runs_once)
{
    th_boot();
    struct req q = hash_new(1, 7);
    struct answer a = call(&q);
    CHECK(a.len == 4); /* [1, 0, null] */
    q = hash_update(2, 7, "abc");
    struct answer first = call(&q);
    struct answer again = call(&q);
    CHECK(same(&first, &again));
    q = hash_digest(3, 7);
    a = call(&q);
    expect_bytes(&a, 3, SHA256_ABC);
    CHECK_EQ(stat("rx_replayed"), 1);
}

/* rng_bytes resent: the same bytes, not new ones; a new id: new bytes. */
ML_TEST(resent_rng_bytes_returns_the_same_bytes)
{
    th_boot();
    struct req q = rng_bytes(1, 32);
    struct answer first = call(&q);
    struct answer again = call(&q);
    CHECK(first.len == 3 + 2 + 32);
    CHECK(same(&first, &again));
    q = rng_bytes(2, 32);
    struct answer other = call(&q);
    CHECK(memcmp(first.buf + 5, other.buf + 5, 32) != 0);
    CHECK_EQ(stat("rx_replayed"), 1);
}

/* The same id with other bytes (ids wrapped after 2^32, or a careless
 * host) is a new request: it runs. */
ML_TEST(same_id_other_bytes_runs)
{
    th_boot();
    struct req q = hash_new(1, 7);
    (void)call(&q);
    q = hash_update(2, 7, "ab");
    (void)call(&q);
    q = hash_update(2, 7, "c");
    (void)call(&q);
    q = hash_digest(3, 7);
    struct answer a = call(&q);
    expect_bytes(&a, 3, SHA256_ABC);
    q = echo(4, "one");
    a = call(&q);
    expect_bytes(&a, 4, "6f6e65");
    q = echo(4, "two");
    a = call(&q);
    expect_bytes(&a, 4, "74776f");
    q = echo(4, "one"); /* "one" was forgotten when "two" took id 4 */
    a = call(&q);
    expect_bytes(&a, 4, "6f6e65");
    CHECK_EQ(stat("rx_replayed"), 0);
}

/* Exactly R answers: after R - 1 later requests the first is still
 * recorded; the R-th later request pushes it out and its resend runs. */
ML_TEST(record_holds_window_answers)
{
    th_boot();
    CHECK_EQ(R, ML_CFG_WINDOW);
    struct req first = rng_bytes(1, 16);
    struct answer a1 = call(&first);
    for (uint32_t id = 2; id <= R; id++) {
        struct req q = echo(id, "x");
        (void)call(&q);
    }
    struct answer again = call(&first); /* a replay takes no entry */
    CHECK(same(&a1, &again));
    struct req q = echo(R + 1, "x");
    (void)call(&q);
    again = call(&first);
    CHECK(!same(&a1, &again)); /* ran again: other random bytes */
    CHECK_EQ(stat("rx_replayed"), 1);
    /* the new answer is recorded in turn */
    struct answer third = call(&first);
    CHECK(same(&again, &third));
}

/* Error answers are recorded like results: the resend gets the same error,
 * even when running it now would succeed. */
ML_TEST(error_answer_replays)
{
    th_boot();
    struct req digest = hash_digest(1, 9);
    struct answer first = call(&digest);
    struct th_reply r;
    CHECK(th_parse(first.buf, first.len, &r) && r.status == ML_STATUS_BAD_HANDLE);
    struct req q = hash_new(2, 9);
    (void)call(&q);
    struct answer again = call(&digest);
    CHECK(same(&first, &again));
    CHECK_EQ(stat("rx_replayed"), 1);
}

/* A reboot forgets every answer: the resend runs in the new boot. */
ML_TEST(reboot_clears_the_record)
{
    th_boot();
    struct req q = rng_bytes(1, 32);
    struct answer first = call(&q);
    CHECK(ml_core_reboot() == 0);
    th_clear();
    struct answer again = call(&q);
    CHECK(!same(&first, &again));
    CHECK_EQ(stat("rx_replayed"), 0);
}

/* hello opens a session: the answers to ids after its own belong to an
 * earlier session whose ids went further (a new session's ids start again)
 * and are forgotten; the answers to ids before it may still be resent by
 * the same host and replay. */
ML_TEST(hello_forgets_other_sessions)
{
    th_boot();
    struct req old[3];
    struct answer a_old[3];
    for (uint32_t i = 0; i < 3; i++) {
        old[i] = rng_bytes(5 + i, 32); /* an earlier session's requests 5..7 */
        a_old[i] = call(&old[i]);
    }
    struct req h = build(1, ML_OP_HELLO, 0, NULL, NULL); /* a new session starts at id 1 */
    struct answer hello = call(&h);
    for (uint32_t i = 0; i < 3; i++) {
        struct answer b = call(&old[i]); /* the new session's own requests 5..7 run */
        CHECK(!same(&a_old[i], &b));
    }
    struct answer hello_again = call(&h); /* hello itself stays recorded */
    CHECK(same(&hello, &hello_again));
    /* within a session: the answers before a hello stay */
    struct req q98 = rng_bytes(98, 32), q99 = rng_bytes(99, 32);
    struct answer a98 = call(&q98), a99 = call(&q99);
    h = build(100, ML_OP_HELLO, 0, NULL, NULL);
    (void)call(&h);
    struct answer b98 = call(&q98), b99 = call(&q99);
    CHECK(same(&a98, &b98) && same(&a99, &b99));
    /* modulo 2^32: ids 2^32 - 2 and 2^32 - 1 are before id 1 */
    struct req wrap = rng_bytes(0xFFFFFFFEu, 32);
    struct answer a_wrap = call(&wrap);
    h = build(1, ML_OP_HELLO, 1, (const uint32_t[]){4}, (const uint8_t *const[]){(const uint8_t *)"seed"});
    (void)call(&h);
    struct answer b_wrap = call(&wrap);
    CHECK(same(&a_wrap, &b_wrap));
    CHECK_EQ(stat("rx_replayed"), 4);
}

/* A request the link drops (not a request) takes no entry and replays
 * nothing; frames with a bad CRC never reach the record. */
ML_TEST(drops_take_no_entry)
{
    th_boot();
    struct req first = rng_bytes(1, 16);
    struct answer a1 = call(&first);
    for (uint32_t id = 2; id <= R; id++) {
        struct req q = echo(id, "x");
        (void)call(&q);
    }
    uint8_t not_request[] = {0x82, 0xf6, 0x01};
    struct answer drop;
    drop.len = th_call(not_request, sizeof not_request, drop.buf, sizeof drop.buf);
    struct th_reply r;
    CHECK(th_parse(drop.buf, drop.len, &r) && r.is_event && r.status == ML_EVENT_FRAME_DROPPED);
    static const uint8_t bad_crc[] = {0xc0, 0x83, 0x09, 0x01, 0x41, 0x78, 0xfb, 0x12, 0x9f, 0xa9, 0xc0};
    th_clear();
    th_rx(bad_crc, sizeof bad_crc);
    CHECK(th_frame_count() == 1); /* the frame_dropped event only */
    struct answer again = call(&first);
    CHECK(same(&a1, &again));
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(resent_update_runs_once),      ML_CASE(resent_rng_bytes_returns_the_same_bytes),
        ML_CASE(same_id_other_bytes_runs),     ML_CASE(record_holds_window_answers),
        ML_CASE(error_answer_replays),         ML_CASE(reboot_clears_the_record),
        ML_CASE(hello_forgets_other_sessions), ML_CASE(drops_take_no_entry),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
