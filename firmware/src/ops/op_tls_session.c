/*
 * TLS module, resumption (spec.md 7.12): a client saves the session it
 * established (tls_session_get) and sets it on a new session before the
 * handshake (tls_session_set); a configuration that asks for resumption
 * (tls_conf_new "resumption") has the client ask for tickets, TLS 1.2's and
 * TLS 1.3's, and a server issue them under its own ticket keys.
 *
 * A saved session leaves the device only sealed, and nothing of it stays
 * here: mbedtls_ssl_session_save's bytes (master or resumption secret, ticket,
 * the peer's certificate) are encrypted and authenticated with AES-256-GCM
 * under a key of their own, HMAC-SHA-256(per-boot wrap key, label), the wrap
 * key being obj_wrap's (core/ml_rng.h), so neither kind of blob passes for
 * the other:
 *
 *   blob      = ML_HT_TLS (1) || TLS version (2, big-endian, in the clear) || nonce (12) || ciphertext || tag (16)
 *   AAD       = boot id (8) || ML_HT_TLS (1) || TLS version (2)
 *   plaintext = format version (1) || mbedtls_ssl_session_save output
 *
 * where a session of a datagram configuration (DTLS 1.2) has DTLS 1.2's wire
 * version 0xFEFD as its clear version (its own is TLS 1.2's 0x0303), so a
 * saved DTLS session is set on DTLS sessions only and a TLS one on TLS ones;
 * so the host can read which version a blob resumes but not edit it, a blob
 * from another device or boot (or an obj_wrap blob) does not authenticate
 * (auth_failed), and no session is set from it.
 */
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl_ticket.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_device.h"
#include "core/ml_handles.h"
#include "core/ml_rng.h"
#include "ops/ml_ops.h"
#include "ops/ml_tls.h"

#define HDR_LEN        3u /* type, TLS version */
#define NONCE_LEN      12u
#define TAG_LEN        16u
#define FORMAT_VERSION 1u
#define SEAL_OVERHEAD  (HDR_LEN + NONCE_LEN + 1u + TAG_LEN)
#define AAD_LEN        (sizeof ml_device.boot_id + HDR_LEN)
#define LIFETIME_MAX   604800u /* seconds a ticket may live (RFC 8446 4.6.1) */
#define LIFETIME_DFLT  7200u   /* OpenSSL's default */
#define DTLS12_WIRE    0xFEFDu /* a saved DTLS 1.2 session's clear version */

/* ------------------------------------------------------------ configurations */

static int conf_key(struct ml_call *call, const CborValue *map, const char *key, CborValue *v)
{
    if (cbor_value_map_find_value(map, key, v) != CborNoError) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg 2: malformed map");
    }
    return ML_STATUS_OK;
}

int ml_tls_conf_resumption(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    CborValue v;
    bool on = false;
    uint64_t lifetime = LIFETIME_DFLT;
    int st = ML_STATUS_OK;
    ML_CHK(conf_key(call, map, "resumption", &v));
    if (cbor_value_is_valid(&v)) {
        ML_CHK(ml_arg_bool(call, &v, 2, &on));
    }
    ML_CHK(conf_key(call, map, "ticket_lifetime", &v));
    if (cbor_value_is_valid(&v)) {
        ML_CHK(ml_arg_uint(call, &v, 2, &lifetime));
        if (!on || !c->server || lifetime == 0 || lifetime > LIFETIME_MAX) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT,
                    "arg 2: \"ticket_lifetime\" is 1 to %u seconds, for a resuming server", LIFETIME_MAX);
        }
    }
    if (!c->server) {
        /* TLS 1.2 tickets are on by default in Mbed TLS; TLS 1.3 tickets only with the signal (3.6.1+). */
        mbedtls_ssl_conf_session_tickets(&c->ssl, on ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED
                                                     : MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
        mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
            &c->ssl, on ? MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED
                        : MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_DISABLED);
    } else if (on) {
        c->tickets = ml_buf_alloc(sizeof *c->tickets);
        if (c->tickets == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for ticket keys");
        }
        mbedtls_ssl_ticket_init(c->tickets);
        ML_CHK_TLS(
            call,
            mbedtls_ssl_ticket_setup(c->tickets, ml_busy_rng, NULL, MBEDTLS_CIPHER_AES_256_GCM, (uint32_t)lifetime),
            "ssl_ticket_setup");
        mbedtls_ssl_conf_session_tickets_cb(&c->ssl, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, c->tickets);
    }
    c->resumption = on;
cleanup:
    return st;
}

void ml_tls_conf_resumption_free(struct ml_tls_conf *c)
{
    if (c->tickets != NULL) {
        mbedtls_ssl_ticket_free(c->tickets);
        ml_buf_free(c->tickets, sizeof *c->tickets);
        c->tickets = NULL;
    }
}

/* ------------------------------------------------------------ sealing */

/* GCM under the session-sealing key, and the AAD of a blob whose header is hdr. */
static int seal_key(struct ml_call *call, mbedtls_gcm_context *gcm, const uint8_t hdr[HDR_LEN], uint8_t aad[AAD_LEN])
{
    static const char label[] = "mbedlink tls_session seal";
    const uint8_t *wrap = ml_rng_wrap_key();
    uint8_t key[32];
    int st = ML_STATUS_OK;
    memcpy(aad, ml_device.boot_id, sizeof ml_device.boot_id);
    memcpy(aad + sizeof ml_device.boot_id, hdr, HDR_LEN);
    if (wrap == NULL) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "the DRBG failed to seed at boot: no session can be sealed");
    }
    ML_CHK_TLS(call,
               mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), wrap, ML_RNG_WRAP_KEY_SIZE,
                               (const unsigned char *)label, sizeof label - 1, key),
               "md_hmac");
    ML_CHK_TLS(call, mbedtls_gcm_setkey(gcm, MBEDTLS_CIPHER_ID_AES, key, 8 * sizeof key), "gcm_setkey");
cleanup:
    mbedtls_platform_zeroize(key, sizeof key);
    return st;
}

/* What both ops work with: the session (arg 1), a saved session, the cipher. */
struct work {
    mbedtls_ssl_context *ssl;
    struct ml_tls_conf *conf;
    mbedtls_ssl_session saved;
    mbedtls_gcm_context gcm;
    uint8_t aad[AAD_LEN];
};

/* Inits `w` (work_free frees it, whatever this returns) for the client session arg 1 names. */
static int work_init(struct ml_call *call, CborValue *args, struct work *w)
{
    uint32_t handle = 0;
    int st = ML_STATUS_OK;
    w->ssl = NULL;
    w->conf = NULL;
    mbedtls_ssl_session_init(&w->saved);
    mbedtls_gcm_init(&w->gcm);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_tls_session_lookup(call, handle, &w->ssl, &w->conf));
    if (w->conf->server || !w->conf->resumption) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "sessions are saved and set by a client whose configuration resumes");
    }
cleanup:
    return st;
}

static void work_free(struct work *w)
{
    mbedtls_gcm_free(&w->gcm);
    mbedtls_ssl_session_free(&w->saved);
}

/* ------------------------------------------------------------ ops */

int ml_op_tls_session_get(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct work w;
    uint8_t *blob = NULL;
    size_t need = 0, cap = 0;
    int ret = 0;
    int st = work_init(call, args, &w);
    if (st != ML_STATUS_OK) {
        goto cleanup;
    }
    if (!mbedtls_ssl_is_handshake_over(w.ssl)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the handshake is not over");
    }
    ret = mbedtls_ssl_get_session(w.ssl, &w.saved);
    if (ret == MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "no new session to save: it was saved already (TLS 1.3: after a ticket)");
    }
    ML_CHK_TLS(call, ret, "ssl_get_session");
    uint16_t version = (uint16_t)w.saved.MBEDTLS_PRIVATE(tls_version);
    uint16_t clear = w.conf->datagram ? (uint16_t)DTLS12_WIRE : version;
    if (version == MBEDTLS_SSL_VERSION_TLS1_3 && w.saved.MBEDTLS_PRIVATE(ticket_len) == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "no ticket yet: a TLS 1.3 session is saved after a read answers ticket");
    }
    ret = mbedtls_ssl_session_save(&w.saved, NULL, 0, &need);
    if (ret != MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL) {
        ML_CHK_TLS(call, ret, "ssl_session_save");
    }
    cap = SEAL_OVERHEAD + need;
    blob = ml_buf_alloc(cap);
    if (blob == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte saved session", (unsigned long)cap);
    }
    uint8_t *pt = blob + HDR_LEN + NONCE_LEN;
    blob[0] = ML_HT_TLS;
    blob[1] = (uint8_t)(clear >> 8);
    blob[2] = (uint8_t)clear;
    pt[0] = FORMAT_VERSION;
    ML_CHK_TLS(call, mbedtls_ssl_session_save(&w.saved, pt + 1, need, &need), "ssl_session_save");
    ML_CHK_TLS(call, ml_rng_random(NULL, blob + HDR_LEN, NONCE_LEN), "ctr_drbg_random");
    ML_CHK(seal_key(call, &w.gcm, blob, w.aad));
    ML_CHK_TLS(call,
               mbedtls_gcm_crypt_and_tag(&w.gcm, MBEDTLS_GCM_ENCRYPT, 1 + need, blob + HDR_LEN, NONCE_LEN, w.aad,
                                         AAD_LEN, pt, pt, TAG_LEN, pt + 1 + need),
               "gcm_crypt_and_tag");
    if (cbor_encode_byte_string(result, blob, cap) != CborNoError) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "the saved session (%lu bytes) does not fit the MTU", (unsigned long)cap);
    }
cleanup:
    ml_buf_free(blob, cap);
    work_free(&w);
    return st;
}

int ml_op_tls_session_set(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct work w;
    const uint8_t *blob = NULL;
    uint8_t *pt = NULL;
    size_t len = 0, pt_len = 0;
    int ret = 0;
    int st = work_init(call, args, &w);
    if (st != ML_STATUS_OK) {
        goto cleanup;
    }
    ML_CHK(ml_arg_bytes(call, args, 2, &blob, &len));
    if (w.ssl->MBEDTLS_PRIVATE(state) != MBEDTLS_SSL_HELLO_REQUEST) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "a saved session is set before the handshake starts");
    }
    if (len <= SEAL_OVERHEAD || blob[0] != ML_HT_TLS) {
        ML_FAIL(call, ML_STATUS_AUTH_FAILED, "not a saved TLS session");
    }
    pt_len = len - HDR_LEN - NONCE_LEN - TAG_LEN;
    pt = ml_buf_alloc(pt_len);
    if (pt == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte saved session", (unsigned long)pt_len);
    }
    ML_CHK(seal_key(call, &w.gcm, blob, w.aad));
    ret = mbedtls_gcm_auth_decrypt(&w.gcm, pt_len, blob + HDR_LEN, NONCE_LEN, w.aad, AAD_LEN, blob + len - TAG_LEN,
                                   TAG_LEN, blob + HDR_LEN + NONCE_LEN, pt);
    if (ret == MBEDTLS_ERR_GCM_AUTH_FAILED) {
        ML_FAIL(call, ML_STATUS_AUTH_FAILED, "saved TLS session from another device or boot, or damaged");
    }
    ML_CHK_TLS(call, ret, "gcm_auth_decrypt");
    if (pt[0] != FORMAT_VERSION) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "saved TLS session in format %u, this firmware reads %u", pt[0],
                FORMAT_VERSION);
    }
    if ((((unsigned)blob[1] << 8 | blob[2]) == DTLS12_WIRE) != w.conf->datagram) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "a saved %s session is set on %s sessions only",
                w.conf->datagram ? "TLS" : "DTLS", w.conf->datagram ? "TLS" : "DTLS");
    }
    ret = mbedtls_ssl_session_load(&w.saved, pt + 1, pt_len - 1);
    if (ret == MBEDTLS_ERR_SSL_VERSION_MISMATCH) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "saved TLS session from a firmware with another TLS configuration");
    }
    ML_CHK_TLS(call, ret, "ssl_session_load");
    /* Mbed TLS takes the session's version as the handshake's lowest
     * (ssl_client.c, ssl_prepare_client_hello) and, outside the
     * configuration's, fails the whole session (-0x6E80, "not within min/max
     * boundaries"): refuse it here instead, so a full handshake can follow. */
    mbedtls_ssl_protocol_version v = w.saved.MBEDTLS_PRIVATE(tls_version);
    if (v < w.conf->ssl.MBEDTLS_PRIVATE(min_tls_version) || v > w.conf->ssl.MBEDTLS_PRIVATE(max_tls_version)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the saved session is version 0x%04x, outside this configuration's",
                (unsigned)v);
    }
    ML_CHK_TLS(call, mbedtls_ssl_set_session(w.ssl, &w.saved), "ssl_set_session");
    (void)cbor_encode_null(result);
cleanup:
    ml_buf_free(pt, pt_len);
    work_free(&w);
    return st;
}
