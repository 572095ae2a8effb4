/*
 * TLS module, sessions (spec.md 7.12): a sans-I/O TLS engine. A session
 * (ML_HT_TLS) is an mbedtls_ssl_context over a configuration (ml_tls.h)
 * and two rings of ML_CFG_TLS_RING bytes: `in` holds bytes from the network
 * that Mbed TLS has not read yet (tls_feed fills it), `out` bytes Mbed TLS
 * wrote for the network that the host has not taken yet (tls_take drains
 * it). Mbed TLS's BIO callbacks (mbedtls_ssl_set_bio) read and write the
 * rings and answer MBEDTLS_ERR_SSL_WANT_READ / WANT_WRITE when one is empty
 * / full, which the ops report as states: the host moves bytes and steps
 * again. The host never blocks the device: every op returns at once.
 *
 * Application data goes out only when a whole record fits the output ring
 * (tls_write cuts the data to what fits), so Mbed TLS never holds half a
 * record of a write the host thinks was refused. A fatal error leaves the
 * session failed: later feeds, steps, reads and writes answer the same error
 * (tls_take still hands out the alert Mbed TLS wrote, tls_info says why).
 * The heap a session holds is what its Mbed TLS calls allocated and did not
 * free (tls_info's `heap`); freeing the handle gives all of it back, failed
 * or not.
 */
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "core/ml_heap.h"
#include "ops/ml_ops.h"
#include "ops/ml_tls.h"
#include "ops/ml_x509.h"

#define HOSTNAME_MAX  255               /* bytes of a server name */
#define DATA_MAX      ML_TLS_ANSWER_MAX /* bytes one answer carries */
#define CERT_IN_INFO  (ML_CFG_MTU / 2)  /* a peer certificate tls_info carries */
#define HS_KEY_UPDATE 24                /* RFC 8446 HandshakeType key_update */
#define NONE          (-1)              /* no alert / no handshake message */

struct tls_obj {
    mbedtls_ssl_context ssl;
    struct ml_tls_conf *conf;
    int fatal;      /* the Mbed TLS error that ended the session, 0 while it lives */
    int alert;      /* the fatal alert the peer sent (RFC 8446 AlertDescription), NONE */
    int refused_hs; /* the post-handshake message Mbed TLS refused (HandshakeType), NONE */
    ptrdiff_t heap; /* heap bytes its Mbed TLS calls allocated and still hold */
    bool cert_step; /* the handshake ran the server's Certificate state: no resumption (tls_info) */
    struct ml_tls_io io;
};

static uint32_t sessions_live;

uint32_t ml_tls_sessions_live(void) { return sessions_live; }

static size_t heap_used(void)
{
    struct ml_heap_stats hs;
    ml_heap_get_stats(&hs);
    return hs.used;
}

/* Charges the session with what the heap grew by since `before`. */
static void charge(struct tls_obj *s, size_t before) { s->heap += (ptrdiff_t)heap_used() - (ptrdiff_t)before; }

size_t ml_tls_ring_put(struct ml_tls_ring *r, const uint8_t *src, size_t n)
{
    size_t room = ML_CFG_TLS_RING - r->len;
    n = n < room ? n : room;
    size_t tail = (r->head + r->len) % ML_CFG_TLS_RING;
    size_t first = n < ML_CFG_TLS_RING - tail ? n : ML_CFG_TLS_RING - tail;
    memcpy(r->buf + tail, src, first);
    memcpy(r->buf, src + first, n - first);
    r->len += n;
    return n;
}

size_t ml_tls_ring_get(struct ml_tls_ring *r, uint8_t *dst, size_t n)
{
    n = n < r->len ? n : r->len;
    size_t first = n < ML_CFG_TLS_RING - r->head ? n : ML_CFG_TLS_RING - r->head;
    memcpy(dst, r->buf + r->head, first);
    memcpy(dst + first, r->buf, n - first);
    r->head = (r->head + n) % ML_CFG_TLS_RING;
    r->len -= n;
    return n;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    size_t n = ml_tls_ring_put(&((struct ml_tls_io *)ctx)->out, buf, len);
    return n == 0 ? MBEDTLS_ERR_SSL_WANT_WRITE : (int)n;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    size_t n = ml_tls_ring_get(&((struct ml_tls_io *)ctx)->in, buf, len);
    return n == 0 ? MBEDTLS_ERR_SSL_WANT_READ : (int)n;
}

static void tls_dtor(void *obj)
{
    struct tls_obj *s = obj;
    mbedtls_ssl_free(&s->ssl);
    ml_tls_conf_release(s->conf);
    s->conf = NULL;
    sessions_live--;
}

static int tls_get(struct ml_call *call, uint32_t handle, struct tls_obj **s)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_get(call, handle, ML_HT_TLS, &p));
    *s = p;
cleanup:
    return st;
}

/* The live session behind `handle`: a session that failed answers its error again. */
static int tls_get_alive(struct ml_call *call, uint32_t handle, struct tls_obj **s)
{
    int st = ML_STATUS_OK;
    ML_CHK(tls_get(call, handle, s));
    if ((*s)->fatal != 0) {
        st = ml_fail_mbedtls(call, (*s)->fatal, "the session failed earlier");
    }
cleanup:
    return st;
}

int ml_tls_session_lookup(struct ml_call *call, uint32_t handle, mbedtls_ssl_context **ssl, struct ml_tls_conf **conf)
{
    struct tls_obj *s = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(tls_get_alive(call, handle, &s));
    *ssl = &s->ssl;
    *conf = s->conf;
cleanup:
    return st;
}

/* hostname: tstr / null into buf (NUL-terminated); *given says which. */
static int arg_hostname(struct ml_call *call, CborValue *args, char *buf, bool *given)
{
    size_t n = 0, got = HOSTNAME_MAX + 1;
    int st = ML_STATUS_OK;
    *given = false;
    if (cbor_value_is_null(args)) {
        goto cleanup;
    }
    if (!cbor_value_is_text_string(args) || !cbor_value_is_length_known(args) ||
        cbor_value_get_string_length(args, &n) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 3: expected a host name (text string) or null");
    }
    if (n == 0 || n > HOSTNAME_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: a host name has 1 to %u bytes", HOSTNAME_MAX);
    }
    if (cbor_value_copy_text_string(args, buf, &got, NULL) != CborNoError || strlen(buf) != n) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: malformed host name");
    }
    *given = true;
cleanup:
    return st;
}

int ml_op_tls_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, conf_handle = 0;
    struct ml_tls_conf *conf = NULL;
    struct tls_obj *s = NULL;
    void *p = NULL;
    char host[HOSTNAME_MAX + 1];
    bool named = false;
    size_t before = heap_used();
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_handle(call, args, 2, &conf_handle));
    ML_CHK(arg_hostname(call, args, host, &named));
    ML_CHK(ml_tls_conf_get(call, conf_handle, &conf));
    if (!conf->server && conf->verify && !named) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: a client that verifies the server needs its host name");
    }
    if (sessions_live >= ML_CFG_TLS_SESSIONS_MAX) {
        ML_FAIL(call, ML_STATUS_TOO_MANY_HANDLES, "all %u TLS sessions are in use", (unsigned)ML_CFG_TLS_SESSIONS_MAX);
    }
    ML_CHK(ml_handle_create(call, handle, ML_HT_TLS, sizeof(struct tls_obj), tls_dtor, &p));
    s = p;
    mbedtls_ssl_init(&s->ssl);
    s->alert = NONE;
    s->refused_hs = NONE;
    s->conf = conf;
    ml_tls_conf_hold(conf);
    sessions_live++;
    ML_CHK_TLS(call, mbedtls_ssl_setup(&s->ssl, &conf->ssl), "ssl_setup");
    if (named) {
        ML_CHK_TLS(call, mbedtls_ssl_set_hostname(&s->ssl, host), "ssl_set_hostname");
    }
    if (conf->datagram) {
        ML_CHK(ml_dtls_session_init(call, &s->ssl, conf, &s->io));
    } else {
        mbedtls_ssl_set_bio(&s->ssl, &s->io, bio_send, bio_recv, NULL);
    }
    charge(s, before);
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && s != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

int ml_op_tls_feed(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    struct tls_obj *s = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(tls_get_alive(call, handle, &s));
    if (s->io.datagram) {
        ML_CHK(ml_dtls_feed(call, &s->io, data, len, result));
    } else {
        (void)cbor_encode_uint(result, ml_tls_ring_put(&s->io.in, data, len));
    }
cleanup:
    return st;
}

int ml_op_tls_take(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t max = 0;
    struct tls_obj *s = NULL;
    uint8_t *buf = NULL;
    size_t n = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_uint(call, args, 2, &max));
    ML_CHK(tls_get(call, handle, &s));
    if (s->io.datagram) {
        ML_CHK(ml_dtls_take(call, &s->io, max, result));
        goto cleanup;
    }
    n = max < s->io.out.len ? (size_t)max : s->io.out.len;
    n = n < DATA_MAX ? n : DATA_MAX;
    buf = ml_buf_alloc(n);
    if (buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu output bytes", (unsigned long)n);
    }
    (void)ml_tls_ring_get(&s->io.out, buf, n);
    (void)cbor_encode_byte_string(result, buf, n);
cleanup:
    ml_buf_free(buf, n);
    return st;
}

/* Why the session failed, beyond Mbed TLS's code: the verify flags of a
 * certificate, the alert the peer sent, the post-handshake message Mbed TLS
 * 3.6 refuses (a TLS 1.3 KeyUpdate: -0x7700, spec.md 7.12). */
static int fail(struct ml_call *call, struct tls_obj *s, int ret, const char *what)
{
    mbedtls_ssl_context *ssl = &s->ssl;
    const unsigned char *msg = ssl->MBEDTLS_PRIVATE(in_msg);
    int type = ssl->MBEDTLS_PRIVATE(in_msgtype);
    s->fatal = ret;
    call->mbedtls_code = ret;
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        return ml_fail(call, ML_STATUS_CRYPTO_ERROR, "%s: the peer's certificate failed verification (flags 0x%lx)",
                       what, (unsigned long)mbedtls_ssl_get_verify_result(ssl));
    }
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && type == MBEDTLS_SSL_MSG_ALERT && msg != NULL) {
        s->alert = msg[1];
        return ml_fail(call, ML_STATUS_CRYPTO_ERROR, "%s: the peer sent fatal alert %d", what, s->alert);
    }
    if (ret == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE && mbedtls_ssl_is_handshake_over(ssl) &&
        type == MBEDTLS_SSL_MSG_HANDSHAKE && msg != NULL) {
        s->refused_hs = msg[0];
        return ml_fail(call, ML_STATUS_CRYPTO_ERROR, "%s: the peer's post-handshake %s (type %d) is not supported",
                       what, s->refused_hs == HS_KEY_UPDATE ? "KeyUpdate" : "message", s->refused_hs);
    }
    return ml_fail_mbedtls(call, ret, what);
}

/* The state an Mbed TLS return leaves the session in (ids.json tls_state);
 * anything else fails the session (fail()). */
static int state_of(struct ml_call *call, struct tls_obj *s, int ret, const char *what, uint64_t *state)
{
    int st = ML_STATUS_OK;
    switch (ret) {
    case MBEDTLS_ERR_SSL_WANT_READ:
        *state = ML_TLS_STATE_WANT_READ;
        break;
    case MBEDTLS_ERR_SSL_WANT_WRITE:
        *state = ML_TLS_STATE_WANT_WRITE;
        break;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
        *state = ML_TLS_STATE_CLOSED;
        break;
    case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
        *state = ML_TLS_STATE_TICKET;
        break;
    case MBEDTLS_ERR_SSL_HELLO_VERIFY_REQUIRED: {
        /* The HelloVerifyRequest is out; the session starts over for the next ClientHello. The reset
         * frees and makes the handshake state again after the caller charged the step: charged here,
         * else the session's heap figure grew by each HelloVerifyRequest an acceptor answered. */
        size_t before = heap_used();
        *state = ML_TLS_STATE_HELLO_VERIFY;
        s->cert_step = false;
        ret = ml_dtls_hello_verify(&s->ssl, &s->io);
        charge(s, before);
        if (ret != 0) {
            st = fail(call, s, ret, what);
        }
        break;
    }
    default:
        if (ret >= 0) {
            *state = ML_TLS_STATE_DONE;
            break;
        }
        st = fail(call, s, ret, what);
    }
    return st;
}

/* A step's answer: [state, (item,) pending output bytes (, timer: a datagram session's)]. */
static CborError open_answer(CborEncoder *result, CborEncoder *a, size_t items, uint64_t state, const struct tls_obj *s)
{
    CborError err = cbor_encoder_create_array(result, a, items + (s->io.datagram ? 1 : 0));
    return err | cbor_encode_uint(a, state);
}

static CborError close_answer(CborEncoder *result, CborEncoder *a, const struct tls_obj *s)
{
    CborError err = cbor_encode_uint(a, ml_tls_pending(&s->io));
    if (s->io.datagram) {
        err |= ml_dtls_encode_timer(a, &s->io);
    }
    return err | cbor_encoder_close_container(result, a);
}

/* [state, pending output bytes (, timer)] */
static void encode_state(CborEncoder *result, uint64_t state, const struct tls_obj *s)
{
    CborEncoder a;
    CborError err = open_answer(result, &a, 2, state, s);
    err |= close_answer(result, &a, s);
    (void)err; /* the dispatcher checks the encoder */
}

/* tls_handshake_step and tls_close_notify: [handle] -> [state, pending]. */
static int step(struct ml_call *call, CborValue *args, CborEncoder *result, int (*fn)(mbedtls_ssl_context *),
                const char *what)
{
    uint32_t handle = 0;
    struct tls_obj *s = NULL;
    uint64_t state = 0;
    size_t before = heap_used();
    int ret = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(tls_get_alive(call, handle, &s));
    ML_CHK(ml_dtls_check_step(call, s->conf, &s->ssl, &s->io));
    ret = fn(&s->ssl);
    charge(s, before);
    ML_CHK(state_of(call, s, ret, what, &state));
    encode_state(result, state, s);
cleanup:
    return st;
}

/* mbedtls_ssl_handshake one state at a time, noting whether it runs the
 * server's Certificate state: a resumed handshake (TLS 1.2 or 1.3) and a
 * TLS 1.3 one with an external PSK skip it. `ssl` is a tls_obj's first member. */
static int handshake(mbedtls_ssl_context *ssl)
{
    struct tls_obj *s = (struct tls_obj *)(void *)ssl;
    int ret = 0;
    while (ret == 0 && ssl->MBEDTLS_PRIVATE(state) != MBEDTLS_SSL_HANDSHAKE_OVER) {
        if (ssl->MBEDTLS_PRIVATE(state) == MBEDTLS_SSL_SERVER_CERTIFICATE) {
            s->cert_step = true;
        }
        ret = mbedtls_ssl_handshake_step(ssl);
    }
    return ret;
}

int ml_op_tls_handshake_step(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    return step(call, args, result, handshake, "handshake");
}

int ml_op_tls_read(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint64_t max = 0, state = 0;
    struct tls_obj *s = NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0, before = 0;
    int ret = 0;
    CborEncoder a;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_uint(call, args, 2, &max));
    ML_CHK(tls_get_alive(call, handle, &s));
    ML_CHK(ml_dtls_check_step(call, s->conf, &s->ssl, &s->io));
    cap = max < DATA_MAX ? (size_t)max : DATA_MAX;
    buf = ml_buf_alloc(cap);
    if (buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu plaintext bytes", (unsigned long)cap);
    }
    before = heap_used();
    ret = cap == 0 ? 0 : mbedtls_ssl_read(&s->ssl, buf, cap);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ && s->ssl.MBEDTLS_PRIVATE(state) != MBEDTLS_SSL_HANDSHAKE_OVER) {
        /* A TLS 1.3 NewSessionTicket was read and kept for the next call (a
         * resuming client): process it now, answering the ticket state. */
        ret = mbedtls_ssl_read(&s->ssl, buf, cap);
    }
    charge(s, before);
    ML_CHK(state_of(call, s, ret, "read", &state));
    n = ret > 0 ? (size_t)ret : 0;
    CborError err = open_answer(result, &a, 3, state, s);
    err |= cbor_encode_byte_string(&a, buf, n);
    err |= close_answer(result, &a, s);
    (void)err;
cleanup:
    ml_buf_free(buf, cap);
    return st;
}

int ml_op_tls_write(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0, room = 0, frame = 0, before = heap_used();
    struct tls_obj *s = NULL;
    uint64_t state = ML_TLS_STATE_DONE;
    int ret = 0, expansion = 0;
    CborEncoder a;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(tls_get_alive(call, handle, &s));
    if (!mbedtls_ssl_is_handshake_over(&s->ssl)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the handshake is not over");
    }
    if (s->ssl.MBEDTLS_PRIVATE(out_left) != 0) {
        /* A record (an alert, a ticket) still waits for room: a write of nothing flushes it. */
        ret = mbedtls_ssl_write(&s->ssl, data, 0);
    }
    expansion = mbedtls_ssl_get_record_expansion(&s->ssl);
    if (expansion < 0) {
        ML_CHK_TLS(call, expansion, "record_expansion");
    }
    /* A stream record of at least a byte; a datagram session's data whole, as one record after its length. */
    room = ML_CFG_TLS_RING - s->io.out.len;
    frame = s->io.datagram ? 2 : 0;
    if (s->io.datagram) {
        ML_CHK(ml_dtls_check_write(call, &s->ssl, len));
    }
    if (ret == 0 && s->ssl.MBEDTLS_PRIVATE(out_left) == 0 && room >= (size_t)expansion + frame + (frame ? len : 1) &&
        len > 0) {
        size_t n = room - (size_t)expansion - frame;
        ret = mbedtls_ssl_write(&s->ssl, data, n < len ? n : len);
    } else if (ret == 0 && len > 0) {
        ret = MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    charge(s, before);
    ML_CHK(state_of(call, s, ret, "write", &state));
    CborError err = open_answer(result, &a, 3, state, s);
    err |= cbor_encode_uint(&a, ret > 0 ? (uint64_t)ret : 0);
    err |= close_answer(result, &a, s);
    (void)err;
cleanup:
    return st;
}

int ml_op_tls_close_notify(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    return step(call, args, result, mbedtls_ssl_close_notify, "close_notify");
}

static CborError encode_text_or_null(CborEncoder *map, const char *key, const char *value)
{
    CborError err = cbor_encode_text_stringz(map, key);
    return err | (value != NULL ? cbor_encode_text_stringz(map, value) : cbor_encode_null(map));
}

static CborError encode_uint_or_null(CborEncoder *map, const char *key, int value)
{
    CborError err = cbor_encode_text_stringz(map, key);
    return err | (value != NONE ? cbor_encode_uint(map, (uint64_t)value) : cbor_encode_null(map));
}

/* A session whose handshake skipped the server's Certificate state resumed,
 * unless an external PSK did that (TLS 1.3 with a PSK or a PSK store). */
static bool resumed(const struct tls_obj *s)
{
    const mbedtls_ssl_config *c = &s->conf->ssl;
    bool external_psk = c->MBEDTLS_PRIVATE(psk) != NULL || c->MBEDTLS_PRIVATE(f_psk) != NULL;
    return !s->cert_step && (mbedtls_ssl_get_version_number(&s->ssl) == MBEDTLS_SSL_VERSION_TLS1_2 || !external_psk);
}

int ml_op_tls_info(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct tls_obj *s = NULL;
    CborEncoder map;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(tls_get(call, handle, &s));
    bool over = mbedtls_ssl_is_handshake_over(&s->ssl) != 0;
    uint32_t flags = mbedtls_ssl_get_verify_result(&s->ssl);
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&s->ssl);
    CborError err = cbor_encoder_create_map(result, &map, 15 + ML_DTLS_INFO_FIELDS);
    err |= cbor_encode_text_stringz(&map, "established");
    err |= cbor_encode_boolean(&map, over);
    err |= encode_text_or_null(&map, "version", over ? mbedtls_ssl_get_version(&s->ssl) : NULL);
    err |= encode_text_or_null(&map, "suite", over ? mbedtls_ssl_get_ciphersuite(&s->ssl) : NULL);
    err |= cbor_encode_text_stringz(&map, "suite_id");
    err |= over ? cbor_encode_uint(&map, (uint64_t)mbedtls_ssl_get_ciphersuite_id_from_ssl(&s->ssl))
                : cbor_encode_null(&map);
    err |= encode_text_or_null(&map, "alpn", mbedtls_ssl_get_alpn_protocol(&s->ssl));
    err |= cbor_encode_text_stringz(&map, "verify_flags");
    err |= flags != UINT32_MAX ? cbor_encode_uint(&map, flags) : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "peer_cert");
    err |= peer != NULL && peer->raw.len <= CERT_IN_INFO ? cbor_encode_byte_string(&map, peer->raw.p, peer->raw.len)
                                                         : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "pending");
    err |= cbor_encode_uint(&map, ml_tls_pending(&s->io));
    err |= cbor_encode_text_stringz(&map, "ring");
    err |= cbor_encode_uint(&map, ML_CFG_TLS_RING);
    err |= cbor_encode_text_stringz(&map, "fatal");
    err |= cbor_encode_int(&map, s->fatal);
    err |= encode_uint_or_null(&map, "alert", s->alert);
    err |= encode_uint_or_null(&map, "refused_hs", s->refused_hs);
    err |= cbor_encode_text_stringz(&map, "in_pending");
    err |= cbor_encode_uint(&map, s->io.in.len + s->ssl.MBEDTLS_PRIVATE(in_left));
    err |= cbor_encode_text_stringz(&map, "heap");
    err |= cbor_encode_uint(&map, s->heap > 0 ? (uint64_t)s->heap : 0);
    err |= cbor_encode_text_stringz(&map, "resumed");
    err |= cbor_encode_boolean(&map, over && resumed(s));
    err |= ml_dtls_info(&map, &s->ssl, &s->io);
    err |= cbor_encoder_close_container(result, &map);
    (void)err;
cleanup:
    return st;
}

int ml_op_dtls_setup(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct tls_obj *s = NULL;
    size_t before = heap_used();
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(tls_get_alive(call, handle, &s));
    ML_CHK(ml_dtls_setup(call, args, s->conf, &s->ssl, &s->io));
    (void)cbor_encode_null(result);
cleanup:
    if (s != NULL) {
        charge(s, before); /* the client's transport id is on the heap */
    }
    return st;
}

int ml_op_tls_peer_chain(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, chain = 0;
    struct tls_obj *s = NULL;
    uint64_t n = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_handle(call, args, 2, &chain));
    ML_CHK(tls_get(call, handle, &s));
    const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&s->ssl);
    if (peer == NULL || peer->version == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the peer sent no certificate");
    }
    for (; peer != NULL && peer->version != 0; peer = peer->next, n++) {
        ML_CHK(ml_x509_crt_add_der(call, chain, peer->raw.p, peer->raw.len));
    }
    (void)cbor_encode_uint(result, n);
cleanup:
    if (st != ML_STATUS_OK && n > 0) {
        (void)ml_handle_free(call, chain);
    }
    return st;
}
