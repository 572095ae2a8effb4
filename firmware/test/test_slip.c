/* SLIP decoder and encoder. */
#include <string.h>

#include "link/ml_slip.h"
#include "test_util.h"

static uint8_t wire[4096];
static size_t wire_len;

static bool capture(void *ctx, const uint8_t *data, size_t len)
{
    size_t *calls = ctx;
    if (calls != NULL) {
        (*calls)++;
        CHECK(len <= ML_SLIP_TX_CHUNK); /* streamed in chunks of a stack buffer */
    }
    CHECK(wire_len + len <= sizeof wire);
    memcpy(wire + wire_len, data, len);
    wire_len += len;
    return true;
}

struct decoded {
    uint8_t frames[8][512];
    size_t lens[8];
    size_t count;
    size_t bad_escape;
    size_t oversize;
};

static void decode(const uint8_t *data, size_t len, size_t cap, struct decoded *out)
{
    static uint8_t buf[512];
    struct ml_slip_decoder d;
    memset(out, 0, sizeof *out);
    ml_slip_decoder_init(&d, buf, cap);
    for (size_t i = 0; i < len; i++) {
        switch (ml_slip_decode_byte(&d, data[i])) {
        case ML_SLIP_FRAME:
            if (out->count < 8) {
                memcpy(out->frames[out->count], buf, d.frame_len);
                out->lens[out->count] = d.frame_len;
            }
            out->count++;
            break;
        case ML_SLIP_BAD_ESCAPE:
            out->bad_escape++;
            break;
        case ML_SLIP_OVERSIZE:
            out->oversize++;
            break;
        default:
            break;
        }
    }
}

ML_TEST(escapes_round_trip)
{
    static const uint8_t body[] = {0x01, 0xc0, 0xdb, 0xdc, 0xdd, 0xc0, 0xc0, 0xdb, 0xdb, 0x7f};
    static const uint8_t expect[] = {0xc0, 0x01, 0xdb, 0xdc, 0xdb, 0xdd, 0xdc, 0xdd, 0xdb,
                                     0xdc, 0xdb, 0xdc, 0xdb, 0xdd, 0xdb, 0xdd, 0x7f, 0xc0};
    wire_len = 0;
    CHECK(ml_slip_encode(body, sizeof body, capture, NULL));
    CHECK(wire_len == sizeof expect && memcmp(wire, expect, sizeof expect) == 0);
    struct decoded d;
    decode(wire, wire_len, 512, &d);
    CHECK_EQ(d.count, 1);
    CHECK(d.lens[0] == sizeof body && memcmp(d.frames[0], body, sizeof body) == 0);
}

ML_TEST(encoder_streams_chunks)
{
    static uint8_t body[300];
    for (size_t i = 0; i < sizeof body; i++) {
        body[i] = (uint8_t)(i % 3 == 0 ? 0xc0 : i % 3 == 1 ? 0xdb : i);
    }
    size_t calls = 0;
    wire_len = 0;
    CHECK(ml_slip_encode(body, sizeof body, capture, &calls));
    CHECK(calls > 1);
    CHECK(wire[0] == 0xc0 && wire[wire_len - 1] == 0xc0);
    struct decoded d;
    decode(wire, wire_len, 512, &d);
    CHECK(d.count == 1 && d.lens[0] == sizeof body && memcmp(d.frames[0], body, sizeof body) == 0);
}

ML_TEST(split_at_every_byte)
{
    static const uint8_t body[] = {0xc0, 0x11, 0xdb, 0x22, 0xc0};
    wire_len = 0;
    CHECK(ml_slip_encode(body, sizeof body, capture, NULL));
    for (size_t split = 0; split <= wire_len; split++) {
        static uint8_t buf[64];
        struct ml_slip_decoder dec;
        ml_slip_decoder_init(&dec, buf, sizeof buf);
        size_t frames = 0;
        for (size_t i = 0; i < wire_len; i++) {
            if (i == split) {
                /* a pause in the byte stream changes nothing */
            }
            if (ml_slip_decode_byte(&dec, wire[i]) == ML_SLIP_FRAME) {
                frames++;
                CHECK(dec.frame_len == sizeof body && memcmp(buf, body, sizeof body) == 0);
            }
        }
        CHECK_EQ(frames, 1);
    }
}

ML_TEST(bad_escape)
{
    static const uint8_t in[] = {0xc0, 0x01, 0xdb, 0x01, 0x02, 0xc0, 0x03, 0xc0};
    struct decoded d;
    decode(in, sizeof in, 512, &d);
    CHECK_EQ(d.bad_escape, 1);
    CHECK_EQ(d.count, 1); /* resynchronised at END: the next frame is fine */
    CHECK(d.lens[0] == 1 && d.frames[0][0] == 0x03);
}

ML_TEST(escape_then_end)
{
    static const uint8_t in[] = {0xc0, 0x01, 0xdb, 0xc0, 0x04, 0xc0};
    struct decoded d;
    decode(in, sizeof in, 512, &d);
    CHECK_EQ(d.bad_escape, 1);
    CHECK(d.count == 1 && d.lens[0] == 1 && d.frames[0][0] == 0x04);
}

ML_TEST(oversize)
{
    static uint8_t in[40];
    memset(in, 0x55, sizeof in);
    in[0] = 0xc0;
    in[20] = 0xc0; /* a 19-byte frame: fits exactly in 19 */
    in[39] = 0xc0; /* an 18-byte frame after it */
    struct decoded d;
    decode(in, sizeof in, 19, &d);
    CHECK_EQ(d.oversize, 0);
    CHECK_EQ(d.count, 2);
    decode(in, sizeof in, 18, &d);
    CHECK_EQ(d.oversize, 1);
    CHECK(d.count == 1 && d.lens[0] == 18);
}

ML_TEST(oversize_counts_once_per_frame)
{
    static uint8_t in[200];
    memset(in, 0x55, sizeof in);
    in[199] = 0xc0;
    struct decoded d;
    decode(in, sizeof in, 16, &d);
    CHECK_EQ(d.oversize, 1);
    CHECK_EQ(d.count, 0);
}

ML_TEST(resync_after_noise)
{
    static const uint8_t in[] = {0x41, 0x42, 0xc0, 0xc0, 0x07, 0x08, 0xc0};
    struct decoded d;
    decode(in, sizeof in, 512, &d);
    CHECK_EQ(d.count, 2); /* the noise is a (short) frame of its own */
    CHECK(d.lens[0] == 2 && d.lens[1] == 2 && d.frames[1][0] == 0x07);
}

ML_TEST(empty_frames_ignored)
{
    static const uint8_t in[] = {0xc0, 0xc0, 0xc0, 0xc0, 0x09, 0xc0, 0xc0};
    struct decoded d;
    decode(in, sizeof in, 512, &d);
    CHECK(d.count == 1 && d.lens[0] == 1 && d.bad_escape == 0 && d.oversize == 0);
}

ML_TEST(reset_forgets_partial_frame)
{
    static uint8_t buf[16];
    struct ml_slip_decoder d;
    ml_slip_decoder_init(&d, buf, sizeof buf);
    CHECK(ml_slip_decode_byte(&d, 0x01) == ML_SLIP_MORE);
    ml_slip_decoder_reset(&d);
    CHECK(ml_slip_decode_byte(&d, 0x02) == ML_SLIP_MORE);
    CHECK(ml_slip_decode_byte(&d, 0xc0) == ML_SLIP_FRAME);
    CHECK(d.frame_len == 1 && buf[0] == 0x02);
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(escapes_round_trip),
        ML_CASE(encoder_streams_chunks),
        ML_CASE(split_at_every_byte),
        ML_CASE(bad_escape),
        ML_CASE(escape_then_end),
        ML_CASE(oversize),
        ML_CASE(oversize_counts_once_per_frame),
        ML_CASE(resync_after_noise),
        ML_CASE(empty_frames_ignored),
        ML_CASE(reset_forgets_partial_frame),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
