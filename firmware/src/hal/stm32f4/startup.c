/*
 * Reset handler and vector table for the STM32F405/F407 (82 device IRQs).
 * Copies .data, zeroes .bss, paints the unused stack, then runs main().
 */
#include <stdint.h>

#include "stm32f4.h"

#define STACK_PAINT 0x5AC3A55Cu
#define IRQ_COUNT   82u

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack;
extern int main(void);
extern void __libc_init_array(void);

void Reset_Handler(void);
void Fault_Handler(void);
void Unused_Handler(void);
void SysTick_Handler(void);
void USART1_IRQHandler(void);
/* newlib's __libc_init_array calls these; weak, in case a build links
 * crti/crtn after all (PlatformIO without -nostartfiles). */
void _init(void);
void _fini(void);

typedef void (*vector_t)(void);

/* Every slot gets a handler (a range initialiser, then the real ones over
 * it), so a stray interrupt resets instead of jumping to address 0. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
__attribute__((section(".isr_vector"), used)) static const vector_t vectors[16 + IRQ_COUNT] = {
    [2 ... 16 + IRQ_COUNT - 1] = Unused_Handler,
    [0] = (vector_t)(uintptr_t)&_estack,
    [1] = Reset_Handler,
    [2] = Fault_Handler, /* NMI */
    [3] = Fault_Handler, /* HardFault */
    [4] = Fault_Handler, /* MemManage */
    [5] = Fault_Handler, /* BusFault */
    [6] = Fault_Handler, /* UsageFault */
    [15] = SysTick_Handler,
    [16 + USART1_IRQN] = USART1_IRQHandler,
};
#pragma GCC diagnostic pop

__attribute__((noreturn)) void Reset_Handler(void)
{
    /* Runs on the reset stack (top of .stack); only word copies, no calls
     * until .bss is zero. */
    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    /* Paint the stack below what this function uses (a few words). */
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = &_sstack; p < sp - 16; p++) {
        *p = STACK_PAINT;
    }
#if defined(__ARM_FP)
    /* Built for an FPU ABI (softfp/hard): give CP10/CP11 full access. */
    REG32(0xE000ED88u) |= 0xFu << 20;
#endif
    SCB_VTOR = (uint32_t)(uintptr_t)vectors;
    dsb();
    isb();
    __libc_init_array();
    (void)main();
    stm32_fatal(0xDEAD0001u); /* main never returns */
}

size_t stm32_stack_size(void) { return (size_t)((uintptr_t)&_estack - (uintptr_t)&_sstack); }

size_t stm32_stack_peak(void)
{
    const uint32_t *p = &_sstack;
    while (p < &_estack && *p == STACK_PAINT) {
        p++;
    }
    return (size_t)((uintptr_t)&_estack - (uintptr_t)p);
}

/* Faults and unexpected exceptions: reset (a hung co-processor helps no
 * one; the host sees a new boot id). */
void Fault_Handler(void)
{
    uint32_t vect = SCB_ICSR & 0x1FFu;
    stm32_fatal(0xFA000000u | vect);
}

void Unused_Handler(void)
{
    uint32_t vect = SCB_ICSR & 0x1FFu;
    stm32_fatal(0xEE000000u | vect);
}

__attribute__((weak)) void _init(void) {}
__attribute__((weak)) void _fini(void) {}
