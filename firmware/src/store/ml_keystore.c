/* The log-structured key store; the layout is described in ml_keystore.h. */
#include "store/ml_keystore.h"

#include <string.h>

#include "core/ml_crc32.h"
#include "core/protocol_ids.h"

#define SECTORS_MAX   8u
#define NONE          0xFFFFFFFFu
#define SECTOR_MAGIC  0x534B4C4Du /* "MLKS" */
#define RECORD_MAGIC  0x31524C4Du /* "MLR1" */
#define STORE_VERSION 1u
#define TYPE_KEY      1u
#define TYPE_TOMB     2u
#define CHUNK         64u
#define DATA_MAX      ML_KS_DATA_MAX

/* Weak defaults: a target without a medium has no key slots. */
__attribute__((weak)) const struct ml_store_medium *ml_hal_store(void) { return NULL; }
__attribute__((weak)) int ml_hal_store_read(uint32_t offset, void *buf, size_t len)
{
    (void)offset;
    (void)buf;
    (void)len;
    return -1;
}
__attribute__((weak)) int ml_hal_store_erase(uint32_t sector)
{
    (void)sector;
    return -1;
}
__attribute__((weak)) int ml_hal_store_program(uint32_t offset, const void *data, size_t len)
{
    (void)offset;
    (void)data;
    (void)len;
    return -1;
}

struct entry {
    bool used;
    uint32_t offset; /* of the record in the active sector */
    struct ml_ks_info info;
};

static const struct ml_store_medium *medium;
static bool usable;
static uint32_t active = NONE;
static uint32_t generation;
static uint32_t write_off; /* next free byte in the active sector */
static uint32_t next_seq;
static struct entry table[ML_KS_RECORDS_MAX];
static uint32_t erase_count[SECTORS_MAX];

static void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, v);
    put_u16(p + 2, v >> 16);
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get_u32(const uint8_t *p) { return get_u16(p) | get_u16(p + 2) << 16; }

static uint32_t sector_base(uint32_t sector) { return sector * medium->sector_size; }

static int rd(uint32_t offset, void *buf, size_t len) { return ml_hal_store_read(offset, buf, len); }

/* Programs and reads back (a flash program can fail silently). */
static int prog(uint32_t offset, const uint8_t *data, size_t len)
{
    uint8_t check[CHUNK];
    if (ml_hal_store_program(offset, data, len) != 0) {
        return -1;
    }
    for (size_t done = 0; done < len;) {
        size_t n = len - done < CHUNK ? len - done : CHUNK;
        if (rd(offset + (uint32_t)done, check, n) != 0 || memcmp(check, data + done, n) != 0) {
            return -1;
        }
        done += n;
    }
    return 0;
}

/* Finds the end of the written part of [from, sector end): 0 when blank
 * from `from` on, else the offset after the last non-0xFF byte. */
static int last_used(uint32_t sector, uint32_t from, uint32_t *end)
{
    uint8_t buf[CHUNK];
    *end = 0;
    for (uint32_t off = from; off < medium->sector_size;) {
        uint32_t n = medium->sector_size - off < CHUNK ? medium->sector_size - off : CHUNK;
        if (rd(sector_base(sector) + off, buf, n) != 0) {
            return -1;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (buf[i] != 0xFF) {
                *end = off + i + 1;
            }
        }
        off += n;
    }
    return 0;
}

static int erase_blank(uint32_t sector)
{
    uint32_t end = 0;
    if (last_used(sector, 0, &end) != 0) {
        return -1;
    }
    if (end == 0) {
        return 0; /* already blank: spare the erase */
    }
    erase_count[sector]++;
    if (ml_hal_store_erase(sector) != 0 || last_used(sector, 0, &end) != 0 || end != 0) {
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- records */

struct rec_header {
    uint32_t seq;
    uint32_t slot;
    uint8_t type;
    struct ml_ks_info info;
};

static void encode_header(const struct rec_header *h, uint8_t out[ML_KS_RECORD_HEADER])
{
    put_u32(out, RECORD_MAGIC);
    put_u32(out + 4, h->seq);
    put_u16(out + 8, h->slot);
    out[10] = h->type;
    out[11] = h->info.kind;
    out[12] = h->info.flags;
    out[13] = h->info.label_len;
    put_u16(out + 14, h->info.data_len);
    put_u32(out + 16, ml_crc32(out, 16));
}

/* Decodes a header: 1 = valid, 0 = blank (end of the log), -1 = invalid. */
static int decode_header(const uint8_t in[ML_KS_RECORD_HEADER], struct rec_header *h)
{
    bool blank = true;
    for (size_t i = 0; i < ML_KS_RECORD_HEADER; i++) {
        blank = blank && in[i] == 0xFF;
    }
    if (blank) {
        return 0;
    }
    if (get_u32(in) != RECORD_MAGIC || get_u32(in + 16) != ml_crc32(in, 16)) {
        return -1;
    }
    h->seq = get_u32(in + 4);
    h->slot = get_u16(in + 8);
    h->type = in[10];
    h->info.kind = in[11];
    h->info.flags = in[12];
    h->info.label_len = in[13];
    h->info.data_len = (uint16_t)get_u16(in + 14);
    bool key = h->type == TYPE_KEY && h->info.label_len <= ML_SLOT_LABEL_MAX && h->info.data_len <= DATA_MAX;
    bool tomb = h->type == TYPE_TOMB && h->info.label_len == 0 && h->info.data_len == 0;
    return h->slot < ML_KS_RECORDS_MAX && (key || tomb) ? 1 : -1;
}

/* Checks a record's body CRC. */
static int check_body(uint32_t at, const uint8_t hdr[ML_KS_RECORD_HEADER], const struct rec_header *h, bool *ok)
{
    uint8_t buf[CHUNK];
    uint32_t crc = ml_crc32(hdr, ML_KS_RECORD_HEADER);
    uint32_t body = (uint32_t)h->info.label_len + h->info.data_len;
    uint32_t pos = at + ML_KS_RECORD_HEADER;
    for (uint32_t done = 0; done < body;) {
        uint32_t n = body - done < CHUNK ? body - done : CHUNK;
        if (rd(pos + done, buf, n) != 0) {
            return -1;
        }
        crc = ml_crc32_update(crc, buf, n);
        done += n;
    }
    uint8_t stored[4];
    if (rd(pos + ((body + 3u) & ~3u), stored, 4) != 0) {
        return -1;
    }
    *ok = get_u32(stored) == crc;
    return 0;
}

/* Streams bytes to the medium in aligned chunks. */
struct writer {
    uint32_t off;
    uint8_t buf[CHUNK];
    size_t n;
    int err;
};

static void w_flush(struct writer *w)
{
    if (w->n > 0 && w->err == 0 && prog(w->off, w->buf, w->n) != 0) {
        w->err = -1;
    }
    w->off += (uint32_t)w->n;
    w->n = 0;
}

static void w_bytes(struct writer *w, const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t n = CHUNK - w->n < len ? CHUNK - w->n : len;
        memcpy(w->buf + w->n, data, n);
        w->n += n;
        data += n;
        len -= n;
        if (w->n == CHUNK) {
            w_flush(w);
        }
    }
}

struct new_record {
    uint32_t slot;
    uint8_t type;
    struct ml_ks_info info;
    const uint8_t *label;
    const uint8_t *data;
};

/* Writes a record at an absolute offset; returns 0 or -1. */
static int write_record(uint32_t at, const struct new_record *r, uint32_t seq)
{
    struct rec_header h = {.seq = seq, .slot = r->slot, .type = r->type, .info = r->info};
    uint8_t hdr[ML_KS_RECORD_HEADER];
    encode_header(&h, hdr);
    uint32_t crc = ml_crc32(hdr, sizeof hdr);
    crc = ml_crc32_update(crc, r->label, r->info.label_len);
    crc = ml_crc32_update(crc, r->data, r->info.data_len);
    struct writer w = {.off = at, .n = 0, .err = 0};
    w_bytes(&w, hdr, sizeof hdr);
    w_bytes(&w, r->label, r->info.label_len);
    w_bytes(&w, r->data, r->info.data_len);
    static const uint8_t pad[3] = {0xFF, 0xFF, 0xFF};
    w_bytes(&w, pad, (4u - ((uint32_t)r->info.label_len + r->info.data_len) % 4u) % 4u);
    uint8_t tail[4];
    put_u32(tail, crc);
    w_bytes(&w, tail, 4);
    w_flush(&w);
    return w.err;
}

static uint32_t record_size(const struct ml_ks_info *info)
{
    return ML_KS_RECORD_SIZE(info->label_len, info->data_len);
}

/* ---------------------------------------------------------------- scan */

static int read_sector_header(uint32_t sector, bool *valid, uint32_t *gen)
{
    uint8_t h[ML_KS_SECTOR_HEADER];
    if (rd(sector_base(sector), h, sizeof h) != 0) {
        return -1;
    }
    *valid = get_u32(h) == SECTOR_MAGIC && get_u32(h + 4) == STORE_VERSION && get_u32(h + 12) == ml_crc32(h, 12);
    *gen = get_u32(h + 8);
    return 0;
}

static int scan_active(void)
{
    uint32_t base = sector_base(active);
    uint32_t end = 0; /* after the last byte ever programmed in the sector */
    if (last_used(active, ML_KS_SECTOR_HEADER, &end) != 0) {
        return -1;
    }
    uint32_t off = ML_KS_SECTOR_HEADER;
    bool junk = false;
    while (off < end && off + ML_KS_RECORD_HEADER <= medium->sector_size) {
        uint8_t hdr[ML_KS_RECORD_HEADER];
        struct rec_header h;
        if (rd(base + off, hdr, sizeof hdr) != 0) {
            return -1;
        }
        if (decode_header(hdr, &h) != 1 || off + record_size(&h.info) > medium->sector_size) {
            /* A torn or corrupt header: its length cannot be trusted, so
             * look for the next valid record 4 bytes further on. */
            junk = true;
            off += 4;
            continue;
        }
        bool ok = false;
        if (check_body(base + off, hdr, &h, &ok) != 0) {
            return -1;
        }
        if (ok) { /* else: a torn or corrupt record, skipped */
            table[h.slot].used = h.type == TYPE_KEY;
            table[h.slot].offset = off;
            table[h.slot].info = h.info;
            if (h.seq >= next_seq) {
                next_seq = h.seq + 1;
            }
            junk = false; /* what follows a valid record is appendable */
        }
        off += record_size(&h.info);
    }
    /* Never append after what a torn write left behind: the next write
     * compacts into a fresh sector instead. */
    write_off = junk || end > off ? medium->sector_size : off;
    return 0;
}

int ml_keystore_init(void)
{
    medium = ml_hal_store();
    usable = false;
    active = NONE;
    generation = 0;
    write_off = 0;
    next_seq = 1;
    memset(table, 0, sizeof table);
    memset(erase_count, 0, sizeof erase_count);
    if (medium == NULL) {
        return ML_STATUS_OK;
    }
    if (medium->sectors < 2 || medium->sectors > SECTORS_MAX || medium->sector_size % 4u != 0 ||
        medium->sector_size < 256 || medium->sector_size > 0x01000000u) {
        return ML_STATUS_STORAGE_ERROR;
    }
    for (uint32_t s = 0; s < medium->sectors; s++) {
        bool valid = false;
        uint32_t gen = 0;
        if (read_sector_header(s, &valid, &gen) != 0) {
            return ML_STATUS_STORAGE_ERROR;
        }
        if (valid && (active == NONE || gen > generation)) {
            active = s;
            generation = gen;
        }
    }
    if (active == NONE) {
        write_off = medium->sector_size; /* the first write formats a sector */
    } else if (scan_active() != 0) {
        memset(table, 0, sizeof table);
        return ML_STATUS_STORAGE_ERROR;
    }
    usable = true;
    return ML_STATUS_OK;
}

const struct ml_store_medium *ml_keystore_medium(void) { return medium; }

uint32_t ml_keystore_slots(void) { return medium != NULL ? ML_KS_SLOTS_MAX : 0; }

uint32_t ml_keystore_records(void) { return medium != NULL ? ML_KS_RECORDS_MAX : 0; }

uint32_t ml_keystore_erases(uint32_t sector) { return sector < SECTORS_MAX ? erase_count[sector] : 0; }

uint32_t ml_keystore_active_sector(void) { return active; }

/* ---------------------------------------------------------------- compaction */

static int copy_bytes(uint32_t from, uint32_t to, uint32_t len)
{
    uint8_t buf[CHUNK];
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < CHUNK ? len - done : CHUNK;
        if (rd(from + done, buf, n) != 0 || prog(to + done, buf, n) != 0) {
            return -1;
        }
        done += n;
    }
    return 0;
}

/* Moves the live records (all but `skip`) and then `rec` (may be NULL) into
 * the next sector, makes it active and erases the old one. */
static int compact(uint32_t skip, const struct new_record *rec)
{
    uint32_t need = ML_KS_SECTOR_HEADER + (rec != NULL ? record_size(&rec->info) : 0);
    for (uint32_t s = 0; s < ML_KS_RECORDS_MAX; s++) {
        if (table[s].used && s != skip) {
            need += record_size(&table[s].info);
        }
    }
    if (need > medium->sector_size) {
        return ML_STATUS_STORAGE_FULL;
    }
    uint32_t dst = active == NONE ? 0 : (active + 1) % medium->sectors;
    if (erase_blank(dst) != 0) {
        return ML_STATUS_STORAGE_ERROR;
    }
    uint32_t offsets[ML_KS_RECORDS_MAX];
    uint32_t off = ML_KS_SECTOR_HEADER;
    for (uint32_t s = 0; s < ML_KS_RECORDS_MAX; s++) {
        offsets[s] = 0;
        if (table[s].used && s != skip) {
            uint32_t len = record_size(&table[s].info);
            if (copy_bytes(sector_base(active) + table[s].offset, sector_base(dst) + off, len) != 0) {
                return ML_STATUS_STORAGE_ERROR;
            }
            offsets[s] = off;
            off += len;
        }
    }
    uint32_t rec_off = off;
    if (rec != NULL) {
        if (write_record(sector_base(dst) + off, rec, next_seq) != 0) {
            return ML_STATUS_STORAGE_ERROR;
        }
        off += record_size(&rec->info);
    }
    /* The header last: until it is written the old sector stays active. */
    uint8_t h[ML_KS_SECTOR_HEADER];
    put_u32(h, SECTOR_MAGIC);
    put_u32(h + 4, STORE_VERSION);
    put_u32(h + 8, generation + 1);
    put_u32(h + 12, ml_crc32(h, 12));
    if (prog(sector_base(dst), h, sizeof h) != 0) {
        return ML_STATUS_STORAGE_ERROR;
    }
    uint32_t old = active;
    active = dst;
    generation++;
    write_off = off;
    if (rec != NULL) {
        next_seq++;
    }
    for (uint32_t s = 0; s < ML_KS_RECORDS_MAX; s++) {
        table[s].offset = offsets[s];
        if (s == skip) {
            table[s].used = false;
        }
    }
    if (rec != NULL && rec->type == TYPE_KEY) {
        table[rec->slot].used = true;
        table[rec->slot].offset = rec_off;
        table[rec->slot].info = rec->info;
    }
    if (old != NONE) {
        /* A failure here leaves a stale sector that the rotation erases
         * before it is used again; the new state is already in place. */
        (void)erase_blank(old);
    }
    return ML_STATUS_OK;
}

/* Appends a record, compacting when it does not fit. */
static int append(const struct new_record *rec)
{
    uint32_t size = record_size(&rec->info);
    if (active != NONE && write_off + size <= medium->sector_size) {
        uint32_t at = write_off;
        write_off += size; /* consumed even when the write fails: a torn record is skipped */
        if (write_record(sector_base(active) + at, rec, next_seq) != 0) {
            return ML_STATUS_STORAGE_ERROR;
        }
        next_seq++;
        table[rec->slot].used = rec->type == TYPE_KEY;
        table[rec->slot].offset = at;
        table[rec->slot].info = rec->info;
        return ML_STATUS_OK;
    }
    /* A deletion needs no tombstone in the new sector: the record is simply not copied. */
    return compact(rec->slot, rec->type == TYPE_KEY ? rec : NULL);
}

/* ---------------------------------------------------------------- API */

static int check_slot(uint32_t slot)
{
    if (slot >= ml_keystore_records()) {
        return ML_STATUS_BAD_ARGUMENT;
    }
    return usable ? ML_STATUS_OK : ML_STATUS_STORAGE_ERROR;
}

int ml_keystore_info(uint32_t slot, struct ml_ks_info *info)
{
    int st = check_slot(slot);
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (!table[slot].used) {
        return ML_STATUS_SLOT_EMPTY;
    }
    *info = table[slot].info;
    return ML_STATUS_OK;
}

int ml_keystore_read(uint32_t slot, uint8_t *label, uint8_t *data)
{
    struct ml_ks_info info;
    int st = ml_keystore_info(slot, &info);
    if (st != ML_STATUS_OK) {
        return st;
    }
    uint32_t at = sector_base(active) + table[slot].offset;
    uint8_t hdr[ML_KS_RECORD_HEADER];
    struct rec_header h;
    bool ok = false;
    /* Re-check what is on the medium: it may have changed under us. */
    if (rd(at, hdr, sizeof hdr) != 0 || decode_header(hdr, &h) != 1 || h.slot != slot ||
        check_body(at, hdr, &h, &ok) != 0 || !ok) {
        return ML_STATUS_STORAGE_ERROR;
    }
    if (label != NULL && rd(at + ML_KS_RECORD_HEADER, label, info.label_len) != 0) {
        return ML_STATUS_STORAGE_ERROR;
    }
    if (data != NULL && rd(at + ML_KS_RECORD_HEADER + info.label_len, data, info.data_len) != 0) {
        return ML_STATUS_STORAGE_ERROR;
    }
    return ML_STATUS_OK;
}

int ml_keystore_put(uint32_t slot, uint8_t kind, uint8_t flags, const uint8_t *label, size_t label_len,
                    const uint8_t *data, size_t data_len, bool overwrite)
{
    int st = check_slot(slot);
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (label_len > ML_SLOT_LABEL_MAX || data_len == 0) {
        return ML_STATUS_BAD_ARGUMENT;
    }
    if (data_len > DATA_MAX) {
        return ML_STATUS_STORAGE_FULL;
    }
    if (table[slot].used && !overwrite) {
        return ML_STATUS_SLOT_IN_USE;
    }
    struct new_record rec = {
        .slot = slot,
        .type = TYPE_KEY,
        .info = {.kind = kind, .flags = flags, .label_len = (uint8_t)label_len, .data_len = (uint16_t)data_len},
        .label = label,
        .data = data,
    };
    return append(&rec);
}

int ml_keystore_delete(uint32_t slot)
{
    int st = check_slot(slot);
    if (st != ML_STATUS_OK) {
        return st;
    }
    if (!table[slot].used) {
        return ML_STATUS_SLOT_EMPTY;
    }
    static const uint8_t none[1] = {0};
    struct new_record rec = {.slot = slot, .type = TYPE_TOMB, .info = {0}, .label = none, .data = none};
    return append(&rec);
}

int ml_store_program_by_and(ml_store_read_fn read, ml_store_write_fn write, uint32_t offset, const uint8_t *data,
                            size_t len, uint8_t *scratch, size_t scratch_len)
{
    for (size_t done = 0; done < len;) {
        size_t n = len - done < scratch_len ? len - done : scratch_len;
        if (read(offset + (uint32_t)done, scratch, n) != 0) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            scratch[i] &= data[done + i];
        }
        if (write(offset + (uint32_t)done, scratch, n) != 0) {
            return -1;
        }
        done += n;
    }
    return 0;
}
