/*
 * Clock tree as on a real STM32F405/F407: HSE -> PLL -> SYSCLK 168 MHz,
 * AHB 168, APB1 42, APB2 84 MHz, PLL48CK 48 MHz (the TRNG's clock), flash
 * 5 wait states with prefetch and caches.
 *
 * Without a working HSE the PLL runs from HSI (the TRNG needs its 48 MHz);
 * without a PLL, SYSCLK stays on HSI 16 MHz (and the TRNG reports failure).
 * Every ready-flag wait is bounded. QEMU's RCC is an unimplemented stub
 * (writes ignored, reads 0: HSERDY never sets), so there the whole sequence
 * times out (~5 x 200000 spins, a few ms) and falls back to HSI; since a
 * real RCC always reads HSIRDY=1 while running from HSI, an RCC_CR of 0
 * identifies the emulator, whose SYSCLK is a fixed 168 MHz (netduinoplus2)
 * whatever the RCC says: SysTick is programmed for that.
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

/* SYSCLK back to HSI (prescalers /1: PCLK2 = 16 MHz), PLL off. */
static void sysclk_to_hsi(void)
{
    RCC_CR |= RCC_CR_HSION;
    (void)wait_set(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
    RCC_CFGR = RCC_CFGR_SW_HSI;
    (void)wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, 0u);
    RCC_CR &= ~RCC_CR_PLLON;
    (void)wait_set(&RCC_CR, RCC_CR_PLLRDY, 0u);
}

/* PLL from HSE (or HSI) to 168/48 MHz, then SYSCLK from it. On any timeout
 * SYSCLK is back on HSI and the reason is returned; NULL on success. */
static const char *run_from_pll(bool from_hse)
{
    const uint32_t m = from_hse ? PLL_M : HSI_HZ / 1000000u;
    RCC_PLLCFGR = m | (PLL_N << 6) | (((PLL_P / 2u) - 1u) << 16) | (from_hse ? PLLCFGR_SRC_HSE : 0u) | (PLL_Q << 24);
    RCC_CR |= RCC_CR_PLLON;
    if (!wait_set(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        sysclk_to_hsi();
        return "PLL did not lock";
    }
    /* Flash: reset the caches, then 5 wait states (168 MHz at 2.7-3.6 V),
     * prefetch and caches on, before raising the clock. */
    FLASH_ACR = FLASH_ACR_ICRST | FLASH_ACR_DCRST;
    FLASH_ACR = FLASH_ACR_LATENCY_5 | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    if ((FLASH_ACR & 0xFu) != 5u) {
        sysclk_to_hsi();
        return "flash latency not accepted";
    }
    RCC_CFGR = CFGR_HPRE_DIV1 | CFGR_PPRE1_DIV4 | CFGR_PPRE2_DIV2 | RCC_CFGR_SW_PLL;
    if (!wait_set(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        sysclk_to_hsi();
        return "switch to PLL failed";
    }
    return NULL;
}

static struct stm32_clocks pll_clocks(enum stm32_clock_source source, const char *name)
{
    return (struct stm32_clocks){
        .source = source,
        .sysclk_hz = 168000000u,
        .pclk2_hz = 84000000u,
        .rng_clock = true,
        .name = name,
    };
}

void stm32_clock_init(void)
{
    /* A real RCC reads HSION | HSIRDY (at least) while running from HSI. */
    const bool rcc_responds = RCC_CR != 0u;

    /* Voltage scale 1 (needed above 144 MHz); PWR needs its clock first. */
    RCC_APB1ENR |= RCC_APB1ENR_PWR;
    (void)RCC_APB1ENR;
    PWR_CR |= PWR_CR_VOS;

    RCC_CR |= RCC_CR_HSEON;
    if (wait_set(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) {
        if (run_from_pll(true) == NULL) {
            clocks = pll_clocks(STM32_CLOCK_PLL_HSE, "HSE + PLL 168 MHz");
            return;
        }
    }
    /* No crystal (or it failed): the PLL from HSI still gives 168 MHz and,
     * more importantly, the TRNG's 48 MHz; the UART runs on HSI's +-1 %. */
    RCC_CR &= ~RCC_CR_HSEON;
    if (run_from_pll(false) == NULL) {
        clocks = pll_clocks(STM32_CLOCK_PLL_HSI, "HSI + PLL 168 MHz (HSE did not start)");
        return;
    }
    sysclk_to_hsi();
    if (rcc_responds) {
        clocks.name = "HSI 16 MHz (HSE and PLL failed)";
        return;
    }
    /* Every wait timed out against an RCC that reads 0: QEMU's stub. The
     * core really runs at the machine's fixed SYSCLK. */
    clocks = (struct stm32_clocks){
        .source = STM32_CLOCK_EMULATED,
        .sysclk_hz = EMULATED_HZ,
        .pclk2_hz = EMULATED_HZ / 2u,
        .rng_clock = false,
        .name = "emulated 168 MHz (RCC stub: HSE/PLL timed out)",
    };
}

const struct stm32_clocks *stm32_clocks(void) { return &clocks; }
