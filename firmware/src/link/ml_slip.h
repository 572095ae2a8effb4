/* SLIP (RFC 1055) framing: a streaming decoder into a caller buffer and an
 * encoder that streams escaped bytes to a writer in small chunks. */
#ifndef ML_SLIP_H
#define ML_SLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ML_SLIP_END     0xC0u
#define ML_SLIP_ESC     0xDBu
#define ML_SLIP_ESC_END 0xDCu
#define ML_SLIP_ESC_ESC 0xDDu

enum ml_slip_result {
    ML_SLIP_MORE = 0,       /* nothing complete yet (also: empty frame ignored) */
    ML_SLIP_FRAME = 1,      /* a frame body is in buf[0..frame_len) until the next call */
    ML_SLIP_BAD_ESCAPE = 2, /* frame dropped; the rest up to END is discarded */
    ML_SLIP_OVERSIZE = 3,   /* frame dropped; the rest up to END is discarded */
};

struct ml_slip_decoder {
    uint8_t *buf;
    size_t cap;
    size_t len;       /* bytes of the frame being received */
    size_t frame_len; /* length of the frame just completed (ML_SLIP_FRAME) */
    uint8_t state;
};

void ml_slip_decoder_init(struct ml_slip_decoder *d, uint8_t *buf, size_t cap);
/* Forgets any partial frame; the next byte starts a new frame. */
void ml_slip_decoder_reset(struct ml_slip_decoder *d);
enum ml_slip_result ml_slip_decode_byte(struct ml_slip_decoder *d, uint8_t byte);
/* Decodes data[0..len) up to and including the first byte that completes
 * or drops a frame (*result says which; ML_SLIP_MORE when none did) and
 * returns how many bytes it consumed. Same results as feeding the bytes to
 * ml_slip_decode_byte one by one, but runs of plain bytes are copied in a
 * tight loop. */
size_t ml_slip_decode(struct ml_slip_decoder *d, const uint8_t *data, size_t len, enum ml_slip_result *result);

/* Returns false when the writer gave up (the frame is then incomplete). */
typedef bool (*ml_slip_write_fn)(void *ctx, const uint8_t *data, size_t len);

/* Writes END, the escaped body, END, in pieces of up to ML_SLIP_TX_CHUNK
 * bytes (a stack buffer: fewer, larger writes on a PTY, small on a MCU). */
#ifndef ML_SLIP_TX_CHUNK
#define ML_SLIP_TX_CHUNK 256
#endif
bool ml_slip_encode(const uint8_t *body, size_t len, ml_slip_write_fn write, void *ctx);

#endif /* ML_SLIP_H */
