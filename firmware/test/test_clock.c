/*
 * The device clock (core/ml_clock.c and op time_set, spec.md 7.9): read and
 * set in milliseconds, kept with the HAL's millisecond counter, judged by
 * Mbed TLS through mbedtls_time, pinned for one verification and released,
 * lost in a reboot. The test HAL's counter advances 1 ms per read.
 */
#include <cbor.h>
#include <mbedtls/platform_time.h>

#include "core/ml_clock.h"
#include "core/protocol_ids.h"
#include "test_hal.h"
#include "test_util.h"

/* The unsigned result of an ok reply. */
static uint64_t clock_of(const struct th_reply *r)
{
    CborParser p;
    CborValue v;
    uint64_t t = 0;
    CHECK(r->status == 0);
    CHECK(cbor_parser_init(r->result, r->result_len, 0, &p, &v) == CborNoError && cbor_value_is_unsigned_integer(&v));
    (void)cbor_value_get_uint64(&v, &t);
    return t;
}

ML_TEST(time_set_keeps_time)
{
    struct th_reply r;
    th_boot();
    /* [1, 4]: read; a few ms after boot, counted from 1970 */
    CHECK(th_call_parse_hex("82 01 04", &r));
    CHECK(clock_of(&r) < 1000);
    /* [2, 4, 1700000000000]: set, answered with the clock right after */
    CHECK(th_call_parse_hex("83 02 04 1b 00 00 01 8b cf e5 68 00", &r));
    uint64_t set = clock_of(&r);
    CHECK(set >= 1700000000000u && set < 1700000000000u + 100u);
    CHECK(th_call_parse_hex("82 03 04", &r));
    CHECK(clock_of(&r) > set); /* the counter moved on */
    CHECK(mbedtls_time(NULL) == 1700000000);
    /* the last millisecond of 9999 is taken, the next one is bad_argument */
    CHECK(th_call_parse_hex("83 04 04 1b 00 00 e6 77 d2 1f db ff", &r));
    CHECK(clock_of(&r) >= 253402300799999u);
    CHECK(th_call_parse_hex("83 05 04 1b 00 00 e6 77 d2 1f dc 00", &r));
    CHECK_EQ(r.status, ML_STATUS_BAD_ARGUMENT);
    CHECK(th_call_parse_hex("83 06 04 40", &r)); /* not a number */
    CHECK_EQ(r.status, ML_STATUS_BAD_REQUEST);
    th_shutdown();
    /* a reboot forgets it */
    th_boot();
    CHECK(th_call_parse_hex("82 01 04", &r));
    CHECK(clock_of(&r) < 1000);
    th_shutdown();
}

ML_TEST(pin_and_unpin)
{
    struct th_reply r;
    th_boot();
    CHECK(th_call_parse_hex("83 01 04 1b 00 00 01 8b cf e5 68 00", &r));
    ml_clock_pin(42);
    CHECK(mbedtls_time(NULL) == 42);
    CHECK(ml_clock_now() == 42);
    CHECK(ml_clock_now_ms() >= 1700000000000); /* time_set's answers are never pinned */
    ml_clock_unpin();
    CHECK(mbedtls_time(NULL) == 1700000000);
    th_shutdown();
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(time_set_keeps_time),
        ML_CASE(pin_and_unpin),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
