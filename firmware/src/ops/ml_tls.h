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
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

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

/* Configurations and sessions alive now (stats: tls_confs, tls_sessions). */
uint32_t ml_tls_confs_live(void);
uint32_t ml_tls_sessions_live(void);

#endif /* ML_TLS_H */
