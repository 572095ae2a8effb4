/*
 * mbedtls_bench: the raw-compute baseline of `npm run bench`. Calls Mbed TLS
 * directly, built from the very library the native firmware links
 * (build/native/libml_mbedtls.a: the sources, include dirs, defines and
 * config of firmware/sources.json), with the firmware's allocator (a
 * memory_buffer_alloc heap) and its DRBG (CTR_DRBG); the platform hooks are
 * bench_platform.h's. Prints one JSON object.
 *
 *   mbedtls_bench [SECONDS_PER_CASE]
 */
#include <mbedtls/cipher.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/md.h>
#include <mbedtls/memory_buffer_alloc.h>
#include <mbedtls/platform_time.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_platform.h"

#define HEAP_SIZE (512u * 1024u)
#define BULK_LEN  16384u

static _Alignas(16) unsigned char heap[HEAP_SIZE];
static unsigned char bulk_in[BULK_LEN];
static unsigned char bulk_out[BULK_LEN + 16];
static double seconds_per_case = 0.5;
static mbedtls_entropy_context entropy;
static int first_field = 1;

static void check(int ret, const char *what)
{
    if (ret != 0) {
        fprintf(stderr, "mbedtls_bench: %s failed: -0x%04x\n", what, (unsigned)-ret);
        exit(1);
    }
}

static void field(const char *name, double value)
{
    printf("%s\n  \"%s\": %.6g", first_field ? "{" : ",", name, value);
    first_field = 0;
}

/* Runs fn in batches until seconds_per_case has passed; returns calls per second. */
#define RATE(expr)                             \
    ({                                         \
        double t0_ = now_s(), t_ = t0_;        \
        unsigned long n_ = 0;                  \
        do {                                   \
            for (int i_ = 0; i_ < 8; i_++) {   \
                expr;                          \
            }                                  \
            n_ += 8;                           \
            t_ = now_s();                      \
        } while (t_ - t0_ < seconds_per_case); \
        (double)n_ / (t_ - t0_);               \
    })

static int hmac32(const mbedtls_md_info_t *md, const unsigned char *key, const unsigned char *msg, unsigned char *out)
{
    return mbedtls_md_hmac(md, key, 32, msg, 32, out);
}

static void bench_digests(void)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    unsigned char msg[32] = {1}, key[32] = {2}, out[32];
    field("sha256_32B_ops", RATE(check(mbedtls_md(md, msg, sizeof msg, out), "md")));
    double r = RATE(check(mbedtls_md(md, bulk_in, BULK_LEN, out), "md"));
    field("sha256_MBps", r * BULK_LEN / 1e6);
    field("hmac_sha256_32B_ops", RATE(check(hmac32(md, key, msg, out), "hmac")));
}

static void bench_ciphers(void)
{
    unsigned char key[32], iv[16] = {0}, tag[16];
    check(mbedtls_ctr_drbg_random(&drbg, key, sizeof key), "drbg");
    mbedtls_gcm_context gcm;
    mbedtls_gcm_init(&gcm);
    check(mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256), "gcm_setkey");
    double r = RATE(check(mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, BULK_LEN, iv, 12, NULL, 0, bulk_in,
                                                    bulk_out, sizeof tag, tag),
                          "gcm"));
    field("aes256_gcm_MBps", r * BULK_LEN / 1e6);
    mbedtls_gcm_free(&gcm);

    mbedtls_cipher_context_t ctr;
    mbedtls_cipher_init(&ctr);
    check(mbedtls_cipher_setup(&ctr, mbedtls_cipher_info_from_type(MBEDTLS_CIPHER_AES_256_CTR)), "cipher_setup");
    check(mbedtls_cipher_setkey(&ctr, key, 256, MBEDTLS_ENCRYPT), "cipher_setkey");
    check(mbedtls_cipher_set_iv(&ctr, iv, 16), "cipher_set_iv");
    size_t olen = 0;
    r = RATE(check(mbedtls_cipher_update(&ctr, bulk_in, BULK_LEN, bulk_out, &olen), "cipher_update"));
    field("aes256_ctr_MBps", r * BULK_LEN / 1e6);
    mbedtls_cipher_free(&ctr);
    mbedtls_platform_zeroize(key, sizeof key);
}

static void bench_ecdsa(void)
{
    mbedtls_ecdsa_context ec;
    mbedtls_ecdsa_init(&ec);
    check(mbedtls_ecdsa_genkey(&ec, MBEDTLS_ECP_DP_SECP256R1, mbedtls_ctr_drbg_random, &drbg), "ecdsa_genkey");
    unsigned char hash[32] = {3}, sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t slen = 0;
    field("ecdsa_p256_sign_ops",
          RATE(check(mbedtls_ecdsa_write_signature(&ec, MBEDTLS_MD_SHA256, hash, sizeof hash, sig, sizeof sig, &slen,
                                                   mbedtls_ctr_drbg_random, &drbg),
                     "ecdsa_sign")));
    field("ecdsa_p256_verify_ops",
          RATE(check(mbedtls_ecdsa_read_signature(&ec, hash, sizeof hash, sig, slen), "ecdsa_verify")));
    mbedtls_ecdsa_free(&ec);
}

static void bench_rsa(void)
{
    mbedtls_rsa_context rsa;
    mbedtls_rsa_init(&rsa);
    double t0 = now_s();
    check(mbedtls_rsa_gen_key(&rsa, mbedtls_ctr_drbg_random, &drbg, 2048, 65537), "rsa_gen_key");
    field("rsa2048_keygen_s", now_s() - t0);
    unsigned char hash[32] = {4}, sig[256];
    field("rsa2048_sign_ops", RATE(check(mbedtls_rsa_pkcs1_sign(&rsa, mbedtls_ctr_drbg_random, &drbg, MBEDTLS_MD_SHA256,
                                                                sizeof hash, hash, sig),
                                         "rsa_sign")));
    mbedtls_rsa_free(&rsa);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        seconds_per_case = strtod(argv[1], NULL);
        if (!(seconds_per_case > 0.0)) {
            fprintf(stderr, "usage: %s [SECONDS_PER_CASE]\n", argv[0]);
            return 2;
        }
    }
    mbedtls_memory_buffer_alloc_init(heap, sizeof heap);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    check(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0), "ctr_drbg_seed");
    for (size_t i = 0; i < BULK_LEN; i++) {
        bulk_in[i] = (unsigned char)(i * 31u + 7u);
    }
    bench_digests();
    bench_ciphers();
    bench_ecdsa();
    bench_rsa();
    printf("\n}\n");
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_memory_buffer_alloc_free();
    return 0;
}
