/*
 * The device's calendar clock (spec.md 7.9): Unix seconds, kept with the
 * HAL's millisecond counter from the moment the host set it (time_set).
 * Mbed TLS reads it through mbedtls_time (MBEDTLS_PLATFORM_TIME_ALT), so
 * certificate and CRL validity are judged against it. Until it is set it
 * counts from 1970-01-01 at boot, on every target alike.
 */
#ifndef ML_CLOCK_H
#define ML_CLOCK_H

#include <stdint.h>

/* Latest time the clock takes: 9999-12-31T23:59:59Z (X.509's GeneralizedTime), in seconds and ms. */
#define ML_CLOCK_MAX    253402300799LL
#define ML_CLOCK_MAX_MS (ML_CLOCK_MAX * 1000 + 999)

/* Boot: the clock reads 0 plus the time since boot; installs mbedtls_time. */
void ml_clock_init(void);
/* Sets the clock to `unix_ms` (0..ML_CLOCK_MAX_MS, Unix time in milliseconds) from now on. */
void ml_clock_set_ms(int64_t unix_ms);
/* The clock now, in seconds (a pinned time while pinned) and in milliseconds (never pinned). */
int64_t ml_clock_now(void);
int64_t ml_clock_now_ms(void);
/* Until ml_clock_unpin, the clock reads `unix_s` (verification "as of" a time). */
void ml_clock_pin(int64_t unix_s);
void ml_clock_unpin(void);

#endif /* ML_CLOCK_H */
