/*
 * The STM32F4 true random number generator (RNG @0x50060800, RM0090 §24).
 *
 * Start-up: clock it (AHB2), set RNGEN, and check the peripheral is really
 * there: on silicon CR reads back RNGEN; QEMU's unimplemented stub ignores
 * writes and reads 0, and is reported as ABSENT, never used.
 * Every word: bounded wait for DRDY, seed (SECS) and clock (CECS) error
 * flags, and a continuous test as in FIPS 140-2 §4.9.2: a word equal to the
 * previous one, or 0, is a failure. The first word after enabling is only
 * kept for that comparison (RM0090: it must not be used). Any failure is
 * final: the state becomes FAILED and every later read fails, so Mbed TLS's
 * CTR_DRBG reports an entropy failure instead of running on a broken source.
 */
#include <string.h>

#include "stm32f4.h"

/* DRDY comes every 40 RNG clocks (< 1 us at 48 MHz). 100000 spins are
 * >= 2 ms at 168 MHz: far beyond a healthy generator. */
#define DRDY_SPINS     100000u
#define SELFTEST_WORDS 8u

static enum stm32_trng_state state = STM32_TRNG_ABSENT;
static uint32_t last_word;

static int next_word(uint32_t *out)
{
    for (uint32_t i = 0; i < DRDY_SPINS; i++) {
        uint32_t sr = RNG_SR;
        if (sr & (RNG_SR_SECS | RNG_SR_CECS | RNG_SR_SEIS | RNG_SR_CEIS)) {
            return -1;
        }
        if (sr & RNG_SR_DRDY) {
            uint32_t w = RNG_DR;
            if (w == 0u || w == last_word) {
                return -1;
            }
            last_word = w;
            *out = w;
            return 0;
        }
    }
    return -1;
}

static enum stm32_trng_state fail(void)
{
    RNG_CR = 0;
    state = STM32_TRNG_FAILED;
    return state;
}

enum stm32_trng_state stm32_trng_init(bool clock_ok)
{
    RCC_AHB2ENR |= RCC_AHB2ENR_RNG;
    (void)RCC_AHB2ENR;
    RNG_CR = RNG_CR_RNGEN;
    if ((RNG_CR & RNG_CR_RNGEN) == 0u) {
        /* Nothing latched the write: no RNG behind this address. */
        state = STM32_TRNG_ABSENT;
        return state;
    }
    if (!clock_ok) {
        return fail(); /* no PLL48CK: the generator cannot run */
    }
    last_word = 0;
    uint32_t w = 0;
    /* The first word seeds the comparison; 0 is allowed there only. */
    for (uint32_t i = 0; i < DRDY_SPINS && (RNG_SR & RNG_SR_DRDY) == 0u; i++) {
    }
    if ((RNG_SR & (RNG_SR_DRDY | RNG_SR_SECS | RNG_SR_CECS)) != RNG_SR_DRDY) {
        return fail();
    }
    last_word = RNG_DR;
    for (uint32_t i = 0; i < SELFTEST_WORDS; i++) {
        if (next_word(&w) != 0) {
            return fail();
        }
    }
    state = STM32_TRNG_OK;
    return state;
}

enum stm32_trng_state stm32_trng_state(void) { return state; }

int stm32_trng_read(uint8_t *out, size_t len)
{
    if (state != STM32_TRNG_OK) {
        return -1;
    }
    while (len > 0) {
        uint32_t w;
        if (next_word(&w) != 0) {
            (void)fail();
            return -1;
        }
        size_t n = len < sizeof w ? len : sizeof w;
        memcpy(out, &w, n);
        out += n;
        len -= n;
    }
    return 0;
}
