#include "core/ml_rng.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/platform_time.h>
#include <mbedtls/platform_util.h>
#include <stdbool.h>
#if defined(MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG)
#include <psa/crypto.h>
#endif

#include "core/protocol_ids.h"
#include "hal/ml_hal.h"

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static uint8_t wrap_key[ML_RNG_WRAP_KEY_SIZE];
static bool wrap_key_ready;

/* Mbed TLS's hardware entropy hook (MBEDTLS_ENTROPY_HARDWARE_ALT); its
 * prototype lives in a private Mbed TLS header. */
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    (void)data;
    *olen = 0;
    return ml_hal_entropy(output, len, olen) == 0 ? 0 : MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
}

/* MBEDTLS_PLATFORM_MS_TIME_ALT */
mbedtls_ms_time_t mbedtls_ms_time(void) { return (mbedtls_ms_time_t)ml_hal_millis(); }

int ml_rng_init(void)
{
    static const char personalisation[] = "mbedlink device DRBG";
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    int ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, (const unsigned char *)personalisation,
                                    sizeof personalisation - 1);
    if (ret == 0) {
        ret = mbedtls_ctr_drbg_random(&drbg, wrap_key, sizeof wrap_key);
    }
    wrap_key_ready = ret == 0;
    return ret;
}

const uint8_t *ml_rng_wrap_key(void) { return wrap_key_ready ? wrap_key : NULL; }

void ml_rng_free(void)
{
    mbedtls_platform_zeroize(wrap_key, sizeof wrap_key);
    wrap_key_ready = false;
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
}

int ml_rng_mix(const uint8_t *seed, size_t len)
{
    if (len == 0) {
        return 0;
    }
    return mbedtls_ctr_drbg_reseed(&drbg, seed, len);
}

int ml_rng_reseed(const uint8_t *add, size_t len)
{
    _Static_assert(ML_RNG_RESEED_MAX <= MBEDTLS_CTR_DRBG_MAX_SEED_INPUT - MBEDTLS_CTR_DRBG_ENTROPY_LEN,
                   "rng_reseed_max does not fit CTR_DRBG's additional input");
    return mbedtls_ctr_drbg_reseed(&drbg, len > 0 ? add : NULL, len);
}

int ml_rng_random(void *p_rng, unsigned char *out, size_t len)
{
    (void)p_rng;
    return mbedtls_ctr_drbg_random(&drbg, out, len);
}

#if defined(MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG)
/* PSA (TLS 1.3's key schedule and key shares) draws from this same DRBG, so
 * hello seeds and rng_reseed reach it too, and no second entropy/DRBG pair
 * sits in RAM. CTR_DRBG serves at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes
 * a call, so larger requests are served in pieces. */
psa_status_t mbedtls_psa_external_get_random(mbedtls_psa_external_random_context_t *context, uint8_t *output,
                                             size_t output_size, size_t *output_length)
{
    (void)context;
    *output_length = 0;
    size_t done = 0;
    while (done < output_size) {
        size_t n = output_size - done;
        if (n > MBEDTLS_CTR_DRBG_MAX_REQUEST) {
            n = MBEDTLS_CTR_DRBG_MAX_REQUEST;
        }
        if (mbedtls_ctr_drbg_random(&drbg, output + done, n) != 0) {
            return PSA_ERROR_INSUFFICIENT_ENTROPY;
        }
        done += n;
    }
    *output_length = output_size;
    return PSA_SUCCESS;
}
#endif
