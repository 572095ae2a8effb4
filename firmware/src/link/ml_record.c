#include "link/ml_record.h"

#include <mbedtls/platform_util.h>
#include <string.h>

#include "core/protocol_ids.h"
#include "hal/ml_hal.h"

#define N ML_RECORD_ENTRIES

/* Ids counted by id % B: a request whose bucket is empty is no resend, so
 * the usual lookup (a new request) reads one counter instead of every id.
 * With B = 2N, a host whose ids are consecutive never meets its last N ids
 * in the bucket of the next one. */
#define B (2 * N)

/* The small fields apart from the answers. len 0: the entry is empty. */
static struct {
    uint32_t id[N];
    uint32_t crc[N];
    uint32_t len[N];
    uint32_t next;    /* the entry the next answer takes: the oldest */
    uint32_t pending; /* the entry taken by the last lookup that missed */
    uint32_t stale;   /* bytes of its old answer (and CRC) still in it */
    uint8_t in_bucket[B];
} rec;
/* N answers of ML_CFG_MTU bytes each, where the HAL puts them. */
static uint8_t (*answers)[ML_CFG_MTU];

/* The default place of the answers (hal/ml_hal.h): a static array. */
__attribute__((weak)) uint8_t *ml_hal_record_ram(size_t size)
{
    static uint8_t ram[N][ML_CFG_MTU];
    (void)size;
    return &ram[0][0];
}

_Static_assert(N >= 1 && N <= 255, "in_bucket counts entries in a uint8_t");

/* Empties entry i; returns how many bytes of its answer and CRC remain. */
static uint32_t empty(uint32_t i)
{
    uint32_t used = 0;
    if (rec.len[i] != 0) {
        used = rec.len[i] + ML_CRC_SIZE;
        rec.len[i] = 0;
        rec.in_bucket[rec.id[i] % B]--;
    }
    return used;
}

/* Answers may carry secrets (exported keys, plaintext, derived keys): a
 * forgotten answer is wiped with the CRC the link wrote after it. The
 * entry the next answer takes is wiped by ml_record_commit, past the new
 * answer only. */
static void forget(uint32_t i) { mbedtls_platform_zeroize(answers[i], empty(i)); }

void ml_record_init(void)
{
    answers = (uint8_t(*)[ML_CFG_MTU])(void *)ml_hal_record_ram((size_t)N * ML_CFG_MTU);
    mbedtls_platform_zeroize(answers, (size_t)N * ML_CFG_MTU);
    memset(&rec, 0, sizeof rec);
}

/* Gives the oldest entry to the answer to request id/crc. */
static uint8_t *take(uint32_t id, uint32_t crc)
{
    uint32_t i = rec.next;
    rec.next = i + 1 == N ? 0 : i + 1;
    rec.stale = empty(i);
    rec.id[i] = id;
    rec.crc[i] = crc;
    rec.pending = i;
    return answers[i];
}

/* ml_record_lookup when `id` may be recorded: looks for it among the
 * entries; an entry holding it under another CRC is forgotten (ids
 * wrapped: a new request). Kept apart so that the usual lookup calls
 * nothing. */
__attribute__((noinline)) static bool find(uint32_t id, uint32_t crc, uint8_t **answer, size_t *len)
{
    uint32_t i = 0;
    while (i < N && (rec.id[i] != id || rec.len[i] == 0)) {
        i++;
    }
    bool found = i < N && rec.crc[i] == crc;
    if (found) {
        *answer = answers[i];
        *len = rec.len[i];
    } else {
        if (i < N) {
            forget(i);
        }
        *answer = take(id, crc);
        *len = 0;
    }
    return found;
}

bool ml_record_lookup(uint32_t id, uint32_t crc, uint8_t **answer, size_t *len)
{
    if (rec.in_bucket[id % B] != 0) {
        return find(id, crc, answer, len);
    }
    *answer = take(id, crc); /* the usual case, a new request: its bucket is empty */
    *len = 0;
    return false;
}

/* Wipes what the answer now in entry i (`used` bytes with its CRC) does
 * not overwrite of the one before it. */
__attribute__((noinline)) static void wipe_stale(uint32_t i, size_t used)
{
    mbedtls_platform_zeroize(answers[i] + used, rec.stale - used);
}

void ml_record_commit(size_t len)
{
    uint32_t i = rec.pending;
    size_t used = len != 0 ? len + ML_CRC_SIZE : 0; /* the link writes the CRC when it sends */
    if (len != 0) {
        rec.len[i] = (uint32_t)len;
        rec.in_bucket[rec.id[i] % B]++;
    }
    if (rec.stale > used) {
        wipe_stale(i, used);
    }
}

void ml_record_new_session(uint32_t id)
{
    for (uint32_t i = 0; i < N; i++) {
        /* ids after `id`: id + 1 .. id + 2^31, modulo 2^32 */
        if (rec.len[i] != 0 && rec.id[i] - id - 1u < 0x80000000u) {
            forget(i);
        }
    }
}
