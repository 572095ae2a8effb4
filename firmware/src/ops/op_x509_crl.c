/*
 * x509 module, certificate revocation lists (spec.md 7.10): CRLs behind
 * ML_HT_X509_CRL handles (one or more, chained), their accessors, and the
 * revocation check of one certificate. Input arrives in pieces as
 * certificates do (op_x509_crt.c).
 */
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_x509.h"
#include "ops/ml_x509_util.h"

struct crl_obj {
    mbedtls_x509_crl crl; /* first: ml_x509_crl_lookup hands out its address */
    struct ml_x509_input in;
};

static void crl_dtor(void *obj)
{
    struct crl_obj *c = obj;
    mbedtls_x509_crl_free(&c->crl);
    ml_x509_input_drop(&c->in);
}

int ml_x509_crl_lookup(struct ml_call *call, uint32_t handle, mbedtls_x509_crl **crl)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_get(call, handle, ML_HT_X509_CRL, &p));
    *crl = &((struct crl_obj *)p)->crl;
cleanup:
    return st;
}

/* CRLs parsed so far (a failed parse may leave an empty entry at the end). */
static size_t crl_count(const mbedtls_x509_crl *c)
{
    size_t n = 0;
    for (; c != NULL && c->version != 0; c = c->next) {
        n++;
    }
    return n;
}

int ml_op_x509_crl_parse(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    static const uint8_t empty = 0;
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    uint64_t total = 0;
    void *p = NULL;
    uint8_t type = ML_HT_NONE;
    struct crl_obj *c = NULL;
    const uint8_t *whole = NULL;
    size_t whole_len = 0;
    int ret = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(ml_arg_uint(call, args, 3, &total));
    if (ml_handle_lookup(call, handle, &type, &p) != ML_STATUS_OK) {
        ML_CHK(ml_handle_create(call, handle, ML_HT_X509_CRL, sizeof(struct crl_obj), crl_dtor, &p));
        mbedtls_x509_crl_init(&((struct crl_obj *)p)->crl);
    } else {
        ML_CHK(ml_handle_get(call, handle, ML_HT_X509_CRL, &p)); /* wrong_handle_type */
    }
    c = p;
    ML_CHK(ml_x509_input_take(call, &c->in, data, len, total, &whole, &whole_len));
    if (whole == NULL) {
        (void)cbor_encode_null(result); /* more pieces to come */
        goto cleanup;
    }
    ret = mbedtls_x509_crl_parse(&c->crl, whole_len > 0 ? whole : &empty, whole_len);
    ml_x509_input_drop(&c->in);
    if (ret != 0) {
        ML_CHK(ml_x509_fail(call, ret, "x509_crl_parse"));
    }
    (void)cbor_encode_uint(result, crl_count(&c->crl));
cleanup:
    /* A handle left without a CRL and without pending input is freed again. */
    if (st != ML_STATUS_OK && c != NULL && crl_count(&c->crl) == 0 && c->in.buf == NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

/* The index-th CRL under the handle at args position pos (handle) and pos+1 (index). */
static int args_crl_at(struct ml_call *call, CborValue *args, unsigned pos, const mbedtls_x509_crl **out)
{
    uint32_t handle = 0;
    uint64_t index = 0;
    mbedtls_x509_crl *c = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, pos, &handle));
    ML_CHK(ml_arg_uint(call, args, pos + 1, &index));
    ML_CHK(ml_x509_crl_lookup(call, handle, &c));
    for (uint64_t i = 0; i < index && c != NULL; i++) {
        c = c->next;
    }
    if (c == NULL || c->version == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: no CRL at index %llu", pos + 1, (unsigned long long)index);
    }
    *out = c;
cleanup:
    return st;
}

static CborError encode_revoked(CborEncoder *map, const mbedtls_x509_crl *crl)
{
    CborEncoder arr, pair;
    size_t n = 0;
    CborError err = CborNoError;
    for (const mbedtls_x509_crl_entry *e = &crl->entry; e != NULL && e->serial.len != 0; e = e->next) {
        n++;
    }
    err |= cbor_encoder_create_array(map, &arr, n);
    for (const mbedtls_x509_crl_entry *e = &crl->entry; e != NULL && e->serial.len != 0; e = e->next) {
        err |= cbor_encoder_create_array(&arr, &pair, 2);
        err |= cbor_encode_byte_string(&pair, e->serial.p, e->serial.len);
        err |= ml_x509_encode_time(&pair, &e->revocation_date);
        err |= cbor_encoder_close_container(&arr, &pair);
    }
    err |= cbor_encoder_close_container(map, &arr);
    return err;
}

int ml_op_x509_crl_info(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const mbedtls_x509_crl *crl = NULL;
    char dn[MBEDTLS_X509_MAX_DN_NAME_SIZE * 2];
    CborEncoder map;
    CborError err = CborNoError;
    int st = ML_STATUS_OK;
    ML_CHK(args_crl_at(call, args, 1, &crl));
    err |= cbor_encoder_create_map(result, &map, 10);
    err |= cbor_encode_text_stringz(&map, "version");
    err |= cbor_encode_uint(&map, (uint64_t)crl->version);
    err |= cbor_encode_text_stringz(&map, "issuer");
    err |= cbor_encode_text_stringz(&map, mbedtls_x509_dn_gets(dn, sizeof dn, &crl->issuer) >= 0 ? dn : "");
    err |= cbor_encode_text_stringz(&map, "issuer_attrs");
    err |= ml_x509_encode_name(&map, &crl->issuer);
    err |= cbor_encode_text_stringz(&map, "this_update");
    err |= ml_x509_encode_time(&map, &crl->this_update);
    /* nextUpdate is optional: Mbed TLS leaves it all zero when absent. */
    err |= cbor_encode_text_stringz(&map, "next_update");
    err |= crl->next_update.year != 0 ? ml_x509_encode_time(&map, &crl->next_update) : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "sig_md");
    err |= ml_x509_encode_md(&map, crl->MBEDTLS_PRIVATE(sig_md));
    err |= cbor_encode_text_stringz(&map, "revoked");
    err |= encode_revoked(&map, crl);
    err |= cbor_encode_text_stringz(&map, "tbs");
    err |= ml_x509_encode_range(&map, &crl->raw, &crl->tbs);
    err |= cbor_encode_text_stringz(&map, "sig");
    err |= ml_x509_encode_range(&map, &crl->raw, &crl->MBEDTLS_PRIVATE(sig));
    err |= cbor_encode_text_stringz(&map, "der_len");
    err |= cbor_encode_uint(&map, crl->raw.len);
    err |= cbor_encoder_close_container(result, &map);
    (void)err; /* the dispatcher checks the encoder (too_large) */
cleanup:
    return st;
}

static int crl_info_text(char *buf, size_t size, const void *obj) { return mbedtls_x509_crl_info(buf, size, "", obj); }

int ml_op_x509_crl_text(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const mbedtls_x509_crl *obj = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(args_crl_at(call, args, 1, &obj));
    ML_CHK(ml_x509_encode_text(call, result, crl_info_text, obj));
cleanup:
    return st;
}

int ml_op_x509_crt_is_revoked(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const mbedtls_x509_crt *crt = NULL;
    const mbedtls_x509_crl *crl = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_x509_crt_args(call, args, 1, &crt));
    ML_CHK(args_crl_at(call, args, 3, &crl));
    (void)cbor_encode_boolean(result, mbedtls_x509_crt_is_revoked(crt, crl) == 1);
cleanup:
    return st;
}
