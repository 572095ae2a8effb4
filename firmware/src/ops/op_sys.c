/* sys module: hello, echo, stats, free. */
#include <mbedtls/version.h>

#include "core/ml_config.h"
#include "core/ml_device.h"
#include "core/ml_handles.h"
#include "core/ml_heap.h"
#include "core/ml_rng.h"
#include "hal/ml_hal.h"
#include "ops/ml_hash.h"
#include "ops/ml_ops.h"
#include "ops/ml_pk.h"
#include "ops/ml_tls.h"
#include "ops/ml_x509_trust.h"
#include "store/ml_keystore.h"

#define HELLO_SEED_MAX 64

static CborError put_uint(CborEncoder *map, const char *key, uint64_t value)
{
    CborError err = cbor_encode_text_stringz(map, key);
    return err | cbor_encode_uint(map, value);
}

static CborError put_text(CborEncoder *map, const char *key, const char *value)
{
    CborError err = cbor_encode_text_stringz(map, key);
    return err | cbor_encode_text_stringz(map, value);
}

static CborError put_uint_list(CborEncoder *map, const char *key, const uint32_t *values, size_t n)
{
    CborEncoder list;
    CborError err = cbor_encode_text_stringz(map, key);
    err |= cbor_encoder_create_array(map, &list, n);
    for (size_t i = 0; i < n; i++) {
        err |= cbor_encode_uint(&list, values[i]);
    }
    return err | cbor_encoder_close_container(map, &list);
}

/* hello's key_store, persistent, slots (spec.md 7.4). */
#define HELLO_STORE_FIELDS 3
static CborError put_store(CborEncoder *map)
{
    const struct ml_store_medium *m = ml_keystore_medium();
    CborError err = put_text(map, "key_store", m != NULL ? m->kind : "volatile");
    err |= cbor_encode_text_stringz(map, "persistent");
    err |= cbor_encode_boolean(map, m != NULL && m->persistent);
    return err | put_uint(map, "slots", ml_keystore_slots());
}

/* hello's trust_cas_max, trust_crls_max (spec.md 7.9). */
#define HELLO_TRUST_FIELDS 2
static CborError put_trust(CborEncoder *map)
{
    CborError err = put_uint(map, "trust_cas_max", ML_CFG_TRUST_CAS_MAX);
    return err | put_uint(map, "trust_crls_max", ML_CFG_TRUST_CRLS_MAX);
}

/* hello's TLS limits (spec.md 7.12): sessions at once, the largest record
 * taken and sent, the bytes of each of a session's rings. */
#define HELLO_TLS_FIELDS 4
static CborError put_tls(CborEncoder *map)
{
    CborError err = put_uint(map, "tls_sessions_max", ML_CFG_TLS_SESSIONS_MAX);
    err |= put_uint(map, "tls_in_record", MBEDTLS_SSL_IN_CONTENT_LEN);
    err |= put_uint(map, "tls_out_record", MBEDTLS_SSL_OUT_CONTENT_LEN);
    return err | put_uint(map, "tls_ring", ML_CFG_TLS_RING);
}

/* hello's "dtls" limits (spec.md 7.13): handshake bytes buffered, the longest own CID, the largest datagram. */
#define HELLO_DTLS_FIELDS 1
static CborError put_dtls(CborEncoder *map)
{
    CborEncoder dtls;
    CborError err = cbor_encode_text_stringz(map, "dtls");
    err |= cbor_encoder_create_map(map, &dtls, 3);
    err |= put_uint(&dtls, "dtls_buffering", MBEDTLS_SSL_DTLS_MAX_BUFFERING);
    err |= put_uint(&dtls, "cid_max", MBEDTLS_SSL_CID_IN_LEN_MAX);
    err |= put_uint(&dtls, "datagram_max", ML_DTLS_DATAGRAM_MAX);
    return err | cbor_encoder_close_container(map, &dtls);
}

/* hello's result (spec.md 7.4); the dispatcher checks the encoder (too_large). */
static void encode_hello(CborEncoder *result)
{
    const struct ml_board *board = ml_hal_board();
    struct ml_heap_stats hs;
    ml_heap_get_stats(&hs);
    uint32_t hashes[16], curves[16];
    size_t nhashes = ml_hash_list(hashes, sizeof hashes / sizeof hashes[0]);
    size_t ncurves = ml_curve_list(curves, sizeof curves / sizeof curves[0]);
    char mbedtls_version[16];
    mbedtls_version_get_string(mbedtls_version); /* writes at most 9 bytes */

    CborEncoder map;
    CborError err = cbor_encoder_create_map(
        result, &map, 14 + HELLO_STORE_FIELDS + HELLO_TRUST_FIELDS + HELLO_TLS_FIELDS + HELLO_DTLS_FIELDS);
    err |= put_uint(&map, "proto", ML_PROTOCOL_VERSION);
    err |= put_text(&map, "fw", ML_FW_VERSION);
    err |= put_text(&map, "mbedtls", mbedtls_version);
    err |= put_text(&map, "board", board->name);
    err |= put_uint(&map, "mtu", ml_device.mtu);
    err |= put_uint(&map, "window", board->window);
    err |= put_uint(&map, "max_handles", ML_CFG_MAX_HANDLES);
    err |= put_uint(&map, "heap_size", hs.size);
    err |= put_uint(&map, "heap_used", hs.used);
    err |= put_uint(&map, "heap_peak", hs.peak);
    err |= cbor_encode_text_stringz(&map, "boot_id");
    err |= cbor_encode_byte_string(&map, ml_device.boot_id, 8);
    err |= put_text(&map, "entropy", board->entropy);
    err |= put_uint_list(&map, "hashes", hashes, nhashes);
    err |= put_uint_list(&map, "curves", curves, ncurves);
    err |= put_store(&map);
    err |= put_trust(&map);
    err |= put_tls(&map);
    err |= put_dtls(&map);
    err |= cbor_encoder_close_container(result, &map);
    (void)err;
}

int ml_op_hello(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const uint8_t *seed = NULL;
    size_t len = 0;
    int st = ML_STATUS_OK;
    if (call->argc == 1) {
        ML_CHK(ml_arg_bytes(call, args, 1, &seed, &len));
        if (len > HELLO_SEED_MAX) {
            ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 1: seed must be at most %u bytes, got %lu", HELLO_SEED_MAX,
                    (unsigned long)len);
        }
        ML_CHK_TLS(call, ml_rng_mix(seed, len), "reseed");
    }
    encode_hello(result);
cleanup:
    return st;
}

int ml_op_echo(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    const uint8_t *data = NULL;
    size_t len = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_bytes(call, args, 1, &data, &len));
    (void)cbor_encode_byte_string(result, data, len);
cleanup:
    return st;
}

/* Targets that paint their stack (stm32f4) override this. */
__attribute__((weak)) size_t ml_hal_stack_peak(void) { return 0; }

int ml_op_stats(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    (void)call;
    (void)args;
    struct ml_heap_stats hs;
    ml_heap_get_stats(&hs);
    const struct ml_link_stats *ls = &ml_device.link;
    CborEncoder map;
    CborError err = cbor_encoder_create_map(result, &map, 20);
    err |= put_uint(&map, "heap_size", hs.size);
    err |= put_uint(&map, "heap_used", hs.used);
    err |= put_uint(&map, "heap_peak", hs.peak);
    err |= put_uint(&map, "heap_blocks", hs.blocks);
    err |= put_uint(&map, "handles_used", ml_handles_used());
    err |= put_uint(&map, "max_handles", ML_CFG_MAX_HANDLES);
    err |= put_uint(&map, "rx_frames", ls->rx_frames);
    err |= put_uint(&map, "rx_dropped", ls->rx_dropped);
    err |= put_uint(&map, "rx_bad_crc", ls->rx_drop[ML_DROP_BAD_CRC]);
    err |= put_uint(&map, "rx_bad_escape", ls->rx_drop[ML_DROP_BAD_ESCAPE]);
    err |= put_uint(&map, "rx_oversize", ls->rx_drop[ML_DROP_OVERSIZE]);
    err |= put_uint(&map, "rx_too_short", ls->rx_drop[ML_DROP_TOO_SHORT]);
    err |= put_uint(&map, "rx_bad_message", ls->rx_drop[ML_DROP_BAD_MESSAGE]);
    err |= put_uint(&map, "rx_replayed", ls->rx_replayed);
    err |= put_uint(&map, "tx_frames", ls->tx_frames);
    err |= put_uint(&map, "tx_dropped", ls->tx_dropped);
    err |= put_uint(&map, "stack_peak", ml_hal_stack_peak());
    err |= put_uint(&map, "oom_answers", ml_device.oom_answers);
    err |= put_uint(&map, "tls_sessions", ml_tls_sessions_live());
    err |= put_uint(&map, "tls_confs", ml_tls_confs_live());
    err |= cbor_encoder_close_container(result, &map);
    (void)err;
    return ML_STATUS_OK;
}

int ml_op_free(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint32_t handle = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_handle(call, args, 1, &handle));
    ML_CHK(ml_handle_free(call, handle));
    (void)cbor_encode_null(result);
cleanup:
    return st;
}
