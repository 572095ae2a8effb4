/* rng module: bytes from the device CTR_DRBG and host-assisted reseeds. */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>

#include "core/ml_config.h"
#include "core/ml_rng.h"
#include "ops/ml_ops.h"

int ml_op_rng_bytes(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t n = 0;
    int st = ml_arg_uint(call, args, 1, &n);
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (n > ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX) {
        return ml_fail(call, ML_STATUS_TOO_LARGE, "arg 1: %llu bytes exceed the MTU limit %u", (unsigned long long)n,
                       (unsigned)(ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX));
    }
    size_t len = (size_t)n;
    uint8_t *buf = mbedtls_calloc(1, len > 0 ? len : 1);
    if (buf == NULL) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu random bytes", (unsigned long)len);
    }
    int ret = 0;
    /* CTR_DRBG serves at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes per call. */
    for (size_t off = 0; off < len && ret == 0; off += MBEDTLS_CTR_DRBG_MAX_REQUEST) {
        size_t part = len - off < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len - off : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        ret = ml_rng_random(NULL, buf + off, part);
    }
    if (ret == 0) {
        (void)cbor_encode_byte_string(result, buf, len);
    }
    mbedtls_platform_zeroize(buf, len > 0 ? len : 1);
    mbedtls_free(buf);
    return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "ctr_drbg_random");
}

int ml_op_rng_reseed(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const uint8_t *data = NULL;
    size_t len = 0;
    int st = ml_arg_bytes(call, args, 1, &data, &len);
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (len > ML_RNG_RESEED_MAX) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 1: %lu bytes exceed rng_reseed_max (%u)", (unsigned long)len,
                       (unsigned)ML_RNG_RESEED_MAX);
    }
    int ret = ml_rng_reseed(data, len);
    if (ret != 0) {
        return ml_fail_mbedtls(call, ret, "ctr_drbg_reseed");
    }
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}
