/* sys module, the device clock (spec.md 7.9): time_set. */
#include "core/ml_clock.h"
#include "ops/ml_ops.h"

int ml_op_time_set(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t unix_ms = 0;
    int st = ML_STATUS_OK;
    if (call->argc == 1) {
        ML_CHK(ml_arg_uint(call, args, 1, &unix_ms));
        if (unix_ms > (uint64_t)ML_CLOCK_MAX_MS) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 1: %llu ms is after 9999-12-31T23:59:59.999Z",
                    (unsigned long long)unix_ms);
        }
        ml_clock_set_ms((int64_t)unix_ms);
    }
    (void)cbor_encode_uint(result, (uint64_t)ml_clock_now_ms());
cleanup:
    return st;
}
