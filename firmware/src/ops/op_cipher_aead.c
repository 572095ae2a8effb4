/*
 * cipher module, AEAD in one frame (see ml_cipher.h): cipher_auth_encrypt
 * and cipher_auth_decrypt over GCM, CCM and ChaCha20-Poly1305.
 */
#include <string.h>

#include "ops/ml_cipher.h"
#include "ops/ml_ops.h"

/* [cipher, mode, key, iv, aad, data, tag_len] -> [ciphertext, tag] */
int ml_op_cipher_auth_encrypt(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct ml_cipher c;
    struct ml_cipher_args a;
    struct ml_aead_params p = {0};
    const uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    uint64_t tag_len = 0;
    uint8_t *out = NULL;
    CborEncoder arr;
    int st = ML_STATUS_OK;
    ml_cipher_init(&c);
    ML_CHK(ml_cipher_open(call, args, 1, ML_CIPHER_AEAD, ML_CIPHER_DIR_ENCRYPT, &c, &a));
    ML_CHK(ml_arg_bytes(call, args, 5, &p.ad, &p.ad_len));
    ML_CHK(ml_arg_bytes(call, args, 6, &data, &len));
    ML_CHK(ml_arg_uint(call, args, 7, &tag_len));
    ML_CHK(ml_cipher_check_tag_len(call, &c.ctx, tag_len > 255 ? 255 : (size_t)tag_len));
    p.iv = a.iv;
    p.iv_len = a.iv_len;
    p.tag_len = (size_t)tag_len;
    cap = len + p.tag_len;
    out = ml_buf_alloc(cap);
    if (out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of output", (unsigned)cap);
    }
    ML_CHK(ml_cipher_aead_encrypt(call, &c.ctx, &p, data, len, out));
    (void)cbor_encoder_create_array(result, &arr, 2);
    (void)cbor_encode_byte_string(&arr, out, len);
    (void)cbor_encode_byte_string(&arr, out + len, p.tag_len);
    (void)cbor_encoder_close_container(result, &arr);
cleanup:
    ml_buf_free(out, cap);
    ml_cipher_free(&c);
    return st;
}

/* [cipher, mode, key, iv, aad, data, tag] -> plaintext, or auth_failed and nothing. */
int ml_op_cipher_auth_decrypt(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct ml_cipher c;
    struct ml_cipher_args a;
    struct ml_aead_params p = {0};
    const uint8_t *data = NULL, *tag = NULL;
    size_t len = 0, in_len = 0;
    uint8_t *in = NULL, *out = NULL;
    int st = ML_STATUS_OK;
    ml_cipher_init(&c);
    ML_CHK(ml_cipher_open(call, args, 1, ML_CIPHER_AEAD, ML_CIPHER_DIR_DECRYPT, &c, &a));
    ML_CHK(ml_arg_bytes(call, args, 5, &p.ad, &p.ad_len));
    ML_CHK(ml_arg_bytes(call, args, 6, &data, &len));
    ML_CHK(ml_arg_bytes(call, args, 7, &tag, &p.tag_len));
    ML_CHK(ml_cipher_check_tag_len(call, &c.ctx, p.tag_len));
    p.iv = a.iv;
    p.iv_len = a.iv_len;
    /* Mbed TLS wants ciphertext || tag in one buffer; the output gets the
     * plaintext, released only when the tag verified. */
    in_len = len + p.tag_len;
    in = ml_buf_alloc(in_len);
    out = ml_buf_alloc(len);
    if (in == NULL || out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes", (unsigned)(in_len + len));
    }
    memcpy(in, data, len);
    memcpy(in + len, tag, p.tag_len);
    ML_CHK(ml_cipher_aead_decrypt(call, &c.ctx, &p, in, len, out));
    (void)cbor_encode_byte_string(result, out, len);
cleanup:
    ml_buf_free(in, in_len);
    ml_buf_free(out, len);
    ml_cipher_free(&c);
    return st;
}
