/*
 * x509 module, trust stores and chain verification (spec.md 7.9): CA
 * certificates and CRLs behind an ML_HT_X509_TRUST handle, and
 * x509_trust_verify, Mbed TLS's full path validation
 * (mbedtls_x509_crt_verify_with_profile) of a chain against one, as of the
 * device clock (core/ml_clock.h) or a given time.
 *
 * A store keeps its own parsed copies (the certificate and CRL handles they
 * came from may be freed). The chain and the call's extra CRLs are other
 * handles' lists, linked one after another for the one call and unlinked on
 * every path out.
 */
#include <mbedtls/oid.h>
#include <mbedtls/platform.h>
#include <string.h>

#include "core/ml_clock.h"
#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_x509.h"
#include "ops/ml_x509_trust.h"

/* The wire's flag bits are Mbed TLS's (ids.json x509_verify_flag names them). */
#define SAME_BIT(ml, tls) _Static_assert((ml) == (tls), #ml " is " #tls)
SAME_BIT(ML_X509_VERIFY_FLAG_EXPIRED, MBEDTLS_X509_BADCERT_EXPIRED);
SAME_BIT(ML_X509_VERIFY_FLAG_REVOKED, MBEDTLS_X509_BADCERT_REVOKED);
SAME_BIT(ML_X509_VERIFY_FLAG_CN_MISMATCH, MBEDTLS_X509_BADCERT_CN_MISMATCH);
SAME_BIT(ML_X509_VERIFY_FLAG_NOT_TRUSTED, MBEDTLS_X509_BADCERT_NOT_TRUSTED);
SAME_BIT(ML_X509_VERIFY_FLAG_CRL_NOT_TRUSTED, MBEDTLS_X509_BADCRL_NOT_TRUSTED);
SAME_BIT(ML_X509_VERIFY_FLAG_CRL_EXPIRED, MBEDTLS_X509_BADCRL_EXPIRED);
SAME_BIT(ML_X509_VERIFY_FLAG_MISSING, MBEDTLS_X509_BADCERT_MISSING);
SAME_BIT(ML_X509_VERIFY_FLAG_SKIP_VERIFY, MBEDTLS_X509_BADCERT_SKIP_VERIFY);
SAME_BIT(ML_X509_VERIFY_FLAG_OTHER, MBEDTLS_X509_BADCERT_OTHER);
SAME_BIT(ML_X509_VERIFY_FLAG_FUTURE_VALIDITY, MBEDTLS_X509_BADCERT_FUTURE);
SAME_BIT(ML_X509_VERIFY_FLAG_CRL_FUTURE, MBEDTLS_X509_BADCRL_FUTURE);
SAME_BIT(ML_X509_VERIFY_FLAG_BAD_KEY_USAGE, MBEDTLS_X509_BADCERT_KEY_USAGE);
SAME_BIT(ML_X509_VERIFY_FLAG_BAD_EXT_KEY_USAGE, MBEDTLS_X509_BADCERT_EXT_KEY_USAGE);
SAME_BIT(ML_X509_VERIFY_FLAG_BAD_NS_CERT_TYPE, MBEDTLS_X509_BADCERT_NS_CERT_TYPE);
SAME_BIT(ML_X509_VERIFY_FLAG_BAD_MD, MBEDTLS_X509_BADCERT_BAD_MD);
SAME_BIT(ML_X509_VERIFY_FLAG_BAD_PK, MBEDTLS_X509_BADCERT_BAD_PK);
SAME_BIT(ML_X509_VERIFY_FLAG_BAD_KEY, MBEDTLS_X509_BADCERT_BAD_KEY);
SAME_BIT(ML_X509_VERIFY_FLAG_CRL_BAD_MD, MBEDTLS_X509_BADCRL_BAD_MD);
SAME_BIT(ML_X509_VERIFY_FLAG_CRL_BAD_PK, MBEDTLS_X509_BADCRL_BAD_PK);
SAME_BIT(ML_X509_VERIFY_FLAG_CRL_BAD_KEY, MBEDTLS_X509_BADCRL_BAD_KEY);

#define CHAIN_MAX    16  /* certificate handles one verify names (Mbed TLS takes 8 intermediates) */
#define CRLS_MAX     8   /* CRL handles one verify names */
#define HOSTNAME_MAX 255 /* bytes of a DNS name (253) or an IP literal, with room */
#define PATH_LEN     (MBEDTLS_X509_MAX_INTERMEDIATE_CA + 2)
#define SUBJECT_MAX  256 /* a path entry's subject as Mbed TLS prints it, cut there */

struct trust_obj {
    mbedtls_x509_crt cas;  /* version 0 while empty */
    mbedtls_x509_crl crls; /* version 0 while empty */
    uint32_t ncas;
    uint32_t ncrls;
};

/* Mbed TLS's default profile with SHA-1 and RSA-1024 allowed (its test suite's "compat"). */
static const mbedtls_x509_crt_profile profile_compat = {
    MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA1) | MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_RIPEMD160) |
        MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA224) | MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA256) |
        MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA384) | MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA512),
    0xFFFFFFFu, /* any pk algorithm */
    0xFFFFFFFu, /* any curve */
    1024,
};

static void trust_dtor(void *obj)
{
    struct trust_obj *t = obj;
    mbedtls_x509_crt_free(&t->cas);
    mbedtls_x509_crl_free(&t->crls);
}

static void trust_init(struct trust_obj *t)
{
    mbedtls_x509_crt_init(&t->cas);
    mbedtls_x509_crl_init(&t->crls);
    t->ncas = 0;
    t->ncrls = 0;
}

static int trust_get(struct ml_call *call, uint32_t handle, struct trust_obj **t)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_get(call, handle, ML_HT_X509_TRUST, &p));
    *t = p;
cleanup:
    return st;
}

int ml_x509_trust_lookup(struct ml_call *call, uint32_t handle, const mbedtls_x509_crt **cas,
                         const mbedtls_x509_crl **crls)
{
    struct trust_obj *t = NULL;
    int st = trust_get(call, handle, &t);
    if (st == ML_STATUS_OK) {
        *cas = &t->cas;
        *crls = &t->crls;
    }
    return st;
}

/* Helpers over a list of Mbed TLS's certificates or CRLs (chained through
 * `next`, an empty list being one entry of version 0): NAME_count, the
 * entries; NAME_tail, the last entry; NAME_truncate, drops what a failed add
 * appended after the first `keep` entries (mbedtls_*_free frees every entry
 * after the one it is given, which is ours to free). */
#define LIST_HELPERS(NAME, TYPE, FREE, INIT)                \
    static uint32_t NAME##_count(const TYPE *c)             \
    {                                                       \
        uint32_t n = 0;                                     \
        for (; c != NULL && c->version != 0; c = c->next) { \
            n++;                                            \
        }                                                   \
        return n;                                           \
    }                                                       \
    static TYPE *NAME##_tail(TYPE *c)                       \
    {                                                       \
        while (c->next != NULL) {                           \
            c = c->next;                                    \
        }                                                   \
        return c;                                           \
    }                                                       \
    static void NAME##_truncate(TYPE *head, uint32_t keep)  \
    {                                                       \
        if (keep == 0) {                                    \
            FREE(head);                                     \
            INIT(head);                                     \
            return;                                         \
        }                                                   \
        TYPE *tail = head;                                  \
        for (uint32_t i = 1; i < keep; i++) {               \
            tail = tail->next;                              \
        }                                                   \
        TYPE *rest = tail->next;                            \
        tail->next = NULL;                                  \
        FREE(rest);                                         \
        mbedtls_free(rest);                                 \
    }
LIST_HELPERS(crt, mbedtls_x509_crt, mbedtls_x509_crt_free, mbedtls_x509_crt_init)
LIST_HELPERS(crl, mbedtls_x509_crl, mbedtls_x509_crl_free, mbedtls_x509_crl_init)

int ml_op_x509_trust_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_handle_create(call, handle, ML_HT_X509_TRUST, sizeof(struct trust_obj), trust_dtor, &p));
    trust_init(p);
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

/* The certificates (or CRLs) of a source list appended to the store's list
 * `DST`, its count `N` kept, at most `MAX` in all: too_large, or (the heap
 * running out midway) the store rolled back to what it held. */
#define ADD_ALL(NAME, SRC, DST, N, MAX, PARSE, WHAT)                                                              \
    do {                                                                                                          \
        uint32_t before_ = (N), n_ = NAME##_count(SRC);                                                           \
        if (n_ == 0) {                                                                                            \
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: handle %lu holds no " WHAT, (unsigned long)src_handle); \
        }                                                                                                         \
        if (n_ > (MAX) - (N)) {                                                                                   \
            ML_FAIL(call, ML_STATUS_TOO_LARGE, "a trust store holds at most %u " WHAT "s (%lu now, %lu more)",    \
                    (unsigned)(MAX), (unsigned long)(N), (unsigned long)n_);                                      \
        }                                                                                                         \
        for (const __typeof__(*(SRC)) *c_ = (SRC); c_ != NULL && c_->version != 0; c_ = c_->next) {               \
            int ret_ = PARSE(DST, c_->raw.p, c_->raw.len);                                                        \
            if (ret_ != 0) {                                                                                      \
                NAME##_truncate(DST, before_);                                                                    \
                (N) = before_;                                                                                    \
                ML_CHK_TLS(call, ret_, #PARSE);                                                                   \
            }                                                                                                     \
            (N)++;                                                                                                \
        }                                                                                                         \
    } while (0)

/* x509_trust_add (`crl` false) and x509_trust_add_crl: [handle, source handle]. */
static int trust_add(struct ml_call *call, CborValue *args, CborEncoder *result, bool crl)
{
    uint32_t handle = 0, src_handle = 0;
    struct trust_obj *t = NULL;
    mbedtls_x509_crt *crts = NULL;
    mbedtls_x509_crl *crls = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_handle(call, args, 2, &src_handle));
    ML_CHK(trust_get(call, handle, &t));
    if (crl) {
        ML_CHK(ml_x509_crl_lookup(call, src_handle, &crls));
        ADD_ALL(crl, crls, &t->crls, t->ncrls, ML_CFG_TRUST_CRLS_MAX, mbedtls_x509_crl_parse_der, "CRL");
    } else {
        ML_CHK(ml_x509_crt_lookup(call, src_handle, &crts));
        ADD_ALL(crt, crts, &t->cas, t->ncas, ML_CFG_TRUST_CAS_MAX, mbedtls_x509_crt_parse_der, "CA certificate");
    }
    (void)cbor_encode_uint(result, crl ? t->ncrls : t->ncas);
cleanup:
    return st;
}

int ml_op_x509_trust_add(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    return trust_add(call, args, result, false);
}

int ml_op_x509_trust_add_crl(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    return trust_add(call, args, result, true);
}

/* [* handle] at `pos`: between `min` and `max` distinct handles. */
static int arg_handle_list(struct ml_call *call, CborValue *args, unsigned pos, size_t min, size_t max, uint32_t *out,
                           size_t *count)
{
    size_t n = 0;
    CborValue inner;
    int st = ML_STATUS_OK;
    if (!cbor_value_is_array(args) || !cbor_value_is_length_known(args) ||
        cbor_value_get_array_length(args, &n) != CborNoError ||
        cbor_value_enter_container(args, &inner) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected an array of handles", pos);
    }
    if (n < min || n > max) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: %lu handles, expected %lu to %u", pos, (unsigned long)n,
                (unsigned long)min, (unsigned)max);
    }
    for (size_t i = 0; i < n; i++) {
        ML_CHK(ml_arg_handle(call, &inner, pos, &out[i]));
        for (size_t j = 0; j < i; j++) {
            if (out[j] == out[i]) {
                ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: handle %lu named twice", pos, (unsigned long)out[i]);
            }
        }
    }
    if (cbor_value_leave_container(args, &inner) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: malformed array", pos);
    }
    *count = n;
cleanup:
    return st;
}

/* hostname: tstr / null, into a NUL-terminated buffer (NULL when null). */
static int arg_hostname(struct ml_call *call, CborValue *args, unsigned pos, char *buf, const char **out)
{
    size_t n = 0, got = HOSTNAME_MAX + 1;
    int st = ML_STATUS_OK;
    *out = NULL;
    if (cbor_value_is_null(args)) {
        (void)cbor_value_advance_fixed(args);
        goto cleanup;
    }
    if (!cbor_value_is_text_string(args) || !cbor_value_is_length_known(args)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a host name (text string) or null", pos);
    }
    (void)cbor_value_get_string_length(args, &n);
    if (n == 0 || n > HOSTNAME_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: a host name has 1 to %u bytes", pos, HOSTNAME_MAX);
    }
    if (cbor_value_copy_text_string(args, buf, &got, args) != CborNoError || memchr(buf, '\0', got) != NULL) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: malformed host name", pos);
    }
    *out = buf;
cleanup:
    return st;
}

static int arg_time(struct ml_call *call, CborValue *args, unsigned pos, bool *given, int64_t *at)
{
    uint64_t v = 0;
    int st = ML_STATUS_OK;
    *given = false;
    if (cbor_value_is_null(args)) {
        (void)cbor_value_advance_fixed(args);
        goto cleanup;
    }
    ML_CHK(ml_arg_uint(call, args, pos, &v));
    if (v > (uint64_t)ML_CLOCK_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: time after 9999-12-31", pos);
    }
    *given = true;
    *at = (int64_t)v;
cleanup:
    return st;
}

static int arg_profile(struct ml_call *call, CborValue *args, unsigned pos, const mbedtls_x509_crt_profile **out)
{
    uint64_t v = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, pos, &v));
    switch (v) {
    case ML_X509_PROFILE_DEFAULT:
        *out = &mbedtls_x509_crt_profile_default;
        break;
    case ML_X509_PROFILE_NEXT:
        *out = &mbedtls_x509_crt_profile_next;
        break;
    case ML_X509_PROFILE_SUITEB:
        *out = &mbedtls_x509_crt_profile_suiteb;
        break;
    case ML_X509_PROFILE_COMPAT:
        *out = &profile_compat;
        break;
    default:
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: unknown profile %llu", pos, (unsigned long long)v);
    }
cleanup:
    return st;
}

/* What a leaf must allow for a TLS purpose, as OpenSSL's -purpose sslserver /
 * sslclient: the extended key usage (when present) names it, and the key
 * usage (when present) has one of the bits the purpose can use. */
static uint32_t purpose_flags(const mbedtls_x509_crt *leaf, uint64_t purpose)
{
    uint32_t flags = 0;
    if (purpose == ML_X509_PURPOSE_ANY) {
        return 0;
    }
    bool server = purpose == ML_X509_PURPOSE_SERVER;
    int eku = server ? mbedtls_x509_crt_check_extended_key_usage(leaf, MBEDTLS_OID_SERVER_AUTH,
                                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))
                     : mbedtls_x509_crt_check_extended_key_usage(leaf, MBEDTLS_OID_CLIENT_AUTH,
                                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH));
    if (eku != 0) {
        flags |= MBEDTLS_X509_BADCERT_EXT_KEY_USAGE;
    }
    bool ku = mbedtls_x509_crt_check_key_usage(leaf, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) == 0 ||
              mbedtls_x509_crt_check_key_usage(leaf, MBEDTLS_X509_KU_KEY_AGREEMENT) == 0 ||
              (server && mbedtls_x509_crt_check_key_usage(leaf, MBEDTLS_X509_KU_KEY_ENCIPHERMENT) == 0);
    if (!ku) {
        flags |= MBEDTLS_X509_BADCERT_KEY_USAGE;
    }
    return flags;
}

/* The verified path as Mbed TLS's verify callback reports it: each certificate with its own flags, by depth. */
struct path {
    const mbedtls_x509_crt *crt[PATH_LEN];
    uint32_t flags[PATH_LEN];
    size_t len;
};

static int record_path(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct path *path = ctx;
    if (depth >= 0 && depth < PATH_LEN) {
        path->crt[depth] = crt;
        path->flags[depth] = *flags;
        if ((size_t)depth >= path->len) {
            path->len = (size_t)depth + 1;
        }
    }
    return 0;
}

static bool same_name(const mbedtls_x509_buf *a, const mbedtls_x509_buf *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* Why the top of a path that ends not_trusted found no issuer, when a
 * certificate named as its issuer is at hand (in the store or later in the
 * chain), by the rules of Mbed TLS's x509_crt_check_parent and its path
 * length check, which report all of them as not_trusted alone: the
 * x509_verify_cause bits. */
static uint32_t no_issuer_causes(const struct path *path, const mbedtls_x509_crt *cas)
{
    uint32_t causes = 0;
    size_t self_issued = 0;
    if (path->len == 0) {
        return 0;
    }
    size_t top = path->len - 1;
    const mbedtls_x509_crt *child = path->crt[top];
    if (child == NULL || (path->flags[top] & MBEDTLS_X509_BADCERT_NOT_TRUSTED) == 0) {
        return 0;
    }
    for (size_t d = 1; d <= top; d++) {
        self_issued += path->crt[d] != NULL && same_name(&path->crt[d]->issuer_raw, &path->crt[d]->subject_raw);
    }
    const mbedtls_x509_crt *lists[2] = {cas, child->next};
    for (size_t l = 0; l < 2; l++) {
        for (const mbedtls_x509_crt *p = lists[l]; p != NULL && p->version != 0; p = p->next) {
            if (p == child || !same_name(&child->issuer_raw, &p->subject_raw)) {
                continue;
            }
            bool need_ca = !(l == 0 && p->version < 3); /* a trusted v1/v2 root is taken as it is */
            if (need_ca && !p->MBEDTLS_PRIVATE(ca_istrue)) {
                causes |= ML_X509_VERIFY_CAUSE_NOT_CA;
            } else if (need_ca && mbedtls_x509_crt_check_key_usage(p, MBEDTLS_X509_KU_KEY_CERT_SIGN) != 0) {
                causes |= ML_X509_VERIFY_CAUSE_BAD_ISSUER_KEY_USAGE;
            } else if (p->MBEDTLS_PRIVATE(max_pathlen) > 0 &&
                       (size_t)p->MBEDTLS_PRIVATE(max_pathlen) < 1 + top - self_issued) {
                causes |= ML_X509_VERIFY_CAUSE_BAD_PATH_LENGTH;
            }
        }
    }
    return causes;
}

/* {"flags": uint, "causes": uint, "path": [* [flags, subject, serial]]}, leaf first. */
static void encode_verdict(CborEncoder *result, uint32_t flags, uint32_t causes, const struct path *path)
{
    CborEncoder map, list, item;
    char subject[SUBJECT_MAX];
    CborError err = cbor_encoder_create_map(result, &map, 3);
    err |= cbor_encode_text_stringz(&map, "flags");
    err |= cbor_encode_uint(&map, flags);
    err |= cbor_encode_text_stringz(&map, "causes");
    err |= cbor_encode_uint(&map, causes);
    err |= cbor_encode_text_stringz(&map, "path");
    err |= cbor_encoder_create_array(&map, &list, path->len);
    for (size_t i = 0; i < path->len; i++) {
        const mbedtls_x509_crt *crt = path->crt[i];
        subject[0] = '\0';
        if (crt != NULL) {
            (void)mbedtls_x509_dn_gets(subject, sizeof subject, &crt->subject); /* cut short if longer */
            subject[sizeof subject - 1] = '\0';
        }
        err |= cbor_encoder_create_array(&list, &item, 3);
        err |= cbor_encode_uint(&item, path->flags[i]);
        err |= cbor_encode_text_stringz(&item, subject);
        err |= cbor_encode_byte_string(&item, crt != NULL ? crt->serial.p : NULL, crt != NULL ? crt->serial.len : 0);
        err |= cbor_encoder_close_container(&list, &item);
    }
    err |= cbor_encoder_close_container(&map, &list);
    err |= cbor_encoder_close_container(result, &map);
    (void)err; /* the dispatcher checks the encoder (too_large) */
}

int ml_op_x509_trust_verify(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, chain_h[CHAIN_MAX], crl_h[CRLS_MAX];
    size_t nchain = 0, ncrl = 0, nlinked = 0, ncrl_linked = 0;
    mbedtls_x509_crt *chain[CHAIN_MAX];
    mbedtls_x509_crt *crt_joints[CHAIN_MAX];
    mbedtls_x509_crl *crls[CRLS_MAX];
    mbedtls_x509_crl *crl_joints[CRLS_MAX];
    struct trust_obj *t = NULL;
    char host_buf[HOSTNAME_MAX + 1];
    const char *hostname = NULL;
    uint64_t purpose = 0;
    bool pinned = false;
    int64_t at = 0;
    const mbedtls_x509_crt_profile *profile = NULL;
    struct path path;
    uint32_t flags = 0, usage = 0;
    int ret = 0;
    int st = ML_STATUS_OK;
    memset(&path, 0, sizeof path);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(arg_handle_list(call, args, 2, 1, CHAIN_MAX, chain_h, &nchain));
    ML_CHK(arg_hostname(call, args, 3, host_buf, &hostname));
    ML_CHK(ml_arg_uint(call, args, 4, &purpose));
    if (purpose != ML_X509_PURPOSE_ANY && purpose != ML_X509_PURPOSE_SERVER && purpose != ML_X509_PURPOSE_CLIENT) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 4: purpose must be 0 (any), 1 (server) or 2 (client)");
    }
    ML_CHK(arg_time(call, args, 5, &pinned, &at));
    ML_CHK(arg_handle_list(call, args, 6, 0, CRLS_MAX, crl_h, &ncrl));
    ML_CHK(arg_profile(call, args, 7, &profile));
    ML_CHK(trust_get(call, handle, &t));
    for (size_t i = 0; i < nchain; i++) {
        ML_CHK(ml_x509_crt_lookup(call, chain_h[i], &chain[i]));
        if (chain[i]->version == 0) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: handle %lu holds no certificate", (unsigned long)chain_h[i]);
        }
    }
    for (size_t i = 0; i < ncrl; i++) {
        ML_CHK(ml_x509_crl_lookup(call, crl_h[i], &crls[i]));
    }
    /* One list each: the chain's handles in order, the store's CRLs then the call's. */
    for (; nlinked + 1 < nchain; nlinked++) {
        crt_joints[nlinked] = crt_tail(chain[nlinked]);
        crt_joints[nlinked]->next = chain[nlinked + 1];
    }
    for (; ncrl_linked < ncrl; ncrl_linked++) {
        crl_joints[ncrl_linked] = crl_tail(ncrl_linked == 0 ? &t->crls : crls[ncrl_linked - 1]);
        crl_joints[ncrl_linked]->next = crls[ncrl_linked];
    }
    if (pinned) {
        ml_clock_pin(at);
    }
    ret = mbedtls_x509_crt_verify_with_profile(chain[0], &t->cas, &t->crls, profile, hostname, &flags, record_path,
                                               &path);
    if (ret != 0 && ret != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        ML_CHK_TLS(call, ret, "x509_crt_verify");
    }
    usage = purpose_flags(chain[0], purpose);
    flags |= usage;
    path.flags[0] |= usage;
    encode_verdict(result, flags, no_issuer_causes(&path, &t->cas), &path); /* the chain still linked */
cleanup:
    if (pinned) {
        ml_clock_unpin();
    }
    while (nlinked > 0) {
        crt_joints[--nlinked]->next = NULL;
    }
    while (ncrl_linked > 0) {
        crl_joints[--ncrl_linked]->next = NULL;
    }
    return st;
}
