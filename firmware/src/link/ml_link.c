#include "link/ml_link.h"

#include <cbor.h>
#include <string.h>

#include "core/ml_busy.h"
#include "core/ml_config.h"
#include "core/ml_crc32.h"
#include "core/ml_device.h"
#include "dispatch/ml_dispatch.h"
#include "hal/ml_hal.h"
#include "link/ml_record.h"
#include "link/ml_slip.h"

static uint8_t rx_buf[ML_CFG_MTU]; /* answers are encoded into the record (link/ml_record.h) */
static struct ml_slip_decoder decoder;
static struct ml_link_stats *const stats = &ml_device.link; /* read by the stats op */

uint32_t ml_link_mtu(void) { return ml_device.mtu; }

void ml_link_rx_reset(void) { ml_slip_decoder_reset(&decoder); }

static bool hal_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    return ml_hal_serial_write(data, len);
}

void ml_link_send(uint8_t *msg, size_t len)
{
    uint32_t crc = ml_crc32(msg, len);
    msg[len] = (uint8_t)(crc >> 24);
    msg[len + 1] = (uint8_t)(crc >> 16);
    msg[len + 2] = (uint8_t)(crc >> 8);
    msg[len + 3] = (uint8_t)crc;
    if (ml_slip_encode(msg, len + ML_CRC_SIZE, hal_write, NULL)) {
        stats->tx_frames++;
    } else {
        stats->tx_dropped++;
    }
}

/* An event `[null, event, ...]` being encoded into a small stack buffer
 * (room left for the CRC). */
struct event {
    uint8_t buf[32];
    CborEncoder enc;
    CborEncoder arr;
};

static void event_open(struct event *e, size_t items, uint64_t event)
{
    cbor_encoder_init(&e->enc, e->buf, sizeof e->buf - ML_CRC_SIZE, 0);
    (void)cbor_encoder_create_array(&e->enc, &e->arr, items);
    (void)cbor_encode_null(&e->arr);
    (void)cbor_encode_uint(&e->arr, event);
}

static void event_send(struct event *e)
{
    (void)cbor_encoder_close_container(&e->enc, &e->arr);
    ml_link_send(e->buf, cbor_encoder_get_buffer_size(&e->enc, e->buf));
}

void ml_link_send_boot_event(const uint8_t boot_id[8])
{
    struct event e;
    event_open(&e, 3, ML_EVENT_BOOT);
    (void)cbor_encode_byte_string(&e.arr, boot_id, 8);
    event_send(&e);
}

/* frame_dropped `[null, 2, reason, count]` and busy `[null, 3, id, ms]`. */
static void send_uint_event(uint64_t event, uint64_t a, uint64_t b)
{
    struct event e;
    event_open(&e, 4, event);
    (void)cbor_encode_uint(&e.arr, a);
    (void)cbor_encode_uint(&e.arr, b);
    event_send(&e);
}

static void send_busy_event(uint32_t request_id, uint64_t elapsed_ms)
{
    send_uint_event(ML_EVENT_BUSY, request_id, elapsed_ms);
}

void ml_link_init(uint32_t mtu)
{
    ml_device.mtu = mtu < ML_CFG_MTU ? mtu : ML_CFG_MTU;
    ml_slip_decoder_init(&decoder, rx_buf, ml_device.mtu);
    memset(&ml_device.link, 0, sizeof ml_device.link);
    ml_record_init();
    ml_busy_set_sink(send_busy_event); /* core/ sends busy events through the link */
}

static void drop(enum ml_drop_reason reason)
{
    stats->rx_dropped++;
    stats->rx_drop[reason]++;
    send_uint_event(ML_EVENT_FRAME_DROPPED, reason, stats->rx_dropped);
}

/* A request: answered from the record when it is a resend (same id, same
 * CRC), else run with its answer encoded into the record and sent from
 * there. Returns the answer's length (0: none fits, not even an error). */
static size_t on_request(struct ml_request *rq, uint32_t crc)
{
    uint8_t *answer = NULL;
    size_t n = 0;
    if (ml_record_lookup(rq->call.id, crc, &answer, &n)) {
        stats->rx_replayed++;
    } else {
        /* The answer leaves room for its CRC (mtu > ML_CRC_SIZE here). */
        n = ml_dispatch_run(rq, answer, ml_device.mtu - ML_CRC_SIZE);
        if (rq->status == ML_STATUS_OK && rq->call.op == ML_OP_HELLO) {
            ml_record_new_session(rq->call.id);
        }
        ml_record_commit(n);
    }
    if (n != 0) {
        ml_link_send(answer, n);
    }
    return n;
}

static void on_frame(const uint8_t *body, size_t len)
{
    size_t cbor_len = len > ML_CRC_SIZE ? len - ML_CRC_SIZE : 0;
    const uint8_t *crc = body + cbor_len;
    uint32_t sum = cbor_len == 0 ? 0 : ml_crc32(body, cbor_len);
    struct ml_request rq;
    if (cbor_len == 0) {
        drop(ML_DROP_TOO_SHORT);
    } else if (((uint32_t)crc[0] << 24 | (uint32_t)crc[1] << 16 | (uint32_t)crc[2] << 8 | crc[3]) != sum) {
        drop(ML_DROP_BAD_CRC);
    } else {
        stats->rx_frames++; /* CRC ok (messages.cddl), counted before dispatch so stats sees itself */
        if (!ml_dispatch_open(&rq, body, cbor_len) || on_request(&rq, sum) == 0) {
            drop(ML_DROP_BAD_MESSAGE);
        }
    }
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
