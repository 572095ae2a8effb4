/*
 * The dispatcher: decodes `[id, op, args...]`, checks arity against a const
 * op table, calls the handler and writes the response. Only the dispatcher
 * writes error responses; handlers return a status (enum ml_status) and may
 * set call->mbedtls_code and a detail message with ml_fail().
 */
#ifndef ML_DISPATCH_H
#define ML_DISPATCH_H

#include <cbor.h>
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

struct ml_op_entry {
    uint32_t op;
    uint8_t min_args;
    uint8_t max_args;
    ml_handler_fn handler;
};

/* Sets the detail message; returns status (for `return ml_fail(...)`). */
int ml_fail(struct ml_call *call, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Maps an Mbed TLS error to out_of_memory or crypto_error with its code. */
int ml_fail_mbedtls(struct ml_call *call, int code, const char *what);

/* Argument readers: `pos` is the 1-based position (for messages); each
 * advances `args` past the argument. They return a status. */
int ml_arg_uint(struct ml_call *call, CborValue *args, unsigned pos, uint64_t *out);
int ml_arg_handle(struct ml_call *call, CborValue *args, unsigned pos, uint32_t *out);
int ml_arg_bytes(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **data, size_t *len);
/* A symmetric key argument: a byte string, or the handle of a live
 * device-held key (bad_handle / wrong_handle_type). `data` points into the
 * rx buffer or into the key object; it stays valid for the current call. */
int ml_arg_key(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **data, size_t *len);

/* Handles one frame body (CBOR message + CRC already checked and removed).
 * Writes the response body (CBOR + CRC) into tx[0..tx_cap) and returns its
 * length; returns 0 when the frame is not a request (drop: bad_message). */
size_t ml_dispatch(const uint8_t *msg, size_t len, uint8_t *tx, size_t tx_cap);

/* The op table (for tests and introspection). */
extern const struct ml_op_entry ml_op_table[];
extern const size_t ml_op_table_len;

#endif /* ML_DISPATCH_H */
