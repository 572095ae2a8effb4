/* The fuzz HAL: a board that writes into the void. See fuzz_hal.h. */
#include "fuzz_hal.h"

#include <cbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ml_config.h"
#include "app/ml_core.h"
#include "hal/ml_hal.h"
#include "store/ml_store_hal.h"
#include "core/protocol_ids.h"

#define STORE_SECTOR_SIZE 16384u
#define STORE_SECTORS     4u

static const struct ml_board board = {
    .name = "fuzz",
    .entropy = "fixed xorshift stream (fuzzing only, NOT random)",
    .mtu = ML_CFG_MTU,
    .window = ML_CFG_WINDOW,
};
static const struct ml_store_medium store = {
    .kind = "volatile",
    .persistent = false,
    .sector_size = STORE_SECTOR_SIZE,
    .sectors = STORE_SECTORS,
};
static uint8_t store_mem[STORE_SECTOR_SIZE * STORE_SECTORS];
static uint64_t prng_state;
static uint64_t fake_ms;

const struct ml_board *ml_hal_board(void) { return &board; }

bool ml_hal_serial_write(const uint8_t *data, size_t len)
{
    /* Touch every byte so reads past a buffer's end are caught. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < len; i++) {
        sink ^= data[i];
    }
    (void)sink;
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

uint64_t ml_hal_millis(void) { return ++fake_ms; }

void ml_hal_reset(void) { abort(); }

const struct ml_store_medium *ml_hal_store(void) { return &store; }

static int store_range(uint32_t offset, size_t len)
{
    return offset <= sizeof store_mem && len <= sizeof store_mem - offset ? 0 : -1;
}

int ml_hal_store_read(uint32_t offset, void *buf, size_t len)
{
    if (store_range(offset, len) != 0) {
        abort(); /* the key store must never address outside its medium */
    }
    memcpy(buf, store_mem + offset, len);
    return 0;
}

int ml_hal_store_erase(uint32_t sector)
{
    if (sector >= STORE_SECTORS) {
        abort();
    }
    memset(store_mem + sector * STORE_SECTOR_SIZE, 0xFF, STORE_SECTOR_SIZE);
    return 0;
}

int ml_hal_store_program(uint32_t offset, const void *data, size_t len)
{
    if (store_range(offset, len) != 0) {
        abort();
    }
    const uint8_t *src = data;
    for (size_t i = 0; i < len; i++) {
        store_mem[offset + i] &= src[i]; /* flash: programming only clears bits */
    }
    return 0;
}

void fuzz_boot(void)
{
    prng_state = 0x9e3779b97f4a7c15u;
    fake_ms = 0;
    memset(store_mem, 0xFF, sizeof store_mem);
    if (ml_core_init() != 0) {
        fprintf(stderr, "fuzz: the device did not boot\n");
        abort();
    }
}

void fuzz_reboot(void)
{
    fuzz_shutdown();
    if (ml_core_init() != 0) {
        fprintf(stderr, "fuzz: the device did not boot again\n");
        abort();
    }
}

void fuzz_store_corrupt(size_t offset, uint8_t mask) { store_mem[offset % sizeof store_mem] ^= mask; }

void fuzz_shutdown(void)
{
    size_t left = ml_core_deinit();
    if (left != 0 || fuzz_heap_used() != 0 || fuzz_heap_blocks() != 0) {
        fprintf(stderr, "fuzz: heap leak: %zu bytes in %zu blocks still allocated after every handle was freed\n",
                fuzz_heap_used(), fuzz_heap_blocks());
        abort();
    }
}

/* Long by design, not by bug: RSA key generation above fuzz_rsa_bits_max
 * and prime search above 512 bits take seconds to minutes under the
 * sanitizers, would be reported as timeouts and starve the rest of the
 * fuzzing. The fuzz build links with
 * -Wl,--wrap=ml_dispatch, so every caller (the link and fuzz_dispatch) goes
 * through this filter; a filtered request gets no response, like a
 * dropped frame. */
uint64_t fuzz_rsa_bits_max = 1024;

size_t __real_ml_dispatch(const uint8_t *msg, size_t len, uint8_t *tx, size_t tx_cap);
size_t __wrap_ml_dispatch(const uint8_t *msg, size_t len, uint8_t *tx, size_t tx_cap);

/* Reads the first `n` items of a request `[id, op, ...]` as unsigned
 * integers (or UINT64_MAX where an item is missing or not one). */
static void read_uints(const uint8_t *msg, size_t len, uint64_t *v, size_t n)
{
    CborParser parser;
    CborValue it, el;
    for (size_t i = 0; i < n; i++) {
        v[i] = UINT64_MAX;
    }
    if (cbor_parser_init(msg, len, 0, &parser, &it) != CborNoError || !cbor_value_is_array(&it) ||
        cbor_value_enter_container(&it, &el) != CborNoError) {
        return;
    }
    for (size_t i = 0; i < n && !cbor_value_at_end(&el); i++) {
        if (cbor_value_is_unsigned_integer(&el)) {
            (void)cbor_value_get_uint64(&el, &v[i]);
        }
        if (cbor_value_advance(&el) != CborNoError) {
            return;
        }
    }
}

static bool is_slow(const uint8_t *msg, size_t len)
{
    uint64_t v[5]; /* id, op, then mpi_prime: bytes; pk_generate: handle, type, bits */
    read_uints(msg, len, v, 5);
    if (v[1] == ML_OP_MPI_PRIME) {
        return v[2] != UINT64_MAX && v[2] > 64;
    }
    return v[1] == ML_OP_PK_GENERATE && v[3] == 1 && v[4] != UINT64_MAX && v[4] > fuzz_rsa_bits_max;
}

size_t __wrap_ml_dispatch(const uint8_t *msg, size_t len, uint8_t *tx, size_t tx_cap)
{
    return is_slow(msg, len) ? 0 : __real_ml_dispatch(msg, len, tx, tx_cap);
}
