/*
 * overhead_driver: feeds prepared request frames through the firmware core
 * with no PTY, for `valgrind --tool=callgrind` (npm run bench's instruction
 * counts). Links the same core, Mbed TLS and TinyCBOR libraries as the
 * native firmware (build/native/libml_*.a); this file supplies a HAL whose
 * serial line is memory.
 *
 *   overhead_driver FRAMES_FILE EXPECTED_RESPONSES
 *
 * FRAMES_FILE holds SLIP-framed requests back to back. They are fed in
 * 4096-byte reads, as the native HAL's main loop reads the PTY, inside
 * ml_bench_feed() (the function callgrind collects). Exits non-zero unless
 * exactly EXPECTED_RESPONSES frames (plus the boot event) came back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/ml_config.h"
#include "app/ml_core.h"
#include "hal/ml_hal.h"

static const struct ml_board board = {
    .name = "bench-driver",
    .entropy = "getrandom(2)",
    .mtu = ML_CFG_MTU,
    .window = ML_CFG_WINDOW,
};

static uint8_t line_out[64u << 20];
static size_t out_bytes;

const struct ml_board *ml_hal_board(void) { return &board; }

/* The serial line: bytes are kept (as a UART driver would queue them) and
 * counted after the run, so the stub itself costs little. */
bool ml_hal_serial_write(const uint8_t *data, size_t len)
{
    if (len > sizeof line_out - out_bytes) {
        abort();
    }
    memcpy(line_out + out_bytes, data, len);
    out_bytes += len;
    return true;
}

static size_t count_ends(size_t from)
{
    size_t n = 0;
    for (size_t i = from; i < out_bytes; i++) {
        n += line_out[i] == 0xC0u;
    }
    return n;
}

int ml_hal_entropy(uint8_t *out, size_t len, size_t *olen)
{
    ssize_t n = getrandom(out, len, 0);
    *olen = n > 0 ? (size_t)n : 0;
    return n == (ssize_t)len ? 0 : -1;
}

uint64_t ml_hal_millis(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1u;
}

void ml_hal_reset(void) { abort(); }

void ml_bench_feed(const uint8_t *data, size_t len);
__attribute__((noinline)) void ml_bench_feed(const uint8_t *data, size_t len)
{
    for (size_t off = 0; off < len; off += 4096) {
        size_t n = len - off < 4096 ? len - off : 4096;
        ml_core_rx(data + off, n);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s FRAMES_FILE EXPECTED_RESPONSES\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static uint8_t frames[16u << 20];
    size_t len = fread(frames, 1, sizeof frames, f);
    fclose(f);
    size_t expected = (size_t)strtoul(argv[2], NULL, 10);
    if (ml_core_init() != 0) {
        fprintf(stderr, "overhead_driver: core init failed\n");
        return 1;
    }
    size_t boot_bytes = out_bytes;
    ml_bench_feed(frames, len);
    size_t responses = count_ends(boot_bytes) / 2;
    (void)ml_core_deinit();
    printf("{\"responses\": %zu, \"out_bytes\": %zu}\n", responses, out_bytes);
    return responses == expected ? 0 : 1;
}
