/*
 * x509 module, certificates and CRLs (spec.md 7.x): parsed chains behind
 * ML_HT_X509_CRT handles and CRLs behind ML_HT_X509_CRL handles.
 */
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_x509.h"

struct crt_obj {
    mbedtls_x509_crt chain; /* first: ml_x509_crt_lookup hands out its address */
};

struct crl_obj {
    mbedtls_x509_crl crl;
};

static void crt_dtor(void *obj) { mbedtls_x509_crt_free(&((struct crt_obj *)obj)->chain); }

int ml_x509_crt_lookup(struct ml_call *call, uint32_t handle, mbedtls_x509_crt **chain)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_get(call, handle, ML_HT_X509_CRT, &p));
    *chain = &((struct crt_obj *)p)->chain;
cleanup:
    return st;
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

int ml_x509_crt_add_der(struct ml_call *call, uint32_t handle, const uint8_t *der, size_t len)
{
    void *p = NULL;
    uint8_t type = ML_HT_NONE;
    bool created = false;
    int ret = 0;
    int st = ML_STATUS_OK;
    if (ml_handle_lookup(call, handle, &type, &p) != ML_STATUS_OK) {
        ML_CHK(ml_handle_create(call, handle, ML_HT_X509_CRT, sizeof(struct crt_obj), crt_dtor, &p));
        mbedtls_x509_crt_init(&((struct crt_obj *)p)->chain);
        created = true;
    } else if (type != ML_HT_X509_CRT) {
        ML_CHK(ml_handle_get(call, handle, ML_HT_X509_CRT, &p)); /* wrong_handle_type */
    }
    ret = mbedtls_x509_crt_parse(&((struct crt_obj *)p)->chain, der, len);
    if (ret < 0) {
        st = ml_fail_mbedtls(call, ret, "x509_crt_parse");
        goto cleanup;
    }
cleanup:
    if (st != ML_STATUS_OK && created) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

int ml_x509_crt_encode_info(struct ml_call *call, const mbedtls_x509_crt *crt, CborEncoder *map_parent)
{
    (void)call;
    CborEncoder map;
    CborError err = cbor_encoder_create_map(map_parent, &map, 1);
    err |= cbor_encode_text_stringz(&map, "version");
    err |= cbor_encode_int(&map, crt->version);
    err |= cbor_encoder_close_container(map_parent, &map);
    (void)err; /* the dispatcher checks the encoder (too_large) */
    return ML_STATUS_OK;
}
