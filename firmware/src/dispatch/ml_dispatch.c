#include "dispatch/ml_dispatch.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_device.h"

static const char *const status_messages[ML_STATUS_COUNT] = ML_STATUS_MESSAGES_INIT;

/* Op id -> 1 + its place in ml_op_table (0: none), for ids below
 * OP_INDEX_SIZE; built at the first lookup. Any other op is looked for in
 * the table itself. */
#define OP_INDEX_SIZE 256u
static uint8_t op_index[OP_INDEX_SIZE];
static bool op_indexed;

static const struct ml_op_entry *find_op(uint64_t op)
{
    if (!op_indexed) {
        for (size_t i = 0; i < ml_op_table_len && i < UINT8_MAX; i++) {
            if (ml_op_table[i].op < OP_INDEX_SIZE) {
                op_index[ml_op_table[i].op] = (uint8_t)(i + 1);
            }
        }
        op_indexed = true;
    }
    if (op < OP_INDEX_SIZE && op_index[op] != 0) {
        return &ml_op_table[op_index[op] - 1];
    }
    for (size_t i = 0; i < ml_op_table_len; i++) {
        if (ml_op_table[i].op == op) {
            return &ml_op_table[i];
        }
    }
    return NULL;
}

static int check_arity(struct ml_call *call, const struct ml_op_entry *e)
{
    unsigned got = (unsigned)call->argc;
    unsigned op = (unsigned)e->op;
    int st = ML_STATUS_OK;
    if (e->min_args == e->max_args && call->argc != e->min_args) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "op %u takes %u arg%s, got %u", op, e->min_args,
                e->min_args == 1 ? "" : "s", got);
    }
    if (call->argc < e->min_args || call->argc > e->max_args) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "op %u takes %u to %u args, got %u", op, e->min_args, e->max_args, got);
    }
cleanup:
    return st;
}

/* Validates the envelope after the id and runs the handler. `it` is the
 * top-level array, `el` its element iterator positioned after the id. */
static int run(struct ml_call *call, const CborValue *it, CborValue *el, const uint8_t *end, CborEncoder *arr)
{
    CborValue after = *it;
    CborError err = CborNoError;
    size_t n = 0;
    const struct ml_op_entry *e = NULL;
    int st = ML_STATUS_OK;
    if (!cbor_value_is_length_known(it)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "the message must be a definite-length array");
    }
    err = cbor_value_advance(&after);
    if (err != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "malformed CBOR (%s)", cbor_error_string(err));
    }
    if (cbor_value_get_next_byte(&after) != end) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "%lu bytes after the message",
                (unsigned long)(end - cbor_value_get_next_byte(&after)));
    }
    (void)cbor_value_get_array_length(it, &n);
    if (n < 2) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "missing op");
    }
    if (!cbor_value_is_unsigned_integer(el)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "op must be an unsigned integer");
    }
    (void)cbor_value_get_uint64(el, &call->op);
    (void)cbor_value_advance_fixed(el);
    call->argc = (uint32_t)(n - 2);
    e = find_op(call->op);
    if (e == NULL) {
        ML_FAIL(call, ML_STATUS_UNKNOWN_OP, "unknown op %" PRIu64, call->op);
    }
    ML_CHK(check_arity(call, e));
    ml_busy_begin(call->id); /* long handlers send busy events for this id */
    st = e->handler(call, el, arr);
    ml_busy_end();
cleanup:
    return st;
}

/* `[id, status, mbedtls code, message]`; 0 when not even that fits. */
static size_t encode_error(const struct ml_call *call, int status, uint8_t *tx, size_t cap)
{
    const char *msg = call->detail[0] != '\0' ? call->detail : status_messages[status];
    size_t n = 0;
    for (int attempt = 0; attempt < 2 && n == 0; attempt++) {
        CborEncoder enc, arr;
        cbor_encoder_init(&enc, tx, cap, 0);
        CborError err = cbor_encoder_create_array(&enc, &arr, 4);
        err |= cbor_encode_uint(&arr, call->id);
        err |= cbor_encode_uint(&arr, (uint64_t)status);
        err |= cbor_encode_int(&arr, call->mbedtls_code);
        err |= cbor_encode_text_stringz(&arr, msg);
        err |= cbor_encoder_close_container(&enc, &arr);
        n = err == CborNoError ? cbor_encoder_get_buffer_size(&enc, tx) : 0;
        msg = ""; /* the MTU is too small even for the message: send none */
    }
    return n;
}

bool ml_dispatch_open(struct ml_request *rq, const uint8_t *msg, size_t len)
{
    /* Every field of the call but the detail buffer, which is only ever read as a C string. */
    memset(&rq->call, 0, offsetof(struct ml_call, detail));
    rq->call.detail[0] = '\0';
    rq->status = ML_STATUS_OK;
    rq->end = msg + len;
    uint64_t id = 0;
    bool ok = cbor_parser_init(msg, len, 0, &rq->parser, &rq->it) == CborNoError && cbor_value_is_array(&rq->it) &&
              cbor_value_enter_container(&rq->it, &rq->el) == CborNoError && !cbor_value_at_end(&rq->el) &&
              cbor_value_is_unsigned_integer(&rq->el) && cbor_value_get_uint64(&rq->el, &id) == CborNoError &&
              id <= ML_REQUEST_ID_MAX;
    if (ok) {
        rq->call.id = (uint32_t)id;
        (void)cbor_value_advance_fixed(&rq->el);
    }
    return ok;
}

/* Runs the request whose id is rq->call.id and writes its response. */
size_t ml_dispatch_run(struct ml_request *rq, uint8_t *tx, size_t tx_cap)
{
    struct ml_call *call = &rq->call;
    size_t n = 0;
    CborEncoder enc, arr;
    cbor_encoder_init(&enc, tx, tx_cap, 0);
    CborError err = cbor_encoder_create_array(&enc, &arr, 3);
    err |= cbor_encode_uint(&arr, call->id);
    err |= cbor_encode_uint(&arr, ML_STATUS_OK);
    int status = run(call, &rq->it, &rq->el, rq->end, &arr);
    if (status == ML_STATUS_OK) {
        err |= cbor_encoder_close_container_checked(&enc, &arr);
        if (cbor_encoder_get_extra_bytes_needed(&enc) > 0) {
            call->mbedtls_code = 0;
            status = ml_fail(call, ML_STATUS_TOO_LARGE, "result does not fit the MTU");
        } else if (err != CborNoError) {
            status = ml_fail(call, ML_STATUS_INTERNAL_ERROR, "op %" PRIu64 " encoded a bad result (%s)", call->op,
                             cbor_error_string(err));
        } else {
            n = cbor_encoder_get_buffer_size(&enc, tx);
        }
    }
    if (status != ML_STATUS_OK) {
        n = encode_error(call, status, tx, tx_cap);
    }
    rq->status = status;
    if (status == ML_STATUS_OUT_OF_MEMORY) {
        ml_device.oom_answers++;
    }
    return n;
}

size_t ml_dispatch(const uint8_t *msg, size_t len, uint8_t *tx, size_t tx_cap)
{
    struct ml_request rq;
    return ml_dispatch_open(&rq, msg, len) ? ml_dispatch_run(&rq, tx, tx_cap) : 0;
}
