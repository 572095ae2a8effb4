/*
 * mbedlink HAL for the STM32F405/F407: board description, SysTick clock,
 * serial line, reset, and the entropy source.
 *
 * Entropy, decided once at boot and reported truthfully in hello:
 *  - TRNG works (real chip): every ml_hal_entropy() call reads checked TRNG
 *    words (trng.c). A TRNG failure later is final: entropy calls fail and
 *    the entropy string says so.
 *  - No TRNG (QEMU's stub) but a boot nonce: the QEMU launcher writes 32
 *    fresh random bytes at 0x2001FFE0 (.noinit) before the CPU starts. They
 *    are read once and zeroed, and seed a SHA-256 pool that ml_hal_entropy()
 *    draws from (forward-secure: the pool is re-hashed after every draw).
 *    That is all the entropy this boot gets besides the seeds the host
 *    sends with hello (CTR_DRBG additional input): CTR_DRBG's later reseeds
 *    from the pool add no new entropy, and "entropy" says
 *    "host-seeded (...), no TRNG". The pool never fails, so reseeds (hello
 *    seeds, rng_reseed) keep working.
 *  - Neither: the same pool, seeded from whatever is at hand (SysTick, the
 *    uninitialised nonce area, the warm-reset carry), uncredited; "entropy"
 *    starts with "NO ENTROPY" so a host knows to supply its own seed.
 * Warm resets: QEMU re-applies its loader data on every system reset
 * (monitor system_reset, SYSRESETREQ), so the same nonce comes back, and RAM
 * survives. Every boot therefore leaves a checked "carry" in .noinit: 32
 * bytes drawn from its pool (replaced by DRBG output when the firmware
 * resets itself), a boot counter, and whether it was seeded from real
 * entropy. The next boot mixes it in and erases it, so boot ids differ
 * across warm resets. A carry from a credited boot keeps its credit (the
 * entropy came from that boot's nonce); on a real chip after power-up the
 * carry fails its CRC and is ignored.
 */
#include <mbedtls/sha256.h>
#include <string.h>

#include "core/ml_config.h"
#include "core/ml_crc32.h"
#include "core/ml_rng.h"
#include "hal/ml_hal.h"
#include "stm32f4.h"

#define BAUD        115200u
#define CARRY_MAGIC 0x6D6C4352u /* "mlCR" */

struct carry {
    uint32_t magic;
    uint32_t crc;        /* CRC-32 of the fields below */
    uint32_t boots;      /* warm boots since the last cold one */
    uint32_t credited;   /* 1: the seed descends from a nonce or TRNG */
    uint32_t last_fault; /* 0, or the code stm32_fatal() recorded (debugger) */
    uint8_t seed[32];
};

/* Placed by the linker script in .noinit (never zeroed, never loaded). */
__attribute__((section(".noinit.carry"))) static volatile struct carry carry;
__attribute__((section(".noinit.nonce"))) static volatile uint8_t boot_nonce[32];

enum entropy_mode { ENTROPY_TRNG, ENTROPY_HOST_NONCE, ENTROPY_NONE };

static struct ml_board board = {
    .name = "stm32f405",
    .entropy = "NO ENTROPY: host seed only",
    .mtu = ML_CFG_MTU,
    .window = ML_CFG_WINDOW,
};
static enum entropy_mode mode = ENTROPY_NONE;
static uint8_t pool[32];
static uint32_t pool_draws;
static uint32_t boots; /* warm boots since the last cold one */
static uint32_t last_fault;
static volatile uint64_t millis;

/* ---------------------------------------------------------------- SysTick */

void SysTick_Handler(void);
void SysTick_Handler(void) { millis++; }

uint64_t ml_hal_millis(void)
{
    uint32_t primask = irq_save();
    uint64_t ms = millis;
    irq_restore(primask);
    return ms;
}

static void systick_init(uint32_t core_hz)
{
    SYST_CSR = 0;
    SYST_RVR = core_hz / 1000u - 1u;
    SYST_CVR = 0;
    SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFu) | (0x80u << 24); /* SysTick priority */
    SYST_CSR = SYST_CSR_CLKSRC | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

/* ---------------------------------------------------------------- entropy pool */

static uint32_t carry_crc(void)
{
    uint8_t buf[12 + sizeof carry.seed];
    const uint32_t words[3] = {carry.boots, carry.credited, carry.last_fault};
    memcpy(buf, words, sizeof words);
    for (size_t i = 0; i < sizeof carry.seed; i++) {
        buf[12 + i] = carry.seed[i];
    }
    return ml_crc32(buf, sizeof buf);
}

/* Leaves seed (and the boot count, credit, fault) for the next boot. */
static void save_carry(const uint8_t seed[32])
{
    carry.magic = 0;
    carry.boots = boots + 1u;
    carry.credited = mode != ENTROPY_NONE ? 1u : 0u;
    carry.last_fault = last_fault;
    for (size_t i = 0; i < sizeof carry.seed; i++) {
        carry.seed[i] = seed[i];
    }
    carry.crc = carry_crc();
    carry.magic = CARRY_MAGIC;
}

/* pool = SHA-256(label || pool || data || SysTick); the SysTick value is
 * jitter we mix in but never count. */
static void pool_absorb(const char *label, const uint8_t *data, size_t len)
{
    mbedtls_sha256_context sha;
    uint32_t tick = SYST_CVR;
    mbedtls_sha256_init(&sha);
    (void)mbedtls_sha256_starts(&sha, 0);
    (void)mbedtls_sha256_update(&sha, (const unsigned char *)label, strlen(label));
    (void)mbedtls_sha256_update(&sha, pool, sizeof pool);
    (void)mbedtls_sha256_update(&sha, data, len);
    (void)mbedtls_sha256_update(&sha, (const unsigned char *)&tick, sizeof tick);
    (void)mbedtls_sha256_finish(&sha, pool);
    mbedtls_sha256_free(&sha);
}

static void pool_draw(uint8_t *out, size_t len)
{
    while (len > 0) {
        uint8_t block[32];
        uint32_t n = pool_draws++;
        mbedtls_sha256_context sha;
        mbedtls_sha256_init(&sha);
        (void)mbedtls_sha256_starts(&sha, 0);
        (void)mbedtls_sha256_update(&sha, (const unsigned char *)"out", 3);
        (void)mbedtls_sha256_update(&sha, pool, sizeof pool);
        (void)mbedtls_sha256_update(&sha, (const unsigned char *)&n, sizeof n);
        (void)mbedtls_sha256_finish(&sha, block);
        mbedtls_sha256_free(&sha);
        pool_absorb("next", (const uint8_t *)&n, sizeof n); /* forward secrecy */
        size_t k = len < sizeof block ? len : sizeof block;
        memcpy(out, block, k);
        memset(block, 0, sizeof block);
        out += k;
        len -= k;
    }
}

static void entropy_init(void)
{
    enum stm32_trng_state trng = stm32_trng_init(stm32_clocks()->rng_clock);

    /* The boot nonce: read once, then erased so nothing reuses it. */
    uint8_t nonce[32];
    bool all_zero = true, all_ones = true;
    for (size_t i = 0; i < sizeof nonce; i++) {
        nonce[i] = boot_nonce[i];
        boot_nonce[i] = 0;
        all_zero = all_zero && nonce[i] == 0x00u;
        all_ones = all_ones && nonce[i] == 0xFFu;
    }
    bool have_nonce = !all_zero && !all_ones;

    /* The warm-reset carry: used once if intact, then erased. */
    bool have_carry = carry.magic == CARRY_MAGIC && carry.crc == carry_crc();
    bool carry_credited = false;
    uint8_t carried[32] = {0};
    if (have_carry) {
        boots = carry.boots;
        last_fault = carry.last_fault;
        carry_credited = carry.credited == 1u;
        for (size_t i = 0; i < sizeof carried; i++) {
            carried[i] = carry.seed[i];
        }
    }
    carry.magic = 0;
    for (size_t i = 0; i < sizeof carry.seed; i++) {
        carry.seed[i] = 0;
    }

    pool_absorb("mbedlink stm32f4 nonce", nonce, sizeof nonce);
    pool_absorb("carry", carried, sizeof carried);
    pool_absorb("boots", (const uint8_t *)&boots, sizeof boots);
    memset(nonce, 0, sizeof nonce);
    memset(carried, 0, sizeof carried);

    board.name = trng == STM32_TRNG_ABSENT ? "stm32f405-qemu" : "stm32f405";
    if (trng == STM32_TRNG_OK) {
        mode = ENTROPY_TRNG;
        board.entropy = "STM32 TRNG (RNG peripheral, continuous test)";
    } else if (trng == STM32_TRNG_ABSENT && have_nonce) {
        mode = ENTROPY_HOST_NONCE;
        board.entropy = "host-seeded (QEMU loader nonce + hello seed), no TRNG";
    } else if (trng == STM32_TRNG_ABSENT && carry_credited) {
        mode = ENTROPY_HOST_NONCE;
        board.entropy = "host-seeded (QEMU loader nonce of an earlier boot, carried over a warm reset, + hello seed), "
                        "no TRNG";
    } else if (trng == STM32_TRNG_FAILED) {
        mode = ENTROPY_NONE;
        board.entropy = "NO ENTROPY: host seed only (STM32 TRNG failed its start-up checks)";
    } else {
        mode = ENTROPY_NONE;
        board.entropy = "NO ENTROPY: host seed only (no TRNG, no boot nonce)";
    }

    /* The next boot's carry, in case it starts without a new nonce. */
    uint8_t next[32];
    pool_draw(next, sizeof next);
    save_carry(next);
    memset(next, 0, sizeof next);
}

int ml_hal_entropy(uint8_t *out, size_t len, size_t *olen)
{
    *olen = 0;
    if (mode == ENTROPY_TRNG) {
        if (stm32_trng_read(out, len) != 0) {
            board.entropy = "NO ENTROPY: STM32 TRNG failed (seed/clock error or stuck output)";
            return -1;
        }
    } else {
        pool_draw(out, len);
    }
    *olen = len;
    return 0;
}

/* ---------------------------------------------------------------- board */

void stm32_hal_init(void)
{
    stm32_clock_init();
    const struct stm32_clocks *clk = stm32_clocks();
    systick_init(clk->sysclk_hz);
    stm32_uart_init(clk->pclk2_hz, BAUD);
    irq_enable();
    entropy_init();
}

const struct ml_board *ml_hal_board(void) { return &board; }

bool ml_hal_serial_write(const uint8_t *data, size_t len) { return stm32_uart_write(data, len); }

static __attribute__((noreturn)) void system_reset(void)
{
    dsb();
    SCB_AIRCR = SCB_AIRCR_VECTKEY | (SCB_AIRCR & SCB_AIRCR_PRIGROUP_MASK) | SCB_AIRCR_SYSRESETREQ;
    dsb();
    for (;;) {
    }
}

void ml_hal_reset(void)
{
    uint8_t seed[32];
    if (ml_rng_random(NULL, seed, sizeof seed) != 0) {
        pool_draw(seed, sizeof seed);
    }
    irq_disable();
    last_fault = 0;
    save_carry(seed); /* DRBG output: carries the hello seeds over too */
    system_reset();
}

void stm32_fatal(uint32_t code)
{
    irq_disable();
    uint8_t seed[32];
    pool_absorb("fault", (const uint8_t *)&code, sizeof code);
    memcpy(seed, pool, sizeof seed);
    last_fault = code;
    save_carry(seed);
    system_reset();
}

size_t ml_hal_stack_peak(void) { return stm32_stack_peak(); }

/* The record of answers in the upper RAM, right above the UART ring
 * (stm32f4.h): 16 KiB less of the 128 KiB SRAM, which the heap gets. */
uint8_t *ml_hal_record_ram(size_t size)
{
    if (size != STM32_RECORD_SIZE) {
        stm32_fatal(0xDEAD0002u); /* the record and stm32f4.h disagree */
    }
    return stm32_upper_ram() + STM32_RING_SIZE;
}
