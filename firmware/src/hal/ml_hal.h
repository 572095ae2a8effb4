/*
 * The hardware abstraction every target implements (firmware/src/hal/<t>/).
 * The core calls only these functions; they are never called from an
 * interrupt context by the core.
 */
#ifndef ML_HAL_H
#define ML_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ml_board {
    const char *name;    /* reported by hello, e.g. "native-linux" */
    const char *entropy; /* honest description of the entropy source */
    uint32_t mtu;        /* <= ML_CFG_MTU (the core clamps it) */
    uint32_t window;
};

/* The board description; must stay valid for the program's lifetime. */
const struct ml_board *ml_hal_board(void);

/* Writes bytes to the serial line. Returns false when the line stayed
 * blocked too long: the caller abandons the rest of the frame. */
bool ml_hal_serial_write(const uint8_t *data, size_t len);

/* Fills out[0..len) with entropy; *olen is how many bytes were written.
 * Returns 0, or non-zero when the source failed. */
int ml_hal_entropy(uint8_t *out, size_t len, size_t *olen);

/* Milliseconds since an arbitrary start (monotonic). */
uint64_t ml_hal_millis(void);

/* Resets the whole device (does not return on hardware). */
void ml_hal_reset(void);

/* Most bytes of stack ever used (stats' stack_peak), or 0 where the target
 * cannot measure it. Optional: op_sys.c has a weak default returning 0. */
size_t ml_hal_stack_peak(void);

/* Storage for the record of answers (link/ml_record.c): `size` bytes
 * (ML_CFG_WINDOW x ML_CFG_MTU), the same at every call, used by the link
 * only, wiped by it at boot. Optional: ml_record.c has a weak default, a
 * static array; the STM32 image gives its upper RAM (hal_stm32f4.c) so the
 * SRAM goes to the heap. */
uint8_t *ml_hal_record_ram(size_t size);

#endif /* ML_HAL_H */
