/* Op handlers, one file per protocol module (ops/op_<module>.c). */
#ifndef ML_OPS_H
#define ML_OPS_H

#include "ml_dispatch.h"

/* sys */
int ml_op_hello(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_echo(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_stats(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_free(struct ml_call *call, CborValue *args, CborEncoder *result);

/* hash */
int ml_op_hash_new(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hash_update(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hash_digest(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hash_copy(struct ml_call *call, CborValue *args, CborEncoder *result);
int ml_op_hash_oneshot(struct ml_call *call, CborValue *args, CborEncoder *result);

/* The hash algorithm ids (ids.json hash_algs) compiled into this firmware,
 * in id order; returns how many were written to out (at most cap). */
size_t ml_hash_list(uint32_t *out, size_t cap);

#endif /* ML_OPS_H */
