/*
 * TLS module (spec.md 7.12): what its two files share. A configuration
 * (ops/op_tls_conf.c, ML_HT_TLS_CONF) owns an mbedtls_ssl_config and its own
 * copies of what it names (trust store, certificate chain, key, ALPN list,
 * cipher suites, PSK store, chains by host name), so the handles it was
 * made from may be freed or swapped out. Sessions (ops/op_tls.c, ML_HT_TLS) hold the configuration by a
 * reference count: freeing the configuration's handle while sessions live
 * keeps it until the last of them is freed.
 */
#ifndef ML_TLS_H
#define ML_TLS_H

#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cookie.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"
#include "core/ml_config.h"

/* Bytes of each of a session's two rings (network input not yet read by
 * Mbed TLS, output not yet taken by the host); Mbed TLS's own record
 * buffers (MBEDTLS_SSL_IN/OUT_CONTENT_LEN) come from the heap besides. */
#ifndef ML_CFG_TLS_RING
#define ML_CFG_TLS_RING 2048
#endif
/* Sessions live at once; one more is too_many_handles. */
#ifndef ML_CFG_TLS_SESSIONS_MAX
#define ML_CFG_TLS_SESSIONS_MAX 4
#endif

#define ML_TLS_ALPN_MAX      8  /* protocols one configuration offers */
#define ML_TLS_SUITES_MAX    32 /* cipher suites one configuration names */
#define ML_TLS_PSK_STORE_MAX 16 /* identities in a server's PSK store */
#define ML_TLS_SNI_MAX       4  /* host names a server has its own chain for */

struct ml_tls_psk; /* a PSK store entry (op_tls_conf.c) */
struct ml_tls_sni; /* a host name's chain and key (op_tls_conf.c) */

struct ml_tls_conf {
    mbedtls_ssl_config ssl;
    mbedtls_x509_crt cas;   /* trust store copy; version 0 while empty */
    mbedtls_x509_crl crls;  /* its CRLs */
    mbedtls_x509_crt chain; /* own certificate chain copy */
    mbedtls_pk_context key; /* own key copy (the private part never leaves) */
    char *alpn[ML_TLS_ALPN_MAX + 1];
    int suites[ML_TLS_SUITES_MAX + 1];
    struct ml_tls_psk *psks; /* the server's PSK store (mbedtls_ssl_conf_psk_cb), n_psks entries */
    size_t n_psks;
    struct ml_tls_sni *sni; /* chains by host name (mbedtls_ssl_conf_sni), n_sni entries */
    size_t n_sni;
    mbedtls_ssl_ticket_context *tickets; /* a resuming server's ticket keys (op_tls_session.c), else NULL */
    uint32_t refs;                       /* the handle, and each session */
    mbedtls_ssl_cookie_ctx *cookies;     /* a datagram server's HelloVerifyRequest cookie key (op_dtls.c), else NULL */
    uint8_t cid_len;                     /* a datagram configuration's own Connection ID length, 0: no CID */
    bool datagram;                       /* DTLS 1.2 (transport "datagram") */
    bool server;
    bool verify;     /* the peer's certificate is verified (required or optional) */
    bool resumption; /* tickets: a client asks for them and saves sessions, a server issues them */
};

/* The configuration behind an ML_HT_TLS_CONF handle: bad_handle / wrong_handle_type. */
int ml_tls_conf_get(struct ml_call *call, uint32_t handle, struct ml_tls_conf **conf);
/* A session takes a reference; releasing the last one frees the configuration. */
void ml_tls_conf_hold(struct ml_tls_conf *conf);
void ml_tls_conf_release(struct ml_tls_conf *conf);

/* Resumption (ops/op_tls_session.c): the map's "resumption" and
 * "ticket_lifetime" into the configuration (a server's ticket keys on the
 * heap), and their free. */
int ml_tls_conf_resumption(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c);
void ml_tls_conf_resumption_free(struct ml_tls_conf *c);
/* A session's Mbed TLS context and configuration (ops/op_tls.c): bad_handle /
 * wrong_handle_type, or the error that failed the session. */
int ml_tls_session_lookup(struct ml_call *call, uint32_t handle, mbedtls_ssl_context **ssl, struct ml_tls_conf **conf);

/* A session's network side (ops/op_tls.c, ops/op_dtls.c): two rings of
 * ML_CFG_TLS_RING bytes, `in` from the network not yet read by Mbed TLS,
 * `out` for the network not yet taken by the host. A stream session's rings
 * hold bytes; a datagram session's hold datagrams, each after its length
 * (2 bytes, big-endian), and the retransmission timer Mbed TLS sets. */
struct ml_tls_ring {
    size_t head;
    size_t len;
    uint8_t buf[ML_CFG_TLS_RING];
};

struct ml_tls_io {
    struct ml_tls_ring in;
    struct ml_tls_ring out;
    size_t out_dgrams;  /* datagrams in `out` (their length prefixes are not pending bytes) */
    uint64_t timer_at;  /* mbedtls_ms_time() when Mbed TLS set the timer */
    uint32_t timer_int; /* its intermediate delay (ms) */
    uint32_t timer_fin; /* its final delay (ms); 0: no timer armed */
    uint16_t mtu;       /* the largest datagram Mbed TLS writes (mbedtls_ssl_set_mtu) */
    bool datagram;      /* DTLS: the rings hold datagrams */
    bool peer_set;      /* dtls_setup gave the client's transport id (a cookie server's steps need it) */
};

/* At most n bytes in / out of a ring; the count moved. */
size_t ml_tls_ring_put(struct ml_tls_ring *r, const uint8_t *src, size_t n);
size_t ml_tls_ring_get(struct ml_tls_ring *r, uint8_t *dst, size_t n);
/* The value under `key` in a tls_conf_new map (invalid when absent). */
int ml_tls_conf_field(struct ml_call *call, const CborValue *map, const char *key, CborValue *v);

/* The largest datagram a session takes or writes: what a ring holds after
 * its length, and what one answer carries (the default MTU, hello's
 * dtls.datagram_max). */
#define ML_TLS_ANSWER_MAX    (ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX)
#define ML_DTLS_DATAGRAM_MAX (ML_CFG_TLS_RING - 2 < ML_TLS_ANSWER_MAX ? ML_CFG_TLS_RING - 2 : ML_TLS_ANSWER_MAX)

/* DTLS (ops/op_dtls.c). The configuration map's "transport" (before
 * mbedtls_ssl_config_defaults), then its datagram keys (cookies,
 * anti_replay, badmac_limit, hs_timeout, cid; a stream configuration naming
 * one is bad_argument), and the free of what they allocated. */
int ml_dtls_conf_transport(struct ml_call *call, const CborValue *map, bool *datagram);
int ml_dtls_conf(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c);
void ml_dtls_conf_free(struct ml_tls_conf *c);
/* A new session of a datagram configuration: datagram BIO, timer, MTU, a random own CID. */
int ml_dtls_session_init(struct ml_call *call, mbedtls_ssl_context *ssl, const struct ml_tls_conf *c,
                         struct ml_tls_io *io);
/* tls_feed and tls_take of a datagram session: one whole datagram. */
int ml_dtls_feed(struct ml_call *call, struct ml_tls_io *io, const uint8_t *data, size_t len, CborEncoder *result);
int ml_dtls_take(struct ml_call *call, struct ml_tls_io *io, uint64_t max, CborEncoder *result);
/* Output bytes waiting for the host (a datagram session's without their length prefixes). */
size_t ml_tls_pending(const struct ml_tls_io *io);
/* A datagram step answer's last item: ms until the timer's final delay, null when none is armed. */
CborError ml_dtls_encode_timer(CborEncoder *a, const struct ml_tls_io *io);
/* After a HelloVerifyRequest went out: the session is fresh for the next ClientHello. */
int ml_dtls_hello_verify(mbedtls_ssl_context *ssl, struct ml_tls_io *io);
/* A cookie server whose client has no transport id yet: bad_argument. */
int ml_dtls_check_step(struct ml_call *call, const struct ml_tls_conf *c, mbedtls_ssl_context *ssl,
                       const struct ml_tls_io *io);
/* dtls_setup's arguments after the handle: [peer, mtu, cid], each bstr / uint / null. */
int ml_dtls_setup(struct ml_call *call, CborValue *args, const struct ml_tls_conf *c, mbedtls_ssl_context *ssl,
                  struct ml_tls_io *io);
/* A datagram session's tls_write: data larger than one record's payload is too_large. */
int ml_dtls_check_write(struct ml_call *call, const mbedtls_ssl_context *ssl, size_t len);
/* tls_info's transport fields (ML_DTLS_INFO_FIELDS of them): transport, cid, peer_cid, mtu, badmac_seen. */
#define ML_DTLS_INFO_FIELDS 5
CborError ml_dtls_info(CborEncoder *map, mbedtls_ssl_context *ssl, const struct ml_tls_io *io);

/* Configurations and sessions alive now (stats: tls_confs, tls_sessions). */
uint32_t ml_tls_confs_live(void);
uint32_t ml_tls_sessions_live(void);

#endif /* ML_TLS_H */
