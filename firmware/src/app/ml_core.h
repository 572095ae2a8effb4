/* The device core: what every target's main loop drives. */
#ifndef ML_CORE_H
#define ML_CORE_H

#include <stddef.h>
#include <stdint.h>

/* Boots the core: heap, DRBG, handle table, link; sends the boot event.
 * Returns 0, or an Mbed TLS error when the DRBG could not be seeded. */
int ml_core_init(void);
/* Feeds received serial bytes; responses and events go out through the HAL. */
void ml_core_rx(const uint8_t *data, size_t len);
/* A simulated board reset: frees everything, boots again (new boot id,
 * boot event). Returns like ml_core_init. */
int ml_core_reboot(void);
/* Frees every handle and the DRBG, then the heap. Returns the heap bytes
 * that were still allocated before the heap went away (0: no leak). */
size_t ml_core_deinit(void);

const uint8_t *ml_core_boot_id(void); /* 8 bytes */

#endif /* ML_CORE_H */
