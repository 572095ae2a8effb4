/*
 * pk module: RSA and EC keys under a handle (ML_HT_PK), generated on the
 * device or imported, with sign/verify, RSA encrypt/decrypt and export
 * (spec.md 7.3). A key without the exportable flag never lets its private
 * part out: pk_export's private formats are not_exportable, every other op
 * only uses it or returns public material. The object's destructor frees
 * the Mbed TLS context (mbedtls_pk_free zeroises it); temporary DER/PEM
 * copies are zeroised before they go back to the heap.
 */
#include <limits.h>
#include <mbedtls/asn1.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_handles.h"
#include "core/ml_rng.h"
#include "ops/ml_hash.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"

/* Largest DER this module writes: an RSA-4096 private key is ~2.35 KB. */
#define PK_DER_MAX 2600u

struct pk_obj {
    mbedtls_pk_context pk;
    uint32_t flags;
    bool priv;
};

/* ------------------------------------------------------------ curves */

struct curve {
    uint8_t id;    /* ids.json curves */
    uint16_t bits; /* ids.json bits */
    mbedtls_ecp_group_id grp;
};

static const struct curve curves[] = {
#if defined(MBEDTLS_ECP_DP_SECP192R1_ENABLED)
    {ML_CURVE_SECP192R1, 192, MBEDTLS_ECP_DP_SECP192R1},
#endif
#if defined(MBEDTLS_ECP_DP_SECP224R1_ENABLED)
    {ML_CURVE_SECP224R1, 224, MBEDTLS_ECP_DP_SECP224R1},
#endif
#if defined(MBEDTLS_ECP_DP_SECP256R1_ENABLED)
    {ML_CURVE_SECP256R1, 256, MBEDTLS_ECP_DP_SECP256R1},
#endif
#if defined(MBEDTLS_ECP_DP_SECP384R1_ENABLED)
    {ML_CURVE_SECP384R1, 384, MBEDTLS_ECP_DP_SECP384R1},
#endif
#if defined(MBEDTLS_ECP_DP_SECP521R1_ENABLED)
    {ML_CURVE_SECP521R1, 521, MBEDTLS_ECP_DP_SECP521R1},
#endif
#if defined(MBEDTLS_ECP_DP_SECP192K1_ENABLED)
    {ML_CURVE_SECP192K1, 192, MBEDTLS_ECP_DP_SECP192K1},
#endif
#if defined(MBEDTLS_ECP_DP_SECP224K1_ENABLED)
    {ML_CURVE_SECP224K1, 225, MBEDTLS_ECP_DP_SECP224K1},
#endif
#if defined(MBEDTLS_ECP_DP_SECP256K1_ENABLED)
    {ML_CURVE_SECP256K1, 256, MBEDTLS_ECP_DP_SECP256K1},
#endif
#if defined(MBEDTLS_ECP_DP_BP256R1_ENABLED)
    {ML_CURVE_BRAINPOOLP256R1, 256, MBEDTLS_ECP_DP_BP256R1},
#endif
#if defined(MBEDTLS_ECP_DP_BP384R1_ENABLED)
    {ML_CURVE_BRAINPOOLP384R1, 384, MBEDTLS_ECP_DP_BP384R1},
#endif
#if defined(MBEDTLS_ECP_DP_BP512R1_ENABLED)
    {ML_CURVE_BRAINPOOLP512R1, 512, MBEDTLS_ECP_DP_BP512R1},
#endif
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
    {ML_CURVE_X25519, 255, MBEDTLS_ECP_DP_CURVE25519},
#endif
#if defined(MBEDTLS_ECP_DP_CURVE448_ENABLED)
    {ML_CURVE_X448, 448, MBEDTLS_ECP_DP_CURVE448},
#endif
};
#define CURVE_COUNT (sizeof curves / sizeof curves[0])

static const struct curve *curve_by_grp(mbedtls_ecp_group_id grp)
{
    for (size_t i = 0; i < CURVE_COUNT; i++) {
        if (curves[i].grp == grp) {
            return &curves[i];
        }
    }
    return NULL;
}

int ml_curve_lookup(struct ml_call *call, uint64_t id, mbedtls_ecp_group_id *grp)
{
    for (size_t i = 0; i < CURVE_COUNT; i++) {
        if (curves[i].id == id) {
            *grp = curves[i].grp;
            return ML_STATUS_OK;
        }
    }
    return ml_fail(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "curve %llu is not supported", (unsigned long long)id);
}

size_t ml_curve_list(uint32_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < CURVE_COUNT && n < cap; i++) {
        out[n++] = curves[i].id;
    }
    return n;
}

/* ------------------------------------------------------------ objects */

static void pk_dtor(void *obj) { mbedtls_pk_free(&((struct pk_obj *)obj)->pk); }

mbedtls_pk_context *ml_pk_ctx(void *obj) { return &((struct pk_obj *)obj)->pk; }

uint32_t ml_pk_flags(const void *obj) { return ((const struct pk_obj *)obj)->flags; }

bool ml_pk_has_private(const void *obj) { return ((const struct pk_obj *)obj)->priv; }

int ml_pk_get(struct ml_call *call, uint32_t handle, void **obj) { return ml_handle_get(call, handle, ML_HT_PK, obj); }

static int create(struct ml_call *call, uint32_t handle, uint32_t flags, struct pk_obj **out)
{
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_handle_create(call, handle, ML_HT_PK, sizeof(struct pk_obj), pk_dtor, &p));
    *out = p;
    mbedtls_pk_init(&(*out)->pk);
    (*out)->flags = flags;
cleanup:
    return st;
}

static bool is_ec(const mbedtls_pk_context *pk)
{
    mbedtls_pk_type_t t = mbedtls_pk_get_type(pk);
    return t == MBEDTLS_PK_ECKEY || t == MBEDTLS_PK_ECKEY_DH || t == MBEDTLS_PK_ECDSA;
}

static bool is_rsa(const mbedtls_pk_context *pk) { return mbedtls_pk_get_type(pk) == MBEDTLS_PK_RSA; }

static mbedtls_ecp_group_id ec_grp(const mbedtls_pk_context *pk)
{
    return mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(*pk));
}

static bool is_montgomery(const mbedtls_pk_context *pk)
{
    if (!is_ec(pk)) {
        return false;
    }
    mbedtls_ecp_group_id g = ec_grp(pk);
    return g == MBEDTLS_ECP_DP_CURVE25519 || g == MBEDTLS_ECP_DP_CURVE448;
}

static int read_flags(struct ml_call *call, CborValue *args, unsigned pos, uint32_t *flags)
{
    uint64_t v = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, pos, &v));
    if ((v & ~(uint64_t)ML_PK_FLAGS_MASK) != 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: unknown pk flags 0x%llx", pos, (unsigned long long)v);
    }
    *flags = (uint32_t)v;
cleanup:
    return st;
}

static int args_key(struct ml_call *call, CborValue *args, unsigned pos, struct pk_obj **k)
{
    uint32_t handle = 0;
    void *p = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, pos, &handle));
    ML_CHK(ml_pk_get(call, handle, &p));
    *k = p;
cleanup:
    return st;
}

/* For an op whose Mbed TLS failure is an answer (verify, check_pair: false):
 * only running out of heap is an error; anything else leaves no error. */
static int alloc_failure_only(struct ml_call *call, int ret, const char *what)
{
    int st = ret != 0 ? ml_fail_mbedtls(call, ret, what) : ML_STATUS_OK;
    if (st != ML_STATUS_OUT_OF_MEMORY) {
        call->mbedtls_code = 0;
        call->detail[0] = '\0';
        st = ML_STATUS_OK;
    }
    return st;
}

/* ------------------------------------------------------------ info */

int ml_pk_encode_info(struct ml_call *call, void *obj, CborEncoder *enc)
{
    (void)call;
    const struct pk_obj *k = obj;
    const struct curve *c = is_ec(&k->pk) ? curve_by_grp(ec_grp(&k->pk)) : NULL;
    uint64_t bits = c != NULL ? c->bits : mbedtls_pk_get_bitlen(&k->pk);
    CborEncoder map;
    CborError err = cbor_encoder_create_map(enc, &map, 5);
    err |= cbor_encode_text_stringz(&map, "type");
    err |= cbor_encode_uint(&map, is_rsa(&k->pk) ? ML_PK_TYPE_RSA : ML_PK_TYPE_EC);
    err |= cbor_encode_text_stringz(&map, "bits");
    err |= cbor_encode_uint(&map, bits);
    err |= cbor_encode_text_stringz(&map, "curve");
    err |= c != NULL ? cbor_encode_uint(&map, c->id) : cbor_encode_null(&map);
    err |= cbor_encode_text_stringz(&map, "private");
    err |= cbor_encode_boolean(&map, k->priv);
    err |= cbor_encode_text_stringz(&map, "exportable");
    err |= cbor_encode_boolean(&map, (k->flags & ML_PK_FLAG_EXPORTABLE) != 0);
    err |= cbor_encoder_close_container(enc, &map);
    (void)err; /* the dispatcher checks the encoder (too_large) */
    return ML_STATUS_OK;
}

int ml_op_pk_info(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct pk_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(args_key(call, args, 1, &k));
    ML_CHK(ml_pk_encode_info(call, k, result));
cleanup:
    return st;
}

/* ------------------------------------------------------------ generate */

static int generate_rsa(struct ml_call *call, struct pk_obj *k, uint64_t bits, uint64_t exponent)
{
    int st = ML_STATUS_OK;
    if (bits < ML_RSA_BITS_MIN || bits > ML_RSA_BITS_MAX || bits % 2 != 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: RSA key size must be even and %u..%u bits, got %llu",
                (unsigned)ML_RSA_BITS_MIN, (unsigned)ML_RSA_BITS_MAX, (unsigned long long)bits);
    }
    if (exponent < 3 || exponent % 2 == 0 || exponent > INT_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 4: RSA public exponent must be odd, 3..%d, got %llu", INT_MAX,
                (unsigned long long)exponent);
    }
    ML_CHK_TLS(call, mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), "pk_setup");
    ML_CHK_TLS(call, mbedtls_rsa_gen_key(mbedtls_pk_rsa(k->pk), ml_busy_rng, NULL, (unsigned)bits, (int)exponent),
               "rsa_gen_key");
cleanup:
    return st;
}

static int generate_ec(struct ml_call *call, struct pk_obj *k, uint64_t curve, uint64_t exponent)
{
    mbedtls_ecp_group_id grp = MBEDTLS_ECP_DP_NONE;
    int st = ML_STATUS_OK;
    if (exponent != 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 4: EC keys take exponent 0");
    }
    ML_CHK(ml_curve_lookup(call, curve, &grp));
    ML_CHK_TLS(call, mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), "pk_setup");
    ML_CHK_TLS(call, mbedtls_ecp_gen_key(grp, mbedtls_pk_ec(k->pk), ml_busy_rng, NULL), "ecp_gen_key");
cleanup:
    return st;
}

int ml_op_pk_generate(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, flags = 0;
    uint64_t type = 0, param = 0, exponent = 0;
    mbedtls_ecp_group_id grp = MBEDTLS_ECP_DP_NONE;
    struct pk_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_uint(call, args, 2, &type));
    ML_CHK(ml_arg_uint(call, args, 3, &param));
    ML_CHK(ml_arg_uint(call, args, 4, &exponent));
    ML_CHK(read_flags(call, args, 5, &flags));
    if (type != ML_PK_TYPE_RSA && type != ML_PK_TYPE_EC) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: key type must be %d (RSA) or %d (EC), got %llu", ML_PK_TYPE_RSA,
                ML_PK_TYPE_EC, (unsigned long long)type);
    }
    if (type == ML_PK_TYPE_EC) {
        ML_CHK(ml_curve_lookup(call, param, &grp)); /* checked before the handle is taken */
    }
    ML_CHK(create(call, handle, flags, &k));
    ML_CHK(type == ML_PK_TYPE_RSA ? generate_rsa(call, k, param, exponent) : generate_ec(call, k, param, exponent));
    k->priv = true;
    ML_CHK(ml_pk_encode_info(call, k, result));
cleanup:
    if (st != ML_STATUS_OK && k != NULL) {
        (void)ml_handle_free(call, handle);
    }
    return st;
}

/* ------------------------------------------------------------ import */

static bool contains(const uint8_t *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

/* A parser's error: out_of_memory as ml_fail_mbedtls judges it (any
 * *_ALLOC_FAILED, PEM's base64 buffer included), else what the data was. */
static int parse_error(struct ml_call *call, int ret, const char *what)
{
    int high = -((-ret) & 0xFF80);
    int st = ml_fail_mbedtls(call, ret, what);
    if (st == ML_STATUS_OUT_OF_MEMORY) {
        return st;
    }
    if (high == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG || high == MBEDTLS_ERR_PK_UNKNOWN_NAMED_CURVE ||
        ret == MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE) {
        return ML_STATUS_UNSUPPORTED_ALGORITHM;
    }
    return ML_STATUS_BAD_ARGUMENT;
}

/* Parses DER or NUL-terminated PEM into an empty context: private first,
 * then public. */
static int parse_into(struct ml_call *call, struct pk_obj *k, const uint8_t *data, size_t len, const uint8_t *pwd,
                      size_t pwd_len)
{
    int ret_pub = 0;
    int st = ML_STATUS_OK;
    int ret = mbedtls_pk_parse_key(&k->pk, data, len, pwd, pwd_len, ml_rng_random, NULL);
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        call->mbedtls_code = ret;
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "%s",
                ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED ? "the private key is encrypted: a password is required"
                                                        : "wrong password for the encrypted private key");
    }
    if (ret != 0) {
        mbedtls_pk_free(&k->pk);
        mbedtls_pk_init(&k->pk);
        ret_pub = mbedtls_pk_parse_public_key(&k->pk, data, len);
    }
    if (ret != 0 && ret_pub != 0) {
        mbedtls_pk_free(&k->pk);
        mbedtls_pk_init(&k->pk);
        if (pwd_len > 0 && contains(data, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
            st = ml_fail_mbedtls(call, ret, "wrong password (or a corrupt key)");
            ML_CHK(st == ML_STATUS_OUT_OF_MEMORY ? st : ML_STATUS_BAD_ARGUMENT);
        }
        /* Report the error of the parser the data was meant for. */
        ML_CHK(contains(data, len, "PUBLIC KEY-----") ? parse_error(call, ret_pub, "parse public key")
                                                      : parse_error(call, ret, "parse key"));
    }
    k->priv = ret == 0;
cleanup:
    return st;
}

static int check_imported(struct ml_call *call, const struct pk_obj *k)
{
    size_t bits = mbedtls_pk_get_bitlen(&k->pk);
    int st = ML_STATUS_OK;
    if (!is_rsa(&k->pk) && !is_ec(&k->pk)) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "only RSA and EC keys are supported");
    }
    if (is_rsa(&k->pk) && bits > ML_RSA_BITS_MAX) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "RSA keys above %u bits are not supported, got %lu",
                (unsigned)ML_RSA_BITS_MAX, (unsigned long)bits);
    }
    if (is_ec(&k->pk) && curve_by_grp(ec_grp(&k->pk)) == NULL) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "the key's curve is not supported");
    }
cleanup:
    return st;
}

/* Imports data (DER or PEM, NUL-terminated or not) into a new object. */
static int import(struct ml_call *call, uint32_t handle, const uint8_t *data, size_t len, const uint8_t *pwd,
                  size_t pwd_len, uint32_t flags, struct pk_obj **out)
{
    bool pem = contains(data, len, "-----BEGIN ");
    uint8_t *copy = NULL;
    size_t copy_len = 0;
    struct pk_obj *k = NULL;
    int st = ML_STATUS_OK;
    if (pem && contains(data, len, "Proc-Type: 4,ENCRYPTED")) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM,
                "legacy encrypted PEM (Proc-Type: 4,ENCRYPTED) is not supported: use encrypted PKCS#8");
    }
    if (len == 0) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: the key data is empty");
    }
    if (pem && data[len - 1] != '\0') {
        /* mbedtls_pk_parse_key reads PEM only from a NUL-terminated buffer */
        copy_len = len + 1;
        copy = ml_buf_alloc(copy_len);
        if (copy == NULL) {
            ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %lu-byte PEM copy", (unsigned long)copy_len);
        }
        memcpy(copy, data, len);
        data = copy;
        len = copy_len;
    }
    ML_CHK(create(call, handle, flags, &k));
    ML_CHK(parse_into(call, k, data, len, pwd, pwd_len));
    ML_CHK(check_imported(call, k));
    *out = k;
cleanup:
    if (st != ML_STATUS_OK && k != NULL) {
        (void)ml_handle_free(call, handle);
    }
    ml_buf_free(copy, copy_len);
    return st;
}

int ml_op_pk_import(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0, flags = 0;
    const uint8_t *data = NULL, *pwd = NULL;
    size_t len = 0, pwd_len = 0;
    struct pk_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_arg_bytes(call, args, 2, &data, &len));
    if (cbor_value_is_null(args)) {
        (void)cbor_value_advance_fixed(args);
    } else {
        ML_CHK(ml_arg_bytes(call, args, 3, &pwd, &pwd_len));
    }
    ML_CHK(read_flags(call, args, 4, &flags));
    ML_CHK(import(call, handle, data, len, pwd, pwd_len, flags, &k));
    ML_CHK(ml_pk_encode_info(call, k, result));
cleanup:
    return st;
}

int ml_pk_create_from_der(struct ml_call *call, uint32_t handle, const uint8_t *der, size_t len, uint32_t flags,
                          void **obj)
{
    struct pk_obj *k = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(import(call, handle, der, len, NULL, 0, flags, &k));
    if (obj != NULL) {
        *obj = k;
    }
cleanup:
    return st;
}

/* ------------------------------------------------------------ export */

/* mbedtls_pk_write_*_der write at the end of the buffer: move to the start. */
static int write_der(struct ml_call *call, void *obj, bool private_part, uint8_t *buf, size_t cap, size_t *len)
{
    const struct pk_obj *k = obj;
    int st = ML_STATUS_OK;
    int ret = private_part ? mbedtls_pk_write_key_der(&k->pk, buf, cap) : mbedtls_pk_write_pubkey_der(&k->pk, buf, cap);
    if (ret == MBEDTLS_ERR_ASN1_BUF_TOO_SMALL || ret == MBEDTLS_ERR_PK_BUFFER_TOO_SMALL) {
        ML_FAIL(call, ML_STATUS_TOO_LARGE, "the key's DER does not fit %lu bytes", (unsigned long)cap);
    }
    /* a non-negative ret is the length written */
    ML_CHK_TLS(call, ret < 0 ? ret : 0, private_part ? "pk_write_key_der" : "pk_write_pubkey_der");
    *len = (size_t)ret;
    memmove(buf, buf + cap - *len, *len);
    mbedtls_platform_zeroize(buf + *len, cap - *len);
cleanup:
    return st;
}

int ml_pk_serialise(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len)
{
    return write_der(call, obj, ml_pk_has_private(obj), buf, cap, len);
}

int ml_pk_write_public(struct ml_call *call, void *obj, uint8_t *buf, size_t cap, size_t *len)
{
    return write_der(call, obj, false, buf, cap, len);
}

static int write_raw(struct ml_call *call, struct pk_obj *k, bool private_part, uint8_t *buf, size_t cap, size_t *len)
{
    int st = ML_STATUS_OK;
    if (is_rsa(&k->pk) && private_part) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: RSA keys have no raw private format (use %d)",
                ML_PK_EXPORT_FORMAT_PRIVATE_DER);
    }
    if (is_rsa(&k->pk)) {
        *len = mbedtls_rsa_get_len(mbedtls_pk_rsa(k->pk));
        if (*len > cap) {
            ML_FAIL(call, ML_STATUS_TOO_LARGE, "the modulus does not fit");
        }
        ML_CHK_TLS(call, mbedtls_rsa_export_raw(mbedtls_pk_rsa(k->pk), buf, *len, NULL, 0, NULL, 0, NULL, 0, NULL, 0),
                   "write raw key");
    } else if (private_part) {
        ML_CHK_TLS(call, mbedtls_ecp_write_key_ext(mbedtls_pk_ec(k->pk), len, buf, cap), "write raw key");
    } else {
        ML_CHK_TLS(call, mbedtls_ecp_write_public_key(mbedtls_pk_ec(k->pk), MBEDTLS_ECP_PF_UNCOMPRESSED, len, buf, cap),
                   "write raw key");
    }
cleanup:
    return st;
}

int ml_op_pk_export(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct pk_obj *k = NULL;
    uint64_t format = 0;
    bool private_part = false;
    uint8_t *buf = NULL;
    size_t len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(args_key(call, args, 1, &k));
    ML_CHK(ml_arg_uint(call, args, 2, &format));
    if (format < ML_PK_EXPORT_FORMAT_PRIVATE_DER || format > ML_PK_EXPORT_FORMAT_PRIVATE_RAW) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: format must be %d..%d, got %llu", ML_PK_EXPORT_FORMAT_PRIVATE_DER,
                ML_PK_EXPORT_FORMAT_PRIVATE_RAW, (unsigned long long)format);
    }
    private_part = format == ML_PK_EXPORT_FORMAT_PRIVATE_DER || format == ML_PK_EXPORT_FORMAT_PRIVATE_RAW;
    if (private_part && !k->priv) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the key has no private part");
    }
    if (private_part && (k->flags & ML_PK_FLAG_EXPORTABLE) == 0) {
        ML_FAIL(call, ML_STATUS_NOT_EXPORTABLE, "the key's private part is not exportable");
    }
    buf = ml_buf_alloc(PK_DER_MAX);
    if (buf == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a %u-byte export buffer", (unsigned)PK_DER_MAX);
    }
    if (format == ML_PK_EXPORT_FORMAT_PRIVATE_DER || format == ML_PK_EXPORT_FORMAT_PUBLIC_DER) {
        ML_CHK(write_der(call, k, private_part, buf, PK_DER_MAX, &len));
    } else {
        ML_CHK(write_raw(call, k, private_part, buf, PK_DER_MAX, &len));
    }
    (void)cbor_encode_byte_string(result, buf, len); /* too_large from the dispatcher when over the MTU */
cleanup:
    ml_buf_free(buf, PK_DER_MAX);
    return st;
}

/* ------------------------------------------------------------ sign / verify */

/* Reads alg and hash (arguments pos, pos+1) and checks the hash length. */
static int args_digest(struct ml_call *call, CborValue *args, unsigned pos, mbedtls_md_type_t *md, const uint8_t **hash,
                       size_t *hash_len)
{
    uint64_t alg = 0;
    const mbedtls_md_info_t *info = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, pos, &alg));
    ML_CHK(ml_hash_lookup(call, alg, &info, NULL));
    ML_CHK(ml_arg_bytes(call, args, pos + 1, hash, hash_len));
    if (*hash_len != mbedtls_md_get_size(info)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: a %s digest is %lu bytes, got %lu", pos + 1,
                mbedtls_md_get_name(info), (unsigned long)mbedtls_md_get_size(info), (unsigned long)*hash_len);
    }
    *md = mbedtls_md_get_type(info);
cleanup:
    return st;
}

/* Which key types a signature scheme takes (bad_argument / unsupported). */
static int check_sig_scheme(struct ml_call *call, const struct pk_obj *k, uint64_t scheme, unsigned pos)
{
    int st = ML_STATUS_OK;
    if (scheme != ML_PK_SIGN_SCHEME_PKCS1V15_OR_ECDSA && scheme != ML_PK_SIGN_SCHEME_PSS) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: scheme must be %d (PKCS#1 v1.5 / ECDSA) or %d (PSS)", pos,
                ML_PK_SIGN_SCHEME_PKCS1V15_OR_ECDSA, ML_PK_SIGN_SCHEME_PSS);
    }
    if (is_montgomery(&k->pk)) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "x25519/x448 keys are for key exchange: they cannot sign");
    }
    if (scheme == ML_PK_SIGN_SCHEME_PSS && !is_rsa(&k->pk)) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: PSS needs an RSA key", pos);
    }
cleanup:
    return st;
}

/* ------------------------------------------------------------ strict ECDSA DER */

/* Reads a DER length at der[*off] (before end): the short form, or 0x81 and
 * a value of at least 0x80, the only canonical forms of a length below 256
 * (an ECDSA signature is shorter). Anything else is not canonical. */
static bool der_len(const uint8_t *der, size_t end, size_t *off, size_t *len)
{
    bool ok = *off < end;
    uint8_t b = ok ? der[(*off)++] : 0;
    if (ok && b == 0x81) {
        ok = *off < end && der[*off] >= 0x80;
        b = ok ? der[(*off)++] : 0;
    } else if (b >= 0x80) {
        ok = false;
    }
    *len = b;
    return ok && *len <= end - *off;
}

/* A canonical DER INTEGER that is not negative: at least one content byte,
 * high bit of the first clear, no leading zero byte that is not needed. */
static bool der_uint(const uint8_t *der, size_t end, size_t *off)
{
    size_t len = 0;
    bool ok = *off < end && der[(*off)++] == MBEDTLS_ASN1_INTEGER && der_len(der, end, off, &len) && len > 0;
    const uint8_t *v = der + *off;
    ok = ok && (v[0] & 0x80) == 0 && !(v[0] == 0 && len > 1 && (v[1] & 0x80) == 0);
    *off += ok ? len : 0;
    return ok;
}

/* Whether sig is exactly SEQUENCE { INTEGER r, INTEGER s } in canonical DER,
 * nothing before or after: the one encoding of (r, s) that verifies. Mbed
 * TLS's reader also takes long-form lengths, superfluous or missing sign
 * bytes, and (as an answer other than success) trailing bytes. */
static bool ecdsa_der_canonical(const uint8_t *sig, size_t len)
{
    size_t off = 1, body = 0;
    bool ok = len > 0 && sig[0] == (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) &&
              der_len(sig, len, &off, &body) && off + body == len;
    return ok && der_uint(sig, len, &off) && der_uint(sig, len, &off) && off == len;
}

/* ------------------------------------------------------------ PKCS#1 v2.1 */

/* Salt lengths besides a number of bytes: "as long as the digest" (what
 * Mbed TLS's PSS signing does, shorter only when the key is too small for
 * it), and any length (verify only, when the caller asks). */
#define SALT_DEFAULT (-2)
#define SALT_ANY     MBEDTLS_RSA_SALT_LEN_ANY

/* The parameters of one PSS or OAEP operation: digest (also MGF1's), salt
 * length (PSS), label (OAEP). */
struct v21_params {
    mbedtls_md_type_t md;
    int salt;
    const uint8_t *label;
    size_t label_len;
};

/* Reads the optional salt length at pos: absent is the default, null (when
 * any is allowed) any length, else a uint that fits the key with the
 * digest; bad_argument for a scheme without salt. */
static int args_salt(struct ml_call *call, CborValue *args, unsigned pos, const struct pk_obj *k, uint64_t scheme,
                     bool any_ok, struct v21_params *p)
{
    uint64_t v = 0;
    size_t hlen = mbedtls_md_get_size_from_type(p->md);
    size_t klen = is_rsa(&k->pk) ? mbedtls_rsa_get_len(mbedtls_pk_rsa(k->pk)) : 0;
    int st = ML_STATUS_OK;
    p->salt = SALT_DEFAULT;
    if (call->argc < pos) {
        goto cleanup;
    }
    if (scheme != ML_PK_SIGN_SCHEME_PSS) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: a salt length is for PSS only", pos);
    }
    if (any_ok && cbor_value_is_null(args)) {
        p->salt = SALT_ANY;
        (void)cbor_value_advance_fixed(args);
        goto cleanup;
    }
    ML_CHK(ml_arg_uint(call, args, pos, &v));
    if (klen < hlen + 2 || v > klen - hlen - 2) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg %u: a %llu-byte salt does not fit a %lu-byte key with this digest",
                pos, (unsigned long long)v, (unsigned long)klen);
    }
    p->salt = (int)v;
cleanup:
    if (st == ML_STATUS_OK && p->salt == SALT_DEFAULT && klen >= 2 * hlen + 2) {
        p->salt = (int)hlen;
    } else if (st == ML_STATUS_OK && p->salt == SALT_DEFAULT) {
        p->salt = klen >= hlen + 2 ? (int)(klen - hlen - 2) : 0;
    }
    return st;
}

/* The RSA operations that need PKCS#1 v2.1 padding: PSS signing, OAEP. */
enum rsa_v21_op { RSA_PSS_SIGN, RSA_OAEP_ENCRYPT, RSA_OAEP_DECRYPT };

/* Runs one of them with parameters p (out holds cap bytes; *out_len is the
 * result's length) and puts the key back to the default padding (v1.5, no
 * hash) after, on every path, so its context stays as parsed. */
static int rsa_v21(struct ml_call *call, mbedtls_rsa_context *rsa, enum rsa_v21_op op, const struct v21_params *p,
                   const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
    int st = ML_STATUS_OK;
    ML_CHK_TLS(call, mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V21, p->md), "rsa_set_padding");
    switch (op) {
    case RSA_PSS_SIGN:
        *out_len = mbedtls_rsa_get_len(rsa);
        ML_CHK_TLS(call,
                   mbedtls_rsa_rsassa_pss_sign_ext(rsa, ml_busy_rng, NULL, p->md, (unsigned)in_len, in, p->salt, out),
                   "sign");
        break;
    case RSA_OAEP_ENCRYPT:
        *out_len = mbedtls_rsa_get_len(rsa);
        ML_CHK_TLS(call,
                   mbedtls_rsa_rsaes_oaep_encrypt(rsa, ml_busy_rng, NULL, p->label, p->label_len, in_len, in, out),
                   "encrypt");
        break;
    case RSA_OAEP_DECRYPT:
        ML_CHK_TLS(
            call, mbedtls_rsa_rsaes_oaep_decrypt(rsa, ml_busy_rng, NULL, p->label, p->label_len, out_len, in, out, cap),
            "decrypt");
        break;
    }
cleanup:
    (void)mbedtls_rsa_set_padding(rsa, MBEDTLS_RSA_PKCS_V15, MBEDTLS_MD_NONE);
    return st;
}

int ml_op_pk_sign(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct pk_obj *k = NULL;
    struct v21_params p = {MBEDTLS_MD_NONE, 0, NULL, 0};
    const uint8_t *hash = NULL;
    size_t hash_len = 0, sig_len = 0;
    uint64_t scheme = 0;
    uint8_t *sig = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(args_key(call, args, 1, &k));
    ML_CHK(args_digest(call, args, 2, &p.md, &hash, &hash_len));
    ML_CHK(ml_arg_uint(call, args, 4, &scheme));
    ML_CHK(check_sig_scheme(call, k, scheme, 4));
    ML_CHK(args_salt(call, args, 5, k, scheme, false, &p));
    if (!k->priv) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the key has no private part: it cannot sign");
    }
    sig = ml_buf_alloc(MBEDTLS_PK_SIGNATURE_MAX_SIZE);
    if (sig == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for a signature buffer");
    }
    if (scheme == ML_PK_SIGN_SCHEME_PSS) {
        ML_CHK(rsa_v21(call, mbedtls_pk_rsa(k->pk), RSA_PSS_SIGN, &p, hash, hash_len, sig,
                       MBEDTLS_PK_SIGNATURE_MAX_SIZE, &sig_len));
    } else {
        ML_CHK_TLS(call,
                   mbedtls_pk_sign(&k->pk, p.md, hash, hash_len, sig, MBEDTLS_PK_SIGNATURE_MAX_SIZE, &sig_len,
                                   ml_busy_rng, NULL),
                   "sign");
    }
    (void)cbor_encode_byte_string(result, sig, sig_len);
cleanup:
    ml_buf_free(sig, MBEDTLS_PK_SIGNATURE_MAX_SIZE);
    return st;
}

/* Verifies strictly (SECURITY.md): ECDSA only in canonical DER; RSA only a
 * signature exactly as long as the modulus; PKCS#1 v1.5 as Mbed TLS does it
 * (encodes the expected block and compares it whole); PSS with MGF1 of the
 * same digest and the salt length asked for (null: any). */
int ml_op_pk_verify(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct pk_obj *k = NULL;
    mbedtls_rsa_context *rsa = NULL;
    struct v21_params p = {MBEDTLS_MD_NONE, 0, NULL, 0};
    const uint8_t *hash = NULL, *sig = NULL;
    size_t hash_len = 0, sig_len = 0;
    uint64_t scheme = 0;
    int ret = 0;
    int st = ML_STATUS_OK;
    ML_CHK(args_key(call, args, 1, &k));
    ML_CHK(args_digest(call, args, 2, &p.md, &hash, &hash_len));
    ML_CHK(ml_arg_bytes(call, args, 4, &sig, &sig_len));
    ML_CHK(ml_arg_uint(call, args, 5, &scheme));
    ML_CHK(check_sig_scheme(call, k, scheme, 5));
    ML_CHK(args_salt(call, args, 6, k, scheme, true, &p));
    rsa = is_rsa(&k->pk) ? mbedtls_pk_rsa(k->pk) : NULL;
    if (rsa != NULL ? sig_len != mbedtls_rsa_get_len(rsa) : !ecdsa_der_canonical(sig, sig_len)) {
        ret = MBEDTLS_ERR_PK_BAD_INPUT_DATA; /* answered false below */
    } else if (scheme == ML_PK_SIGN_SCHEME_PSS) {
        ret = mbedtls_rsa_rsassa_pss_verify_ext(rsa, p.md, (unsigned)hash_len, hash, p.md, p.salt, sig);
    } else {
        ret = mbedtls_pk_verify(&k->pk, p.md, hash, hash_len, sig, sig_len);
    }
    /* A wrong or malformed signature is false, not an error. */
    ML_CHK(alloc_failure_only(call, ret, "verify"));
    (void)cbor_encode_boolean(result, ret == 0);
cleanup:
    return st;
}

/* ------------------------------------------------------------ encrypt / decrypt */

/* Reads key, data, scheme, alg and the optional label (OAEP only) into p. */
static int args_crypt(struct ml_call *call, CborValue *args, struct pk_obj **k, const uint8_t **data, size_t *len,
                      uint64_t *scheme, struct v21_params *p)
{
    uint64_t alg = 0;
    const mbedtls_md_info_t *info = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(args_key(call, args, 1, k));
    ML_CHK(ml_arg_bytes(call, args, 2, data, len));
    ML_CHK(ml_arg_uint(call, args, 3, scheme));
    ML_CHK(ml_arg_uint(call, args, 4, &alg));
    if (!is_rsa(&(*k)->pk)) {
        ML_FAIL(call, ML_STATUS_UNSUPPORTED_ALGORITHM, "Mbed TLS offers no EC encryption");
    }
    if (*scheme != ML_PK_ENCRYPT_SCHEME_PKCS1V15 && *scheme != ML_PK_ENCRYPT_SCHEME_OAEP) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 3: scheme must be %d (PKCS#1 v1.5) or %d (OAEP)",
                ML_PK_ENCRYPT_SCHEME_PKCS1V15, ML_PK_ENCRYPT_SCHEME_OAEP);
    }
    p->md = MBEDTLS_MD_NONE;
    if (*scheme == ML_PK_ENCRYPT_SCHEME_OAEP) {
        ML_CHK(ml_hash_lookup(call, alg, &info, NULL));
        p->md = mbedtls_md_get_type(info);
    }
    if (call->argc >= 5 && *scheme != ML_PK_ENCRYPT_SCHEME_OAEP) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 5: a label is for OAEP only");
    }
    if (call->argc >= 5) {
        ML_CHK(ml_arg_bytes(call, args, 5, &p->label, &p->label_len));
    }
cleanup:
    return st;
}

int ml_op_pk_encrypt(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct pk_obj *k = NULL;
    mbedtls_rsa_context *rsa = NULL;
    const uint8_t *data = NULL;
    size_t len = 0, klen = 0, overhead = 0, olen = 0;
    uint64_t scheme = 0;
    struct v21_params p = {MBEDTLS_MD_NONE, 0, NULL, 0};
    uint8_t *out = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(args_crypt(call, args, &k, &data, &len, &scheme, &p));
    rsa = mbedtls_pk_rsa(k->pk);
    klen = mbedtls_rsa_get_len(rsa);
    overhead =
        scheme == ML_PK_ENCRYPT_SCHEME_OAEP ? 2 * (size_t)mbedtls_md_get_size(mbedtls_md_info_from_type(p.md)) + 2 : 11;
    if (klen < overhead || len > klen - overhead) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: at most %lu bytes fit this key and scheme, got %lu",
                (unsigned long)(klen < overhead ? 0 : klen - overhead), (unsigned long)len);
    }
    out = ml_buf_alloc(klen);
    if (out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the ciphertext");
    }
    if (scheme == ML_PK_ENCRYPT_SCHEME_OAEP) {
        ML_CHK(rsa_v21(call, rsa, RSA_OAEP_ENCRYPT, &p, data, len, out, klen, &olen));
    } else {
        ML_CHK_TLS(call, mbedtls_rsa_rsaes_pkcs1_v15_encrypt(rsa, ml_busy_rng, NULL, len, data, out), "encrypt");
    }
    (void)cbor_encode_byte_string(result, out, klen);
cleanup:
    ml_buf_free(out, klen);
    return st;
}

int ml_op_pk_decrypt(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct pk_obj *k = NULL;
    mbedtls_rsa_context *rsa = NULL;
    const uint8_t *data = NULL;
    size_t len = 0, klen = 0, olen = 0;
    uint64_t scheme = 0;
    struct v21_params p = {MBEDTLS_MD_NONE, 0, NULL, 0};
    uint8_t *out = NULL;
    int st = ML_STATUS_OK;
    ML_CHK(args_crypt(call, args, &k, &data, &len, &scheme, &p));
    if (!k->priv) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "the key has no private part: it cannot decrypt");
    }
    rsa = mbedtls_pk_rsa(k->pk);
    klen = mbedtls_rsa_get_len(rsa);
    if (len != klen) {
        ML_FAIL(call, ML_STATUS_CRYPTO_ERROR, "arg 2: a ciphertext for this key is %lu bytes, got %lu",
                (unsigned long)klen, (unsigned long)len);
    }
    out = ml_buf_alloc(klen);
    if (out == NULL) {
        ML_FAIL(call, ML_STATUS_OUT_OF_MEMORY, "no heap for the plaintext");
    }
    if (scheme == ML_PK_ENCRYPT_SCHEME_OAEP) {
        ML_CHK(rsa_v21(call, rsa, RSA_OAEP_DECRYPT, &p, data, len, out, klen, &olen));
    } else {
        ML_CHK_TLS(call, mbedtls_rsa_rsaes_pkcs1_v15_decrypt(rsa, ml_busy_rng, NULL, &olen, data, out, klen),
                   "decrypt");
    }
    (void)cbor_encode_byte_string(result, out, olen);
cleanup:
    ml_buf_free(out, klen);
    return st;
}

/* ------------------------------------------------------------ check pair, curves */

int ml_op_pk_check_pair(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    struct pk_obj *pub = NULL, *prv = NULL;
    int ret = 0;
    int st = ML_STATUS_OK;
    ML_CHK(args_key(call, args, 1, &pub));
    ML_CHK(args_key(call, args, 2, &prv));
    if (!prv->priv) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 2: the key has no private part");
    }
    ret = mbedtls_pk_check_pair(&pub->pk, &prv->pk, ml_busy_rng, NULL);
    ML_CHK(alloc_failure_only(call, ret, "pk_check_pair"));
    (void)cbor_encode_boolean(result, ret == 0);
cleanup:
    return st;
}

int ml_op_pk_curves(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    (void)call;
    (void)args;
    CborEncoder list;
    CborError err = cbor_encoder_create_array(result, &list, CURVE_COUNT);
    for (size_t i = 0; i < CURVE_COUNT; i++) {
        err |= cbor_encode_uint(&list, curves[i].id);
    }
    err |= cbor_encoder_close_container(result, &list);
    (void)err;
    return ML_STATUS_OK;
}
