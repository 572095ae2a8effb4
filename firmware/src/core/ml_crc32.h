/* CRC-32 as zlib computes it (IEEE 802.3, reflected, init/xorout ~0). */
#ifndef ML_CRC32_H
#define ML_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0, feed the data in any number of
 * pieces; the result after the last piece is the CRC of the whole. */
uint32_t ml_crc32_update(uint32_t crc, const void *data, size_t len);

static inline uint32_t ml_crc32(const void *data, size_t len) { return ml_crc32_update(0, data, len); }

#endif /* ML_CRC32_H */
