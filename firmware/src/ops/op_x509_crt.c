/*
 * x509 module, certificates (spec.md 7.10): parsed chains behind
 * ML_HT_X509_CRT handles, their accessors, and one signature check.
 *
 * A certificate (or a CRL, op_x509_crl.c) larger than one frame arrives in
 * pieces: each x509_crt_parse names the total length of the input; the
 * first piece of a longer input allocates a buffer of that length in the
 * object, later pieces fill it, and the last one parses it. Mbed TLS copies
 * what it parses, so the buffer is freed right after: a parse peaks at the
 * input plus its parsed copy.
 */
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_x509.h"
#include "ops/ml_x509_util.h"

/* A buffer a certificate of the chain was parsed from in place (its raw DER). */
struct owned_der {
    struct owned_der *next;
    uint8_t *buf;
    size_t len;
};

struct crt_obj {
    mbedtls_x509_crt chain; /* first: ml_x509_crt_lookup hands out its address */
    struct ml_x509_input in;
    struct owned_der *owned; /* DER buffers of certificates parsed in place */
};

static void crt_dtor(void *obj)
{
    struct crt_obj *c = obj;
    mbedtls_x509_crt_free(&c->chain);
    ml_x509_input_drop(&c->in);
    while (c->owned != NULL) {
        struct owned_der *o = c->owned;
        c->owned = o->next;
        ml_buf_free(o->buf, o->len);
        ml_buf_free(o, sizeof *o);
    }
}

int ml_x509_crt_lookup(struct ml_call *call, uint32_t handle, mbedtls_x509_crt **chain)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_get(call, handle, ML_HT_X509_CRT, &p));
    *chain = &((struct crt_obj *)p)->chain;
cleanup:
    return st;
}

/* The object under `handle`, created (empty) when the handle is not live; *created says so. */
static int crt_get_or_create(struct ml_call *call, uint32_t handle, struct crt_obj **out, bool *created)
{
    void *p = NULL;
    uint8_t type = ML_HT_NONE;
    int st = ML_STATUS_OK;
    *created = false;
    if (ml_handle_lookup(call, handle, &type, &p) != ML_STATUS_OK) {
        ML_CHK(ml_handle_create(call, handle, ML_HT_X509_CRT, sizeof(struct crt_obj), crt_dtor, &p));
        mbedtls_x509_crt_init(&((struct crt_obj *)p)->chain);
        *created = true;
    } else {
        ML_CHK(ml_handle_get(call, handle, ML_HT_X509_CRT, &p)); /* wrong_handle_type */
    }
    *out = p;
cleanup:
    return st;
}

static size_t chain_len(const mbedtls_x509_crt *c)
{
    size_t n = 0;
    for (; c != NULL && c->version != 0; c = c->next) {
        n++;
    }
    return n;
}

/* Parses DER or NUL-terminated PEM into the chain; *failed: PEM certificates skipped. */
static int crt_parse(struct ml_call *call, mbedtls_x509_crt *chain, const uint8_t *data, size_t len, int *failed)
{
    static const uint8_t empty = 0;
    int st = ML_STATUS_OK;
    int ret = mbedtls_x509_crt_parse(chain, len > 0 ? data : &empty, len);
    *failed = ret > 0 ? ret : 0;
    if (ret < 0) {
        st = ml_x509_fail(call, ret, "x509_crt_parse");
    }
    return st;
}

/* Whether the input is PEM text as mbedtls_x509_crt_parse sees it (NUL-terminated). */
static bool is_pem(const uint8_t *data, size_t len) { return len > 0 && data[len - 1] == 0; }

/* Parses the DER collected from pieces where it lies (mbedtls_x509_crt_parse_der_nocopy), the object
 * keeping the buffer: a certificate larger than a frame then costs its DER once, not twice. */
static int crt_parse_in_place(struct ml_call *call, struct crt_obj *c)
{
    struct owned_der *o = ml_buf_alloc(sizeof *o);
    int ret = 0;
    int st = ML_STATUS_OK;
    if (o == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "x509_crt_parse: no room for the buffer's record");
    }
    ret = mbedtls_x509_crt_parse_der_nocopy(&c->chain, c->in.buf, c->in.len);
    if (ret != 0) {
        ML_CHK(ml_x509_fail(call, ret, "x509_crt_parse"));
    }
    o->buf = c->in.buf;
    o->len = c->in.total;
    o->next = c->owned;
    c->owned = o;
    o = NULL;
    c->in.buf = NULL; /* the chain owns it now */
    c->in.len = 0;
    c->in.total = 0;
cleanup:
    ml_buf_free(o, sizeof *o);
    return st;
}

int ml_x509_crt_add_der(struct ml_call *call, uint32_t handle, const uint8_t *der, size_t len)
{
    struct crt_obj *c = NULL;
    bool created = false;
    int failed = 0;
    int st = ML_STATUS_OK;
    ML_CHK(crt_get_or_create(call, handle, &c, &created));
    ML_CHK(crt_parse(call, &c->chain, der, len, &failed));
cleanup:
    if (st != ML_STATUS_OK && created) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

int ml_op_x509_crt_parse(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    uint64_t total = 0;
    struct crt_obj *c = NULL;
    bool created = false;
    const uint8_t *whole = NULL;
    size_t whole_len = 0;
    int failed = 0;
    CborEncoder arr;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(ml_arg_uint(call, args, 3, &total));
    ML_CHK(crt_get_or_create(call, handle, &c, &created));
    ML_CHK(ml_x509_input_take(call, &c->in, data, len, total, &whole, &whole_len));
    if (whole == NULL) {
        (void)cbor_encode_null(result); /* more pieces to come */
        goto cleanup;
    }
    if (whole == c->in.buf && !is_pem(whole, whole_len)) {
        st = crt_parse_in_place(call, c);
    } else {
        st = crt_parse(call, &c->chain, whole, whole_len, &failed);
    }
    ml_x509_input_drop(&c->in);
    ML_CHK(st);
    (void)cbor_encoder_create_array(result, &arr, 2);
    (void)cbor_encode_uint(&arr, chain_len(&c->chain));
    (void)cbor_encode_uint(&arr, (uint64_t)failed);
    (void)cbor_encoder_close_container(result, &arr);
cleanup:
    /* A handle left without a certificate and without pending input is freed again. */
    if (st != ML_STATUS_OK && c != NULL && chain_len(&c->chain) == 0 && c->in.buf == NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

int ml_x509_crt_args(struct ml_call *call, CborValue *args, unsigned pos, const mbedtls_x509_crt **out)
{
    uint32_t handle = 0;
    uint64_t index = 0;
    mbedtls_x509_crt *c = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, pos, &handle));
    ML_CHK(ml_arg_uint(call, args, pos + 1, &index));
    ML_CHK(ml_x509_crt_lookup(call, handle, &c));
    for (uint64_t i = 0; i < index && c != NULL; i++) {
        c = c->next;
    }
    if (c == NULL || c->version == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: the chain has %lu certificate(s), no index %llu", pos + 1,
                (unsigned long)chain_len(c), (unsigned long long)index);
    }
    *out = c;
cleanup:
    return st;
}

/* subjectAltName entries the info map carries; x509_crt_san pages through the rest. */
#define INFO_SANS 16u
/* subjectAltName entries per x509_crt_san answer (about 12 bytes each: within the smallest MTU). */
#define PAGE_SANS 256u

static size_t san_count(const mbedtls_x509_crt *crt)
{
    size_t n = 0;
    if (mbedtls_x509_crt_has_ext_type(crt, MBEDTLS_X509_EXT_SUBJECT_ALT_NAME)) {
        for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL && s->buf.p != NULL; s = s->next) {
            n++;
        }
    }
    return n;
}

/* [tag, offset, length] per subjectAltName entry from `from`, at most `max`
 * (tag: the GeneralName choice; the range: its content in the DER). */
static CborError encode_sans(CborEncoder *enc, const mbedtls_x509_crt *crt, size_t from, size_t max)
{
    CborEncoder arr, entry;
    const size_t total = san_count(crt);
    const size_t n = from < total ? (total - from < max ? total - from : max) : 0;
    const mbedtls_x509_sequence *s = &crt->subject_alt_names;
    CborError err = cbor_encoder_create_array(enc, &arr, n);
    for (size_t i = 0; i < from && s != NULL; i++) {
        s = s->next;
    }
    for (size_t i = 0; i < n && s != NULL; i++, s = s->next) {
        err |= cbor_encoder_create_array(&arr, &entry, 3);
        err |= cbor_encode_uint(&entry, (uint64_t)(s->buf.tag & MBEDTLS_ASN1_TAG_VALUE_MASK));
        err |= cbor_encode_uint(&entry, (uint64_t)(s->buf.p - crt->raw.p));
        err |= cbor_encode_uint(&entry, s->buf.len);
        err |= cbor_encoder_close_container(&arr, &entry);
    }
    err |= cbor_encoder_close_container(enc, &arr);
    return err;
}

/* extendedKeyUsage OIDs in dotted form. */
static CborError encode_eku(CborEncoder *map, const mbedtls_x509_crt *crt)
{
    CborEncoder arr;
    char oid[64];
    size_t n = 0;
    CborError err = CborNoError;
    for (const mbedtls_x509_sequence *s = &crt->ext_key_usage; s != NULL && s->buf.p != NULL; s = s->next) {
        n++;
    }
    err |= cbor_encoder_create_array(map, &arr, n);
    for (const mbedtls_x509_sequence *s = &crt->ext_key_usage; s != NULL && s->buf.p != NULL; s = s->next) {
        int k = mbedtls_oid_get_numeric_string(oid, sizeof oid, &s->buf);
        err |= cbor_encode_text_stringz(&arr, k > 0 ? oid : "?");
    }
    err |= cbor_encoder_close_container(map, &arr);
    return err;
}

static CborError encode_opt_bytes(CborEncoder *map, const char *key, const mbedtls_x509_buf *b)
{
    CborError err = cbor_encode_text_stringz(map, key);
    err |= b->p != NULL ? cbor_encode_byte_string(map, b->p, b->len) : cbor_encode_null(map);
    return err;
}

static const char *sig_pk_name(mbedtls_pk_type_t t)
{
    return t == MBEDTLS_PK_RSA          ? "rsa"
           : t == MBEDTLS_PK_ECDSA      ? "ecdsa"
           : t == MBEDTLS_PK_RSASSA_PSS ? "rsassa-pss"
                                        : "?";
}

int ml_x509_crt_encode_info(struct ml_call *call, const mbedtls_x509_crt *crt, CborEncoder *map_parent)
{
    (void)call;
    const int bc = MBEDTLS_X509_EXT_BASIC_CONSTRAINTS;
    const int max_pathlen = crt->MBEDTLS_PRIVATE(max_pathlen);
    CborEncoder map;
    char dn[MBEDTLS_X509_MAX_DN_NAME_SIZE * 2];
    CborError err = cbor_encoder_create_map(map_parent, &map, 22);
    err |= cbor_encode_text_stringz(&map, "version");
    err |= cbor_encode_uint(&map, (uint64_t)crt->version);
    err |= cbor_encode_text_stringz(&map, "serial");
    err |= cbor_encode_byte_string(&map, crt->serial.p, crt->serial.len);
    err |= cbor_encode_text_stringz(&map, "issuer");
    err |= cbor_encode_text_stringz(&map, mbedtls_x509_dn_gets(dn, sizeof dn, &crt->issuer) >= 0 ? dn : "");
    err |= cbor_encode_text_stringz(&map, "issuer_attrs");
    err |= ml_x509_encode_name(&map, &crt->issuer);
    err |= cbor_encode_text_stringz(&map, "subject");
    err |= cbor_encode_text_stringz(&map, mbedtls_x509_dn_gets(dn, sizeof dn, &crt->subject) >= 0 ? dn : "");
    err |= cbor_encode_text_stringz(&map, "subject_attrs");
    err |= ml_x509_encode_name(&map, &crt->subject);
    err |= cbor_encode_text_stringz(&map, "not_before");
    err |= ml_x509_encode_time(&map, &crt->valid_from);
    err |= cbor_encode_text_stringz(&map, "not_after");
    err |= ml_x509_encode_time(&map, &crt->valid_to);
    err |= cbor_encode_text_stringz(&map, "sig_md");
    err |= ml_x509_encode_md(&map, crt->MBEDTLS_PRIVATE(sig_md));
    err |= cbor_encode_text_stringz(&map, "sig_pk");
    err |= cbor_encode_text_stringz(&map, sig_pk_name(crt->MBEDTLS_PRIVATE(sig_pk)));
    err |= cbor_encode_text_stringz(&map, "public_key");
    err |= cbor_encode_byte_string(&map, crt->pk_raw.p, crt->pk_raw.len);
    err |= cbor_encode_text_stringz(&map, "key_usage");
    err |= mbedtls_x509_crt_has_ext_type(crt, MBEDTLS_X509_EXT_KEY_USAGE)
               ? cbor_encode_uint(&map, crt->MBEDTLS_PRIVATE(key_usage))
               : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "ext_key_usage");
    err |= mbedtls_x509_crt_has_ext_type(crt, MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE) ? encode_eku(&map, crt)
                                                                                   : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "san");
    err |= mbedtls_x509_crt_has_ext_type(crt, MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) ? encode_sans(&map, crt, 0, INFO_SANS)
                                                                                 : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "san_count");
    err |= cbor_encode_uint(&map, san_count(crt));
    err |= cbor_encode_text_stringz(&map, "ca");
    err |= mbedtls_x509_crt_has_ext_type(crt, bc) ? cbor_encode_boolean(&map, crt->MBEDTLS_PRIVATE(ca_istrue) != 0)
                                                  : cbor_encode_null(&map);
    /* Mbed TLS keeps pathLenConstraint + 1 (0: no constraint). */
    err |= cbor_encode_text_stringz(&map, "max_pathlen");
    err |= mbedtls_x509_crt_has_ext_type(crt, bc) && max_pathlen > 0 ? cbor_encode_uint(&map, (uint64_t)max_pathlen - 1)
                                                                     : cbor_encode_null(&map);
    err |= encode_opt_bytes(&map, "ski", &crt->subject_key_id);
    err |= encode_opt_bytes(&map, "aki", &crt->authority_key_id.keyIdentifier);
    err |= cbor_encode_text_stringz(&map, "tbs");
    err |= ml_x509_encode_range(&map, &crt->raw, &crt->tbs);
    err |= cbor_encode_text_stringz(&map, "sig");
    err |= ml_x509_encode_range(&map, &crt->raw, &crt->MBEDTLS_PRIVATE(sig));
    err |= cbor_encode_text_stringz(&map, "der_len");
    err |= cbor_encode_uint(&map, crt->raw.len);
    err |= cbor_encoder_close_container(map_parent, &map);
    (void)err; /* the dispatcher checks the encoder (too_large) */
    return ML_STATUS_OK;
}

int ml_op_x509_crt_info(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const mbedtls_x509_crt *crt = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_x509_crt_args(call, args, 1, &crt));
    ML_CHK(ml_x509_crt_encode_info(call, crt, result));
cleanup:
    return st;
}

static int crt_info_text(char *buf, size_t size, const void *obj) { return mbedtls_x509_crt_info(buf, size, "", obj); }

int ml_op_x509_crt_text(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const mbedtls_x509_crt *obj = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_x509_crt_args(call, args, 1, &obj));
    ML_CHK(ml_x509_encode_text(call, result, crt_info_text, obj));
cleanup:
    return st;
}

int ml_op_x509_crt_verify_sig(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const mbedtls_x509_crt *parent = NULL;
    const mbedtls_x509_crt *child = NULL;
    const mbedtls_md_info_t *md = NULL;
    uint8_t hash[MBEDTLS_MD_MAX_SIZE];
    bool ok = false;
    int st = ML_STATUS_OK;
    ML_CHK(ml_x509_crt_args(call, args, 1, &parent));
    ML_CHK(ml_x509_crt_args(call, args, 3, &child));
    md = mbedtls_md_info_from_type(child->MBEDTLS_PRIVATE(sig_md));
    /* As Mbed TLS's own check (x509_crt_check_signature): the parent's key must do the child's signature scheme. */
    if (md != NULL && mbedtls_pk_can_do(&parent->pk, child->MBEDTLS_PRIVATE(sig_pk))) {
        ML_CHK_TLS(call, mbedtls_md(md, child->tbs.p, child->tbs.len, hash), "md");
        ok = mbedtls_pk_verify_ext(child->MBEDTLS_PRIVATE(sig_pk), child->MBEDTLS_PRIVATE(sig_opts),
                                   (mbedtls_pk_context *)&parent->pk, child->MBEDTLS_PRIVATE(sig_md), hash,
                                   mbedtls_md_get_size(md), child->MBEDTLS_PRIVATE(sig).p,
                                   child->MBEDTLS_PRIVATE(sig).len) == 0;
    }
    (void)cbor_encode_boolean(result, ok);
cleanup:
    return st;
}

int ml_op_x509_crt_san(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const mbedtls_x509_crt *crt = NULL;
    uint64_t from = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_x509_crt_args(call, args, 1, &crt));
    ML_CHK(ml_arg_uint(call, args, 3, &from));
    (void)encode_sans(result, crt, from > SIZE_MAX ? SIZE_MAX : (size_t)from, PAGE_SANS);
cleanup:
    return st;
}
