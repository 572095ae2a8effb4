/* The cipher module's shared part (see ml_cipher.h). */
#include "ops/ml_cipher.h"

#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_symkey.h"

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
    size_t n = 0;
    size_t got = cap;
    CborError err = CborNoError;
    int st = ML_STATUS_OK;
    if (!cbor_value_is_text_string(args) || !cbor_value_is_length_known(args)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a text string", pos);
    }
    (void)cbor_value_get_string_length(args, &n);
    if (n >= cap) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: name longer than %u bytes", pos, (unsigned)(cap - 1));
    }
    err = cbor_value_copy_text_string(args, buf, &got, args);
    if (err != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: bad text string (%s)", pos, cbor_error_string(err));
    }
    *len = got;
cleanup:
    return st;
}

/* "16", "32 or 64", "16, 24 or 32" */
static void list_sizes(char *out, size_t cap, const unsigned *lens, size_t nlens)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < nlens && used < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == nlens ? " or " : ", ";
        int n = snprintf(out + used, cap - used, "%s%u", sep, lens[i]);
        used += n > 0 ? (size_t)n : 0;
    }
}

/* The block cipher under a family's modes (CCM and GCM streams set it up). */
static mbedtls_cipher_id_t block_of(const char *family)
{
    return family[0] == 'A'   ? (family[1] == 'E' ? MBEDTLS_CIPHER_ID_AES : MBEDTLS_CIPHER_ID_ARIA)
           : family[0] == 'C' ? (family[1] == 'A' ? MBEDTLS_CIPHER_ID_CAMELLIA : MBEDTLS_CIPHER_ID_CHACHA20)
                              : MBEDTLS_CIPHER_ID_DES;
}

/* Reads the family and mode names (two args from `pos`) and picks the cipher
 * for a key of key_len bytes. */
static int lookup(struct ml_call *call, CborValue *args, unsigned pos, size_t key_len,
                  const mbedtls_cipher_info_t **info, const struct cipher_alg **alg_out)
{
    char fam[24], mode[16], sizes[32];
    size_t fam_len = 0, mode_len = 0;
    const struct cipher_alg *found = NULL;
    bool fam_known = false, mode_known = false;
    unsigned lens[4];
    size_t nlens = 0;
    int st = ML_STATUS_OK;
    ML_CHK(arg_text(call, args, pos, fam, sizeof fam, &fam_len));
    ML_CHK(arg_text(call, args, pos + 1, mode, sizeof mode, &mode_len));
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        if (text_is(fam, fam_len, removed[i])) {
            ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "%s was removed from Mbed TLS 3", removed[i]);
        }
    }
    for (size_t i = 0; i < sizeof algs / sizeof algs[0] && found == NULL; i++) {
        const struct cipher_alg *a = &algs[i];
        if (!text_is(fam, fam_len, a->family)) {
            continue;
        }
        fam_known = true;
        if (!text_is(mode, mode_len, a->mode)) {
            continue;
        }
        mode_known = true;
        *alg_out = a;
        if (a->key_len == key_len) {
            found = a;
        } else if (nlens < sizeof lens / sizeof lens[0]) {
            lens[nlens++] = a->key_len;
        }
    }
    if (!fam_known) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "unknown cipher \"%s\"", fam);
    }
    if (!mode_known) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "%s has no %s mode", fam, mode);
    }
    if (found == NULL) {
        list_sizes(sizes, sizeof sizes, lens, nlens);
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s-%s key must be %s bytes, got %u", fam, mode, sizes,
                (unsigned)key_len);
    }
    *info = mbedtls_cipher_info_from_type(found->type);
    if (*info == NULL) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "%s-%s is not compiled into this firmware", found->family,
                found->mode);
    }
cleanup:
    return st;
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
    int st = ML_STATUS_OK;
    if (m == MBEDTLS_MODE_GCM) {
        if (iv_len < 1 || iv_len > 128) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s IV must be 1 to 128 bytes (12 recommended), got %u", name,
                    (unsigned)iv_len);
        }
    } else if (m == MBEDTLS_MODE_CCM) {
        if (iv_len < 7 || iv_len > 13) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s nonce must be 7 to 13 bytes, got %u", name, (unsigned)iv_len);
        }
    } else if (iv_len != want) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s IV must be %u bytes, got %u", name, (unsigned)want, (unsigned)iv_len);
    }
cleanup:
    return st;
}

/* Sets up ctx for info/key/iv/direction (the key bytes end up only inside
 * ctx, which mbedtls_cipher_free zeroises). AEAD modes take their IV with
 * each one-shot call. */
static int setup(struct ml_call *call, mbedtls_cipher_context_t *ctx, const mbedtls_cipher_info_t *info,
                 const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len, bool encrypt)
{
    mbedtls_cipher_mode_t m = mbedtls_cipher_info_get_mode(info);
    int st = ML_STATUS_OK;
    ML_CHK_TLS(call, mbedtls_cipher_setup(ctx, info), "cipher_setup");
    ML_CHK_TLS(call, mbedtls_cipher_setkey(ctx, key, (int)(key_len * 8), encrypt ? MBEDTLS_ENCRYPT : MBEDTLS_DECRYPT),
               "cipher_setkey");
    if (m == MBEDTLS_MODE_CBC) {
        ML_CHK_TLS(call, mbedtls_cipher_set_padding_mode(ctx, MBEDTLS_PADDING_PKCS7), "cipher_set_padding_mode");
    }
    if (iv_len > 0 && !is_aead(m)) {
        ML_CHK_TLS(call, mbedtls_cipher_set_iv(ctx, iv, iv_len), "cipher_set_iv");
    }
    if (!is_aead(m)) {
        ML_CHK_TLS(call, mbedtls_cipher_reset(ctx), "cipher_reset");
    }
cleanup:
    return st;
}

int ml_cipher_obj_get(struct ml_call *call, CborValue *args, uint8_t kind, uint32_t *handle, void **obj)
{
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, handle));
    ML_CHK(ml_handle_get(call, *handle, ML_HT_CIPHER_BUF, obj));
    if (*(const uint8_t *)*obj != kind) {
        ML_FAIL(call, ML_STATUS_WRONG_HANDLE_TYPE, "handle %lu is %s", (unsigned long)*handle,
                kind == ML_CIPHER_OBJ_STREAM ? "a buffered cipher context: use cipher_buf_update/finish/read"
                                             : "an AEAD stream: use aead_update/aead_finish");
    }
cleanup:
    return st;
}

void ml_cipher_init(struct ml_cipher *c)
{
    memset(c, 0, sizeof *c);
    mbedtls_cipher_init(&c->ctx);
}

void ml_cipher_free(struct ml_cipher *c)
{
    mbedtls_cipher_free(&c->ctx);
    mbedtls_platform_zeroize(c, sizeof *c);
}

void ml_cipher_move(struct ml_cipher *dst, struct ml_cipher *src)
{
    memcpy(dst, src, sizeof *src);
    mbedtls_platform_zeroize(src, sizeof *src);
}

int ml_cipher_open(struct ml_call *call, CborValue *args, unsigned pos, enum ml_cipher_kind kind,
                   enum ml_cipher_dir dir, struct ml_cipher *c, struct ml_cipher_args *a)
{
    /* The key decides the cipher, so read it before the names are checked. */
    CborValue names = *args;
    const uint8_t *key = NULL;
    size_t key_len = 0;
    const mbedtls_cipher_info_t *info = NULL;
    const struct cipher_alg *alg = NULL;
    const char *mode = NULL;
    mbedtls_cipher_mode_t m = MBEDTLS_MODE_NONE;
    int st = ML_STATUS_OK;
    (void)cbor_value_advance(args);
    (void)cbor_value_advance(args);
    a->iv = NULL;
    a->iv_len = 0;
    a->key = NULL;
    a->key_len = 0;
    a->block = MBEDTLS_CIPHER_ID_NONE;
    a->encrypt = dir == ML_CIPHER_DIR_ENCRYPT;
    /* Argument types first, in order. */
    if (!cbor_value_is_text_string(&names)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a text string", pos);
    }
    ML_CHK(ml_arg_key(call, args, pos + 2, &key, &key_len));
    ML_CHK(ml_arg_bytes(call, args, pos + 3, &a->iv, &a->iv_len));
    if (dir == ML_CIPHER_DIR_ARG) {
        ML_CHK(ml_arg_bool(call, args, pos + 4, &a->encrypt));
    }
    ML_CHK(lookup(call, &names, pos, key_len, &info, &alg));
    mode = alg->mode;
    a->key = key;
    a->key_len = key_len;
    a->block = block_of(alg->family);
    m = mbedtls_cipher_info_get_mode(info);
    if (kind == ML_CIPHER_BUFFERED && !is_aead(m) && m != MBEDTLS_MODE_XTS) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s streams: use cipher_new or cipher_crypt", mode);
    }
    if (kind == ML_CIPHER_AEAD && !is_aead(m)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s is not an AEAD mode: use cipher_crypt", mode);
    }
    if (kind == ML_CIPHER_PLAIN && is_aead(m)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s is an AEAD mode: use cipher_auth_encrypt/decrypt", mode);
    }
    ML_CHK(check_iv(call, info, a->iv_len));
    c->ecb = m == MBEDTLS_MODE_ECB;
    ML_CHK(setup(call, &c->ctx, info, key, key_len, a->iv, a->iv_len, a->encrypt));
cleanup:
    return st;
}

int ml_cipher_update(struct ml_call *call, struct ml_cipher *c, const uint8_t *data, size_t len, uint8_t *out,
                     size_t *olen)
{
    size_t bs = mbedtls_cipher_get_block_size(&c->ctx);
    int st = ML_STATUS_OK;
    *olen = 0;
    if (!c->ecb) {
        ML_CHK_TLS(call, mbedtls_cipher_update(&c->ctx, data, len, out, olen), "cipher_update");
    }
    /* ECB: mbedtls_cipher_update takes exactly one block per call. */
    while (c->ecb && len > 0) {
        size_t take = bs - c->pending < len ? bs - c->pending : len;
        size_t n = 0;
        memcpy(c->block + c->pending, data, take);
        c->pending = (uint8_t)(c->pending + take);
        data += take;
        len -= take;
        if (c->pending == bs) {
            ML_CHK_TLS(call, mbedtls_cipher_update(&c->ctx, c->block, bs, out + *olen, &n), "cipher_update");
            *olen += n;
            c->pending = 0;
        }
    }
cleanup:
    return st;
}

int ml_cipher_finish(struct ml_call *call, struct ml_cipher *c, uint8_t *out, size_t *olen)
{
    unsigned bs = mbedtls_cipher_get_block_size(&c->ctx);
    int ret = 0;
    int st = ML_STATUS_OK;
    *olen = 0;
    c->finished = true;
    if (c->ecb) {
        if (c->pending != 0) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "ECB data must be a multiple of %u bytes", bs);
        }
    } else {
        ret = mbedtls_cipher_finish(&c->ctx, out, olen);
        if (ret == MBEDTLS_ERR_CIPHER_FULL_BLOCK_EXPECTED) {
            call->mbedtls_code = ret;
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "CBC ciphertext must be a multiple of %u bytes", bs);
        }
        if (ret == MBEDTLS_ERR_CIPHER_INVALID_PADDING) {
            call->mbedtls_code = ret;
            ML_FAIL(call, ML_STATUS_CRYPTO_ERROR, "bad padding (wrong key, IV or data)");
        }
        ML_CHK_TLS(call, ret, "cipher_finish");
    }
cleanup:
    return st;
}

int ml_cipher_crypt_all(struct ml_call *call, struct ml_cipher *c, const uint8_t *in, size_t len, uint8_t *out,
                        size_t *olen)
{
    size_t n = 0, f = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_cipher_update(call, c, in, len, out, &n));
    ML_CHK(ml_cipher_finish(call, c, out + n, &f));
cleanup:
    *olen = n + f;
    return st;
}

int ml_cipher_check_xts(struct ml_call *call, const struct ml_cipher *c, size_t len)
{
    int st = ML_STATUS_OK;
    if (mbedtls_cipher_get_cipher_mode(&c->ctx) == MBEDTLS_MODE_XTS && len < 16) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "XTS data must be at least 16 bytes, got %u", (unsigned)len);
    }
cleanup:
    return st;
}

int ml_cipher_check_tag_len(struct ml_call *call, const mbedtls_cipher_context_t *ctx, size_t tag_len)
{
    mbedtls_cipher_mode_t m = mbedtls_cipher_get_cipher_mode(ctx);
    const char *name = mbedtls_cipher_get_name(ctx);
    int st = ML_STATUS_OK;
    if (m == MBEDTLS_MODE_CHACHAPOLY && tag_len != 16) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s tag must be 16 bytes, got %u", name, (unsigned)tag_len);
    }
    if (m == MBEDTLS_MODE_GCM && (tag_len < 4 || tag_len > 16)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s tag must be 4 to 16 bytes, got %u", name, (unsigned)tag_len);
    }
    if (m == MBEDTLS_MODE_CCM && (tag_len < 4 || tag_len > 16 || tag_len % 2 != 0)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s tag must be 4, 6, ... or 16 bytes, got %u", name, (unsigned)tag_len);
    }
cleanup:
    return st;
}

int ml_cipher_aead_encrypt(struct ml_call *call, mbedtls_cipher_context_t *ctx, const struct ml_aead_params *p,
                           const uint8_t *in, size_t len, uint8_t *out)
{
    size_t olen = 0;
    int ret = mbedtls_cipher_auth_encrypt_ext(ctx, p->iv, p->iv_len, p->ad, p->ad_len, in, len, out, len + p->tag_len,
                                              &olen, p->tag_len);
    return ret != 0 || olen != len + p->tag_len ? ml_fail_mbedtls(call, ret, "cipher_auth_encrypt") : ML_STATUS_OK;
}

int ml_cipher_aead_decrypt(struct ml_call *call, mbedtls_cipher_context_t *ctx, const struct ml_aead_params *p,
                           const uint8_t *in, size_t len, uint8_t *out)
{
    size_t olen = 0;
    int st = ML_STATUS_OK;
    int ret = mbedtls_cipher_auth_decrypt_ext(ctx, p->iv, p->iv_len, p->ad, p->ad_len, in, len + p->tag_len, out, len,
                                              &olen, p->tag_len);
    if (ret == MBEDTLS_ERR_CIPHER_AUTH_FAILED) {
        call->mbedtls_code = ret;
        ML_FAIL(call, ML_STATUS_AUTH_FAILED, "%s tag does not match: no plaintext released",
                mbedtls_cipher_get_name(ctx));
    }
    ML_CHK(ret != 0 || olen != len ? ml_fail_mbedtls(call, ret, "cipher_auth_decrypt") : ML_STATUS_OK);
cleanup:
    return st;
}
