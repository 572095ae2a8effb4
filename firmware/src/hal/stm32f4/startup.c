/*
 * Reset handler and vector table for the STM32F405/F407 (82 device IRQs).
 * Copies .data, zeroes .bss, moves the stack into the upper RAM (below),
 * paints it, then runs main().
 *
 * Upper RAM: 64 KiB that only the CPU touches, outside the 128 KiB of SRAM
 * the linker fills. On a chip it is the CCM RAM at 0x10000000 (no DMA
 * reaches it; none is used). QEMU's netduinoplus2 does not map CCM, but it
 * maps 192 KiB of SRAM from 0x20000000, so under QEMU (recognised by its
 * RCC stub, which reads 0; a chip's RCC_CR reads HSION|HSIRDY after reset)
 * the upper RAM is the 64 KiB at 0x20020000: same size, same image. It
 * holds the UART ring (uart.c) at its bottom, the record of answers
 * (ml_hal_record_ram, hal_stm32f4.c) above it and the stack at its top.
 */
#include <stdint.h>

#include "stm32f4.h"

#define STACK_PAINT 0x5AC3A55Cu
#define IRQ_COUNT   82u

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _reset_sp;
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
    [0] = (vector_t)(uintptr_t)&_reset_sp,
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

static uint8_t *upper_ram;   /* STM32_UPPER_RAM_SIZE bytes (above) */
static uint32_t *stack_low;  /* the stack region: the top STM32_STACK_SIZE */
static uint32_t *stack_high; /* bytes of the upper RAM */

uint8_t *stm32_upper_ram(void) { return upper_ram; }

/* Runs on the stack at its new place; never returns. */
static __attribute__((noreturn, used)) void reset_continue(void)
{
    /* Paint the stack below what this function uses (a few words). */
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = stack_low; p < sp - 16; p++) {
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

__attribute__((noreturn)) void Reset_Handler(void)
{
    /* Runs on the small reset stack below .noinit; only word copies, no
     * calls until .bss is zero. */
    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    upper_ram = (uint8_t *)(uintptr_t)(RCC_CR == 0u ? STM32_UPPER_RAM_QEMU : STM32_UPPER_RAM_CCM);
    stack_high = (uint32_t *)(void *)(upper_ram + STM32_UPPER_RAM_SIZE);
    stack_low = (uint32_t *)(void *)(upper_ram + STM32_UPPER_RAM_SIZE - STM32_STACK_SIZE);
    /* The stack pointer moves, then reset_continue runs on the new stack. */
    __asm volatile("msr msp, %0\n\tbx %1" ::"r"(stack_high), "r"(reset_continue) : "memory");
    __builtin_unreachable();
}

size_t stm32_stack_size(void) { return (size_t)((uintptr_t)stack_high - (uintptr_t)stack_low); }

size_t stm32_stack_peak(void)
{
    const uint32_t *p = stack_low;
    while (p < stack_high && *p == STACK_PAINT) {
        p++;
    }
    return (size_t)((uintptr_t)stack_high - (uintptr_t)p);
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
