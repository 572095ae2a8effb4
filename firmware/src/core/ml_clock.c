#include "core/ml_clock.h"

#include <mbedtls/platform.h>
#include <mbedtls/platform_time.h>
#include <stdbool.h>

#include "hal/ml_hal.h"

static int64_t offset_ms; /* Unix time in ms = ml_hal_millis() + offset_ms */
static bool pinned;
static int64_t pinned_s;

/* MBEDTLS_PLATFORM_TIME_ALT: what mbedtls_time() answers. */
static mbedtls_time_t clock_time(mbedtls_time_t *timer)
{
    mbedtls_time_t t = (mbedtls_time_t)ml_clock_now();
    if (timer != NULL) {
        *timer = t;
    }
    return t;
}

void ml_clock_init(void)
{
    offset_ms = -(int64_t)ml_hal_millis(); /* the HAL's counter may start anywhere */
    pinned = false;
    pinned_s = 0;
    (void)mbedtls_platform_set_time(clock_time);
}

void ml_clock_set_ms(int64_t unix_ms) { offset_ms = unix_ms - (int64_t)ml_hal_millis(); }

int64_t ml_clock_now_ms(void)
{
    int64_t ms = (int64_t)ml_hal_millis() + offset_ms;
    return ms >= 0 ? ms : 0;
}

int64_t ml_clock_now(void) { return pinned ? pinned_s : ml_clock_now_ms() / 1000; }

void ml_clock_pin(int64_t unix_s)
{
    pinned_s = unix_s;
    pinned = true;
}

void ml_clock_unpin(void) { pinned = false; }
