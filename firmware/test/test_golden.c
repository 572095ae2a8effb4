/* Cross-implementation check: replays protocol/golden.json (through the
 * generated golden_frames.h) against the core, byte for byte. */
#include <string.h>

#include "golden_frames.h"
#include "test_hal.h"
#include "test_util.h"

static void replay(const struct golden_session *s)
{
    th_boot();
    for (size_t i = 0; i < s->count; i++) {
        const struct golden_exchange *x = &s->exchanges[i];
        th_clear();
        th_rx(x->request, x->request_len);
        size_t want = x->response != NULL ? x->response_len : 0;
        if (th_out_len != want || (want > 0 && memcmp(th_out, x->response, want) != 0)) {
            fprintf(stderr, "  session \"%s\", exchange %zu \"%s\":\n", s->name, i, x->meaning);
            ml_print_hex("request ", x->request, x->request_len);
            if (x->response != NULL) {
                ml_print_hex("expected", x->response, x->response_len);
            }
            ml_print_hex("got     ", th_out, th_out_len);
            ml_test_fail(__FILE__, __LINE__, "golden response");
        }
    }
    th_shutdown();
}

ML_TEST(all_sessions)
{
    CHECK(GOLDEN_SESSION_COUNT > 0);
    for (size_t i = 0; i < GOLDEN_SESSION_COUNT; i++) {
        replay(&golden_sessions[i]);
    }
}

/* The same frames fed one byte at a time must give the same output. */
ML_TEST(byte_at_a_time)
{
    for (size_t i = 0; i < GOLDEN_SESSION_COUNT; i++) {
        const struct golden_session *s = &golden_sessions[i];
        th_boot();
        for (size_t j = 0; j < s->count; j++) {
            const struct golden_exchange *x = &s->exchanges[j];
            th_clear();
            for (size_t k = 0; k < x->request_len; k++) {
                th_rx(&x->request[k], 1);
            }
            size_t want = x->response != NULL ? x->response_len : 0;
            CHECK(th_out_len == want && (want == 0 || memcmp(th_out, x->response, want) == 0));
        }
        th_shutdown();
    }
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {ML_CASE(all_sessions), ML_CASE(byte_at_a_time)};
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
