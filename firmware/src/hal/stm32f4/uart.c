/*
 * USART1, 8N1: PA9 (TX) / PA10 (RX), AF7 — or PB6/PB7 with
 * ML_STM32_USART1_PB6_PB7 (STM32F4-Discovery, whose PA9 carries USB VBUS).
 * RX is interrupt driven (RXNEIE, IRQ 37) into a ring; TX is polled.
 *
 * Ring size: the host keeps at most WINDOW requests in flight. While the
 * main loop runs one slow request (RSA keygen takes seconds on this chip),
 * the other WINDOW - 1 requests keep arriving, at most MTU bytes each before
 * SLIP escaping; and while a long response is transmitted (polled, ~0.36 s
 * for 4 KiB at 115200 baud) the line keeps receiving too. WINDOW x MTU holds
 * WINDOW - 1 full requests plus 33 % escaping overhead (random data escapes
 * ~0.8 % of bytes; only pathological 0xC0/0xDB-heavy payloads double).
 * A byte that finds the ring full is dropped and counted (ring_overruns);
 * the frame then fails its CRC and the host's request times out.
 * QEMU never overruns: it holds the next byte until DR has been read.
 * The ring lives in the upper RAM (startup.c), out of the 128 KiB SRAM.
 */
#include "core/ml_config.h"
#include "stm32f4.h"

#define RING_SIZE STM32_RING_SIZE
/* Per byte at 115200 baud: 87 us; a TXE that stays clear for 10 ms means a
 * stopped USART (no clock), not a busy line. Counted in SysTick-free spins:
 * >= 4 cycles each at <= 168 MHz. */
#define TXE_SPINS (168000000u / 4u / 100u)

/* At the bottom of the upper RAM (stm32f4.h). */
static uint8_t *ring;
static volatile uint32_t ring_head; /* written by the IRQ only */
static volatile uint32_t ring_tail; /* written by the main loop only */
static struct stm32_uart_stats stats;

static void pins_init(void)
{
#ifdef ML_STM32_USART1_PB6_PB7
    const uint32_t port = GPIOB_BASE;
    const uint32_t tx = 6u, rx = 7u;
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOB;
#else
    const uint32_t port = GPIOA_BASE;
    const uint32_t tx = 9u, rx = 10u;
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOA;
#endif
    (void)RCC_AHB1ENR;      /* let the clock enable take effect */
    const uint32_t af = 7u; /* USART1 */
    GPIO_MODER(port) =
        (GPIO_MODER(port) & ~((3u << (2u * tx)) | (3u << (2u * rx)))) | (2u << (2u * tx)) | (2u << (2u * rx));
    GPIO_OSPEEDR(port) |= (2u << (2u * tx));                                        /* fast */
    GPIO_PUPDR(port) = (GPIO_PUPDR(port) & ~(3u << (2u * rx))) | (1u << (2u * rx)); /* RX pull-up */
    volatile uint32_t *afr_tx = tx < 8u ? &GPIO_AFRL(port) : &GPIO_AFRH(port);
    volatile uint32_t *afr_rx = rx < 8u ? &GPIO_AFRL(port) : &GPIO_AFRH(port);
    *afr_tx = (*afr_tx & ~(0xFu << (4u * (tx % 8u)))) | (af << (4u * (tx % 8u)));
    *afr_rx = (*afr_rx & ~(0xFu << (4u * (rx % 8u)))) | (af << (4u * (rx % 8u)));
}

void stm32_uart_init(uint32_t pclk_hz, uint32_t baud)
{
    pins_init();
    RCC_APB2ENR |= RCC_APB2ENR_USART1;
    (void)RCC_APB2ENR;
    USART_CR1(USART1_BASE) = 0;
    /* Oversampling by 16: BRR = USARTDIV in 12.4 fixed point = pclk / baud. */
    USART_BRR(USART1_BASE) = (pclk_hz + baud / 2u) / baud;
    USART_CR2(USART1_BASE) = 0; /* 1 stop bit */
    USART_CR3(USART1_BASE) = 0; /* no flow control */
    ring = stm32_upper_ram();
    ring_head = 0;
    ring_tail = 0;
    USART_CR1(USART1_BASE) = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    NVIC_IPR_BYTE(USART1_IRQN) = 0x40; /* above SysTick (0x80) */
    NVIC_ISER(USART1_IRQN / 32u) = 1u << (USART1_IRQN % 32u);
}

void USART1_IRQHandler(void);
void USART1_IRQHandler(void)
{
    uint32_t sr = USART_SR(USART1_BASE);
    if ((sr & (USART_SR_RXNE | USART_SR_ORE)) == 0u) {
        return;
    }
    /* Reading DR after SR also clears ORE (and NF/FE/PE). */
    uint8_t byte = (uint8_t)USART_DR(USART1_BASE);
    if (sr & USART_SR_ORE) {
        stats.hw_overruns++;
    }
    stats.rx_bytes++;
    uint32_t head = ring_head;
    uint32_t next = head + 1u == RING_SIZE ? 0u : head + 1u;
    if (next == ring_tail) {
        stats.ring_overruns++;
        return;
    }
    ring[head] = byte;
    __asm volatile("" ::: "memory"); /* the byte is stored before it is published */
    ring_head = next;
}

bool stm32_uart_rx_pending(void) { return ring_head != ring_tail; }

size_t stm32_uart_read(uint8_t *out, size_t cap)
{
    size_t n = 0;
    uint32_t tail = ring_tail;
    const uint32_t head = ring_head;
    while (n < cap && tail != head) {
        out[n++] = ring[tail];
        tail = tail + 1u == RING_SIZE ? 0u : tail + 1u;
    }
    __asm volatile("" ::: "memory"); /* the bytes are read before the slots are released */
    ring_tail = tail;
    return n;
}

bool stm32_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint32_t spins = 0;
        while ((USART_SR(USART1_BASE) & USART_SR_TXE) == 0u) {
            if (++spins >= TXE_SPINS) {
                return false;
            }
        }
        USART_DR(USART1_BASE) = data[i];
    }
    return true;
}

const struct stm32_uart_stats *stm32_uart_stats(void) { return &stats; }
