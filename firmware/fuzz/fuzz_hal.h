/*
 * The fuzz targets' HAL (fuzz_hal.c) and heap (fuzz_heap.c): output is
 * discarded, entropy is a fixed xorshift stream (inputs replay exactly),
 * the key store is a RAM medium wiped per input, and the Mbed TLS heap is
 * libc calloc/free capped at ML_CFG_HEAP_SIZE so AddressSanitizer sees every
 * device object's bounds and use after free.
 */
#ifndef FUZZ_HAL_H
#define FUZZ_HAL_H

#include <stddef.h>
#include <stdint.h>

/* Boots a fresh device (entropy stream, store and heap reset, boot event
 * discarded). Aborts when the DRBG cannot be seeded. */
void fuzz_boot(void);
/* Frees every handle and the DRBG; aborts (a crash libFuzzer reports) when
 * the heap is not empty afterwards: a leak. */
void fuzz_shutdown(void);

/* A board reset that keeps the key store medium (what a power cycle
 * keeps): fuzz_shutdown's leak check, then a fresh boot that scans it. */
void fuzz_reboot(void);
/* Flips bits of the key store medium (offset wraps around its size). */
void fuzz_store_corrupt(size_t offset, uint8_t mask);

/* Largest RSA key generation let through to the dispatcher (1024 by
 * default; fuzz_link sets 0: its job is framing, not arithmetic). */
extern uint64_t fuzz_rsa_bits_max;

/* Bytes and blocks the fuzz heap holds now. */
size_t fuzz_heap_used(void);
size_t fuzz_heap_blocks(void);

#endif /* FUZZ_HAL_H */
