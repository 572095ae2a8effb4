/*
 * mpi module: big numbers from the device DRBG (spec.md 7.3). Numbers
 * travel as unsigned big-endian byte strings; arithmetic is the host's.
 */
#include <mbedtls/bignum.h>

#include "core/ml_busy.h"
#include "ops/ml_ops.h"

#define PRIME_FLAGS_KNOWN (MBEDTLS_MPI_GEN_PRIME_FLAG_DH | MBEDTLS_MPI_GEN_PRIME_FLAG_LOW_ERR)

/* Encodes x as `len` big-endian bytes (heap buffer, zeroised after). */
static int encode_mpi(struct ml_call *call, const mbedtls_mpi *x, size_t len, CborEncoder *result)
{
    uint8_t *buf = ml_buf_alloc(len);
    int st = ML_STATUS_OK;
    if (buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte number", (unsigned long)len);
    }
    ML_CHK_TLS(call, mbedtls_mpi_write_binary(x, buf, len), "mpi_write_binary");
    (void)cbor_encode_byte_string(result, buf, len);
cleanup:
    ml_buf_free(buf, len);
    return st;
}

int ml_op_mpi_prime(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t bytes = 0, flags = 0;
    mbedtls_mpi x;
    int st = ML_STATUS_OK;
    mbedtls_mpi_init(&x);
    ML_CHK(ml_arg_uint(call, args, 1, &bytes));
    ML_CHK(ml_arg_uint(call, args, 2, &flags));
    if (bytes < 1 || bytes > ML_MPI_BYTES_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 1: a prime must be 1..%u bytes, got %llu",
                (unsigned)ML_MPI_BYTES_MAX, (unsigned long long)bytes);
    }
    if ((flags & ~(uint64_t)PRIME_FLAGS_KNOWN) != 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: flags are 1 (safe prime) and 2 (low error), got %llu",
                (unsigned long long)flags);
    }
    ML_CHK_TLS(call, mbedtls_mpi_gen_prime(&x, (size_t)bytes * 8, (int)flags, ml_busy_rng, NULL), "mpi_gen_prime");
    ML_CHK(encode_mpi(call, &x, (size_t)bytes, result));
cleanup:
    mbedtls_mpi_free(&x);
    return st;
}

int ml_op_mpi_random(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t min = 0;
    const uint8_t *max = NULL;
    size_t max_len = 0, n = 0;
    uint8_t min_be[8];
    mbedtls_mpi lo, hi, range, x;
    int st = ML_STATUS_OK;
    mbedtls_mpi_init(&lo);
    mbedtls_mpi_init(&hi);
    mbedtls_mpi_init(&range);
    mbedtls_mpi_init(&x);
    ML_CHK(ml_arg_uint(call, args, 1, &min));
    ML_CHK(ml_arg_bytes(call, args, 2, &max, &max_len));
    if (max_len < 1 || max_len > ML_MPI_BYTES_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: max must be 1..%u bytes, got %lu", (unsigned)ML_MPI_BYTES_MAX,
                (unsigned long)max_len);
    }
    for (size_t i = 0; i < sizeof min_be; i++) {
        min_be[i] = (uint8_t)(min >> (56 - 8 * i));
    }
    /* x = lo + uniform [0, hi - lo): mbedtls_mpi_random's own minimum is a
     * signed limb, too small for a 64-bit min on 32-bit targets. */
    ML_CHK_TLS(call, mbedtls_mpi_read_binary(&lo, min_be, sizeof min_be), "mpi_random");
    ML_CHK_TLS(call, mbedtls_mpi_read_binary(&hi, max, max_len), "mpi_random");
    if (mbedtls_mpi_cmp_mpi(&hi, &lo) <= 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "max must be greater than min");
    }
    ML_CHK_TLS(call, mbedtls_mpi_sub_mpi(&range, &hi, &lo), "mpi_random");
    ML_CHK_TLS(call, mbedtls_mpi_random(&x, 0, &range, ml_busy_rng, NULL), "mpi_random");
    ML_CHK_TLS(call, mbedtls_mpi_add_mpi(&x, &x, &lo), "mpi_random");
    n = mbedtls_mpi_size(&x);
    ML_CHK(encode_mpi(call, &x, n == 0 ? 1 : n, result));
cleanup:
    mbedtls_mpi_free(&lo);
    mbedtls_mpi_free(&hi);
    mbedtls_mpi_free(&range);
    mbedtls_mpi_free(&x);
    return st;
}
