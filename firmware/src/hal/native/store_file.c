/*
 * The native key store medium: STORE_SECTORS sectors of STORE_SECTOR bytes
 * with flash semantics (erase = 0xFF, program = AND), in a file given with
 * `--store PATH` ("file", persistent), or in RAM without one ("volatile":
 * slots work but die with the process). File writes go to the page cache
 * only (no fsync): they survive the process being killed, not a host crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hal_native.h"
#include "store/ml_store_hal.h"

#define STORE_SECTOR  (64u * 1024u)
#define STORE_SECTORS 4u
#define STORE_SIZE    (STORE_SECTOR * STORE_SECTORS)

static struct ml_store_medium medium = {
    .kind = "volatile",
    .persistent = false,
    .sector_size = STORE_SECTOR,
    .sectors = STORE_SECTORS,
};
static int fd = -1;
static uint8_t ram[STORE_SIZE];
static int ram_ready;

/* pread or pwrite until all `len` bytes have moved (EINTR retried); 0 or -1. */
static int move_all(bool writing, uint32_t offset, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = writing ? pwrite(fd, buf, len, (off_t)offset) : pread(fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        offset += (uint32_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int pread_all(uint32_t offset, void *buf, size_t len) { return move_all(false, offset, buf, len); }

/* pwrite(2) does not write through `buf`: dropping const for move_all is safe. */
static int pwrite_all(uint32_t offset, const void *buf, size_t len)
{
    return move_all(true, offset, (uint8_t *)buf, len);
}

int hal_native_store_open(const char *path)
{
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        return -1;
    }
    struct stat st;
    if (fstat(f, &st) != 0) {
        close(f);
        return -1;
    }
    fd = f;
    /* A new (or short) file is an erased medium. */
    uint8_t ff[4096];
    memset(ff, 0xFF, sizeof ff);
    for (off_t at = st.st_size; at < (off_t)STORE_SIZE;) {
        size_t n = (size_t)((off_t)STORE_SIZE - at) < sizeof ff ? (size_t)((off_t)STORE_SIZE - at) : sizeof ff;
        if (pwrite_all((uint32_t)at, ff, n) != 0) {
            close(f);
            fd = -1;
            return -1;
        }
        at += (off_t)n;
    }
    medium.kind = "file";
    medium.persistent = true;
    return 0;
}

const struct ml_store_medium *ml_hal_store(void)
{
    if (fd < 0 && !ram_ready) {
        memset(ram, 0xFF, sizeof ram);
        ram_ready = 1;
    }
    return &medium;
}

static int in_range(uint32_t offset, size_t len) { return offset <= STORE_SIZE && len <= STORE_SIZE - offset; }

int ml_hal_store_read(uint32_t offset, void *buf, size_t len)
{
    if (!in_range(offset, len)) {
        return -1;
    }
    if (fd < 0) {
        memcpy(buf, ram + offset, len);
        return 0;
    }
    return pread_all(offset, buf, len);
}

int ml_hal_store_erase(uint32_t sector)
{
    if (sector >= STORE_SECTORS) {
        return -1;
    }
    if (fd < 0) {
        memset(ram + sector * STORE_SECTOR, 0xFF, STORE_SECTOR);
        return 0;
    }
    uint8_t ff[4096];
    memset(ff, 0xFF, sizeof ff);
    for (uint32_t done = 0; done < STORE_SECTOR; done += sizeof ff) {
        if (pwrite_all(sector * STORE_SECTOR + done, ff, sizeof ff) != 0) {
            return -1;
        }
    }
    return 0;
}

int ml_hal_store_program(uint32_t offset, const void *data, size_t len)
{
    const uint8_t *d = data;
    if (!in_range(offset, len)) {
        return -1;
    }
    if (fd < 0) {
        for (size_t i = 0; i < len; i++) {
            ram[offset + i] &= d[i];
        }
        return 0;
    }
    /* Like flash: bits only go from 1 to 0. */
    uint8_t buf[256];
    return ml_store_program_by_and(pread_all, pwrite_all, offset, d, len, buf, sizeof buf);
}
