#include "core/ml_handles.h"

#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>

#include "core/ml_config.h"

struct slot {
    uint32_t handle; /* 0: free slot */
    uint8_t type;
    uint32_t generation;
    void *obj;
    size_t size;
    ml_destructor_fn dtor;
};

static struct slot table[ML_CFG_MAX_HANDLES];

void (*ml_handle_free_hook)(const void *obj, size_t size);

const char *ml_handle_type_name(uint8_t type)
{
    switch (type) {
    case ML_HT_HASH:
        return "digest context";
    case ML_HT_HMAC:
        return "HMAC context";
    case ML_HT_CIPHER:
        return "cipher context";
    case ML_HT_SYMKEY:
        return "symmetric key";
    case ML_HT_CIPHER_BUF:
        return "buffered cipher context";
    case ML_HT_PK:
        return "pk key";
    case ML_HT_KEX:
        return "key-exchange context";
    case ML_HT_CMAC:
        return "CMAC context";
    case ML_HT_X509_CRT:
        return "certificate chain";
    case ML_HT_X509_CSR:
        return "certificate request";
    case ML_HT_X509_CRL:
        return "CRL";
    case ML_HT_X509_TRUST:
        return "trust store";
    case ML_HT_TLS_CONF:
        return "TLS configuration";
    case ML_HT_TLS:
        return "TLS session";
    default:
        return "object";
    }
}

void ml_handles_init(void)
{
    for (size_t i = 0; i < ML_CFG_MAX_HANDLES; i++) {
        table[i].handle = 0;
        table[i].type = ML_HT_NONE;
        table[i].obj = NULL;
    }
}

static struct slot *find(uint32_t handle)
{
    for (size_t i = 0; i < ML_CFG_MAX_HANDLES; i++) {
        if (table[i].handle == handle && handle != 0) {
            return &table[i];
        }
    }
    return NULL;
}

static void release(struct slot *s)
{
    if (s->dtor != NULL) {
        s->dtor(s->obj);
    }
    mbedtls_platform_zeroize(s->obj, s->size);
    if (ml_handle_free_hook != NULL) {
        ml_handle_free_hook(s->obj, s->size);
    }
    mbedtls_free(s->obj);
    s->obj = NULL;
    s->handle = 0;
    s->type = ML_HT_NONE;
    s->size = 0;
    s->dtor = NULL;
    s->generation++;
}

void ml_handles_free_all(void)
{
    for (size_t i = 0; i < ML_CFG_MAX_HANDLES; i++) {
        if (table[i].handle != 0) {
            release(&table[i]);
        }
    }
}

uint32_t ml_handles_used(void)
{
    uint32_t n = 0;
    for (size_t i = 0; i < ML_CFG_MAX_HANDLES; i++) {
        n += table[i].handle != 0;
    }
    return n;
}

int ml_handle_lookup(struct ml_call *call, uint32_t handle, uint8_t *type, void **obj)
{
    struct slot *s = find(handle);
    int st = ML_STATUS_OK;
    if (s == NULL) {
        ML_FAIL(call, ML_STATUS_BAD_HANDLE, "handle %lu is not live", (unsigned long)handle);
    }
    *type = s->type;
    *obj = s->obj;
cleanup:
    return st;
}

int ml_handle_get(struct ml_call *call, uint32_t handle, uint8_t type, void **obj)
{
    uint8_t live_type = ML_HT_NONE;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_lookup(call, handle, &live_type, &p));
    if (live_type != type) {
        ML_FAIL(call, ML_STATUS_WRONG_HANDLE_TYPE, "handle %lu is not a %s", (unsigned long)handle,
                ml_handle_type_name(type));
    }
    *obj = p;
cleanup:
    return st;
}

int ml_handle_create(struct ml_call *call, uint32_t handle, uint8_t type, size_t size, ml_destructor_fn dtor,
                     void **obj)
{
    struct slot *s = NULL;
    void *p = NULL;
    int st = ML_STATUS_OK;
    if (find(handle) != NULL) {
        ML_FAIL(call, ML_STATUS_HANDLE_IN_USE, "handle %lu is already live", (unsigned long)handle);
    }
    for (size_t i = 0; i < ML_CFG_MAX_HANDLES && s == NULL; i++) {
        if (table[i].handle == 0) {
            s = &table[i];
        }
    }
    if (s == NULL) {
        ML_FAIL(call, ML_STATUS_TOO_MANY_HANDLES, "all %u handles are in use", (unsigned)ML_CFG_MAX_HANDLES);
    }
    p = mbedtls_calloc(1, size);
    if (p == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %s (%lu bytes)", ml_handle_type_name(type),
                (unsigned long)size);
    }
    s->handle = handle;
    s->type = type;
    s->obj = p;
    s->size = size;
    s->dtor = dtor;
    *obj = p;
cleanup:
    return st;
}

int ml_handle_free(struct ml_call *call, uint32_t handle)
{
    struct slot *s = find(handle);
    int st = ML_STATUS_OK;
    if (s == NULL) {
        ML_FAIL(call, ML_STATUS_BAD_HANDLE, "handle %lu is not live", (unsigned long)handle);
    }
    release(s);
cleanup:
    return st;
}

int ml_handle_ref(uint32_t handle, struct ml_handle_ref *ref)
{
    struct slot *s = find(handle);
    if (s == NULL) {
        return -1;
    }
    ref->slot = (uint32_t)(s - table);
    ref->generation = s->generation;
    return 0;
}

void *ml_handle_ref_get(const struct ml_handle_ref *ref)
{
    if (ref->slot >= ML_CFG_MAX_HANDLES) {
        return NULL;
    }
    const struct slot *s = &table[ref->slot];
    return s->handle != 0 && s->generation == ref->generation ? s->obj : NULL;
}
