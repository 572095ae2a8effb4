/*
 * The key store medium on the STM32F405/F407 (ml_store_hal.h), decided once
 * at the first call:
 *
 *  - QEMU with semihosting: host/src/targets/qemu.ts starts QEMU with
 *    `-semihosting-config enable=on,target=native` and writes
 *    SEMIHOST_MAGIC at 0x2001FFD8 (.noinit) with a generic loader. Only
 *    then the store is the host file STORE_FILE (relative to QEMU's working
 *    directory), reached with ARM semihosting calls (`bkpt 0xAB`): two
 *    128 KiB sectors, like the flash below ("semihosting-file",
 *    persistent). Without the magic no semihosting call is ever made: on a
 *    board without a debugger `bkpt` would hard-fault.
 *  - Otherwise (a real board): flash sectors 10 and 11 (0x080C0000 and
 *    0x080E0000, 128 KiB each), which the linker script keeps code out of
 *    ("flash", persistent); in QEMU without semihosting (the emulated RCC
 *    gives it away, clock.c) there is no medium: no slots. Erase: SER + SNB + STRT; program: PG with
 *    32-bit words (PSIZE x32, needs 2.7-3.6 V); every wait is bounded; the
 *    flash is locked again after each operation. The key store reads every
 *    program and erase back, so a flash that ignores them gives
 *    storage_error, never silent loss.
 * NOT TESTED on a real chip (no board here): see README.md.
 */
#include <string.h>

#include "stm32f4.h"
#include "store/ml_store_hal.h"

#define SECTOR_SIZE (128u * 1024u)
#define SECTORS     2u
#define STORE_SIZE  (SECTOR_SIZE * SECTORS)

/* ---------------------------------------------------------------- detection */

#define SEMIHOST_MAGIC_LO 0x53484F53u /* "SOHS" */
#define SEMIHOST_MAGIC_HI 0x6B4C6D31u /* "1mLk" */
__attribute__((section(".noinit.semihost"))) static volatile uint32_t semihost_flag[2];

enum backend { BACKEND_UNKNOWN, BACKEND_NONE, BACKEND_SEMIHOST, BACKEND_FLASH };
static enum backend backend = BACKEND_UNKNOWN;

static struct ml_store_medium medium = {
    .kind = "flash",
    .persistent = true,
    .sector_size = SECTOR_SIZE,
    .sectors = SECTORS,
};

/* ---------------------------------------------------------------- semihosting */

#define STORE_FILE  "mbedlink-store.bin"
#define SYS_OPEN    0x01
#define SYS_CLOSE   0x02
#define SYS_WRITE   0x05
#define SYS_READ    0x06
#define SYS_SEEK    0x0A
#define SYS_FLEN    0x0C
#define MODE_RPLUSB 3 /* "r+b" */
#define MODE_WPLUSB 7 /* "w+b" */

static int sh_file = -1;

static int semihost(uint32_t op, const void *args)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

static int sh_seek(uint32_t offset)
{
    uint32_t a[2] = {(uint32_t)sh_file, offset};
    return semihost(SYS_SEEK, a) == 0 ? 0 : -1;
}

static int sh_read(uint32_t offset, void *buf, size_t len)
{
    uint32_t a[3] = {(uint32_t)sh_file, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    return sh_seek(offset) == 0 && semihost(SYS_READ, a) == 0 ? 0 : -1;
}

static int sh_write(uint32_t offset, const void *buf, size_t len)
{
    uint32_t a[3] = {(uint32_t)sh_file, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    return sh_seek(offset) == 0 && semihost(SYS_WRITE, a) == 0 ? 0 : -1;
}

static int sh_open(void)
{
    static const char name[] = STORE_FILE;
    uint32_t a[3] = {(uint32_t)(uintptr_t)name, MODE_RPLUSB, sizeof name - 1};
    sh_file = semihost(SYS_OPEN, a);
    if (sh_file < 0) {
        a[1] = MODE_WPLUSB; /* missing: create it */
        sh_file = semihost(SYS_OPEN, a);
    }
    if (sh_file < 0) {
        return -1;
    }
    uint32_t f[1] = {(uint32_t)sh_file};
    int len = semihost(SYS_FLEN, f);
    if (len < 0) {
        return -1;
    }
    /* A new (or short) file is an erased medium. */
    uint8_t ff[256];
    memset(ff, 0xFF, sizeof ff);
    for (uint32_t at = (uint32_t)len; at < STORE_SIZE; at += sizeof ff) {
        if (sh_write(at, ff, sizeof ff) != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- flash */

#define FLASH_BASE_STORE 0x080C0000u /* sector 10; sector 11 follows */
#define FLASH_FIRST_SNB  10u
#define FLASH_KEYR       REG32(0x40023C04u)
#define FLASH_SR         REG32(0x40023C0Cu)
#define FLASH_CR         REG32(0x40023C10u)
#define FLASH_KEY1       0x45670123u
#define FLASH_KEY2       0xCDEF89ABu
#define FLASH_SR_BSY     (1u << 16)
#define FLASH_SR_ERRORS  0xF2u /* PGSERR PGPERR PGAERR WRPERR OPERR */
#define FLASH_SR_EOP     (1u << 0)
#define FLASH_CR_PG      (1u << 0)
#define FLASH_CR_SER     (1u << 1)
#define FLASH_CR_SNB(n)  ((uint32_t)(n) << 3)
#define FLASH_CR_PSIZE32 (2u << 8)
#define FLASH_CR_STRT    (1u << 16)
#define FLASH_CR_LOCK    (1u << 31)
/* Bounded waits, in polls: a 128 KiB sector erase takes 1-4 s (the CPU
 * stalls on flash reads meanwhile), a word program ~16 us. */
#define ERASE_POLLS   200000000u
#define PROGRAM_POLLS 100000u

static int flash_wait(uint32_t polls)
{
    while ((FLASH_SR & FLASH_SR_BSY) != 0) {
        if (polls-- == 0) {
            return -1;
        }
    }
    return (FLASH_SR & FLASH_SR_ERRORS) != 0 ? -1 : 0;
}

static int flash_unlock(void)
{
    if (flash_wait(PROGRAM_POLLS) != 0 && (FLASH_SR & FLASH_SR_BSY) != 0) {
        return -1;
    }
    FLASH_SR = FLASH_SR_ERRORS | FLASH_SR_EOP; /* write 1 to clear */
    if ((FLASH_CR & FLASH_CR_LOCK) != 0) {
        FLASH_KEYR = FLASH_KEY1;
        FLASH_KEYR = FLASH_KEY2;
    }
    return (FLASH_CR & FLASH_CR_LOCK) != 0 ? -1 : 0;
}

/* Locks the flash and drops the data cache's stale lines. */
static void flash_lock(void)
{
    FLASH_CR = FLASH_CR_LOCK;
    uint32_t acr = FLASH_ACR;
    FLASH_ACR = acr & ~FLASH_ACR_DCEN;
    FLASH_ACR = (acr & ~FLASH_ACR_DCEN) | FLASH_ACR_DCRST;
    FLASH_ACR = acr;
    dsb();
    isb();
}

static int flash_erase(uint32_t sector)
{
    if (flash_unlock() != 0) {
        flash_lock();
        return -1;
    }
    FLASH_CR = FLASH_CR_PSIZE32 | FLASH_CR_SER | FLASH_CR_SNB(FLASH_FIRST_SNB + sector);
    FLASH_CR |= FLASH_CR_STRT;
    dsb();
    int ret = flash_wait(ERASE_POLLS);
    flash_lock();
    return ret;
}

static int flash_program(uint32_t offset, const uint8_t *data, size_t len)
{
    if (offset % 4u != 0 || len % 4u != 0) {
        return -1;
    }
    if (flash_unlock() != 0) {
        flash_lock();
        return -1;
    }
    int ret = 0;
    FLASH_CR = FLASH_CR_PSIZE32 | FLASH_CR_PG;
    for (size_t i = 0; i < len && ret == 0; i += 4) {
        uint32_t word;
        memcpy(&word, data + i, 4);
        REG32(FLASH_BASE_STORE + offset + i) = word;
        dsb();
        ret = flash_wait(PROGRAM_POLLS);
    }
    flash_lock();
    return ret;
}

/* ---------------------------------------------------------------- HAL */

const struct ml_store_medium *ml_hal_store(void)
{
    if (backend == BACKEND_UNKNOWN) {
        if (semihost_flag[0] == SEMIHOST_MAGIC_LO && semihost_flag[1] == SEMIHOST_MAGIC_HI) {
            backend = sh_open() == 0 ? BACKEND_SEMIHOST : BACKEND_NONE;
            medium.kind = "semihosting-file";
        } else if (stm32_clocks()->source == STM32_CLOCK_EMULATED) {
            /* QEMU without semihosting: it models no flash controller, so
             * there is no medium at all (hello: volatile, 0 slots). */
            backend = BACKEND_NONE;
        } else {
            backend = BACKEND_FLASH;
        }
    }
    return backend == BACKEND_NONE ? NULL : &medium;
}

static int in_range(uint32_t offset, size_t len) { return offset <= STORE_SIZE && len <= STORE_SIZE - offset; }

int ml_hal_store_read(uint32_t offset, void *buf, size_t len)
{
    if (!in_range(offset, len)) {
        return -1;
    }
    if (backend == BACKEND_SEMIHOST) {
        return sh_read(offset, buf, len);
    }
    if (backend == BACKEND_FLASH) {
        memcpy(buf, (const void *)(uintptr_t)(FLASH_BASE_STORE + offset), len);
        return 0;
    }
    return -1;
}

int ml_hal_store_erase(uint32_t sector)
{
    if (sector >= SECTORS) {
        return -1;
    }
    if (backend == BACKEND_SEMIHOST) {
        uint8_t ff[256];
        memset(ff, 0xFF, sizeof ff);
        for (uint32_t at = 0; at < SECTOR_SIZE; at += sizeof ff) {
            if (sh_write(sector * SECTOR_SIZE + at, ff, sizeof ff) != 0) {
                return -1;
            }
        }
        return 0;
    }
    return backend == BACKEND_FLASH ? flash_erase(sector) : -1;
}

int ml_hal_store_program(uint32_t offset, const void *data, size_t len)
{
    const uint8_t *d = data;
    if (!in_range(offset, len)) {
        return -1;
    }
    if (backend == BACKEND_SEMIHOST) {
        /* Like flash: bits only go from 1 to 0. */
        uint8_t buf[64];
        return ml_store_program_by_and(sh_read, sh_write, offset, d, len, buf, sizeof buf);
    }
    return backend == BACKEND_FLASH ? flash_program(offset, d, len) : -1;
}
