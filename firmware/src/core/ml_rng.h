/* The device DRBG: CTR_DRBG over the HAL's entropy source. */
#ifndef ML_RNG_H
#define ML_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Seeds the DRBG and draws this boot's wrap key from it. Returns 0 or an
 * Mbed TLS error code. */
int ml_rng_init(void);
/* Frees the DRBG and zeroises the wrap key. */
void ml_rng_free(void);

#define ML_RNG_WRAP_KEY_SIZE 32
/* The per-boot key (ML_RNG_WRAP_KEY_SIZE bytes) that wraps object state
 * swapped out to the host (ops/op_obj.c): drawn from the DRBG at boot,
 * zeroised by ml_rng_free, never sent anywhere. NULL when the DRBG failed
 * to seed. */
const uint8_t *ml_rng_wrap_key(void);
/* Mixes host seed material in as additional input of a reseed (never as the
 * only entropy). Returns 0 or an Mbed TLS error code. */
int ml_rng_mix(const uint8_t *seed, size_t len);
/* Reseeds from the entropy source with `add` (may be empty) as additional
 * input (rng_reseed). Returns 0 or an Mbed TLS error code. */
int ml_rng_reseed(const uint8_t *add, size_t len);
/* Mbed TLS f_rng signature; p_rng is ignored. */
int ml_rng_random(void *p_rng, unsigned char *out, size_t len);

#endif /* ML_RNG_H */
