/* The link: bytes -> SLIP -> length/CRC checks -> the record of answers
 * (link/ml_record.h: a resend is answered from it) -> dispatcher, drop
 * counters and frame_dropped events, and transmission of frames: every
 * frame the device sends (responses, boot, frame_dropped and busy events)
 * goes out through ml_link_send, the one place that adds the CRC. */
#ifndef ML_LINK_H
#define ML_LINK_H

#include <stddef.h>
#include <stdint.h>

/* Resets the decoder and the counters; mtu bounds received and sent
 * frame bodies (clamped to ML_CFG_MTU). */
void ml_link_init(uint32_t mtu);
uint32_t ml_link_mtu(void);
/* Forgets a partially received frame. */
void ml_link_rx_reset(void);
void ml_link_rx(const uint8_t *data, size_t len);
/* Sends the CBOR message msg[0..len) as one frame: appends its CRC-32
 * (big-endian) in place at msg[len..len + ML_CRC_SIZE), so the buffer must
 * have that room, SLIP-encodes the body and writes it through the HAL. */
void ml_link_send(uint8_t *msg, size_t len);
/* Sends the boot event `[null, 1, boot_id]`. */
void ml_link_send_boot_event(const uint8_t boot_id[8]);

#endif /* ML_LINK_H */
