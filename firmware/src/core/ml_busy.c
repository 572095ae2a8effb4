#include "core/ml_busy.h"

#include <cbor.h>
#include <stdbool.h>

#include "core/ml_crc32.h"
#include "core/ml_rng.h"
#include "hal/ml_hal.h"
#include "link/ml_link.h"

static struct {
    bool armed;   /* a request is running */
    bool started; /* its clock started (first tick) */
    uint32_t request_id;
    uint64_t start_ms;
    uint64_t last_ms;
    uint32_t sent;
} busy;

void ml_busy_begin(uint32_t request_id)
{
    busy.armed = true;
    busy.started = false;
    busy.request_id = request_id;
}

void ml_busy_end(void) { busy.armed = false; }

uint32_t ml_busy_events_sent(void) { return busy.sent; }

static void send_event(uint64_t elapsed_ms)
{
    uint8_t buf[32];
    CborEncoder enc, arr;
    cbor_encoder_init(&enc, buf, sizeof buf - ML_CRC_SIZE, 0);
    CborError err = cbor_encoder_create_array(&enc, &arr, 4);
    err |= cbor_encode_null(&arr);
    err |= cbor_encode_uint(&arr, ML_EVENT_BUSY);
    err |= cbor_encode_uint(&arr, busy.request_id);
    err |= cbor_encode_uint(&arr, elapsed_ms);
    err |= cbor_encoder_close_container(&enc, &arr);
    if (err != CborNoError) {
        return;
    }
    size_t n = cbor_encoder_get_buffer_size(&enc, buf);
    uint32_t crc = ml_crc32(buf, n);
    buf[n] = (uint8_t)(crc >> 24);
    buf[n + 1] = (uint8_t)(crc >> 16);
    buf[n + 2] = (uint8_t)(crc >> 8);
    buf[n + 3] = (uint8_t)crc;
    ml_link_send(buf, n + ML_CRC_SIZE);
    busy.sent++;
}

void ml_busy_tick(void)
{
    if (!busy.armed) {
        return;
    }
    uint64_t now = ml_hal_millis();
    if (!busy.started) {
        busy.started = true;
        busy.start_ms = now;
        busy.last_ms = now;
        return;
    }
    if (now - busy.last_ms >= ML_BUSY_INTERVAL_MS) {
        busy.last_ms = now;
        send_event(now - busy.start_ms);
    }
}

int ml_busy_rng(void *p_rng, unsigned char *out, size_t len)
{
    ml_busy_tick();
    return ml_rng_random(p_rng, out, len);
}
