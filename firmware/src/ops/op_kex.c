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
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_handles.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_symkey.h"

#define DH_P_MIN 64u /* bytes (512 bits) */

enum kex_kind { KEX_ECDH = 1, KEX_DH = 2 };
enum kex_role { ROLE_SERVER = 1, ROLE_CLIENT = 2 };
enum kex_state {
    ST_NEW = 0,
    ST_GENERATED, /* server: ServerKeyExchange made */
    ST_IMPORTED,  /* client: ServerKeyExchange read */
    ST_READY,     /* both public values known: the secret can be computed */
};

struct kex_obj {
    uint8_t kind;
    uint8_t role;
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
    if (k->kind == KEX_ECDH) {
        mbedtls_ecdh_free(&k->u.ecdh);
    } else if (k->kind == KEX_DH) {
        mbedtls_dhm_free(&k->u.dhm);
    }
}

static int high_level(int ret) { return -((-ret) & 0xFF80); }

static bool is_alloc(int ret)
{
    int low = -((-ret) & 0x7F);
    return ret == MBEDTLS_ERR_ECP_ALLOC_FAILED || high_level(ret) == MBEDTLS_ERR_ECP_ALLOC_FAILED ||
           low == MBEDTLS_ERR_MPI_ALLOC_FAILED || ret == MBEDTLS_ERR_DHM_ALLOC_FAILED ||
           high_level(ret) == MBEDTLS_ERR_DHM_ALLOC_FAILED;
}

/* A peer value that does not parse or is out of range: bad_argument with
 * the code (out_of_memory stays out_of_memory). */
static int peer_error(struct ml_call *call, int ret, const char *what)
{
    int st = ml_fail_mbedtls(call, ret, what);
    return is_alloc(ret) ? st : ML_STATUS_BAD_ARGUMENT;
}

static int out_of_order(struct ml_call *call, const struct kex_obj *k, const char *op)
{
    return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%s out of order: a %s calls %s", op,
                   k->role == ROLE_SERVER ? "server" : "client",
                   k->role == ROLE_SERVER ? "kex_generate, kex_import, kex_secret"
                                          : "kex_import, kex_generate, kex_secret");
}

static int args_kex(struct ml_call *call, CborValue *args, struct kex_obj **k)
{
    uint32_t handle = 0;
    void *p = NULL;
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = ml_handle_get(call, handle, ML_HT_KEX, &p);
    }
    if (st == ML_STATUS_OK) {
        *k = p;
    }
    return st;
}

/* ------------------------------------------------------------ new */

/* The static key named by `key` (position 5): an EC key with a private
 * part on curve grp. */
static int static_key(struct ml_call *call, uint32_t key_handle, mbedtls_ecp_group_id grp,
                      const mbedtls_ecp_keypair **kp)
{
    void *obj = NULL;
    int st = ml_pk_get(call, key_handle, &obj);
    if (st != ML_STATUS_OK) {
        return st;
    }
    const mbedtls_pk_context *pk = ml_pk_ctx(obj);
    if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY_DH)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 5: static ECDH needs an EC key");
    }
    if (!ml_pk_has_private(obj)) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 5: the key has no private part");
    }
    *kp = mbedtls_pk_ec(*pk);
    if (mbedtls_ecp_keypair_get_group_id(*kp) != grp) {
        return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 5: the key is on another curve than arg 4");
    }
    return ML_STATUS_OK;
}

static int new_ecdh(struct ml_call *call, struct kex_obj *k, mbedtls_ecp_group_id grp, const mbedtls_ecp_keypair *kp)
{
    k->grp = grp;
    int ret = mbedtls_ecdh_setup(&k->u.ecdh, grp);
    if (ret != 0) {
        return ml_fail_mbedtls(call, ret, "ecdh_setup");
    }
    if (kp == NULL) {
        return ML_STATUS_OK;
    }
    k->is_static = true;
    ret = mbedtls_ecdh_get_params(&k->u.ecdh, kp, MBEDTLS_ECDH_OURS);
    if (ret == 0) {
        size_t olen = 0;
        ret = mbedtls_ecp_write_public_key(kp, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, k->static_pub + 1,
                                           sizeof k->static_pub - 1);
        k->static_pub[0] = (uint8_t)olen;
        k->static_pub_len = olen + 1;
    }
    return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "ecdh_get_params");
}

static int new_dh(struct ml_call *call, struct kex_obj *k, const uint8_t *p, size_t p_len, const uint8_t *g,
                  size_t g_len)
{
    mbedtls_mpi P, G;
    mbedtls_mpi_init(&P);
    mbedtls_mpi_init(&G);
    int st = ML_STATUS_OK;
    int ret = mbedtls_mpi_read_binary(&P, p, p_len);
    if (ret == 0) {
        ret = mbedtls_mpi_read_binary(&G, g, g_len);
    }
    if (ret != 0) {
        st = ml_fail_mbedtls(call, ret, "mpi_read_binary");
    } else if (mbedtls_mpi_size(&P) < DH_P_MIN || mbedtls_mpi_size(&P) > ML_MPI_BYTES_MAX ||
               mbedtls_mpi_get_bit(&P, 0) == 0) {
        st = ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 4: P must be odd and %u..%u bytes, got %lu", DH_P_MIN,
                     (unsigned)ML_MPI_BYTES_MAX, (unsigned long)mbedtls_mpi_size(&P));
    } else if (mbedtls_mpi_cmp_int(&G, 2) < 0 || mbedtls_mpi_cmp_mpi(&G, &P) >= 0) {
        st = ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 4: G must be in 2..P-1");
    } else {
        ret = mbedtls_dhm_set_group(&k->u.dhm, &P, &G);
        if (ret != 0) {
            st = ml_fail_mbedtls(call, ret, "dhm_set_group");
        }
    }
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
    if (!cbor_value_is_array(args) || !cbor_value_is_length_known(args) ||
        cbor_value_get_array_length(args, &n) != CborNoError || n != 2 ||
        cbor_value_enter_container(args, &inner) != CborNoError) {
        return ml_fail(call, ML_STATUS_BAD_REQUEST, "arg 4: DH params must be [P, G] (two byte strings)");
    }
    int st = ml_arg_bytes(call, &inner, 4, p, p_len);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, &inner, 4, g, g_len);
    }
    if (st == ML_STATUS_OK && cbor_value_leave_container(args, &inner) != CborNoError) {
        st = ml_fail(call, ML_STATUS_BAD_REQUEST, "arg 4: malformed DH params");
    }
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
    int st = ml_arg_handle(call, args, 1, &handle);
    if (st == ML_STATUS_OK) {
        st = ml_arg_uint(call, args, 2, &kind);
    }
    if (st == ML_STATUS_OK) {
        st = ml_arg_uint(call, args, 3, &role);
    }
    if (st == ML_STATUS_OK && kind != KEX_ECDH && kind != KEX_DH) {
        st = ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 2: kind must be 1 (ECDH) or 2 (DH)");
    }
    if (st == ML_STATUS_OK && role != ROLE_SERVER && role != ROLE_CLIENT) {
        st = ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 3: role must be 1 (server) or 2 (client)");
    }
    if (st == ML_STATUS_OK && kind == KEX_ECDH) {
        st = ml_arg_uint(call, args, 4, &curve);
        if (st == ML_STATUS_OK) {
            st = ml_curve_lookup(call, curve, &grp);
        }
    } else if (st == ML_STATUS_OK) {
        st = args_dh_params(call, args, &p, &p_len, &g, &g_len);
    }
    if (st == ML_STATUS_OK && !cbor_value_is_null(args)) {
        st = kind == KEX_DH ? ml_fail(call, ML_STATUS_BAD_ARGUMENT, "arg 5: DH takes no static key (null)")
                            : ml_arg_handle(call, args, 5, &key_handle);
        if (st == ML_STATUS_OK) {
            st = static_key(call, key_handle, grp, &kp);
        }
    }
    void *obj = NULL;
    if (st == ML_STATUS_OK) {
        st = ml_handle_create(call, handle, ML_HT_KEX, sizeof(struct kex_obj), kex_dtor, &obj);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    struct kex_obj *k = obj;
    k->kind = (uint8_t)kind;
    k->role = (uint8_t)role;
    k->state = ST_NEW;
    if (kind == KEX_ECDH) {
        mbedtls_ecdh_init(&k->u.ecdh);
        st = new_ecdh(call, k, grp, kp);
    } else {
        mbedtls_dhm_init(&k->u.dhm);
        st = new_dh(call, k, p, p_len, g, g_len);
    }
    if (st != ML_STATUS_OK) {
        (void)ml_handle_free(call, handle);
        return st;
    }
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

/* ------------------------------------------------------------ generate */

/* The largest payload: DH ServerKeyExchange, three numbers of len(P)
 * bytes with 2-byte lengths; ECDH ones are far smaller. */
#define KEX_OUT_MAX (3u * (2u + ML_MPI_BYTES_MAX))

static int generate_into(struct ml_call *call, struct kex_obj *k, uint8_t *buf, size_t cap, size_t *olen)
{
    int ret = 0;
    if (k->kind == KEX_DH) {
        size_t plen = mbedtls_dhm_get_len(&k->u.dhm);
        if (k->role == ROLE_SERVER) {
            ret = mbedtls_dhm_make_params(&k->u.dhm, (int)plen, buf, olen, ml_busy_rng, NULL);
        } else {
            ret = mbedtls_dhm_make_public(&k->u.dhm, (int)plen, buf, plen, ml_busy_rng, NULL);
            *olen = plen;
        }
        return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "dhm_make");
    }
    if (k->is_static) {
        size_t off = 0;
        if (k->role == ROLE_SERVER) {
            /* ECParameters: named_curve (3) and the curve's TLS id */
            const mbedtls_ecp_curve_info *info = mbedtls_ecp_curve_info_from_grp_id(k->grp);
            if (info == NULL) {
                return ml_fail(call, ML_STATUS_INTERNAL_ERROR, "no TLS id for the curve");
            }
            buf[0] = MBEDTLS_ECP_TLS_NAMED_CURVE;
            buf[1] = (uint8_t)(info->tls_id >> 8);
            buf[2] = (uint8_t)info->tls_id;
            off = 3;
        }
        memcpy(buf + off, k->static_pub, k->static_pub_len);
        *olen = off + k->static_pub_len;
        return ML_STATUS_OK;
    }
    if (k->role == ROLE_SERVER) {
        ret = mbedtls_ecdh_make_params(&k->u.ecdh, olen, buf, cap, ml_busy_rng, NULL);
    } else {
        ret = mbedtls_ecdh_make_public(&k->u.ecdh, olen, buf, cap, ml_busy_rng, NULL);
    }
    return ret == 0 ? ML_STATUS_OK : ml_fail_mbedtls(call, ret, "ecdh_make");
}

int ml_op_kex_generate(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct kex_obj *k = NULL;
    int st = args_kex(call, args, &k);
    if (st != ML_STATUS_OK) {
        return st;
    }
    uint8_t want = k->role == ROLE_SERVER ? ST_NEW : ST_IMPORTED;
    if (k->state != want) {
        return out_of_order(call, k, "kex_generate");
    }
    uint8_t *buf = mbedtls_calloc(1, KEX_OUT_MAX);
    if (buf == NULL) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the key-exchange payload");
    }
    size_t olen = 0;
    st = generate_into(call, k, buf, KEX_OUT_MAX, &olen);
    if (st == ML_STATUS_OK) {
        (void)cbor_encode_byte_string(result, buf, olen);
        k->state = k->role == ROLE_SERVER ? ST_GENERATED : ST_READY;
    }
    mbedtls_free(buf);
    return st;
}

/* ------------------------------------------------------------ import */

/* Checks that a TLS ECPoint (1-byte length || point) is a valid public key
 * on the context's curve, so a bad point fails here and not at secret. */
static int check_point(struct ml_call *call, mbedtls_ecp_group_id gid, const uint8_t *data, size_t len)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point pt;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&pt);
    const uint8_t *p = data;
    int ret = mbedtls_ecp_group_load(&grp, gid);
    if (ret == 0) {
        ret = mbedtls_ecp_tls_read_point(&grp, &pt, &p, len);
    }
    if (ret == 0 && p != data + len) {
        ret = MBEDTLS_ERR_ECP_BAD_INPUT_DATA;
    }
    if (ret == 0) {
        ret = mbedtls_ecp_check_pubkey(&grp, &pt);
    }
    mbedtls_ecp_point_free(&pt);
    mbedtls_ecp_group_free(&grp);
    return ret == 0 ? ML_STATUS_OK : peer_error(call, ret, "peer point");
}

static int import_ecdh(struct ml_call *call, struct kex_obj *k, const uint8_t *data, size_t len)
{
    if (k->role == ROLE_CLIENT) {
        /* ServerKeyExchange = ECParameters || ECPoint; the ECPoint is read
         * like a ClientKeyExchange, so a static key stays in place. */
        mbedtls_ecp_group_id gid = MBEDTLS_ECP_DP_NONE;
        const uint8_t *p = data;
        int ret = mbedtls_ecp_tls_read_group_id(&gid, &p, len);
        if (ret != 0) {
            return peer_error(call, ret, "ServerKeyExchange curve");
        }
        if (gid != k->grp) {
            return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "the server's curve is not this context's");
        }
        len -= (size_t)(p - data);
        data = p;
    }
    int st = check_point(call, k->grp, data, len);
    if (st != ML_STATUS_OK) {
        return st;
    }
    int ret = mbedtls_ecdh_read_public(&k->u.ecdh, data, len);
    return ret == 0 ? ML_STATUS_OK : peer_error(call, ret, "ecdh_read_public");
}

static int import_dh(struct ml_call *call, struct kex_obj *k, const uint8_t *data, size_t len)
{
    int ret = 0;
    if (k->role == ROLE_CLIENT) {
        unsigned char *p = (unsigned char *)(uintptr_t)data; /* read only; the API is not const */
        ret = mbedtls_dhm_read_params(&k->u.dhm, &p, p + len);
        if (ret == 0 && p != data + len) {
            return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "%lu bytes after the ServerKeyExchange",
                           (unsigned long)(data + len - p));
        }
        size_t plen = mbedtls_dhm_get_len(&k->u.dhm);
        if (ret == 0 && (plen < DH_P_MIN || plen > ML_MPI_BYTES_MAX)) {
            return ml_fail(call, ML_STATUS_BAD_ARGUMENT, "the server's P must be %u..%u bytes, got %lu", DH_P_MIN,
                           (unsigned)ML_MPI_BYTES_MAX, (unsigned long)plen);
        }
    } else {
        ret = mbedtls_dhm_read_public(&k->u.dhm, data, len);
    }
    return ret == 0 ? ML_STATUS_OK : peer_error(call, ret, "dhm_read");
}

int ml_op_kex_import(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct kex_obj *k = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    int st = args_kex(call, args, &k);
    if (st == ML_STATUS_OK) {
        st = ml_arg_bytes(call, args, 2, &data, &len);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    uint8_t want = k->role == ROLE_SERVER ? ST_GENERATED : ST_NEW;
    if (k->state != want) {
        return out_of_order(call, k, "kex_import");
    }
    st = k->kind == KEX_ECDH ? import_ecdh(call, k, data, len) : import_dh(call, k, data, len);
    if (st != ML_STATUS_OK) {
        return st;
    }
    k->state = k->role == ROLE_SERVER ? ST_READY : ST_IMPORTED;
    (void)cbor_encode_null(result);
    return ML_STATUS_OK;
}

/* ------------------------------------------------------------ secret */

int ml_op_kex_secret(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct kex_obj *k = NULL;
    uint32_t dst = 0;
    int st = args_kex(call, args, &k);
    if (st == ML_STATUS_OK && !cbor_value_is_null(args)) {
        st = ml_arg_handle(call, args, 2, &dst);
    }
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (k->state != ST_READY) {
        return out_of_order(call, k, "kex_secret");
    }
    size_t cap = k->kind == KEX_DH ? mbedtls_dhm_get_len(&k->u.dhm) : MBEDTLS_ECP_MAX_BYTES;
    uint8_t *buf = mbedtls_calloc(1, cap);
    if (buf == NULL) {
        return ml_fail(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the shared secret");
    }
    size_t olen = 0;
    int ret = 0;
    if (k->kind == KEX_DH) {
        ret = mbedtls_dhm_calc_secret(&k->u.dhm, buf, cap, &olen, ml_busy_rng, NULL);
        if (ret == 0 && olen < cap) {
            /* len(P) bytes: put back the leading zeros TLS 1.2 strips */
            memmove(buf + cap - olen, buf, olen);
            memset(buf, 0, cap - olen);
            olen = cap;
        }
    } else {
        ret = mbedtls_ecdh_calc_secret(&k->u.ecdh, &olen, buf, cap, ml_busy_rng, NULL);
    }
    if (ret != 0) {
        st = peer_error(call, ret, "calc_secret");
    } else if (dst == 0) {
        (void)cbor_encode_byte_string(result, buf, olen);
    } else if (olen > ML_SYMKEY_MAX) {
        st = ml_fail(call, ML_STATUS_BAD_ARGUMENT, "a %lu-byte secret is longer than a device-held key (%u bytes)",
                     (unsigned long)olen, (unsigned)ML_SYMKEY_MAX);
    } else {
        st = ml_symkey_create(call, dst, buf, olen);
        if (st == ML_STATUS_OK) {
            (void)cbor_encode_null(result);
        }
    }
    mbedtls_platform_zeroize(buf, cap);
    mbedtls_free(buf);
    return st;
}
