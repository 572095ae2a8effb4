/* The TLS ops through the protocol, device against itself: a client and a
 * server session on one device, configured with the same PSK, run a TLS 1.2
 * handshake by moving bytes between their rings (tls_take from one,
 * tls_feed into the other) and exchange application data both ways; a
 * wrong PSK fails the handshake with Mbed TLS's code and the session stays
 * failed; a verifying client without a host name and one session past the
 * limit are refused; the handle table and the heap end at their baseline
 * (th_shutdown checks the heap after every case). */
#include <cbor.h>
#include <mbedtls/ssl.h>
#include <string.h>

#include "core/ml_handles.h"
#include "core/protocol_ids.h"
#include "ops/ml_tls.h"
#include "test_hal.h"
#include "test_util.h"

static uint8_t req[ML_CFG_MTU];
static uint8_t frame[ML_CFG_MTU];
static struct th_reply rep;
static uint32_t req_id = 1;
static CborEncoder req_enc, req_args;
static uint32_t failed_side; /* the session whose step failed in handshake() */

/* Starts a request of `op` with `n` arguments; add them to req_args, then send(). */
static void begin(uint32_t op, size_t n)
{
    cbor_encoder_init(&req_enc, req, sizeof req, 0);
    CborError err = cbor_encoder_create_array(&req_enc, &req_args, 2 + n);
    err |= cbor_encode_uint(&req_args, req_id++);
    err |= cbor_encode_uint(&req_args, op);
    CHECK(err == CborNoError);
}

/* Sends the request; the reply lands in rep. Returns its status. */
static uint64_t send(void)
{
    CHECK(cbor_encoder_close_container(&req_enc, &req_args) == CborNoError);
    size_t n = th_call(req, cbor_encoder_get_buffer_size(&req_enc, req), frame, sizeof frame);
    CHECK(n != (size_t)-1 && th_parse(frame, n, &rep) && !rep.is_event);
    return rep.status;
}

/* tls_conf_new: a TLS 1.2 client or server with one PSK and no certificates. */
static uint64_t conf_psk(uint32_t handle, bool server, const char *key)
{
    static const uint8_t id[] = "device-test";
    CborEncoder map, psk;
    begin(ML_OP_TLS_CONF_NEW, 2);
    CborError err = cbor_encode_uint(&req_args, handle);
    err |= cbor_encoder_create_map(&req_args, &map, 4);
    err |= cbor_encode_text_stringz(&map, "server");
    err |= cbor_encode_boolean(&map, server);
    err |= cbor_encode_text_stringz(&map, "verify");
    err |= cbor_encode_uint(&map, ML_TLS_VERIFY_NONE);
    err |= cbor_encode_text_stringz(&map, "max_version");
    err |= cbor_encode_uint(&map, MBEDTLS_SSL_VERSION_TLS1_2);
    err |= cbor_encode_text_stringz(&map, "psk");
    err |= cbor_encoder_create_array(&map, &psk, 2);
    err |= cbor_encode_byte_string(&psk, id, sizeof id - 1);
    err |= cbor_encode_byte_string(&psk, (const uint8_t *)key, strlen(key));
    err |= cbor_encoder_close_container(&map, &psk);
    err |= cbor_encoder_close_container(&req_args, &map);
    CHECK(err == CborNoError);
    return send();
}

static uint64_t tls_new(uint32_t handle, uint32_t conf)
{
    begin(ML_OP_TLS_NEW, 3);
    CborError err = cbor_encode_uint(&req_args, handle);
    err |= cbor_encode_uint(&req_args, conf);
    err |= cbor_encode_null(&req_args);
    CHECK(err == CborNoError);
    return send();
}

/* An op on a session with no argument, a uint or bytes after the handle. */
static uint64_t on(uint32_t op, uint32_t handle, const uint8_t *data, size_t len, uint64_t num)
{
    begin(op, op == ML_OP_TLS_HANDSHAKE_STEP || op == ML_OP_FREE || op == ML_OP_TLS_CLOSE_NOTIFY ? 1 : 2);
    CborError err = cbor_encode_uint(&req_args, handle);
    if (op == ML_OP_TLS_FEED || op == ML_OP_TLS_WRITE) {
        err |= cbor_encode_byte_string(&req_args, data, len);
    } else if (op == ML_OP_TLS_TAKE || op == ML_OP_TLS_READ) {
        err |= cbor_encode_uint(&req_args, num);
    }
    CHECK(err == CborNoError);
    return send();
}

/* The uints of an array result ([state, pending], [state, written, pending]); a bstr item is copied to data. */
static void result_items(uint64_t *out, size_t n, uint8_t *data, size_t *data_len)
{
    CborParser p;
    CborValue v, in;
    CHECK_EQ(rep.status, 0);
    CHECK(cbor_parser_init(rep.result, rep.result_len, 0, &p, &v) == CborNoError);
    CHECK(cbor_value_is_array(&v) && cbor_value_enter_container(&v, &in) == CborNoError);
    for (size_t i = 0; i < n; i++) {
        if (cbor_value_is_byte_string(&in)) {
            CHECK(cbor_value_copy_byte_string(&in, data, data_len, &in) == CborNoError);
            out[i] = *data_len;
        } else {
            CHECK(cbor_value_get_uint64(&in, &out[i]) == CborNoError);
            CHECK(cbor_value_advance_fixed(&in) == CborNoError);
        }
    }
}

/* Moves what `from` wrote into `to`; returns the byte count. */
static size_t move(uint32_t from, uint32_t to)
{
    static uint8_t buf[ML_CFG_TLS_RING];
    size_t n = sizeof buf, moved = 0;
    CHECK_EQ(on(ML_OP_TLS_TAKE, from, NULL, 0, sizeof buf), 0);
    CborParser p;
    CborValue v;
    CHECK(cbor_parser_init(rep.result, rep.result_len, 0, &p, &v) == CborNoError);
    CHECK(cbor_value_copy_byte_string(&v, buf, &n, NULL) == CborNoError);
    while (moved < n) {
        CHECK_EQ(on(ML_OP_TLS_FEED, to, buf + moved, n - moved, 0), 0);
        CborValue took;
        uint64_t k = 0;
        CHECK(cbor_parser_init(rep.result, rep.result_len, 0, &p, &took) == CborNoError);
        CHECK(cbor_value_get_uint64(&took, &k) == CborNoError);
        CHECK(k > 0); /* the peer's ring empties as it steps below */
        moved += (size_t)k;
        if (moved < n) {
            CHECK_EQ(on(ML_OP_TLS_HANDSHAKE_STEP, to, NULL, 0, 0), 0);
        }
    }
    return n;
}

/* Steps both sides, moving bytes, until both are done; false when a step fails. */
static bool handshake(uint32_t cli, uint32_t srv)
{
    uint64_t st[2] = {1, 1}, item[2];
    for (int round = 0; round < 40 && (st[0] != 0 || st[1] != 0); round++) {
        const uint32_t side[2] = {cli, srv};
        for (int i = 0; i < 2; i++) {
            if (on(ML_OP_TLS_HANDSHAKE_STEP, side[i], NULL, 0, 0) != 0) {
                failed_side = side[i];
                return false;
            }
            result_items(item, 2, NULL, NULL);
            st[i] = item[0];
            while (move(side[i], side[1 - i]) > 0) {
            }
        }
    }
    return st[0] == 0 && st[1] == 0;
}

/* Boots with the fake clock stopped: handshakes draw random numbers through
 * ml_busy_rng, whose ticks would otherwise send busy events between replies. */
static void boot(void)
{
    th_ms_step = 0;
    th_boot();
}

static void setup_pair(const char *client_key)
{
    boot();
    CHECK_EQ(conf_psk(1, false, client_key), 0);
    CHECK_EQ(conf_psk(2, true, "0123456789abcdef"), 0);
    CHECK_EQ(tls_new(10, 1), 0);
    CHECK_EQ(tls_new(11, 2), 0);
}

ML_TEST(psk_handshake_and_data)
{
    static const char hello[] = "client to server", reply[] = "server to client";
    uint8_t got[64];
    uint64_t item[3];
    setup_pair("0123456789abcdef");
    CHECK(handshake(10, 11));
    /* The configurations' handles may go: the sessions keep them. */
    CHECK_EQ(on(ML_OP_FREE, 1, NULL, 0, 0), 0);
    CHECK_EQ(on(ML_OP_FREE, 2, NULL, 0, 0), 0);
    const uint32_t pair[2][2] = {{10, 11}, {11, 10}};
    const char *msgs[2] = {hello, reply};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(on(ML_OP_TLS_WRITE, pair[i][0], (const uint8_t *)msgs[i], strlen(msgs[i]), 0), 0);
        result_items(item, 3, NULL, NULL);
        CHECK_EQ(item[0], ML_TLS_STATE_DONE);
        CHECK_EQ(item[1], strlen(msgs[i]));
        CHECK(move(pair[i][0], pair[i][1]) > strlen(msgs[i]));
        CHECK_EQ(on(ML_OP_TLS_READ, pair[i][1], NULL, 0, sizeof got), 0);
        size_t n = sizeof got;
        result_items(item, 3, got, &n);
        CHECK_EQ(item[0], ML_TLS_STATE_DONE);
        CHECK(n == strlen(msgs[i]) && memcmp(got, msgs[i], n) == 0);
    }
    /* close_notify reaches the server as the closed state. */
    CHECK_EQ(on(ML_OP_TLS_CLOSE_NOTIFY, 10, NULL, 0, 0), 0);
    CHECK(move(10, 11) > 0);
    CHECK_EQ(on(ML_OP_TLS_READ, 11, NULL, 0, sizeof got), 0);
    size_t n = sizeof got;
    result_items(item, 3, got, &n);
    CHECK_EQ(item[0], ML_TLS_STATE_CLOSED);
    CHECK_EQ(on(ML_OP_FREE, 10, NULL, 0, 0), 0);
    CHECK_EQ(on(ML_OP_FREE, 11, NULL, 0, 0), 0);
    CHECK_EQ(ml_handles_used(), 0);
}

ML_TEST(wrong_psk_fails_and_stays_failed)
{
    setup_pair("fedcba9876543210");
    CHECK(!handshake(10, 11));
    CHECK_EQ(rep.status, ML_STATUS_CRYPTO_ERROR);
    CHECK(rep.code < 0);
    int64_t code = rep.code;
    /* The failed session answers the same error again. */
    CHECK_EQ(on(ML_OP_TLS_HANDSHAKE_STEP, failed_side, NULL, 0, 0), ML_STATUS_CRYPTO_ERROR);
    CHECK(rep.code == code && strstr(rep.msg, "failed earlier") != NULL);
}

ML_TEST(refusals)
{
    boot();
    CborEncoder map;
    /* A client that verifies (the default) needs a host name. */
    begin(ML_OP_TLS_CONF_NEW, 2);
    CborError err = cbor_encode_uint(&req_args, 1);
    err |= cbor_encoder_create_map(&req_args, &map, 0);
    err |= cbor_encoder_close_container(&req_args, &map);
    CHECK(err == CborNoError);
    CHECK_EQ(send(), 0);
    CHECK_EQ(tls_new(10, 1), ML_STATUS_BAD_ARGUMENT);
    CHECK(strstr(rep.msg, "host name") != NULL);
    /* A server needs a certificate or a PSK. */
    begin(ML_OP_TLS_CONF_NEW, 2);
    err = cbor_encode_uint(&req_args, 2);
    err |= cbor_encoder_create_map(&req_args, &map, 1);
    err |= cbor_encode_text_stringz(&map, "server");
    err |= cbor_encode_boolean(&map, true);
    err |= cbor_encoder_close_container(&req_args, &map);
    CHECK(err == CborNoError);
    CHECK_EQ(send(), ML_STATUS_BAD_ARGUMENT);
    /* One session past the limit. */
    CHECK_EQ(conf_psk(3, false, "0123456789abcdef"), 0);
    for (uint32_t i = 0; i < ML_CFG_TLS_SESSIONS_MAX; i++) {
        CHECK_EQ(tls_new(20 + i, 3), 0);
    }
    CHECK_EQ(tls_new(99, 3), ML_STATUS_TOO_MANY_HANDLES);
    CHECK(strstr(rep.msg, "TLS sessions") != NULL);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(psk_handshake_and_data),
        ML_CASE(wrong_psk_fails_and_stays_failed),
        ML_CASE(refusals),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
