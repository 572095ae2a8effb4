/*
 * The call layer: what a handler sees of the request it serves. The
 * dispatcher (dispatch/) fills a struct ml_call and calls the handler; the
 * handler reads its arguments with the ml_arg_* readers, reports failures
 * with ml_fail / ml_fail_mbedtls and returns a status (enum ml_status). Only
 * the dispatcher writes error responses.
 *
 * One exit path per handler, in the style of Mbed TLS's MBEDTLS_MPI_CHK:
 *
 *     int ml_op_x(struct ml_call *call, CborValue *args, CborEncoder *result)
 *     {
 *         int st = ML_STATUS_OK;
 *         mbedtls_md_context_t md;
 *         mbedtls_md_init(&md);
 *         ML_CHK(ml_arg_bytes(call, args, 1, &data, &len));
 *         ML_CHK_TLS(call, mbedtls_md_setup(&md, info, 0), "md_setup");
 *         if (len > 64) {
 *             ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 1: at most 64 bytes");
 *         }
 *         ML_CHK(ml_encode_bytes(call, result, out, n));
 *     cleanup:
 *         mbedtls_md_free(&md);
 *         return st;
 *     }
 */
#ifndef ML_CALL_H
#define ML_CALL_H

#include <cbor.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/protocol_ids.h"

#define ML_DETAIL_MAX 96

struct ml_call {
    uint32_t id;
    uint64_t op;
    uint32_t argc;
    int mbedtls_code;           /* raw Mbed TLS error, 0 when none */
    char detail[ML_DETAIL_MAX]; /* "" means: use the status's doc string */
};

/* On success a handler encodes exactly one item into `result` and returns
 * ML_STATUS_OK; `args` points at the first argument (already arity-checked). */
typedef int (*ml_handler_fn)(struct ml_call *call, CborValue *args, CborEncoder *result);

/* Runs a step that returns a status; anything but ML_STATUS_OK leaves it in
 * `st` and jumps to the handler's `cleanup:` label. */
#define ML_CHK(expr)              \
    do {                          \
        st = (expr);              \
        if (st != ML_STATUS_OK) { \
            goto cleanup;         \
        }                         \
    } while (0)

/* Runs an Mbed TLS call; a non-zero return becomes ml_fail_mbedtls(call, ret, what) in `st`, then cleanup. */
#define ML_CHK_TLS(call, expr, what)                       \
    do {                                                   \
        int ml_ret_ = (expr);                              \
        if (ml_ret_ != 0) {                                \
            st = ml_fail_mbedtls((call), ml_ret_, (what)); \
            goto cleanup;                                  \
        }                                                  \
    } while (0)

/* Fails with a status and a printf-style detail (ml_fail's arguments), then cleanup. */
#define ML_FAIL(...)               \
    do {                           \
        st = ml_fail(__VA_ARGS__); \
        goto cleanup;              \
    } while (0)

/* Sets the detail message; returns status (for `return ml_fail(...)`). */
int ml_fail(struct ml_call *call, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Maps an Mbed TLS error to out_of_memory or crypto_error with its code. */
int ml_fail_mbedtls(struct ml_call *call, int code, const char *what);

/* Heap buffers for results and scratch that may hold secrets: at least one
 * byte is allocated (an empty result still gets a valid pointer, which some
 * Mbed TLS calls require). ml_buf_free zeroises the `len` bytes given to
 * ml_buf_alloc, then frees; NULL is fine. */
void *ml_buf_alloc(size_t len);
void ml_buf_free(void *p, size_t len);

/* Argument readers: `pos` is the 1-based position (for messages); each
 * advances `args` past the argument. They return a status. */
int ml_arg_uint(struct ml_call *call, CborValue *args, unsigned pos, uint64_t *out);
int ml_arg_bool(struct ml_call *call, CborValue *args, unsigned pos, bool *out);
int ml_arg_handle(struct ml_call *call, CborValue *args, unsigned pos, uint32_t *out);
int ml_arg_bytes(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **data, size_t *len);

#endif /* ML_CALL_H */
