/* The dispatcher and the link's handling of odd but valid, and invalid,
 * messages. */
#include <cbor.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_config.h"
#include "core/protocol_ids.h"
#include "dispatch/ml_dispatch.h"
#include "test_hal.h"
#include "test_util.h"

static void expect_error(const char *hex, uint64_t id, uint64_t status, const char *msg)
{
    struct th_reply r;
    if (!th_call_parse_hex(hex, &r)) {
        return;
    }
    CHECK(!r.is_event);
    CHECK_EQ(r.id, id);
    CHECK_EQ(r.status, status);
    CHECK_EQ(r.code, 0);
    if (msg != NULL && strcmp(r.msg, msg) != 0) {
        fprintf(stderr, "  request %s: message \"%s\", expected \"%s\"\n", hex, r.msg, msg);
        ml_test_fail(__FILE__, __LINE__, "error message");
    }
}

static void expect_raw(const char *hex, const char *want_hex)
{
    uint8_t got[256], want[256];
    size_t n = th_call_hex(hex, got, sizeof got);
    size_t w = ml_unhex(want_hex, want, sizeof want);
    if (n != w || memcmp(got, want, w) != 0) {
        fprintf(stderr, "  request %s, expected %s\n", hex, want_hex);
        if (n <= sizeof got) {
            ml_print_hex("got", got, n);
        }
        ml_test_fail(__FILE__, __LINE__, "raw response");
    }
}

static void expect_drop(const char *hex, uint64_t reason)
{
    struct th_reply r;
    if (!th_call_parse_hex(hex, &r)) {
        return;
    }
    CHECK(r.is_event);
    CHECK_EQ(r.status, ML_EVENT_FRAME_DROPPED);
    uint64_t got_reason = 0;
    CHECK(r.result_len == 1);
    got_reason = r.result[0];
    CHECK_EQ(got_reason, reason);
}

ML_TEST(non_minimal_heads)
{
    th_boot();
    /* array head 0x98 03, id as 0x1a 00000001, op as 0x18 01, bstr head 0x58 03 */
    expect_raw("98 03 1a 00000001 18 01 58 03 616263", "83 01 00 43 616263");
    /* id 0x1b (8 bytes), handle 0x19 0007, alg 0x1a 00000004 */
    expect_raw("84 1b 0000000000000002 10 19 0007 1a 00000004", "83 02 00 f6");
    expect_raw("83 03 03 1b 0000000000000007", "83 03 00 f6");
}

ML_TEST(indefinite_top_level_array)
{
    th_boot();
    expect_error("9f 01 01 43 616263 ff", 1, ML_STATUS_BAD_REQUEST, "the message must be a definite-length array");
}

ML_TEST(indefinite_byte_string)
{
    th_boot();
    expect_error("83 01 01 5f 41 61 41 62 ff", 1, ML_STATUS_BAD_REQUEST,
                 "arg 1: chunked byte strings are not supported");
}

ML_TEST(truncated_cbor)
{
    th_boot();
    expect_error("84 01 14 04 43 6162", 1, ML_STATUS_BAD_REQUEST, "malformed CBOR (unexpected end of data)");
    expect_error("84 02 14 04", 2, ML_STATUS_BAD_REQUEST, "malformed CBOR (unexpected end of data)");
}

ML_TEST(nesting_too_deep)
{
    th_boot();
    char req[128] = "83 01 01";
    for (int i = 0; i < 20; i++) {
        strcat(req, " 81");
    }
    strcat(req, " 40");
    expect_error(req, 1, ML_STATUS_BAD_REQUEST,
                 "malformed CBOR (internal error: too many nested containers found in recursive function)");
}

ML_TEST(trailing_bytes)
{
    th_boot();
    expect_error("83 01 01 40 00 00", 1, ML_STATUS_BAD_REQUEST, "2 bytes after the message");
}

ML_TEST(arity)
{
    th_boot();
    expect_error("84 01 01 40 40", 1, ML_STATUS_BAD_REQUEST, "op 1 takes 1 arg, got 2");
    expect_error("82 02 01", 2, ML_STATUS_BAD_REQUEST, "op 1 takes 1 arg, got 0");
    expect_error("83 03 14 04", 3, ML_STATUS_BAD_REQUEST, "op 20 takes 2 args, got 1");
    expect_error("83 04 02 00", 4, ML_STATUS_BAD_REQUEST, "op 2 takes 0 args, got 1");
    expect_error("84 05 00 40 40", 5, ML_STATUS_BAD_REQUEST, "op 0 takes 0 to 1 args, got 2");
    expect_error("81 06", 6, ML_STATUS_BAD_REQUEST, "missing op");
}

ML_TEST(wrong_types)
{
    th_boot();
    expect_error("83 01 01 63 616263", 1, ML_STATUS_BAD_REQUEST, "arg 1: expected a byte string");
    expect_error("84 02 10 61 61 04", 2, ML_STATUS_BAD_REQUEST, "arg 1: expected an unsigned integer");
    expect_error("84 03 10 20 04", 3, ML_STATUS_BAD_REQUEST, "arg 1: expected an unsigned integer");
    expect_error("84 04 10 01 f6", 4, ML_STATUS_BAD_REQUEST, "arg 2: expected an unsigned integer");
    expect_error("83 05 61 01 40", 5, ML_STATUS_BAD_REQUEST, "op must be an unsigned integer");
    expect_error("83 06 01 d8 40 40", 6, ML_STATUS_BAD_REQUEST, "arg 1: expected a byte string"); /* tag 64 */
}

ML_TEST(bad_values)
{
    th_boot();
    expect_error("84 01 10 00 04", 1, ML_STATUS_BAD_ARGUMENT, "arg 1: handle must be 1..4294967295");
    expect_error("84 02 10 1b 0000000100000000 04", 2, ML_STATUS_BAD_ARGUMENT, "arg 1: handle must be 1..4294967295");
    expect_error("84 03 10 01 00", 3, ML_STATUS_UNSUPPORTED_ALGORITHM, "hash algorithm 0 is not supported");
    expect_error("84 04 14 1b ffffffffffffffff 40", 4, ML_STATUS_UNSUPPORTED_ALGORITHM,
                 "hash algorithm 18446744073709551615 is not supported");
}

ML_TEST(huge_op)
{
    th_boot();
    expect_error("83 01 1b ffffffffffffffff 40", 1, ML_STATUS_UNKNOWN_OP, "unknown op 18446744073709551615");
    expect_error("82 02 1a 00010000", 2, ML_STATUS_UNKNOWN_OP, "unknown op 65536");
}

ML_TEST(max_request_id)
{
    th_boot();
    expect_raw("83 1a ffffffff 01 40", "83 1a ffffffff 00 40");
    expect_raw("83 00 01 40", "83 00 00 40");
}

ML_TEST(not_a_request_is_dropped)
{
    th_boot();
    expect_drop("83 1b 0000000100000000 01 40", ML_DROP_BAD_MESSAGE); /* id >= 2^32 */
    expect_drop("a0", ML_DROP_BAD_MESSAGE);
    expect_drop("80", ML_DROP_BAD_MESSAGE);
    expect_drop("81 20", ML_DROP_BAD_MESSAGE);
    expect_drop("82 f6 01", ML_DROP_BAD_MESSAGE);
    expect_drop("83 1a ffff", ML_DROP_BAD_MESSAGE); /* the id itself is truncated */
    expect_drop("ff", ML_DROP_BAD_MESSAGE);
}

ML_TEST(result_too_large)
{
    th_mtu = 64;
    th_boot();
    /* sha512 digest: the response needs 73 bytes, the MTU is 64 */
    expect_error("84 01 14 06 43 616263", 1, ML_STATUS_TOO_LARGE, "result does not fit the MTU");
    /* sha256 fits */
    struct th_reply r;
    CHECK(th_call_parse_hex("84 02 14 04 43 616263", &r) && r.status == 0);
}

ML_TEST(oversize_frame_is_dropped)
{
    th_mtu = 64;
    th_boot();
    uint8_t msg[80];
    size_t n = ml_unhex("83 01 01 58 3c", msg, sizeof msg);
    memset(msg + n, 0x11, 60);
    uint8_t out[64];
    size_t len = th_call(msg, n + 60, out, sizeof out);
    struct th_reply r;
    CHECK(len != (size_t)-1 && th_parse(out, len, &r));
    CHECK(r.is_event && r.status == ML_EVENT_FRAME_DROPPED && r.result[0] == ML_DROP_OVERSIZE);
    /* the link recovered */
    expect_raw("83 02 01 41 01", "83 02 00 41 01");
}

static void map_keys(const uint8_t *item, size_t len, char *keys, size_t cap)
{
    CborParser p;
    CborValue it, m;
    keys[0] = '\0';
    CHECK(cbor_parser_init(item, len, 0, &p, &it) == CborNoError && cbor_value_is_map(&it));
    CHECK(cbor_value_enter_container(&it, &m) == CborNoError);
    while (!cbor_value_at_end(&m)) {
        char k[32];
        size_t kl = sizeof k;
        CHECK(cbor_value_copy_text_string(&m, k, &kl, &m) == CborNoError);
        if (keys[0] != '\0') {
            strncat(keys, ",", cap - strlen(keys) - 1);
        }
        strncat(keys, k, cap - strlen(keys) - 1);
        CHECK(cbor_value_advance(&m) == CborNoError);
    }
}

ML_TEST(hello)
{
    struct th_reply r;
    char keys[512];
    th_boot();
    CHECK(th_call_parse_hex("82 01 00", &r) && r.status == 0);
    map_keys(r.result, r.result_len, keys, sizeof keys);
    CHECK(strcmp(keys, "proto,fw,mbedtls,board,mtu,window,max_handles,heap_size,heap_used,heap_peak,boot_id,entropy,"
                       "hashes,curves,key_store,persistent,slots,trust_cas_max,trust_crls_max,tls_sessions_max,"
                       "tls_in_record,tls_out_record,tls_ring,dtls") == 0);
    /* the hashes list: all eleven, in id order */
    static const uint8_t hashes[] = {0x66, 'h', 'a', 's', 'h', 'e', 's', 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    CHECK(memmem(r.result, r.result_len, hashes, sizeof hashes) != NULL);
    /* no store medium in the test HAL: no slots, nothing persists */
    static const uint8_t store[] = {0x69, 'k', 'e', 'y', '_',  's',  't',  'o', 'r', 'e', 0x68, 'v', 'o',
                                    'l',  'a', 't', 'i', 'l',  'e',  0x6a, 'p', 'e', 'r', 's',  'i', 's',
                                    't',  'e', 'n', 't', 0xf4, 0x65, 's',  'l', 'o', 't', 's',  0x00};
    CHECK(memmem(r.result, r.result_len, store, sizeof store) != NULL);
    static const uint8_t board[] = {0x65, 'b', 'o', 'a', 'r', 'd', 0x64, 't', 'e', 's', 't'};
    CHECK(memmem(r.result, r.result_len, board, sizeof board) != NULL);
    static const uint8_t mtu[] = {0x63, 'm', 't', 'u', 0x19, ML_CFG_MTU >> 8, ML_CFG_MTU & 0xff};
    CHECK(memmem(r.result, r.result_len, mtu, sizeof mtu) != NULL);
    /* with a seed of 64 bytes, and one too long */
    char req[300];
    strcpy(req, "83 02 00 58 40");
    for (int i = 0; i < 64; i++) {
        strcat(req, "ab");
    }
    CHECK(th_call_parse_hex(req, &r) && r.status == 0);
    strcpy(req, "83 03 00 58 41");
    for (int i = 0; i < 65; i++) {
        strcat(req, "ab");
    }
    expect_error(req, 3, ML_STATUS_BAD_ARGUMENT, "arg 1: seed must be at most 64 bytes, got 65");
}

ML_TEST(stats)
{
    struct th_reply r;
    char keys[512];
    th_boot();
    static const uint8_t bad_crc[] = {0xc0, 0x83, 0x09, 0x01, 0x41, 0x78, 0xfb, 0x12, 0x9f, 0xa9, 0xc0};
    th_rx(bad_crc, sizeof bad_crc);
    CHECK(th_call_parse_hex("82 01 02", &r) && r.status == 0);
    map_keys(r.result, r.result_len, keys, sizeof keys);
    CHECK(strcmp(keys,
                 "heap_size,heap_used,heap_peak,heap_blocks,handles_used,max_handles,rx_frames,rx_dropped,"
                 "rx_bad_crc,rx_bad_escape,rx_oversize,rx_too_short,rx_bad_message,rx_replayed,tx_frames,tx_dropped,"
                 "stack_peak,oom_answers,tls_sessions,tls_confs") == 0);
    static const uint8_t no_oom[] = {0x6b, 'o', 'o', 'm', '_', 'a', 'n', 's', 'w', 'e', 'r', 's', 0x00};
    CHECK(memmem(r.result, r.result_len, no_oom, sizeof no_oom) != NULL);
    static const uint8_t counters[] = {0x69, 'r', 'x', '_', 'f', 'r', 'a', 'm', 'e', 's', 0x01, 0x6a,
                                       'r',  'x', '_', 'd', 'r', 'o', 'p', 'p', 'e', 'd', 0x01, 0x6a,
                                       'r',  'x', '_', 'b', 'a', 'd', '_', 'c', 'r', 'c', 0x01};
    CHECK(memmem(r.result, r.result_len, counters, sizeof counters) != NULL);
    /* boot event + drop event went out before this reply */
    static const uint8_t tx[] = {0x69, 't', 'x', '_', 'f', 'r', 'a', 'm', 'e', 's', 0x02};
    CHECK(memmem(r.result, r.result_len, tx, sizeof tx) != NULL);
}

/* The dispatcher writes the CBOR response only; the link adds the CRC once
 * when it sends the frame (th_call checks and strips it). */
ML_TEST(dispatch_writes_cbor_only)
{
    th_boot();
    uint8_t req[16], tx[64], wire[64];
    size_t len = ml_unhex("83 05 01 43 616263", req, sizeof req); /* echo "abc" */
    size_t n = ml_dispatch(req, len, tx, sizeof tx);
    uint8_t want[16];
    size_t w = ml_unhex("83 05 00 43 616263", want, sizeof want);
    CHECK_EQ(n, w);
    CHECK(memcmp(tx, want, w) == 0);
    CHECK_EQ(th_call_hex("83 05 01 43 616263", wire, sizeof wire), w);
    CHECK(memcmp(wire, want, w) == 0);
    /* no room for even the error: nothing (the link drops it) */
    CHECK_EQ(ml_dispatch(req, len, tx, 3), 0);
}

static uint32_t sunk_id;
static uint64_t sunk_ms;
static void sink(uint32_t request_id, uint64_t elapsed_ms)
{
    sunk_id = request_id;
    sunk_ms = elapsed_ms;
}

/* core/ sends no frames itself: busy events go to the sink the link
 * registered at boot, which frames [null, 3, id, elapsed ms] with its CRC. */
ML_TEST(busy_events_leave_through_the_link)
{
    th_boot();
    uint64_t step = th_ms_step;
    uint32_t before = ml_busy_events_sent();
    th_ms_step = ML_BUSY_INTERVAL_MS;
    ml_busy_begin(7);
    ml_busy_tick(); /* starts the clock */
    ml_busy_tick(); /* one interval later: an event */
    ml_busy_end();
    ml_busy_tick(); /* nothing runs: nothing sent */
    CHECK_EQ(ml_busy_events_sent() - before, 1);
    CHECK_EQ(th_frame_count(), 1);
    uint8_t cbor[32];
    size_t n = th_frame(0, cbor, sizeof cbor);
    struct th_reply r;
    CHECK(n <= sizeof cbor && th_parse(cbor, n, &r));
    CHECK(r.is_event);
    CHECK_EQ(r.status, ML_EVENT_BUSY);
    CHECK_EQ(r.items, 4);

    ml_busy_set_sink(sink);
    ml_busy_begin(9);
    ml_busy_tick();
    ml_busy_tick();
    ml_busy_end();
    CHECK_EQ(sunk_id, 9);
    CHECK_EQ(sunk_ms, ML_BUSY_INTERVAL_MS);
    CHECK_EQ(th_frame_count(), 1); /* the sink sent nothing */
    th_ms_step = step;
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(non_minimal_heads),
        ML_CASE(indefinite_top_level_array),
        ML_CASE(indefinite_byte_string),
        ML_CASE(truncated_cbor),
        ML_CASE(nesting_too_deep),
        ML_CASE(trailing_bytes),
        ML_CASE(arity),
        ML_CASE(wrong_types),
        ML_CASE(bad_values),
        ML_CASE(huge_op),
        ML_CASE(max_request_id),
        ML_CASE(not_a_request_is_dropped),
        ML_CASE(result_too_large),
        ML_CASE(oversize_frame_is_dropped),
        ML_CASE(hello),
        ML_CASE(stats),
        ML_CASE(dispatch_writes_cbor_only),
        ML_CASE(busy_events_leave_through_the_link),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
