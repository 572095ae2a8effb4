/*
 * slot module: persistent key slots (spec.md 7.4) over ml_keystore.
 *
 * A record's data:
 *   symmetric key (kind 2): the key bytes; flags 0 (never exportable).
 *   pk key (kind 1): type u8 | bits u16 | curve u16 (0xFFFF = none) |
 *     private u8 | public DER length u16 | public DER (SubjectPublicKeyInfo)
 *     | key DER (ml_pk_serialise: the private key when there is one);
 *     flags = the pk flags. The description and the public key are kept
 *     beside the key so slot_list needs no parsing of private material.
 * Buffers holding key material come from the Mbed TLS heap and are zeroised
 * before they are freed.
 */
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_symkey.h"
#include "store/ml_keystore.h"

#define PK_PREFIX    8u
#define PUBLIC_MAX   1024u
#define NO_CURVE     0xFFFFu
#define INFO_SCRATCH 96u

static int store_status(struct ml_call *call, int st, uint32_t slot)
{
    switch (st) {
    case ML_STATUS_OK:
        return st;
    case ML_STATUS_BAD_ARGUMENT:
        return ml_fail(call, st, "arg 1: slot must be 0..%ld, got %lu", (long)ml_keystore_slots() - 1,
                       (unsigned long)slot);
    case ML_STATUS_SLOT_EMPTY:
        return ml_fail(call, st, "slot %lu is empty", (unsigned long)slot);
    case ML_STATUS_SLOT_IN_USE:
        return ml_fail(call, st, "slot %lu already holds a key (delete it or overwrite)", (unsigned long)slot);
    case ML_STATUS_STORAGE_ERROR:
        return ml_fail(call, st, "key store (%s): medium failure or corrupt record in slot %lu",
                       ml_keystore_medium() != NULL ? ml_keystore_medium()->kind : "none", (unsigned long)slot);
    default:
        return st;
    }
}

static int arg_slot(struct ml_call *call, CborValue *args, unsigned pos, uint32_t *slot)
{
    uint64_t v = 0;
    int st = ml_arg_uint(call, args, pos, &v);
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (v >= ml_keystore_slots()) {
        if (ml_keystore_slots() == 0) {
            return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg %u: this device has no key slots", pos);
        }
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg %u: slot must be 0..%lu, got %llu", pos,
                       (unsigned long)ml_keystore_slots() - 1, (unsigned long long)v);
    }
    *slot = (uint32_t)v;
    return ML_STATUS_OK;
}

static int arg_label(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **label, size_t *len)
{
    if (!cbor_value_is_text_string(args) || !cbor_value_is_length_known(args)) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a definite text string", pos);
    }
    CborValue next = *args;
    const char *text = NULL;
    CborError err = cbor_value_begin_string_iteration(&next);
    if (err == CborNoError) {
        err = cbor_value_get_text_string_chunk(&next, &text, len, &next);
    }
    if (err == CborErrorNoMoreStringChunks) { /* the empty string */
        text = "";
        *len = 0;
        err = CborNoError;
    } else if (err == CborNoError) {
        const char *end = NULL;
        size_t dummy = 0;
        err = cbor_value_get_text_string_chunk(&next, &end, &dummy, &next);
        err = err == CborErrorNoMoreStringChunks ? CborNoError : CborErrorIllegalType;
    }
    if (err == CborNoError) {
        err = cbor_value_finish_string_iteration(&next);
    }
    if (err != CborNoError) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg %u: bad text string (%s)", pos, cbor_error_string(err));
    }
    if (*len > ML_SLOT_LABEL_MAX) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg %u: label must be at most %u bytes, got %lu", pos,
                       (unsigned)ML_SLOT_LABEL_MAX, (unsigned long)*len);
    }
    *label = (const uint8_t *)text;
    *args = next;
    return ML_STATUS_OK;
}

static void put_u16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

/* Reads type, bits, curve and private out of the pk-info map FW-PK encodes,
 * so the record keeps them without knowing the key's internals. */
static int pk_describe(struct ml_call *call, void *obj, uint8_t prefix[PK_PREFIX])
{
    uint8_t scratch[INFO_SCRATCH];
    CborEncoder enc;
    cbor_encoder_init(&enc, scratch, sizeof scratch, 0);
    int st = ml_pk_encode_info(call, obj, &enc);
    if (st != ML_STATUS_OK) {
        return st;
    }
    CborParser parser;
    CborValue map, v;
    uint64_t type = 0, bits = 0, curve = NO_CURVE;
    bool priv = false;
    CborError err = cbor_parser_init(scratch, cbor_encoder_get_buffer_size(&enc, scratch), 0, &parser, &map);
    if (err == CborNoError && !cbor_value_is_map(&map)) {
        err = CborErrorIllegalType;
    }
    static const char *const keys[] = {"type", "bits", "curve", "private"};
    for (size_t i = 0; i < 4 && err == CborNoError; i++) {
        err = cbor_value_map_find_value(&map, keys[i], &v);
        if (err != CborNoError) {
            break;
        }
        if (cbor_value_is_unsigned_integer(&v)) {
            (void)cbor_value_get_uint64(&v, i == 0 ? &type : i == 1 ? &bits : &curve);
        } else if (cbor_value_is_boolean(&v)) {
            (void)cbor_value_get_boolean(&v, &priv);
        } else if (!cbor_value_is_null(&v)) {
            err = CborErrorIllegalType;
        }
    }
    if (err != CborNoError || type > 0xFF || bits > 0xFFFF || curve > 0xFFFF) {
        return ml_fail(call, ML_STATUS_INTERNAL_ERROR, "pk_info did not describe the key");
    }
    prefix[0] = (uint8_t)type;
    put_u16(prefix + 1, (size_t)bits);
    put_u16(prefix + 3, (size_t)curve);
    prefix[5] = priv ? 1 : 0;
    return ML_STATUS_OK;
}

/* Serialises a pk object into a new heap buffer (PK_PREFIX + public + key). */
static int pk_record(struct ml_call *call, void *obj, uint8_t **out, size_t *out_len, size_t *cap_out)
{
    size_t cap = PK_PREFIX + PUBLIC_MAX + ML_SLOT_RECORD_MAX;
    uint8_t *buf = mbedtls_calloc(1, cap);
    if (buf == NULL) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte slot record", (unsigned long)cap);
    }
    size_t pub_len = 0, key_len = 0;
    int st = pk_describe(call, obj, buf);
    if (st == ML_STATUS_OK) {
        st = ml_pk_write_public(call, obj, buf + PK_PREFIX, PUBLIC_MAX, &pub_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_pk_serialise(call, obj, buf + PK_PREFIX + pub_len, ML_SLOT_RECORD_MAX, &key_len);
        if (st == ML_STATUS_TOO_LARGE) {
            st = ml_fail(call, ML_STATUS_STORAGE_FULL, "the key's DER is larger than %u bytes (slot_record_max)",
                         (unsigned)ML_SLOT_RECORD_MAX);
        }
    }
    if (st != ML_STATUS_OK) {
        mbedtls_platform_zeroize(buf, cap);
        mbedtls_free(buf);
        return st;
    }
    put_u16(buf + 6, pub_len);
    *out = buf;
    *out_len = PK_PREFIX + pub_len + key_len;
    *cap_out = cap;
    return ML_STATUS_OK;
}

int ml_op_slot_store(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, slot = 0;
    const uint8_t *label = NULL;
    size_t label_len = 0;
    bool overwrite = false;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = arg_slot(call, args, 2, &slot);
    }
    if (st == ML_STATUS_OK) {
        st = arg_label(call, args, 3, &label, &label_len);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_bool(call, args, 4, &overwrite);
    }
    void *obj = NULL;
    bool symmetric = false;
    if (st == ML_STATUS_OK) {
        /* A symmetric key, else a pk key (whose lookup names the error). */
        symmetric = ml_handle_get(call, handle, ML_HT_SYMKEY, &obj) == ML_STATUS_OK;
        if (!symmetric) {
            st = ml_pk_get(call, handle, &obj);
        }
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    struct ml_ks_info info;
    if (!overwrite && ml_keystore_info(slot, &info) == ML_STATUS_OK) {
        return store_status(call, ML_STATUS_SLOT_IN_USE, slot); /* before serialising anything */
    }
    if (symmetric) {
        const uint8_t *key = NULL;
        size_t key_len = 0;
        (void)ml_symkey_bytes(obj, &key, &key_len);
        st = ml_keystore_put(slot, ML_KS_KIND_SYMMETRIC, 0, label, label_len, key, key_len, overwrite);
    } else {
        uint8_t *rec = NULL;
        size_t rec_len = 0, cap = 0;
        st = pk_record(call, obj, &rec, &rec_len, &cap);
        if (st != ML_STATUS_OK) {
            return st;
        }
        st = ml_keystore_put(slot, ML_KS_KIND_PK, (uint8_t)(ml_pk_flags(obj) & ML_PK_FLAG_EXPORTABLE), label, label_len,
                             rec, rec_len, overwrite);
        mbedtls_platform_zeroize(rec, cap);
        mbedtls_free(rec);
    }
    if (st == ML_STATUS_STORAGE_FULL) {
        return ml_fail(call, st, "the key store has no room for this key even after compaction");
    }
    if (st != ML_STATUS_OK) {
        return store_status(call, st, slot);
    }
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

/* Reads a slot's record into a new heap buffer (label first, then data). */
static int read_slot(struct ml_call *call, uint32_t slot, struct ml_ks_info *info, uint8_t **buf, size_t *cap)
{
    int st = ml_keystore_info(slot, info);
    if (st != ML_STATUS_OK) {
        return store_status(call, st, slot);
    }
    *cap = (size_t)info->label_len + info->data_len;
    *buf = mbedtls_calloc(1, *cap);
    if (*buf == NULL) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte slot record", (unsigned long)*cap);
    }
    st = ml_keystore_read(slot, *buf, *buf + info->label_len);
    if (st == ML_STATUS_OK && info->kind == ML_KS_KIND_PK &&
        (info->data_len < PK_PREFIX || PK_PREFIX + get_u16(*buf + info->label_len + 6) > info->data_len)) {
        st = ML_STATUS_STORAGE_ERROR;
    }
    if (st == ML_STATUS_OK && info->kind != ML_KS_KIND_PK && info->kind != ML_KS_KIND_SYMMETRIC) {
        st = ML_STATUS_STORAGE_ERROR;
    }
    if (st != ML_STATUS_OK) {
        mbedtls_platform_zeroize(*buf, *cap);
        mbedtls_free(*buf);
        *buf = NULL;
        return store_status(call, st, slot);
    }
    return ML_STATUS_OK;
}

static CborError put_key(CborEncoder *map, const char *key) { return cbor_encode_text_stringz(map, key); }

/* Encodes the slot-info map of a record read by read_slot. */
static CborError encode_info(CborEncoder *enc, uint32_t slot, const struct ml_ks_info *info, const uint8_t *buf)
{
    const uint8_t *data = buf + info->label_len;
    bool pk = info->kind == ML_KS_KIND_PK;
    size_t pub_len = pk ? get_u16(data + 6) : 0;
    CborEncoder map, pkm;
    CborError err = cbor_encoder_create_map(enc, &map, 7);
    err |= put_key(&map, "slot");
    err |= cbor_encode_uint(&map, slot);
    err |= put_key(&map, "label");
    err |= cbor_encode_text_string(&map, (const char *)buf, info->label_len);
    err |= put_key(&map, "kind");
    err |= cbor_encode_uint(&map, info->kind);
    err |= put_key(&map, "exportable");
    err |= cbor_encode_boolean(&map, (info->flags & ML_PK_FLAG_EXPORTABLE) != 0);
    err |= put_key(&map, "pk");
    if (pk) {
        uint32_t curve = get_u16(data + 3);
        err |= cbor_encoder_create_map(&map, &pkm, 5);
        err |= put_key(&pkm, "type");
        err |= cbor_encode_uint(&pkm, data[0]);
        err |= put_key(&pkm, "bits");
        err |= cbor_encode_uint(&pkm, get_u16(data + 1));
        err |= put_key(&pkm, "curve");
        err |= curve == NO_CURVE ? cbor_encode_null(&pkm) : cbor_encode_uint(&pkm, curve);
        err |= put_key(&pkm, "private");
        err |= cbor_encode_boolean(&pkm, data[5] != 0);
        err |= put_key(&pkm, "exportable");
        err |= cbor_encode_boolean(&pkm, (info->flags & ML_PK_FLAG_EXPORTABLE) != 0);
        err |= cbor_encoder_close_container(&map, &pkm);
    } else {
        err |= cbor_encode_null(&map);
    }
    err |= put_key(&map, "size");
    err |= cbor_encode_uint(&map, pk ? info->data_len - PK_PREFIX - pub_len : info->data_len);
    err |= put_key(&map, "public");
    err |= pk ? cbor_encode_byte_string(&map, data + PK_PREFIX, pub_len) : cbor_encode_null(&map);
    err |= cbor_encoder_close_container(enc, &map);
    return err;
}

int ml_op_slot_load(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t slot = 0, handle = 0;
    int st = arg_slot(call, args, 1, &slot);
    if (st == ML_STATUS_OK) {
        st = ml_arg_handle(call, args, 2, &handle);
    }
    struct ml_ks_info info;
    uint8_t *buf = NULL;
    size_t cap = 0;
    if (st == ML_STATUS_OK) {
        st = read_slot(call, slot, &info, &buf, &cap);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    const uint8_t *data = buf + info.label_len;
    if (info.kind == ML_KS_KIND_SYMMETRIC) {
        st = ml_symkey_create(call, handle, data, info.data_len);
    } else {
        size_t pub_len = get_u16(data + 6);
        st = ml_pk_create_from_der(call, handle, data + PK_PREFIX + pub_len, info.data_len - PK_PREFIX - pub_len,
                                   info.flags & ML_PK_FLAG_EXPORTABLE, NULL);
    }
    if (st == ML_STATUS_OK) {
        (void)encode_info(result, slot, &info, buf);
    }
    mbedtls_platform_zeroize(buf, cap);
    mbedtls_free(buf);
    return st;
}

int ml_op_slot_list(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    (void)args;
    uint32_t used = 0;
    struct ml_ks_info info;
    for (uint32_t s = 0; s < ml_keystore_slots(); s++) {
        int st = ml_keystore_info(s, &info);
        if (st == ML_STATUS_OK) {
            used++;
        } else if (st != ML_STATUS_SLOT_EMPTY) {
            return store_status(call, st, s);
        }
    }
    CborEncoder list;
    CborError err = cbor_encoder_create_array(result, &list, used);
    for (uint32_t s = 0; s < ml_keystore_slots(); s++) {
        if (ml_keystore_info(s, &info) != ML_STATUS_OK) {
            continue;
        }
        uint8_t *buf = NULL;
        size_t cap = 0;
        int st = read_slot(call, s, &info, &buf, &cap);
        if (st != ML_STATUS_OK) {
            return st;
        }
        err |= encode_info(&list, s, &info, buf);
        mbedtls_platform_zeroize(buf, cap);
        mbedtls_free(buf);
    }
    err |= cbor_encoder_close_container(result, &list);
    (void)err; /* the dispatcher checks the encoder (too_large) */
    return ML_STATUS_OK;
}

int ml_op_slot_delete(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t slot = 0;
    int st = arg_slot(call, args, 1, &slot);
    if (st == ML_STATUS_OK) {
        st = store_status(call, ml_keystore_delete(slot), slot);
    }
    if (st == ML_STATUS_OK) {
        (void)cbor_encode_null(result);
    }
    return st;
}
