/*
 * TLS module, configurations (spec.md 7.12): tls_conf_new builds an
 * mbedtls_ssl_config from a map (client or server, versions, verify mode,
 * trust store, certificate chain and key, ALPN, PSK, a server's PSK store
 * and chains by host name (SNI), TLS 1.3 key exchange modes, cipher suites,
 * the max_fragment_length a client asks for) under an ML_HT_TLS_CONF handle.
 *
 * The configuration keeps its own copies of what the map names: the trust
 * store's CA certificates and CRLs, the chain's certificates, the key (a
 * non-exportable one is copied within the device, so it signs in place and
 * its private part never travels), so those handles may be freed, and a key
 * swapped out by the host, while sessions use the configuration.
 *
 * A server's PSK store is a table the PSK callback (mbedtls_ssl_conf_psk_cb)
 * looks the client's identity up in: found, the handshake uses that key
 * (mbedtls_ssl_set_hs_psk); not found, TLS 1.2 answers unknown_psk_identity
 * and TLS 1.3 takes the identity as no PSK (RFC 8446 4.2.11: a server with
 * a certificate goes on with it, one without fails). Keys are copied into the
 * table (from bytes or a device-held key, which so never leaves the device)
 * and zeroised with it. Chains by host name work alike (mbedtls_ssl_conf_sni,
 * mbedtls_ssl_set_hs_own_cert): a name in the table gets its chain; any other
 * name gets the default chain ("chain"/"key"), or without one the handshake
 * fails with an unrecognized_name alert.
 */
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_symkey.h"
#include "ops/ml_tls.h"
#include "ops/ml_x509.h"
#include "ops/ml_x509_trust.h"

#define ALPN_NAME_MAX 255 /* bytes of one ALPN protocol name (RFC 7301) */
#define PSK_ID_MAX    128 /* bytes of a PSK identity */
#define PSK_MAX       64  /* bytes of a PSK (MBEDTLS_PSK_MAX_LEN is 32 by default; checked again by Mbed TLS) */
#define CHAIN_MAX     8   /* certificate handles one chain names */
#define HOSTNAME_MAX  255 /* bytes of a host name an SNI entry names */

struct conf_obj {
    struct ml_tls_conf *conf;
};

struct ml_tls_psk {
    size_t id_len;
    size_t key_len;
    uint8_t id[PSK_ID_MAX];
    uint8_t key[MBEDTLS_PSK_MAX_LEN];
};

struct ml_tls_sni {
    char *name; /* NUL-terminated, NULL until copied */
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
};

static void sni_free(struct ml_tls_sni *sni, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mbedtls_x509_crt_free(&sni[i].chain);
        mbedtls_pk_free(&sni[i].key);
        if (sni[i].name != NULL) {
            ml_buf_free(sni[i].name, strlen(sni[i].name) + 1);
        }
    }
    ml_buf_free(sni, n * sizeof *sni);
}

static uint32_t confs_live; /* allocated configurations, with or without a handle */

uint32_t ml_tls_confs_live(void) { return confs_live; }

static void conf_free(struct ml_tls_conf *c)
{
    confs_live--;
    mbedtls_ssl_config_free(&c->ssl);
    mbedtls_x509_crt_free(&c->cas);
    mbedtls_x509_crl_free(&c->crls);
    mbedtls_x509_crt_free(&c->chain);
    mbedtls_pk_free(&c->key);
    ml_tls_conf_resumption_free(c);
    ml_dtls_conf_free(c);
    ml_buf_free(c->psks, c->n_psks * sizeof *c->psks); /* zeroises the keys */
    sni_free(c->sni, c->n_sni);
    for (size_t i = 0; i < ML_TLS_ALPN_MAX && c->alpn[i] != NULL; i++) {
        ml_buf_free(c->alpn[i], strlen(c->alpn[i]) + 1);
    }
    ml_buf_free(c, sizeof *c);
}

void ml_tls_conf_hold(struct ml_tls_conf *conf) { conf->refs++; }

void ml_tls_conf_release(struct ml_tls_conf *conf)
{
    if (conf != NULL && --conf->refs == 0) {
        conf_free(conf);
    }
}

static void conf_dtor(void *obj)
{
    struct conf_obj *o = obj;
    ml_tls_conf_release(o->conf);
    o->conf = NULL;
}

int ml_tls_conf_get(struct ml_call *call, uint32_t handle, struct ml_tls_conf **conf)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_get(call, handle, ML_HT_TLS_CONF, &p));
    *conf = ((struct conf_obj *)p)->conf;
cleanup:
    return st;
}

/* The value under `key` in the map (invalid when absent). */
static int field(struct ml_call *call, const CborValue *map, const char *key, CborValue *v)
{
    if (cbor_value_map_find_value(map, key, v) != CborNoError) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg 2: malformed map");
    }
    return ML_STATUS_OK;
}

int ml_tls_conf_field(struct ml_call *call, const CborValue *map, const char *key, CborValue *v)
{
    return field(call, map, key, v);
}

/* Enters the array under `key` (absent: *n = 0, `in` invalid), at most `max` items. */
static int field_array(struct ml_call *call, const CborValue *map, const char *key, size_t max, CborValue *in,
                       size_t *n)
{
    CborValue v;
    int st = ML_STATUS_OK;
    *n = 0;
    ML_CHK(field(call, map, key, &v));
    if (!cbor_value_is_valid(&v)) {
        goto cleanup;
    }
    if (!cbor_value_is_array(&v) || !cbor_value_is_length_known(&v) ||
        cbor_value_get_array_length(&v, n) != CborNoError || cbor_value_enter_container(&v, in) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: \"%s\" is not an array", key);
    }
    if (*n > max) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"%s\" has %lu entries, at most %lu", key, (unsigned long)*n,
                (unsigned long)max);
    }
cleanup:
    return st;
}

static int field_uint(struct ml_call *call, const CborValue *map, const char *key, uint64_t dflt, uint64_t *out)
{
    CborValue v;
    int st = ML_STATUS_OK;
    *out = dflt;
    ML_CHK(field(call, map, key, &v));
    if (cbor_value_is_valid(&v)) {
        ML_CHK(ml_arg_uint(call, &v, 2, out));
    }
cleanup:
    return st;
}

static int field_bytes(struct ml_call *call, CborValue *v, const char *what, size_t max, const uint8_t **p, size_t *n)
{
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_bytes(call, v, 2, p, n));
    if (*n == 0 || *n > max) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: %s has 1 to %lu bytes", what, (unsigned long)max);
    }
cleanup:
    return st;
}

/* min_version / max_version: 0x0303 (TLS 1.2), 0x0304 (TLS 1.3, when compiled in; never with datagrams:
 * Mbed TLS 3.6 has no DTLS 1.3). */
static int versions(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    uint64_t lo = 0, hi = 0;
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    const uint64_t highest = c->datagram ? MBEDTLS_SSL_VERSION_TLS1_2 : MBEDTLS_SSL_VERSION_TLS1_3;
#else
    const uint64_t highest = MBEDTLS_SSL_VERSION_TLS1_2;
#endif
    int st = ML_STATUS_OK;
    ML_CHK(field_uint(call, map, "min_version", MBEDTLS_SSL_VERSION_TLS1_2, &lo));
    ML_CHK(field_uint(call, map, "max_version", highest, &hi));
    if (lo < MBEDTLS_SSL_VERSION_TLS1_2 || hi > highest || lo > hi) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM,
                "arg 2: versions 0x%04x..0x%04x: this firmware has 0x0303..0x%04x", (unsigned)lo, (unsigned)hi,
                (unsigned)highest);
    }
    mbedtls_ssl_conf_min_tls_version(&c->ssl, (mbedtls_ssl_protocol_version)lo);
    mbedtls_ssl_conf_max_tls_version(&c->ssl, (mbedtls_ssl_protocol_version)hi);
cleanup:
    return st;
}

static int trust(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    CborValue v;
    uint32_t handle = 0;
    const mbedtls_x509_crt *cas = NULL;
    const mbedtls_x509_crl *crls = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(field(call, map, "trust", &v));
    if (!cbor_value_is_valid(&v) || cbor_value_is_null(&v)) {
        goto cleanup;
    }
    ML_CHK(ml_arg_handle(call, &v, 2, &handle));
    ML_CHK(ml_x509_trust_lookup(call, handle, &cas, &crls));
    for (; cas != NULL && cas->version != 0; cas = cas->next) {
        ML_CHK_TLS(call, mbedtls_x509_crt_parse_der(&c->cas, cas->raw.p, cas->raw.len), "trust store copy");
    }
    for (; crls != NULL && crls->version != 0; crls = crls->next) {
        ML_CHK_TLS(call, mbedtls_x509_crl_parse_der(&c->crls, crls->raw.p, crls->raw.len), "trust store copy");
    }
cleanup:
    return st;
}

/* Copies the certificates of `n` certificate handles at `in` (one after
 * another, leaf first) into `chain`. */
static int copy_chain(struct ml_call *call, CborValue *in, size_t n, mbedtls_x509_crt *chain)
{
    uint32_t handle = 0;
    mbedtls_x509_crt *src = NULL;
    int st = ML_STATUS_OK;
    for (size_t i = 0; i < n; i++) {
        ML_CHK(ml_arg_handle(call, in, 2, &handle));
        ML_CHK(ml_x509_crt_lookup(call, handle, &src));
        for (; src != NULL && src->version != 0; src = src->next) {
            ML_CHK_TLS(call, mbedtls_x509_crt_parse_der(chain, src->raw.p, src->raw.len), "chain copy");
        }
    }
    if (chain->version == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: a chain holds no certificate");
    }
cleanup:
    return st;
}

/* Copies the private key under the pk handle at `v` into `pk` (within the
 * device: a non-exportable key too) and checks it is the leaf's of `chain`. */
static int copy_key(struct ml_call *call, CborValue *v, const mbedtls_x509_crt *chain, mbedtls_pk_context *pk)
{
    uint32_t handle = 0;
    size_t der_len = 0;
    void *key = NULL;
    uint8_t *der = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, v, 2, &handle));
    ML_CHK(ml_pk_get(call, handle, &key));
    if (!ml_pk_has_private(key)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: a chain's key has no private part");
    }
    der = ml_buf_alloc(ML_SLOT_RECORD_MAX);
    if (der == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap to copy the key");
    }
    ML_CHK(ml_pk_serialise(call, key, der, ML_SLOT_RECORD_MAX, &der_len));
    ML_CHK_TLS(call, mbedtls_pk_parse_key(pk, der, der_len, NULL, 0, ml_busy_rng, NULL), "key copy");
    ML_CHK_TLS(call, mbedtls_pk_check_pair(&chain->pk, pk, ml_busy_rng, NULL), "the key is not the leaf's");
cleanup:
    ml_buf_free(der, ML_SLOT_RECORD_MAX);
    return st;
}

/* chain: [+ certificate handle] (leaf first), key: pk handle: the default own certificate. */
static int own_cert(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c, bool *have)
{
    CborValue in, v;
    size_t n = 0;
    int st = ML_STATUS_OK;
    *have = false;
    ML_CHK(field_array(call, map, "chain", CHAIN_MAX, &in, &n));
    ML_CHK(field(call, map, "key", &v));
    if (n == 0 && !cbor_value_is_valid(&v)) {
        goto cleanup;
    }
    if (n == 0 || !cbor_value_is_valid(&v)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"chain\" and \"key\" go together");
    }
    ML_CHK(copy_chain(call, &in, n, &c->chain));
    ML_CHK(copy_key(call, &v, &c->chain, &c->key));
    ML_CHK_TLS(call, mbedtls_ssl_conf_own_cert(&c->ssl, &c->chain, &c->key), "conf_own_cert");
    *have = true;
cleanup:
    return st;
}

/* Enters the array at `it`, which must have `n` items, into `inner`. */
static int enter_tuple(struct ml_call *call, CborValue *it, size_t n, const char *what, CborValue *inner)
{
    size_t len = 0;
    if (!cbor_value_is_array(it) || !cbor_value_is_length_known(it) ||
        cbor_value_get_array_length(it, &len) != CborNoError || len != n ||
        cbor_value_enter_container(it, inner) != CborNoError) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg 2: %s", what);
    }
    return ML_STATUS_OK;
}

static int leave_tuple(struct ml_call *call, CborValue *it, CborValue *inner)
{
    if (cbor_value_leave_container(it, inner) != CborNoError) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg 2: malformed map");
    }
    return ML_STATUS_OK;
}

/* ASCII lower case (host names are ASCII; no locale table linked in). */
static unsigned char lower(unsigned char ch) { return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + ('a' - 'A')) : ch; }

/* Is `name` (len bytes, from a ClientHello) the entry's host name? DNS names compare case-insensitively. */
static bool name_is(const char *entry, const unsigned char *name, size_t len)
{
    size_t i = 0;
    for (; i < len && entry[i] != '\0'; i++) {
        if (lower((unsigned char)entry[i]) != lower(name[i])) {
            return false;
        }
    }
    return i == len && entry[i] == '\0';
}

/* mbedtls_ssl_conf_sni's callback: the chain for the name; else the default, or unrecognized_name without one. */
static int sni_lookup(void *p, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
    struct ml_tls_conf *c = p;
    for (size_t i = 0; i < c->n_sni; i++) {
        if (name_is(c->sni[i].name, name, len)) {
            return mbedtls_ssl_set_hs_own_cert(ssl, &c->sni[i].chain, &c->sni[i].key);
        }
    }
    return c->chain.version != 0 ? 0 : MBEDTLS_ERR_SSL_UNRECOGNIZED_NAME;
}

/* One SNI entry: [name: tstr, chain: [+ handle], key: handle]. */
static int sni_entry(struct ml_call *call, CborValue *in, struct ml_tls_conf *c, struct ml_tls_sni *e)
{
    CborValue t, chain;
    size_t len = 0, n = 0;
    int st = ML_STATUS_OK;
    ML_CHK(enter_tuple(call, in, 3, "an \"sni\" entry is [name, chain, key]", &t));
    if (!cbor_value_is_text_string(&t) || !cbor_value_is_length_known(&t) ||
        cbor_value_get_string_length(&t, &len) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: an \"sni\" name is a text string");
    }
    if (len == 0 || len > HOSTNAME_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: an \"sni\" name has 1 to %u bytes", HOSTNAME_MAX);
    }
    e->name = ml_buf_alloc(len + 1);
    if (e->name == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for an SNI name");
    }
    size_t got = len + 1;
    if (cbor_value_copy_text_string(&t, e->name, &got, &t) != CborNoError || strlen(e->name) != len) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: malformed \"sni\" name");
    }
    for (const struct ml_tls_sni *o = c->sni; o < e; o++) {
        if (name_is(o->name, (const unsigned char *)e->name, len)) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"sni\" names %s twice", e->name);
        }
    }
    if (!cbor_value_is_array(&t) || !cbor_value_is_length_known(&t) ||
        cbor_value_get_array_length(&t, &n) != CborNoError || n == 0 || n > CHAIN_MAX ||
        cbor_value_enter_container(&t, &chain) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: an \"sni\" chain is 1 to %u certificate handles", CHAIN_MAX);
    }
    ML_CHK(copy_chain(call, &chain, n, &e->chain));
    ML_CHK(leave_tuple(call, &t, &chain));
    ML_CHK(copy_key(call, &t, &e->chain, &e->key));
    ML_CHK(leave_tuple(call, in, &t));
cleanup:
    return st;
}

/* A server's table under `key` (psk_store, sni): enters its array (absent:
 * *n = 0) and allocates n entries of `size` bytes, zeroed, into *table. */
static int server_table(struct ml_call *call, const CborValue *map, const char *key, size_t max, size_t size,
                        const struct ml_tls_conf *c, CborValue *in, void **table, size_t *n)
{
    int st = ML_STATUS_OK;
    ML_CHK(field_array(call, map, key, max, in, n));
    if (*n == 0) {
        goto cleanup;
    }
    if (!c->server) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"%s\" is a server's", key);
    }
    *table = ml_buf_alloc(*n * size);
    if (*table == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu \"%s\" entries", (unsigned long)*n, key);
    }
cleanup:
    return st;
}

/* sni: [* [name, chain, key]]: a server's chains by host name. */
static int sni(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    CborValue in;
    void *table = NULL;
    size_t n = 0;
    int st = ML_STATUS_OK;
    ML_CHK(server_table(call, map, "sni", ML_TLS_SNI_MAX, sizeof *c->sni, c, &in, &table, &n));
    if (n == 0) {
        goto cleanup;
    }
    c->sni = table;
    c->n_sni = n;
    for (size_t i = 0; i < n; i++) {
        mbedtls_x509_crt_init(&c->sni[i].chain);
        mbedtls_pk_init(&c->sni[i].key);
    }
    for (size_t i = 0; i < n; i++) {
        ML_CHK(sni_entry(call, &in, c, &c->sni[i]));
    }
    mbedtls_ssl_conf_sni(&c->ssl, sni_lookup, c);
cleanup:
    return st;
}

/* alpn: [* tstr], each 1 to 255 bytes. */
static int alpn(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    CborValue in;
    size_t n = 0, len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(field_array(call, map, "alpn", ML_TLS_ALPN_MAX, &in, &n));
    for (size_t i = 0; i < n; i++) {
        if (!cbor_value_is_text_string(&in) || !cbor_value_is_length_known(&in) ||
            cbor_value_get_string_length(&in, &len) != CborNoError) {
            ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: \"alpn\" entries are text strings");
        }
        if (len == 0 || len > ALPN_NAME_MAX) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: an ALPN name has 1 to %u bytes", ALPN_NAME_MAX);
        }
        c->alpn[i] = ml_buf_alloc(len + 1);
        if (c->alpn[i] == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the ALPN list");
        }
        size_t got = len + 1;
        if (cbor_value_copy_text_string(&in, c->alpn[i], &got, &in) != CborNoError || strlen(c->alpn[i]) != len) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: malformed ALPN name");
        }
    }
    if (n > 0) {
        ML_CHK_TLS(call, mbedtls_ssl_conf_alpn_protocols(&c->ssl, (const char **)c->alpn), "conf_alpn_protocols");
    }
cleanup:
    return st;
}

/* [identity: bstr, key: bstr / key handle] inside `in`; the key may be a
 * device-held symmetric key (ml_arg_key), its bytes stay on the device. */
static int psk_pair(struct ml_call *call, CborValue *in, size_t key_max, const uint8_t **id, size_t *id_len,
                    const uint8_t **key, size_t *key_len)
{
    int st = ML_STATUS_OK;
    ML_CHK(field_bytes(call, in, "a PSK identity", PSK_ID_MAX, id, id_len));
    ML_CHK(ml_arg_key(call, in, 2, key, key_len));
    if (*key_len == 0 || *key_len > key_max) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: a PSK has 1 to %lu bytes", (unsigned long)key_max);
    }
cleanup:
    return st;
}

/* psk: [identity: bstr, key: bstr / key handle]. */
static int psk(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c, bool *have)
{
    CborValue in;
    size_t n = 0, id_len = 0, key_len = 0;
    const uint8_t *id = NULL, *key = NULL;
    int st = ML_STATUS_OK;
    *have = false;
    ML_CHK(field_array(call, map, "psk", 2, &in, &n));
    if (n == 0) {
        goto cleanup;
    }
    if (n != 2) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: \"psk\" is [identity, key]");
    }
    ML_CHK(psk_pair(call, &in, PSK_MAX, &id, &id_len, &key, &key_len));
    ML_CHK_TLS(call, mbedtls_ssl_conf_psk(&c->ssl, key, key_len, id, id_len), "conf_psk");
    *have = true;
cleanup:
    return st;
}

/* mbedtls_ssl_conf_psk_cb's callback: the key for the client's identity. */
static int psk_lookup(void *p, mbedtls_ssl_context *ssl, const unsigned char *id, size_t id_len)
{
    const struct ml_tls_conf *c = p;
    for (size_t i = 0; i < c->n_psks; i++) {
        const struct ml_tls_psk *e = &c->psks[i];
        if (e->id_len == id_len && memcmp(e->id, id, id_len) == 0) {
            return mbedtls_ssl_set_hs_psk(ssl, e->key, e->key_len);
        }
    }
    return MBEDTLS_ERR_SSL_UNKNOWN_IDENTITY;
}

/* psk_store: [* [identity, key]]: a server's keys by identity, copied into a table. */
static int psk_store(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    CborValue in, t;
    void *table = NULL;
    size_t n = 0;
    const uint8_t *id = NULL, *key = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(server_table(call, map, "psk_store", ML_TLS_PSK_STORE_MAX, sizeof *c->psks, c, &in, &table, &n));
    if (n == 0) {
        goto cleanup;
    }
    c->psks = table;
    c->n_psks = n;
    for (size_t i = 0; i < n; i++) {
        struct ml_tls_psk *e = &c->psks[i];
        ML_CHK(enter_tuple(call, &in, 2, "a \"psk_store\" entry is [identity, key]", &t));
        ML_CHK(psk_pair(call, &t, MBEDTLS_PSK_MAX_LEN, &id, &e->id_len, &key, &e->key_len));
        ML_CHK(leave_tuple(call, &in, &t));
        for (size_t j = 0; j < i; j++) {
            if (c->psks[j].id_len == e->id_len && memcmp(c->psks[j].id, id, e->id_len) == 0) {
                ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"psk_store\" has an identity twice");
            }
        }
        memcpy(e->id, id, e->id_len);
        memcpy(e->key, key, e->key_len);
    }
    mbedtls_ssl_conf_psk_cb(&c->ssl, psk_lookup, c);
cleanup:
    return st;
}

/* tls13_kex: [+ "psk" / "psk_ephemeral" / "ephemeral"]: the TLS 1.3 key exchange modes (default all three). */
static int tls13_kex(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    static const struct {
        const char *name;
        int mode;
    } modes[] = {
        {"psk", MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK},
        {"psk_ephemeral", MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL},
        {"ephemeral", MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL},
    };
    CborValue in;
    size_t n = 0;
    int bits = 0;
    int st = ML_STATUS_OK;
    ML_CHK(field_array(call, map, "tls13_kex", 3, &in, &n));
    for (size_t i = 0; i < n; i++) {
        bool eq = false;
        size_t k = 0;
        for (; k < sizeof modes / sizeof modes[0] && !eq; k++) {
            if (!cbor_value_is_text_string(&in) ||
                cbor_value_text_string_equals(&in, modes[k].name, &eq) != CborNoError) {
                ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: \"tls13_kex\" entries are text strings");
            }
        }
        if (!eq) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT,
                    "arg 2: a TLS 1.3 key exchange mode is psk, psk_ephemeral or ephemeral");
        }
        bits |= modes[k - 1].mode;
        if (cbor_value_advance(&in) != CborNoError) {
            ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: malformed map");
        }
    }
    if (n > 0) {
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
        mbedtls_ssl_conf_tls13_key_exchange_modes(&c->ssl, bits);
#else
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "arg 2: this firmware has no TLS 1.3");
#endif
    }
cleanup:
    return st;
}

/* suites: [* uint] IANA cipher suite numbers, each compiled in. */
static int suites(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    CborValue in;
    size_t n = 0;
    uint64_t id = 0;
    int st = ML_STATUS_OK;
    ML_CHK(field_array(call, map, "suites", ML_TLS_SUITES_MAX, &in, &n));
    for (size_t i = 0; i < n; i++) {
        ML_CHK(ml_arg_uint(call, &in, 2, &id));
        if (id == 0 || id > 0xFFFF || mbedtls_ssl_ciphersuite_from_id((int)id) == NULL) {
            ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "cipher suite 0x%04x is not in this firmware", (unsigned)id);
        }
        c->suites[i] = (int)id;
    }
    if (n > 0) {
        c->suites[n] = 0;
        mbedtls_ssl_conf_ciphersuites(&c->ssl, c->suites);
    }
cleanup:
    return st;
}

/* mfl: the record size a client asks the server for (max_fragment_length):
 * 512, 1024, 2048 or 4096, 0 for none; absent: what the input buffer takes. */
static int max_frag_len(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    uint64_t bytes = 0;
    unsigned char code = MBEDTLS_SSL_MAX_FRAG_LEN_NONE;
    int st = ML_STATUS_OK;
    ML_CHK(field_uint(call, map, "mfl", MBEDTLS_SSL_IN_CONTENT_LEN < 16384 ? MBEDTLS_SSL_IN_CONTENT_LEN : 0, &bytes));
    switch (bytes) {
    case 0:
        break;
    case 512:
        code = MBEDTLS_SSL_MAX_FRAG_LEN_512;
        break;
    case 1024:
        code = MBEDTLS_SSL_MAX_FRAG_LEN_1024;
        break;
    case 2048:
        code = MBEDTLS_SSL_MAX_FRAG_LEN_2048;
        break;
    case 4096:
        code = MBEDTLS_SSL_MAX_FRAG_LEN_4096;
        break;
    default:
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"mfl\" is 0, 512, 1024, 2048 or 4096");
    }
    if (!c->server) {
        ML_CHK_TLS(call, mbedtls_ssl_conf_max_frag_len(&c->ssl, code), "conf_max_frag_len");
    }
cleanup:
    return st;
}

static int configure(struct ml_call *call, const CborValue *map, struct ml_tls_conf *c)
{
    CborValue v;
    uint64_t verify = ML_TLS_VERIFY_REQUIRED;
    bool cert = false, key = false;
    int st = ML_STATUS_OK;
    ML_CHK(field(call, map, "server", &v));
    if (cbor_value_is_valid(&v)) {
        ML_CHK(ml_arg_bool(call, &v, 2, &c->server));
    }
    ML_CHK(ml_dtls_conf_transport(call, map, &c->datagram));
    ML_CHK_TLS(call,
               mbedtls_ssl_config_defaults(&c->ssl, c->server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                           c->datagram ? MBEDTLS_SSL_TRANSPORT_DATAGRAM : MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT),
               "ssl_config_defaults");
    mbedtls_ssl_conf_rng(&c->ssl, ml_busy_rng, NULL);
    ML_CHK(versions(call, map, c));
    ML_CHK(field_uint(call, map, "verify", c->server ? ML_TLS_VERIFY_NONE : ML_TLS_VERIFY_REQUIRED, &verify));
    if (verify > ML_TLS_VERIFY_REQUIRED) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: \"verify\" is 0 (none), 1 (optional) or 2 (required)");
    }
    c->verify = verify != ML_TLS_VERIFY_NONE;
    mbedtls_ssl_conf_authmode(&c->ssl, verify == ML_TLS_VERIFY_NONE       ? MBEDTLS_SSL_VERIFY_NONE
                                       : verify == ML_TLS_VERIFY_OPTIONAL ? MBEDTLS_SSL_VERIFY_OPTIONAL
                                                                          : MBEDTLS_SSL_VERIFY_REQUIRED);
    ML_CHK(trust(call, map, c));
    if (c->cas.version != 0) {
        mbedtls_ssl_conf_ca_chain(&c->ssl, &c->cas, c->crls.version != 0 ? &c->crls : NULL);
    }
    ML_CHK(own_cert(call, map, c, &cert));
    ML_CHK(psk(call, map, c, &key));
    ML_CHK(psk_store(call, map, c));
    if (key && c->n_psks > 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: a server has \"psk\" or \"psk_store\", not both");
    }
    ML_CHK(sni(call, map, c));
    ML_CHK(tls13_kex(call, map, c));
    if (c->server && !cert && !key && c->n_psks == 0 && c->n_sni == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT,
                "arg 2: a server needs a certificate chain and key, chains by host name, or a PSK (store)");
    }
    ML_CHK(alpn(call, map, c));
    ML_CHK(suites(call, map, c));
    ML_CHK(max_frag_len(call, map, c));
    ML_CHK(ml_tls_conf_resumption(call, map, c));
    ML_CHK(ml_dtls_conf(call, map, c));
cleanup:
    return st;
}

int ml_op_tls_conf_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct ml_tls_conf *c = NULL;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    if (!cbor_value_is_map(args)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 2: expected a map");
    }
    c = ml_buf_alloc(sizeof *c);
    if (c == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a TLS configuration (%lu bytes)", (unsigned long)sizeof *c);
    }
    confs_live++;
    mbedtls_ssl_config_init(&c->ssl);
    mbedtls_x509_crt_init(&c->cas);
    mbedtls_x509_crl_init(&c->crls);
    mbedtls_x509_crt_init(&c->chain);
    mbedtls_pk_init(&c->key);
    c->refs = 1;
    ML_CHK(configure(call, args, c));
    ML_CHK(ml_handle_create(call, handle, ML_HT_TLS_CONF, sizeof(struct conf_obj), conf_dtor, &p));
    ((struct conf_obj *)p)->conf = c;
    c = NULL;
    (void)cbor_encode_null(result);
cleanup:
    if (c != NULL) {
        conf_free(c);
    }
    return st;
}
