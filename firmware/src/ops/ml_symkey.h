/*
 * Device-held symmetric keys (ops/op_key.c): the key module's interface to
 * the other op modules. Cipher and HMAC ops read a key argument with
 * ml_arg_key; key slots and key exchange create keys with ml_symkey_create.
 */
#ifndef ML_SYMKEY_H
#define ML_SYMKEY_H

#include <cbor.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

/* A symmetric key argument: a byte string, or the handle of a live
 * device-held key (bad_handle / wrong_handle_type). `data` points into the
 * rx buffer or into the key object; it stays valid for the current call. */
int ml_arg_key(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **data, size_t *len);

/* The bytes of a device-held key object (ML_HT_SYMKEY); returns ML_STATUS_OK. */
int ml_symkey_bytes(const void *obj, const uint8_t **data, size_t *len);

/* Creates a device-held key (ML_HT_SYMKEY) from bytes under a new handle
 * (key slots, key exchange); returns a status. */
int ml_symkey_create(struct ml_call *call, uint32_t handle, const uint8_t *key, size_t len);

#endif /* ML_SYMKEY_H */
