/*
 * libFuzzer target: CBOR messages straight into ml_dispatch (no SLIP, no
 * CRC), so mutations reach the op handlers. One input is a sequence of
 * requests run in order on one freshly booted device, each as
 *   u16 big-endian length, then that many bytes of CBOR
 * (a short last record takes what is left). A length of 0xFFFF is a reset
 * instead: a count byte n, then n times (u16 big-endian offset, xor mask)
 * bit flips applied to the key store medium, then a reboot that keeps the
 * medium, so the store's scan and record parser meet damaged flash and the
 * requests after it see what survived. Every response must be a
 * well-formed `[id, 0, result]` or `[id, status, code, msg]` that fits the
 * MTU with its CRC (the link adds it); after the input every handle is freed
 * and the heap must be empty again (fuzz_shutdown aborts on a leak).
 */
#include <cbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_hal.h"
#include "core/ml_config.h"
#include "dispatch/ml_dispatch.h"
#include "link/ml_link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t tx[ML_CFG_MTU];

static void fail(const char *what, const uint8_t *msg, size_t len)
{
    fprintf(stderr, "fuzz_dispatch: %s (request of %zu bytes)\n", what, len);
    for (size_t i = 0; i < len && i < 256; i++) {
        fprintf(stderr, "%02x", msg[i]);
    }
    fprintf(stderr, "\n");
    abort();
}

/* n: the response's CBOR length; cap: what the MTU leaves after the CRC. */
static void check_response(const uint8_t *msg, size_t len, size_t n, size_t cap)
{
    if (n == 0) {
        return; /* not a request: the link drops it as bad_message */
    }
    if (n > cap) {
        fail("response and its CRC do not fit the MTU", msg, len);
    }
    CborParser parser;
    CborValue it, el, after;
    size_t items = 0;
    uint64_t id = 0, status = 0;
    if (cbor_parser_init(tx, n, 0, &parser, &it) != CborNoError || !cbor_value_is_array(&it) ||
        cbor_value_get_array_length(&it, &items) != CborNoError || (items != 3 && items != 4) ||
        cbor_value_enter_container(&it, &el) != CborNoError || cbor_value_get_uint64(&el, &id) != CborNoError ||
        cbor_value_advance_fixed(&el) != CborNoError || cbor_value_get_uint64(&el, &status) != CborNoError) {
        fail("response is not [id, status, ...]", msg, len);
    }
    if ((status == 0) != (items == 3) || status >= ML_STATUS_COUNT) {
        fail("response status and item count disagree", msg, len);
    }
    after = it;
    if (cbor_value_advance(&after) != CborNoError || cbor_value_get_next_byte(&after) != tx + n) {
        fail("response is not one well-formed CBOR item", msg, len);
    }
    /* The id must be the request's: re-read it the way the dispatcher does. */
    CborValue rit, rel;
    uint64_t rid = 0;
    if (cbor_parser_init(msg, len, 0, &parser, &rit) != CborNoError || cbor_value_enter_container(&rit, &rel) ||
        cbor_value_get_uint64(&rel, &rid) != CborNoError || rid != id) {
        fail("response id is not the request's", msg, len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_boot();
    size_t cap = ml_link_mtu();
    size_t pos = 0;
    while (pos + 2 <= size) {
        size_t len = (size_t)data[pos] << 8 | data[pos + 1];
        pos += 2;
        if (len == 0xFFFF) {
            size_t n = pos < size ? data[pos++] : 0;
            for (size_t i = 0; i < n && pos + 3 <= size; i++, pos += 3) {
                fuzz_store_corrupt((size_t)data[pos] << 8 | data[pos + 1], data[pos + 2]);
            }
            fuzz_reboot();
            cap = ml_link_mtu();
            continue;
        }
        if (len > size - pos) {
            len = size - pos;
        }
        /* The link never passes on more than the MTU minus the CRC. */
        if (len + ML_CRC_SIZE <= cap) {
            uint8_t *msg = malloc(len == 0 ? 1 : len); /* exact size: ASan sees over-reads */
            if (msg == NULL) {
                abort();
            }
            memcpy(msg, data + pos, len);
            size_t n = ml_dispatch(msg, len, tx, cap - ML_CRC_SIZE);
            check_response(msg, len, n, cap - ML_CRC_SIZE);
            free(msg);
        }
        pos += len;
    }
    fuzz_shutdown();
    return 0;
}
