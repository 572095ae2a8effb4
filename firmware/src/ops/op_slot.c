/*
 * slot module: persistent key slots (spec.md 7.4) over ml_keystore.
 *
 * A record's kind is the slot kind (ML_SLOT_KIND_*), its data:
 *   symmetric key: the key bytes; flags 0 (never exportable).
 *   pk key: type u8 | bits u16 | curve u16 (0xFFFF = none) |
 *     private u8 | public DER length u16 | public DER (SubjectPublicKeyInfo)
 *     | key DER (ml_pk_serialise: the private key when there is one);
 *     flags = the pk flags. The description and the public key are kept
 *     beside the key so slot_list needs no parsing of private material.
 * Buffers holding key material come from the Mbed TLS heap and are zeroised
 * before they are freed.
 */
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
/* A pk record before it is stored: prefix, public DER, key DER. */
#define PK_RECORD_CAP (PK_PREFIX + PUBLIC_MAX + ML_SLOT_RECORD_MAX)

/* A slot's record in a heap buffer: the label, then the data. */
struct record {
    struct ml_ks_info info;
    uint8_t *buf;
    size_t cap;
};

static void record_free(struct record *rec)
{
    ml_buf_free(rec->buf, rec->cap);
    rec->buf = NULL;
}

/* Sets the detail of a key store status; returns the status. */
static int store_status(struct ml_call *call, int st, uint32_t slot)
{
    switch (st) {
    case ML_STATUS_BAD_ARGUMENT:
        (void)ml_fail(call, st, "arg 1: slot must be 0..%ld, got %lu", (long)ml_keystore_slots() - 1,
                      (unsigned long)slot);
        break;
    case ML_STATUS_SLOT_EMPTY:
        (void)ml_fail(call, st, "slot %lu is empty", (unsigned long)slot);
        break;
    case ML_STATUS_SLOT_IN_USE:
        (void)ml_fail(call, st, "slot %lu already holds a key (delete it or overwrite)", (unsigned long)slot);
        break;
    case ML_STATUS_STORAGE_ERROR:
        (void)ml_fail(call, st, "key store (%s): medium failure or corrupt record in slot %lu",
                      ml_keystore_medium() != NULL ? ml_keystore_medium()->kind : "none", (unsigned long)slot);
        break;
    default:
        break;
    }
    return st;
}

static int arg_slot(struct ml_call *call, CborValue *args, unsigned pos, uint32_t *slot)
{
    uint64_t v = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, pos, &v));
    if (ml_keystore_slots() == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: this device has no key slots", pos);
    }
    if (v >= ml_keystore_slots()) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: slot must be 0..%lu, got %llu", pos,
                (unsigned long)ml_keystore_slots() - 1, (unsigned long long)v);
    }
    *slot = (uint32_t)v;
cleanup:
    return st;
}

static int arg_label(struct ml_call *call, CborValue *args, unsigned pos, const uint8_t **label, size_t *len)
{
    CborValue next = *args;
    const char *text = NULL, *end = NULL;
    size_t dummy = 0;
    CborError err = CborNoError;
    int st = ML_STATUS_OK;
    if (!cbor_value_is_text_string(args) || !cbor_value_is_length_known(args)) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected a definite text string", pos);
    }
    err = cbor_value_begin_string_iteration(&next);
    if (err == CborNoError) {
        err = cbor_value_get_text_string_chunk(&next, &text, len, &next);
    }
    if (err == CborErrorNoMoreStringChunks) { /* the empty string */
        text = "";
        *len = 0;
        err = CborNoError;
    } else if (err == CborNoError) {
        err = cbor_value_get_text_string_chunk(&next, &end, &dummy, &next);
        err = err == CborErrorNoMoreStringChunks ? CborNoError : CborErrorIllegalType;
    }
    if (err == CborNoError) {
        err = cbor_value_finish_string_iteration(&next);
    }
    if (err != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: bad text string (%s)", pos, cbor_error_string(err));
    }
    if (*len > ML_SLOT_LABEL_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: label must be at most %u bytes, got %lu", pos,
                (unsigned)ML_SLOT_LABEL_MAX, (unsigned long)*len);
    }
    *label = (const uint8_t *)text;
    *args = next;
cleanup:
    return st;
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
    static const char *const keys[] = {"type", "bits", "curve", "private"};
    uint8_t scratch[INFO_SCRATCH];
    CborEncoder enc;
    CborParser parser;
    CborValue map, v;
    uint64_t type = 0, bits = 0, curve = NO_CURVE;
    bool priv = false;
    CborError err = CborNoError;
    int st = ML_STATUS_OK;
    cbor_encoder_init(&enc, scratch, sizeof scratch, 0);
    ML_CHK(ml_pk_encode_info(call, obj, &enc));
    err = cbor_parser_init(scratch, cbor_encoder_get_buffer_size(&enc, scratch), 0, &parser, &map);
    if (err == CborNoError && !cbor_value_is_map(&map)) {
        err = CborErrorIllegalType;
    }
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
        ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "pk_info did not describe the key");
    }
    prefix[0] = (uint8_t)type;
    put_u16(prefix + 1, (size_t)bits);
    put_u16(prefix + 3, (size_t)curve);
    prefix[5] = priv ? 1 : 0;
cleanup:
    return st;
}

/* Serialises a pk object into buf (PK_RECORD_CAP bytes): prefix, public
 * DER, key DER; *len is the record's length. */
static int pk_record(struct ml_call *call, void *obj, uint8_t *buf, size_t *len)
{
    size_t pub_len = 0, key_len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(pk_describe(call, obj, buf));
    ML_CHK(ml_pk_write_public(call, obj, buf + PK_PREFIX, PUBLIC_MAX, &pub_len));
    st = ml_pk_serialise(call, obj, buf + PK_PREFIX + pub_len, ML_SLOT_RECORD_MAX, &key_len);
    if (st == ML_STATUS_TOO_LARGE) {
        ML_FAIL(call, ML_STATUS_STORAGE_FULL, "the key's DER is larger than %u bytes (slot_record_max)",
                (unsigned)ML_SLOT_RECORD_MAX);
    }
    ML_CHK(st);
    put_u16(buf + 6, pub_len);
    *len = PK_PREFIX + pub_len + key_len;
cleanup:
    return st;
}

int ml_op_slot_store(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, slot = 0;
    const uint8_t *label = NULL, *data = NULL;
    size_t label_len = 0, data_len = 0;
    bool overwrite = false, symmetric = false;
    void *obj = NULL;
    uint8_t kind = ML_SLOT_KIND_SYMMETRIC, flags = 0;
    struct ml_ks_info info;
    struct record rec = {.buf = NULL, .cap = PK_RECORD_CAP};
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(arg_slot(call, args, 2, &slot));
    ML_CHK(arg_label(call, args, 3, &label, &label_len));
    ML_CHK(ml_arg_bool(call, args, 4, &overwrite));
    /* A symmetric key, else a pk key (whose lookup names the error). */
    symmetric = ml_handle_get(call, handle, ML_HT_SYMKEY, &obj) == ML_STATUS_OK;
    if (!symmetric) {
        ML_CHK(ml_pk_get(call, handle, &obj));
    }
    if (!overwrite && ml_keystore_info(slot, &info) == ML_STATUS_OK) {
        ML_CHK(store_status(call, ML_STATUS_SLOT_IN_USE, slot)); /* before serialising anything */
    }
    if (symmetric) {
        (void)ml_symkey_bytes(obj, &data, &data_len);
    } else {
        rec.buf = ml_buf_alloc(rec.cap);
        if (rec.buf == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte slot record", (unsigned long)rec.cap);
        }
        ML_CHK(pk_record(call, obj, rec.buf, &data_len));
        data = rec.buf;
        kind = ML_SLOT_KIND_PK;
        flags = (uint8_t)(ml_pk_flags(obj) & ML_PK_FLAG_EXPORTABLE);
    }
    st = ml_keystore_put(slot, kind, flags, label, label_len, data, data_len, overwrite);
    if (st == ML_STATUS_STORAGE_FULL) {
        ML_FAIL(call, st, "the key store has no room for this key even after compaction");
    }
    ML_CHK(store_status(call, st, slot));
    (void)cbor_encode_null(result);
cleanup:
    record_free(&rec);
    return st;
}

/* Whether a record read from the medium has the layout this module writes. */
static bool record_valid(const struct record *rec)
{
    const struct ml_ks_info *info = &rec->info;
    if (info->kind == ML_SLOT_KIND_PK) {
        return info->data_len >= PK_PREFIX && PK_PREFIX + get_u16(rec->buf + info->label_len + 6) <= info->data_len;
    }
    return info->kind == ML_SLOT_KIND_SYMMETRIC;
}

/* Reads a slot's record into a new heap buffer (rec->buf, which the caller
 * frees with record_free whatever this returns). */
static int read_slot(struct ml_call *call, uint32_t slot, struct record *rec)
{
    int st = ML_STATUS_OK;
    ML_CHK(store_status(call, ml_keystore_info(slot, &rec->info), slot));
    rec->cap = (size_t)rec->info.label_len + rec->info.data_len;
    rec->buf = ml_buf_alloc(rec->cap);
    if (rec->buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte slot record", (unsigned long)rec->cap);
    }
    ML_CHK(store_status(call, ml_keystore_read(slot, rec->buf, rec->buf + rec->info.label_len), slot));
    if (!record_valid(rec)) {
        ML_CHK(store_status(call, ML_STATUS_STORAGE_ERROR, slot));
    }
cleanup:
    return st;
}

static CborError put_key(CborEncoder *map, const char *key) { return cbor_encode_text_stringz(map, key); }

/* Encodes the slot-info map of a record read by read_slot. */
static CborError encode_info(CborEncoder *enc, uint32_t slot, const struct record *rec)
{
    const struct ml_ks_info *info = &rec->info;
    const uint8_t *data = rec->buf + info->label_len;
    bool pk = info->kind == ML_SLOT_KIND_PK;
    size_t pub_len = pk ? get_u16(data + 6) : 0;
    CborEncoder map, pkm;
    CborError err = cbor_encoder_create_map(enc, &map, 7);
    err |= put_key(&map, "slot");
    err |= cbor_encode_uint(&map, slot);
    err |= put_key(&map, "label");
    err |= cbor_encode_text_string(&map, (const char *)rec->buf, info->label_len);
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
    struct record rec = {.buf = NULL, .cap = 0};
    const uint8_t *data = NULL;
    size_t pub_len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(arg_slot(call, args, 1, &slot));
    ML_CHK(ml_arg_handle(call, args, 2, &handle));
    ML_CHK(read_slot(call, slot, &rec));
    data = rec.buf + rec.info.label_len;
    if (rec.info.kind == ML_SLOT_KIND_SYMMETRIC) {
        ML_CHK(ml_symkey_create(call, handle, data, rec.info.data_len));
    } else {
        pub_len = get_u16(data + 6);
        ML_CHK(ml_pk_create_from_der(call, handle, data + PK_PREFIX + pub_len, rec.info.data_len - PK_PREFIX - pub_len,
                                     rec.info.flags & ML_PK_FLAG_EXPORTABLE, NULL));
    }
    (void)encode_info(result, slot, &rec);
cleanup:
    record_free(&rec);
    return st;
}

int ml_op_slot_list(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    (void)args;
    uint32_t used = 0;
    struct ml_ks_info info;
    struct record rec = {.buf = NULL, .cap = 0};
    CborEncoder list;
    CborError err = CborNoError;
    int st = ML_STATUS_OK;
    for (uint32_t s = 0; s < ml_keystore_slots(); s++) {
        int slot_st = ml_keystore_info(s, &info);
        if (slot_st != ML_STATUS_SLOT_EMPTY) {
            ML_CHK(store_status(call, slot_st, s));
            used++;
        }
    }
    err = cbor_encoder_create_array(result, &list, used);
    for (uint32_t s = 0; s < ml_keystore_slots(); s++) {
        if (ml_keystore_info(s, &info) == ML_STATUS_OK) {
            ML_CHK(read_slot(call, s, &rec));
            err |= encode_info(&list, s, &rec);
            record_free(&rec);
        }
    }
    err |= cbor_encoder_close_container(result, &list);
    (void)err; /* the dispatcher checks the encoder (too_large) */
cleanup:
    record_free(&rec);
    return st;
}

int ml_op_slot_delete(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t slot = 0;
    int st = ML_STATUS_OK;
    ML_CHK(arg_slot(call, args, 1, &slot));
    ML_CHK(store_status(call, ml_keystore_delete(slot), slot));
    (void)cbor_encode_null(result);
cleanup:
    return st;
}
