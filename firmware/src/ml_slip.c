#include "ml_slip.h"

enum { ST_DATA = 0, ST_ESCAPED = 1, ST_DISCARD = 2 };

void ml_slip_decoder_init(struct ml_slip_decoder *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    ml_slip_decoder_reset(d);
}

void ml_slip_decoder_reset(struct ml_slip_decoder *d)
{
    d->len = 0;
    d->frame_len = 0;
    d->state = ST_DATA;
}

static enum ml_slip_result drop(struct ml_slip_decoder *d, enum ml_slip_result why, uint8_t byte)
{
    d->len = 0;
    /* An END that caused the error also ends the broken frame. */
    d->state = byte == ML_SLIP_END ? ST_DATA : ST_DISCARD;
    return why;
}

enum ml_slip_result ml_slip_decode_byte(struct ml_slip_decoder *d, uint8_t byte)
{
    switch (d->state) {
    case ST_DISCARD:
        if (byte == ML_SLIP_END) {
            d->state = ST_DATA;
            d->len = 0;
        }
        return ML_SLIP_MORE;
    case ST_ESCAPED:
        if (byte == ML_SLIP_ESC_END) {
            byte = ML_SLIP_END;
        } else if (byte == ML_SLIP_ESC_ESC) {
            byte = ML_SLIP_ESC;
        } else {
            return drop(d, ML_SLIP_BAD_ESCAPE, byte);
        }
        d->state = ST_DATA;
        break;
    default:
        if (byte == ML_SLIP_END) {
            if (d->len == 0) {
                return ML_SLIP_MORE; /* empty frame: ignored silently */
            }
            /* buf[0..frame_len) stays valid until the next byte is fed */
            d->frame_len = d->len;
            d->len = 0;
            return ML_SLIP_FRAME;
        }
        if (byte == ML_SLIP_ESC) {
            d->state = ST_ESCAPED;
            return ML_SLIP_MORE;
        }
        break;
    }
    if (d->len >= d->cap) {
        return drop(d, ML_SLIP_OVERSIZE, byte);
    }
    d->buf[d->len++] = byte;
    return ML_SLIP_MORE;
}

bool ml_slip_encode(const uint8_t *body, size_t len, ml_slip_write_fn write, void *ctx)
{
    uint8_t chunk[64];
    size_t n = 0;
    chunk[n++] = ML_SLIP_END;
    for (size_t i = 0; i < len; i++) {
        if (n > sizeof chunk - 2) {
            if (!write(ctx, chunk, n)) {
                return false;
            }
            n = 0;
        }
        uint8_t b = body[i];
        if (b == ML_SLIP_END) {
            chunk[n++] = ML_SLIP_ESC;
            chunk[n++] = ML_SLIP_ESC_END;
        } else if (b == ML_SLIP_ESC) {
            chunk[n++] = ML_SLIP_ESC;
            chunk[n++] = ML_SLIP_ESC_ESC;
        } else {
            chunk[n++] = b;
        }
    }
    if (n > sizeof chunk - 1) {
        if (!write(ctx, chunk, n)) {
            return false;
        }
        n = 0;
    }
    chunk[n++] = ML_SLIP_END;
    return write(ctx, chunk, n);
}
