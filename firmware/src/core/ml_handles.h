/*
 * The handle table: host-chosen handles naming device objects allocated
 * from the Mbed TLS heap. Each slot has a generation counter, bumped on
 * every free, so a slot reference held by firmware notices a free.
 */
#ifndef ML_HANDLES_H
#define ML_HANDLES_H

#include <stddef.h>
#include <stdint.h>

#include "core/ml_call.h"

enum ml_handle_type {
    ML_HT_NONE = 0,
    ML_HT_HASH = 1,
    ML_HT_HMAC = 2,
    ML_HT_CIPHER = 3,
    ML_HT_SYMKEY = 4,      /* device-held symmetric key (ops/op_key.c) */
    ML_HT_CIPHER_BUF = 5,  /* buffered one-shot AEAD/XTS context (ops/op_cipher_buf.c) */
    ML_HT_PK = 6,          /* RSA or EC key, public or private (ops/op_pk.c, ml_pk.h) */
    ML_HT_KEX = 7,         /* ECDH or DH key-exchange context (ops/op_kex.c) */
    ML_HT_CMAC = 8,        /* CMAC context (ops/op_cmac.c) */
    ML_HT_X509_CRT = 9,    /* parsed certificate chain (ops/op_x509_crt.c, ml_x509.h) */
    ML_HT_X509_CSR = 10,   /* parsed certificate request (ops/op_x509_csr.c) */
    ML_HT_X509_CRL = 11,   /* parsed certificate revocation list (ops/op_x509_crt.c) */
    ML_HT_X509_TRUST = 12, /* trust store: CA certificates and CRLs (ops/op_x509_trust.c) */
    ML_HT_TLS_CONF = 13,   /* TLS configuration (ops/op_tls_conf.c, ml_tls.h) */
    ML_HT_TLS = 14,        /* TLS session: Mbed TLS context and its network rings (ops/op_tls.c) */
};

typedef void (*ml_destructor_fn)(void *obj);

struct ml_handle_ref {
    uint32_t slot;
    uint32_t generation;
};

void ml_handles_init(void);
/* Frees every live object (reset, shutdown). */
void ml_handles_free_all(void);
uint32_t ml_handles_used(void);

/* Looks up a live handle of `type`: bad_handle / wrong_handle_type. */
int ml_handle_get(struct ml_call *call, uint32_t handle, uint8_t type, void **obj);
/* What an object of `type` is called in messages ("digest context", ...). */
const char *ml_handle_type_name(uint8_t type);
/* Looks up a live handle of any type (obj_wrap): bad_handle. */
int ml_handle_lookup(struct ml_call *call, uint32_t handle, uint8_t *type, void **obj);
/* Allocates a zeroed object of `size` bytes under a new handle:
 * handle_in_use / too_many_handles / out_of_memory. `dtor` (may be NULL)
 * releases what the object owns; it runs before the memory is zeroised. */
int ml_handle_create(struct ml_call *call, uint32_t handle, uint8_t type, size_t size, ml_destructor_fn dtor,
                     void **obj);
/* Frees a live handle of any type: bad_handle. */
int ml_handle_free(struct ml_call *call, uint32_t handle);

/* Slot references for firmware code that keeps an object across calls. */
int ml_handle_ref(uint32_t handle, struct ml_handle_ref *ref); /* 0 or -1 */
void *ml_handle_ref_get(const struct ml_handle_ref *ref);      /* NULL once freed */

/* Test hook: called with the object's memory after it was zeroised and
 * before it goes back to the heap. NULL in production. */
extern void (*ml_handle_free_hook)(const void *obj, size_t size);

#endif /* ML_HANDLES_H */
