/*
 * The fuzz build's Mbed TLS heap: replaces src/core/ml_heap.c (same functions,
 * so the linker never pulls ml_heap.c.o out of the core library). Every
 * object is its own libc block, which AddressSanitizer fences, and the total
 * is capped at ML_CFG_HEAP_SIZE so out_of_memory paths stay reachable.
 */
#include <malloc.h>
#include <mbedtls/platform.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_hal.h"
#include "core/ml_config.h"
#include "core/ml_heap.h"

static size_t used;
static size_t peak;
static size_t blocks;

static void *fuzz_calloc(size_t n, size_t size)
{
    if (n != 0 && size > SIZE_MAX / n) {
        return NULL;
    }
    size_t bytes = n * size;
    if (bytes == 0 || used > ML_CFG_HEAP_SIZE || bytes > ML_CFG_HEAP_SIZE - used) {
        return NULL; /* like buffer_alloc: zero-size and over-budget requests fail */
    }
    void *p = calloc(n, size);
    if (p != NULL) {
        used += malloc_usable_size(p);
        blocks++;
        peak = used > peak ? used : peak;
    }
    return p;
}

static void fuzz_free(void *p)
{
    if (p != NULL) {
        used -= malloc_usable_size(p);
        blocks--;
        free(p);
    }
}

void ml_heap_init(void)
{
    used = peak = blocks = 0;
    (void)mbedtls_platform_set_calloc_free(fuzz_calloc, fuzz_free);
}

void ml_heap_deinit(void) {}

void ml_heap_get_stats(struct ml_heap_stats *s)
{
    s->size = ML_CFG_HEAP_SIZE;
    s->used = used;
    s->peak = peak;
    s->blocks = blocks;
}

size_t fuzz_heap_used(void) { return used; }
size_t fuzz_heap_blocks(void) { return blocks; }
