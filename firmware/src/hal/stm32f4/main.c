/*
 * mbedlink on the STM32F405/F407: clocks, SysTick, USART1, entropy; then
 * the core. The main loop drains the UART ring into the core and sleeps
 * (WFI) when there is nothing to do.
 */
#include "app/ml_core.h"
#include "stm32f4.h"

int main(void);
int main(void)
{
    stm32_hal_init();
    /* On failure the DRBG is unseeded: the boot event carries a zero boot
     * id and random-consuming ops fail; the link still serves hello/stats. */
    (void)ml_core_init();

    uint8_t buf[128];
    for (;;) {
        size_t n = stm32_uart_read(buf, sizeof buf);
        if (n > 0) {
            ml_core_rx(buf, n);
            continue;
        }
        /* Sleep with interrupts masked so a byte arriving between the check
         * and the WFI still wakes us (a pending IRQ ends WFI). */
        irq_disable();
        if (!stm32_uart_rx_pending()) {
            wfi();
        }
        irq_enable();
    }
}
