/*
 * cipher module, buffered one-shot contexts (cipher_buf_*, see ml_cipher.h):
 * AEAD and XTS messages larger than one frame. The device collects the whole
 * input, runs the same one-shot call as cipher_auth_* / cipher_crypt over it
 * at finish, and only a successful finish makes the output readable. Peak
 * heap: the input, then input + output (+ tag) during finish.
 */
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_config.h"
#include "core/ml_handles.h"
#include "ops/ml_cipher.h"
#include "ops/ml_ops.h"

enum buf_state {
    BUF_FILLING, /* accepting cipher_buf_update */
    BUF_DONE,    /* finished: output readable */
    BUF_FAILED,  /* an update or the finish failed: nothing readable */
};

struct cipher_buf_obj {
    uint8_t kind; /* ML_CIPHER_OBJ_BUFFERED (ml_cipher.h) */
    bool encrypt;
    uint8_t state; /* enum buf_state */
    uint8_t tag_len;
    uint8_t iv_len;
    struct ml_cipher c; /* the set-up context (XTS: key and IV set) */
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
    ml_buf_free(*p, *cap);
    *p = NULL;
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
    ml_cipher_free(&b->c);
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
    uint8_t *p = ml_buf_alloc(want);
    if (p == NULL && want > need) {
        want = need;
        p = ml_buf_alloc(want);
    }
    if (p == NULL) {
        return false;
    }
    if (b->in != NULL) {
        memcpy(p, b->in, b->in_len);
    }
    ml_buf_free(b->in, b->in_cap);
    b->in = p;
    b->in_cap = want;
    return true;
}

/* Makes b->out hold at least `need` bytes (kept when cipher_buf_new already
 * reserved enough). */
static bool buf_out(struct cipher_buf_obj *b, size_t need)
{
    if (b->out == NULL || b->out_cap < need) {
        buf_release(&b->out, &b->out_cap);
        b->out = ml_buf_alloc(need);
        b->out_cap = b->out == NULL ? 0 : need;
    }
    return b->out != NULL;
}

/* Output room for `len` bytes of data: XTS and the AEAD tag included. */
static size_t out_need(size_t len)
{
    return len > SIZE_MAX - 2 * MBEDTLS_MAX_BLOCK_LENGTH ? SIZE_MAX : len + 2 * MBEDTLS_MAX_BLOCK_LENGTH;
}

static bool is_xts(const struct cipher_buf_obj *b)
{
    return mbedtls_cipher_get_cipher_mode(&b->c.ctx) == MBEDTLS_MODE_XTS;
}

/* [handle, cipher, mode, key, iv, encrypt, aad, tag_len, length] -> null;
 * `length` (the data the host means to send, 0 when unknown) reserves the
 * input and output buffers at once, so a message the heap cannot hold is
 * refused before any data travels and no buffer is grown by copying. */
int ml_op_cipher_buf_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct ml_cipher tmp;
    struct ml_cipher_args a;
    const uint8_t *aad = NULL;
    size_t aad_len = 0, n = 0;
    uint64_t tag_len = 0, expected = 0;
    bool xts = false;
    uint8_t *ad_copy = NULL;
    void *p = NULL;
    struct cipher_buf_obj *b = NULL;
    int st = ML_STATUS_OK;
    ml_cipher_init(&tmp);
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_cipher_open(call, args, 2, ML_CIPHER_BUFFERED, ML_CIPHER_DIR_ARG, &tmp, &a));
    ML_CHK(ml_arg_bytes(call, args, 7, &aad, &aad_len));
    ML_CHK(ml_arg_uint(call, args, 8, &tag_len));
    ML_CHK(ml_arg_uint(call, args, 9, &expected));
    xts = mbedtls_cipher_get_cipher_mode(&tmp.ctx) == MBEDTLS_MODE_XTS;
    if (xts && (aad_len != 0 || tag_len != 0)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "XTS takes no additional data and no tag");
    }
    if (!xts) {
        ML_CHK(ml_cipher_check_tag_len(call, &tmp.ctx, tag_len > 255 ? 255 : (size_t)tag_len));
    }
    if (aad_len > 0) {
        ad_copy = ml_buf_alloc(aad_len);
        if (ad_copy == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %u bytes of additional data", (unsigned)aad_len);
        }
        memcpy(ad_copy, aad, aad_len);
    }
    ML_CHK(ml_handle_create(call, handle, ML_HT_CIPHER_BUF, sizeof(struct cipher_buf_obj), cipher_buf_dtor, &p));
    b = p;
    b->kind = ML_CIPHER_OBJ_BUFFERED;
    ml_cipher_move(&b->c, &tmp);
    b->encrypt = a.encrypt;
    b->state = BUF_FILLING;
    b->tag_len = (uint8_t)tag_len;
    b->iv_len = (uint8_t)a.iv_len; /* ml_cipher_open: at most 128 */
    memcpy(b->iv, a.iv, a.iv_len);
    b->ad = ad_copy; /* the object owns it now */
    b->ad_len = aad_len;
    ad_copy = NULL;
    if (expected > 0) {
        /* decryption appends the tag to the input at finish */
        n = expected > SIZE_MAX - 16 ? SIZE_MAX - 16 : (size_t)expected;
        if (!buf_reserve(b, n + (a.encrypt || xts ? 0 : b->tag_len)) || !buf_out(b, out_need(n))) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap to buffer %llu bytes (twice: input and output)",
                    (unsigned long long)expected);
        }
    }
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && b != NULL) {
        (void)ml_handle_free(call, handle);
    }
    ml_buf_free(ad_copy, aad_len);
    ml_cipher_free(&tmp);
    return st;
}

static int get_buf(struct ml_call *call, CborValue *args, uint32_t *handle, struct cipher_buf_obj **b)
{
    void *p = NULL;
    int st = ml_cipher_obj_get(call, args, ML_CIPHER_OBJ_BUFFERED, handle, &p);
    *b = p;
    return st;
}

/* Updates and the finish need a context still collecting its input. */
static int check_filling(struct ml_call *call, uint32_t handle, const struct cipher_buf_obj *b)
{
    int st = ML_STATUS_OK;
    if (b->state != BUF_FILLING) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "buffered cipher %lu %s", (unsigned long)handle,
                b->state == BUF_DONE ? "is finished" : "failed earlier: free it");
    }
cleanup:
    return st;
}

/* [handle, data] -> null */
int ml_op_cipher_buf_update(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct cipher_buf_obj *b = NULL;
    const uint8_t *data = NULL;
    size_t len = 0, total = 0;
    int st = ML_STATUS_OK;
    ML_CHK(get_buf(call, args, &handle, &b));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(check_filling(call, handle, b));
    if (!buf_reserve(b, len)) {
        total = b->in_len;
        /* Give the heap back at once; the context can no longer produce a
         * correct result, so it refuses further updates and the finish. */
        buf_clear(b);
        b->state = BUF_FAILED;
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap to buffer %lu + %u bytes", (unsigned long)total, (unsigned)len);
    }
    memcpy(b->in + b->in_len, data, len);
    b->in_len += len;
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

/* The one-shot call over b->in: b->out then holds out_len readable bytes
 * (BUF_DONE), or the context failed and holds nothing (BUF_FAILED: a failed
 * decryption's output is zeroised here). The input goes either way. */
static int buf_run(struct ml_call *call, struct cipher_buf_obj *b, const uint8_t *tag, size_t tag_len, uint8_t *tag_out)
{
    size_t len = b->in_len;
    struct ml_aead_params p = {b->iv, b->iv_len, b->ad, b->ad_len, b->tag_len};
    int st = ML_STATUS_OK;
    if (is_xts(b)) {
        ML_CHK(ml_cipher_check_xts(call, &b->c, len));
    } else if (!b->encrypt) {
        /* Decrypt: Mbed TLS wants ciphertext || tag in one buffer. */
        if (tag == NULL) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s decryption needs the tag", mbedtls_cipher_get_name(&b->c.ctx));
        }
        if (tag_len != b->tag_len) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "tag must be %u bytes (as announced), got %u", (unsigned)b->tag_len,
                    (unsigned)tag_len);
        }
        if (!buf_reserve(b, tag_len)) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the tag");
        }
        memcpy(b->in + len, tag, tag_len);
    }
    if (!buf_out(b, out_need(len))) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu bytes of output", (unsigned long)len);
    }
    if (is_xts(b)) {
        ML_CHK(ml_cipher_crypt_all(call, &b->c, b->in, len, b->out, &b->out_len));
    } else if (b->encrypt) {
        ML_CHK(ml_cipher_aead_encrypt(call, &b->c.ctx, &p, b->in, len, b->out));
        memcpy(tag_out, b->out + len, b->tag_len);
        b->out_len = len;
    } else {
        ML_CHK(ml_cipher_aead_decrypt(call, &b->c.ctx, &p, b->in, len, b->out));
        b->out_len = len;
    }
cleanup:
    buf_release(&b->in, &b->in_cap);
    b->in_len = 0;
    if (st != ML_STATUS_OK) {
        buf_clear(b);
    }
    b->state = st == ML_STATUS_OK ? BUF_DONE : BUF_FAILED;
    return st;
}

/* [handle, ?tag] -> [length, tag or null] */
int ml_op_cipher_buf_finish(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct cipher_buf_obj *b = NULL;
    const uint8_t *tag = NULL;
    size_t tag_len = 0;
    bool aead = false;
    uint8_t tag_out[16];
    CborEncoder arr;
    int st = ML_STATUS_OK;
    ML_CHK(get_buf(call, args, &handle, &b));
    if (call->argc >= 2 && !cbor_value_is_null(args)) {
        ML_CHK(ml_arg_bytes(call, args, 2, &tag, &tag_len));
    }
    ML_CHK(check_filling(call, handle, b));
    aead = !is_xts(b);
    if (tag != NULL && (b->encrypt || !aead)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s takes no tag here", aead ? "encryption" : "XTS");
    }
    ML_CHK(buf_run(call, b, tag, tag_len, tag_out));
    (void)cbor_encoder_create_array(result, &arr, 2);
    (void)cbor_encode_uint(&arr, b->out_len);
    if (aead && b->encrypt) {
        (void)cbor_encode_byte_string(&arr, tag_out, b->tag_len);
    } else {
        (void)cbor_encode_null(&arr);
    }
    (void)cbor_encoder_close_container(result, &arr);
cleanup:
    mbedtls_platform_zeroize(tag_out, sizeof tag_out);
    return st;
}

/* [handle, offset, len] -> bytes */
int ml_op_cipher_buf_read(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    struct cipher_buf_obj *b = NULL;
    uint64_t off = 0, len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(get_buf(call, args, &handle, &b));
    ML_CHK(ml_arg_uint(call, args, 2, &off));
    ML_CHK(ml_arg_uint(call, args, 3, &len));
    if (b->state != BUF_DONE) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "buffered cipher %lu has no output%s", (unsigned long)handle,
                b->state == BUF_FILLING ? " before cipher_buf_finish" : " (it failed)");
    }
    if (len > ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "read of %llu bytes exceeds the MTU limit %u", (unsigned long long)len,
                (unsigned)(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX));
    }
    if (off > b->out_len || len > b->out_len - off) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "read of %llu bytes at %llu is beyond the %lu-byte output",
                (unsigned long long)len, (unsigned long long)off, (unsigned long)b->out_len);
    }
    (void)cbor_encode_byte_string(result, b->out + off, (size_t)len);
cleanup:
    return st;
}
