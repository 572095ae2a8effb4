#include "link/ml_link.h"

#include <cbor.h>
#include <string.h>

#include "core/ml_config.h"
#include "core/ml_crc32.h"
#include "dispatch/ml_dispatch.h"
#include "hal/ml_hal.h"
#include "link/ml_slip.h"

static uint8_t rx_buf[ML_CFG_MTU];
static uint8_t tx_buf[ML_CFG_MTU];
static struct ml_slip_decoder decoder;
static struct ml_link_stats stats;
static uint32_t link_mtu;

void ml_link_init(uint32_t mtu)
{
    link_mtu = mtu < ML_CFG_MTU ? mtu : ML_CFG_MTU;
    ml_slip_decoder_init(&decoder, rx_buf, link_mtu);
    memset(&stats, 0, sizeof stats);
}

uint32_t ml_link_mtu(void) { return link_mtu; }

void ml_link_rx_reset(void) { ml_slip_decoder_reset(&decoder); }

const struct ml_link_stats *ml_link_get_stats(void) { return &stats; }

static bool hal_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    return ml_hal_serial_write(data, len);
}

void ml_link_send(const uint8_t *body, size_t len)
{
    if (ml_slip_encode(body, len, hal_write, NULL)) {
        stats.tx_frames++;
    } else {
        stats.tx_dropped++;
    }
}

static void append_crc(uint8_t *buf, size_t len)
{
    uint32_t crc = ml_crc32(buf, len);
    buf[len] = (uint8_t)(crc >> 24);
    buf[len + 1] = (uint8_t)(crc >> 16);
    buf[len + 2] = (uint8_t)(crc >> 8);
    buf[len + 3] = (uint8_t)crc;
}

void ml_link_send_boot_event(const uint8_t boot_id[8])
{
    uint8_t buf[32];
    CborEncoder enc, arr;
    cbor_encoder_init(&enc, buf, sizeof buf - ML_CRC_SIZE, 0);
    (void)cbor_encoder_create_array(&enc, &arr, 3);
    (void)cbor_encode_null(&arr);
    (void)cbor_encode_uint(&arr, ML_EVENT_BOOT);
    (void)cbor_encode_byte_string(&arr, boot_id, 8);
    (void)cbor_encoder_close_container(&enc, &arr);
    size_t n = cbor_encoder_get_buffer_size(&enc, buf);
    append_crc(buf, n);
    ml_link_send(buf, n + ML_CRC_SIZE);
}

static void drop(enum ml_drop_reason reason)
{
    stats.rx_dropped++;
    stats.rx_drop[reason]++;
    uint8_t buf[32];
    CborEncoder enc, arr;
    cbor_encoder_init(&enc, buf, sizeof buf - ML_CRC_SIZE, 0);
    (void)cbor_encoder_create_array(&enc, &arr, 4);
    (void)cbor_encode_null(&arr);
    (void)cbor_encode_uint(&arr, ML_EVENT_FRAME_DROPPED);
    (void)cbor_encode_uint(&arr, reason);
    (void)cbor_encode_uint(&arr, stats.rx_dropped);
    (void)cbor_encoder_close_container(&enc, &arr);
    size_t n = cbor_encoder_get_buffer_size(&enc, buf);
    append_crc(buf, n);
    ml_link_send(buf, n + ML_CRC_SIZE);
}

static void on_frame(const uint8_t *body, size_t len)
{
    if (len < ML_CRC_SIZE + 1) {
        drop(ML_DROP_TOO_SHORT);
        return;
    }
    size_t cbor_len = len - ML_CRC_SIZE;
    uint32_t got = (uint32_t)body[cbor_len] << 24 | (uint32_t)body[cbor_len + 1] << 16 |
                   (uint32_t)body[cbor_len + 2] << 8 | body[cbor_len + 3];
    if (got != ml_crc32(body, cbor_len)) {
        drop(ML_DROP_BAD_CRC);
        return;
    }
    stats.rx_frames++; /* CRC ok (messages.cddl), counted before dispatch so stats sees itself */
    size_t n = ml_dispatch(body, cbor_len, tx_buf, link_mtu);
    if (n == 0) {
        drop(ML_DROP_BAD_MESSAGE);
        return;
    }
    ml_link_send(tx_buf, n);
}

void ml_link_rx(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len;) {
        enum ml_slip_result r;
        i += ml_slip_decode(&decoder, data + i, len - i, &r);
        switch (r) {
        case ML_SLIP_FRAME:
            on_frame(decoder.buf, decoder.frame_len);
            break;
        case ML_SLIP_BAD_ESCAPE:
            drop(ML_DROP_BAD_ESCAPE);
            break;
        case ML_SLIP_OVERSIZE:
            drop(ML_DROP_OVERSIZE);
            break;
        default:
            break;
        }
    }
}
