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
 * Beside its key, a slot may hold the key's certificate chain (record id
 * ML_KS_CHAIN(slot), kind CERTS_KIND, no label): the certificates' DER
 * concatenated, leaf first, at most slot_chain_max bytes; the leaf's public
 * key is the slot's. The trust-anchor set (record ML_KS_TRUST) has the same
 * layout. Storing a key over a slot's key drops the slot's chain (it
 * certified the old key; the chain goes first, so a power cut between the
 * two writes leaves the old key without a chain, never a mismatch).
 * Buffers holding key material come from the Mbed TLS heap and are zeroised
 * before they are freed.
 */
#include <mbedtls/asn1.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <string.h>

#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_slot.h"
#include "ops/ml_symkey.h"
#include "ops/ml_x509.h"
#include "store/ml_keystore.h"

#define PK_PREFIX    8u
#define PUBLIC_MAX   1024u
#define NO_CURVE     0xFFFFu
#define INFO_SCRATCH 96u
#define CERTS_KIND   3u   /* record kind of a chain or the trust anchors */
#define SUBJECT_MAX  160u /* longest subject slot-info carries (longer is cut at a character) */
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
    if (ml_keystore_info(ML_KS_CHAIN(slot), &info) == ML_STATUS_OK) { /* it certified the old key */
        ML_CHK(store_status(call, ml_keystore_delete(ML_KS_CHAIN(slot)), slot));
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

/* The length of the certificate (one DER SEQUENCE) at p, or 0 when there is
 * none within [p, end). */
static size_t cert_len(const uint8_t *p, const uint8_t *end)
{
    unsigned char *q = (unsigned char *)(uintptr_t)p;
    size_t len = 0;
    if (mbedtls_asn1_get_tag(&q, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) {
        return 0;
    }
    return (size_t)(q - p) + len;
}

/* Walks concatenated DER certificates: the number of them (*count), and the
 * `index`th (when index < count) in *der and *len. False when the bytes are not
 * whole certificates back to back. */
static bool certs_at(const uint8_t *data, size_t size, uint32_t index, uint32_t *count, const uint8_t **der,
                     size_t *len)
{
    const uint8_t *end = data + size;
    *count = 0;
    for (const uint8_t *p = data; p < end;) {
        size_t n = cert_len(p, end);
        if (n == 0) {
            return false;
        }
        if (*count == index) {
            *der = p;
            *len = n;
        }
        (*count)++;
        p += n;
    }
    return true;
}

/* Whether a record read from the medium has the layout this module writes. */
static bool record_valid(const struct record *rec)
{
    const struct ml_ks_info *info = &rec->info;
    const uint8_t *der = NULL;
    size_t len = 0;
    uint32_t count = 0;
    if (info->kind == ML_SLOT_KIND_PK) {
        return info->data_len >= PK_PREFIX && PK_PREFIX + get_u16(rec->buf + info->label_len + 6) <= info->data_len;
    }
    if (info->kind == CERTS_KIND) {
        return info->label_len == 0 && certs_at(rec->buf, info->data_len, 0, &count, &der, &len);
    }
    return info->kind == ML_SLOT_KIND_SYMMETRIC;
}

/* Reads record `id` (a slot's key, a slot's chain or the anchors; `slot`
 * names it in messages) into a new heap buffer (rec->buf, which the caller
 * frees with record_free whatever this returns). */
static int read_record(struct ml_call *call, uint32_t id, uint32_t slot, struct record *rec)
{
    int st = ML_STATUS_OK;
    ML_CHK(store_status(call, ml_keystore_info(id, &rec->info), slot));
    rec->cap = (size_t)rec->info.label_len + rec->info.data_len;
    rec->buf = ml_buf_alloc(rec->cap);
    if (rec->buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte slot record", (unsigned long)rec->cap);
    }
    ML_CHK(store_status(call, ml_keystore_read(id, rec->buf, rec->buf + rec->info.label_len), slot));
    if (!record_valid(rec) || (id < ML_KS_SLOTS_MAX) == (rec->info.kind == CERTS_KIND)) {
        ML_CHK(store_status(call, ML_STATUS_STORAGE_ERROR, slot));
    }
cleanup:
    return st;
}

static int read_slot(struct ml_call *call, uint32_t slot, struct record *rec)
{
    return read_record(call, slot, slot, rec);
}

/* Reads a slot's chain (ML_STATUS_OK with rec->buf NULL when it has none). */
static int read_chain(struct ml_call *call, uint32_t slot, struct record *rec)
{
    struct ml_ks_info info;
    if (ml_keystore_info(ML_KS_CHAIN(slot), &info) == ML_STATUS_SLOT_EMPTY) {
        return ML_STATUS_OK;
    }
    return read_record(call, ML_KS_CHAIN(slot), slot, rec);
}

static CborError put_key(CborEncoder *map, const char *key) { return cbor_encode_text_stringz(map, key); }

/* Seconds since 1970-01-01 of an X.509 time (UTC; days from the civil date). */
static int64_t x509_epoch(const mbedtls_x509_time *t)
{
    int64_t y = (int64_t)t->year - (t->mon <= 2 ? 1 : 0);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (((int64_t)t->mon + 9) % 12) + 2) / 5 + t->day - 1;
    int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    return days * 86400 + (int64_t)t->hour * 3600 + (int64_t)t->min * 60 + t->sec;
}

/* Encodes the cert-summary map of a stored certificate (null if it no
 * longer parses): subject as Mbed TLS prints it (cut to SUBJECT_MAX - 1
 * bytes at a character boundary), serial bytes, notAfter in seconds. */
static CborError encode_summary(CborEncoder *enc, const uint8_t *der, size_t len)
{
    mbedtls_x509_crt crt;
    char subject[SUBJECT_MAX];
    size_t n = 0;
    CborEncoder map;
    CborError err = CborNoError;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der_nocopy(&crt, der, len) != 0) {
        err = cbor_encode_null(enc);
        goto cleanup;
    }
    subject[0] = '\0';
    (void)mbedtls_x509_dn_gets(subject, sizeof subject, &crt.subject);
    subject[sizeof subject - 1] = '\0';
    n = strlen(subject);
    if (n == sizeof subject - 1) { /* cut: drop a partial UTF-8 sequence */
        while (n > 0 && ((uint8_t)subject[n - 1] & 0xC0u) == 0x80u) {
            n--;
        }
        n -= n > 0 && (uint8_t)subject[n - 1] >= 0xC0u ? 1 : 0;
    }
    err = cbor_encoder_create_map(enc, &map, 3);
    err |= put_key(&map, "subject");
    err |= cbor_encode_text_string(&map, subject, n);
    err |= put_key(&map, "serial");
    err |= cbor_encode_byte_string(&map, crt.serial.p, crt.serial.len);
    err |= put_key(&map, "not_after");
    err |= cbor_encode_int(&map, x509_epoch(&crt.valid_to));
    err |= cbor_encoder_close_container(enc, &map);
cleanup:
    mbedtls_x509_crt_free(&crt);
    return err;
}

/* Encodes the slot-info map of a key record read by read_slot and the
 * slot's chain record (chain->buf NULL when there is none). */
static CborError encode_info(CborEncoder *enc, uint32_t slot, const struct record *rec, const struct record *chain)
{
    const struct ml_ks_info *info = &rec->info;
    const uint8_t *data = rec->buf + info->label_len;
    bool pk = info->kind == ML_SLOT_KIND_PK;
    size_t pub_len = pk ? get_u16(data + 6) : 0;
    const uint8_t *leaf = NULL;
    size_t leaf_len = 0;
    uint32_t certs = 0;
    CborEncoder map, pkm;
    if (chain->buf != NULL) {
        (void)certs_at(chain->buf, chain->info.data_len, 0, &certs, &leaf, &leaf_len);
    }
    CborError err = cbor_encoder_create_map(enc, &map, 9);
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
    err |= put_key(&map, "chain");
    err |= cbor_encode_uint(&map, certs);
    err |= put_key(&map, "cert");
    err |= certs > 0 ? encode_summary(&map, leaf, leaf_len) : cbor_encode_null(&map);
    err |= cbor_encoder_close_container(enc, &map);
    return err;
}

int ml_op_slot_load(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t slot = 0, handle = 0;
    struct record rec = {.buf = NULL, .cap = 0};
    struct record chain = {.buf = NULL, .cap = 0};
    const uint8_t *data = NULL;
    size_t pub_len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(arg_slot(call, args, 1, &slot));
    ML_CHK(ml_arg_handle(call, args, 2, &handle));
    ML_CHK(read_slot(call, slot, &rec));
    ML_CHK(read_chain(call, slot, &chain));
    data = rec.buf + rec.info.label_len;
    if (rec.info.kind == ML_SLOT_KIND_SYMMETRIC) {
        ML_CHK(ml_symkey_create(call, handle, data, rec.info.data_len));
    } else {
        pub_len = get_u16(data + 6);
        ML_CHK(ml_pk_create_from_der(call, handle, data + PK_PREFIX + pub_len, rec.info.data_len - PK_PREFIX - pub_len,
                                     rec.info.flags & ML_PK_FLAG_EXPORTABLE, NULL));
    }
    (void)encode_info(result, slot, &rec, &chain);
cleanup:
    record_free(&chain);
    record_free(&rec);
    return st;
}

/* slot_list [slot?]: every occupied slot, or just the one asked for (an
 * empty list when it is empty), so a host whose full answer would not fit
 * one frame can ask slot by slot. */
int ml_op_slot_list(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t used = 0, first = 0, last = ml_keystore_slots();
    struct ml_ks_info info;
    struct record rec = {.buf = NULL, .cap = 0};
    struct record chain = {.buf = NULL, .cap = 0};
    CborEncoder list;
    CborError err = CborNoError;
    int st = ML_STATUS_OK;
    if (call->argc > 0) {
        ML_CHK(arg_slot(call, args, 1, &first));
        last = first + 1;
    }
    for (uint32_t s = first; s < last; s++) {
        int slot_st = ml_keystore_info(s, &info);
        if (slot_st != ML_STATUS_SLOT_EMPTY) {
            ML_CHK(store_status(call, slot_st, s));
            used++;
        }
    }
    err = cbor_encoder_create_array(result, &list, used);
    for (uint32_t s = first; s < last; s++) {
        if (ml_keystore_info(s, &info) == ML_STATUS_OK) {
            ML_CHK(read_slot(call, s, &rec));
            ML_CHK(read_chain(call, s, &chain));
            err |= encode_info(&list, s, &rec, &chain);
            record_free(&rec);
            record_free(&chain);
        }
    }
    err |= cbor_encoder_close_container(result, &list);
    (void)err; /* the dispatcher checks the encoder (too_large) */
cleanup:
    record_free(&chain);
    record_free(&rec);
    return st;
}

int ml_op_slot_delete(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t slot = 0;
    struct ml_ks_info info;
    int st = ML_STATUS_OK;
    ML_CHK(arg_slot(call, args, 1, &slot));
    if (ml_keystore_info(ML_KS_CHAIN(slot), &info) == ML_STATUS_OK) { /* the chain first: never one without its key */
        ML_CHK(store_status(call, ml_keystore_delete(ML_KS_CHAIN(slot)), slot));
    }
    ML_CHK(store_status(call, ml_keystore_delete(slot), slot));
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

/* ---------------------------------------------------------------- certificates */

/* Certificates gathered from a request's array (DER byte strings, or
 * handles of X509 chains, each adding its whole chain): measured when buf
 * is NULL, copied into buf[0..cap) otherwise. */
struct certs {
    uint8_t *buf;
    size_t cap;
    size_t len;
};

static void certs_put(struct certs *c, const uint8_t *der, size_t len)
{
    if (c->buf != NULL && c->len + len <= c->cap) {
        memcpy(c->buf + c->len, der, len);
    }
    c->len += len;
}

static int certs_gather(struct ml_call *call, const CborValue *array, unsigned pos, struct certs *c)
{
    CborValue it;
    const uint8_t *der = NULL;
    size_t len = 0;
    uint32_t handle = 0;
    mbedtls_x509_crt *crt = NULL;
    int st = ML_STATUS_OK;
    c->len = 0;
    if (!cbor_value_is_array(array) || cbor_value_enter_container(array, &it) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: expected an array of DER certificates or certificate handles",
                pos);
    }
    while (!cbor_value_at_end(&it)) {
        if (cbor_value_is_byte_string(&it)) {
            ML_CHK(ml_arg_bytes(call, &it, pos, &der, &len));
            certs_put(c, der, len);
            continue;
        }
        ML_CHK(ml_arg_handle(call, &it, pos, &handle));
        ML_CHK(ml_x509_crt_lookup(call, handle, &crt));
        for (; crt != NULL && crt->raw.len > 0; crt = crt->next) {
            certs_put(c, crt->raw.p, crt->raw.len);
        }
    }
cleanup:
    return st;
}

/* Checks gathered certificates: whole DER certificates back to back that
 * Mbed TLS parses; for a chain, the leaf's public key must be `key`'s
 * (SubjectPublicKeyInfo DER as the slot record keeps it). */
static int certs_check(struct ml_call *call, const struct certs *c, const uint8_t *key, size_t key_len, uint32_t slot)
{
    mbedtls_x509_crt crt;
    uint8_t *pub = NULL;
    const uint8_t *der = NULL;
    size_t len = 0;
    uint32_t count = 0;
    int ret = 0;
    int st = ML_STATUS_OK;
    mbedtls_x509_crt_init(&crt);
    if (!certs_at(c->buf, c->len, 0, &count, &der, &len)) {
        ML_FAIL(call, ML_STATUS_BAD_CERTIFICATE, "certificate %lu is not DER (a SEQUENCE within the bytes given)",
                (unsigned long)count);
    }
    for (uint32_t i = 0; i < count; i++) {
        (void)certs_at(c->buf, c->len, i, &count, &der, &len);
        mbedtls_x509_crt_free(&crt);
        mbedtls_x509_crt_init(&crt);
        ret = mbedtls_x509_crt_parse_der_nocopy(&crt, der, len);
        if (ret != 0) {
            call->mbedtls_code = ret;
            ML_FAIL(call, ret == MBEDTLS_ERR_X509_ALLOC_FAILED ? ML_STATUS_OUT_OF_MEMORY : ML_STATUS_BAD_CERTIFICATE,
                    "certificate %lu does not parse (-0x%04x)", (unsigned long)i, (unsigned)-ret);
        }
        if (i == 0 && key != NULL) {
            pub = ml_buf_alloc(PUBLIC_MAX);
            if (pub == NULL) {
                ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap to compare the leaf's public key");
            }
            ret = mbedtls_pk_write_pubkey_der(&crt.pk, pub, PUBLIC_MAX);
            if (ret != (int)key_len || memcmp(pub + PUBLIC_MAX - key_len, key, key_len) != 0) {
                ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the leaf certificate's public key is not slot %lu's key",
                        (unsigned long)slot);
            }
        }
    }
cleanup:
    ml_buf_free(pub, PUBLIC_MAX);
    mbedtls_x509_crt_free(&crt);
    return st;
}

/* Stores the certificates of the request's array `array` (arg `pos`) as
 * record `id` (slot's chain, key = the slot's public key, or the anchors,
 * key = NULL); an empty array removes the record. */
static int certs_store(struct ml_call *call, uint32_t id, uint32_t slot, const CborValue *array, unsigned pos,
                       const uint8_t *key, size_t key_len)
{
    struct certs c = {.buf = NULL, .cap = 0, .len = 0};
    struct ml_ks_info info;
    int st = ML_STATUS_OK;
    ML_CHK(certs_gather(call, array, pos, &c));
    if (c.len == 0) {
        if (ml_keystore_info(id, &info) == ML_STATUS_OK) {
            ML_CHK(store_status(call, ml_keystore_delete(id), slot));
        }
        goto cleanup;
    }
    if (c.len > ML_SLOT_CHAIN_MAX) {
        ML_FAIL(call, ML_STATUS_STORAGE_FULL, "%lu bytes of certificates: at most %u (slot_chain_max)",
                (unsigned long)c.len, (unsigned)ML_SLOT_CHAIN_MAX);
    }
    c.cap = c.len;
    c.buf = ml_buf_alloc(c.cap);
    if (c.buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for %lu bytes of certificates", (unsigned long)c.cap);
    }
    ML_CHK(certs_gather(call, array, pos, &c));
    ML_CHK(certs_check(call, &c, key, key_len, slot));
    st = ml_keystore_put(id, CERTS_KIND, 0, c.buf, 0, c.buf, c.len, true);
    if (st == ML_STATUS_STORAGE_FULL) {
        ML_FAIL(call, st, "the key store has no room for %lu bytes of certificates even after compaction",
                (unsigned long)c.len);
    }
    ML_CHK(store_status(call, st, slot));
cleanup:
    ml_buf_free(c.buf, c.cap);
    return st;
}

/* Reads the `overwrite` flag after the array at `pos`, and refuses to
 * replace record `id` without it. */
static int certs_overwrite(struct ml_call *call, CborValue *args, unsigned pos, uint32_t id, const char *what)
{
    bool overwrite = false;
    struct ml_ks_info info;
    int st = ML_STATUS_OK;
    if (cbor_value_advance(args) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg %u: malformed array", pos);
    }
    ML_CHK(ml_arg_bool(call, args, pos + 1, &overwrite));
    if (!overwrite && ml_keystore_info(id, &info) == ML_STATUS_OK) {
        ML_FAIL(call, ML_STATUS_SLOT_IN_USE, "%s already holds certificates (overwrite to replace them)", what);
    }
cleanup:
    return st;
}

/* slot_chain_store [slot, certs, overwrite]: the slot must hold a pk key,
 * the leaf certifies it. */
int ml_op_slot_chain_store(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t slot = 0;
    struct record rec = {.buf = NULL, .cap = 0};
    CborValue array;
    const uint8_t *data = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(arg_slot(call, args, 1, &slot));
    array = *args;
    ML_CHK(certs_overwrite(call, args, 2, ML_KS_CHAIN(slot), "this slot"));
    ML_CHK(read_slot(call, slot, &rec));
    if (rec.info.kind != ML_SLOT_KIND_PK) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "slot %lu holds a symmetric key: a certificate chain needs a pk key",
                (unsigned long)slot);
    }
    data = rec.buf + rec.info.label_len;
    ML_CHK(certs_store(call, ML_KS_CHAIN(slot), slot, &array, 2, data + PK_PREFIX, get_u16(data + 6)));
    (void)cbor_encode_null(result);
cleanup:
    record_free(&rec);
    return st;
}

/* slot_trust_store [certs, overwrite]. */
int ml_op_slot_trust_store(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    CborValue array = *args;
    int st = ML_STATUS_OK;
    if (ml_keystore_slots() == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "this device has no key store");
    }
    ML_CHK(certs_overwrite(call, args, 1, ML_KS_TRUST, "the trust-anchor set"));
    ML_CHK(certs_store(call, ML_KS_TRUST, 0, &array, 1, NULL, 0));
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

/* Reads record `id`'s certificates (slot_empty naming `what` when there are none). */
static int certs_read(struct ml_call *call, uint32_t id, uint32_t slot, const char *what, struct record *rec)
{
    struct ml_ks_info info;
    int st = ML_STATUS_OK;
    if (ml_keystore_slots() == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "this device has no key store");
    }
    if (ml_keystore_info(id, &info) == ML_STATUS_SLOT_EMPTY) {
        ML_FAIL(call, ML_STATUS_SLOT_EMPTY, "%s holds no certificates", what);
    }
    ML_CHK(read_record(call, id, slot, rec));
cleanup:
    return st;
}

/* Answers {"count", "der"} with certificate `index` of record `id`. */
static int certs_answer(struct ml_call *call, uint32_t id, uint32_t slot, const char *what, uint64_t index,
                        CborEncoder *result)
{
    struct record rec = {.buf = NULL, .cap = 0};
    const uint8_t *der = NULL;
    size_t len = 0;
    uint32_t count = 0;
    CborEncoder map;
    CborError err = CborNoError;
    int st = ML_STATUS_OK;
    ML_CHK(certs_read(call, id, slot, what, &rec));
    (void)certs_at(rec.buf, rec.info.data_len, index > 0xFFFFu ? 0xFFFFu : (uint32_t)index, &count, &der, &len);
    if (index >= count) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s holds %lu certificates, no certificate %llu", what,
                (unsigned long)count, (unsigned long long)index);
    }
    err = cbor_encoder_create_map(result, &map, 2);
    err |= put_key(&map, "count");
    err |= cbor_encode_uint(&map, count);
    err |= put_key(&map, "der");
    err |= cbor_encode_byte_string(&map, der, len);
    err |= cbor_encoder_close_container(result, &map);
    (void)err; /* the dispatcher checks the encoder (too_large) */
cleanup:
    record_free(&rec);
    return st;
}

/* slot_chain_read [slot, index]. */
int ml_op_slot_chain_read(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t slot = 0;
    uint64_t index = 0;
    int st = ML_STATUS_OK;
    ML_CHK(arg_slot(call, args, 1, &slot));
    ML_CHK(ml_arg_uint(call, args, 2, &index));
    ML_CHK(certs_answer(call, ML_KS_CHAIN(slot), slot, "this slot", index, result));
cleanup:
    return st;
}

/* slot_trust_read [index]. */
int ml_op_slot_trust_read(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t index = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, 1, &index));
    ML_CHK(certs_answer(call, ML_KS_TRUST, 0, "the trust-anchor set", index, result));
cleanup:
    return st;
}

/* Hands each certificate of record `id` to `add` (in order, leaf or first
 * anchor first); *count is how many went. */
typedef int (*certs_add_fn)(struct ml_call *call, void *ctx, const uint8_t *der, size_t len);

static int certs_each(struct ml_call *call, uint32_t id, uint32_t slot, const char *what, certs_add_fn add, void *ctx,
                      uint32_t *count)
{
    struct record rec = {.buf = NULL, .cap = 0};
    const uint8_t *der = NULL;
    size_t len = 0;
    uint32_t n = 0;
    int st = ML_STATUS_OK;
    *count = 0;
    ML_CHK(certs_read(call, id, slot, what, &rec));
    (void)certs_at(rec.buf, rec.info.data_len, 0, &n, &der, &len);
    for (uint32_t i = 0; i < n; i++) {
        (void)certs_at(rec.buf, rec.info.data_len, i, &n, &der, &len);
        ML_CHK(add(call, ctx, der, len));
        (*count)++;
    }
cleanup:
    record_free(&rec);
    return st;
}

static int add_to_chain(struct ml_call *call, void *ctx, const uint8_t *der, size_t len)
{
    int ret = mbedtls_x509_crt_parse_der((mbedtls_x509_crt *)ctx, der, len);
    return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "x509_crt_parse_der");
}

static int add_to_handle(struct ml_call *call, void *ctx, const uint8_t *der, size_t len)
{
    return ml_x509_crt_add_der(call, *(const uint32_t *)ctx, der, len);
}

static int check_slot(struct ml_call *call, uint32_t slot)
{
    if (slot >= ml_keystore_slots()) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "slot must be 0..%ld, got %lu", (long)ml_keystore_slots() - 1,
                       (unsigned long)slot);
    }
    return ML_STATUS_OK;
}

int ml_slot_chain_parse(struct ml_call *call, uint32_t slot, mbedtls_x509_crt *chain, uint32_t *count)
{
    int st = ML_STATUS_OK;
    ML_CHK(check_slot(call, slot));
    ML_CHK(certs_each(call, ML_KS_CHAIN(slot), slot, "this slot", add_to_chain, chain, count));
cleanup:
    return st;
}

int ml_slot_trust_parse(struct ml_call *call, mbedtls_x509_crt *chain, uint32_t *count)
{
    return certs_each(call, ML_KS_TRUST, 0, "the trust-anchor set", add_to_chain, chain, count);
}

/* Loads record `id` into a new ML_HT_X509_CRT handle (freed again on failure). */
static int certs_load(struct ml_call *call, uint32_t id, uint32_t slot, const char *what, uint32_t handle,
                      uint32_t *count)
{
    uint8_t type = ML_HT_NONE;
    void *obj = NULL;
    int st = ML_STATUS_OK;
    if (ml_handle_lookup(call, handle, &type, &obj) == ML_STATUS_OK) {
        ML_FAIL(call, ML_STATUS_HANDLE_IN_USE, "handle %lu is already live", (unsigned long)handle);
    }
    st = certs_each(call, id, slot, what, add_to_handle, &handle, count);
    if (st != ML_STATUS_OK && ml_handle_lookup(call, handle, &type, &obj) == ML_STATUS_OK) {
        (void)ml_handle_free(call, handle);
    }
cleanup:
    return st;
}

int ml_slot_load_chain(struct ml_call *call, uint32_t slot, uint32_t handle, uint32_t *count)
{
    int st = ML_STATUS_OK;
    ML_CHK(check_slot(call, slot));
    ML_CHK(certs_load(call, ML_KS_CHAIN(slot), slot, "this slot", handle, count));
cleanup:
    return st;
}

int ml_slot_load_trust(struct ml_call *call, uint32_t handle, uint32_t *count)
{
    return certs_load(call, ML_KS_TRUST, 0, "the trust-anchor set", handle, count);
}

/* slot_chain_load [slot, handle]: the chain as a certificate-chain object (what TLS presents). */
int ml_op_slot_chain_load(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t slot = 0, handle = 0, count = 0;
    int st = ML_STATUS_OK;
    ML_CHK(arg_slot(call, args, 1, &slot));
    ML_CHK(ml_arg_handle(call, args, 2, &handle));
    ML_CHK(ml_slot_load_chain(call, slot, handle, &count));
    (void)cbor_encode_uint(result, count);
cleanup:
    return st;
}

/* slot_trust_load [handle]: the anchors as a certificate-chain object. */
int ml_op_slot_trust_load(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, count = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_slot_load_trust(call, handle, &count));
    (void)cbor_encode_uint(result, count);
cleanup:
    return st;
}
