#include "core/ml_busy.h"

#include <stdbool.h>

#include "core/ml_rng.h"
#include "core/protocol_ids.h"
#include "hal/ml_hal.h"

static struct {
    bool armed;   /* a request is running */
    bool started; /* its clock started (first tick) */
    uint32_t request_id;
    uint64_t start_ms;
    uint64_t last_ms;
    uint32_t sent;
    ml_busy_sink_fn sink;
} busy;

void ml_busy_set_sink(ml_busy_sink_fn sink) { busy.sink = sink; }

void ml_busy_begin(uint32_t request_id)
{
    busy.armed = true;
    busy.started = false;
    busy.request_id = request_id;
}

void ml_busy_end(void) { busy.armed = false; }

uint32_t ml_busy_events_sent(void) { return busy.sent; }

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
    if (now - busy.last_ms >= ML_BUSY_INTERVAL_MS && busy.sink != NULL) {
        busy.last_ms = now;
        busy.sink(busy.request_id, now - busy.start_ms);
        busy.sent++;
    }
}

int ml_busy_rng(void *p_rng, unsigned char *out, size_t len)
{
    ml_busy_tick();
    return ml_rng_random(p_rng, out, len);
}
