/*
 * Swapping objects out to the host (ops/op_obj.c, spec.md 7.6): what the
 * digest and HMAC modules give the obj module to serialise and re-create
 * their objects. pk keys and symmetric keys go through their existing seams
 * (ml_pk.h, ml_symkey.h). The state never leaves the device in the clear:
 * op_obj.c wraps it under the per-boot key, so it is read back only by this
 * firmware in this boot.
 */
#ifndef ML_OBJ_H
#define ML_OBJ_H

#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"
#include "ops/ml_hash.h"

/* Writes a live object's state into buf[0..cap); *len is its length.
 * Returns a status. */
typedef int (*ml_obj_save_fn)(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len);
/* Creates an object under a new handle (handle_in_use, too_many_handles,
 * out_of_memory) from state a save function wrote. Returns a status; on
 * failure the handle is free. */
typedef int (*ml_obj_restore_fn)(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len);

/* Digest contexts (ops/op_hash.c): the digest state (ml_md_state_write);
 * at most ML_MD_STATE_MAX bytes. */
int ml_hash_state_save(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len);
int ml_hash_state_restore(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len);

/* HMAC contexts (ops/op_hmac.c): block size (1 byte), K^opad (block size
 * bytes), the inner digest state; at most ML_HMAC_STATE_MAX bytes. */
#define ML_HMAC_STATE_MAX (1u + 144u + ML_MD_STATE_MAX)
int ml_hmac_state_save(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len);
int ml_hmac_state_restore(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len);

#endif /* ML_OBJ_H */
