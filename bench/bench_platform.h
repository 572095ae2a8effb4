/*
 * The platform hooks mbedlink_config.h leaves to the program, for the bench
 * programs that link the native build's Mbed TLS without the firmware's
 * core (mbedtls_bench.c, tls_baseline.c): entropy from getrandom(), the
 * millisecond clock, and PSA's random generator (MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG)
 * drawing from the program's CTR_DRBG `drbg`. Included once per program.
 */
#ifndef BENCH_PLATFORM_H
#define BENCH_PLATFORM_H

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/platform_time.h>
#include <psa/crypto.h>
#include <sys/random.h>
#include <time.h>

static mbedtls_ctr_drbg_context drbg;

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    (void)data;
    ssize_t n = getrandom(output, len, 0);
    *olen = n > 0 ? (size_t)n : 0;
    return n < 0 ? MBEDTLS_ERR_ENTROPY_SOURCE_FAILED : 0;
}

psa_status_t mbedtls_psa_external_get_random(mbedtls_psa_external_random_context_t *context, uint8_t *output,
                                             size_t output_size, size_t *output_length)
{
    (void)context;
    if (mbedtls_ctr_drbg_random(&drbg, output, output_size) != 0) {
        return PSA_ERROR_INSUFFICIENT_ENTROPY;
    }
    *output_length = output_size;
    return PSA_SUCCESS;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

mbedtls_ms_time_t mbedtls_ms_time(void) { return (mbedtls_ms_time_t)(now_s() * 1000.0); }

#endif
