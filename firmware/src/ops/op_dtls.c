/*
 * TLS module, DTLS 1.2 (spec.md 7.13): what a configuration of transport
 * "datagram" and its sessions add to the TLS engine (ops/op_tls.c,
 * ops/op_tls_conf.c).
 *
 * A datagram session's rings (struct ml_tls_io) hold whole datagrams, each
 * after its length (2 bytes, big-endian): tls_feed puts one in or none (the
 * queue is full), Mbed TLS's BIO reads one per call and writes one per call,
 * tls_take hands out the next. Mbed TLS never writes a datagram larger than
 * the session's MTU, at most ML_DTLS_DATAGRAM_MAX (what the rings and one
 * answer hold), so a datagram it wrote always fits an empty ring.
 *
 * Retransmission runs on the device's millisecond clock: Mbed TLS sets the
 * timer through mbedtls_ssl_set_timer_cb, every step answer of a datagram
 * session says when its final delay expires, and the host steps again then:
 * Mbed TLS resends its last flight (or gives up at the configuration's
 * highest delay, failing the session with MBEDTLS_ERR_SSL_TIMEOUT).
 *
 * A server with cookies (the default) answers a ClientHello without a valid
 * cookie with a HelloVerifyRequest and keeps no state of it: the session is
 * reset (mbedtls_ssl_session_reset) for the next ClientHello, whose client
 * the host names again with dtls_setup (the cookie covers it).
 */
#include <mbedtls/platform_time.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_heap.h"
#include "ops/ml_ops.h"
#include "ops/ml_tls.h"

#define MTU_MIN     64  /* the smallest MTU dtls_setup takes */
#define PEER_ID_MAX 255 /* bytes of a client's transport id */
#define LEN_BYTES   2   /* the length before each datagram in a ring */

/* ------------------------------------------------------------ configuration */

int ml_dtls_conf_transport(struct ml_call *call, const CborValue *map, bool *datagram)
{
    CborValue v;
    bool is = false;
    int st = ML_STATUS_OK;
    *datagram = false;
    ML_CHK(ml_tls_conf_field(call, map, "transport", &v));
    if (!cbor_value_is_valid(&v)) {
        goto cleanup;
    }
    if (!cbor_value_is_text_string(&v) || cbor_value_text_string_equals(&v, "datagram", &is) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: \"transport\" is a text string");
    }
    *datagram = is;
    if (!is && (cbor_value_text_string_equals(&v, "stream", &is) != CborNoError || !is)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"transport\" is \"stream\" or \"datagram\"");
    }
cleanup:
    return st;
}

/* A datagram configuration's key: present (*v valid) only on a datagram configuration. */
static int dgram_field(struct ml_call *call, const CborValue *map, const struct ml_tls_conf *c, const char *key,
                       CborValue *v)
{
    int st = ML_STATUS_OK;
    ML_CHK(ml_tls_conf_field(call, map, key, v));
    if (cbor_value_is_valid(v) && !c->datagram) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"%s\" is a datagram configuration's", key);
    }
cleanup:
    return st;
}

static int dgram_bool(struct ml_call *call, const CborValue *map, const struct ml_tls_conf *c, const char *key,
                      bool *out)
{
    CborValue v;
    int st = ML_STATUS_OK;
    ML_CHK(dgram_field(call, map, c, key, &v));
    if (cbor_value_is_valid(&v)) {
        ML_CHK(ml_arg_bool(call, &v, 2, out));
    }
cleanup:
    return st;
}

static int dgram_uint(struct ml_call *call, const CborValue *map, const struct ml_tls_conf *c, const char *key,
                      uint64_t max, uint64_t *out)
{
    CborValue v;
    int st = ML_STATUS_OK;
    ML_CHK(dgram_field(call, map, c, key, &v));
    if (cbor_value_is_valid(&v)) {
        ML_CHK(ml_arg_uint(call, &v, 2, out));
    }
    if (*out > max) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"%s\" is at most %llu", key, (unsigned long long)max);
    }
cleanup:
    return st;
}

/* hs_timeout: [min_ms, max_ms], 1 <= min <= max. */
static int hs_timeout(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    CborValue v, in;
    size_t n = 0;
    uint64_t lo = 0, hi = 0;
    int st = ML_STATUS_OK;
    ML_CHK(dgram_field(call, map, c, "hs_timeout", &v));
    if (!cbor_value_is_valid(&v)) {
        goto cleanup;
    }
    if (!cbor_value_is_array(&v) || !cbor_value_is_length_known(&v) ||
        cbor_value_get_array_length(&v, &n) != CborNoError || n != 2 ||
        cbor_value_enter_container(&v, &in) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: \"hs_timeout\" is [min_ms, max_ms]");
    }
    ML_CHK(ml_arg_uint(call, &in, 2, &lo));
    ML_CHK(ml_arg_uint(call, &in, 2, &hi));
    if (lo == 0 || lo > hi || hi > UINT32_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"hs_timeout\" needs 1 <= min_ms <= max_ms < 2^32");
    }
    mbedtls_ssl_conf_handshake_timeout(&c->ssl, (uint32_t)lo, (uint32_t)hi);
cleanup:
    return st;
}

int ml_dtls_conf(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    bool cookies = true, anti_replay = true;
    uint64_t badmac = 0, cid = 0;
    int st = ML_STATUS_OK;
    ML_CHK(dgram_bool(call, map, c, "cookies", &cookies));
    ML_CHK(dgram_bool(call, map, c, "anti_replay", &anti_replay));
    ML_CHK(dgram_uint(call, map, c, "badmac_limit", UINT32_MAX, &badmac));
    ML_CHK(dgram_uint(call, map, c, "cid", MBEDTLS_SSL_CID_IN_LEN_MAX, &cid));
    ML_CHK(hs_timeout(call, map, c));
    if (!c->datagram) {
        goto cleanup;
    }
    mbedtls_ssl_conf_dtls_anti_replay(&c->ssl,
                                      anti_replay ? MBEDTLS_SSL_ANTI_REPLAY_ENABLED : MBEDTLS_SSL_ANTI_REPLAY_DISABLED);
    mbedtls_ssl_conf_dtls_badmac_limit(&c->ssl, (unsigned)badmac);
    if (cid > 0) {
        ML_CHK_TLS(call, mbedtls_ssl_conf_cid(&c->ssl, (size_t)cid, MBEDTLS_SSL_UNEXPECTED_CID_IGNORE), "conf_cid");
        c->cid_len = (uint8_t)cid;
    }
    if (c->server && cookies) {
        c->cookies = ml_buf_alloc(sizeof *c->cookies);
        if (c->cookies == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the cookie key");
        }
        mbedtls_ssl_cookie_init(c->cookies);
        ML_CHK_TLS(call, mbedtls_ssl_cookie_setup(c->cookies, ml_busy_rng, NULL), "cookie_setup");
        mbedtls_ssl_conf_dtls_cookies(&c->ssl, mbedtls_ssl_cookie_write, mbedtls_ssl_cookie_check, c->cookies);
    } else if (c->server) {
        mbedtls_ssl_conf_dtls_cookies(&c->ssl, NULL, NULL, NULL); /* no HelloVerifyRequest */
    }
cleanup:
    return st;
}

void ml_dtls_conf_free(struct ml_tls_conf *c)
{
    if (c->cookies != NULL) {
        mbedtls_ssl_cookie_free(c->cookies);
        ml_buf_free(c->cookies, sizeof *c->cookies);
        c->cookies = NULL;
    }
}

/* ------------------------------------------------------------ datagram rings */

static void ring_skip(struct ml_tls_ring *r, size_t n)
{
    r->head = (r->head + n) % ML_CFG_TLS_RING;
    r->len -= n;
}

/* The length of the ring's first datagram (there is one). */
static size_t dgram_peek(const struct ml_tls_ring *r)
{
    return (size_t)r->buf[r->head] << 8 | r->buf[(r->head + 1) % ML_CFG_TLS_RING];
}

/* Puts a datagram whole after its length; false when it does not fit. */
static bool dgram_put(struct ml_tls_ring *r, const uint8_t *data, size_t len)
{
    const uint8_t hdr[LEN_BYTES] = {(uint8_t)(len >> 8), (uint8_t)len};
    if (ML_CFG_TLS_RING - r->len < LEN_BYTES + len) {
        return false;
    }
    (void)ml_tls_ring_put(r, hdr, LEN_BYTES);
    (void)ml_tls_ring_put(r, data, len);
    return true;
}

static int dgram_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct ml_tls_io *io = ctx;
    if (len > ML_DTLS_DATAGRAM_MAX) {
        return MBEDTLS_ERR_SSL_BAD_INPUT_DATA; /* never fits: the MTU keeps Mbed TLS below it */
    }
    if (!dgram_put(&io->out, buf, len)) {
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    io->out_dgrams++;
    return (int)len;
}

/* One datagram per call; the part past `cap` is dropped (as a socket does). */
static int dgram_recv(void *ctx, unsigned char *buf, size_t cap)
{
    struct ml_tls_io *io = ctx;
    if (io->in.len == 0) {
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    size_t len = dgram_peek(&io->in);
    ring_skip(&io->in, LEN_BYTES);
    size_t n = ml_tls_ring_get(&io->in, buf, len < cap ? len : cap);
    ring_skip(&io->in, len - n);
    return (int)n;
}

int ml_dtls_feed(struct ml_call *call, struct ml_tls_io *io, const uint8_t *data, size_t len, CborEncoder *result)
{
    int st = ML_STATUS_OK;
    if (len > ML_DTLS_DATAGRAM_MAX) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "a datagram of %lu bytes: this device takes at most %u", (unsigned long)len,
                (unsigned)ML_DTLS_DATAGRAM_MAX);
    }
    /* An empty datagram carries no record (and would read as end of file to Mbed TLS): taken, dropped. */
    (void)cbor_encode_uint(result, len == 0 || dgram_put(&io->in, data, len) ? len : 0);
cleanup:
    return st;
}

int ml_dtls_take(struct ml_call *call, struct ml_tls_io *io, uint64_t max, CborEncoder *result)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int st = ML_STATUS_OK;
    if (max > 0 && io->out_dgrams > 0) {
        n = dgram_peek(&io->out);
        buf = ml_buf_alloc(n);
        if (buf == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a datagram of %lu bytes", (unsigned long)n);
        }
        ring_skip(&io->out, LEN_BYTES);
        (void)ml_tls_ring_get(&io->out, buf, n);
        io->out_dgrams--;
    }
    (void)cbor_encode_byte_string(result, buf, n);
cleanup:
    ml_buf_free(buf, n);
    return st;
}

size_t ml_tls_pending(const struct ml_tls_io *io) { return io->out.len - LEN_BYTES * io->out_dgrams; }

/* ------------------------------------------------------------ timer */

static void timer_set(void *ctx, uint32_t int_ms, uint32_t fin_ms)
{
    struct ml_tls_io *io = ctx;
    io->timer_at = (uint64_t)mbedtls_ms_time();
    io->timer_int = int_ms;
    io->timer_fin = fin_ms;
}

/* Mbed TLS's f_get_timer: -1 cancelled, 0 running, 1 past the intermediate delay, 2 past the final one. */
static int timer_get(void *ctx)
{
    const struct ml_tls_io *io = ctx;
    if (io->timer_fin == 0) {
        return -1;
    }
    uint64_t elapsed = (uint64_t)mbedtls_ms_time() - io->timer_at;
    return elapsed >= io->timer_fin ? 2 : elapsed >= io->timer_int ? 1 : 0;
}

CborError ml_dtls_encode_timer(CborEncoder *a, const struct ml_tls_io *io)
{
    if (io->timer_fin == 0) {
        return cbor_encode_null(a);
    }
    uint64_t elapsed = (uint64_t)mbedtls_ms_time() - io->timer_at;
    return cbor_encode_uint(a, elapsed >= io->timer_fin ? 0 : io->timer_fin - elapsed);
}

/* ------------------------------------------------------------ sessions */

static void set_mtu(mbedtls_ssl_context *ssl, struct ml_tls_io *io, size_t mtu)
{
    io->mtu = (uint16_t)mtu;
    mbedtls_ssl_set_mtu(ssl, io->mtu);
}

int ml_dtls_session_init(struct ml_call *call, mbedtls_ssl_context *ssl, const struct ml_tls_conf *c,
                         struct ml_tls_io *io)
{
    uint8_t cid[MBEDTLS_SSL_CID_IN_LEN_MAX];
    int st = ML_STATUS_OK;
    io->datagram = true;
    mbedtls_ssl_set_bio(ssl, io, dgram_send, dgram_recv, NULL);
    mbedtls_ssl_set_timer_cb(ssl, io, timer_set, timer_get);
    set_mtu(ssl, io, ML_DTLS_DATAGRAM_MAX);
    if (c->cid_len > 0) {
        ML_CHK_TLS(call, ml_busy_rng(NULL, cid, c->cid_len), "cid");
        ML_CHK_TLS(call, mbedtls_ssl_set_cid(ssl, MBEDTLS_SSL_CID_ENABLED, cid, c->cid_len), "set_cid");
    }
cleanup:
    return st;
}

int ml_dtls_hello_verify(mbedtls_ssl_context *ssl, struct ml_tls_io *io)
{
    io->in.head = 0;
    io->in.len = 0;
    io->peer_set = false;
    io->timer_fin = 0;
    return mbedtls_ssl_session_reset(ssl);
}

int ml_dtls_check_step(struct ml_call *call, const struct ml_tls_conf *c, mbedtls_ssl_context *ssl,
                       const struct ml_tls_io *io)
{
    if (c->cookies != NULL && !io->peer_set && !mbedtls_ssl_is_handshake_over(ssl)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT,
                       "a cookie server needs its client's transport id (dtls_setup) before it steps");
    }
    return ML_STATUS_OK;
}

int ml_dtls_check_write(struct ml_call *call, const mbedtls_ssl_context *ssl, size_t len)
{
    int max = mbedtls_ssl_get_max_out_record_payload(ssl);
    if (max < 0) {
        return ml_fail_mbedtls(call, max, "max_out_record_payload");
    }
    if (len > (size_t)max) {
        return ml_fail(call, ML_STATUS_TOO_LARGE, "a datagram of %lu bytes: one record carries at most %d here",
                       (unsigned long)len, max);
    }
    return ML_STATUS_OK;
}

/* An optional bstr argument (null: *n = 0, *p = NULL). */
static int arg_bytes_or_null(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **p, size_t *n)
{
    *p = NULL;
    *n = 0;
    if (cbor_value_is_null(args)) {
        return cbor_value_advance_fixed(args) == CborNoError
                   ? ML_STATUS_OK
                   : ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: malformed", pos);
    }
    return ml_arg_bytes(call, args, pos, p, n);
}

int ml_dtls_setup(struct ml_call *call, CborValue *args, const struct ml_tls_conf *c, mbedtls_ssl_context *ssl,
                  struct ml_tls_io *io)
{
    const uint8_t *peer = NULL, *cid = NULL;
    size_t peer_len = 0, cid_len = 0;
    uint64_t mtu = 0;
    bool has_peer = false, has_mtu = false, has_cid = false;
    int st = ML_STATUS_OK;
    if (!io->datagram) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "not a datagram session");
    }
    has_peer = !cbor_value_is_null(args);
    ML_CHK(arg_bytes_or_null(call, args, 2, &peer, &peer_len));
    has_mtu = !cbor_value_is_null(args);
    if (has_mtu) {
        ML_CHK(ml_arg_uint(call, args, 3, &mtu));
    } else if (cbor_value_advance_fixed(args) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 3: malformed");
    }
    has_cid = !cbor_value_is_null(args);
    ML_CHK(arg_bytes_or_null(call, args, 4, &cid, &cid_len));
    if (has_peer && (peer_len == 0 || peer_len > PEER_ID_MAX || !c->server)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: a server's client transport id of 1 to %u bytes", PEER_ID_MAX);
    }
    if (has_mtu && (mtu < MTU_MIN || mtu > ML_DTLS_DATAGRAM_MAX)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: an MTU of %u to %u bytes", MTU_MIN,
                (unsigned)ML_DTLS_DATAGRAM_MAX);
    }
    if (has_cid && cid_len != c->cid_len) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 4: a CID of %u bytes (the configuration's \"cid\")",
                (unsigned)c->cid_len);
    }
    if ((has_peer || has_cid) && ssl->MBEDTLS_PRIVATE(state) > MBEDTLS_SSL_CLIENT_HELLO) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the peer and the CID go before the handshake starts");
    }
    if (has_peer) {
        ML_CHK_TLS(call, mbedtls_ssl_set_client_transport_id(ssl, peer, peer_len), "set_client_transport_id");
        io->peer_set = true;
    }
    if (has_mtu) {
        set_mtu(ssl, io, (size_t)mtu);
    }
    if (has_cid && cid_len > 0) {
        ML_CHK_TLS(call, mbedtls_ssl_set_cid(ssl, MBEDTLS_SSL_CID_ENABLED, cid, cid_len), "set_cid");
    }
cleanup:
    return st;
}

/* ------------------------------------------------------------ tls_info */

static CborError bytes_or_null(CborEncoder *map, const char *key, int enabled, const uint8_t *p, size_t n)
{
    CborError err = cbor_encode_text_stringz(map, key);
    return err | (enabled == MBEDTLS_SSL_CID_ENABLED ? cbor_encode_byte_string(map, p, n) : cbor_encode_null(map));
}

CborError ml_dtls_info(CborEncoder *map, mbedtls_ssl_context *ssl, const struct ml_tls_io *io)
{
    uint8_t own[MBEDTLS_SSL_CID_IN_LEN_MAX], peer[MBEDTLS_SSL_CID_OUT_LEN_MAX];
    size_t own_len = 0, peer_len = 0;
    int own_on = MBEDTLS_SSL_CID_DISABLED, peer_on = MBEDTLS_SSL_CID_DISABLED;
    if (io->datagram) {
        (void)mbedtls_ssl_get_own_cid(ssl, &own_on, own, &own_len);
        (void)mbedtls_ssl_get_peer_cid(ssl, &peer_on, peer, &peer_len); /* disabled until the handshake is over */
    }
    CborError err = cbor_encode_text_stringz(map, "transport");
    err |= cbor_encode_text_stringz(map, io->datagram ? "datagram" : "stream");
    err |= bytes_or_null(map, "cid", own_on, own, own_len);
    err |= bytes_or_null(map, "peer_cid", peer_on, peer, peer_len);
    err |= cbor_encode_text_stringz(map, "mtu");
    err |= io->datagram ? cbor_encode_uint(map, io->mtu) : cbor_encode_null(map);
    err |= cbor_encode_text_stringz(map, "badmac_seen");
    return err | cbor_encode_uint(map, io->datagram ? ssl->MBEDTLS_PRIVATE(badmac_seen_or_in_hsfraglen) : 0);
}
