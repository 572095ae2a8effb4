/*
 * Shared by the x509 op files: pieces of input, parse failures, encoders
 * (ml_x509_util.h).
 */
#include "ops/ml_x509_util.h"

#include <mbedtls/oid.h>
#include <mbedtls/platform_util.h>
#include <string.h>

int ml_x509_input_take(struct ml_call *call, struct ml_x509_input *in, const uint8_t *data, size_t len, uint64_t total,
                       const uint8_t **whole, size_t *whole_len)
{
    int st = ML_STATUS_OK;
    *whole = NULL;
    if (in->buf == NULL && total == len) {
        *whole = data;
        *whole_len = len;
        goto cleanup;
    }
    if (in->buf == NULL) {
        if (total < len || total > SIZE_MAX) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: total %llu is less than this piece (%lu bytes)",
                    (unsigned long long)total, (unsigned long)len);
        }
        in->buf = ml_buf_alloc((size_t)total);
        if (in->buf == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no room for an input of %llu bytes", (unsigned long long)total);
        }
        in->total = (size_t)total;
        in->len = 0;
    } else if (total != in->total || len > in->total - in->len) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT,
                "arg 3: this piece (%lu bytes, total %llu) does not continue the %lu of %lu bytes pending",
                (unsigned long)len, (unsigned long long)total, (unsigned long)in->len, (unsigned long)in->total);
    }
    if (len > 0) {
        memcpy(in->buf + in->len, data, len);
    }
    in->len += len;
    if (in->len == in->total) {
        *whole = in->buf;
        *whole_len = in->len;
    }
cleanup:
    if (st != ML_STATUS_OK) {
        ml_x509_input_drop(in);
    }
    return st;
}

void ml_x509_input_drop(struct ml_x509_input *in)
{
    ml_buf_free(in->buf, in->total);
    in->buf = NULL;
    in->len = 0;
    in->total = 0;
}

int ml_x509_fail(struct ml_call *call, int code, const char *what)
{
    int st = ml_fail_mbedtls(call, code, what);
    return st == ML_STATUS_OUT_OF_MEMORY ? st : ML_STATUS_BAD_CERTIFICATE;
}

int ml_x509_encode_text(struct ml_call *call, CborEncoder *result, ml_x509_info_fn info, const void *obj)
{
    char *text = ml_buf_alloc(ML_X509_TEXT_MAX);
    int n = 0;
    int st = ML_STATUS_OK;
    if (text == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no room for %u bytes of text", ML_X509_TEXT_MAX);
    }
    n = info(text, ML_X509_TEXT_MAX, obj);
    if (n < 0) {
        ML_CHK(ml_x509_fail(call, n, "x509 info text"));
    }
    (void)cbor_encode_text_string(result, text, (size_t)n);
cleanup:
    ml_buf_free(text, ML_X509_TEXT_MAX);
    return st;
}

CborError ml_x509_encode_name(CborEncoder *enc, const mbedtls_x509_name *name)
{
    CborEncoder arr, attr;
    char oid[64];
    const char *sn = NULL;
    size_t n = 0;
    CborError err = CborNoError;
    for (const mbedtls_x509_name *a = name; a != NULL && a->oid.p != NULL; a = a->next) {
        n++;
    }
    err |= cbor_encoder_create_array(enc, &arr, n);
    for (const mbedtls_x509_name *a = name; a != NULL && a->oid.p != NULL; a = a->next) {
        err |= cbor_encoder_create_array(&arr, &attr, 3);
        if (mbedtls_oid_get_attr_short_name(&a->oid, &sn) == 0) {
            err |= cbor_encode_text_stringz(&attr, sn);
        } else {
            err |= cbor_encode_text_stringz(&attr,
                                            mbedtls_oid_get_numeric_string(oid, sizeof oid, &a->oid) > 0 ? oid : "?");
        }
        err |= cbor_encode_byte_string(&attr, a->val.p, a->val.len);
        err |= cbor_encode_uint(&attr, (uint64_t)a->val.tag);
        err |= cbor_encoder_close_container(&arr, &attr);
    }
    err |= cbor_encoder_close_container(enc, &arr);
    return err;
}

CborError ml_x509_encode_time(CborEncoder *enc, const mbedtls_x509_time *t)
{
    const int f[6] = {t->year, t->mon, t->day, t->hour, t->min, t->sec};
    CborEncoder arr;
    CborError err = cbor_encoder_create_array(enc, &arr, 6);
    for (size_t i = 0; i < 6; i++) {
        err |= cbor_encode_int(&arr, f[i]);
    }
    err |= cbor_encoder_close_container(enc, &arr);
    return err;
}

#define MD_ROW(id, md_type, digest_size, block_size) {(id), (md_type)},
static const struct {
    uint32_t id;
    mbedtls_md_type_t type;
} md_ids[] = {ML_HASH_ALG_TABLE(MD_ROW)};
#undef MD_ROW

CborError ml_x509_encode_md(CborEncoder *enc, mbedtls_md_type_t md)
{
    for (size_t i = 0; i < sizeof md_ids / sizeof md_ids[0]; i++) {
        if (md_ids[i].type == md) {
            return cbor_encode_uint(enc, md_ids[i].id);
        }
    }
    return cbor_encode_null(enc);
}

CborError ml_x509_encode_range(CborEncoder *enc, const mbedtls_x509_buf *whole, const mbedtls_x509_buf *part)
{
    CborEncoder arr;
    CborError err = cbor_encoder_create_array(enc, &arr, 2);
    err |= cbor_encode_uint(&arr, part->p != NULL ? (uint64_t)(part->p - whole->p) : 0);
    err |= cbor_encode_uint(&arr, part->len);
    err |= cbor_encoder_close_container(enc, &arr);
    return err;
}
