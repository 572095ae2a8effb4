/*
 * cipher module: symmetric ciphers over mbedtls_cipher.
 *
 * A cipher is named on the wire by a family ("AES", "ARIA", "CAMELLIA",
 * "DES", "DES3", "DES3DBL", "CHACHA20") and a mode ("ECB", "CBC", "CFB",
 * "OFB", "CTR", "GCM", "CCM", "XTS", "STREAM", "CHACHAPOLY"); the key
 * length picks the Mbed TLS cipher. Streaming contexts (cipher_new /
 * cipher_update / cipher_finish) serve the unauthenticated modes that can be
 * split; XTS (one data unit) and the AEAD modes are one-shot: one frame
 * (cipher_crypt, cipher_auth_*), or any size through a buffered context
 * (cipher_buf_*) that collects the whole message on the device, runs the
 * same one-shot call over it and only then lets the host read the output,
 * so no unauthenticated plaintext ever leaves the device.
 */
#include <mbedtls/cipher.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/ml_config.h"
#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_symkey.h"

struct cipher_obj {
    mbedtls_cipher_context_t ctx;
    bool ecb;        /* ECB: the op buffers partial blocks itself */
    bool finished;   /* cipher_finish ran: no more updates */
    uint8_t pending; /* ECB: bytes in `block` */
    uint8_t block[MBEDTLS_MAX_BLOCK_LENGTH];
};

struct cipher_alg {
    const char *family;
    const char *mode;
    uint8_t key_len; /* bytes */
    mbedtls_cipher_type_t type;
};

#define KEYS3(fam, mode, t128, t192, t256) \
    {fam, mode, 16, t128}, {fam, mode, 24, t192}, { fam, mode, 32, t256 }

static const struct cipher_alg algs[] = {
    KEYS3("AES", "ECB", MBEDTLS_CIPHER_AES_128_ECB, MBEDTLS_CIPHER_AES_192_ECB, MBEDTLS_CIPHER_AES_256_ECB),
    KEYS3("AES", "CBC", MBEDTLS_CIPHER_AES_128_CBC, MBEDTLS_CIPHER_AES_192_CBC, MBEDTLS_CIPHER_AES_256_CBC),
    KEYS3("AES", "CFB", MBEDTLS_CIPHER_AES_128_CFB128, MBEDTLS_CIPHER_AES_192_CFB128, MBEDTLS_CIPHER_AES_256_CFB128),
    KEYS3("AES", "OFB", MBEDTLS_CIPHER_AES_128_OFB, MBEDTLS_CIPHER_AES_192_OFB, MBEDTLS_CIPHER_AES_256_OFB),
    KEYS3("AES", "CTR", MBEDTLS_CIPHER_AES_128_CTR, MBEDTLS_CIPHER_AES_192_CTR, MBEDTLS_CIPHER_AES_256_CTR),
    KEYS3("AES", "GCM", MBEDTLS_CIPHER_AES_128_GCM, MBEDTLS_CIPHER_AES_192_GCM, MBEDTLS_CIPHER_AES_256_GCM),
    KEYS3("AES", "CCM", MBEDTLS_CIPHER_AES_128_CCM, MBEDTLS_CIPHER_AES_192_CCM, MBEDTLS_CIPHER_AES_256_CCM),
    {"AES", "XTS", 32, MBEDTLS_CIPHER_AES_128_XTS},
    {"AES", "XTS", 64, MBEDTLS_CIPHER_AES_256_XTS},
    KEYS3("ARIA", "ECB", MBEDTLS_CIPHER_ARIA_128_ECB, MBEDTLS_CIPHER_ARIA_192_ECB, MBEDTLS_CIPHER_ARIA_256_ECB),
    KEYS3("ARIA", "CBC", MBEDTLS_CIPHER_ARIA_128_CBC, MBEDTLS_CIPHER_ARIA_192_CBC, MBEDTLS_CIPHER_ARIA_256_CBC),
    KEYS3("ARIA", "CFB", MBEDTLS_CIPHER_ARIA_128_CFB128, MBEDTLS_CIPHER_ARIA_192_CFB128,
          MBEDTLS_CIPHER_ARIA_256_CFB128),
    KEYS3("ARIA", "CTR", MBEDTLS_CIPHER_ARIA_128_CTR, MBEDTLS_CIPHER_ARIA_192_CTR, MBEDTLS_CIPHER_ARIA_256_CTR),
    KEYS3("ARIA", "GCM", MBEDTLS_CIPHER_ARIA_128_GCM, MBEDTLS_CIPHER_ARIA_192_GCM, MBEDTLS_CIPHER_ARIA_256_GCM),
    KEYS3("ARIA", "CCM", MBEDTLS_CIPHER_ARIA_128_CCM, MBEDTLS_CIPHER_ARIA_192_CCM, MBEDTLS_CIPHER_ARIA_256_CCM),
    KEYS3("CAMELLIA", "ECB", MBEDTLS_CIPHER_CAMELLIA_128_ECB, MBEDTLS_CIPHER_CAMELLIA_192_ECB,
          MBEDTLS_CIPHER_CAMELLIA_256_ECB),
    KEYS3("CAMELLIA", "CBC", MBEDTLS_CIPHER_CAMELLIA_128_CBC, MBEDTLS_CIPHER_CAMELLIA_192_CBC,
          MBEDTLS_CIPHER_CAMELLIA_256_CBC),
    KEYS3("CAMELLIA", "CFB", MBEDTLS_CIPHER_CAMELLIA_128_CFB128, MBEDTLS_CIPHER_CAMELLIA_192_CFB128,
          MBEDTLS_CIPHER_CAMELLIA_256_CFB128),
    KEYS3("CAMELLIA", "CTR", MBEDTLS_CIPHER_CAMELLIA_128_CTR, MBEDTLS_CIPHER_CAMELLIA_192_CTR,
          MBEDTLS_CIPHER_CAMELLIA_256_CTR),
    KEYS3("CAMELLIA", "GCM", MBEDTLS_CIPHER_CAMELLIA_128_GCM, MBEDTLS_CIPHER_CAMELLIA_192_GCM,
          MBEDTLS_CIPHER_CAMELLIA_256_GCM),
    KEYS3("CAMELLIA", "CCM", MBEDTLS_CIPHER_CAMELLIA_128_CCM, MBEDTLS_CIPHER_CAMELLIA_192_CCM,
          MBEDTLS_CIPHER_CAMELLIA_256_CCM),
    {"DES", "ECB", 8, MBEDTLS_CIPHER_DES_ECB},
    {"DES", "CBC", 8, MBEDTLS_CIPHER_DES_CBC},
    {"DES3DBL", "ECB", 16, MBEDTLS_CIPHER_DES_EDE_ECB},
    {"DES3DBL", "CBC", 16, MBEDTLS_CIPHER_DES_EDE_CBC},
    {"DES3", "ECB", 24, MBEDTLS_CIPHER_DES_EDE3_ECB},
    {"DES3", "CBC", 24, MBEDTLS_CIPHER_DES_EDE3_CBC},
    {"CHACHA20", "STREAM", 32, MBEDTLS_CIPHER_CHACHA20},
    {"CHACHA20", "CHACHAPOLY", 32, MBEDTLS_CIPHER_CHACHA20_POLY1305},
};

/* Families python-mbedtls 2.x offered that Mbed TLS 3 removed. */
static const char *const removed[] = {"ARC4", "BLOWFISH"};

static bool text_is(const char *s, size_t n, const char *lit) { return strlen(lit) == n && memcmp(s, lit, n) == 0; }

static int arg_text(struct ml_call *call, CborValue *args, unsigned pos, char *buf, size_t cap, size_t *len)
{
    if (!cbor_value_is_text_string(args) || !cbor_value_is_length_known(args)) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a text string", pos);
    }
    size_t n = 0;
    (void)cbor_value_get_string_length(args, &n);
    if (n >= cap) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg %u: name longer than %u bytes", pos, (unsigned)(cap - 1));
    }
    size_t got = cap;
    CborError err = cbor_value_copy_text_string(args, buf, &got, args);
    if (err != CborNoError) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: bad text string (%s)", pos, cbor_error_string(err));
    }
    *len = got;
    return ML_STATUS_OK;
}

/* Reads the family and mode names (two args from `pos`) and picks the cipher
 * for a key of key_len bytes. */
static int lookup(struct ml_call *call, CborValue *args, unsigned pos, size_t key_len,
                  const mbedtls_cipher_info_t **info, const char **mode_out)
{
    char fam[24], mode[16];
    size_t fam_len = 0, mode_len = 0;
    int st = arg_text(call, args, pos, fam, sizeof fam, &fam_len);
    if (st == ML_STATUS_OK) {
        st = arg_text(call, args, pos + 1, mode, sizeof mode, &mode_len);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        if (text_is(fam, fam_len, removed[i])) {
            return ml_fail(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "%s was removed from Mbed TLS 3", removed[i]);
        }
    }
    bool fam_known = false, mode_known = false;
    unsigned lens[4];
    size_t nlens = 0;
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        const struct cipher_alg *a = &algs[i];
        if (!text_is(fam, fam_len, a->family)) {
            continue;
        }
        fam_known = true;
        if (!text_is(mode, mode_len, a->mode)) {
            continue;
        }
        mode_known = true;
        *mode_out = a->mode;
        if (a->key_len == key_len) {
            *info = mbedtls_cipher_info_from_type(a->type);
            if (*info == NULL) {
                return ml_fail(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "%s-%s is not compiled into this firmware",
                               a->family, a->mode);
            }
            return ML_STATUS_OK;
        }
        if (nlens < sizeof lens / sizeof lens[0]) {
            lens[nlens++] = a->key_len;
        }
    }
    if (!fam_known) {
        return ml_fail(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "unknown cipher \"%s\"", fam);
    }
    if (!mode_known) {
        return ml_fail(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "%s has no %s mode", fam, mode);
    }
    /* "16", "32 or 64", "16, 24 or 32" */
    char sizes[32] = "";
    size_t used = 0;
    for (size_t i = 0; i < nlens && used < sizeof sizes; i++) {
        const char *sep = i == 0 ? "" : i + 1 == nlens ? " or " : ", ";
        int n = snprintf(sizes + used, sizeof sizes - used, "%s%u", sep, lens[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s-%s key must be %s bytes, got %u", fam, mode, sizes,
                   (unsigned)key_len);
}

static bool is_aead(mbedtls_cipher_mode_t m)
{
    return m == MBEDTLS_MODE_GCM || m == MBEDTLS_MODE_CCM || m == MBEDTLS_MODE_CHACHAPOLY;
}

static int check_iv(struct ml_call *call, const mbedtls_cipher_info_t *info, size_t iv_len)
{
    mbedtls_cipher_mode_t m = mbedtls_cipher_info_get_mode(info);
    size_t want = mbedtls_cipher_info_get_iv_size(info);
    const char *name = mbedtls_cipher_info_get_name(info);
    if (m == MBEDTLS_MODE_GCM) {
        if (iv_len < 1 || iv_len > 128) {
            return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s IV must be 1 to 128 bytes (12 recommended), got %u", name,
                           (unsigned)iv_len);
        }
        return ML_STATUS_OK;
    }
    if (m == MBEDTLS_MODE_CCM) {
        if (iv_len < 7 || iv_len > 13) {
            return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s nonce must be 7 to 13 bytes, got %u", name,
                           (unsigned)iv_len);
        }
        return ML_STATUS_OK;
    }
    if (iv_len != want) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s IV must be %u bytes, got %u", name, (unsigned)want,
                       (unsigned)iv_len);
    }
    return ML_STATUS_OK;
}

/* Sets up ctx for info/key/iv/direction (the key bytes end up only inside
 * ctx, which mbedtls_cipher_free zeroises). */
static int setup(struct ml_call *call, mbedtls_cipher_context_t *ctx, const mbedtls_cipher_info_t *info,
                 const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len, bool encrypt)
{
    int ret = mbedtls_cipher_setup(ctx, info);
    if (ret != 0) {
        return ml_fail_mbedtls(call, ret, "cipher_setup");
    }
    ret = mbedtls_cipher_setkey(ctx, key, (int)(key_len * 8), encrypt ? MBEDTLS_ENCRYPT : MBEDTLS_DECRYPT);
    if (ret != 0) {
        return ml_fail_mbedtls(call, ret, "cipher_setkey");
    }
    mbedtls_cipher_mode_t m = mbedtls_cipher_info_get_mode(info);
    if (m == MBEDTLS_MODE_CBC) {
        ret = mbedtls_cipher_set_padding_mode(ctx, MBEDTLS_PADDING_PKCS7);
        if (ret != 0) {
            return ml_fail_mbedtls(call, ret, "cipher_set_padding_mode");
        }
    }
    if (iv_len > 0 && !is_aead(m)) {
        ret = mbedtls_cipher_set_iv(ctx, iv, iv_len);
        if (ret != 0) {
            return ml_fail_mbedtls(call, ret, "cipher_set_iv");
        }
    }
    if (!is_aead(m)) {
        ret = mbedtls_cipher_reset(ctx);
        if (ret != 0) {
            return ml_fail_mbedtls(call, ret, "cipher_reset");
        }
    }
    return ML_STATUS_OK;
}

static void cipher_dtor(void *obj) { mbedtls_cipher_free(&((struct cipher_obj *)obj)->ctx); }

static void *alloc_out(size_t n) { return mbedtls_calloc(1, n == 0 ? 1 : n); }

static void free_out(void *p, size_t n)
{
    mbedtls_platform_zeroize(p, n == 0 ? 1 : n);
    mbedtls_free(p);
}

/* Feeds data through o; writes at most len + block size bytes to out. */
static int update(struct ml_call *call, struct cipher_obj *o, const uint8_t *data, size_t len, uint8_t *out,
                  size_t *olen)
{
    *olen = 0;
    if (!o->ecb) {
        int ret = mbedtls_cipher_update(&o->ctx, data, len, out, olen);
        return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "cipher_update");
    }
    /* ECB: mbedtls_cipher_update takes exactly one block per call. */
    size_t bs = mbedtls_cipher_get_block_size(&o->ctx);
    while (len > 0) {
        size_t take = bs - o->pending < len ? bs - o->pending : len;
        memcpy(o->block + o->pending, data, take);
        o->pending = (uint8_t)(o->pending + take);
        data += take;
        len -= take;
        if (o->pending == bs) {
            size_t n = 0;
            int ret = mbedtls_cipher_update(&o->ctx, o->block, bs, out + *olen, &n);
            if (ret != 0) {
                return ml_fail_mbedtls(call, ret, "cipher_update");
            }
            *olen += n;
            o->pending = 0;
        }
    }
    return ML_STATUS_OK;
}

static int finish(struct ml_call *call, struct cipher_obj *o, uint8_t *out, size_t *olen)
{
    *olen = 0;
    o->finished = true;
    if (o->ecb) {
        if (o->pending != 0) {
            return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "ECB data must be a multiple of %u bytes",
                           mbedtls_cipher_get_block_size(&o->ctx));
        }
        return ML_STATUS_OK;
    }
    int ret = mbedtls_cipher_finish(&o->ctx, out, olen);
    if (ret == MBEDTLS_ERR_CIPHER_FULL_BLOCK_EXPECTED) {
        call->mbedtls_code = ret;
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "CBC ciphertext must be a multiple of %u bytes",
                       mbedtls_cipher_get_block_size(&o->ctx));
    }
    if (ret == MBEDTLS_ERR_CIPHER_INVALID_PADDING) {
        call->mbedtls_code = ret;
        return ml_fail(call, ML_STATUS_CRYPTO_ERROR, "bad padding (wrong key, IV or data)");
    }
    return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "cipher_finish");
}

/* Reads [cipher, mode, key, iv] from `pos` and sets up a context. */
struct iv_arg {
    const uint8_t *iv;
    size_t len;
};

/* Which modes an op serves. */
enum op_kind {
    KIND_PLAIN,   /* cipher_new, cipher_crypt: the non-AEAD modes */
    KIND_AEAD,    /* cipher_auth_encrypt/decrypt */
    KIND_BUFFERED /* cipher_buf_*: the AEAD modes and XTS */
};

static int read_and_setup(struct ml_call *call, CborValue *args, unsigned pos, struct cipher_obj *o, bool encrypt_known,
                          bool *encrypt, enum op_kind kind, struct iv_arg *iv_out)
{
    /* The key decides the cipher, so read it before the names are checked. */
    CborValue names = *args;
    (void)cbor_value_advance(args);
    (void)cbor_value_advance(args);
    const uint8_t *key = NULL, *iv = NULL;
    size_t key_len = 0, iv_len = 0;
    int st = ML_STATUS_OK;
    /* Argument types first, in order. */
    if (!cbor_value_is_text_string(&names)) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a text string", pos);
    }
    st = ml_arg_key(call, args, pos + 2, &key, &key_len);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, pos + 3, &iv, &iv_len);
    }
    if (st == ML_STATUS_OK && encrypt_known == false) {
        st = ml_arg_bool(call, args, pos + 4, encrypt);
    }
    const mbedtls_cipher_info_t *info = NULL;
    const char *mode = NULL;
    if (st == ML_STATUS_OK) {
        st = lookup(call, &names, pos, key_len, &info, &mode);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    mbedtls_cipher_mode_t m = mbedtls_cipher_info_get_mode(info);
    if (kind == KIND_BUFFERED && !is_aead(m) && m != MBEDTLS_MODE_XTS) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s streams: use cipher_new or cipher_crypt", mode);
    }
    if (kind == KIND_AEAD && !is_aead(m)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s is not an AEAD mode: use cipher_crypt", mode);
    }
    if (kind == KIND_PLAIN && is_aead(m)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s is an AEAD mode: use cipher_auth_encrypt/decrypt", mode);
    }
    st = check_iv(call, info, iv_len);
    if (st == ML_STATUS_OK) {
        st = setup(call, &o->ctx, info, key, key_len, iv, iv_len, *encrypt);
    }
    o->ecb = m == MBEDTLS_MODE_ECB;
    iv_out->iv = iv;
    iv_out->len = iv_len;
    return st;
}

int ml_op_cipher_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st != ML_STATUS_OK) {
        return st;
    }
    struct iv_arg ivp;
    struct cipher_obj tmp;
    memset(&tmp, 0, sizeof tmp);
    mbedtls_cipher_init(&tmp.ctx);
    bool encrypt = false;
    st = read_and_setup(call, args, 2, &tmp, false, &encrypt, KIND_PLAIN, &ivp);
    if (st == ML_STATUS_OK && mbedtls_cipher_get_cipher_mode(&tmp.ctx) == MBEDTLS_MODE_XTS) {
        st = ml_fail(call, ML_STATUS_BAD_ARGUMENT, "XTS encrypts one data unit at once: use cipher_crypt");
    }
    void *p = NULL;
    if (st == ML_STATUS_OK) {
        st = ml_handle_create(call, handle, ML_HT_CIPHER, sizeof(struct cipher_obj), cipher_dtor, &p);
    }
    if (st != ML_STATUS_OK) {
        mbedtls_cipher_free(&tmp.ctx);
        return st;
    }
    /* The context holds pointers to its own heap state only: a move is fine. */
    memcpy(p, &tmp, sizeof tmp);
    mbedtls_platform_zeroize(&tmp, sizeof tmp);
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

int ml_op_cipher_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    void *p = NULL;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &data, &len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_handle_get(call, handle, ML_HT_CIPHER, &p);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    struct cipher_obj *o = p;
    if (o->finished) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "cipher context %lu is finished", (unsigned long)handle);
    }
    size_t cap = len + MBEDTLS_MAX_BLOCK_LENGTH;
    uint8_t *out = alloc_out(cap);
    if (out == NULL) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of output", (unsigned)cap);
    }
    size_t olen = 0;
    st = update(call, o, data, len, out, &olen);
    if (st == ML_STATUS_OK) {
        (void)cbor_encode_byte_string(result, out, olen);
    }
    free_out(out, cap);
    return st;
}

int ml_op_cipher_finish(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    void *p = NULL;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = ml_handle_get(call, handle, ML_HT_CIPHER, &p);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    struct cipher_obj *o = p;
    if (o->finished) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "cipher context %lu is finished", (unsigned long)handle);
    }
    uint8_t out[MBEDTLS_MAX_BLOCK_LENGTH];
    size_t olen = 0;
    st = finish(call, o, out, &olen);
    if (st == ML_STATUS_OK) {
        (void)cbor_encode_byte_string(result, out, olen);
    }
    mbedtls_platform_zeroize(out, sizeof out);
    return st;
}

int ml_op_cipher_crypt(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct cipher_obj o;
    memset(&o, 0, sizeof o);
    mbedtls_cipher_init(&o.ctx);
    /* [cipher, mode, key, iv, encrypt, data] */
    struct iv_arg ivp;
    bool encrypt = false;
    int st = read_and_setup(call, args, 1, &o, false, &encrypt, KIND_PLAIN, &ivp);
    const uint8_t *data = NULL;
    size_t len = 0;
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 6, &data, &len);
    }
    if (st == ML_STATUS_OK && mbedtls_cipher_get_cipher_mode(&o.ctx) == MBEDTLS_MODE_XTS && len < 16) {
        st = ml_fail(call, ML_STATUS_BAD_ARGUMENT, "XTS data must be at least 16 bytes, got %u", (unsigned)len);
    }
    uint8_t *out = NULL;
    size_t cap = len + 2 * MBEDTLS_MAX_BLOCK_LENGTH;
    if (st == ML_STATUS_OK) {
        out = alloc_out(cap);
        if (out == NULL) {
            st = ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of output", (unsigned)cap);
        }
    }
    size_t olen = 0, flen = 0;
    if (st == ML_STATUS_OK) {
        st = update(call, &o, data, len, out, &olen);
    }
    if (st == ML_STATUS_OK) {
        st = finish(call, &o, out + olen, &flen);
    }
    if (st == ML_STATUS_OK) {
        (void)cbor_encode_byte_string(result, out, olen + flen);
    }
    if (out != NULL) {
        free_out(out, cap);
    }
    mbedtls_cipher_free(&o.ctx);
    return st;
}

static int check_tag_len(struct ml_call *call, const mbedtls_cipher_context_t *ctx, size_t tag_len)
{
    mbedtls_cipher_mode_t m = mbedtls_cipher_get_cipher_mode(ctx);
    const char *name = mbedtls_cipher_get_name(ctx);
    if (m == MBEDTLS_MODE_CHACHAPOLY && tag_len != 16) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s tag must be 16 bytes, got %u", name, (unsigned)tag_len);
    }
    if (m == MBEDTLS_MODE_GCM && (tag_len < 4 || tag_len > 16)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s tag must be 4 to 16 bytes, got %u", name, (unsigned)tag_len);
    }
    if (m == MBEDTLS_MODE_CCM && (tag_len < 4 || tag_len > 16 || tag_len % 2 != 0)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s tag must be 4, 6, ... or 16 bytes, got %u", name,
                       (unsigned)tag_len);
    }
    return ML_STATUS_OK;
}

/* [cipher, mode, key, iv, aad, data, tag_len] -> [ciphertext, tag] */
int ml_op_cipher_auth_encrypt(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct cipher_obj o;
    memset(&o, 0, sizeof o);
    mbedtls_cipher_init(&o.ctx);
    const uint8_t *iv = NULL, *aad = NULL, *data = NULL;
    size_t iv_len = 0, aad_len = 0, len = 0;
    uint64_t tag_len = 0;
    struct iv_arg ivp = {NULL, 0};
    bool encrypt = true;
    int st = read_and_setup(call, args, 1, &o, true, &encrypt, KIND_AEAD, &ivp);
    iv = ivp.iv;
    iv_len = ivp.len;
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 5, &aad, &aad_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 6, &data, &len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_uint(call, args, 7, &tag_len);
    }
    if (st == ML_STATUS_OK) {
        st = check_tag_len(call, &o.ctx, tag_len > 255 ? 255 : (size_t)tag_len);
    }
    uint8_t *out = NULL;
    size_t cap = len + (size_t)tag_len;
    if (st == ML_STATUS_OK) {
        out = alloc_out(cap);
        if (out == NULL) {
            st = ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of output", (unsigned)cap);
        }
    }
    if (st == ML_STATUS_OK) {
        size_t olen = 0;
        int ret = mbedtls_cipher_auth_encrypt_ext(&o.ctx, iv, iv_len, aad, aad_len, data, len, out, cap, &olen,
                                                  (size_t)tag_len);
        if (ret != 0 || olen != cap) {
            st = ml_fail_mbedtls(call, ret, "cipher_auth_encrypt");
        } else {
            CborEncoder arr;
            (void)cbor_encoder_create_array(result, &arr, 2);
            (void)cbor_encode_byte_string(&arr, out, len);
            (void)cbor_encode_byte_string(&arr, out + len, (size_t)tag_len);
            (void)cbor_encoder_close_container(result, &arr);
        }
    }
    if (out != NULL) {
        free_out(out, cap);
    }
    mbedtls_cipher_free(&o.ctx);
    return st;
}

/* [cipher, mode, key, iv, aad, data, tag] -> plaintext, or auth_failed and nothing. */
int ml_op_cipher_auth_decrypt(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct cipher_obj o;
    memset(&o, 0, sizeof o);
    mbedtls_cipher_init(&o.ctx);
    const uint8_t *iv = NULL, *aad = NULL, *data = NULL, *tag = NULL;
    size_t iv_len = 0, aad_len = 0, len = 0, tag_len = 0;
    struct iv_arg ivp = {NULL, 0};
    bool encrypt = false;
    int st = read_and_setup(call, args, 1, &o, true, &encrypt, KIND_AEAD, &ivp);
    iv = ivp.iv;
    iv_len = ivp.len;
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 5, &aad, &aad_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 6, &data, &len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 7, &tag, &tag_len);
    }
    if (st == ML_STATUS_OK) {
        st = check_tag_len(call, &o.ctx, tag_len);
    }
    /* Mbed TLS wants ciphertext || tag in one buffer; the output gets the
     * plaintext, released only when the tag verified. */
    uint8_t *in = NULL, *out = NULL;
    size_t in_len = len + tag_len;
    if (st == ML_STATUS_OK) {
        in = alloc_out(in_len);
        out = alloc_out(len);
        if (in == NULL || out == NULL) {
            st = ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes", (unsigned)(in_len + len));
        }
    }
    if (st == ML_STATUS_OK) {
        memcpy(in, data, len);
        memcpy(in + len, tag, tag_len);
        size_t olen = 0;
        int ret =
            mbedtls_cipher_auth_decrypt_ext(&o.ctx, iv, iv_len, aad, aad_len, in, in_len, out, len, &olen, tag_len);
        if (ret == MBEDTLS_ERR_CIPHER_AUTH_FAILED) {
            call->mbedtls_code = ret;
            st = ml_fail(call, ML_STATUS_AUTH_FAILED, "%s tag does not match: no plaintext released",
                         mbedtls_cipher_get_name(&o.ctx));
        } else if (ret != 0 || olen != len) {
            st = ml_fail_mbedtls(call, ret, "cipher_auth_decrypt");
        } else {
            (void)cbor_encode_byte_string(result, out, len);
        }
    }
    if (in != NULL) {
        free_out(in, in_len);
    }
    if (out != NULL) {
        free_out(out, len);
    }
    mbedtls_cipher_free(&o.ctx);
    return st;
}

/* ------------------------------------------------------------------------
 * Buffered one-shot contexts (cipher_buf_*): AEAD and XTS messages larger
 * than one frame. The device collects the whole input, runs the same
 * one-shot call as cipher_auth_* / cipher_crypt over it at finish, and
 * only a successful finish makes the output readable. Peak heap: the
 * input, then input + output (+ tag) during finish.
 */
enum buf_state {
    BUF_FILLING, /* accepting cipher_buf_update */
    BUF_DONE,    /* finished: output readable */
    BUF_FAILED,  /* an update or the finish failed: nothing readable */
};

struct cipher_buf_obj {
    struct cipher_obj c; /* the set-up context (XTS: key and IV set) */
    bool encrypt;
    uint8_t state; /* enum buf_state */
    uint8_t tag_len;
    uint8_t iv_len;
    uint8_t iv[128];
    uint8_t *ad;
    size_t ad_len;
    uint8_t *in; /* input collected so far (decrypt: room for the tag) */
    size_t in_len, in_cap;
    uint8_t *out; /* output after a successful finish */
    size_t out_len, out_cap;
};

static void buf_release(uint8_t **p, size_t *cap)
{
    if (*p != NULL) {
        free_out(*p, *cap);
        *p = NULL;
    }
    *cap = 0;
}

static void buf_clear(struct cipher_buf_obj *b)
{
    buf_release(&b->in, &b->in_cap);
    buf_release(&b->out, &b->out_cap);
    b->in_len = 0;
    b->out_len = 0;
}

static void cipher_buf_dtor(void *obj)
{
    struct cipher_buf_obj *b = obj;
    buf_clear(b);
    buf_release(&b->ad, &b->ad_len);
    mbedtls_cipher_free(&b->c.ctx);
}

/* Makes room for `more` bytes after in_len: a fresh zeroed buffer of at
 * least twice the old capacity (or exactly what is needed when that does not
 * fit), the old one zeroised and freed. Leaves b untouched on failure. */
static bool buf_reserve(struct cipher_buf_obj *b, size_t more)
{
    if (more > SIZE_MAX - b->in_len) {
        return false;
    }
    size_t need = b->in_len + more;
    if (need <= b->in_cap) {
        return true;
    }
    size_t want = b->in_cap > SIZE_MAX / 2 ? need : b->in_cap * 2;
    if (want < need) {
        want = need;
    }
    uint8_t *p = alloc_out(want);
    if (p == NULL && want > need) {
        want = need;
        p = alloc_out(want);
    }
    if (p == NULL) {
        return false;
    }
    if (b->in != NULL) {
        memcpy(p, b->in, b->in_len);
        free_out(b->in, b->in_cap);
    }
    b->in = p;
    b->in_cap = want;
    return true;
}

/* Makes b->out hold at least `need` bytes (kept when cipher_buf_new already
 * reserved enough). */
static bool buf_out(struct cipher_buf_obj *b, size_t need)
{
    if (b->out != NULL && b->out_cap >= need) {
        return true;
    }
    buf_release(&b->out, &b->out_cap);
    b->out = alloc_out(need);
    b->out_cap = b->out == NULL ? 0 : need;
    return b->out != NULL;
}

/* Output room for `len` bytes of data: XTS and the AEAD tag included. */
static size_t out_need(size_t len)
{
    return len > SIZE_MAX - 2 * MBEDTLS_MAX_BLOCK_LENGTH ? SIZE_MAX : len + 2 * MBEDTLS_MAX_BLOCK_LENGTH;
}

/* [handle, cipher, mode, key, iv, encrypt, aad, tag_len, length] -> null;
 * `length` (the data the host means to send, 0 when unknown) reserves the
 * input and output buffers at once, so a message the heap cannot hold is
 * refused before any data travels and no buffer is grown by copying. */
int ml_op_cipher_buf_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st != ML_STATUS_OK) {
        return st;
    }
    struct cipher_obj tmp;
    memset(&tmp, 0, sizeof tmp);
    mbedtls_cipher_init(&tmp.ctx);
    struct iv_arg ivp = {NULL, 0};
    bool encrypt = false;
    const uint8_t *aad = NULL;
    size_t aad_len = 0;
    uint64_t tag_len = 0;
    st = read_and_setup(call, args, 2, &tmp, false, &encrypt, KIND_BUFFERED, &ivp);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 7, &aad, &aad_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_uint(call, args, 8, &tag_len);
    }
    uint64_t expected = 0;
    if (st == ML_STATUS_OK) {
        st = ml_arg_uint(call, args, 9, &expected);
    }
    bool xts = st == ML_STATUS_OK && mbedtls_cipher_get_cipher_mode(&tmp.ctx) == MBEDTLS_MODE_XTS;
    if (st == ML_STATUS_OK && xts && (aad_len != 0 || tag_len != 0)) {
        st = ml_fail(call, ML_STATUS_BAD_ARGUMENT, "XTS takes no additional data and no tag");
    }
    if (st == ML_STATUS_OK && !xts) {
        st = check_tag_len(call, &tmp.ctx, tag_len > 255 ? 255 : (size_t)tag_len);
    }
    uint8_t *ad_copy = NULL;
    if (st == ML_STATUS_OK && aad_len > 0) {
        ad_copy = alloc_out(aad_len);
        if (ad_copy == NULL) {
            st = ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of additional data", (unsigned)aad_len);
        }
    }
    void *p = NULL;
    if (st == ML_STATUS_OK) {
        st = ml_handle_create(call, handle, ML_HT_CIPHER_BUF, sizeof(struct cipher_buf_obj), cipher_buf_dtor, &p);
    }
    if (st != ML_STATUS_OK) {
        if (ad_copy != NULL) {
            free_out(ad_copy, aad_len);
        }
        mbedtls_cipher_free(&tmp.ctx);
        return st;
    }
    struct cipher_buf_obj *b = p;
    /* The context holds pointers to its own heap state only: a move is fine. */
    memcpy(&b->c, &tmp, sizeof tmp);
    mbedtls_platform_zeroize(&tmp, sizeof tmp);
    b->encrypt = encrypt;
    b->state = BUF_FILLING;
    b->tag_len = (uint8_t)tag_len;
    b->iv_len = (uint8_t)ivp.len; /* check_iv: at most 128 */
    memcpy(b->iv, ivp.iv, ivp.len);
    if (ad_copy != NULL) {
        memcpy(ad_copy, aad, aad_len);
    }
    b->ad = ad_copy;
    b->ad_len = aad_len;
    if (expected > 0) {
        /* decryption appends the tag to the input at finish */
        size_t n = expected > SIZE_MAX - 16 ? SIZE_MAX - 16 : (size_t)expected;
        if (!buf_reserve(b, n + (encrypt || xts ? 0 : b->tag_len)) || !buf_out(b, out_need(n))) {
            (void)ml_handle_free(call, handle);
            return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap to buffer %llu bytes (twice: input and output)",
                           (unsigned long long)expected);
        }
    }
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

static int get_buf(struct ml_call *call, CborValue *args, uint32_t *handle, struct cipher_buf_obj **b)
{
    void *p = NULL;
    int st = ml_arg_handle(call, args, 1, handle);
    if (st == ML_STATUS_OK) {
        st = ml_handle_get(call, *handle, ML_HT_CIPHER_BUF, &p);
    }
    *b = p;
    return st;
}

/* [handle, data] -> null */
int ml_op_cipher_buf_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct cipher_buf_obj *b = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    int st = get_buf(call, args, &handle, &b);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &data, &len);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (b->state != BUF_FILLING) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "buffered cipher %lu %s", (unsigned long)handle,
                       b->state == BUF_DONE ? "is finished" : "failed earlier: free it");
    }
    if (!buf_reserve(b, len)) {
        size_t total = b->in_len;
        /* Give the heap back at once; the context can no longer produce a
         * correct result, so it refuses further updates and the finish. */
        buf_clear(b);
        b->state = BUF_FAILED;
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap to buffer %lu + %u bytes", (unsigned long)total,
                       (unsigned)len);
    }
    memcpy(b->in + b->in_len, data, len);
    b->in_len += len;
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

/* The one-shot call over b->in; sets b->out (out_len readable bytes) or fails. */
static int buf_run(struct ml_call *call, struct cipher_buf_obj *b, const uint8_t *tag, size_t tag_len, uint8_t *tag_out)
{
    mbedtls_cipher_context_t *ctx = &b->c.ctx;
    size_t len = b->in_len;
    if (mbedtls_cipher_get_cipher_mode(ctx) == MBEDTLS_MODE_XTS) {
        if (len < 16) {
            return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "XTS data must be at least 16 bytes, got %u", (unsigned)len);
        }
        if (!buf_out(b, out_need(len))) {
            return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu bytes of output", (unsigned long)len);
        }
        size_t olen = 0, flen = 0;
        int st = update(call, &b->c, b->in, len, b->out, &olen);
        if (st == ML_STATUS_OK) {
            st = finish(call, &b->c, b->out + olen, &flen);
        }
        b->out_len = olen + flen;
        return st;
    }
    if (b->encrypt) {
        if (!buf_out(b, out_need(len))) {
            return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu bytes of output", (unsigned long)len);
        }
        size_t olen = 0;
        int ret = mbedtls_cipher_auth_encrypt_ext(ctx, b->iv, b->iv_len, b->ad, b->ad_len, b->in, len, b->out,
                                                  len + b->tag_len, &olen, b->tag_len);
        if (ret != 0 || olen != len + b->tag_len) {
            return ml_fail_mbedtls(call, ret, "cipher_auth_encrypt");
        }
        memcpy(tag_out, b->out + len, b->tag_len);
        b->out_len = len;
        return ML_STATUS_OK;
    }
    /* Decrypt: Mbed TLS wants ciphertext || tag in one buffer. */
    if (tag == NULL) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s decryption needs the tag", mbedtls_cipher_get_name(ctx));
    }
    if (tag_len != b->tag_len) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "tag must be %u bytes (as announced), got %u",
                       (unsigned)b->tag_len, (unsigned)tag_len);
    }
    if (!buf_reserve(b, tag_len)) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the tag");
    }
    memcpy(b->in + len, tag, tag_len);
    if (!buf_out(b, out_need(len))) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu bytes of output", (unsigned long)len);
    }
    size_t olen = 0;
    int ret = mbedtls_cipher_auth_decrypt_ext(ctx, b->iv, b->iv_len, b->ad, b->ad_len, b->in, len + tag_len, b->out,
                                              len, &olen, tag_len);
    if (ret == MBEDTLS_ERR_CIPHER_AUTH_FAILED) {
        call->mbedtls_code = ret;
        return ml_fail(call, ML_STATUS_AUTH_FAILED, "%s tag does not match: no plaintext released",
                       mbedtls_cipher_get_name(ctx));
    }
    if (ret != 0 || olen != len) {
        return ml_fail_mbedtls(call, ret, "cipher_auth_decrypt");
    }
    b->out_len = len;
    return ML_STATUS_OK;
}

/* [handle, ?tag] -> [length, tag or null] */
int ml_op_cipher_buf_finish(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct cipher_buf_obj *b = NULL;
    const uint8_t *tag = NULL;
    size_t tag_len = 0;
    int st = get_buf(call, args, &handle, &b);
    if (st == ML_STATUS_OK && call->argc >= 2 && !cbor_value_is_null(args)) {
        st = ml_arg_bytes(call, args, 2, &tag, &tag_len);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (b->state != BUF_FILLING) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "buffered cipher %lu %s", (unsigned long)handle,
                       b->state == BUF_DONE ? "is finished" : "failed earlier: free it");
    }
    bool aead = mbedtls_cipher_get_cipher_mode(&b->c.ctx) != MBEDTLS_MODE_XTS;
    if (tag != NULL && (b->encrypt || !aead)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s takes no tag here", aead ? "encryption" : "XTS");
    }
    uint8_t tag_out[16];
    st = buf_run(call, b, tag, tag_len, tag_out);
    /* The input is no longer needed either way. */
    buf_release(&b->in, &b->in_cap);
    b->in_len = 0;
    if (st != ML_STATUS_OK) {
        /* Nothing readable: a failed decryption's output is zeroised here. */
        buf_clear(b);
        b->state = BUF_FAILED;
        mbedtls_platform_zeroize(tag_out, sizeof tag_out);
        return st;
    }
    b->state = BUF_DONE;
    CborEncoder arr;
    (void)cbor_encoder_create_array(result, &arr, 2);
    (void)cbor_encode_uint(&arr, b->out_len);
    if (aead && b->encrypt) {
        (void)cbor_encode_byte_string(&arr, tag_out, b->tag_len);
    } else {
        (void)cbor_encode_null(&arr);
    }
    (void)cbor_encoder_close_container(result, &arr);
    mbedtls_platform_zeroize(tag_out, sizeof tag_out);
    return ML_STATUS_OK;
}

/* [handle, offset, len] -> bytes */
int ml_op_cipher_buf_read(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct cipher_buf_obj *b = NULL;
    uint64_t off = 0, len = 0;
    int st = get_buf(call, args, &handle, &b);
    if (st == ML_STATUS_OK) {
        st = ml_arg_uint(call, args, 2, &off);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_uint(call, args, 3, &len);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (b->state != BUF_DONE) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "buffered cipher %lu has no output%s", (unsigned long)handle,
                       b->state == BUF_FILLING ? " before cipher_buf_finish" : " (it failed)");
    }
    if (len > ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX) {
        return ml_fail(call, ML_STATUS_TOO_LARGE, "read of %llu bytes exceeds the MTU limit %u",
                       (unsigned long long)len, (unsigned)(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX));
    }
    if (off > b->out_len || len > b->out_len - off) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "read of %llu bytes at %llu is beyond the %lu-byte output",
                       (unsigned long long)len, (unsigned long long)off, (unsigned long)b->out_len);
    }
    (void)cbor_encode_byte_string(result, b->out + off, (size_t)len);
    return ML_STATUS_OK;
}
