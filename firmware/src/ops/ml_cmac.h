/*
 * CMAC contexts (ops/op_cmac.c) as the obj module swaps them out
 * (ops/op_obj.c, spec.md 7.6): the cipher family (1 byte), the key length
 * (1 byte) and key, then Mbed TLS's CMAC state (chaining value, pending
 * block, pending length). The key is part of the state because a context is
 * re-created by keying a new cipher context; the blob is wrapped under the
 * per-boot key like every other swapped state. At most ML_CMAC_STATE_MAX bytes.
 */
#ifndef ML_CMAC_H
#define ML_CMAC_H

#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* family, key length, key (at most 32), state (16), pending block (16), pending length */
#define ML_CMAC_STATE_MAX (2u + 32u + 16u + 16u + 1u)
int ml_cmac_state_save(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len);
int ml_cmac_state_restore(struct ml_call *call, uint32_t handle, const uint8_t *state, size_t len);

#endif /* ML_CMAC_H */
