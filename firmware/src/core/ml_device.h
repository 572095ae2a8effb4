/*
 * What the sys ops (hello, stats) report about the layers above them: the
 * app sets the boot id at every boot, the link its MTU and frame counters.
 * The state lives here, in core, so that ops/op_sys.c reads it without
 * including app/ or link/ (a layer includes only the layers below it).
 */
#ifndef ML_DEVICE_H
#define ML_DEVICE_H

#include <stdint.h>

#include "core/protocol_ids.h"

struct ml_link_stats {
    uint32_t rx_frames;                     /* frames whose CRC matched (dropped bad_message ones too) */
    uint32_t rx_dropped;                    /* frames dropped for any reason */
    uint32_t rx_drop[ML_DROP_REASON_COUNT]; /* indexed by enum ml_drop_reason */
    uint32_t rx_replayed;                   /* resent requests answered from the record, not run again */
    uint32_t tx_frames;
    uint32_t tx_dropped; /* frames abandoned because the line stayed blocked */
};

struct ml_device {
    uint8_t boot_id[8];        /* app/ml_core.c, new at every boot */
    uint32_t mtu;              /* link/ml_link.c: largest frame body received or sent */
    struct ml_link_stats link; /* link/ml_link.c, reset by ml_link_init */
    uint32_t oom_answers;      /* dispatch/ml_dispatch.c: requests answered out_of_memory */
};

extern struct ml_device ml_device;

#endif /* ML_DEVICE_H */
