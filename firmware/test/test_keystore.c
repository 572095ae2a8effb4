/*
 * The key store (ml_keystore.c) over a RAM-simulated flash medium with flash
 * semantics: erase sets 0xFF, program may only clear bits (the simulator
 * flags any attempt to set one), and a "power cut" stops programming after
 * a given number of bytes. A reboot is ml_keystore_init() on what the
 * medium holds.
 */
#include <stdlib.h>
#include <string.h>

#include "core/protocol_ids.h"
#include "store/ml_keystore.h"
#include "store/ml_store_hal.h"
#include "test_util.h"

#define SIM_MAX (8u * 8192u)

static struct ml_store_medium sim = {.kind = "volatile", .persistent = false, .sector_size = 1024, .sectors = 2};
static uint8_t flash[SIM_MAX];
static long budget = -1; /* bytes that may still be programmed; -1 = no power cut */
static bool dead;        /* the power was cut: every access fails until the reboot */
static bool violation;   /* a program tried to set a bit */
static bool fail_reads;
static uint32_t erases[8];

const struct ml_store_medium *ml_hal_store(void) { return &sim; }

int ml_hal_store_read(uint32_t offset, void *buf, size_t len)
{
    if (dead || fail_reads || offset + len > sim.sector_size * sim.sectors) {
        return -1;
    }
    memcpy(buf, flash + offset, len);
    return 0;
}

int ml_hal_store_erase(uint32_t sector)
{
    if (dead || budget == 0 || sector >= sim.sectors) {
        dead = dead || budget == 0;
        return -1;
    }
    erases[sector]++;
    memset(flash + sector * sim.sector_size, 0xFF, sim.sector_size);
    return 0;
}

int ml_hal_store_program(uint32_t offset, const void *data, size_t len)
{
    const uint8_t *d = data;
    if (dead || offset + len > sim.sector_size * sim.sectors || offset % 4 != 0 || len % 4 != 0) {
        violation = violation || offset % 4 != 0 || len % 4 != 0;
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (budget == 0) {
            dead = true;
            return -1;
        }
        if (budget > 0) {
            budget--;
        }
        if ((flash[offset + i] & d[i]) != d[i]) {
            violation = true;
        }
        flash[offset + i] &= d[i];
    }
    return 0;
}

static void sim_reset(uint32_t sector_size, uint32_t sectors)
{
    sim.sector_size = sector_size;
    sim.sectors = sectors;
    memset(flash, 0xFF, sizeof flash);
    memset(erases, 0, sizeof erases);
    budget = -1;
    dead = false;
    violation = false;
    fail_reads = false;
}

static void reboot(void)
{
    budget = -1;
    dead = false;
    CHECK_EQ(ml_keystore_init(), ML_STATUS_OK);
    CHECK(!violation);
}

/* A model of what the store should hold. */
struct model_slot {
    bool used;
    uint8_t kind, flags;
    size_t label_len, data_len;
    uint8_t label[ML_SLOT_LABEL_MAX];
    uint8_t data[ML_KS_DATA_MAX];
};
static struct model_slot model[ML_KS_RECORDS_MAX];

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static int model_put(uint32_t slot, size_t label_len, size_t data_len, uint32_t seed, bool overwrite)
{
    struct model_slot m = {.used = true, .kind = (uint8_t)(1 + seed % 2), .flags = (uint8_t)(seed % 3)};
    m.label_len = label_len;
    m.data_len = data_len;
    fill(m.label, label_len, seed);
    fill(m.data, data_len, ~seed);
    int st = ml_keystore_put(slot, m.kind, m.flags, m.label, label_len, m.data, data_len, overwrite);
    if (st == ML_STATUS_OK) {
        model[slot] = m;
    }
    return st;
}

static void check_model(void)
{
    static uint8_t label[ML_SLOT_LABEL_MAX], data[ML_KS_DATA_MAX];
    for (uint32_t s = 0; s < ML_KS_RECORDS_MAX; s++) {
        struct ml_ks_info info;
        int st = ml_keystore_info(s, &info);
        if (!model[s].used) {
            CHECK_EQ(st, ML_STATUS_SLOT_EMPTY);
            CHECK_EQ(ml_keystore_read(s, label, data), ML_STATUS_SLOT_EMPTY);
            continue;
        }
        CHECK_EQ(st, ML_STATUS_OK);
        if (st != ML_STATUS_OK) {
            continue;
        }
        CHECK_EQ(info.kind, model[s].kind);
        CHECK_EQ(info.flags, model[s].flags);
        CHECK_EQ(info.label_len, model[s].label_len);
        CHECK_EQ(info.data_len, model[s].data_len);
        CHECK_EQ(ml_keystore_read(s, label, data), ML_STATUS_OK);
        CHECK(memcmp(label, model[s].label, model[s].label_len) == 0);
        CHECK(memcmp(data, model[s].data, model[s].data_len) == 0);
    }
}

static void start(uint32_t sector_size, uint32_t sectors)
{
    sim_reset(sector_size, sectors);
    memset(model, 0, sizeof model);
    reboot();
    CHECK_EQ(ml_keystore_slots(), ML_KS_SLOTS_MAX);
}

ML_TEST(put_get_delete_overwrite)
{
    start(1024, 2);
    check_model();
    CHECK_EQ(model_put(3, 5, 16, 1, false), ML_STATUS_OK);
    CHECK_EQ(model_put(0, 0, 32, 2, false), ML_STATUS_OK);
    check_model();
    CHECK_EQ(model_put(3, 5, 16, 9, false), ML_STATUS_SLOT_IN_USE);
    check_model();
    CHECK_EQ(model_put(3, 7, 24, 10, true), ML_STATUS_OK);
    check_model();
    CHECK_EQ(ml_keystore_delete(0), ML_STATUS_OK);
    model[0].used = false;
    CHECK_EQ(ml_keystore_delete(0), ML_STATUS_SLOT_EMPTY);
    check_model();
    reboot();
    check_model();
    CHECK_EQ(model_put(0, 1, 1, 11, false), ML_STATUS_OK);
    reboot();
    check_model();
}

ML_TEST(bad_arguments)
{
    start(1024, 2);
    uint8_t buf[ML_SLOT_LABEL_MAX + 1] = {0};
    struct ml_ks_info info;
    CHECK_EQ(ml_keystore_put(ML_KS_RECORDS_MAX, 2, 0, buf, 1, buf, 16, false), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(ml_keystore_info(ML_KS_RECORDS_MAX, &info), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(ml_keystore_delete(0xFFFFFFFFu), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(ml_keystore_put(1, 2, 0, buf, ML_SLOT_LABEL_MAX + 1, buf, 16, false), ML_STATUS_BAD_ARGUMENT);
    CHECK_EQ(ml_keystore_put(1, 2, 0, buf, 0, buf, 0, false), ML_STATUS_BAD_ARGUMENT);
    check_model();
}

ML_TEST(labels)
{
    start(1024, 2);
    static const char *const labels[] = {"", "a", "device key", "0123456789abcdef0123456789abcdef"};
    uint8_t key[16] = {1, 2, 3};
    for (uint32_t i = 0; i < 4; i++) {
        size_t n = strlen(labels[i]);
        CHECK_EQ(ml_keystore_put(i, 2, 0, (const uint8_t *)labels[i], n, key, sizeof key, false), ML_STATUS_OK);
    }
    reboot();
    for (uint32_t i = 0; i < 4; i++) {
        uint8_t label[ML_SLOT_LABEL_MAX];
        struct ml_ks_info info;
        CHECK_EQ(ml_keystore_info(i, &info), ML_STATUS_OK);
        CHECK_EQ(info.label_len, strlen(labels[i]));
        CHECK_EQ(ml_keystore_read(i, label, NULL), ML_STATUS_OK);
        CHECK(memcmp(label, labels[i], info.label_len) == 0);
    }
}

/* Thousands of writes through small sectors: the state is right after every
 * operation and after reboots, erases go round the sectors in turn. */
ML_TEST(compaction_wear_spread)
{
    for (uint32_t sectors = 2; sectors <= 4; sectors++) {
        start(512, sectors);
        uint32_t seed = 7;
        for (int i = 0; i < 3000; i++) {
            seed = seed * 1664525u + 1013904223u;
            uint32_t slot = (seed >> 8) % 5;
            if ((seed >> 20) % 4 == 0 && model[slot].used) {
                CHECK_EQ(ml_keystore_delete(slot), ML_STATUS_OK);
                model[slot].used = false;
            } else {
                CHECK_EQ(model_put(slot, (seed >> 12) % 9, 1 + (seed >> 16) % 60, seed, true), ML_STATUS_OK);
            }
            if (i % 97 == 0) {
                reboot();
            }
            check_model();
        }
        CHECK(!violation);
        uint32_t lo = 0xFFFFFFFFu, hi = 0;
        for (uint32_t s = 0; s < sectors; s++) {
            lo = erases[s] < lo ? erases[s] : lo;
            hi = erases[s] > hi ? erases[s] : hi;
        }
        printf("  %u sectors: erases per sector %u..%u\n", sectors, lo, hi);
        CHECK(lo > 100);
        CHECK(hi - lo <= 1);
    }
}

static uint8_t snapshot[SIM_MAX];

/* Runs `op` with the power cut after k programmed bytes, for every k until
 * it completes; after each cut, a reboot must show the state before or (only
 * once the op could complete) after it, with every other record intact. */
static void torn_sweep(int (*op)(void), void (*apply)(void), const char *what)
{
    static struct model_slot before[ML_KS_RECORDS_MAX];
    memcpy(before, model, sizeof model);
    memcpy(snapshot, flash, sizeof flash);
    uint32_t erases_before[8];
    memcpy(erases_before, erases, sizeof erases);
    int completed_at = -1;
    int old_after_cut = 0, new_after_cut = 0;
    for (long k = 0; completed_at < 0; k++) {
        memcpy(flash, snapshot, sizeof flash);
        memcpy(model, before, sizeof model);
        memcpy(erases, erases_before, sizeof erases);
        reboot();
        budget = k;
        int st = op();
        if (st == ML_STATUS_OK) {
            completed_at = (int)k;
            apply();
        } else {
            CHECK(dead);
        }
        reboot();
        if (completed_at < 0) {
            /* Not confirmed: the old state, or the new one if only the
             * erase of the old sector was cut. */
            struct ml_ks_info info;
            (void)info;
            bool as_before = true;
            for (uint32_t s = 0; s < ML_KS_RECORDS_MAX && as_before; s++) {
                as_before = (ml_keystore_info(s, &info) == ML_STATUS_OK) == model[s].used;
            }
            if (as_before) {
                check_model();
                old_after_cut++;
            } else {
                apply();
                check_model();
                new_after_cut++;
            }
        } else {
            check_model();
        }
        /* The store keeps working after the cut. */
        CHECK_EQ(model_put(15, 3, 8, (uint32_t)k, true), ML_STATUS_OK);
        check_model();
        reboot();
        check_model();
    }
    printf("  %s: completes with %d programmed bytes; after a cut: %d old state, %d new state\n", what, completed_at,
           old_after_cut, new_after_cut);
    CHECK(completed_at > 0);
    CHECK(old_after_cut > 0);
}

static int op_put_slot2(void)
{
    uint8_t label[4] = {'k', 'e', 'y', '2'}, data[40];
    fill(data, sizeof data, 42);
    return ml_keystore_put(2, 2, 1, label, sizeof label, data, sizeof data, true);
}

static void apply_put_slot2(void)
{
    struct model_slot m = {.used = true, .kind = 2, .flags = 1, .label_len = 4, .data_len = 40};
    memcpy(m.label, "key2", 4);
    fill(m.data, 40, 42);
    model[2] = m;
}

static int op_delete_slot1(void) { return ml_keystore_delete(1); }
static void apply_delete_slot1(void) { model[1].used = false; }

ML_TEST(torn_append_every_byte)
{
    start(1024, 2);
    CHECK_EQ(model_put(1, 4, 30, 5, false), ML_STATUS_OK);
    CHECK_EQ(model_put(2, 4, 20, 6, false), ML_STATUS_OK); /* overwritten by the op: old value survives a cut */
    torn_sweep(op_put_slot2, apply_put_slot2, "append (overwrite)");
    start(1024, 2);
    CHECK_EQ(model_put(1, 4, 30, 5, false), ML_STATUS_OK);
    torn_sweep(op_delete_slot1, apply_delete_slot1, "tombstone");
}

ML_TEST(torn_compaction_every_byte)
{
    start(512, 2);
    uint32_t seed = 1;
    CHECK_EQ(model_put(4, 2, 30, seed++, false), ML_STATUS_OK); /* formats sector 0 */
    CHECK_EQ(model_put(5, 6, 10, seed++, false), ML_STATUS_OK);
    /* Fill the active sector up to the point where the next put compacts. */
    for (;;) {
        memcpy(snapshot, flash, sizeof flash);
        static struct model_slot keep[ML_KS_RECORDS_MAX];
        memcpy(keep, model, sizeof model);
        uint32_t a = ml_keystore_active_sector();
        CHECK_EQ(model_put(2, 4, 40, 99, true), ML_STATUS_OK);
        bool compacted = ml_keystore_active_sector() != a;
        memcpy(flash, snapshot, sizeof flash);
        memcpy(model, keep, sizeof model);
        reboot();
        if (compacted) {
            break;
        }
        CHECK_EQ(model_put(3, 4, 40, seed++, true), ML_STATUS_OK);
    }
    check_model();
    CHECK_EQ(ml_keystore_active_sector(), 0);
    torn_sweep(op_put_slot2, apply_put_slot2, "compaction");
    CHECK_EQ(ml_keystore_active_sector(), 1);
}

ML_TEST(corrupt_record_skipped)
{
    start(1024, 2);
    CHECK_EQ(model_put(0, 3, 20, 1, false), ML_STATUS_OK);
    CHECK_EQ(model_put(1, 3, 20, 2, false), ML_STATUS_OK);
    CHECK_EQ(model_put(2, 3, 20, 3, false), ML_STATUS_OK);
    /* Flip a bit in the body of slot 1's record (second record of the log). */
    uint32_t base = ml_keystore_active_sector() * sim.sector_size;
    uint32_t rec1 = base + ML_KS_SECTOR_HEADER + ML_KS_RECORD_SIZE(3, 20);
    flash[rec1 + ML_KS_RECORD_HEADER + 5] ^= 0x10;
    /* Read after the corruption: storage_error, the others still load. */
    uint8_t data[20];
    CHECK_EQ(ml_keystore_read(1, NULL, data), ML_STATUS_STORAGE_ERROR);
    CHECK_EQ(ml_keystore_read(2, NULL, data), ML_STATUS_OK);
    reboot();
    model[1].used = false; /* skipped at the scan */
    check_model();
    CHECK_EQ(model_put(1, 3, 20, 4, false), ML_STATUS_OK);
    reboot();
    check_model();
}

/* A corrupt header hides its record's length: the scan finds the records
 * after it anyway, and appending after them stays safe. */
ML_TEST(corrupt_header_skipped)
{
    start(1024, 2);
    CHECK_EQ(model_put(0, 3, 20, 1, false), ML_STATUS_OK);
    CHECK_EQ(model_put(1, 3, 21, 2, false), ML_STATUS_OK);
    CHECK_EQ(model_put(2, 3, 22, 3, false), ML_STATUS_OK);
    CHECK_EQ(model_put(3, 0, 1, 4, false), ML_STATUS_OK);
    uint32_t base = ml_keystore_active_sector() * sim.sector_size;
    uint32_t rec1 = base + ML_KS_SECTOR_HEADER + ML_KS_RECORD_SIZE(3, 20);
    flash[rec1 + 9] ^= 0x01; /* the slot number of slot 1's record */
    reboot();
    model[1].used = false;
    check_model();
    CHECK_EQ(model_put(4, 1, 8, 5, false), ML_STATUS_OK);
    reboot();
    check_model();
}

ML_TEST(storage_full)
{
    start(512, 2);
    static uint8_t big[ML_KS_DATA_MAX + 1];
    CHECK_EQ(ml_keystore_put(0, 1, 0, big, 1, big, sizeof big, false), ML_STATUS_STORAGE_FULL);
    CHECK_EQ(ml_keystore_put(0, 1, 0, big, 1, big, 600, false), ML_STATUS_STORAGE_FULL);
    int full_at = -1;
    for (uint32_t s = 0; s < ML_KS_SLOTS_MAX; s++) {
        int st = model_put(s, 8, 100, s, false);
        if (st == ML_STATUS_STORAGE_FULL) {
            full_at = (int)s;
            break;
        }
        CHECK_EQ(st, ML_STATUS_OK);
    }
    CHECK(full_at > 0);
    check_model();
    reboot();
    check_model();
    CHECK_EQ(ml_keystore_delete(0), ML_STATUS_OK);
    model[0].used = false;
    CHECK_EQ(model_put((uint32_t)full_at, 8, 100, 77, false), ML_STATUS_OK);
    reboot();
    check_model();
}

ML_TEST(medium_failures)
{
    start(1024, 2);
    CHECK_EQ(model_put(0, 3, 20, 1, false), ML_STATUS_OK);
    fail_reads = true;
    CHECK_EQ(ml_keystore_init(), ML_STATUS_STORAGE_ERROR);
    struct ml_ks_info info;
    CHECK_EQ(ml_keystore_info(0, &info), ML_STATUS_STORAGE_ERROR);
    fail_reads = false;
    reboot();
    check_model();
    /* Garbage in the sector headers: an unformatted medium is taken as empty
     * and formatted by the first write. */
    memset(flash, 0, sizeof flash);
    reboot();
    memset(model, 0, sizeof model);
    check_model();
    CHECK_EQ(model_put(4, 3, 20, 1, false), ML_STATUS_OK);
    reboot();
    check_model();
}

/* The record ids beyond the key slots (each slot's certificate chain, the
 * trust anchors) live in the same log: up to ML_KS_DATA_MAX bytes each,
 * through compaction, reboots and deletions; ids past them are refused. */
ML_TEST(chain_and_trust_records)
{
    start(SIM_MAX / 2, 2);
    CHECK_EQ(ML_KS_CHAIN(ML_KS_SLOTS_MAX - 1) + 1, ML_KS_TRUST);
    CHECK_EQ(ml_keystore_records(), ML_KS_RECORDS_MAX);
    CHECK_EQ(model_put(2, 4, 100, 1, false), ML_STATUS_OK);
    CHECK_EQ(model_put(ML_KS_CHAIN(2), 0, ML_KS_DATA_MAX, 2, false), ML_STATUS_OK);
    CHECK_EQ(model_put(ML_KS_TRUST, 0, 3000, 3, false), ML_STATUS_OK);
    CHECK_EQ(model_put(ML_KS_CHAIN(15), 0, 10, 4, false), ML_STATUS_OK);
    check_model();
    static uint8_t big[ML_KS_DATA_MAX + 1];
    CHECK_EQ(ml_keystore_put(ML_KS_CHAIN(3), 3, 0, big, 0, big, sizeof big, false), ML_STATUS_STORAGE_FULL);
    CHECK_EQ(ml_keystore_put(ML_KS_RECORDS_MAX, 3, 0, big, 0, big, 16, false), ML_STATUS_BAD_ARGUMENT);
    reboot();
    check_model();
    /* Rewrites until the log compacts several times: every record moves along. */
    uint32_t a = ml_keystore_active_sector();
    int moves = 0;
    for (uint32_t i = 0; i < 40; i++) {
        CHECK_EQ(model_put(ML_KS_CHAIN(2), 0, 4000 + i * 97, 10 + i, true), ML_STATUS_OK);
        moves += ml_keystore_active_sector() != a;
        a = ml_keystore_active_sector();
        check_model();
    }
    CHECK(moves >= 2);
    CHECK_EQ(ml_keystore_delete(ML_KS_TRUST), ML_STATUS_OK);
    model[ML_KS_TRUST].used = false;
    reboot();
    check_model();
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(put_get_delete_overwrite), ML_CASE(bad_arguments),           ML_CASE(labels),
        ML_CASE(compaction_wear_spread),   ML_CASE(torn_append_every_byte),  ML_CASE(torn_compaction_every_byte),
        ML_CASE(corrupt_record_skipped),   ML_CASE(corrupt_header_skipped),  ML_CASE(storage_full),
        ML_CASE(medium_failures),          ML_CASE(chain_and_trust_records),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
