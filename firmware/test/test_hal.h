/* A capturing HAL for the C tests, plus helpers to talk to the core. */
#ifndef TEST_HAL_H
#define TEST_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TH_OUT_CAP (1u << 20)

extern uint8_t th_out[TH_OUT_CAP]; /* everything the device wrote */
extern size_t th_out_len;
extern uint32_t th_mtu;     /* board MTU for the next th_boot() */
extern uint64_t th_ms_step; /* ms the fake clock advances per ml_hal_millis() (1) */

/* Fresh ml_core_init(); the boot event is captured then discarded. */
void th_boot(void);
/* Frees all handles, checks the heap is back at its post-boot baseline,
 * then deinitialises the core. Called by the harness after each case. */
void th_shutdown(void);
bool th_running(void);
void th_clear(void);
size_t th_heap_used(void);

/* Feeds raw wire bytes. */
void th_rx(const uint8_t *data, size_t len);

/* Decodes the i-th SLIP frame in th_out, checks and strips its CRC; returns
 * the CBOR length or (size_t)-1 when there is no such frame / bad CRC. */
size_t th_frame(size_t index, uint8_t *cbor, size_t cap);
size_t th_frame_count(void);

/* Sends one CBOR message (CRC added, SLIP-framed) and returns the CBOR of
 * the single frame it produced ((size_t)-1 unless exactly one). */
size_t th_call(const uint8_t *cbor, size_t len, uint8_t *out, size_t cap);
size_t th_call_hex(const char *hex, uint8_t *out, size_t cap);

struct th_reply {
    bool is_event; /* first item was null */
    uint64_t id;   /* or event id in `status` for events */
    uint64_t status;
    int64_t code;  /* error responses */
    char msg[160]; /* error responses */
    size_t items;
    const uint8_t *result; /* CBOR of the result item (ok responses) */
    size_t result_len;
};
bool th_parse(const uint8_t *cbor, size_t len, struct th_reply *r);

/* Shorthands: call and parse; aborts the case on transport failure. */
bool th_call_parse_hex(const char *hex, struct th_reply *r);

#endif /* TEST_HAL_H */
