/*
 * Clock tree as on a real STM32F405/F407: HSE -> PLL -> SYSCLK 168 MHz,
 * AHB 168, APB1 42, APB2 84 MHz, PLL48CK 48 MHz (the TRNG's clock), flash
 * 5 wait states with prefetch and caches.
 *
 * Every ready-flag wait is bounded. QEMU's RCC is an unimplemented stub
 * (writes ignored, reads 0: HSERDY never sets), so there the sequence times
 * out and falls back to HSI; since a real RCC always reads HSIRDY=1 while
 * running from HSI, an RCC_CR of 0 identifies the emulator, whose SYSCLK is
 * a fixed 168 MHz (netduinoplus2) whatever the RCC says.
 */
#include "stm32f4.h"

#ifndef ML_STM32_HSE_HZ
#define ML_STM32_HSE_HZ 8000000u /* STM32F4-Discovery; Netduino Plus 2: 25 MHz */
#endif
#if ML_STM32_HSE_HZ % 1000000u != 0 || ML_STM32_HSE_HZ < 4000000u || ML_STM32_HSE_HZ > 26000000u
#error "ML_STM32_HSE_HZ must be a whole number of MHz in 4..26 MHz"
#endif

#define HSI_HZ      16000000u
#define EMULATED_HZ 168000000u /* QEMU netduinoplus2 SYSCLK */
/* HSE start-up is specified at 2 ms typ; PLL lock at 100 us. At 16 MHz one
 * iteration takes at least 4 cycles: 200000 iterations >= 50 ms. */
#define READY_SPINS 200000u

/* PLL: VCO in = HSE / M = 1 MHz, VCO = 336 MHz, SYSCLK = VCO / 2, 48 MHz = VCO / 7. */
#define PLL_M (ML_STM32_HSE_HZ / 1000000u)
#define PLL_N 336u
#define PLL_P 2u
#define PLL_Q 7u

#define CFGR_HPRE_DIV1  (0u << 4)
#define CFGR_PPRE1_DIV4 (5u << 10)
#define CFGR_PPRE2_DIV2 (4u << 13)
#define PLLCFGR_SRC_HSE (1u << 22)

static struct stm32_clocks clocks = {
    .source = STM32_CLOCK_HSI,
    .sysclk_hz = HSI_HZ,
    .pclk2_hz = HSI_HZ,
    .rng_clock = false,
    .name = "HSI 16 MHz",
};

static bool wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t want)
{
    for (uint32_t i = 0; i < READY_SPINS; i++) {
        if ((*reg & mask) == want) {
            return true;
        }
    }
    return false;
}

/* Back to HSI with everything else off (the reset state). */
static void fall_back_to_hsi(void)
{
    RCC_CR |= RCC_CR_HSION;
    (void)wait_set(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
    RCC_CFGR = RCC_CFGR_SW_HSI; /* prescalers /1: PCLK2 = 16 MHz */
    (void)wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, 0u);
    RCC_CR &= ~(RCC_CR_PLLON | RCC_CR_HSEON);
}

void stm32_clock_init(void)
{
    if (RCC_CR == 0u) {
        /* No RCC behind the registers: an emulator (QEMU). Still write the
         * reset-safe settings a real part would want. */
        FLASH_ACR = FLASH_ACR_LATENCY_5 | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
        clocks = (struct stm32_clocks){
            .source = STM32_CLOCK_EMULATED,
            .sysclk_hz = EMULATED_HZ,
            .pclk2_hz = EMULATED_HZ / 2u,
            .rng_clock = false,
            .name = "emulated 168 MHz (RCC does not respond)",
        };
        return;
    }

    /* Voltage scale 1 (needed above 144 MHz); PWR needs its clock first. */
    RCC_APB1ENR |= RCC_APB1ENR_PWR;
    (void)RCC_APB1ENR;
    PWR_CR |= PWR_CR_VOS;

    RCC_CR |= RCC_CR_HSEON;
    if (!wait_set(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) {
        fall_back_to_hsi();
        clocks.name = "HSI 16 MHz (HSE did not start)";
        return;
    }
    RCC_PLLCFGR = PLL_M | (PLL_N << 6) | (((PLL_P / 2u) - 1u) << 16) | PLLCFGR_SRC_HSE | (PLL_Q << 24);
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_set(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        fall_back_to_hsi();
        clocks.name = "HSI 16 MHz (PLL did not lock)";
        return;
    }
    /* Flash: reset the caches, then 5 wait states (168 MHz at 2.7-3.6 V),
     * prefetch and caches on, before raising the clock. */
    FLASH_ACR = FLASH_ACR_ICRST | FLASH_ACR_DCRST;
    FLASH_ACR = FLASH_ACR_LATENCY_5 | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    if ((FLASH_ACR & 0xFu) != 5u) {
        fall_back_to_hsi();
        clocks.name = "HSI 16 MHz (flash latency not accepted)";
        return;
    }
    RCC_CFGR = CFGR_HPRE_DIV1 | CFGR_PPRE1_DIV4 | CFGR_PPRE2_DIV2 | RCC_CFGR_SW_PLL;
    if (!wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        fall_back_to_hsi();
        clocks.name = "HSI 16 MHz (switch to PLL failed)";
        return;
    }
    clocks = (struct stm32_clocks){
        .source = STM32_CLOCK_PLL_HSE,
        .sysclk_hz = 168000000u,
        .pclk2_hz = 84000000u,
        .rng_clock = true,
        .name = "HSE + PLL 168 MHz",
    };
}

const struct stm32_clocks *stm32_clocks(void) { return &clocks; }
