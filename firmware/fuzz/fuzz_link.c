/*
 * libFuzzer target: raw serial bytes into a freshly booted device, through
 * the whole receive path (SLIP decoder, length and CRC checks, dispatcher,
 * op handlers). Responses are discarded. After each input every handle is
 * freed and the heap must be empty again (fuzz_shutdown aborts on a leak).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_hal.h"
#include "app/ml_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_rsa_bits_max = 0;
    fuzz_boot();
    /* Feed in a few uneven pieces, as a UART driver would hand them over:
     * the decoder must carry its state across calls. */
    size_t pos = 0;
    size_t piece = 1;
    while (pos < size) {
        size_t n = size - pos < piece ? size - pos : piece;
        uint8_t *copy = malloc(n); /* exact-size copy: ASan sees over-reads */
        if (copy == NULL) {
            abort();
        }
        memcpy(copy, data + pos, n);
        ml_core_rx(copy, n);
        free(copy);
        pos += n;
        piece = piece * 3 + 1;
    }
    fuzz_shutdown();
    return 0;
}
