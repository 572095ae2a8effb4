/*
 * x509 module, certificate requests (spec.md 7.11): x509_csr_write signs a
 * PKCS#10 request with a device key (mbedtls_x509write_csr, so a
 * non-exportable key works) into a new ML_HT_X509_CSR handle,
 * x509_csr_parse loads one (in pieces when it is larger than a frame,
 * ops/ml_x509_util.h), x509_csr_info describes it, x509_csr_verify checks its
 * self-signature, and the x509-ext map both write ops take is read here
 * (SAN, key usage, extended key usage).
 */
#include <mbedtls/asn1write.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/x509_csr.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_config.h"
#include "core/ml_handles.h"
#include "ops/ml_hash.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_x509_util.h"
#include "ops/ml_x509_write.h"

/* Longest subject string x509_csr_write takes. */
#define SUBJECT_MAX 1024u
/* Longest dotted OID or printed name the info map carries. */
#define NAME_TEXT_MAX 256u

struct csr_obj {
    mbedtls_x509_csr csr;
    struct ml_x509_input in; /* the DER arriving in pieces */
    bool parsed;
};

static void csr_dtor(void *obj)
{
    struct csr_obj *c = obj;
    mbedtls_x509_csr_free(&c->csr);
    ml_x509_input_drop(&c->in);
}

static int csr_obj_get(struct ml_call *call, uint32_t handle, struct csr_obj **c)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_get(call, handle, ML_HT_X509_CSR, &p));
    *c = p;
    if (!(*c)->parsed) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "CSR handle %lu is still loading (x509_csr_parse)",
                (unsigned long)handle);
    }
cleanup:
    return st;
}

int ml_x509_csr_get(struct ml_call *call, uint32_t handle, mbedtls_x509_csr **csr)
{
    struct csr_obj *c = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(csr_obj_get(call, handle, &c));
    *csr = &c->csr;
cleanup:
    return st;
}

/* ------------------------------------------------------------ DER helpers */

static size_t der_len_size(size_t n) { return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4; }

/* Writes a tag and a definite length forward at p; returns the end. */
static uint8_t *der_put_tl(uint8_t *p, uint8_t tag, size_t n)
{
    *p++ = tag;
    size_t ls = der_len_size(n);
    if (ls == 1) {
        *p++ = (uint8_t)n;
    } else {
        *p++ = (uint8_t)(0x80 | (ls - 1));
        for (size_t i = ls - 1; i > 0; i--) {
            *p++ = (uint8_t)(n >> (8 * (i - 1)));
        }
    }
    return p;
}

/* Reads a TLV at *p (below end) whose tag is `tag`; *p moves past it. */
static bool der_get(const uint8_t **p, const uint8_t *end, int tag, const uint8_t **val, size_t *len)
{
    unsigned char *q = (unsigned char *)(uintptr_t)*p;
    if (mbedtls_asn1_get_tag(&q, end, len, tag) != 0) {
        return false;
    }
    *val = q;
    *p = q + *len;
    return true;
}

bool ml_x509_csr_ext_find(const mbedtls_x509_csr *csr, const char *oid, size_t oid_len, const uint8_t **val,
                          size_t *len, int *critical)
{
    /* CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, attributes [0] } */
    const uint8_t *p = csr->cri.p, *end = csr->cri.p + csr->cri.len, *v = NULL;
    size_t n = 0;
    if (!der_get(&p, end, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, &v, &n)) {
        return false;
    }
    p = v;
    end = v + n;
    if (!der_get(&p, end, MBEDTLS_ASN1_INTEGER, &v, &n) ||
        !der_get(&p, end, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, &v, &n) ||
        !der_get(&p, end, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, &v, &n) ||
        !der_get(&p, end, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED, &v, &n)) {
        return false;
    }
    const uint8_t *attrs_end = v + n;
    for (const uint8_t *a = v; a < attrs_end;) {
        const uint8_t *attr = NULL, *type = NULL, *set = NULL;
        size_t alen = 0, tlen = 0, slen = 0;
        if (!der_get(&a, attrs_end, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, &attr, &alen)) {
            return false;
        }
        const uint8_t *q = attr, *qend = attr + alen;
        if (!der_get(&q, qend, MBEDTLS_ASN1_OID, &type, &tlen) ||
            !der_get(&q, qend, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SET, &set, &slen)) {
            return false;
        }
        if (MBEDTLS_OID_CMP_RAW(MBEDTLS_OID_PKCS9_CSR_EXT_REQ, type, tlen) != 0) {
            continue;
        }
        const uint8_t *exts = NULL;
        size_t elen = 0;
        q = set;
        if (!der_get(&q, set + slen, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, &exts, &elen)) {
            return false;
        }
        for (const uint8_t *e = exts; e < exts + elen;) {
            const uint8_t *ext = NULL, *id = NULL;
            size_t xlen = 0, idlen = 0;
            int crit = 0;
            if (!der_get(&e, exts + elen, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, &ext, &xlen)) {
                return false;
            }
            const uint8_t *xend = ext + xlen;
            if (!der_get(&ext, xend, MBEDTLS_ASN1_OID, &id, &idlen)) {
                return false;
            }
            unsigned char *r = (unsigned char *)(uintptr_t)ext;
            if (mbedtls_asn1_get_bool(&r, xend, &crit) != 0) {
                crit = 0; /* DEFAULT FALSE: absent (get_bool leaves r where it was) */
            }
            ext = r;
            if (!der_get(&ext, xend, MBEDTLS_ASN1_OCTET_STRING, val, len)) {
                return false;
            }
            if (idlen == oid_len && memcmp(id, oid, oid_len) == 0) {
                *critical = crit;
                return true;
            }
        }
    }
    return false;
}

/* ------------------------------------------------------------ x509-ext */

int ml_x509_ext_check_keys(struct ml_call *call, const CborValue *map, unsigned pos, const char *const *keys)
{
    CborValue it;
    int st = ML_STATUS_OK;
    if (!cbor_value_is_map(map) || cbor_value_enter_container(map, &it) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a map", pos);
    }
    while (!cbor_value_at_end(&it)) {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++) {
            bool eq = false;
            known =
                cbor_value_is_text_string(&it) && cbor_value_text_string_equals(&it, keys[i], &eq) == CborNoError && eq;
        }
        if (!known) {
            ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: unknown key in the extension map", pos);
        }
        if (cbor_value_advance(&it) != CborNoError || cbor_value_at_end(&it) ||
            cbor_value_advance(&it) != CborNoError) {
            ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: malformed map", pos);
        }
    }
cleanup:
    return st;
}

/* One item of a "san" or "eku" list: its DER tag and value. */
static int list_item(struct ml_call *call, CborValue *it, bool san, unsigned pos, uint8_t *tag, const uint8_t **val,
                     size_t *len)
{
    CborValue in;
    uint64_t type = 0;
    int st = ML_STATUS_OK;
    if (!san) {
        *tag = MBEDTLS_ASN1_OID;
        ML_CHK(ml_arg_bytes(call, it, pos, val, len));
        if (*len == 0 || (*val)[*len - 1] & 0x80) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: \"eku\" holds a malformed OID", pos);
        }
        goto cleanup;
    }
    if (!cbor_value_is_array(it) || cbor_value_enter_container(it, &in) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: a \"san\" entry is [type, value]", pos);
    }
    ML_CHK(ml_arg_uint(call, &in, pos, &type));
    ML_CHK(ml_arg_bytes(call, &in, pos, val, len));
    if (!cbor_value_at_end(&in) || cbor_value_leave_container(it, &in) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: a \"san\" entry is [type, value]", pos);
    }
    if (type != 1 && type != 2 && type != 6 && type != 7) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: SAN type %llu: use 1 email, 2 DNS, 6 URI or 7 IP", pos,
                (unsigned long long)type);
    }
    if ((type == 7 && *len != 4 && *len != 16) || (type != 7 && *len == 0)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: SAN of type %llu with a %lu-byte value", pos,
                (unsigned long long)type, (unsigned long)*len);
    }
    *tag = (uint8_t)(MBEDTLS_ASN1_CONTEXT_SPECIFIC | type);
cleanup:
    return st;
}

/* The DER of a "san" (GeneralNames) or "eku" (SEQUENCE OF OID) list, in a
 * heap buffer of *len bytes (NULL, 0 for an empty list). */
static int list_der(struct ml_call *call, const CborValue *list, bool san, unsigned pos, uint8_t **out, size_t *len)
{
    CborValue it;
    size_t body = 0;
    uint8_t *p = NULL;
    int st = ML_STATUS_OK;
    *out = NULL;
    *len = 0;
    if (!cbor_value_is_array(list) || cbor_value_enter_container(list, &it) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: \"%s\" is a list", pos, san ? "san" : "eku");
    }
    for (int pass = 0; pass < 2; pass++) {
        (void)cbor_value_enter_container(list, &it);
        while (!cbor_value_at_end(&it)) {
            uint8_t tag = 0;
            const uint8_t *val = NULL;
            size_t vlen = 0;
            ML_CHK(list_item(call, &it, san, pos, &tag, &val, &vlen));
            if (pass == 0) {
                body += 1 + der_len_size(vlen) + vlen;
            } else {
                p = der_put_tl(p, tag, vlen);
                memcpy(p, val, vlen);
                p += vlen;
            }
        }
        if (pass == 0) {
            if (body == 0) {
                goto cleanup;
            }
            *len = 1 + der_len_size(body) + body;
            *out = ml_buf_alloc(*len);
            if (*out == NULL) {
                ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte extension", (unsigned long)*len);
            }
            p = der_put_tl(*out, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, body);
        }
    }
cleanup:
    if (st != ML_STATUS_OK) {
        ml_buf_free(*out, *len);
        *out = NULL;
    }
    return st;
}

static int ext_error(struct ml_call *call, int ret)
{
    return ret == MBEDTLS_ERR_X509_ALLOC_FAILED || ret == MBEDTLS_ERR_ASN1_ALLOC_FAILED
               ? ml_fail_mbedtls(call, ret, "set_extension")
               : ml_fail(call, ML_STATUS_INTERNAL_ERROR, "set_extension failed (%d)", ret);
}

int ml_x509_ext_apply(struct ml_call *call, const CborValue *map, unsigned pos, ml_x509_ext_setter set, void *wctx,
                      unsigned *named)
{
    static const char *const names[] = {"san", "ku", "eku"};
    CborValue v;
    uint8_t *der = NULL;
    size_t len = 0;
    int st = ML_STATUS_OK;
    *named = 0;
    for (unsigned i = 0; i < 3; i++) {
        if (cbor_value_map_find_value(map, names[i], &v) != CborNoError) {
            ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: malformed map", pos);
        }
        if (!cbor_value_is_valid(&v)) {
            continue;
        }
        *named |= 1u << i;
        int ret = 0;
        if (i == 1) {
            uint64_t ku = 0;
            uint8_t value[5];
            ML_CHK(ml_arg_uint(call, &v, pos, &ku));
            if ((ku & ~(uint64_t)0x80FF) != 0) {
                ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: unknown key usage bits 0x%llx", pos,
                        (unsigned long long)ku);
            }
            if (ku == 0) {
                continue;
            }
            /* KeyUsage ::= BIT STRING, named bits: no trailing zero bits (DER). */
            size_t n = (ku & 0x8000) != 0 ? 2 : 1;
            unsigned last = n == 2 ? (unsigned)(ku >> 8) & 0xFF : (unsigned)ku & 0xFF;
            unsigned unused = 0;
            while ((last & (1u << unused)) == 0) {
                unused++;
            }
            value[0] = MBEDTLS_ASN1_BIT_STRING;
            value[1] = (uint8_t)(n + 1);
            value[2] = (uint8_t)unused;
            value[3] = (uint8_t)(ku & 0xFF);
            value[4] = (uint8_t)(ku >> 8);
            ret = set(wctx, MBEDTLS_OID_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_KEY_USAGE), 1, value, 3 + n);
        } else {
            ML_CHK(list_der(call, &v, i == 0, pos, &der, &len));
            if (der == NULL) {
                continue;
            }
            ret = i == 0 ? set(wctx, MBEDTLS_OID_SUBJECT_ALT_NAME, MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                               der, len)
                         : set(wctx, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                               0, der, len);
            ml_buf_free(der, len);
            der = NULL;
        }
        if (ret != 0) {
            ML_CHK(ext_error(call, ret));
        }
    }
cleanup:
    ml_buf_free(der, len);
    return st;
}

int ml_x509_name_copy(struct ml_call *call, const mbedtls_x509_name *src, mbedtls_asn1_named_data **dst)
{
    int st = ML_STATUS_OK;
    for (const mbedtls_x509_name *n = src; n != NULL && n->oid.p != NULL; n = n->next) {
        mbedtls_asn1_named_data *d = mbedtls_calloc(1, sizeof *d);
        if (d == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a name");
        }
        d->next = *dst; /* prepend: Mbed TLS writes the list last RDN first */
        *dst = d;
        d->oid.tag = n->oid.tag;
        d->val.tag = n->val.tag;
        d->oid.p = mbedtls_calloc(1, n->oid.len > 0 ? n->oid.len : 1);
        d->val.p = mbedtls_calloc(1, n->val.len > 0 ? n->val.len : 1);
        if (d->oid.p == NULL || d->val.p == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a name");
        }
        memcpy(d->oid.p, n->oid.p, n->oid.len);
        memcpy(d->val.p, n->val.p, n->val.len);
        d->oid.len = n->oid.len;
        d->val.len = n->val.len;
    }
cleanup:
    return st;
}

/* ------------------------------------------------------------ info map */

/* The SANs a CSR requests: [* [tag, offset, length]] (the GeneralName
 * choice and where its content lies in the DER, which the host holds). */
static CborError encode_sans(CborEncoder *map, const mbedtls_x509_csr *csr)
{
    CborEncoder list;
    size_t count = 0;
    const mbedtls_x509_sequence *s = &csr->subject_alt_names;
    for (; s != NULL && s->buf.p != NULL; s = s->next) {
        count++;
    }
    CborError err = cbor_encoder_create_array(map, &list, count);
    s = &csr->subject_alt_names;
    for (size_t i = 0; i < count; i++, s = s->next) {
        CborEncoder entry;
        err |= cbor_encoder_create_array(&list, &entry, 3);
        err |= cbor_encode_uint(&entry, (uint64_t)(s->buf.tag & MBEDTLS_ASN1_TAG_VALUE_MASK));
        err |= cbor_encode_uint(&entry, (uint64_t)(s->buf.p - csr->raw.p));
        err |= cbor_encode_uint(&entry, (uint64_t)s->buf.len);
        err |= cbor_encoder_close_container(&list, &entry);
    }
    return err | cbor_encoder_close_container(map, &list);
}

/* The requested extended key usage as dotted OIDs, or null. */
static CborError encode_eku(CborEncoder *map, const mbedtls_x509_csr *csr)
{
    const uint8_t *val = NULL, *p = NULL, *seq = NULL;
    size_t len = 0, slen = 0, n = 0;
    int crit = 0;
    mbedtls_x509_buf oid = {MBEDTLS_ASN1_OID, 0, NULL};
    char text[NAME_TEXT_MAX];
    CborEncoder list;
    if (!ml_x509_csr_ext_find(csr, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                              &val, &len, &crit)) {
        return cbor_encode_null(map);
    }
    p = val;
    if (!der_get(&p, val + len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, &seq, &slen)) {
        return cbor_encode_null(map);
    }
    for (p = seq; p < seq + slen && der_get(&p, seq + slen, MBEDTLS_ASN1_OID, (const uint8_t **)&oid.p, &oid.len);) {
        n++;
    }
    CborError err = cbor_encoder_create_array(map, &list, n);
    p = seq;
    for (size_t i = 0; i < n && der_get(&p, seq + slen, MBEDTLS_ASN1_OID, (const uint8_t **)&oid.p, &oid.len); i++) {
        int k = mbedtls_oid_get_numeric_string(text, sizeof text, &oid);
        err |= cbor_encode_text_stringz(&list, k > 0 ? text : "?");
    }
    err |= cbor_encoder_close_container(map, &list);
    return err;
}

/* Encodes the x509-csr-info map (messages.cddl). */
static int encode_info(struct ml_call *call, const mbedtls_x509_csr *csr, CborEncoder *result)
{
    CborEncoder map;
    uint8_t *spki = NULL;
    char *subject = NULL;
    const size_t spki_cap = 1024;
    int st = ML_STATUS_OK;
    spki = ml_buf_alloc(spki_cap);
    subject = ml_buf_alloc(SUBJECT_MAX);
    if (spki == NULL || subject == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap to describe the CSR");
    }
    int spki_len = mbedtls_pk_write_pubkey_der((mbedtls_pk_context *)(uintptr_t)&csr->pk, spki, spki_cap);
    if (spki_len < 0) {
        ML_CHK_TLS(call, spki_len, "pk_write_pubkey_der");
    }
    int subject_len = mbedtls_x509_dn_gets(subject, SUBJECT_MAX, &csr->subject);
    bool ku = (csr->MBEDTLS_PRIVATE(ext_types) & MBEDTLS_X509_EXT_KEY_USAGE) != 0;
    bool san = (csr->MBEDTLS_PRIVATE(ext_types) & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) != 0;
    CborError err = cbor_encoder_create_map(result, &map, 9);
    err |= cbor_encode_text_stringz(&map, "version");
    err |= cbor_encode_uint(&map, (uint64_t)csr->version);
    err |= cbor_encode_text_stringz(&map, "subject");
    err |= cbor_encode_text_string(&map, subject, subject_len > 0 ? (size_t)subject_len : 0);
    err |= cbor_encode_text_stringz(&map, "subject_attrs");
    err |= ml_x509_encode_name(&map, &csr->subject);
    err |= cbor_encode_text_stringz(&map, "sig_md");
    err |= ml_x509_encode_md(&map, csr->MBEDTLS_PRIVATE(sig_md));
    err |= cbor_encode_text_stringz(&map, "public_key");
    err |= cbor_encode_byte_string(&map, spki + spki_cap - (size_t)spki_len, (size_t)spki_len);
    err |= cbor_encode_text_stringz(&map, "key_usage");
    err |= ku ? cbor_encode_uint(&map, csr->key_usage) : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "ext_key_usage");
    err |= encode_eku(&map, csr);
    err |= cbor_encode_text_stringz(&map, "san");
    err |= san ? encode_sans(&map, csr) : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "der_len");
    err |= cbor_encode_uint(&map, csr->raw.len);
    err |= cbor_encoder_close_container(result, &map);
    (void)err; /* the dispatcher checks the encoder (too_large) */
cleanup:
    ml_buf_free(spki, spki_cap);
    ml_buf_free(subject, SUBJECT_MAX);
    return st;
}

/* ------------------------------------------------------------ ops */

/* A text argument copied NUL-terminated into a heap buffer of *cap bytes. */
static int arg_text_dup(struct ml_call *call, CborValue *args, unsigned pos, size_t max, char **out, size_t *cap)
{
    size_t len = 0;
    int st = ML_STATUS_OK;
    *out = NULL;
    if (!cbor_value_is_text_string(args) || !cbor_value_is_length_known(args)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a text string", pos);
    }
    (void)cbor_value_get_string_length(args, &len);
    if (len > max) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: at most %lu bytes", pos, (unsigned long)max);
    }
    *cap = len + 1;
    *out = ml_buf_alloc(*cap);
    if (*out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for arg %u", pos);
    }
    size_t n = *cap;
    if (cbor_value_copy_text_string(args, *out, &n, args) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: malformed text string", pos);
    }
    if (strlen(*out) != len) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: contains a NUL character", pos);
    }
cleanup:
    return st;
}

int ml_x509_signing_key(struct ml_call *call, CborValue *args, unsigned pos, mbedtls_pk_context **pk)
{
    uint32_t handle = 0;
    void *obj = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, pos, &handle));
    ML_CHK(ml_pk_get(call, handle, &obj));
    if (!ml_pk_has_private(obj)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: the key has no private part: it cannot sign", pos);
    }
    *pk = ml_pk_ctx(obj);
cleanup:
    return st;
}

static int csr_set_ext(void *wctx, const char *oid, size_t oid_len, int critical, const unsigned char *val,
                       size_t val_len)
{
    return mbedtls_x509write_csr_set_extension(wctx, oid, oid_len, critical, val, val_len);
}

int ml_x509_write_error(struct ml_call *call, int ret, const char *what)
{
    if (ret == MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG || ret == MBEDTLS_ERR_OID_NOT_FOUND ||
        ret == MBEDTLS_ERR_X509_FEATURE_UNAVAILABLE || ret == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE) {
        call->mbedtls_code = ret;
        return ml_fail(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "%s: no signature algorithm for this key and digest",
                       what);
    }
    return ml_fail_mbedtls(call, ret, what);
}

int ml_x509_write_der(struct ml_call *call, ml_x509_der_writer write, void *wctx, uint8_t **buf, size_t *cap,
                      const uint8_t **der, size_t *len)
{
    int ret = 0;
    int st = ML_STATUS_OK;
    for (;;) {
        *buf = ml_buf_alloc(*cap);
        if (*buf == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu bytes of DER", (unsigned long)*cap);
        }
        ret = write(wctx, *buf, *cap, ml_busy_rng, NULL);
        if (ret != MBEDTLS_ERR_ASN1_BUF_TOO_SMALL || *cap > ML_CFG_HEAP_SIZE / 2) {
            break;
        }
        ml_buf_free(*buf, *cap);
        *buf = NULL;
        *cap *= 2;
    }
    if (ret < 0) {
        st = ml_x509_write_error(call, ret, "x509write");
        goto cleanup;
    }
    *der = *buf + *cap - (size_t)ret;
    *len = (size_t)ret;
cleanup:
    return st;
}

static int csr_der(void *wctx, unsigned char *buf, size_t size, mbedtls_f_rng_t *f_rng, void *p_rng)
{
    return mbedtls_x509write_csr_der(wctx, buf, size, f_rng, p_rng);
}

/* Creates a CSR handle from the DER; bad_certificate (and no handle) when it does not parse. */
static int csr_create(struct ml_call *call, uint32_t handle, const uint8_t *der, size_t len, struct csr_obj **out)
{
    void *p = NULL;
    struct csr_obj *c = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_create(call, handle, ML_HT_X509_CSR, sizeof *c, csr_dtor, &p));
    c = p;
    mbedtls_x509_csr_init(&c->csr);
    if (der != NULL) {
        int ret = mbedtls_x509_csr_parse_der(&c->csr, der, len);
        if (ret != 0) {
            st = ml_x509_fail(call, ret, "x509_csr_parse");
            goto cleanup;
        }
        c->parsed = true;
    }
    *out = c;
cleanup:
    if (st != ML_STATUS_OK && c != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

/* [length, DER or null]: the DER when it fits the answer (else x509_der_read). */
int ml_x509_encode_der(const uint8_t *der, size_t len, CborEncoder *result)
{
    CborEncoder pair;
    CborError err = cbor_encoder_create_array(result, &pair, 2);
    err |= cbor_encode_uint(&pair, (uint64_t)len);
    err |=
        len + ML_X509_ANSWER_SLACK <= ML_CFG_MTU ? cbor_encode_byte_string(&pair, der, len) : cbor_encode_null(&pair);
    err |= cbor_encoder_close_container(result, &pair);
    (void)err; /* the dispatcher checks the encoder (too_large) */
    return ML_STATUS_OK;
}

int ml_op_x509_csr_write(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    static const char *const keys[] = {"san", "ku", "eku", NULL};
    mbedtls_x509write_csr w;
    uint32_t handle = 0;
    mbedtls_pk_context *pk = NULL;
    const mbedtls_md_info_t *info = NULL;
    struct csr_obj *c = NULL;
    char *subject = NULL;
    size_t subject_cap = 0;
    uint64_t alg = 0;
    uint8_t *buf = NULL;
    const uint8_t *der = NULL;
    size_t cap = 0, der_len = 0;
    unsigned named = 0;
    int ret = 0;
    int st = ML_STATUS_OK;
    mbedtls_x509write_csr_init(&w);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_x509_signing_key(call, args, 2, &pk));
    ML_CHK(arg_text_dup(call, args, 3, SUBJECT_MAX, &subject, &subject_cap));
    ML_CHK(ml_arg_uint(call, args, 4, &alg));
    ML_CHK(ml_hash_lookup(call, alg, &info, NULL));
    ML_CHK(ml_x509_ext_check_keys(call, args, 5, keys));
    ML_CHK(ml_x509_ext_apply(call, args, 5, csr_set_ext, &w, &named));
    CborValue after = *args;
    (void)cbor_value_advance(&after);
    size_t ext_size = (size_t)(cbor_value_get_next_byte(&after) - cbor_value_get_next_byte(args));
    ret = mbedtls_x509write_csr_set_subject_name(&w, subject);
    if (ret != 0) {
        call->mbedtls_code = ret;
        ML_FAIL(call, ret == MBEDTLS_ERR_X509_ALLOC_FAILED ? ML_STATUS_OUT_OF_MEMORY : ML_STATUS_BAD_ARGUMENT,
                "arg 3: not a distinguished name Mbed TLS can write");
    }
    mbedtls_x509write_csr_set_key(&w, pk);
    mbedtls_x509write_csr_set_md_alg(&w, mbedtls_md_get_type(info));
    /* The subject, the extensions and the key, with room for a signature. */
    cap = subject_cap + ext_size + 2 * MBEDTLS_PK_SIGNATURE_MAX_SIZE + 256;
    ML_CHK(ml_x509_write_der(call, csr_der, &w, &buf, &cap, &der, &der_len));
    ML_CHK(csr_create(call, handle, der, der_len, &c));
    ML_CHK(ml_x509_encode_der(c->csr.raw.p, c->csr.raw.len, result));
cleanup:
    mbedtls_x509write_csr_free(&w);
    ml_buf_free(buf, cap);
    ml_buf_free(subject, subject_cap);
    return st;
}

int ml_op_x509_csr_parse(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL, *whole = NULL;
    size_t len = 0, whole_len = 0;
    uint64_t total = 0;
    void *p = NULL;
    uint8_t type = ML_HT_NONE;
    struct csr_obj *c = NULL;
    bool created = false;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(ml_arg_uint(call, args, 3, &total));
    if (ml_handle_lookup(call, handle, &type, &p) != ML_STATUS_OK) {
        call->detail[0] = '\0';
        if (total == len) { /* all of it at once: no copy */
            ML_CHK(csr_create(call, handle, data, len, &c));
            ML_CHK(encode_info(call, &c->csr, result));
            goto cleanup;
        }
        ML_CHK(csr_create(call, handle, NULL, 0, &c));
        created = true;
    } else {
        ML_CHK(ml_handle_get(call, handle, ML_HT_X509_CSR, &p)); /* wrong_handle_type */
        c = p;
        if (c->parsed) {
            ML_FAIL(call, ML_STATUS_HANDLE_IN_USE, "CSR handle %lu is parsed already", (unsigned long)handle);
        }
    }
    ML_CHK(ml_x509_input_take(call, &c->in, data, len, total, &whole, &whole_len));
    if (whole == NULL) {
        (void)cbor_encode_null(result); /* more pieces to come */
        goto cleanup;
    }
    int ret = mbedtls_x509_csr_parse_der(&c->csr, whole, whole_len);
    ml_x509_input_drop(&c->in);
    if (ret != 0) {
        st = ml_x509_fail(call, ret, "x509_csr_parse");
        goto cleanup;
    }
    c->parsed = true;
    ML_CHK(encode_info(call, &c->csr, result));
cleanup:
    /* A handle left without a CSR and without pending input is freed again. */
    if (st != ML_STATUS_OK && c != NULL && !c->parsed && (created || c->in.buf == NULL)) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

int ml_op_x509_csr_info(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    mbedtls_x509_csr *csr = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_x509_csr_get(call, handle, &csr));
    ML_CHK(encode_info(call, csr, result));
cleanup:
    return st;
}

int ml_op_x509_csr_verify(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    mbedtls_x509_csr *csr = NULL;
    uint8_t hash[MBEDTLS_MD_MAX_SIZE];
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_x509_csr_get(call, handle, &csr));
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(csr->MBEDTLS_PRIVATE(sig_md));
    bool ok = md != NULL && mbedtls_md(md, csr->cri.p, csr->cri.len, hash) == 0 &&
              mbedtls_pk_verify_ext(csr->MBEDTLS_PRIVATE(sig_pk), csr->MBEDTLS_PRIVATE(sig_opts), &csr->pk,
                                    csr->MBEDTLS_PRIVATE(sig_md), hash, mbedtls_md_get_size(md),
                                    csr->MBEDTLS_PRIVATE(sig).p, csr->MBEDTLS_PRIVATE(sig).len) == 0;
    (void)cbor_encode_boolean(result, ok);
cleanup:
    return st;
}
