/*
 * The record of answers (protocol/spec.md §6): the device's last
 * ML_RECORD_ENTRIES answers, each with its request id and the CRC-32 of
 * the request's CBOR message. A request that repeats a recorded id and CRC
 * is a resend: the link sends the recorded answer again instead of running
 * it. Answers are encoded straight into their entry's buffer and sent from
 * there (no copy). The oldest entry makes room for the next answer.
 */
#ifndef ML_RECORD_H
#define ML_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_config.h"

/* As many entries as the window: a host that never sends id X + window
 * while X is unanswered finds X's answer here when it resends X. */
#define ML_RECORD_ENTRIES ML_CFG_WINDOW

/* Forgets (and wipes) every entry: at boot and at reboot. */
void ml_record_init(void);
/* Looks request `id` up, its message having CRC `crc`. When it is recorded
 * under that CRC (a resend): returns true, *answer and *len give the
 * recorded answer (CBOR with room for its CRC after it). Else returns false
 * and *answer is the buffer (ML_CFG_MTU bytes) to encode the answer into:
 * the oldest entry's, now forgotten (as is an entry holding `id` under
 * another CRC); ml_record_commit then records it. */
bool ml_record_lookup(uint32_t id, uint32_t crc, uint8_t **answer, size_t *len);
/* Records the answer of `len` bytes (0: none) to the request the last
 * ml_record_lookup missed. */
void ml_record_commit(size_t len);
/* A hello `id` ran: forgets every answer to an id after it (id + 1 ..
 * id + 2^31, modulo 2^32). The host sends no request with a later id
 * before its hello, so these answers belong to an earlier session (whose
 * ids went further) and must not answer the new one's requests; answers to
 * the ids before it may still be resent and stay. */
void ml_record_new_session(uint32_t id);

#endif /* ML_RECORD_H */
