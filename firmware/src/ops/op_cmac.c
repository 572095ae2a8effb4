/*
 * cmac module: CMAC (NIST SP 800-38B, RFC 4493 for AES) contexts and
 * one-shot MACs over Mbed TLS's mbedtls_cipher_cmac_*.
 *
 * Mbed TLS 3.6's cmac.c accepts AES-128/192/256 and three-key DES-EDE3 only
 * (mbedtls_cipher_cmac_starts refuses every other cipher, Camellia and ARIA
 * included, although both are compiled in): the family names "AES" and
 * "DES3" of the cipher module, the key length picking the cipher.
 *
 * mbedtls_cipher_cmac_finish clears the running state, so a digest works on
 * a copy of it: the state is put back afterwards and digest() is
 * non-destructive, as hmac_digest. The object keeps the key (at most 32
 * bytes; the key schedule it feeds holds as much) so that cmac_copy and
 * obj_unwrap can key a new cipher context; it is zeroised with the object.
 */
#include <mbedtls/cipher.h>
#include <mbedtls/cmac.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_cmac.h"
#include "ops/ml_ops.h"
#include "ops/ml_symkey.h"

enum { FAM_AES = 1, FAM_DES3 = 2 };

#define CMAC_KEY_MAX 32u

struct cmac_obj {
    mbedtls_cipher_context_t ctx; /* keyed, CMAC started */
    uint8_t family;
    uint8_t key_len;
    uint8_t key[CMAC_KEY_MAX];
};

_Static_assert(MBEDTLS_CMAC_MAX_BLOCK_SIZE == 16, "ML_CMAC_STATE_MAX counts 16-byte CMAC blocks");
_Static_assert(ML_CMAC_STATE_MAX == 2 + CMAC_KEY_MAX + 2 * MBEDTLS_CMAC_MAX_BLOCK_SIZE + 1, "state layout");

static void cmac_dtor(void *obj)
{
    struct cmac_obj *c = obj;
    mbedtls_cipher_free(&c->ctx); /* frees (and zeroises) the CMAC state too */
    mbedtls_platform_zeroize(c->key, sizeof c->key);
}

/* The Mbed TLS cipher of a family and key length, NULL when there is none. */
static const mbedtls_cipher_info_t *cipher_of(uint8_t family, size_t key_len)
{
    mbedtls_cipher_type_t t = MBEDTLS_CIPHER_NONE;
    if (family == FAM_AES) {
        t = key_len == 16   ? MBEDTLS_CIPHER_AES_128_ECB
            : key_len == 24 ? MBEDTLS_CIPHER_AES_192_ECB
            : key_len == 32 ? MBEDTLS_CIPHER_AES_256_ECB
                            : MBEDTLS_CIPHER_NONE;
    } else if (family == FAM_DES3 && key_len == 24) {
        t = MBEDTLS_CIPHER_DES_EDE3_ECB;
    }
    return t == MBEDTLS_CIPHER_NONE ? NULL : mbedtls_cipher_info_from_type(t);
}

/* Reads the family name at `pos` ("AES" or "DES3"). */
static int arg_family(struct ml_call *call, CborValue *args, unsigned pos, uint8_t *family)
{
    static const char *const others[] = {"ARIA", "CAMELLIA", "DES", "DES3DBL", "CHACHA20"};
    char name[12] = {0};
    size_t n = 0;
    int st = ML_STATUS_OK;
    if (!cbor_value_is_text_string(args) || !cbor_value_is_length_known(args)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a cipher name", pos);
    }
    (void)cbor_value_get_string_length(args, &n);
    if (n >= sizeof name) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "arg %u: unknown cipher", pos);
    }
    n = sizeof name;
    if (cbor_value_copy_text_string(args, name, &n, args) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: bad text string", pos);
    }
    if (strcmp(name, "AES") == 0) {
        *family = FAM_AES;
    } else if (strcmp(name, "DES3") == 0) {
        *family = FAM_DES3;
    } else {
        for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
            if (strcmp(name, others[i]) == 0) {
                ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "Mbed TLS's CMAC takes AES and DES3 only, not %s", name);
            }
        }
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "unknown cipher \"%s\"", name);
    }
cleanup:
    return st;
}

/* Reads [cipher, key] from `pos` on and finds the Mbed TLS cipher. */
static int read_cipher_key(struct ml_call *call, CborValue *args, unsigned pos, uint8_t *family,
                           const mbedtls_cipher_info_t **info, const uint8_t **key, size_t *key_len)
{
    int st = ML_STATUS_OK;
    ML_CHK(arg_family(call, args, pos, family));
    ML_CHK(ml_arg_key(call, args, pos + 1, key, key_len));
    *info = cipher_of(*family, *key_len);
    if (*info == NULL) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: %s-CMAC key must be %s bytes, got %lu", pos + 1,
                *family == FAM_AES ? "AES" : "DES3", *family == FAM_AES ? "16, 24 or 32" : "24",
                (unsigned long)*key_len);
    }
cleanup:
    return st;
}

/* A CMAC object under `handle`, keyed and started; on failure the handle is free. */
static int create(struct ml_call *call, uint32_t handle, uint8_t family, const mbedtls_cipher_info_t *info,
                  const uint8_t *key, size_t key_len, struct cmac_obj **out)
{
    void *p = NULL;
    struct cmac_obj *c = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_create(call, handle, ML_HT_CMAC, sizeof(struct cmac_obj), cmac_dtor, &p));
    c = p;
    mbedtls_cipher_init(&c->ctx);
    c->family = family;
    c->key_len = (uint8_t)key_len;
    memcpy(c->key, key, key_len);
    ML_CHK_TLS(call, mbedtls_cipher_setup(&c->ctx, info), "cipher_setup");
    ML_CHK_TLS(call, mbedtls_cipher_cmac_starts(&c->ctx, key, key_len * 8), "cipher_cmac_starts");
    *out = c;
cleanup:
    if (st != ML_STATUS_OK && c != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

static mbedtls_cmac_context_t *state_of(const struct cmac_obj *c) { return c->ctx.MBEDTLS_PRIVATE(cmac_ctx); }

/* The live CMAC context whose handle is argument `pos`. */
static int arg_cmac(struct ml_call *call, CborValue *args, unsigned pos, struct cmac_obj **out)
{
    uint32_t handle = 0;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, pos, &handle));
    ML_CHK(ml_handle_get(call, handle, ML_HT_CMAC, &p));
    *out = p;
cleanup:
    return st;
}

/* [handle, cipher, key] */
int ml_op_cmac_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    uint8_t family = 0;
    const mbedtls_cipher_info_t *info = NULL;
    const uint8_t *key = NULL;
    size_t key_len = 0;
    struct cmac_obj *c = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(read_cipher_key(call, args, 2, &family, &info, &key, &key_len));
    ML_CHK(create(call, handle, family, info, key, key_len, &c));
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

/* [handle, data] */
int ml_op_cmac_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct cmac_obj *c = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(arg_cmac(call, args, 1, &c));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    if (len > 0) { /* Mbed TLS refuses a NULL input even when empty */
        ML_CHK_TLS(call, mbedtls_cipher_cmac_update(&c->ctx, data, len), "cipher_cmac_update");
    }
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

/* [handle] -> the MAC of everything fed so far; the context goes on. */
int ml_op_cmac_digest(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct cmac_obj *c = NULL;
    mbedtls_cmac_context_t saved;
    uint8_t mac[MBEDTLS_CMAC_MAX_BLOCK_SIZE];
    int ret = 0;
    int st = ML_STATUS_OK;
    memset(&saved, 0, sizeof saved);
    ML_CHK(arg_cmac(call, args, 1, &c));
    saved = *state_of(c);
    ret = mbedtls_cipher_cmac_finish(&c->ctx, mac);
    *state_of(c) = saved; /* finish cleared it */
    ML_CHK_TLS(call, ret, "cipher_cmac_finish");
    (void)cbor_encode_byte_string(result, mac, mbedtls_cipher_get_block_size(&c->ctx));
cleanup:
    mbedtls_platform_zeroize(&saved, sizeof saved);
    mbedtls_platform_zeroize(mac, sizeof mac);
    return st;
}

/* [source handle, new handle]: the same key and state under a new handle. */
int ml_op_cmac_copy(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct cmac_obj *src = NULL;
    struct cmac_obj *dst = NULL;
    uint32_t dst_handle = 0;
    int st = ML_STATUS_OK;
    ML_CHK(arg_cmac(call, args, 1, &src));
    ML_CHK(ml_arg_handle(call, args, 2, &dst_handle));
    ML_CHK(create(call, dst_handle, src->family, cipher_of(src->family, src->key_len), src->key, src->key_len, &dst));
    *state_of(dst) = *state_of(src);
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

/* [cipher, key, data] -> MAC, without a context */
int ml_op_cmac_oneshot(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    static const uint8_t empty[1] = {0};
    uint8_t family = 0;
    const mbedtls_cipher_info_t *info = NULL;
    const uint8_t *key = NULL;
    const uint8_t *data = NULL;
    size_t key_len = 0;
    size_t len = 0;
    uint8_t mac[MBEDTLS_CMAC_MAX_BLOCK_SIZE];
    int st = ML_STATUS_OK;
    ML_CHK(read_cipher_key(call, args, 1, &family, &info, &key, &key_len));
    ML_CHK(ml_arg_bytes(call, args, 3, &data, &len));
    ML_CHK_TLS(call, mbedtls_cipher_cmac(info, key, key_len * 8, len > 0 ? data : empty, len, mac), "cipher_cmac");
    (void)cbor_encode_byte_string(result, mac, mbedtls_cipher_info_get_block_size(info));
cleanup:
    mbedtls_platform_zeroize(mac, sizeof mac);
    return st;
}

/* ------------------------------------------------------------ swapping */

int ml_cmac_state_save(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len)
{
    const struct cmac_obj *c = obj;
    const mbedtls_cmac_context_t *s = state_of(c);
    size_t n = 2u + c->key_len;
    int st = ML_STATUS_OK;
    if (cap < n + sizeof s->MBEDTLS_PRIVATE(state) + sizeof s->MBEDTLS_PRIVATE(unprocessed_block) + 1) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "CMAC state does not fit %lu bytes", (unsigned long)cap);
    }
    buf[0] = c->family;
    buf[1] = c->key_len;
    memcpy(buf + 2, c->key, c->key_len);
    memcpy(buf + n, s->MBEDTLS_PRIVATE(state), sizeof s->MBEDTLS_PRIVATE(state));
    n += sizeof s->MBEDTLS_PRIVATE(state);
    memcpy(buf + n, s->MBEDTLS_PRIVATE(unprocessed_block), sizeof s->MBEDTLS_PRIVATE(unprocessed_block));
    n += sizeof s->MBEDTLS_PRIVATE(unprocessed_block);
    buf[n++] = (uint8_t)s->MBEDTLS_PRIVATE(unprocessed_len);
    *len = n;
cleanup:
    return st;
}

int ml_cmac_state_restore(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len)
{
    const size_t blocks = 2u * MBEDTLS_CMAC_MAX_BLOCK_SIZE;
    size_t key_len = len >= 2 ? state[1] : 0;
    const mbedtls_cipher_info_t *info = len >= 2 ? cipher_of(state[0], key_len) : NULL;
    const uint8_t *s = state + 2 + key_len;
    struct cmac_obj *c = NULL;
    mbedtls_cmac_context_t *cm = NULL;
    int st = ML_STATUS_OK;
    if (info == NULL || len != 2 + key_len + blocks + 1 || s[blocks] > mbedtls_cipher_info_get_block_size(info)) {
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "wrapped CMAC state does not parse");
    }
    ML_CHK(create(call, handle, state[0], info, state + 2, key_len, &c));
    cm = state_of(c);
    memcpy(cm->MBEDTLS_PRIVATE(state), s, MBEDTLS_CMAC_MAX_BLOCK_SIZE);
    memcpy(cm->MBEDTLS_PRIVATE(unprocessed_block), s + MBEDTLS_CMAC_MAX_BLOCK_SIZE, MBEDTLS_CMAC_MAX_BLOCK_SIZE);
    cm->MBEDTLS_PRIVATE(unprocessed_len) = s[blocks];
cleanup:
    return st;
}
