/*
 * busy events: a request that runs long (key generation, prime search, DH
 * with a big modulus) tells the host it is still alive by sending
 * `[null, 3, request-id, elapsed-ms]` about every ML_BUSY_INTERVAL_MS
 * (messages.cddl busy-event), so the host re-arms that call's timeout.
 *
 * The dispatcher names the running request with ml_busy_begin() (no clock
 * read, nothing sent: quick ops pay nothing else). Long operations call
 * ml_busy_tick() from their inner loops, usually through ml_busy_rng(), the
 * device DRBG wrapped as an Mbed TLS f_rng: the first tick starts the clock,
 * later ticks send an event once an interval has passed.
 *
 * The core sits below the link, so it does not send frames itself: the
 * link registers a sink at init that frames and sends the event.
 */
#ifndef ML_BUSY_H
#define ML_BUSY_H

#include <stddef.h>
#include <stdint.h>

/* Sends `[null, 3, request_id, elapsed_ms]` (the link's framing). */
typedef void (*ml_busy_sink_fn)(uint32_t request_id, uint64_t elapsed_ms);
/* Sets where busy events go; none are sent (or counted) until one is set. */
void ml_busy_set_sink(ml_busy_sink_fn sink);
/* A request starts running (called by the dispatcher before the handler). */
void ml_busy_begin(uint32_t request_id);
/* The request finished: later ticks send nothing until the next begin. */
void ml_busy_end(void);
/* Sends a busy event when an interval has passed since the last one. */
void ml_busy_tick(void);
/* The device DRBG (ml_rng_random) with a tick first; p_rng is ignored. */
int ml_busy_rng(void *p_rng, unsigned char *out, size_t len);
/* Busy events sent since boot (for tests). */
uint32_t ml_busy_events_sent(void);

#endif /* ML_BUSY_H */
