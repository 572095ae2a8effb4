/*
 * kex module: ECDH and finite-field DH key exchange under a handle
 * (ML_HT_KEX), in python-mbedtls's TLS flow (spec.md 7.5):
 *
 *   server: kex_generate (ServerKeyExchange) -> kex_import (client's
 *           ClientKeyExchange) -> kex_secret
 *   client: kex_import (ServerKeyExchange) -> kex_generate
 *           (ClientKeyExchange) -> kex_secret
 *
 * Static ECDH copies an EC pk key's pair into the context (the pk handle
 * may be freed afterwards); its public point goes out in the same formats
 * without an ephemeral key being made. The shared secret leaves as bytes or
 * becomes a device-held symmetric key; every buffer holding it is zeroised.
 */
#include <mbedtls/dhm.h>
#include <mbedtls/ecdh.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_symkey.h"

#define DH_P_MIN 64u /* bytes (512 bits) */

enum kex_state {
    ST_NEW = 0,
    ST_GENERATED, /* server: ServerKeyExchange made */
    ST_IMPORTED,  /* client: ServerKeyExchange read */
    ST_READY,     /* both public values known: the secret can be computed */
};

struct kex_obj {
    uint8_t kind; /* ML_KEX_KIND_* */
    uint8_t role; /* ML_KEX_ROLE_* */
    uint8_t state;
    bool is_static;
    mbedtls_ecp_group_id grp;
    /* static ECDH: the key's public point as a TLS ECPoint (1-byte length) */
    uint8_t static_pub[1 + MBEDTLS_ECP_MAX_PT_LEN];
    size_t static_pub_len;
    union {
        mbedtls_ecdh_context ecdh;
        mbedtls_dhm_context dhm;
    } u;
};

static void kex_dtor(void *obj)
{
    struct kex_obj *k = obj;
    if (k->kind == ML_KEX_KIND_ECDH) {
        mbedtls_ecdh_free(&k->u.ecdh);
    } else if (k->kind == ML_KEX_KIND_DH) {
        mbedtls_dhm_free(&k->u.dhm);
    }
}

/* An Mbed TLS result for a peer value: ML_STATUS_OK for 0; a value that does
 * not parse or is out of range is bad_argument with the code (out_of_memory
 * stays out_of_memory). */
static int peer_check(struct ml_call *call, int ret, const char *what)
{
    int st = ret != 0 ? ml_fail_mbedtls(call, ret, what) : ML_STATUS_OK;
    return st == ML_STATUS_OK || st == ML_STATUS_OUT_OF_MEMORY ? st : ML_STATUS_BAD_ARGUMENT;
}

/* bad_argument naming the role's sequence unless the context is in `want`. */
static int check_order(struct ml_call *call, const struct kex_obj *k, uint8_t want, const char *op)
{
    bool server = k->role == ML_KEX_ROLE_SERVER;
    return k->state == want
               ? ML_STATUS_OK
               : ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s out of order: a %s calls %s", op,
                         server ? "server" : "client",
                         server ? "kex_generate, kex_import, kex_secret" : "kex_import, kex_generate, kex_secret");
}

static int args_kex(struct ml_call *call, CborValue *args, struct kex_obj **k)
{
    uint32_t handle = 0;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_handle_get(call, handle, ML_HT_KEX, &p));
    *k = p;
cleanup:
    return st;
}

/* ------------------------------------------------------------ new */

/* The static key named by `key` (position 5): an EC key with a private
 * part on curve grp. */
static int static_key(struct ml_call *call, uint32_t key_handle, mbedtls_ecp_group_id grp,
                      const mbedtls_ecp_keypair **kp)
{
    void *obj = NULL;
    const mbedtls_pk_context *pk = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_pk_get(call, key_handle, &obj));
    pk = ml_pk_ctx(obj);
    if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY_DH)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 5: static ECDH needs an EC key");
    }
    if (!ml_pk_has_private(obj)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 5: the key has no private part");
    }
    if (mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(*pk)) != grp) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 5: the key is on another curve than arg 4");
    }
    *kp = mbedtls_pk_ec(*pk);
cleanup:
    return st;
}

static int new_ecdh(struct ml_call *call, struct kex_obj *k, mbedtls_ecp_group_id grp, const mbedtls_ecp_keypair *kp)
{
    size_t olen = 0;
    int st = ML_STATUS_OK;
    k->grp = grp;
    ML_CHK_TLS(call, mbedtls_ecdh_setup(&k->u.ecdh, grp), "ecdh_setup");
    if (kp != NULL) {
        k->is_static = true;
        ML_CHK_TLS(call, mbedtls_ecdh_get_params(&k->u.ecdh, kp, MBEDTLS_ECDH_OURS), "ecdh_get_params");
        ML_CHK_TLS(call,
                   mbedtls_ecp_write_public_key(kp, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, k->static_pub + 1,
                                                sizeof k->static_pub - 1),
                   "ecdh_get_params");
        k->static_pub[0] = (uint8_t)olen;
        k->static_pub_len = olen + 1;
    }
cleanup:
    return st;
}

static int new_dh(struct ml_call *call, struct kex_obj *k, const uint8_t *p, size_t p_len, const uint8_t *g,
                  size_t g_len)
{
    mbedtls_mpi P, G;
    int st = ML_STATUS_OK;
    mbedtls_mpi_init(&P);
    mbedtls_mpi_init(&G);
    ML_CHK_TLS(call, mbedtls_mpi_read_binary(&P, p, p_len), "mpi_read_binary");
    ML_CHK_TLS(call, mbedtls_mpi_read_binary(&G, g, g_len), "mpi_read_binary");
    if (mbedtls_mpi_size(&P) < DH_P_MIN || mbedtls_mpi_size(&P) > ML_MPI_BYTES_MAX || mbedtls_mpi_get_bit(&P, 0) == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 4: P must be odd and %u..%u bytes, got %lu", DH_P_MIN,
                (unsigned)ML_MPI_BYTES_MAX, (unsigned long)mbedtls_mpi_size(&P));
    }
    if (mbedtls_mpi_cmp_int(&G, 2) < 0 || mbedtls_mpi_cmp_mpi(&G, &P) >= 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 4: G must be in 2..P-1");
    }
    ML_CHK_TLS(call, mbedtls_dhm_set_group(&k->u.dhm, &P, &G), "dhm_set_group");
cleanup:
    mbedtls_mpi_free(&P);
    mbedtls_mpi_free(&G);
    return st;
}

/* params for DH: [P: bstr, G: bstr] at position 4. */
static int args_dh_params(struct ml_call *call, CborValue *args, const uint8_t **p, size_t *p_len, const uint8_t **g,
                          size_t *g_len)
{
    size_t n = 0;
    CborValue inner;
    int st = ML_STATUS_OK;
    if (!cbor_value_is_array(args) || !cbor_value_is_length_known(args) ||
        cbor_value_get_array_length(args, &n) != CborNoError || n != 2 ||
        cbor_value_enter_container(args, &inner) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 4: DH params must be [P, G] (two byte strings)");
    }
    ML_CHK(ml_arg_bytes(call, &inner, 4, p, p_len));
    ML_CHK(ml_arg_bytes(call, &inner, 4, g, g_len));
    if (cbor_value_leave_container(args, &inner) != CborNoError) {
        ML_FAIL(call, ML_STATUS_BAD_REQUEST, "arg 4: malformed DH params");
    }
cleanup:
    return st;
}

int ml_op_kex_new(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, key_handle = 0;
    uint64_t kind = 0, role = 0, curve = 0;
    const uint8_t *p = NULL, *g = NULL;
    size_t p_len = 0, g_len = 0;
    mbedtls_ecp_group_id grp = MBEDTLS_ECP_DP_NONE;
    const mbedtls_ecp_keypair *kp = NULL;
    void *obj = NULL;
    struct kex_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_uint(call, args, 2, &kind));
    ML_CHK(ml_arg_uint(call, args, 3, &role));
    if (kind != ML_KEX_KIND_ECDH && kind != ML_KEX_KIND_DH) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: kind must be %d (ECDH) or %d (DH)", ML_KEX_KIND_ECDH,
                ML_KEX_KIND_DH);
    }
    if (role != ML_KEX_ROLE_SERVER && role != ML_KEX_ROLE_CLIENT) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: role must be %d (server) or %d (client)", ML_KEX_ROLE_SERVER,
                ML_KEX_ROLE_CLIENT);
    }
    if (kind == ML_KEX_KIND_ECDH) {
        ML_CHK(ml_arg_uint(call, args, 4, &curve));
        ML_CHK(ml_curve_lookup(call, curve, &grp));
    } else {
        ML_CHK(args_dh_params(call, args, &p, &p_len, &g, &g_len));
    }
    if (!cbor_value_is_null(args)) {
        if (kind == ML_KEX_KIND_DH) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 5: DH takes no static key (null)");
        }
        ML_CHK(ml_arg_handle(call, args, 5, &key_handle));
        ML_CHK(static_key(call, key_handle, grp, &kp));
    }
    ML_CHK(ml_handle_create(call, handle, ML_HT_KEX, sizeof(struct kex_obj), kex_dtor, &obj));
    k = obj;
    k->kind = (uint8_t)kind; /* from here on the destructor frees the context */
    k->role = (uint8_t)role;
    k->state = ST_NEW;
    if (kind == ML_KEX_KIND_ECDH) {
        mbedtls_ecdh_init(&k->u.ecdh);
        ML_CHK(new_ecdh(call, k, grp, kp));
    } else {
        mbedtls_dhm_init(&k->u.dhm);
        ML_CHK(new_dh(call, k, p, p_len, g, g_len));
    }
    (void)cbor_encode_null(result);
cleanup:
    if (st != ML_STATUS_OK && k != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

/* ------------------------------------------------------------ generate */

/* The largest payload: DH ServerKeyExchange, three numbers of len(P)
 * bytes with 2-byte lengths; ECDH ones are far smaller. */
#define KEX_OUT_MAX (3u * (2u + ML_MPI_BYTES_MAX))

static int generate_into(struct ml_call *call, struct kex_obj *k, uint8_t *buf, size_t cap, size_t *olen)
{
    bool server = k->role == ML_KEX_ROLE_SERVER;
    size_t plen = 0, off = 0;
    const mbedtls_ecp_curve_info *info = NULL;
    int st = ML_STATUS_OK;
    if (k->kind == ML_KEX_KIND_DH) {
        plen = mbedtls_dhm_get_len(&k->u.dhm);
        *olen = plen; /* the client's public value; make_params sets its own */
        ML_CHK_TLS(call,
                   server ? mbedtls_dhm_make_params(&k->u.dhm, (int)plen, buf, olen, ml_busy_rng, NULL)
                          : mbedtls_dhm_make_public(&k->u.dhm, (int)plen, buf, plen, ml_busy_rng, NULL),
                   "dhm_make");
    } else if (k->is_static) {
        if (server) {
            /* ECParameters: named_curve (3) and the curve's TLS id */
            info = mbedtls_ecp_curve_info_from_grp_id(k->grp);
            if (info == NULL) {
                ML_FAIL(call, ML_STATUS_INTERNAL_ERROR, "no TLS id for the curve");
            }
            buf[0] = MBEDTLS_ECP_TLS_NAMED_CURVE;
            buf[1] = (uint8_t)(info->tls_id >> 8);
            buf[2] = (uint8_t)info->tls_id;
            off = 3;
        }
        memcpy(buf + off, k->static_pub, k->static_pub_len);
        *olen = off + k->static_pub_len;
    } else {
        ML_CHK_TLS(call,
                   server ? mbedtls_ecdh_make_params(&k->u.ecdh, olen, buf, cap, ml_busy_rng, NULL)
                          : mbedtls_ecdh_make_public(&k->u.ecdh, olen, buf, cap, ml_busy_rng, NULL),
                   "ecdh_make");
    }
cleanup:
    return st;
}

int ml_op_kex_generate(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct kex_obj *k = NULL;
    uint8_t *buf = NULL;
    size_t olen = 0;
    int st = ML_STATUS_OK;
    ML_CHK(args_kex(call, args, &k));
    ML_CHK(check_order(call, k, k->role == ML_KEX_ROLE_SERVER ? ST_NEW : ST_IMPORTED, "kex_generate"));
    buf = ml_buf_alloc(KEX_OUT_MAX);
    if (buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the key-exchange payload");
    }
    ML_CHK(generate_into(call, k, buf, KEX_OUT_MAX, &olen));
    (void)cbor_encode_byte_string(result, buf, olen);
    k->state = k->role == ML_KEX_ROLE_SERVER ? ST_GENERATED : ST_READY;
cleanup:
    ml_buf_free(buf, KEX_OUT_MAX);
    return st;
}

/* ------------------------------------------------------------ import */

/* Checks that a TLS ECPoint (1-byte length || point) is a valid public key
 * on the context's curve, so a bad point fails here and not at secret. */
static int check_point(struct ml_call *call, mbedtls_ecp_group_id gid, const uint8_t *data, size_t len)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point pt;
    const uint8_t *p = data;
    int st = ML_STATUS_OK;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&pt);
    ML_CHK(peer_check(call, mbedtls_ecp_group_load(&grp, gid), "peer point"));
    ML_CHK(peer_check(call, mbedtls_ecp_tls_read_point(&grp, &pt, &p, len), "peer point"));
    ML_CHK(peer_check(call, p != data + len ? MBEDTLS_ERR_ECP_BAD_INPUT_DATA : 0, "peer point"));
    ML_CHK(peer_check(call, mbedtls_ecp_check_pubkey(&grp, &pt), "peer point"));
cleanup:
    mbedtls_ecp_point_free(&pt);
    mbedtls_ecp_group_free(&grp);
    return st;
}

static int import_ecdh(struct ml_call *call, struct kex_obj *k, const uint8_t *data, size_t len)
{
    mbedtls_ecp_group_id gid = MBEDTLS_ECP_DP_NONE;
    const uint8_t *p = data;
    int st = ML_STATUS_OK;
    if (k->role == ML_KEX_ROLE_CLIENT) {
        /* ServerKeyExchange = ECParameters || ECPoint; the ECPoint is read
         * like a ClientKeyExchange, so a static key stays in place. */
        ML_CHK(peer_check(call, mbedtls_ecp_tls_read_group_id(&gid, &p, len), "ServerKeyExchange curve"));
        if (gid != k->grp) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the server's curve is not this context's");
        }
        len -= (size_t)(p - data);
        data = p;
    }
    ML_CHK(check_point(call, k->grp, data, len));
    ML_CHK(peer_check(call, mbedtls_ecdh_read_public(&k->u.ecdh, data, len), "ecdh_read_public"));
cleanup:
    return st;
}

static int import_dh(struct ml_call *call, struct kex_obj *k, const uint8_t *data, size_t len)
{
    unsigned char *p = (unsigned char *)(uintptr_t)data; /* read only; the API is not const */
    size_t plen = 0;
    int st = ML_STATUS_OK;
    if (k->role == ML_KEX_ROLE_SERVER) {
        ML_CHK(peer_check(call, mbedtls_dhm_read_public(&k->u.dhm, data, len), "dhm_read"));
    } else {
        ML_CHK(peer_check(call, mbedtls_dhm_read_params(&k->u.dhm, &p, p + len), "dhm_read"));
        if (p != data + len) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%lu bytes after the ServerKeyExchange",
                    (unsigned long)(data + len - p));
        }
        plen = mbedtls_dhm_get_len(&k->u.dhm);
        if (plen < DH_P_MIN || plen > ML_MPI_BYTES_MAX) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the server's P must be %u..%u bytes, got %lu", DH_P_MIN,
                    (unsigned)ML_MPI_BYTES_MAX, (unsigned long)plen);
        }
    }
cleanup:
    return st;
}

int ml_op_kex_import(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct kex_obj *k = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(args_kex(call, args, &k));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    ML_CHK(check_order(call, k, k->role == ML_KEX_ROLE_SERVER ? ST_GENERATED : ST_NEW, "kex_import"));
    ML_CHK(k->kind == ML_KEX_KIND_ECDH ? import_ecdh(call, k, data, len) : import_dh(call, k, data, len));
    k->state = k->role == ML_KEX_ROLE_SERVER ? ST_READY : ST_IMPORTED;
    (void)cbor_encode_null(result);
cleanup:
    return st;
}

/* ------------------------------------------------------------ secret */

int ml_op_kex_secret(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct kex_obj *k = NULL;
    uint32_t dst = 0;
    uint8_t *buf = NULL;
    size_t cap = 0, olen = 0;
    int st = ML_STATUS_OK;
    ML_CHK(args_kex(call, args, &k));
    if (!cbor_value_is_null(args)) {
        ML_CHK(ml_arg_handle(call, args, 2, &dst));
    }
    ML_CHK(check_order(call, k, ST_READY, "kex_secret"));
    cap = k->kind == ML_KEX_KIND_DH ? mbedtls_dhm_get_len(&k->u.dhm) : MBEDTLS_ECP_MAX_BYTES;
    buf = ml_buf_alloc(cap);
    if (buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the shared secret");
    }
    if (k->kind == ML_KEX_KIND_DH) {
        ML_CHK(peer_check(call, mbedtls_dhm_calc_secret(&k->u.dhm, buf, cap, &olen, ml_busy_rng, NULL), "calc_secret"));
        if (olen < cap) {
            /* len(P) bytes: put back the leading zeros TLS 1.2 strips */
            memmove(buf + cap - olen, buf, olen);
            memset(buf, 0, cap - olen);
            olen = cap;
        }
    } else {
        ML_CHK(
            peer_check(call, mbedtls_ecdh_calc_secret(&k->u.ecdh, &olen, buf, cap, ml_busy_rng, NULL), "calc_secret"));
    }
    if (dst == 0) {
        (void)cbor_encode_byte_string(result, buf, olen);
    } else {
        if (olen > ML_SYMKEY_MAX) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "a %lu-byte secret is longer than a device-held key (%u bytes)",
                    (unsigned long)olen, (unsigned)ML_SYMKEY_MAX);
        }
        ML_CHK(ml_symkey_create(call, dst, buf, olen));
        (void)cbor_encode_null(result);
    }
cleanup:
    ml_buf_free(buf, cap);
    return st;
}
