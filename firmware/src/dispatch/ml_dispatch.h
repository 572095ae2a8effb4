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

#include "core/ml_call.h"
#include "core/protocol_ids.h"

struct ml_op_entry {
    uint32_t op;
    uint8_t min_args;
    uint8_t max_args;
    ml_handler_fn handler;
};

/* Handles one request message (CBOR; the link has checked and removed the
 * CRC). Writes the response message (CBOR only: the link adds the CRC when
 * it sends it) into tx[0..tx_cap) and returns its length; returns 0 when
 * the message is not a request (the link drops it: bad_message). */
size_t ml_dispatch(const uint8_t *msg, size_t len, uint8_t *tx, size_t tx_cap);

/* The op table (for tests and introspection). */
extern const struct ml_op_entry ml_op_table[];
extern const size_t ml_op_table_len;

#endif /* ML_DISPATCH_H */
