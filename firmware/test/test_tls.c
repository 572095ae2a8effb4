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
#include "hal/ml_hal.h"
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

#define STREAM (-1) /* conf_psk's cid for a TLS (stream) configuration */

/* tls_conf_new: a TLS 1.2 client or server with one PSK and no certificates;
 * with cid >= 0 a DTLS 1.2 one with that own CID length (and the server's
 * default cookies). */
static uint64_t conf_psk_transport(uint32_t handle, bool server, const char *key, int cid)
{
    static const uint8_t id[] = "device-test";
    CborEncoder map, psk;
    begin(ML_OP_TLS_CONF_NEW, 2);
    CborError err = cbor_encode_uint(&req_args, handle);
    err |= cbor_encoder_create_map(&req_args, &map, cid == STREAM ? 4 : 6);
    if (cid != STREAM) {
        err |= cbor_encode_text_stringz(&map, "transport");
        err |= cbor_encode_text_stringz(&map, "datagram");
        err |= cbor_encode_text_stringz(&map, "cid");
        err |= cbor_encode_uint(&map, (uint64_t)cid);
    }
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

static uint64_t conf_psk(uint32_t handle, bool server, const char *key)
{
    return conf_psk_transport(handle, server, key, STREAM);
}

/* tls_conf_new with one boolean key. */
static uint64_t conf_bool(uint32_t handle, const char *key, bool value)
{
    CborEncoder map;
    begin(ML_OP_TLS_CONF_NEW, 2);
    CborError err = cbor_encode_uint(&req_args, handle);
    err |= cbor_encoder_create_map(&req_args, &map, 1);
    err |= cbor_encode_text_stringz(&map, key);
    err |= cbor_encode_boolean(&map, value);
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
    begin(op, op == ML_OP_TLS_HANDSHAKE_STEP || op == ML_OP_FREE || op == ML_OP_TLS_CLOSE_NOTIFY || op == ML_OP_TLS_INFO
                  ? 1
                  : 2);
    CborError err = cbor_encode_uint(&req_args, handle);
    if (op == ML_OP_TLS_FEED || op == ML_OP_TLS_WRITE) {
        err |= cbor_encode_byte_string(&req_args, data, len);
    } else if (op == ML_OP_TLS_TAKE || op == ML_OP_TLS_READ) {
        err |= cbor_encode_uint(&req_args, num);
    }
    CHECK(err == CborNoError);
    return send();
}

/* The uints of an array result ([state, pending], [state, written, pending]); a bstr item is copied to data,
 * a null one (a datagram session's timer when none is armed) reads UINT64_MAX. */
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
        } else if (cbor_value_is_null(&in)) {
            out[i] = UINT64_MAX;
            CHECK(cbor_value_advance_fixed(&in) == CborNoError);
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
    CHECK_EQ(conf_bool(2, "server", true), ML_STATUS_BAD_ARGUMENT);
    /* One session past the limit. */
    CHECK_EQ(conf_psk(3, false, "0123456789abcdef"), 0);
    for (uint32_t i = 0; i < ML_CFG_TLS_SESSIONS_MAX; i++) {
        CHECK_EQ(tls_new(20 + i, 3), 0);
    }
    CHECK_EQ(tls_new(99, 3), ML_STATUS_TOO_MANY_HANDLES);
    CHECK(strstr(rep.msg, "TLS sessions") != NULL);
}

/* ---------------------------------------------------------------- DTLS */

#define KEY      "0123456789abcdef"
#define NO_TIMER UINT64_MAX

/* dtls_setup [handle, peer / null, mtu / null (0), cid / null]. */
static uint64_t dtls_setup(uint32_t handle, const char *peer, uint64_t mtu, const uint8_t *cid, size_t cid_len)
{
    begin(ML_OP_DTLS_SETUP, 4);
    CborError err = cbor_encode_uint(&req_args, handle);
    err |= peer != NULL ? cbor_encode_byte_string(&req_args, (const uint8_t *)peer, strlen(peer))
                        : cbor_encode_null(&req_args);
    err |= mtu != 0 ? cbor_encode_uint(&req_args, mtu) : cbor_encode_null(&req_args);
    err |= cid != NULL ? cbor_encode_byte_string(&req_args, cid, cid_len) : cbor_encode_null(&req_args);
    CHECK(err == CborNoError);
    return send();
}

/* A datagram session's handshake step: its state; the answer's pending bytes and timer (NO_TIMER: null). */
static uint64_t dstep(uint32_t handle, uint64_t *pending, uint64_t *timer)
{
    uint64_t item[3];
    CHECK_EQ(on(ML_OP_TLS_HANDSHAKE_STEP, handle, NULL, 0, 0), 0);
    result_items(item, 3, NULL, NULL);
    *pending = item[1];
    *timer = item[2];
    return item[0];
}

/* The next datagram `from` wrote (its length, 0 when none waits). */
static size_t take_dgram(uint32_t from, uint8_t *buf, size_t cap)
{
    size_t n = cap;
    CborParser p;
    CborValue v;
    CHECK_EQ(on(ML_OP_TLS_TAKE, from, NULL, 0, 1), 0);
    CHECK(cbor_parser_init(rep.result, rep.result_len, 0, &p, &v) == CborNoError);
    CHECK(cbor_value_copy_byte_string(&v, buf, &n, NULL) == CborNoError);
    return n;
}

static uint64_t uint_result(void)
{
    CborParser p;
    CborValue v;
    uint64_t n = 0;
    CHECK_EQ(rep.status, 0);
    CHECK(cbor_parser_init(rep.result, rep.result_len, 0, &p, &v) == CborNoError);
    CHECK(cbor_value_get_uint64(&v, &n) == CborNoError);
    return n;
}

/* Moves each datagram `from` wrote into `to`, whole; the count. */
static int dmove(uint32_t from, uint32_t to)
{
    static uint8_t buf[ML_DTLS_DATAGRAM_MAX];
    int count = 0;
    for (size_t n; (n = take_dgram(from, buf, sizeof buf)) > 0; count++) {
        CHECK_EQ(on(ML_OP_TLS_FEED, to, buf, n, 0), 0);
        CHECK_EQ(uint_result(), n); /* these flights fit the ring */
    }
    return count;
}

/* Steps two datagram sessions, moving datagrams, until both are done. */
static bool dhandshake(uint32_t cli, uint32_t srv)
{
    uint64_t st[2] = {1, 1}, pending = 0, timer = 0;
    const uint32_t side[2] = {cli, srv};
    for (int round = 0; round < 20 && (st[0] != 0 || st[1] != 0); round++) {
        for (int i = 0; i < 2; i++) {
            st[i] = dstep(side[i], &pending, &timer);
            (void)dmove(side[i], side[1 - i]);
        }
    }
    return st[0] == 0 && st[1] == 0;
}

/* The device's clock moves on by ms (the fake clock stands still otherwise). */
static void clock_advance(uint64_t ms)
{
    th_ms_step = ms;
    (void)ml_hal_millis();
    th_ms_step = 0;
}

/* tls_info's bstr under key into buf (*n its length); false when null. */
static bool info_bytes(uint32_t handle, const char *key, uint8_t *buf, size_t *n)
{
    CborParser p;
    CborValue map, v;
    CHECK_EQ(on(ML_OP_TLS_INFO, handle, NULL, 0, 0), 0);
    CHECK(cbor_parser_init(rep.result, rep.result_len, 0, &p, &map) == CborNoError);
    CHECK(cbor_value_map_find_value(&map, key, &v) == CborNoError && cbor_value_is_valid(&v));
    if (cbor_value_is_null(&v)) {
        return false;
    }
    CHECK(cbor_value_is_byte_string(&v) || cbor_value_is_text_string(&v));
    if (cbor_value_is_text_string(&v)) {
        CHECK(cbor_value_copy_text_string(&v, (char *)buf, n, NULL) == CborNoError);
    } else {
        CHECK(cbor_value_copy_byte_string(&v, buf, n, NULL) == CborNoError);
    }
    return true;
}

/* Writes msg on `from`, checks its datagram is one tls12_cid record (RFC 9146,
 * content type 25) carrying the receiver's CID after the sequence number,
 * and reads it on `to`; returns the datagram for a replay. */
static size_t send_cid_record(uint32_t from, uint32_t to, const char *msg, const uint8_t *cid, size_t cid_len,
                              uint8_t *dgram, size_t cap)
{
    uint8_t got[64];
    uint64_t item[4];
    size_t n = sizeof got;
    (void)dmove(from, to); /* a flight resent for a retransmitted one the handshake ended with */
    CHECK_EQ(on(ML_OP_TLS_WRITE, from, (const uint8_t *)msg, strlen(msg), 0), 0);
    result_items(item, 4, NULL, NULL);
    CHECK_EQ(item[0], ML_TLS_STATE_DONE);
    CHECK_EQ(item[1], strlen(msg));
    size_t len = take_dgram(from, dgram, cap);
    CHECK(len > 11 + cid_len + strlen(msg));
    CHECK_EQ(dgram[0], MBEDTLS_SSL_MSG_CID);
    CHECK(memcmp(dgram + 11, cid, cid_len) == 0);
    CHECK_EQ(on(ML_OP_TLS_FEED, to, dgram, len, 0), 0);
    CHECK_EQ(uint_result(), len);
    CHECK_EQ(on(ML_OP_TLS_READ, to, NULL, 0, sizeof got), 0);
    result_items(item, 4, got, &n);
    CHECK_EQ(item[0], ML_TLS_STATE_DONE);
    CHECK(n == strlen(msg) && memcmp(got, msg, n) == 0);
    return len;
}

ML_TEST(dtls_cookie_retransmit_cid)
{
    static const char peer[] = "192.0.2.7:5684";
    uint8_t cli_cid[32], srv_cid[32], buf[ML_DTLS_DATAGRAM_MAX], got[64];
    size_t cli_len = sizeof cli_cid, srv_len = sizeof srv_cid, n = 0;
    uint64_t pending = 0, timer = 0, timer2 = 0, item[4];
    boot();
    CHECK_EQ(conf_psk_transport(1, false, KEY, 4), 0);
    CHECK_EQ(conf_psk_transport(2, true, KEY, 6), 0);
    CHECK_EQ(tls_new(10, 1), 0);
    CHECK_EQ(tls_new(11, 2), 0);
    /* A cookie server does not step before it knows its client. */
    CHECK_EQ(on(ML_OP_TLS_HANDSHAKE_STEP, 11, NULL, 0, 0), ML_STATUS_BAD_ARGUMENT);
    CHECK(strstr(rep.msg, "transport id") != NULL);
    CHECK_EQ(dtls_setup(11, peer, 0, NULL, 0), 0);
    /* ClientHello; the server answers HelloVerifyRequest and starts over. */
    CHECK_EQ(dstep(10, &pending, &timer), ML_TLS_STATE_WANT_READ);
    CHECK(pending > 0 && timer == 1000); /* Mbed TLS's default first delay, on a clock standing still */
    CHECK_EQ(dmove(10, 11), 1);
    CHECK_EQ(dstep(11, &pending, &timer), ML_TLS_STATE_HELLO_VERIFY);
    CHECK(pending > 0 && timer == NO_TIMER);
    CHECK_EQ(dmove(11, 10), 1);
    CHECK_EQ(on(ML_OP_TLS_HANDSHAKE_STEP, 11, NULL, 0, 0), ML_STATUS_BAD_ARGUMENT); /* reset: no client again */
    CHECK_EQ(dtls_setup(11, peer, 0, NULL, 0), 0);
    /* The ClientHello with the cookie passes; the server's flight is lost. */
    CHECK_EQ(dstep(10, &pending, &timer), ML_TLS_STATE_WANT_READ);
    CHECK_EQ(dmove(10, 11), 1);
    CHECK_EQ(dstep(11, &pending, &timer), ML_TLS_STATE_WANT_READ);
    CHECK(pending > 0 && timer != NO_TIMER);
    while (take_dgram(11, buf, sizeof buf) > 0) {
    }
    /* The client's timer fires: it sends the ClientHello again with a doubled
     * delay, and the server, seeing its peer's last flight again, resends its own. */
    CHECK_EQ(dstep(10, &pending, &timer), ML_TLS_STATE_WANT_READ);
    CHECK(pending == 0 && timer > 0 && timer != NO_TIMER);
    clock_advance(timer - 1);
    CHECK_EQ(dstep(10, &pending, &timer2), ML_TLS_STATE_WANT_READ);
    CHECK(pending == 0 && timer2 == 1); /* not yet */
    clock_advance(1);
    CHECK_EQ(dstep(10, &pending, &timer2), ML_TLS_STATE_WANT_READ);
    CHECK(pending > 0 && timer2 == 2 * timer);
    CHECK_EQ(dmove(10, 11), 1);
    CHECK_EQ(dstep(11, &pending, &timer), ML_TLS_STATE_WANT_READ);
    CHECK(pending > 0);
    CHECK(dhandshake(10, 11));
    /* Each side offered its CID and uses the other's. */
    CHECK(info_bytes(10, "cid", cli_cid, &cli_len) && cli_len == 4);
    CHECK(info_bytes(11, "cid", srv_cid, &srv_len) && srv_len == 6);
    n = sizeof buf;
    CHECK(info_bytes(10, "peer_cid", buf, &n) && n == srv_len && memcmp(buf, srv_cid, n) == 0);
    n = sizeof buf;
    CHECK(info_bytes(11, "peer_cid", buf, &n) && n == cli_len && memcmp(buf, cli_cid, n) == 0);
    n = sizeof buf;
    CHECK(info_bytes(10, "version", buf, &n) && strcmp((const char *)buf, "DTLSv1.2") == 0);
    /* Data both ways in tls12_cid records; a replayed record is dropped. */
    size_t len = send_cid_record(10, 11, "client to server", srv_cid, srv_len, buf, sizeof buf);
    CHECK_EQ(on(ML_OP_TLS_FEED, 11, buf, len, 0), 0);
    CHECK_EQ(on(ML_OP_TLS_READ, 11, NULL, 0, sizeof got), 0);
    n = sizeof got;
    result_items(item, 4, got, &n);
    CHECK(item[0] == ML_TLS_STATE_WANT_READ && n == 0);
    (void)send_cid_record(11, 10, "server to client", cli_cid, cli_len, buf, sizeof buf);
    CHECK_EQ(on(ML_OP_FREE, 10, NULL, 0, 0), 0);
    CHECK_EQ(on(ML_OP_FREE, 11, NULL, 0, 0), 0);
}

ML_TEST(dtls_refusals)
{
    static uint8_t big[ML_DTLS_DATAGRAM_MAX + 1];
    static const uint8_t cid[3] = {1, 2, 3};
    uint64_t pending = 0, timer = 0;
    CborEncoder map;
    boot();
    /* No DTLS 1.3; datagram keys on a stream configuration. */
    begin(ML_OP_TLS_CONF_NEW, 2);
    CborError err = cbor_encode_uint(&req_args, 1);
    err |= cbor_encoder_create_map(&req_args, &map, 2);
    err |= cbor_encode_text_stringz(&map, "transport");
    err |= cbor_encode_text_stringz(&map, "datagram");
    err |= cbor_encode_text_stringz(&map, "max_version");
    err |= cbor_encode_uint(&map, MBEDTLS_SSL_VERSION_TLS1_3);
    err |= cbor_encoder_close_container(&req_args, &map);
    CHECK(err == CborNoError);
    CHECK_EQ(send(), ML_STATUS_UNSUPPORTED_ALGORITHM);
    CHECK_EQ(conf_bool(1, "cookies", false), ML_STATUS_BAD_ARGUMENT);
    CHECK(strstr(rep.msg, "datagram") != NULL);
    /* A stream session has no dtls_setup. */
    CHECK_EQ(conf_psk(1, false, KEY), 0);
    CHECK_EQ(tls_new(10, 1), 0);
    CHECK_EQ(dtls_setup(10, NULL, 1000, NULL, 0), ML_STATUS_BAD_ARGUMENT);
    CHECK(strstr(rep.msg, "not a datagram session") != NULL);
    /* A datagram client: no peer id, an MTU in range, a CID of its length, none once started. */
    CHECK_EQ(conf_psk_transport(2, false, KEY, 3), 0);
    CHECK_EQ(tls_new(11, 2), 0);
    CHECK_EQ(dtls_setup(11, "peer", 0, NULL, 0), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(dtls_setup(11, NULL, 63, NULL, 0), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(dtls_setup(11, NULL, ML_DTLS_DATAGRAM_MAX + 1, NULL, 0), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(dtls_setup(11, NULL, 0, cid, 2), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(dtls_setup(11, NULL, 200, cid, 3), 0);
    size_t n = 16;
    uint8_t got[16];
    CHECK(info_bytes(11, "cid", got, &n) && n == 3 && memcmp(got, cid, 3) == 0);
    /* The ClientHello keeps to the MTU, in fragments; a datagram past datagram_max is too_large. */
    CHECK_EQ(dstep(11, &pending, &timer), ML_TLS_STATE_WANT_READ);
    CHECK(pending > 200);
    for (size_t k = 0; (k = take_dgram(11, big, sizeof big)) > 0; pending -= k) {
        CHECK(k <= 200);
    }
    CHECK_EQ(pending, 0);
    CHECK_EQ(dtls_setup(11, NULL, 0, cid, 3), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(on(ML_OP_TLS_FEED, 11, big, sizeof big, 0), ML_STATUS_TOO_LARGE);
    /* The handshake is not over: no data yet. */
    CHECK_EQ(on(ML_OP_TLS_WRITE, 11, big, 10, 0), ML_STATUS_BAD_ARGUMENT);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(psk_handshake_and_data),
        ML_CASE(wrong_psk_fails_and_stays_failed),
        ML_CASE(refusals),
        ML_CASE(dtls_cookie_retransmit_cid),
        ML_CASE(dtls_refusals),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
