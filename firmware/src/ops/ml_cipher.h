/*
 * cipher module: symmetric ciphers over mbedtls_cipher.
 *
 * A cipher is named on the wire by a family ("AES", "ARIA", "CAMELLIA",
 * "DES", "DES3", "DES3DBL", "CHACHA20") and a mode ("ECB", "CBC", "CFB",
 * "OFB", "CTR", "GCM", "CCM", "XTS", "STREAM", "CHACHAPOLY"); the key
 * length picks the Mbed TLS cipher. The ops come in three paths, one file
 * each:
 *
 *   op_cipher.c       streaming contexts (cipher_new / cipher_update /
 *                     cipher_finish) for the unauthenticated modes that can
 *                     be split, and cipher_crypt, one frame of any
 *                     unauthenticated mode (XTS: one data unit);
 *   op_cipher_aead.c  cipher_auth_encrypt / cipher_auth_decrypt, one frame
 *                     of an AEAD mode;
 *   op_cipher_buf.c   buffered contexts (cipher_buf_*) for XTS (and AEAD)
 *                     messages the heap can hold twice: the device collects
 *                     the whole message, runs the same one-shot call over
 *                     it and only then lets the host read the output;
 *   op_aead_stream.c  AEAD streams (aead_new / aead_update / aead_finish):
 *                     GCM, CCM and ChaCha20-Poly1305 messages of any length
 *                     in constant device memory, each update answering
 *                     with its output (decryption: plaintext the host must
 *                     hold until aead_finish verified the tag).
 *
 * This header is their shared part (ops/ml_cipher.c): reading the cipher
 * arguments and setting a context up, the update/finish engine (ECB's
 * partial blocks included) and the one-shot AEAD calls.
 */
#ifndef ML_CIPHER_H
#define ML_CIPHER_H

#include <cbor.h>
#include <mbedtls/cipher.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* A cipher context and what the ops keep beside it. */
struct ml_cipher {
    mbedtls_cipher_context_t ctx;
    bool ecb;        /* ECB: the op buffers partial blocks itself */
    bool finished;   /* cipher_finish ran: no more updates */
    uint8_t pending; /* ECB: bytes in `block` */
    uint8_t block[MBEDTLS_MAX_BLOCK_LENGTH];
};

/* Which modes an op serves. */
enum ml_cipher_kind {
    ML_CIPHER_PLAIN,   /* cipher_new, cipher_crypt: the non-AEAD modes */
    ML_CIPHER_AEAD,    /* cipher_auth_encrypt/decrypt */
    ML_CIPHER_BUFFERED /* cipher_buf_*: the AEAD modes and XTS */
};

/* Where the direction comes from: an `encrypt` argument, or the op. */
enum ml_cipher_dir { ML_CIPHER_DIR_ARG, ML_CIPHER_DIR_ENCRYPT, ML_CIPHER_DIR_DECRYPT };

/* What ml_cipher_open read besides the context. */
struct ml_cipher_args {
    const uint8_t *iv; /* into the rx buffer: valid for the current call */
    size_t iv_len;
    const uint8_t *key; /* the key bytes (a held key's too): valid for the current call */
    size_t key_len;
    mbedtls_cipher_id_t block; /* the block cipher (MBEDTLS_CIPHER_ID_CHACHA20 for ChaCha20) */
    bool encrypt;
};

/* Objects of handle type ML_HT_CIPHER_BUF start with one of these bytes:
 * a buffered context (op_cipher_buf.c) or an AEAD stream (op_aead_stream.c). */
enum ml_cipher_obj_kind { ML_CIPHER_OBJ_BUFFERED = 1, ML_CIPHER_OBJ_STREAM = 2 };

/* The inputs of a one-shot AEAD call besides the data. */
struct ml_aead_params {
    const uint8_t *iv;
    size_t iv_len;
    const uint8_t *ad;
    size_t ad_len;
    size_t tag_len;
};

/* Reads the handle (arg 1) of a live ML_HT_CIPHER_BUF object of `kind`:
 * bad_handle, or wrong_handle_type naming the ops the other kind takes. */
int ml_cipher_obj_get(struct ml_call *call, CborValue *args, uint8_t kind, uint32_t *handle, void **obj);

/* An empty context (ml_cipher_free is then safe). */
void ml_cipher_init(struct ml_cipher *c);
/* Frees the context and zeroises all of c (key schedule, ECB block). */
void ml_cipher_free(struct ml_cipher *c);
/* Moves a set-up context into `dst` (a handle object): the context holds
 * pointers to its own heap state only. `src` is left empty. */
void ml_cipher_move(struct ml_cipher *dst, struct ml_cipher *src);

/* Reads [cipher, mode, key, iv] from arg `pos` on, then [encrypt] when
 * `dir` says so, checks that the mode suits `kind` and the IV the mode, and
 * sets up `c` (from ml_cipher_init). */
int ml_cipher_open(struct ml_call *call, CborValue *args, unsigned pos, enum ml_cipher_kind kind,
                   enum ml_cipher_dir dir, struct ml_cipher *c, struct ml_cipher_args *a);

/* Feeds data through c; writes at most len + block size bytes to out. */
int ml_cipher_update(struct ml_call *call, struct ml_cipher *c, const uint8_t *data, size_t len, uint8_t *out,
                     size_t *olen);
/* Ends c (no more updates); writes at most one block to out. */
int ml_cipher_finish(struct ml_call *call, struct ml_cipher *c, uint8_t *out, size_t *olen);
/* Update and finish over the whole input: out needs len + 2 blocks. */
int ml_cipher_crypt_all(struct ml_call *call, struct ml_cipher *c, const uint8_t *in, size_t len, uint8_t *out,
                        size_t *olen);
/* XTS takes at least one 16-byte block (bad_argument); other modes pass. */
int ml_cipher_check_xts(struct ml_call *call, const struct ml_cipher *c, size_t len);
/* The tag lengths the AEAD mode of ctx allows (bad_argument). */
int ml_cipher_check_tag_len(struct ml_call *call, const mbedtls_cipher_context_t *ctx, size_t tag_len);

/* Encrypts in[0..len) into out: ciphertext, then the tag (len + tag_len bytes). */
int ml_cipher_aead_encrypt(struct ml_call *call, mbedtls_cipher_context_t *ctx, const struct ml_aead_params *p,
                           const uint8_t *in, size_t len, uint8_t *out);
/* Decrypts in = ciphertext (len bytes) || tag into out (len bytes), or
 * auth_failed when the tag does not match (out then holds no plaintext to
 * release: the caller zeroises it). */
int ml_cipher_aead_decrypt(struct ml_call *call, mbedtls_cipher_context_t *ctx, const struct ml_aead_params *p,
                           const uint8_t *in, size_t len, uint8_t *out);

#endif /* ML_CIPHER_H */
