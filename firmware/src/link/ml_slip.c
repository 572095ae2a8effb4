#include "link/ml_slip.h"

#include <string.h>

enum { ST_DATA = 0, ST_ESCAPED = 1, ST_DISCARD = 2 };

/* Plain bytes are skipped a machine word at a time (4 bytes on the STM32,
 * 8 natively). ONES is 0x0101...01 in a word. */
#define WORD  sizeof(size_t)
#define ONES  ((size_t)-1 / 0xFFu)
#define HIGHS (ONES * 0x80u)

/* Non-zero when one of the WORD bytes at p is END or ESC: the classic "has
 * a zero byte" test, (v - ONES) & ~v & HIGHS, on the word xor each of them.
 * Its lowest set bit is exact: it marks the first such byte. */
static inline size_t special_mask(const uint8_t *p)
{
    size_t w;
    memcpy(&w, p, sizeof w);
    size_t a = w ^ (ONES * ML_SLIP_END);
    size_t b = w ^ (ONES * ML_SLIP_ESC);
    return (((a - ONES) & ~a) | ((b - ONES) & ~b)) & HIGHS;
}

/* How many of p[0..max) come before the first END or ESC. */
static inline size_t plain_run(const uint8_t *p, size_t max)
{
    size_t n = 0;
    for (; n + WORD <= max; n += WORD) {
        size_t m = special_mask(p + n);
        if (m != 0) {
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return n + (size_t)__builtin_ctzll((unsigned long long)m) / 8;
#else
            break;
#endif
        }
    }
    while (n < max && p[n] != ML_SLIP_END && p[n] != ML_SLIP_ESC) {
        n++;
    }
    return n;
}

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

size_t ml_slip_decode(struct ml_slip_decoder *d, const uint8_t *data, size_t len, enum ml_slip_result *result)
{
    size_t i = 0;
    while (i < len) {
        if (d->state == ST_DATA) {
            /* Plain bytes straight into the buffer, as far as it has room. */
            size_t room = d->cap - d->len;
            size_t run = len - i < room ? len - i : room;
            uint8_t *out = d->buf + d->len;
            const uint8_t *in = data + i;
            size_t n = plain_run(in, run);
            memcpy(out, in, n);
            d->len += n;
            i += n;
            if (i == len) {
                break;
            }
            if (data[i] == ML_SLIP_END) { /* the common case, without a call */
                i++;
                if (d->len == 0) {
                    continue; /* empty frame: ignored silently */
                }
                d->frame_len = d->len;
                d->len = 0;
                *result = ML_SLIP_FRAME;
                return i;
            }
        }
        enum ml_slip_result r = ml_slip_decode_byte(d, data[i++]);
        if (r != ML_SLIP_MORE) {
            *result = r;
            return i;
        }
    }
    *result = ML_SLIP_MORE;
    return i;
}

bool ml_slip_encode(const uint8_t *body, size_t len, ml_slip_write_fn write, void *ctx)
{
    uint8_t chunk[ML_SLIP_TX_CHUNK];
    size_t n = 0;
    size_t i = 0;
    chunk[n++] = ML_SLIP_END;
    while (i < len) {
        /* Room for `take` more body bytes even if every one is escaped. */
        size_t take = (sizeof chunk - n) / 2;
        if (take == 0) {
            if (!write(ctx, chunk, n)) {
                return false;
            }
            n = 0;
            continue;
        }
        if (take > len - i) {
            take = len - i;
        }
        for (size_t end = i + take; i < end;) {
            /* A run of plain bytes in one copy, then one byte to escape. */
            size_t run = i + plain_run(body + i, end - i);
            memcpy(chunk + n, body + i, run - i);
            n += run - i;
            i = run;
            if (i == end) {
                break;
            }
            uint8_t b = body[i++];
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
    }
    if (n == sizeof chunk) {
        if (!write(ctx, chunk, n)) {
            return false;
        }
        n = 0;
    }
    chunk[n++] = ML_SLIP_END;
    return write(ctx, chunk, n);
}
