/* rng module: bytes from the device CTR_DRBG and host-assisted reseeds. */
#include <mbedtls/ctr_drbg.h>

#include "core/ml_config.h"
#include "core/ml_rng.h"
#include "ops/ml_ops.h"

int ml_op_rng_bytes(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t n = 0;
    size_t len = 0;
    uint8_t *buf = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, 1, &n));
    if (n > ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "arg 1: %llu bytes exceed the MTU limit %u", (unsigned long long)n,
                (unsigned)(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX));
    }
    len = (size_t)n;
    buf = ml_buf_alloc(len);
    if (buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu random bytes", (unsigned long)len);
    }
    /* CTR_DRBG serves at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes per call. */
    for (size_t off = 0; off < len; off += MBEDTLS_CTR_DRBG_MAX_REQUEST) {
        size_t part = len - off < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len - off : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        ML_CHK_TLS(call, ml_rng_random(NULL, buf + off, part), "ctr_drbg_random");
    }
    (void)cbor_encode_byte_string(result, buf, len);
cleanup:
    ml_buf_free(buf, len);
    return st;
}

int ml_op_rng_reseed(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const uint8_t *data = NULL;
    size_t len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_bytes(call, args, 1, &data, &len));
    if (len > ML_RNG_RESEED_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 1: %lu bytes exceed rng_reseed_max (%u)", (unsigned long)len,
                (unsigned)ML_RNG_RESEED_MAX);
    }
    ML_CHK_TLS(call, ml_rng_reseed(data, len), "ctr_drbg_reseed");
    (void)cbor_encode_null(result);
cleanup:
    return st;
}
