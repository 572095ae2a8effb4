#include "test_hal.h"

#include <cbor.h>
#include <stdlib.h>
#include <string.h>

#include "app/ml_core.h"
#include "core/ml_config.h"
#include "core/ml_crc32.h"
#include "core/ml_handles.h"
#include "core/ml_heap.h"
#include "hal/ml_hal.h"
#include "link/ml_slip.h"
#include "test_util.h"

uint8_t th_out[TH_OUT_CAP];
size_t th_out_len;
uint32_t th_mtu = ML_CFG_MTU;
uint64_t th_ms_step = 1;

static struct ml_board board = {
    .name = "test",
    .entropy = "deterministic test source (NOT random)",
    .mtu = ML_CFG_MTU,
    .window = ML_CFG_WINDOW,
};
static bool running;
static size_t baseline;
static uint64_t prng_state = 0x9e3779b97f4a7c15u;
static uint64_t fake_ms;

const struct ml_board *ml_hal_board(void) { return &board; }

bool ml_hal_serial_write(const uint8_t *data, size_t len)
{
    if (th_out_len + len > TH_OUT_CAP) {
        abort();
    }
    memcpy(th_out + th_out_len, data, len);
    th_out_len += len;
    return true;
}

int ml_hal_entropy(uint8_t *out, size_t len, size_t *olen)
{
    for (size_t i = 0; i < len; i++) {
        prng_state ^= prng_state << 13;
        prng_state ^= prng_state >> 7;
        prng_state ^= prng_state << 17;
        out[i] = (uint8_t)prng_state;
    }
    *olen = len;
    return 0;
}

uint64_t ml_hal_millis(void) { return fake_ms += th_ms_step; }

void ml_hal_reset(void) { abort(); }

void th_clear(void) { th_out_len = 0; }

size_t th_heap_used(void)
{
    struct ml_heap_stats s;
    ml_heap_get_stats(&s);
    return s.used;
}

void th_boot(void)
{
    if (running) {
        th_shutdown();
    }
    th_clear();
    board.mtu = th_mtu;
    CHECK(ml_core_init() == 0);
    running = true;
    CHECK_EQ(th_frame_count(), 1); /* the boot event */
    th_clear();
    baseline = th_heap_used();
}

void th_shutdown(void)
{
    ml_handles_free_all();
    size_t used = th_heap_used();
    if (used != baseline) {
        fprintf(stderr, "  heap leak: %zu bytes used, baseline %zu\n", used, baseline);
        ml_test_fail(__FILE__, __LINE__, "heap back at baseline");
    }
    CHECK_EQ(ml_core_deinit(), 0);
    running = false;
    th_mtu = ML_CFG_MTU;
}

bool th_running(void) { return running; }

void th_rx(const uint8_t *data, size_t len) { ml_core_rx(data, len); }

size_t th_frame_count(void)
{
    size_t n = 0;
    uint8_t dummy[1];
    while (th_frame(n, dummy, 0) != (size_t)-2) {
        n++;
    }
    return n;
}

/* Returns (size_t)-2 when there is no frame `index`. */
size_t th_frame(size_t index, uint8_t *cbor, size_t cap)
{
    static uint8_t body[ML_CFG_MTU + 8];
    struct ml_slip_decoder d;
    ml_slip_decoder_init(&d, body, sizeof body);
    size_t seen = 0;
    for (size_t i = 0; i < th_out_len; i++) {
        enum ml_slip_result r = ml_slip_decode_byte(&d, th_out[i]);
        if (r == ML_SLIP_FRAME) {
            if (seen++ == index) {
                if (d.frame_len < 5) {
                    return (size_t)-1;
                }
                size_t n = d.frame_len - 4;
                uint32_t crc =
                    (uint32_t)body[n] << 24 | (uint32_t)body[n + 1] << 16 | (uint32_t)body[n + 2] << 8 | body[n + 3];
                if (crc != ml_crc32(body, n)) {
                    return (size_t)-1;
                }
                if (n <= cap) {
                    memcpy(cbor, body, n);
                }
                return n;
            }
        } else if (r != ML_SLIP_MORE) {
            return (size_t)-1;
        }
    }
    return (size_t)-2;
}

static bool send_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    ml_core_rx(data, len);
    return true;
}

size_t th_call(const uint8_t *cbor, size_t len, uint8_t *out, size_t cap)
{
    static uint8_t body[2 * ML_CFG_MTU];
    memcpy(body, cbor, len);
    uint32_t crc = ml_crc32(cbor, len);
    body[len] = (uint8_t)(crc >> 24);
    body[len + 1] = (uint8_t)(crc >> 16);
    body[len + 2] = (uint8_t)(crc >> 8);
    body[len + 3] = (uint8_t)crc;
    th_clear();
    (void)ml_slip_encode(body, len + 4, send_write, NULL);
    if (th_frame_count() != 1) {
        fprintf(stderr, "  expected one frame, got %zu\n", th_frame_count());
        return (size_t)-1;
    }
    return th_frame(0, out, cap);
}

size_t th_call_hex(const char *hex, uint8_t *out, size_t cap)
{
    static uint8_t msg[2 * ML_CFG_MTU];
    size_t n = ml_unhex(hex, msg, sizeof msg);
    return th_call(msg, n, out, cap);
}

bool th_parse(const uint8_t *cbor, size_t len, struct th_reply *r)
{
    memset(r, 0, sizeof *r);
    CborParser parser;
    CborValue it, el;
    size_t n = 0;
    if (cbor_parser_init(cbor, len, 0, &parser, &it) != CborNoError || !cbor_value_is_array(&it) ||
        cbor_value_get_array_length(&it, &n) != CborNoError || n < 3 ||
        cbor_value_enter_container(&it, &el) != CborNoError) {
        return false;
    }
    r->items = n;
    if (cbor_value_is_null(&el)) {
        r->is_event = true;
    } else if (cbor_value_get_uint64(&el, &r->id) != CborNoError) {
        return false;
    }
    cbor_value_advance(&el);
    if (cbor_value_get_uint64(&el, &r->status) != CborNoError) {
        return false;
    }
    cbor_value_advance(&el);
    if (!r->is_event && r->status != 0) {
        size_t ml = sizeof r->msg;
        if (n != 4 || cbor_value_get_int64(&el, &r->code) != CborNoError) {
            return false;
        }
        cbor_value_advance(&el);
        if (!cbor_value_is_text_string(&el) || cbor_value_copy_text_string(&el, r->msg, &ml, NULL) != CborNoError) {
            return false;
        }
        return true;
    }
    r->result = cbor_value_get_next_byte(&el);
    cbor_value_advance(&el);
    r->result_len = (size_t)(cbor_value_get_next_byte(&el) - r->result);
    return true;
}

bool th_call_parse_hex(const char *hex, struct th_reply *r)
{
    static uint8_t out[ML_CFG_MTU];
    size_t n = th_call_hex(hex, out, sizeof out);
    if (n == (size_t)-1 || n == (size_t)-2) {
        ml_test_fail(__FILE__, __LINE__, hex);
        return false;
    }
    if (!th_parse(out, n, r)) {
        ml_print_hex("unparsable reply", out, n);
        ml_test_fail(__FILE__, __LINE__, "reply parses");
        return false;
    }
    /* keep result pointing at stable memory */
    return true;
}
