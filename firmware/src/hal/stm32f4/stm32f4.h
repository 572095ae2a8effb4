/*
 * STM32F405/F407 board support for mbedlink: the few registers it touches
 * (RM0090), and the interfaces between the files of this HAL.
 */
#ifndef ML_STM32F4_H
#define ML_STM32F4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ml_config.h"

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---------------------------------------------------------------- RCC */
#define RCC_BASE           0x40023800u
#define RCC_CR             REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR        REG32(RCC_BASE + 0x04u)
#define RCC_CFGR           REG32(RCC_BASE + 0x08u)
#define RCC_AHB1ENR        REG32(RCC_BASE + 0x30u)
#define RCC_AHB2ENR        REG32(RCC_BASE + 0x34u)
#define RCC_APB1ENR        REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR        REG32(RCC_BASE + 0x44u)
#define RCC_CR_HSION       (1u << 0)
#define RCC_CR_HSIRDY      (1u << 1)
#define RCC_CR_HSEON       (1u << 16)
#define RCC_CR_HSERDY      (1u << 17)
#define RCC_CR_PLLON       (1u << 24)
#define RCC_CR_PLLRDY      (1u << 25)
#define RCC_CFGR_SW_MASK   (3u << 0)
#define RCC_CFGR_SW_HSI    (0u << 0)
#define RCC_CFGR_SW_PLL    (2u << 0)
#define RCC_CFGR_SWS_MASK  (3u << 2)
#define RCC_CFGR_SWS_PLL   (2u << 2)
#define RCC_AHB1ENR_GPIOA  (1u << 0)
#define RCC_AHB1ENR_GPIOB  (1u << 1)
#define RCC_AHB2ENR_RNG    (1u << 6)
#define RCC_APB1ENR_PWR    (1u << 28)
#define RCC_APB2ENR_USART1 (1u << 4)

/* ---------------------------------------------------------------- PWR, FLASH */
#define PWR_CR              REG32(0x40007000u)
#define PWR_CR_VOS          (1u << 14)
#define FLASH_ACR           REG32(0x40023C00u)
#define FLASH_ACR_LATENCY_5 (5u << 0)
#define FLASH_ACR_PRFTEN    (1u << 8)
#define FLASH_ACR_ICEN      (1u << 9)
#define FLASH_ACR_DCEN      (1u << 10)
#define FLASH_ACR_ICRST     (1u << 11)
#define FLASH_ACR_DCRST     (1u << 12)

/* ---------------------------------------------------------------- GPIO */
#define GPIOA_BASE      0x40020000u
#define GPIOB_BASE      0x40020400u
#define GPIO_MODER(b)   REG32((b) + 0x00u)
#define GPIO_OSPEEDR(b) REG32((b) + 0x08u)
#define GPIO_PUPDR(b)   REG32((b) + 0x0Cu)
#define GPIO_AFRL(b)    REG32((b) + 0x20u)
#define GPIO_AFRH(b)    REG32((b) + 0x24u)

/* ---------------------------------------------------------------- USART1 */
#define USART1_BASE      0x40011000u
#define USART_SR(b)      REG32((b) + 0x00u)
#define USART_DR(b)      REG32((b) + 0x04u)
#define USART_BRR(b)     REG32((b) + 0x08u)
#define USART_CR1(b)     REG32((b) + 0x0Cu)
#define USART_CR2(b)     REG32((b) + 0x10u)
#define USART_CR3(b)     REG32((b) + 0x14u)
#define USART_SR_ORE     (1u << 3)
#define USART_SR_RXNE    (1u << 5)
#define USART_SR_TXE     (1u << 7)
#define USART_CR1_RE     (1u << 2)
#define USART_CR1_TE     (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE     (1u << 13)
#define USART1_IRQN      37u

/* ---------------------------------------------------------------- RNG */
#define RNG_BASE     0x50060800u
#define RNG_CR       REG32(RNG_BASE + 0x00u)
#define RNG_SR       REG32(RNG_BASE + 0x04u)
#define RNG_DR       REG32(RNG_BASE + 0x08u)
#define RNG_CR_RNGEN (1u << 2)
#define RNG_SR_DRDY  (1u << 0)
#define RNG_SR_CECS  (1u << 1)
#define RNG_SR_SECS  (1u << 2)
#define RNG_SR_CEIS  (1u << 5)
#define RNG_SR_SEIS  (1u << 6)

/* ---------------------------------------------------------------- Cortex-M4 core */
#define SYST_CSR                REG32(0xE000E010u)
#define SYST_RVR                REG32(0xE000E014u)
#define SYST_CVR                REG32(0xE000E018u)
#define SYST_CSR_ENABLE         (1u << 0)
#define SYST_CSR_TICKINT        (1u << 1)
#define SYST_CSR_CLKSRC         (1u << 2)
#define NVIC_ISER(n)            REG32(0xE000E100u + 4u * (n))
#define NVIC_IPR_BYTE(n)        (*(volatile uint8_t *)(uintptr_t)(0xE000E400u + (n)))
#define SCB_ICSR                REG32(0xE000ED04u)
#define SCB_VTOR                REG32(0xE000ED08u)
#define SCB_AIRCR               REG32(0xE000ED0Cu)
#define SCB_SHPR3               REG32(0xE000ED20u)
#define SCB_AIRCR_VECTKEY       (0x05FAu << 16)
#define SCB_AIRCR_PRIGROUP_MASK (7u << 8)
#define SCB_AIRCR_SYSRESETREQ   (1u << 2)

static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline uint32_t irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}
static inline void irq_restore(uint32_t primask) { __asm volatile("msr primask, %0" ::"r"(primask) : "memory"); }
static inline void dsb(void) { __asm volatile("dsb 0xF" ::: "memory"); }
static inline void isb(void) { __asm volatile("isb 0xF" ::: "memory"); }
static inline void wfi(void) { __asm volatile("wfi" ::: "memory"); }

/* ---------------------------------------------------------------- clock.c */
enum stm32_clock_source {
    STM32_CLOCK_PLL_HSE,  /* HSE -> PLL, SYSCLK 168 MHz: a real, healthy board */
    STM32_CLOCK_PLL_HSI,  /* no HSE: HSI -> PLL, SYSCLK 168 MHz */
    STM32_CLOCK_HSI,      /* the PLL did not come up either: HSI 16 MHz */
    STM32_CLOCK_EMULATED, /* RCC does not respond at all (QEMU's stub): the
                             emulator's fixed 168 MHz SYSCLK clocks SysTick */
};
struct stm32_clocks {
    enum stm32_clock_source source;
    uint32_t sysclk_hz; /* clocks the core and SysTick */
    uint32_t pclk2_hz;  /* clocks USART1 */
    bool rng_clock;     /* PLL48CK runs (the TRNG needs it) */
    const char *name;
};
/* Brings the clocks up as on a real chip; every wait is bounded. */
void stm32_clock_init(void);
const struct stm32_clocks *stm32_clocks(void);

/* ---------------------------------------------------------------- uart.c */
struct stm32_uart_stats {
    uint32_t rx_bytes;
    uint32_t ring_overruns; /* bytes lost: the ring was full */
    uint32_t hw_overruns;   /* bytes lost in the USART (ORE): IRQ latency */
};
void stm32_uart_init(uint32_t pclk_hz, uint32_t baud);
/* Moves up to `cap` received bytes out of the RX ring; returns the count. */
size_t stm32_uart_read(uint8_t *out, size_t cap);
bool stm32_uart_rx_pending(void);
/* Polled transmit with a per-byte bound; false when the line stalled. */
bool stm32_uart_write(const uint8_t *data, size_t len);
const struct stm32_uart_stats *stm32_uart_stats(void);

/* ---------------------------------------------------------------- trng.c */
enum stm32_trng_state {
    STM32_TRNG_OK,     /* working; passed the start-up checks */
    STM32_TRNG_ABSENT, /* no peripheral behind 0x50060800 (QEMU's stub) */
    STM32_TRNG_FAILED, /* present but faulty: no clock, seed/clock error, stuck */
};
/* Enables the RNG and runs the start-up checks. */
enum stm32_trng_state stm32_trng_init(bool clock_ok);
enum stm32_trng_state stm32_trng_state(void);
/* Fills out with checked TRNG words; 0, or -1 (and the state becomes FAILED). */
int stm32_trng_read(uint8_t *out, size_t len);

/* ---------------------------------------------------------------- startup.c */
/* The upper RAM (startup.c): CCM on a chip, the SRAM QEMU maps beyond the
 * chip's 128 KiB under QEMU. From its bottom: the UART ring (uart.c,
 * WINDOW x MTU), the record of answers (link/ml_record.c, WINDOW x MTU,
 * given by ml_hal_record_ram in hal_stm32f4.c); the stack at its top. */
#define STM32_UPPER_RAM_CCM  0x10000000u
#define STM32_UPPER_RAM_QEMU 0x20020000u
#define STM32_UPPER_RAM_SIZE 0x10000u
#define STM32_STACK_SIZE     12288u
#define STM32_RING_SIZE      ((uint32_t)ML_CFG_WINDOW * (uint32_t)ML_CFG_MTU)
#define STM32_RECORD_SIZE    ((uint32_t)ML_CFG_WINDOW * (uint32_t)ML_CFG_MTU)
_Static_assert(STM32_RING_SIZE + STM32_RECORD_SIZE + STM32_STACK_SIZE <= STM32_UPPER_RAM_SIZE,
               "the UART ring, the record of answers and the stack share the upper RAM");
uint8_t *stm32_upper_ram(void);

/* ---------------------------------------------------------------- hal_stm32f4.c */
/* SysTick at 1 kHz from the running clock; the entropy source; the board. */
void stm32_hal_init(void);
/* Bytes of the main stack ever used (from the painted stack region). */
size_t stm32_stack_peak(void);
size_t stm32_stack_size(void);
/* Called by fault handlers: records the fault and resets. */
void stm32_fatal(uint32_t code) __attribute__((noreturn));

#endif /* ML_STM32F4_H */
