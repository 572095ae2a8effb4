/*
 * The persistent key store (spec.md 7.4): a log-structured store of slot
 * records over the target's flash-like medium (ml_store_hal.h). Platform
 * independent; ops/op_slot.c puts key objects in and takes them out.
 *
 * Layout (all integers little-endian, everything 4-byte aligned):
 *   sector header (16 bytes, at offset 0 of a sector, written LAST when the
 *   sector becomes active):  "MLKS" | version 1 | generation | CRC-32
 *   records, appended one after the other from offset 16:
 *     header (20): "MLR1" | seq | slot u16 | type u8 | kind u8 |
 *                  flags u8 | label_len u8 | data_len u16 | CRC-32 of the 16
 *     label, data, 0xFF padding to 4, CRC-32 of header + label + data
 *   type 1 = key record, 2 = tombstone (no label, no data).
 * The header's "slot" is a record id: key slots 0..ML_KS_SLOTS_MAX-1, then
 * each slot's certificate chain (ML_KS_CHAIN(slot)), then the trust-anchor
 * set (ML_KS_TRUST); what a record's data means is its writer's business
 * (ops/op_slot.c). Stores written before the chain ids existed hold only
 * ids below ML_KS_SLOTS_MAX and read unchanged (version 1 still); a firmware
 * from before them skips records with higher ids as corrupt (and drops them
 * at its next compaction), keeping the keys.
 * The active sector is the valid header with the highest generation; the
 * newest record (highest seq) of a slot is its state. A record whose body
 * CRC fails is skipped; after a header that fails its CRC (a torn write, or
 * corruption) the scan looks for the next valid record 4 bytes at a time,
 * and when the damage is at the end of the log (a torn write) the next
 * write compacts into a fresh sector rather than append after it. When a record does not
 * fit, the live records (and the new one) are copied into the next sector
 * in turn, which gets its header (generation + 1) and only then the old
 * sector is erased: a power cut at any point leaves either the old or the
 * new state.
 */
#ifndef ML_KEYSTORE_H
#define ML_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/protocol_ids.h"
#include "store/ml_store_hal.h"

/* Most slots any target has; the store offers as many as fit in one sector
 * with room to compact (ml_keystore_slots()). */
#define ML_KS_SLOTS_MAX 16u

/* Record ids: a slot's key, a slot's certificate chain, the trust anchors. */
#define ML_KS_CHAIN(slot) (ML_KS_SLOTS_MAX + (uint32_t)(slot))
#define ML_KS_TRUST       (2u * ML_KS_SLOTS_MAX)
#define ML_KS_RECORDS_MAX (2u * ML_KS_SLOTS_MAX + 1u)
/* Largest record data: a chain or anchor set (slot_chain_max) or a key with
 * what op_slot keeps beside it (slot_record_max + 1024). */
#define ML_KS_DATA_MAX (ML_SLOT_CHAIN_MAX > ML_SLOT_RECORD_MAX + 1024u ? ML_SLOT_CHAIN_MAX : ML_SLOT_RECORD_MAX + 1024u)

#define ML_KS_SECTOR_HEADER 16u
#define ML_KS_RECORD_HEADER 20u
/* Bytes a record takes on the medium. */
#define ML_KS_RECORD_SIZE(label_len, data_len) \
    (ML_KS_RECORD_HEADER + ((((uint32_t)(label_len) + (uint32_t)(data_len)) + 3u) & ~3u) + 4u)

struct ml_ks_info {
    uint8_t kind; /* the caller's; ops/op_slot.c keeps the slot kind (ML_SLOT_KIND_*) */
    uint8_t flags;
    uint8_t label_len;
    uint16_t data_len;
};

/* Scans the medium of ml_hal_store(). Returns a status (ML_STATUS_OK, or
 * storage_error when the medium failed: the store is then unavailable and
 * every operation answers storage_error). */
int ml_keystore_init(void);

/* The medium (NULL when the target has none), the number of key slots and
 * of record ids (0 without a medium). */
const struct ml_store_medium *ml_keystore_medium(void);
uint32_t ml_keystore_slots(void);
uint32_t ml_keystore_records(void);

/* Each takes a record id (`slot`: 0..ml_keystore_records()-1) and returns a
 * status (ML_STATUS_*): bad_argument for an id out of range or a label too
 * long (storage_full for data above ML_KS_DATA_MAX), slot_empty,
 * slot_in_use (put without overwrite), storage_full, storage_error. */
int ml_keystore_info(uint32_t slot, struct ml_ks_info *info);
/* Reads the label (label_len bytes) and the data (data_len bytes) into the
 * given buffers (either may be NULL to skip it). */
int ml_keystore_read(uint32_t slot, uint8_t *label, uint8_t *data);
int ml_keystore_put(uint32_t slot, uint8_t kind, uint8_t flags, const uint8_t *label, size_t label_len,
                    const uint8_t *data, size_t data_len, bool overwrite);
int ml_keystore_delete(uint32_t slot);

/* For tests: erase count of a sector since init, and the active sector. */
uint32_t ml_keystore_erases(uint32_t sector);
uint32_t ml_keystore_active_sector(void);

#endif /* ML_KEYSTORE_H */
