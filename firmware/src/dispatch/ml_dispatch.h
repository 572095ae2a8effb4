/*
 * The dispatcher: decodes `[id, op, args...]`, checks arity against a const
 * op table, calls the handler and writes the response. Only the dispatcher
 * writes error responses; handlers return a status (enum ml_status) and may
 * set call->mbedtls_code and a detail message with ml_fail().
 */
#ifndef ML_DISPATCH_H
#define ML_DISPATCH_H

#include <cbor.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"
#include "core/protocol_ids.h"

struct ml_op_entry {
    uint32_t op;
    uint8_t min_args;
    uint8_t max_args;
    ml_handler_fn handler;
};

/* One request on its way through the dispatcher, in two steps so that the
 * link can look its id up in the record of answers (link/ml_record.h)
 * before anything runs: ml_dispatch_open reads the id, ml_dispatch_run
 * runs the request. The parser state points into the struct: never copy
 * an open one. */
struct ml_request {
    struct ml_call call; /* call.id once open, call.op once read */
    int status;          /* after ml_dispatch_run: ML_STATUS_OK or the status answered */
    CborParser parser;
    CborValue it; /* the top-level array */
    CborValue el; /* its items, after the id */
    const uint8_t *end;
};

/* Reads the request id of msg[0..len) (CBOR; the link has checked and
 * removed the CRC). False when the message is not a request: no array, or
 * no unsigned id below 2^32 first (the link drops it: bad_message). */
bool ml_dispatch_open(struct ml_request *rq, const uint8_t *msg, size_t len);
/* Runs an open request and writes its response (CBOR only: the link adds
 * the CRC when it sends it) into tx[0..tx_cap); returns its length (0 only
 * if not even an error response fits). */
size_t ml_dispatch_run(struct ml_request *rq, uint8_t *tx, size_t tx_cap);
/* Both steps: the response's length, or 0 when msg is not a request. */
size_t ml_dispatch(const uint8_t *msg, size_t len, uint8_t *tx, size_t tx_cap);

/* The op table (for tests and introspection). */
extern const struct ml_op_entry ml_op_table[];
extern const size_t ml_op_table_len;

#endif /* ML_DISPATCH_H */
