/*
 * The key store's medium, implemented per target (firmware/src/hal/<t>/):
 * a few equal sectors with flash semantics, so one log-structured store
 * (ml_keystore.c) runs on every target:
 *   - erase sets a whole sector to 0xFF;
 *   - program only clears bits (1 -> 0) of erased bytes;
 *   - read returns what is stored.
 * native: a file (--store PATH); QEMU: a host file through semihosting;
 * STM32 board: two flash sectors; ESP32: NVS-backed (see docs).
 */
#ifndef ML_STORE_HAL_H
#define ML_STORE_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_store_medium {
    const char *kind;     /* "file", "semihosting-file", "flash" or "volatile" (hello key_store) */
    bool persistent;      /* survives a restart of the device (hello persistent) */
    uint32_t sector_size; /* bytes per sector, a multiple of 4 */
    uint32_t sectors;     /* at least 2 */
};

/* The medium, or NULL when the target has none (no key slots). */
const struct ml_store_medium *ml_hal_store(void);
/* Each returns 0, or non-zero on a medium failure (storage_error). */
int ml_hal_store_read(uint32_t offset, void *buf, size_t len);
int ml_hal_store_erase(uint32_t sector);
int ml_hal_store_program(uint32_t offset, const void *data, size_t len);

/* For media kept in a file (native, semihosting), which do not clear bits by
 * themselves: programs `len` bytes of `data` at `offset` as flash would, each
 * byte ANDed into the stored one, reading and writing through the medium's
 * own functions in pieces of `scratch_len` bytes. Returns 0, or non-zero when
 * a read or write fails. */
typedef int (*ml_store_read_fn)(uint32_t offset, void *buf, size_t len);
typedef int (*ml_store_write_fn)(uint32_t offset, const void *buf, size_t len);
int ml_store_program_by_and(ml_store_read_fn read, ml_store_write_fn write, uint32_t offset, const uint8_t *data,
                            size_t len, uint8_t *scratch, size_t scratch_len);

#endif /* ML_STORE_HAL_H */
